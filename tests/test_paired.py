"""The paired task (facades' label map -> photo): encoding, sample grids, training and parameter counts."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from PIL import Image
from test_datasets import make_facades

from bench.cli import main
from bench.config import load_config
from bench.data.colour import decode, encode, input_rgb8
from bench.evaluation.outputs import save_sample_grid
from bench.run import rundir
from bench.run.checkpoint import load_checkpoint
from bench.training.train import train


def random_pairs(n: int = 2, side: int = 4) -> torch.Tensor:
    return torch.randint(0, 256, (n, 6, side, side), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))


def test_paired_encoding_scales_input_image_and_photo():
    pairs = random_pairs()
    inputs, targets = encode(pairs, "paired")
    assert inputs.shape == targets.shape == (2, 3, 4, 4) and inputs.dtype == targets.dtype == torch.float32
    torch.testing.assert_close(inputs, pairs[:, 3:].double().div(255).mul(2).sub(1).float(), rtol=0, atol=1e-7)
    torch.testing.assert_close(targets, pairs[:, :3].double().div(255).mul(2).sub(1).float(), rtol=0, atol=1e-7)
    assert torch.equal(decode(inputs, targets, "paired"), pairs[:, :3])  # the photo back, exactly
    assert torch.equal(input_rgb8(pairs, "paired"), pairs[:, 3:])


def test_paired_encoding_needs_six_channels():
    with pytest.raises(ValueError,
                       match=r"rgb8: expected a uint8 tensor shaped \(B, 6, H, W\); got torch.uint8 \(2, 3, 4, 4\)"):
        encode(random_pairs()[:, :3], "paired")
    with pytest.raises(ValueError, match="allowed: lab, rgb, lab_l100_ab128, paired"):
        encode(random_pairs(), "hsv")


def test_sample_grid_shows_the_paired_input(tmp_path):
    pairs = random_pairs(2, 8)
    outputs = torch.zeros(2, 3, 8, 8, dtype=torch.uint8)
    save_sample_grid(tmp_path / "grid.png", pairs, outputs, "paired")
    grid = np.asarray(Image.open(tmp_path / "grid.png")).transpose(2, 0, 1)
    # make_grid puts image (row r, column c) at 2 + r * 10, 2 + c * 10 with padding 2
    np.testing.assert_array_equal(grid[:, 2:10, 2:10], pairs[0, 3:].numpy())  # input image
    np.testing.assert_array_equal(grid[:, 12:20, 22:30], pairs[1, :3].numpy())  # ground truth


def paired_config(root, *overrides):
    return load_config(None, [
        "data.dataset=facades", f"data.root={root}", "data.task=paired", "colour_space=rgb", "data.image_size=32",
        "data.batch_size=2", "generator.depth=5", "generator.ngf=8", "discriminator.ndf=8",
        "discriminator.n_layers=1", "optim.epochs=2", "optim.schedule=constant", "eval.every_epochs=1",
        "eval.n_sample_images=2", "eval.metrics=[psnr_rgb8]", "log_every=1", "device=cpu", *overrides])


@pytest.fixture(scope="module")
def facades_root(tmp_path_factory):
    return make_facades(tmp_path_factory.mktemp("facades"), n_train=4, n_test=2)


def test_training_on_pairs_maps_label_maps_to_photos(facades_root, tmp_path):
    config = dataclasses.replace(paired_config(facades_root), keep_training_state=True)  # D is looked at too
    summary = train(config, tmp_path / "run")
    assert summary["state"] == "done" and summary["step"] == 4
    weights = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    first_conv = next(v for k, v in weights["generator"].items() if k.endswith("weight"))
    assert first_conv.shape[1] == 3  # the generator sees the RGB label map
    first_d = next(v for k, v in weights["discriminator"].items() if k.endswith("weight"))
    assert first_d.shape[1] == 6  # conditional D: label map + photo
    assert {r["metric"] for r in rundir.read_jsonl(tmp_path / "run" / "metrics.jsonl")} == {"psnr_rgb8"}

    manifest = rundir.read_json(tmp_path / "run" / "data_manifest.json")
    test_ids = [e["id"] for e in manifest["splits"]["test"]["items"]]
    grid = np.asarray(Image.open(tmp_path / "run" / "samples" / "step-0000004.png")).transpose(2, 0, 1)
    label = np.asarray(Image.open(facades_root / test_ids[0]).convert("RGB"))[:, 40:]
    expected = np.asarray(Image.fromarray(label).resize((32, 32), Image.Resampling.BICUBIC)).transpose(2, 0, 1)
    np.testing.assert_array_equal(grid[:, 2:34, 2:34], expected)


def test_paired_run_resumes_bitwise(facades_root, tmp_path):
    config = paired_config(facades_root, "data.augmentation=flip+jitter")
    train(config, tmp_path / "whole")
    train(config, tmp_path / "split", stop_after_step=3)
    train(config, tmp_path / "split")
    whole = load_checkpoint(tmp_path / "whole" / "checkpoint.pt")["generator"]
    split = load_checkpoint(tmp_path / "split" / "checkpoint.pt")["generator"]
    assert all(torch.equal(whole[k], split[k]) for k in whole)


def test_paired_task_changes_what_is_learnt(facades_root, tmp_path):
    """Same data and seed: the label map as input gives other weights than the grey photo."""
    paired = train(paired_config(facades_root), tmp_path / "paired")
    colourise = train(paired_config(facades_root, "data.task=colourise"), tmp_path / "colourise")
    assert paired["metrics"]["psnr_rgb8"] != colourise["metrics"]["psnr_rgb8"]


def test_params_of_the_paired_task_match_the_reference(capsys):
    assert main(["params", "--set", "data.dataset=facades", "--set", "data.task=paired",
                 "--set", "colour_space=rgb"]) == 0
    out = capsys.readouterr().out
    assert "54,413,955" in out and "2,768,705" in out  # pix2pix facades: unet_256 3->3, 70x70 D on 6 channels
