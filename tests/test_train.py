import json
import math

import pytest
import torch
import yaml
from PIL import Image

from bench.cli import main
from bench.config import ConfigError, load_config
from bench.data.fingerprint import data_id
from bench.run import rundir
from bench.run.checkpoint import load_checkpoint
from bench.run.compare import run_differences
from bench.run.identity import run_id
from bench.training.train import TrainingFailed, train


def tiny(image_folder, *overrides):
    """A 32x32 pix2pix small enough to train a few steps in about a second."""
    return load_config(None, [
        "data.dataset=folder", f"data.root={image_folder}", "data.image_size=32", "data.batch_size=4",
        "data.test_fraction=0.25", "generator.depth=5", "generator.ngf=8", "discriminator.ndf=8",
        "discriminator.n_layers=1", "optim.epochs=2", "optim.schedule=constant", "eval.every_epochs=1",
        "eval.n_sample_images=2", "log_every=1", "checkpoint_every=1000", "device=cpu", *overrides])


def _weights(run_dir):
    return load_checkpoint(run_dir / "checkpoint.pt")["generator"]


def _same_state(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _metrics(run_dir):
    return list(rundir.read_jsonl(run_dir / "metrics.jsonl"))


def _stats_without_timing(run_dir):
    return [{k: v for k, v in r.items() if k not in rundir.TIMING_FIELDS}
            for r in rundir.read_jsonl(run_dir / "stats.jsonl")]


def test_run_directory_holds_everything(image_folder, tmp_path):
    config = tiny(image_folder)
    summary = train(config, tmp_path / "run")
    run = tmp_path / "run"
    assert summary["state"] == "done" and summary["step"] == 8  # 15 train images / batch 4 -> 4 steps x 2 epochs

    meta = yaml.safe_load((run / "config.yaml").read_text())
    assert meta["run_id"] == run_id(config, data_id(config)) and meta["config"]["data"]["image_size"] == 32
    for key in ("git_commit", "git_dirty", "python", "torch", "torchvision", "device_name"):
        assert key in meta["environment"]
    assert load_config(run / "config.yaml") == config

    stats = list(rundir.read_jsonl(run / "stats.jsonl"))
    assert [r["step"] for r in stats] == list(range(1, 9))
    assert {"loss_d_real", "loss_d_fake", "loss_g_adv", "loss_g_rec", "lr", "images_per_s", "epoch"} <= set(stats[0])

    metrics = _metrics(run)
    grey = [r for r in metrics if r["source"] == "grey_input"]  # the grey input's, once (bench/evaluation/baselines.py)
    assert [(r["step"], r["metric"]) for r in grey] == [(4, m) for m in config.eval.metrics]
    metrics = [r for r in metrics if r["source"] != "grey_input"]
    assert sorted({r["step"] for r in metrics}) == [4, 8]
    assert [r["metric"] for r in metrics if r["step"] == 8] == list(config.eval.metrics)
    for r in metrics:
        assert r["split"] == "test" and r["n_images"] == 5 and r["source"] == "train"
        if "per_image" in r:
            assert len(r["per_image"]) == 5 and r["value"] == pytest.approx(sum(r["per_image"]) / 5)
        elif r["detector"] is not None and r["value"] is None:  # no FID/LPIPS weights on this machine
            assert "not found" in r["unavailable"]
    assert summary["metrics"]["psnr_rgb8"] == [r["value"] for r in metrics if r["metric"] == "psnr_rgb8"][-1]

    grids = sorted((run / "samples").glob("*.png"))
    assert [g.name for g in grids] == ["step-0000004.png", "step-0000008.png"]
    with Image.open(grids[-1]) as grid:  # 2 rows x 3 columns of 32x32 with 2-pixel padding
        assert grid.size == (3 * 34 + 2, 2 * 34 + 2)

    state = torch.load(run / "checkpoint.pt", weights_only=True)
    assert set(state) == {"generator", "step", "run_id"}  # finished: the training state is dropped
    manifest = json.loads((run / "data_manifest.json").read_text())
    assert manifest["source"] == "folder"
    assert json.loads((run / "DONE").read_text()) == summary
    assert not list(run.glob(".*.tmp"))


@pytest.mark.parametrize("stop_at", [3, 4, 6])  # mid-epoch, at an epoch end (after an evaluation), mid-epoch 2
def test_interrupted_then_resumed_equals_uninterrupted(image_folder, tmp_path, stop_at):
    """Stats every 3 steps, so each stop falls inside a stats window; every file must match."""
    config = tiny(image_folder, "generator.dropout=true", "data.augmentation=flip+jitter", "log_every=3",
                  "keep_training_state=true")  # D, optimisers and RNG states compared too
    train(config, tmp_path / "whole")
    partial = train(config, tmp_path / "resumed", stop_after_step=stop_at)
    assert partial["state"] == "interrupted" and not (tmp_path / "resumed" / "DONE").exists()
    assert load_checkpoint(tmp_path / "resumed" / "checkpoint.pt")["step"] == stop_at
    train(config, tmp_path / "resumed")
    assert _same_state(_weights(tmp_path / "whole"), _weights(tmp_path / "resumed"))
    whole_ck = load_checkpoint(tmp_path / "whole" / "checkpoint.pt")
    resumed_ck = load_checkpoint(tmp_path / "resumed" / "checkpoint.pt")
    assert _same_state(whole_ck["discriminator"], resumed_ck["discriminator"])
    assert _metrics(tmp_path / "whole") == _metrics(tmp_path / "resumed")
    assert _stats_without_timing(tmp_path / "whole") == _stats_without_timing(tmp_path / "resumed")
    assert run_differences(tmp_path / "whole", tmp_path / "resumed") == []


def test_records_written_after_the_checkpoint_are_dropped_on_resume(image_folder, tmp_path):
    config = tiny(image_folder)
    run = tmp_path / "run"
    train(config, run, stop_after_step=2)
    rundir.append_jsonl(run / "metrics.jsonl", {"step": 3, "metric": "psnr_rgb8", "value": 0.0})  # crash leftovers
    with open(run / "stats.jsonl", "a") as handle:
        handle.write('{"step": 3, "torn')
    train(config, run)
    train(config, tmp_path / "whole")
    assert _metrics(run) == _metrics(tmp_path / "whole")


def test_same_seed_same_metrics_other_seed_differs(image_folder, tmp_path):
    a = train(tiny(image_folder), tmp_path / "a")
    b = train(tiny(image_folder), tmp_path / "b")
    c = train(tiny(image_folder, "seed=1"), tmp_path / "c")
    assert a["metrics"] == b["metrics"]
    assert _metrics(tmp_path / "a") == _metrics(tmp_path / "b")
    assert c["metrics"] != a["metrics"]


def test_done_run_is_not_trained_again(image_folder, tmp_path, monkeypatch):
    config = tiny(image_folder)
    first = train(config, tmp_path / "run")
    monkeypatch.setattr("bench.training.train.prepare_data", lambda cfg: pytest.fail("a finished run was trained again"))
    assert train(config, tmp_path / "run") == first


def test_a_finished_run_keeps_only_the_generator_unless_asked(image_folder, tmp_path):
    slim, whole = tmp_path / "slim", tmp_path / "whole"
    train(tiny(image_folder), slim)
    train(tiny(image_folder, "keep_training_state=true"), whole)
    kept = load_checkpoint(whole / "checkpoint.pt")
    assert {"discriminator", "opt_g", "opt_d", "sched_g", "sched_d", "rng", "stats"} <= set(kept)
    state = load_checkpoint(slim / "checkpoint.pt")
    assert set(state) == {"generator", "step", "run_id"}
    assert _same_state(state["generator"], kept["generator"]) and state["step"] == kept["step"] == 8
    assert state["run_id"] == kept["run_id"]
    # Adam holds two tensors per weight and D is dropped too: the slim file is under a third of the whole one.
    assert (slim / "checkpoint.pt").stat().st_size < (whole / "checkpoint.pt").stat().st_size / 3
    assert main(["eval", str(slim)]) == 0  # what eval needs is there


def test_a_whole_checkpoint_left_beside_done_is_shrunk_by_the_next_call(image_folder, tmp_path):
    run = tmp_path / "run"
    train(tiny(image_folder, "keep_training_state=true"), run)  # as if stopped between DONE and the drop
    train(tiny(image_folder), run)
    assert set(load_checkpoint(run / "checkpoint.pt")) == {"generator", "step", "run_id"}


def test_directory_of_another_run_is_refused(image_folder, tmp_path):
    train(tiny(image_folder), tmp_path / "run", stop_after_step=1)
    with pytest.raises(ConfigError, match="holds run"):
        train(tiny(image_folder, "loss.lambda_rec=10"), tmp_path / "run")
    with pytest.raises(ConfigError, match="holds run"):
        train(tiny(image_folder, "seed=3"), tmp_path / "run")


def test_non_finite_loss_writes_failed(image_folder, tmp_path, monkeypatch):
    real = __import__("bench.training.losses", fromlist=["x"]).reconstruction_loss
    calls = {"n": 0}

    def exploding(kind, output, target):
        calls["n"] += 1
        loss = real(kind, output, target)
        return loss * float("nan") if calls["n"] == 3 else loss

    monkeypatch.setattr("bench.training.step.reconstruction_loss", exploding)
    run = tmp_path / "run"
    with pytest.raises(TrainingFailed, match="non-finite loss g_rec at step 2"):
        train(tiny(image_folder), run)
    failed = json.loads((run / "FAILED").read_text())
    assert failed["step"] == 2 and failed["losses"]["g_rec"] == "nan" and "g_rec" in failed["reason"]
    assert not (run / "DONE").exists()
    with pytest.raises(TrainingFailed, match="failed before"):
        train(tiny(image_folder), run)
    assert main(["train", "--out", str(run), "--set", "data.dataset=folder", "--set", f"data.root={image_folder}",
                 "--set", "data.image_size=32", "--set", "generator.depth=5"]) != 0


def test_warmup_trains_generator_alone_first(image_folder, tmp_path):
    train(tiny(image_folder, "optim.warmup_epochs=1"), tmp_path / "run")
    stats = list(rundir.read_jsonl(tmp_path / "run" / "stats.jsonl"))
    assert all("loss_d_real" not in r and "loss_g_adv" not in r for r in stats if r["epoch"] == 0)
    assert all("loss_d_real" in r and "loss_g_adv" in r for r in stats if r["epoch"] == 1)


def test_discriminator_none_trains_reconstruction_only(image_folder, tmp_path):
    train(tiny(image_folder, "discriminator.arch=none", "loss.adversarial=none"), tmp_path / "run")
    stats = list(rundir.read_jsonl(tmp_path / "run" / "stats.jsonl"))
    assert all(set(k for k in r if k.startswith("loss_")) == {"loss_g_rec"} for r in stats)
    assert "discriminator" not in load_checkpoint(tmp_path / "run" / "checkpoint.pt")


def test_schedule_reaches_the_optimiser(image_folder, tmp_path):
    train(tiny(image_folder, "optim.schedule=cosine"), tmp_path / "run")
    lrs = [r["lr"] for r in rundir.read_jsonl(tmp_path / "run" / "stats.jsonl")]
    assert lrs == pytest.approx([2e-4 * 0.5 * (1 + math.cos(math.pi * s / 8)) for s in range(1, 9)])


KNOBS = [
    "generator.ngf=12", "generator.norm=instance", "generator.skip_connections=false",
    "generator.arch=resnet18_unet", "discriminator.n_layers=0", "discriminator.n_layers=2",
    "discriminator.conditional=false", "discriminator.ndf=12", "discriminator.norm=instance",
    "loss.reconstruction=l2", "loss.reconstruction=l1+l2", "loss.adversarial=lsgan", "loss.lambda_rec=10",
    "loss.lambda_adv=5", "colour_space=rgb", "data.augmentation=none", "data.augmentation=flip",
    "data.augmentation=jitter", "data.batch_size=3", "optim.lr=1e-3", "optim.betas=[0.9, 0.999]",
    "optim.schedule=linear", "optim.schedule=step", "optim.grad_clip_norm=0.01", "precision=bf16",
]


@pytest.fixture(scope="module")
def baseline_run(image_folder, tmp_path_factory):
    run = tmp_path_factory.mktemp("baseline")
    train(tiny(image_folder, "optim.steps=2", "optim.decay_start_epoch=0"), run)
    return run


@pytest.mark.parametrize("knob", KNOBS)
def test_each_knob_changes_training(image_folder, tmp_path, baseline_run, knob):
    train(tiny(image_folder, "optim.steps=2", "optim.decay_start_epoch=0", knob), tmp_path / "run")
    base, changed = _weights(baseline_run), _weights(tmp_path / "run")
    assert not _same_state(base, changed), f"{knob} left the trained generator unchanged"


def test_train_mode_inference_changes_metrics_not_weights(image_folder, tmp_path, baseline_run):
    run = tmp_path / "run"
    train(tiny(image_folder, "optim.steps=2", "optim.decay_start_epoch=0", "eval.train_mode_inference=true"), run)
    assert _same_state(_weights(baseline_run), _weights(run))
    assert _metrics(baseline_run)[0]["per_image"] != _metrics(run)[0]["per_image"]


def test_image_size_knob(image_folder, tmp_path):
    train(tiny(image_folder, "optim.steps=1", "data.image_size=64", "data.augmentation=none"), tmp_path / "run")
    assert _metrics(tmp_path / "run")[0]["resolution"] == [64, 64]


def test_dropout_knob(image_folder, tmp_path):
    """Depth 6 has one ngf*8 middle block, the one that carries dropout."""
    common = ["optim.steps=2", "data.image_size=64", "generator.depth=6"]
    train(tiny(image_folder, *common), tmp_path / "with")
    train(tiny(image_folder, *common, "generator.dropout=false"), tmp_path / "without")
    assert not _same_state(_weights(tmp_path / "with"), _weights(tmp_path / "without"))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
def test_cuda_without_gpu_fails_before_training(image_folder, tmp_path):
    with pytest.raises(ConfigError, match="device: got cuda, but no CUDA device is available"):
        train(tiny(image_folder, "device=cuda"), tmp_path / "run")
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_a_learning_curve_evaluates_at_steps_a_factor_of_two_apart(image_folder, tmp_path):
    """eval.curve_points 3 on a 16-step run: evaluations after steps 4, 8 and 16 (16/4, 16/2, 16), no others."""
    config = tiny(image_folder, "optim.steps=16", "eval.every_epochs=0", "eval.curve_points=3",
                  "eval.metrics=psnr_rgb8")
    train(config, tmp_path / "run")
    records = [r for r in _metrics(tmp_path / "run") if r["source"] == "train"]
    assert [r["step"] for r in records] == [4, 8, 16]
    assert sorted(p.name for p in (tmp_path / "run" / "samples").iterdir()) == [
        "step-0000004.png", "step-0000008.png", "step-0000016.png"]
    with pytest.raises(ConfigError, match=r"eval.curve_points: got 31; allowed: 0..30"):
        tiny(image_folder, "eval.curve_points=31")
