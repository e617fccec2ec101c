"""Runs that never mix: a resumed run is identical in every file, a run directory refuses what is not its own.

Every test builds a tiny run (32x32 on the 20 synthetic images, a few steps) and either
interrupts it and compares every file with an uninterrupted run (``run_differences``), or
damages its directory and checks that training refuses with one line naming the file.
"""
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch
import yaml

import bench.training.train
from bench.cli import main
from bench.config import ConfigError, load_config
from bench.run import rundir
from bench.run.checkpoint import load_checkpoint
from bench.run.compare import run_differences
from bench.sweep.ablation import load_ablation
from bench.sweep.results import AblationResults
from bench.sweep.status import collect_status
from bench.training.train import train


def settings(image_folder, steps=10, log_every=3, every_epochs=1):
    """--set overrides of a tiny run (4 steps an epoch) with dropout and random augmentation."""
    return ["data.dataset=folder", f"data.root={image_folder}", "data.image_size=32", "data.batch_size=4",
            "data.test_fraction=0.25", "generator.depth=5", "generator.ngf=8", "discriminator.ndf=8",
            "discriminator.n_layers=1", f"optim.steps={steps}", "optim.schedule=constant",
            f"eval.every_epochs={every_epochs}", "eval.n_sample_images=2", f"log_every={log_every}",
            "checkpoint_every=1000", "device=cpu", "generator.dropout=true", "data.augmentation=flip+jitter"]


def tiny(image_folder, *overrides, steps=10, log_every=3, every_epochs=1):
    return load_config(None, [*settings(image_folder, steps, log_every, every_epochs), *overrides])


@contextlib.contextmanager
def single_threaded():
    """As the subprocesses train (OMP_NUM_THREADS=1), so that their runs and this one's can be compared."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def reference(image_folder, tmp_path_factory):
    """The uninterrupted run of ``tiny`` (10 steps, stats every 3, evaluations at 4, 8 and 10)."""
    run = tmp_path_factory.mktemp("reference") / "run"
    train(tiny(image_folder), run)
    return run


def snapshot(run_dir):
    return {p.relative_to(run_dir): p.read_bytes() for p in sorted(run_dir.rglob("*")) if p.is_file()}


def one_line_error(capsys, argv):
    code = main(argv)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def train_argv(image_folder, run_dir, steps=10, log_every=3, every_epochs=1):
    overrides = settings(image_folder, steps, log_every, every_epochs)
    return ["train", "--out", str(run_dir), *(a for s in overrides for a in ("--set", s))]


# ---------------------------------------------------------------- identical in every file


@pytest.mark.parametrize("stop_at", [1, 5, 8, 9])  # mid-window, mid-window after an evaluation, eval step, last-1
def test_resumed_run_is_identical_in_every_file(image_folder, tmp_path, reference, stop_at):
    config = tiny(image_folder)
    run = tmp_path / "run"
    assert train(config, run, stop_after_step=stop_at)["state"] == "interrupted"
    assert train(config, run)["state"] == "done"
    assert run_differences(reference, run) == []


def test_twice_interrupted_run_is_identical_in_every_file(image_folder, tmp_path, reference):
    config = tiny(image_folder)
    run = tmp_path / "run"
    train(config, run, stop_after_step=2)
    train(config, run, stop_after_step=7)
    train(config, run)
    assert run_differences(reference, run) == []


def test_stop_requested_mid_window_is_identical_in_every_file(image_folder, tmp_path, reference, monkeypatch):
    """A signal stops the run at step 5, between two stats records (every 3 steps)."""
    config = tiny(image_folder)
    run = tmp_path / "run"
    real_step, steps = bench.training.train.train_step, []

    def counted_step(*args, **kwargs):
        steps.append(kwargs["step"])
        return real_step(*args, **kwargs)

    monkeypatch.setattr("bench.training.train.train_step", counted_step)
    summary = train(config, run, stop_requested=lambda: len(steps) >= 5)
    assert summary["state"] == "interrupted" and summary["step"] == 5
    assert load_checkpoint(run / "checkpoint.pt")["step"] == 5
    train(config, run)
    assert run_differences(reference, run) == []


def test_timing_fields_are_kept_and_named(reference):
    records = list(rundir.read_jsonl(reference / "stats.jsonl"))
    assert [r["step"] for r in records] == [3, 6, 9, 10]
    assert rundir.TIMING_FIELDS == {"images_per_s"} and all(r["images_per_s"] > 0 for r in records)


# ---------------------------------------------------------------- files that do not belong


def test_checkpoint_of_another_run_is_refused_naming_the_file(image_folder, tmp_path, capsys):
    mine, other = tmp_path / "mine", tmp_path / "other"
    train(tiny(image_folder), mine, stop_after_step=5)
    train(tiny(image_folder, "seed=1"), other, stop_after_step=2)
    shutil.copy(other / "checkpoint.pt", mine / "checkpoint.pt")
    before = snapshot(mine)
    with pytest.raises(ConfigError, match=r"checkpoint\.pt: belongs to run '[0-9a-f]{12}-[0-9a-f]{8}-s1', not to this "
                                          r"directory's run '[0-9a-f]{12}-[0-9a-f]{8}-s0'"):
        train(tiny(image_folder), mine)
    line = one_line_error(capsys, train_argv(image_folder, mine))
    assert str(mine / "checkpoint.pt") in line and "delete it" in line
    assert snapshot(mine) == before  # nothing truncated, nothing written


def test_checkpoint_without_a_run_id_is_refused(image_folder, tmp_path):
    run = tmp_path / "run"
    train(tiny(image_folder), run, stop_after_step=2)
    state = load_checkpoint(run / "checkpoint.pt")
    del state["run_id"]
    torch.save(state, run / "checkpoint.pt")
    with pytest.raises(ConfigError, match=r"checkpoint\.pt: does not say which run it belongs to"):
        train(tiny(image_folder), run)


@pytest.mark.parametrize("left", ["checkpoint.pt", "stats.jsonl"])
def test_run_directory_without_config_yaml_is_refused(image_folder, tmp_path, capsys, left):
    run = tmp_path / "run"
    train(tiny(image_folder), run, stop_after_step=5)
    (run / "config.yaml").unlink()
    if left == "stats.jsonl":
        (run / "checkpoint.pt").unlink()
    before = snapshot(run)
    with pytest.raises(ConfigError) as refused:
        train(tiny(image_folder), run)
    assert "no config.yaml" in str(refused.value) and left in str(refused.value)
    line = one_line_error(capsys, train_argv(image_folder, run))
    assert str(run / "config.yaml") in line
    assert snapshot(run) == before


def test_finished_directory_of_another_run_is_refused(image_folder, tmp_path, reference):
    with pytest.raises(ConfigError, match="holds run"):
        train(tiny(image_folder, "seed=1"), reference)


# ---------------------------------------------------------------- damaged files


@pytest.mark.parametrize("damage", ["empty", "truncated", "random"])
def test_damaged_checkpoint_is_one_clean_error(image_folder, tmp_path, capsys, damage):
    run = tmp_path / "run"
    train(tiny(image_folder), run, stop_after_step=2)
    path = run / "checkpoint.pt"
    data = path.read_bytes()
    path.write_bytes({"empty": b"", "truncated": data[:len(data) // 2], "random": os.urandom(4096)}[damage])
    line = one_line_error(capsys, train_argv(image_folder, run))
    assert str(path) in line and "delete it to restart the run" in line and "weights_only" not in line


def test_garbage_done_is_one_clean_error(image_folder, tmp_path, capsys, reference):
    run = tmp_path / "run"
    shutil.copytree(reference, run)
    (run / "DONE").write_text("{garbage")
    line = one_line_error(capsys, train_argv(image_folder, run))
    assert str(run / "DONE") in line and "delete it" in line
    (run / "DONE").unlink()  # as the message says: the run finishes again, from its last checkpoint
    assert main(train_argv(image_folder, run)) == 0
    assert run_differences(reference, run) == []


def test_malformed_line_in_the_middle_is_an_error_naming_file_and_line(image_folder, tmp_path, capsys):
    run = tmp_path / "run"
    train(tiny(image_folder), run, stop_after_step=5)
    lines = (run / "metrics.jsonl").read_text().splitlines(keepends=True)
    assert len(lines) >= 3
    (run / "metrics.jsonl").write_text("".join(lines[:2] + ['{"step": 4, "metr\n'] + lines[2:]))
    before = snapshot(run)
    line = one_line_error(capsys, train_argv(image_folder, run))
    assert f"{run / 'metrics.jsonl'}: line 3" in line
    assert snapshot(run) == before  # not a record dropped


def test_torn_last_lines_are_dropped(image_folder, tmp_path, reference):
    run = tmp_path / "run"
    train(tiny(image_folder), run, stop_after_step=5)
    with open(run / "stats.jsonl", "a") as handle:
        handle.write('{"step": 6, "lo')
    with open(run / "metrics.jsonl", "a") as handle:
        handle.write('{"step"')
    train(tiny(image_folder), run)
    assert run_differences(reference, run) == []


def test_orphan_temporary_files_are_removed_at_start(image_folder, tmp_path, reference):
    run = tmp_path / "run"
    train(tiny(image_folder), run, stop_after_step=5)
    (run / ".checkpoint.pt.k2j3h4.tmp").write_bytes(b"half a checkpoint")
    (run / "samples" / ".step-0000008.png.x8y9.tmp").write_bytes(b"half a png")
    train(tiny(image_folder), run)
    assert run_differences(reference, run) == []


# ---------------------------------------------------------------- one writer at a time


def _wait_for(path, process, timeout=120):
    deadline = time.monotonic() + timeout
    while not path.exists() or not path.read_text().strip():
        assert process.poll() is None, "the training process ended early"
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.05)


def test_second_writer_is_refused_with_pid_and_host_and_a_dead_holder_blocks_nothing(image_folder, tmp_path, capsys):
    steps = 200
    run = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    first = subprocess.Popen([sys.executable, "-m", "bench", *train_argv(image_folder, run, steps, every_epochs=0)],
                             env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    config = tiny(image_folder, steps=steps, every_epochs=0)
    try:
        _wait_for(run / "stats.jsonl", first)
        with pytest.raises(ConfigError) as refused:
            train(config, run)
        message = str(refused.value)
        assert f"pid {first.pid} on host {socket.gethostname()}" in message and str(run) in message
        line = one_line_error(capsys, train_argv(image_folder, run, steps, every_epochs=0))
        assert f"pid {first.pid}" in line
        assert first.poll() is None, "the first writer should still be running"
    finally:
        first.send_signal(signal.SIGKILL)  # its lock file stays behind; the lock dies with it
        first.wait()
    assert not (run / "DONE").exists()
    with single_threaded():
        assert train(config, run)["state"] == "done"
        train(config, tmp_path / "whole")
    assert run_differences(tmp_path / "whole", run) == []
    assert not (run / ".lock").exists()


# ---------------------------------------------------------------- SIGINT / SIGTERM


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_saves_the_step_and_a_rerun_finishes_identical(image_folder, tmp_path, signum, code):
    steps, log_every = 300, 7
    run = tmp_path / "run"
    command = [sys.executable, "-m", "bench", *train_argv(image_folder, run, steps, log_every, every_epochs=0)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(run / "stats.jsonl", process)
    process.send_signal(signum)
    out, err = process.communicate(timeout=120)
    assert process.returncode == code, err
    assert "Traceback" not in err
    step = load_checkpoint(run / "checkpoint.pt")["step"]
    assert 7 <= step < steps and not (run / "DONE").exists()
    assert f"stopped at step {step} of {steps}; rerun the same command to continue" in err
    rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    with single_threaded():
        train(tiny(image_folder, steps=steps, log_every=log_every, every_epochs=0), tmp_path / "whole")
    assert run_differences(tmp_path / "whole", run) == []


# ---------------------------------------------------------------- sweeps


def _ablation(tmp_path, image_folder, steps, log_every=5, grid=None):
    base = {"data": {"dataset": "folder", "root": str(image_folder), "image_size": 32, "batch_size": 4,
                     "test_fraction": 0.25},
            "generator": {"depth": 5, "ngf": 8}, "discriminator": {"ndf": 8, "n_layers": 1},
            "optim": {"steps": steps, "schedule": "constant"}, "eval": {"n_sample_images": 2, "every_epochs": 0},
            "log_every": log_every, "checkpoint_every": 1000, "device": "cpu"}
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump({"name": "tiny", "base": base, "grid": grid or {"generator.ngf": [8]}}))
    return path


def test_garbage_done_is_a_broken_run_in_status_not_a_crash(image_folder, tmp_path, capsys):
    path = _ablation(tmp_path, image_folder, steps=2, grid={"generator.ngf": [8, 12]})
    results = tmp_path / "results"
    assert main(["sweep", str(path), "--results", str(results), "--executor", "debug"]) == 0
    broken, fine = load_ablation(path).runs
    done = results / "tiny" / broken.dir_name / "DONE"
    done.write_text("not json")
    capsys.readouterr()
    assert main(["status", str(results / "tiny")]) == 1
    out = capsys.readouterr().out
    assert next(line for line in out.splitlines() if line.startswith(broken.run_id)).split()[2] == "broken"
    assert f"reason: {done}: not a valid summary" in out
    assert next(line for line in out.splitlines() if line.startswith(fine.run_id)).split()[2] == "done"
    assert main(["sweep", str(path), "--results", str(results), "--executor", "debug"]) == 1  # reported, no crash


def test_ctrl_c_on_a_local_sweep_leaves_its_run_resumable_without_rerun_failed(image_folder, tmp_path, capsys):
    steps = 400
    path = _ablation(tmp_path, image_folder, steps=steps)
    results = tmp_path / "results"
    (run,) = load_ablation(path).runs
    run_dir = results / "tiny" / run.dir_name
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "bench", "sweep", str(path), "--results", str(results), "--executor", "local",
               "--max-parallel", str(os.cpu_count() or 1)]  # one torch thread per run, as in this process
    sweep = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             start_new_session=True)
    try:
        _wait_for(run_dir / "stats.jsonl", sweep, timeout=180)
        os.killpg(sweep.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole process group
        out, err = sweep.communicate(timeout=120)
    finally:
        if sweep.poll() is None:
            os.killpg(sweep.pid, signal.SIGKILL)
            sweep.wait()
    assert sweep.returncode == 130, err
    assert "rerun the same command to continue" in err
    step = load_checkpoint(run_dir / "checkpoint.pt")["step"]
    assert 5 <= step < steps
    (status,) = collect_status(AblationResults(results / "tiny"), load_ablation(path).runs)
    assert status.state == "interrupted" and not status.failed, status.reason
    capsys.readouterr()
    with single_threaded():
        assert main(["sweep", str(path), "--results", str(results), "--executor", "debug"]) == 0
        assert (run_dir / "DONE").exists()
        train(run.config, tmp_path / "whole")
    assert run_differences(tmp_path / "whole", run_dir) == []


# ---------------------------------------------------------------- a finished run, another run's checkpoint, eval


def _metrics(run):
    return (run / "metrics.jsonl").read_bytes()


def test_a_finished_run_refuses_another_runs_checkpoint_in_train_and_eval(image_folder, tmp_path, reference, capsys):
    run, other = tmp_path / "run", tmp_path / "other"
    shutil.copytree(reference, run)
    train(tiny(image_folder, "seed=1"), other)
    shutil.copy(other / "checkpoint.pt", run / "checkpoint.pt")
    before = snapshot(run)
    line = one_line_error(capsys, train_argv(image_folder, run))
    assert f"{run / 'checkpoint.pt'}: belongs to run" in line and "delete it" in line
    line = one_line_error(capsys, ["eval", str(run), "--metrics", "psnr_rgb8"])
    assert f"{run / 'checkpoint.pt'}: belongs to run" in line
    assert snapshot(run) == before  # nothing scored, nothing appended


@pytest.mark.parametrize("damage, message", [
    ("step", "step 'abc' is not a step"),
    ("no generator", "holds no generator weights"),
    ("architecture", "does not fit this run's generator"),
    ("later step", "step 11 is not a step of this run"),
])
def test_eval_checks_the_checkpoints_step_and_architecture(image_folder, tmp_path, reference, capsys, damage,
                                                           message):
    run = tmp_path / "run"
    shutil.copytree(reference, run)
    state = load_checkpoint(run / "checkpoint.pt")
    if damage == "step":
        state["step"] = "abc"
    elif damage == "no generator":
        del state["generator"]
    elif damage == "later step":
        state["step"] = 11
    else:
        name = next(key for key, value in state["generator"].items() if value.dim() == 4)
        state["generator"][name] = torch.zeros(3, 3, 3, 3)
    torch.save(state, run / "checkpoint.pt")
    before = _metrics(run)
    line = one_line_error(capsys, ["eval", str(run), "--metrics", "psnr_rgb8"])
    assert str(run / "checkpoint.pt") in line and message in line
    assert _metrics(run) == before


def test_eval_is_refused_while_the_run_trains(image_folder, tmp_path, capsys):
    steps = 300
    run = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    first = subprocess.Popen([sys.executable, "-m", "bench", *train_argv(image_folder, run, steps, every_epochs=1)],
                             env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 180
        while not (run / "checkpoint.pt").exists() or not (run / "metrics.jsonl").exists():
            assert first.poll() is None and time.monotonic() < deadline, "no checkpoint and evaluation yet"
            time.sleep(0.05)
        line = one_line_error(capsys, ["eval", str(run), "--metrics", "psnr_rgb8"])
        assert f"{run}: in use by another colorbench process (pid {first.pid} on host {socket.gethostname()}" in line
        assert first.poll() is None, "the training should still be running"
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    assert not any(r["source"] == "eval" for r in rundir.read_jsonl(run / "metrics.jsonl"))


def test_a_fifo_for_a_log_is_refused_by_train_without_hanging(image_folder, tmp_path):
    run = tmp_path / "run"
    train(tiny(image_folder), run, stop_after_step=5)
    (run / "stats.jsonl").unlink()
    os.mkfifo(run / "stats.jsonl")
    command = [sys.executable, "-m", "bench", *train_argv(image_folder, run)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=90, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines == [f"colorbench: error: {run / 'stats.jsonl'}: a FIFO, not a regular file; colorbench reads only "
                     "the files it writes"]


@pytest.mark.parametrize("damage, name, message", [
    ("binary", "stats.jsonl", "not UTF-8 text (byte 0x80 at offset 0)"),
    ("record", "stats.jsonl", "line 2: step: got \"x\"; allowed: an integer >= 0"),
    ("record", "metrics.jsonl", "line 2: value: got \"high\"; allowed: a number or null"),
])
def test_damaged_logs_are_one_line_naming_file_and_line(image_folder, tmp_path, capsys, damage, name, message):
    run = tmp_path / "run"
    train(tiny(image_folder), run, stop_after_step=9)
    path = run / name
    lines = path.read_text().splitlines(keepends=True)
    if damage == "binary":
        path.write_bytes(bytes(range(128, 256)) * 4)
    elif name == "stats.jsonl":
        path.write_text("".join(lines[:1] + ['{"step": "x", "total_steps": 10}\n'] + lines[1:]))
    else:
        path.write_text("".join(lines[:1] + ['{"step": 4, "metric": "psnr_rgb8", "value": "high"}\n'] + lines[1:]))
    before = snapshot(run)
    line = one_line_error(capsys, train_argv(image_folder, run))
    assert f"{path}: {message}" in line
    assert snapshot(run) == before


def test_a_done_without_its_fields_is_one_line(image_folder, tmp_path, reference, capsys):
    run = tmp_path / "run"
    shutil.copytree(reference, run)
    run_id = rundir.read_json(run / "DONE")["run_id"]
    rundir.write_json(run / "DONE", {"run_id": run_id, "state": "done"})
    line = one_line_error(capsys, train_argv(image_folder, run))
    assert f"{run / 'DONE'}: not a valid summary (no 'step' field" in line and "delete it" in line


def test_a_copied_finished_run_prints_its_own_directory(image_folder, tmp_path, reference, capsys):
    run = tmp_path / "copy"
    shutil.copytree(reference, run)
    assert main(train_argv(image_folder, run)) == 0
    out = capsys.readouterr().out
    assert f"run directory  {run}\n" in out and str(reference) not in out
