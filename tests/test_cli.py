import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from PIL import Image

from bench.cli import demo_config_path, main
from bench.config import load_config
from bench.run import rundir
from bench.run.checkpoint import load_checkpoint
from bench.run.compare import run_differences


@pytest.mark.parametrize("command", [[], ["train"], ["demo"], ["params"], ["config"]])
def test_help_everywhere(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([*command, "--help"])
    assert exit_.value.code == 0
    assert "usage: colorbench" in capsys.readouterr().out


def test_train_help_lists_config_fields(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    assert "generator.skip_connections = True" in out and "loss.lambda_rec = 100.0" in out


def test_params_match_the_reference_implementation(capsys):
    assert main(["params"]) == 0  # default: unet_256 L->ab, conditional 70x70 PatchGAN on L+ab
    out = capsys.readouterr().out
    assert "54,409,858" in out and "2,765,633" in out and "57,175,491" in out
    assert main(["params", "--set", "colour_space=rgb", "--set", "discriminator.conditional=false"]) == 0
    out = capsys.readouterr().out
    assert "54,411,907" in out and "2,765,633" in out  # 1->3: one more output channel (+2,049)
    assert main(["params", "--set", "generator.depth=7", "--set", "data.image_size=128",
                 "--set", "discriminator.n_layers=5", "--set", "data.image_size=128"]) == 0
    out = capsys.readouterr().out
    assert "41,824,898" in out and "11,156,289" in out  # unet_128 L->ab; 286x286 PatchGAN on L+ab
    assert main(["params", "--set", "discriminator.arch=none", "--set", "loss.adversarial=none"]) == 0
    assert "(none)" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["params", "--set", "generator.norm=layer"], "generator.norm: got 'layer'; allowed: batch, instance"),
    (["config", "--set", "optimiser.lr=1"], "unknown config key optimiser"),
    (["config", "--config", "/nonexistent/c.yaml"], "/nonexistent/c.yaml: cannot read config file"),
    (["train", "--out", "x", "--set", "data.batch_size=-1"], "data.batch_size: got -1"),
])
def test_bad_input_exits_2_with_a_message(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert not (tmp_path / "x").exists(), "bad config must fail before anything is written"


def test_folder_without_usable_images_exits_2_naming_folder_and_reasons(tmp_path, capsys):
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "text.jpg").write_text("not an image")
    Image.fromarray(np.full((64, 64), 128, np.uint8)).save(folder / "grey.png")
    Image.fromarray(np.full((64, 64, 3), 90, np.uint8)).save(folder / "flat.png")
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(folder / "tiny.png")
    code = main(["train", "--out", str(tmp_path / "run"), "--set", "data.dataset=folder",
                 "--set", f"data.root={folder}", "--set", "data.test_fraction=0.2"])
    assert code == 2
    err = capsys.readouterr().err
    assert str(folder) in err and "5 skipped (greyscale: 2, too small: 1, unreadable: 2)" in err


def test_config_prints_resolved_yaml_and_id(capsys):
    assert main(["config", "--config", str(demo_config_path())]) == 0
    out = capsys.readouterr().out
    config = load_config(demo_config_path())
    assert out.startswith("# config id ") and "image_size: 64" in out
    from bench.data.fingerprint import data_id
    from bench.run.identity import run_id
    assert run_id(config, data_id(config)) in out


def test_demo_config_is_valid_and_cpu_sized():
    config = load_config(demo_config_path())
    assert config.data.dataset == "samples" and config.data.image_size == 64


def test_demo_command_runs_on_samples(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--set", "optim.steps=2", "--set", "device=cpu"]) == 0
    out = capsys.readouterr().out
    assert "psnr_rgb8" in out and "ssim_rgb8" in out and str(tmp_path) in out
    (run,) = [path for path in tmp_path.iterdir() if path.name != "report"]
    assert (run / "DONE").exists() and list((run / "samples").glob("*.png"))
    assert f"report         {tmp_path / 'report' / 'table.md'}" in out
    assert run.name in (tmp_path / "report" / "table.md").read_text()


def test_python_dash_m_bench():
    result = subprocess.run([sys.executable, "-m", "bench", "config", "--set", "seed=3"], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0 and "seed: 3" in result.stdout


def test_killed_process_resumes_to_the_same_result(image_folder, tmp_path):
    """SIGKILL at an arbitrary moment (no clean shutdown), then `colorbench train` again on the directory."""
    args = ["--set", "data.dataset=folder", "--set", f"data.root={image_folder}", "--set", "data.image_size=32",
            "--set", "data.batch_size=2", "--set", "generator.depth=5", "--set", "generator.ngf=8",
            "--set", "discriminator.ndf=8", "--set", "optim.epochs=3", "--set", "eval.every_epochs=1",
            "--set", "checkpoint_every=2", "--set", "log_every=3", "--set", "device=cpu"]
    command = [sys.executable, "-m", "bench", "train", *args, "--out"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    killed = tmp_path / "killed"
    process = subprocess.Popen([*command, str(killed)], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not (killed / "checkpoint.pt").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (killed / "DONE").exists(), "the run finished before it could be killed"
    subprocess.run([*command, str(killed)], env=env, check=True, capture_output=True, timeout=300)
    subprocess.run([*command, str(tmp_path / "whole")], env=env, check=True, capture_output=True, timeout=300)
    a = load_checkpoint(killed / "checkpoint.pt")["generator"]
    b = load_checkpoint(tmp_path / "whole" / "checkpoint.pt")["generator"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert list(rundir.read_jsonl(killed / "metrics.jsonl")) == list(rundir.read_jsonl(tmp_path / "whole" /
                                                                                      "metrics.jsonl"))
    assert run_differences(tmp_path / "whole", killed) == []  # every file, stats.jsonl included
