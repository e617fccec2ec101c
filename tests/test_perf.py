import re

import numpy as np
import pytest
import torch
from conftest import colourful_image  # noqa: E402  (tests/ is on sys.path under pytest's rootdir conftest)

from bench.cli import main
from bench.config import ConfigError, load_config
from bench.data.colour import encode
from bench.models import build_networks
from bench.perf.baseline import lab_tensors, reference_networks, reference_step
from bench.perf.measure import measure
from bench.training.train import build_optimizer, train_step


def _config(image_folder, *overrides):
    return load_config(None, [
        "data.dataset=folder", f"data.root={image_folder}", "data.image_size=32", "data.batch_size=2",
        "data.augmentation=none", "generator.depth=5", "generator.ngf=8", "discriminator.ndf=8",
        "discriminator.n_layers=1", "device=cpu", *overrides])


def test_baseline_computes_the_same_losses_and_update(image_folder, tmp_path):
    config = _config(image_folder)
    torch.manual_seed(0)
    generator, discriminator = build_networks(config)
    torch.manual_seed(0)
    ref_g, ref_d = reference_networks(config)  # stock torch layers, the same initial weights
    assert all(torch.equal(a, b) for a, b in zip(generator.state_dict().values(), ref_g.state_dict().values()))
    rng = np.random.default_rng(1)
    images = np.stack([colourful_image(rng, 32) for _ in range(2)])
    batch = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()

    ours = train_step(batch, generator, discriminator, build_optimizer(generator, config),
                      build_optimizer(discriminator, config), config, adversarial=True, run_dir=tmp_path, step=0)
    pairs = [lab_tensors(image) for image in images]
    real_a, real_b = torch.stack([a for a, _ in pairs]), torch.stack([b for _, b in pairs])
    inputs, targets = encode(batch, "lab")
    assert torch.allclose(real_a, inputs, atol=1e-5) and torch.allclose(real_b, targets, atol=1e-5)
    theirs = reference_step(ref_g, ref_d, torch.optim.Adam(ref_g.parameters(), lr=2e-4, betas=(0.5, 0.999)),
                            torch.optim.Adam(ref_d.parameters(), lr=2e-4, betas=(0.5, 0.999)), real_a, real_b, 100.0)
    assert ours.keys() == theirs.keys()
    for key in ours:
        assert ours[key] == pytest.approx(theirs[key], rel=1e-4), key
    for (name, ours_p), theirs_p in zip(generator.state_dict().items(), ref_g.state_dict().values()):
        assert torch.allclose(ours_p.float(), theirs_p.float(), atol=1e-5), name


def test_baseline_refuses_settings_it_does_not_have(image_folder):
    with pytest.raises(ConfigError, match="loss.adversarial: got 'lsgan'; --baseline reproduces"):
        measure(_config(image_folder, "loss.adversarial=lsgan"), steps=1, warmup=0, baseline=True)


def test_perf_reports_phases_and_ratio(image_folder):
    lines = []
    result = measure(_config(image_folder, "data.augmentation=flip+jitter"), steps=2, warmup=1, baseline=True,
                     rounds=1, workers=0, report=lines.append)
    assert set(result["colorbench"]["phases_s"]) == {"data", "g_forward", "d_step", "g_step", "optimizer"}
    assert all(seconds > 0 for seconds in result["colorbench"]["phases_s"].values())
    assert set(result["baseline"]["phases_s"]) == {"data", "step"}
    assert result["flops_per_image"] > 0 and result["speedup"] > 0
    assert any(line.startswith("speed-up over baseline") for line in lines)


def test_perf_command(image_folder, capsys):
    assert main(["perf", "--steps", "1", "--warmup", "0", "--set", "data.dataset=folder",
                 "--set", f"data.root={image_folder}", "--set", "data.image_size=32", "--set", "generator.depth=5",
                 "--set", "generator.ngf=8", "--set", "device=cpu"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("device cpu, batch 1, 32x32, fp32, median of 1 steps\n")
    line = re.search(r"^colorbench +([\d.]+) ms/step +([\d.]+) images/s +\((.*) ms\)$", out, re.M)
    step_ms, images_per_s = float(line.group(1)), float(line.group(2))
    assert images_per_s == pytest.approx(1000 / step_ms, rel=0.02)  # batch 1: one image per step
    phases = dict(part.rsplit(" ", 1) for part in line.group(3).split(", "))
    assert {"data", "g_forward", "d_step", "g_step"} <= set(phases)
    assert sum(map(float, phases.values())) == pytest.approx(step_ms, abs=0.05 * len(phases) + 0.01 * step_ms)
    assert re.search(r"^model FLOPs per image [\d.]+ GFLOP; achieved [\d.]+ GFLOP/s; peak memory \d+ MB$", out, re.M)
