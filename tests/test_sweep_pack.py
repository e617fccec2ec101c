"""K runs packed into one job (``--runs-per-task``, ``slurm.runs_per_task``): each in its own process, with its own
directory, resume, outcome and status; equal to the same runs unpacked."""
import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
import yaml
from submitit.core.job_environment import SignalHandler
from submitit.core.utils import DelayedSubmission, JobPaths
from submitit.local.local import LOCAL_REQUEUE_RETURN_CODE, LocalJobEnvironment
from test_sweep import sweep, tiny_base, write_ablation

from bench.cli import main
from bench.run import rundir
from bench.run.checkpoint import load_checkpoint
from bench.run.compare import run_differences
from bench.sweep.ablation import load_ablation
from bench.sweep.job import PackedTrainJob
from bench.sweep.results import AblationResults
from bench.sweep.status import collect_status, process_start_time


def _row(out, run):
    return next(line for line in out.splitlines() if line.startswith(run.run_id)).split()


def test_packed_runs_equal_the_same_runs_unpacked(tmp_path, image_folder, capsys):
    path = write_ablation(tmp_path, image_folder, grid={"generator.ngf": [8, 12]}, steps=4,
                          slurm={"runs_per_task": 2})
    assert sweep(path, tmp_path / "packed", "--executor", "local") == 0
    assert "2 done (of 2 runs)" in capsys.readouterr().out
    assert sweep(path, tmp_path / "unpacked", "--executor", "local", "--runs-per-task", "1", "--max-parallel",
                 "2") == 0
    packed, unpacked = AblationResults(tmp_path / "packed" / "tiny"), AblationResults(tmp_path / "unpacked" / "tiny")
    runs = load_ablation(path).runs
    jobs = packed.latest_jobs()
    assert len({jobs[run.run_id]["job_id"] for run in runs}) == 1  # one job ran both
    assert sorted(jobs[run.run_id]["pack"]["slot"] for run in runs) == [0, 1]
    assert len({unpacked.latest_jobs()[run.run_id]["job_id"] for run in runs}) == 2
    for run in runs:
        assert run_differences(packed.run_dir(run), unpacked.run_dir(run)) == []  # bit for bit, every file
        environment = yaml.safe_load((packed.run_dir(run) / "config.yaml").read_text())["environment"]
        assert environment["gpu_path"]["packed"] in ("0/2", "1/2")
        assert yaml.safe_load((unpacked.run_dir(run) / "config.yaml").read_text())["environment"]["gpu_path"][
            "packed"] is None
        folder = jobs[run.run_id]["folder"]  # the run's own logs, under submitit's names
        assert "resuming from" not in (JobPaths(folder, jobs[run.run_id]["job_id"]).stdout).read_text()


def test_a_failing_packed_run_leaves_its_neighbour_finished_and_status_shows_each_runs_own_state(
        tmp_path, image_folder, capsys):
    """min_side 100000 skips every image: that run raises DatasetError in its own process."""
    path = write_ablation(tmp_path, image_folder, grid={"data.min_side": [16, 100000]})
    results = tmp_path / "results"
    assert sweep(path, results, "--executor", "local", "--runs-per-task", "2") == 1
    capsys.readouterr()
    good, bad = load_ablation(path).runs
    assert (results / "tiny" / good.dir_name / "DONE").exists()
    assert main(["status", str(results / "tiny")]) == 1
    out = capsys.readouterr().out
    assert _row(out, good)[2:4] == ["done", "2/2"] and _row(out, bad)[2] == "failed"
    assert "reason: bench.data.errors.DatasetError: no usable image for the train and test split" in out
    job = AblationResults(results / "tiny").latest_jobs()[bad.run_id]
    own_stderr = JobPaths(job["folder"], job_id=job["job_id"]).stderr
    assert f"last lines of {own_stderr}:" in out and "| bench.data.errors.DatasetError: no usable image" in out
    assert good.run_id not in own_stderr.read_text()  # its own process's stderr, not the job's
    # the job itself ended failed, naming the run (on SLURM its accounting says FAILED)
    job_err = JobPaths(job["pack"]["job_folder"], job_id=job["job_id"]).stderr.read_text()
    assert "PackedRunsFailed: 1 of 2 packed runs failed" in job_err and bad.run_id in job_err


def test_a_packed_run_that_ended_shows_its_own_state_while_its_job_still_runs(tmp_path, image_folder):
    path = write_ablation(tmp_path, image_folder, grid={"generator.ngf": [8, 12, 16]})
    ablation = load_ablation(path)
    folder = AblationResults(tmp_path / "results" / "tiny")
    folder.write_snapshot(ablation)
    failed, running, interrupted = ablation.runs
    job = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])  # the job's process, alive
    try:
        alive = {"pid": job.pid, "pid_start": process_start_time(job.pid), "job_id": str(job.pid)}
        own = {}
        for slot, run in enumerate(ablation.runs):
            own[run.run_id] = folder.root / "submitit" / "s" / "packed" / run.run_id
            own[run.run_id].mkdir(parents=True)
            folder.record_job(run, executor="local", folder=str(own[run.run_id]),
                              pack={"slot": slot, "size": 3, "job_folder": str(folder.root / "submitit" / "s")},
                              **alive)
        rundir.write_json(own[failed.run_id] / f"{job.pid}_0_outcome.json",
                          {"outcome": "error", "error": "RuntimeError: out of memory"})
        (own[failed.run_id] / f"{job.pid}_0_log.err").write_text("Traceback\nRuntimeError: out of memory\n")
        rundir.write_json(own[interrupted.run_id] / f"{job.pid}_0_outcome.json",
                          {"outcome": "success", "state": "interrupted", "step": 1, "total_steps": 2,
                           "signal": "SIGTERM"})
        states = {s.run.run_id: s for s in collect_status(folder, ablation.runs)}
        assert states[running.run_id].state == "running"
        assert states[failed.run_id].state == "failed" and states[failed.run_id].reason == \
            "RuntimeError: out of memory"
        assert states[failed.run_id].stderr_tail == ["Traceback", "RuntimeError: out of memory"]
        assert states[interrupted.run_id].state == "interrupted"
    finally:
        job.kill()
        job.wait()


def test_runs_per_task_in_the_dry_run_and_bad_values_exit_2(tmp_path, image_folder, capsys):
    path = write_ablation(tmp_path, image_folder, grid={"generator.ngf": [8, 12, 16]}, seeds=[0, 1],
                          slurm={"runs_per_task": 4, "cpus": 8})
    assert sweep(path, tmp_path / "results", "--dry-run", "--executor", "slurm") == 0
    out = capsys.readouterr().out
    assert "4 runs per task, each in its own process, sharing the task's GPU and CPUs: 2 task(s)" in out
    assert "runs_per_task: 4 (2 torch thread(s) per run)" in out
    assert sweep(path, tmp_path / "results", "--dry-run", "--executor", "slurm", "--runs-per-task", "3") == 0
    assert ": 2 task(s)" in capsys.readouterr().out
    assert sweep(path, tmp_path / "results", "--dry-run", "--executor", "slurm", "--runs-per-task", "1") == 0
    assert "runs per task" not in capsys.readouterr().out

    bad = write_ablation(tmp_path, image_folder, name="bad", slurm={"runs_per_task": 0})
    assert sweep(bad, tmp_path / "results") == 2
    err = capsys.readouterr().err
    assert "slurm.runs_per_task: got 0; allowed: an integer >= 1" in err and len(err.strip().splitlines()) == 1
    with pytest.raises(SystemExit) as exited:
        sweep(path, tmp_path / "results", "--runs-per-task", "0")
    assert exited.value.code == 2


def test_usr2_stops_every_packed_run_at_a_step_and_the_requeued_task_resumes_them(image_folder, tmp_path,
                                                                                   monkeypatch, capsys):
    """submitit's own signal handler, as a job process has it; USR2 once both runs have trained a step."""
    configs = [dict(tiny_base(image_folder, steps=80), generator={"depth": 5, "ngf": ngf}) for ngf in (8, 12)]
    for config in configs:
        config["eval"] = {"every_epochs": 0, "n_sample_images": 2, "metrics": ["psnr_rgb8"]}
        config["checkpoint_every"] = 10000
    runs = [{"config": config, "run_dir": str(tmp_path / f"run{i}"), "threads": 1, "run_id": None,
             "folder": str(tmp_path / "submitit" / "packed" / f"run{i}")} for i, config in enumerate(configs)]
    monkeypatch.setenv("SUBMITIT_EXECUTOR", "local")
    monkeypatch.setenv("SUBMITIT_LOCAL_JOB_ID", "7")
    paths = JobPaths(tmp_path / "submitit", job_id="7")
    paths.folder.mkdir(parents=True, exist_ok=True)
    delayed = DelayedSubmission(PackedTrainJob(), runs)
    delayed.set_timeout(60, 3)
    handler = SignalHandler(LocalJobEnvironment(), paths, delayed)

    def preempt_once_both_train():
        stats = [tmp_path / f"run{i}" / "stats.jsonl" for i in range(2)]
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not all(p.exists() and p.stat().st_size > 0 for p in stats):
            time.sleep(0.1)
        os.kill(os.getpid(), signal.SIGUSR2)

    previous = signal.signal(signal.SIGUSR2, handler.checkpoint_and_try_requeue)
    sender = threading.Thread(target=preempt_once_both_train)
    sender.start()
    try:
        with pytest.raises(SystemExit) as exited:
            delayed.result()
    finally:
        sender.join()
        signal.signal(signal.SIGUSR2, previous)
    assert exited.value.code == LOCAL_REQUEUE_RETURN_CODE  # submitit requeued the task
    assert "requeueing 2 packed runs" in capsys.readouterr().out
    stopped = [load_checkpoint(tmp_path / f"run{i}" / "checkpoint.pt")["step"] for i in range(2)]
    assert all(1 <= step < 80 for step in stopped)  # each saved the step it was in
    for i in range(2):
        assert not (tmp_path / f"run{i}" / "DONE").exists()
        assert not (tmp_path / "submitit" / "packed" / f"run{i}" / "7_0_outcome.json").exists()  # not ended

    summaries = DelayedSubmission.load(paths.submitted_pickle).result()  # what the requeued task runs
    assert [s["state"] for s in summaries] == ["done", "done"]
    for i, config in enumerate(configs):
        log = (tmp_path / "submitit" / "packed" / f"run{i}" / "7_0_log.out").read_text()
        assert f"stopped at step {stopped[i]} of 80" in log and "resuming from" in log
        steps = [r["step"] for r in rundir.read_jsonl(tmp_path / f"run{i}" / "stats.jsonl")]
        assert steps == list(range(1, 81))  # resumed, not restarted
        outcome = json.loads((tmp_path / "submitit" / "packed" / f"run{i}" / "7_0_outcome.json").read_text())
        assert outcome == {"outcome": "success", "state": "done", "step": 80, "total_steps": 80}
