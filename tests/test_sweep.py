"""`colorbench sweep` and `colorbench status` with the debug and local executors, and the preemption protocol."""
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from submitit.core.job_environment import SignalHandler
from submitit.core.utils import DelayedSubmission, JobPaths
from submitit.local.local import LOCAL_REQUEUE_RETURN_CODE, LocalJobEnvironment

import bench.training.step
import bench.training.train
from bench.cli import main
from bench.config import config_from_dict, config_to_dict
from bench.run import rundir
from bench.run.checkpoint import load_checkpoint
from bench.sweep.ablation import load_ablation
from bench.sweep.job import TrainJob, resume_file
from bench.sweep.results import AblationResults
from bench.sweep.status import collect_status, process_start_time
from bench.training.train import train


def tiny_base(image_folder, steps=2):
    """A 32x32 pix2pix on the 20 synthetic images that trains a few steps in about a second."""
    return {"data": {"dataset": "folder", "root": str(image_folder), "image_size": 32, "batch_size": 4,
                     "test_fraction": 0.25},
            "generator": {"depth": 5, "ngf": 8}, "discriminator": {"ndf": 8, "n_layers": 1},
            "optim": {"steps": steps, "schedule": "constant"}, "eval": {"n_sample_images": 2},
            "log_every": 1, "device": "cpu"}


def write_ablation(tmp_path, image_folder, grid=None, name="tiny", steps=2, **extra):
    path = tmp_path / f"{name}.yaml"
    data = {"name": name, "base": tiny_base(image_folder, steps),
            "grid": grid or {"generator.skip_connections": [True, False]}, **extra}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def sweep(path, results, *args):
    return main(["sweep", str(path), "--results", str(results), *args])


def test_dry_run_prints_the_runs_and_the_slurm_parameters_and_submits_nothing(tmp_path, image_folder, capsys):
    path = write_ablation(tmp_path, image_folder, seeds=[0, 1], slurm={"partition": "debug", "time": "0:20:00",
                                                                       "cpus": 1, "mem": "2G"})
    assert sweep(path, tmp_path / "results", "--dry-run", "--executor", "slurm", "--max-num-timeout", "5") == 0
    out = capsys.readouterr().out
    for run in load_ablation(path).runs:
        line = next(line for line in out.splitlines() if line.startswith(run.run_id))
        assert line.split()[1:4] == [str(run.seed), "missing", "submit"]
        assert ("generator.skip_connections=false" in line) == (not run.point["generator.skip_connections"])
    assert "4 runs (2 grid points x 2 seeds), 4 to submit" in out and "executor: slurm" in out
    for parameter in ("slurm_partition: debug", "timeout_min: 20", "cpus_per_task: 1", "mem_gb: 2.0",
                      "slurm_max_num_timeout: 5"):
        assert parameter in out
    assert not (tmp_path / "results").exists()


def test_finished_runs_are_skipped(tmp_path, image_folder, capsys, monkeypatch):
    path = write_ablation(tmp_path, image_folder)
    results = tmp_path / "results"
    assert sweep(path, results, "--executor", "debug") == 0
    runs = load_ablation(path).runs
    for run in runs:
        assert (results / "tiny" / run.dir_name / "DONE").exists()
    assert "2 done (of 2 runs)" in capsys.readouterr().out

    monkeypatch.setattr("bench.sweep.job.train", lambda *a, **k: pytest.fail("a finished run was submitted again"))
    assert sweep(path, results, "--executor", "debug") == 0
    assert "nothing to submit" in capsys.readouterr().out
    assert sweep(path, results, "--executor", "debug", "--dry-run") == 0
    assert capsys.readouterr().out.count("skip: done") == 2


def test_a_new_grid_value_adds_only_its_run(tmp_path, image_folder, monkeypatch):
    results = tmp_path / "results"
    sweep(write_ablation(tmp_path, image_folder, grid={"generator.ngf": [8]}), results, "--executor", "debug")
    trained = []
    monkeypatch.setattr("bench.sweep.job.train", lambda config, run_dir, **k: trained.append(config.generator.ngf)
                        or {"state": "done"})
    sweep(write_ablation(tmp_path, image_folder, grid={"generator.ngf": [8, 12]}), results, "--executor", "debug")
    assert trained == [12]


def test_a_run_another_study_has_finished_is_copied_in_not_trained_again(tmp_path, image_folder, monkeypatch,
                                                                          capsys):
    results = tmp_path / "results"
    # study "first" finishes both skip settings; study "second" shares the skips=true run and adds ngf 12
    sweep(write_ablation(tmp_path, image_folder, name="first"), results, "--executor", "debug")
    shared = next(run for run in load_ablation(tmp_path / "first.yaml").runs
                  if run.point["generator.skip_connections"])
    source = AblationResults(results / "first").run_dir(shared)
    assert (source / "DONE").is_file()
    second = write_ablation(tmp_path, image_folder, name="second",
                            grid={"generator.skip_connections": [True], "generator.ngf": [8, 12]})
    assert shared.run_id in {run.run_id for run in load_ablation(second).runs}
    capsys.readouterr()
    assert sweep(second, results, "--executor", "debug", "--dry-run") == 0
    assert f"{shared.run_id}: finished in first; would be copied from {source}" in capsys.readouterr().out
    assert not (results / "second").exists()  # a dry run copies nothing

    trained = []
    monkeypatch.setattr("bench.sweep.job.train", lambda config, run_dir, **k: trained.append(config.generator.ngf)
                        or {"state": "done"})
    sweep(second, results, "--executor", "debug")
    assert trained == [12]  # only the run no folder has finished
    copied = AblationResults(results / "second").run_dir(shared)
    assert copied.parent == results / "second" and (copied / "DONE").is_file()
    files = sorted(p.relative_to(source) for p in source.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(copied) for p in copied.rglob("*") if p.is_file())
    for name in files:  # the same bytes and the same file times (compute.json reads a run's time from them)
        assert (copied / name).read_bytes() == (source / name).read_bytes()
        assert (copied / name).stat().st_mtime == (source / name).stat().st_mtime
    assert not list((results / "second").glob(".*partial"))
    assert collect_status(AblationResults(results / "second"), [shared])[0].state == "done"


def test_unfinished_or_failed_runs_elsewhere_are_not_copied_and_no_reuse_trains_again(tmp_path, image_folder,
                                                                                        monkeypatch):
    results = tmp_path / "results"
    sweep(write_ablation(tmp_path, image_folder, name="first"), results, "--executor", "debug")
    runs = load_ablation(tmp_path / "first.yaml").runs
    unfinished, failed = (AblationResults(results / "first").run_dir(run) for run in runs)
    (unfinished / "DONE").unlink()
    (failed / "FAILED").write_text("diverged\n")
    second = write_ablation(tmp_path, image_folder, name="second")  # the same two runs under another name
    trained = []
    monkeypatch.setattr("bench.sweep.job.train", lambda config, run_dir, **k: trained.append(Path(run_dir).name)
                        or {"state": "done"})
    sweep(second, results, "--executor", "debug")
    assert sorted(trained) == sorted(run.dir_name for run in runs)
    # finished in "first" now, but --no-reuse trains them here anyway
    shutil.rmtree(results / "second")
    (unfinished / "DONE").write_text("done\n")
    (failed / "FAILED").unlink()
    trained.clear()
    sweep(second, results, "--executor", "debug", "--no-reuse")
    assert sorted(trained) == sorted(run.dir_name for run in runs)


def _claim(run_dir, run_id, config):
    run_dir.mkdir(parents=True)
    data = run_id.split("-")[1]  # bench.run.identity: <config hash>-<data id>-s<seed>
    (run_dir / "config.yaml").write_text(yaml.safe_dump({"run_id": run_id, "data_id": data,
                                                         "config": config_to_dict(config)}))


def test_a_directory_holding_another_run_is_refused_and_left_alone(tmp_path, image_folder, capsys):
    path = write_ablation(tmp_path, image_folder)
    first, second = load_ablation(path).runs
    folder = tmp_path / "results" / "tiny"
    _claim(folder / first.dir_name, second.run_id, second.config)  # another run under first's name
    _claim(folder / f"{second.run_id}-renamed", second.run_id, first.config)  # config of another run
    before = {p: p.read_text() for p in folder.rglob("*") if p.is_file()}
    assert sweep(path, tmp_path / "results", "--executor", "debug") == 2
    err = capsys.readouterr().err
    assert f"{folder / first.dir_name}: holds run '{second.run_id}', not '{first.run_id}'" in err
    assert (f"{second.run_id}-renamed: config.yaml says run '{second.run_id}' "
            f"but its config is run '{first.run_id}'") in err
    assert {p: p.read_text() for p in folder.rglob("*") if p.is_file()} == before
    assert main(["status", str(path), "--results", str(tmp_path / "results")]) == 1  # shown as broken, with why
    assert f"reason: {folder / first.dir_name}: holds run '{second.run_id}'" in capsys.readouterr().out


def test_two_directories_of_one_run_are_refused(tmp_path, image_folder, capsys):
    path = write_ablation(tmp_path, image_folder)
    run = load_ablation(path).runs[0]
    folder = tmp_path / "results" / "tiny"
    (folder / f"{run.run_id}-a").mkdir(parents=True)
    (folder / f"{run.run_id}-b").mkdir()
    assert sweep(path, tmp_path / "results", "--executor", "debug") == 2
    assert f"run {run.run_id} has 2 directories: {run.run_id}-a, {run.run_id}-b" in capsys.readouterr().err


def test_a_run_is_found_by_its_id_whatever_its_suffix(tmp_path, image_folder, monkeypatch):
    path = write_ablation(tmp_path, image_folder)
    run = load_ablation(path).runs[1]
    renamed = tmp_path / "results" / "tiny" / f"{run.run_id}-an-older-name"
    train(run.config, renamed)
    monkeypatch.setattr("bench.sweep.job.train", lambda config, run_dir, **k: {"state": "done"})
    sweep(path, tmp_path / "results", "--executor", "debug")
    assert not (tmp_path / "results" / "tiny" / run.dir_name).exists()
    statuses = collect_status(AblationResults(tmp_path / "results" / "tiny"), [run])
    assert statuses[0].state == "done" and statuses[0].run_dir == renamed


def test_local_executor_one_run_raising_leaves_the_other_three_finished(tmp_path, image_folder, capsys):
    """min_side 100000 skips every image, so that run raises DatasetError inside its job."""
    path = write_ablation(tmp_path, image_folder, grid={"data.min_side": [16, 24, 32, 100000]})
    results = tmp_path / "results"
    assert sweep(path, results, "--executor", "local", "--max-parallel", "4") == 1
    out = capsys.readouterr().out
    runs = load_ablation(path).runs
    failing = runs[3]
    for run in runs[:3]:
        assert (results / "tiny" / run.dir_name / "DONE").exists()
    assert not (results / "tiny" / failing.dir_name / "DONE").exists()
    assert "3 done, 1 failed (of 4 runs)" in out

    assert main(["status", str(results / "tiny")]) == 1
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith(failing.run_id))
    assert row.split()[2] == "failed" and "data.min_side=100000" in row
    assert "reason: bench.data.errors.DatasetError: no usable image for the train and test split" in out
    assert "last lines of " in out and "| bench.data.errors.DatasetError: no usable image" in out
    for run in runs[:3]:
        assert next(line for line in out.splitlines() if line.startswith(run.run_id)).split()[2:4] == ["done", "2/2"]

    # failed runs are submitted again only when asked
    assert sweep(path, results, "--executor", "debug") == 1
    assert "nothing to submit" in capsys.readouterr().out
    assert sweep(path, results, "--executor", "debug", "--rerun-failed") == 1
    latest = AblationResults(results / "tiny").latest_jobs()[failing.run_id]
    assert latest["executor"] == "debug" and latest["error"].startswith("DatasetError: no usable image")


def test_a_diverged_run_is_reported_and_continues_when_rerun(tmp_path, image_folder, monkeypatch, capsys):
    path = write_ablation(tmp_path, image_folder, grid={"generator.ngf": [8]}, steps=4)
    real = bench.training.step.reconstruction_loss
    calls = {"n": 0}

    def exploding(kind, output, target):
        calls["n"] += 1
        return real(kind, output, target) * (float("nan") if calls["n"] == 3 else 1.0)

    monkeypatch.setattr("bench.training.step.reconstruction_loss", exploding)
    results = tmp_path / "results"
    assert sweep(path, results, "--executor", "debug") == 1
    out = capsys.readouterr().out
    assert "diverged" in out and "reason: non-finite loss g_rec at step 2" in out
    assert main(["status", str(path), "--results", str(results)]) == 1

    monkeypatch.setattr("bench.training.step.reconstruction_loss", real)
    assert sweep(path, results, "--executor", "debug", "--rerun-failed") == 0
    (run,) = load_ablation(path).runs
    run_dir = results / "tiny" / run.dir_name
    assert (run_dir / "DONE").exists() and len(list(run_dir.glob("FAILED.*"))) == 1  # kept, under another name
    assert [r["step"] for r in rundir.read_jsonl(run_dir / "stats.jsonl")] == [1, 2, 3, 4]


def test_status_of_queued_running_and_vanished_local_jobs(tmp_path, image_folder, capsys):
    path = write_ablation(tmp_path, image_folder, grid={"generator.ngf": [8, 12, 16, 20]})
    ablation = load_ablation(path)
    folder = AblationResults(tmp_path / "results" / "tiny")
    folder.write_snapshot(ablation)
    queued, running, vanished, reused = ablation.runs
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        me = {"pid": os.getpid(), "pid_start": process_start_time(os.getpid())}
        folder.record_job(queued, executor="local", job_id=None, folder=str(tmp_path), **me)
        folder.record_job(running, executor="local", job_id=str(sleeper.pid), folder=str(tmp_path), pid=sleeper.pid,
                          pid_start=process_start_time(sleeper.pid))
        folder.record_job(vanished, executor="local", job_id="999999", folder=str(tmp_path), pid=999999, pid_start=1)
        folder.record_job(reused, executor="local", job_id=str(os.getpid()), folder=str(tmp_path), pid=os.getpid(),
                          pid_start=me["pid_start"] - 1)  # this PID, but not the process that was recorded
        states = [s.state for s in collect_status(folder, ablation.runs)]
        assert states == ["pending", "running", "failed", "failed"]
    finally:
        sleeper.kill()
        sleeper.wait()
    assert [s.state for s in collect_status(folder, ablation.runs)][:2] == ["pending", "failed"]
    statuses = collect_status(folder, ablation.runs)
    assert statuses[2].reason == "job 999999 (local) ended without finishing the run (no result)"
    assert main(["status", "--results", str(tmp_path / "results")]) == 1
    assert "ablation tiny: " in capsys.readouterr().out


def test_status_command_targets(tmp_path, image_folder, capsys):
    path = write_ablation(tmp_path, image_folder)
    results = tmp_path / "results"
    assert main(["status", str(path), "--results", str(results)]) == 0
    out = capsys.readouterr().out
    assert "2 missing (of 2 runs)" in out
    assert main(["status", "--results", str(results)]) == 2
    assert "no ablation results here" in capsys.readouterr().err
    assert main(["status", str(tmp_path / "nothing.yaml")]) == 2
    assert "nothing.yaml: no such ablation file or results folder" in capsys.readouterr().err
    sweep(path, results, "--executor", "debug")
    capsys.readouterr()
    assert main(["status", str(results / "tiny")]) == 0
    assert "2 done (of 2 runs)" in capsys.readouterr().out
    assert main(["status", str(results / "tiny"), "--set", "optim.steps=3"]) == 2
    assert main(["status", str(tmp_path)]) == 2
    assert "not an ablation's results folder" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["sweep", "x.yaml", "--max-parallel", "0"], "--max-parallel: got '0'; allowed: an integer >= 1"),
    (["sweep", "x.yaml", "--executor", "cloud"], "invalid choice: 'cloud'"),
    (["sweep", "x.yaml", "--max-num-timeout", "-1"], "--max-num-timeout: got '-1'"),
])
def test_bad_arguments_exit_2(argv, message, capsys):
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2 and message in capsys.readouterr().err


def test_bad_ablation_file_exits_2_before_anything_is_written(tmp_path, image_folder, capsys):
    path = write_ablation(tmp_path, image_folder, grid={"generator.norm": ["batch", "layer"]})
    assert sweep(path, tmp_path / "results", "--executor", "local") == 2
    assert f"{path}: grid point {{generator.norm: layer}}: generator.norm: got 'layer'" in capsys.readouterr().err
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("command", ["sweep", "status"])
def test_help(command, capsys):
    with pytest.raises(SystemExit) as exited:
        main([command, "--help"])
    assert exited.value.code == 0 and f"usage: colorbench {command}" in capsys.readouterr().out


def test_the_requeue_path_looks_for_the_file_the_trainer_writes(image_folder, tmp_path):
    run_dir = tmp_path / "run"
    config = config_from_dict(tiny_base(image_folder, steps=4))
    train(config, run_dir, stop_after_step=1)
    written = [p for p in run_dir.rglob("*") if p.is_file() and p.suffix in (".pt", ".pth", ".ckpt")]
    assert written == [resume_file(run_dir)]
    assert load_checkpoint(resume_file(run_dir))["step"] == 1


def test_usr2_mid_step_saves_that_step_and_the_requeued_job_resumes_there(image_folder, tmp_path, monkeypatch,
                                                                          capsys):
    """submitit's own signal handler, as a job process has it; USR2 arrives inside step index 2."""
    config = tiny_base(image_folder, steps=6)
    train(config_from_dict(config), tmp_path / "whole")
    run_dir = tmp_path / "run"
    monkeypatch.setenv("SUBMITIT_LOCAL_JOB_ID", "7")
    paths = JobPaths(tmp_path / "submitit", job_id="7")
    paths.folder.mkdir(parents=True)
    delayed = DelayedSubmission(TrainJob(), config, str(run_dir))
    delayed.set_timeout(60, 3)
    handler = SignalHandler(LocalJobEnvironment(), paths, delayed)

    real_step, steps = bench.training.train.train_step, []

    def step_receiving_usr2(*args, **kwargs):
        steps.append(kwargs["step"])
        if kwargs["step"] == 2:
            os.kill(os.getpid(), signal.SIGUSR2)
        return real_step(*args, **kwargs)

    monkeypatch.setattr("bench.training.train.train_step", step_receiving_usr2)
    previous = signal.signal(signal.SIGUSR2, handler.checkpoint_and_try_requeue)
    try:
        with pytest.raises(SystemExit) as exited:
            delayed.result()
    finally:
        signal.signal(signal.SIGUSR2, previous)
    assert exited.value.code == LOCAL_REQUEUE_RETURN_CODE  # submitit requeued it
    assert steps == [0, 1, 2] and load_checkpoint(resume_file(run_dir))["step"] == 3  # the step it was in, finished
    assert f"requeueing; the job resumes from {resume_file(run_dir)}" in capsys.readouterr().out

    steps.clear()
    summary = DelayedSubmission.load(paths.submitted_pickle).result()  # what the requeued job runs
    assert steps == [3, 4, 5] and summary["state"] == "done"
    assert f"resuming from {resume_file(run_dir)}" in capsys.readouterr().out
    whole, resumed = (load_checkpoint(d / "checkpoint.pt")["generator"] for d in (tmp_path / "whole", run_dir))
    assert all(torch.equal(whole[k], resumed[k]) for k in whole)
    assert json.loads((run_dir / "DONE").read_text())["metrics"] == json.loads(
        (tmp_path / "whole" / "DONE").read_text())["metrics"]
