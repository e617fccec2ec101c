"""Sweeps on a real SLURM (.ci/slurm/start.sh): a grid, a USR2 preemption, a failing job.

These run where the SLURM of .ci/slurm/start.sh (or any SLURM with accounting) answers;
elsewhere they skip, with the reason, except under CI=true, where they must run.
"""
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import torch
import yaml
from test_sweep import tiny_base

from bench.cli import main
from bench.run import rundir
from bench.run.checkpoint import load_checkpoint
from bench.run.compare import run_differences
from bench.sweep.ablation import load_ablation
from bench.sweep.job import resume_file
from bench.sweep.results import AblationResults
from bench.sweep.status import collect_status

pytestmark = pytest.mark.slurm

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SLURM_CONF = Path(os.environ.get("COLORBENCH_SLURM_DIR", "/tmp/colorbench-slurm")) / "etc" / "slurm.conf"
JOB_TIMEOUT_S = 300


def _slurm_problem() -> str | None:
    if not shutil.which("sbatch") or not shutil.which("sacct"):
        return "the SLURM client commands (sbatch, sacct) are not installed"
    try:
        info = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, timeout=20)
        accounting = subprocess.run(["sacct", "-n", "-X", "-S", "now"], capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        return "sinfo/sacct did not answer within 20 s"
    if info.returncode != 0 or not info.stdout.strip():
        return f"no SLURM controller answers ({_last_line(info.stderr) or 'no partition'})"
    if accounting.returncode != 0:
        return f"SLURM has no accounting, so submitit cannot read job states ({_last_line(accounting.stderr)})"
    return None


def _last_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[-1] if lines else ""


@pytest.fixture(scope="module", autouse=True)
def slurm_cluster():
    patch = pytest.MonkeyPatch()
    if "SLURM_CONF" not in os.environ and DEFAULT_SLURM_CONF.exists():
        patch.setenv("SLURM_CONF", str(DEFAULT_SLURM_CONF))
    problem = _slurm_problem()
    if problem:
        patch.undo()
        message = f"SLURM not available: {problem}; start one with `bash .ci/slurm/start.sh`"
        if os.environ.get("CI") == "true":
            pytest.fail(message + " (CI=true: the slurm tests must run)")
        pytest.skip(message)
    yield
    patch.undo()


def _write(path: Path, name: str, base: dict, grid: dict, **extra) -> Path:
    data = {"name": name, "base": base, "grid": grid, "slurm": {"time": "0:20:00", "cpus": 1, "mem": "2G"}, **extra}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _wait(predicate, what: str, timeout_s: float = JOB_TIMEOUT_S, poll_s: float = 1.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll_s)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


def _ended(folder: AblationResults, run):
    """The run's status once it is neither pending nor running, else None."""
    status = collect_status(folder, [run])[0]
    return None if status.state in ("pending", "running") else status


def _job_states(job_id: str) -> list[str]:
    """Every attempt's state, as SLURM's accounting has them."""
    command = ["sacct", "-j", job_id, "--duplicates", "-X", "-n", "-o", "State"]
    return subprocess.run(command, capture_output=True, text=True, check=True, timeout=30).stdout.split()


def test_the_smoke_grid_runs_as_one_job_array_and_a_second_sweep_submits_nothing(tmp_path, capsys):
    smoke = REPO / "ablations" / "smoke.yaml"
    shrink = ["--set", "optim.steps=3", "--set", "eval.every_epochs=0"]  # the file's grid and seeds, 3 steps each
    results = tmp_path / "results"
    assert main(["sweep", str(smoke), "--executor", "slurm", "--results", str(results), "--wait", *shrink]) == 0
    out = capsys.readouterr().out
    assert "8 done (of 8 runs)" in out

    ablation = load_ablation(smoke, shrink[1::2])
    folder = AblationResults(results / "smoke")
    jobs = folder.latest_jobs()
    assert {job["executor"] for job in jobs.values()} == {"slurm"}
    assert len({job["job_id"].split("_")[0] for job in jobs.values()}) == 1  # one array
    for run in ablation.runs:
        done = rundir.read_json(results / "smoke" / run.dir_name / "DONE")
        assert done["run_id"] == run.run_id and done["step"] == done["total_steps"] == 3
        assert 5 < done["metrics"]["psnr_rgb8"] < 60 and 0 < done["metrics"]["ssim_rgb8"] <= 1
        meta = yaml.safe_load((results / "smoke" / run.dir_name / "config.yaml").read_text())
        assert meta["config"]["generator"]["skip_connections"] == run.point["generator.skip_connections"]
        assert meta["config"]["loss"]["adversarial"] == run.point["loss.adversarial"]

    assert main(["sweep", str(smoke), "--executor", "slurm", "--results", str(results), *shrink]) == 0
    assert "nothing to submit" in capsys.readouterr().out
    assert folder.latest_jobs() == jobs


def test_usr2_preempts_a_running_job_which_resumes_from_its_checkpoint_to_the_same_metrics(image_folder, tmp_path):
    base = {**tiny_base(image_folder, steps=150), "eval": {"every_epochs": 0, "n_sample_images": 2}}
    grid = {"generator.ngf": [8]}
    results = tmp_path / "results"
    paths = [_write(tmp_path / f"{name}.yaml", name, base, grid) for name in ("preempted", "whole")]
    for path in paths:
        assert main(["sweep", str(path), "--executor", "slurm", "--results", str(results)]) == 0
    (run,) = load_ablation(paths[0]).runs
    folder = AblationResults(results / "preempted")
    run_dir, job = folder.run_dir(run), folder.latest_jobs()[run.run_id]

    stats = run_dir / "stats.jsonl"
    _wait(lambda: stats.exists() and len(list(rundir.read_jsonl(stats))) >= 10, "the job to train 10 steps",
          poll_s=0.2)
    assert collect_status(folder, [run])[0].state == "running"
    subprocess.run(["scancel", "--signal=USR2", job["job_id"]], check=True, timeout=30)

    status = _wait(lambda: _ended(folder, run), "the preempted job to finish")
    assert status.state == "done", status.reason
    log = (Path(job["folder"]) / f"{job['job_id']}_0_log.out").read_text()
    stopped_at = int(log.split("preempted; stopped at step ")[1].split()[0])
    assert 10 <= stopped_at < 150
    assert f"requeueing; the job resumes from {resume_file(run_dir)}" in log
    assert f"resuming from {resume_file(run_dir)}" in log
    states = _wait(lambda: _job_states(job["job_id"])[-1] == "COMPLETED" and _job_states(job["job_id"]),
                   "SLURM to record the job as completed")
    assert states == ["REQUEUED", "COMPLETED"]  # one attempt preempted and requeued, the next one finished
    assert [r["step"] for r in rundir.read_jsonl(stats)] == list(range(1, 151))  # resumed, not restarted

    whole = AblationResults(results / "whole")
    assert _wait(lambda: _ended(whole, run), "the uninterrupted job").state == "done"
    whole_dir = whole.run_dir(run)
    assert rundir.read_json(run_dir / "DONE")["metrics"] == rundir.read_json(whole_dir / "DONE")["metrics"]
    assert list(rundir.read_jsonl(run_dir / "metrics.jsonl")) == list(rundir.read_jsonl(whole_dir / "metrics.jsonl"))
    a, b = (load_checkpoint(d / "checkpoint.pt")["generator"] for d in (run_dir, whole_dir))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_status_reports_a_failing_job_with_its_reason_and_stderr(image_folder, tmp_path, capsys):
    """min_side 100000 skips every image: that job raises DatasetError; the other run finishes."""
    path = _write(tmp_path / "failing.yaml", "failing", tiny_base(image_folder, steps=2),
                  {"data.min_side": [16, 100000]})
    results = tmp_path / "results"
    assert main(["sweep", str(path), "--executor", "slurm", "--results", str(results), "--wait"]) == 1
    capsys.readouterr()
    assert main(["status", str(results / "failing")]) == 1
    out = capsys.readouterr().out
    good, bad = load_ablation(path).runs
    assert next(line for line in out.splitlines() if line.startswith(good.run_id)).split()[2] == "done"
    assert next(line for line in out.splitlines() if line.startswith(bad.run_id)).split()[2] == "failed"
    assert "reason: bench.data.errors.DatasetError: no usable image for the train and test split" in out
    job_id = AblationResults(results / "failing").latest_jobs()[bad.run_id]["job_id"]
    assert f"last lines of {results / 'failing' / 'submitit'}" in out and f"{job_id}_0_log.err:" in out
    assert "| bench.data.errors.DatasetError: no usable image" in out


def test_two_runs_packed_into_one_array_task_each_keep_their_own_state_and_equal_the_run_alone(image_folder, tmp_path,
                                                                                               capsys):
    """slurm.runs_per_task 2: one array task trains both runs, each in its own process; min_side 100000 makes one
    of them raise DatasetError in its process, and the other finishes equal to the same run swept alone."""
    slurm = {"time": "0:20:00", "cpus": 1, "mem": "2G", "runs_per_task": 2}
    base = tiny_base(image_folder, steps=3)
    path = _write(tmp_path / "packed.yaml", "packed", base, {"data.min_side": [16, 100000]}, slurm=slurm)
    alone = _write(tmp_path / "alone.yaml", "alone", base, {"data.min_side": [16]})
    results = tmp_path / "results"
    assert main(["sweep", str(path), "--executor", "slurm", "--results", str(results), "--wait"]) == 1
    assert main(["sweep", str(alone), "--executor", "slurm", "--results", str(results), "--wait"]) == 0
    good, bad = load_ablation(path).runs
    folder = AblationResults(results / "packed")
    jobs = folder.latest_jobs()
    assert jobs[good.run_id]["job_id"] == jobs[bad.run_id]["job_id"]  # one array task ran both
    assert sorted(jobs[run.run_id]["pack"]["slot"] for run in (good, bad)) == [0, 1]
    capsys.readouterr()

    assert main(["status", str(results / "packed")]) == 1
    out = capsys.readouterr().out
    assert next(line for line in out.splitlines() if line.startswith(good.run_id)).split()[2:4] == ["done", "3/3"]
    assert next(line for line in out.splitlines() if line.startswith(bad.run_id)).split()[2] == "failed"
    assert "reason: bench.data.errors.DatasetError: no usable image for the train and test split" in out
    own = jobs[bad.run_id]
    assert f"last lines of {Path(own['folder']) / (own['job_id'] + '_0_log.err')}:" in out  # its own process's
    assert "| bench.data.errors.DatasetError: no usable image" in out
    # submitit writes the task's result file, which ends --wait, before the task's traceback reaches its log and
    # before the task exits, so the log and SLURM's record of the task are awaited, not read once
    job_log = Path(own["pack"]["job_folder"]) / f"{own['job_id']}_0_log.err"
    _wait(lambda: "PackedRunsFailed: 1 of 2 packed runs failed" in job_log.read_text(), f"the traceback in {job_log}")
    _wait(lambda: _job_states(own["job_id"]) == ["FAILED"], "SLURM to record the task as failed")

    (run,) = load_ablation(alone).runs
    assert run.run_id == good.run_id
    assert run_differences(folder.run_dir(good), AblationResults(results / "alone").run_dir(run)) == []


def test_usr2_preempts_a_packed_task_whose_runs_each_save_their_step_and_resume_after_the_requeue(image_folder,
                                                                                                   tmp_path):
    base = {**tiny_base(image_folder, steps=150), "eval": {"every_epochs": 0, "n_sample_images": 2}}
    slurm = {"time": "0:20:00", "cpus": 1, "mem": "2G", "runs_per_task": 2}
    path = _write(tmp_path / "packed.yaml", "packed", base, {"generator.ngf": [8, 12]}, slurm=slurm)
    results = tmp_path / "results"
    assert main(["sweep", str(path), "--executor", "slurm", "--results", str(results)]) == 0
    runs = load_ablation(path).runs
    folder = AblationResults(results / "packed")
    jobs = folder.latest_jobs()
    (job_id,) = {jobs[run.run_id]["job_id"] for run in runs}
    stats = [folder.run_dir(run) / "stats.jsonl" for run in runs]
    _wait(lambda: all(p.exists() and len(list(rundir.read_jsonl(p))) >= 10 for p in stats),
          "both packed runs to train 10 steps", poll_s=0.2)
    assert [s.state for s in collect_status(folder, runs)] == ["running", "running"]
    subprocess.run(["scancel", "--signal=USR2", job_id], check=True, timeout=30)

    for run in runs:
        status = _wait(lambda: _ended(folder, run), "the preempted packed runs to finish")
        assert status.state == "done", status.reason
    job_log = (Path(jobs[runs[0].run_id]["pack"]["job_folder"]) / f"{job_id}_0_log.out").read_text()
    assert "requeueing 2 packed runs; each resumes from its own checkpoint" in job_log
    for run, log in zip(runs, stats):
        own = (Path(jobs[run.run_id]["folder"]) / f"{job_id}_0_log.out").read_text()
        stopped_at = int(own.split("preempted; stopped at step ")[1].split()[0])
        assert 10 <= stopped_at < 150 and "resuming from" in own
        assert [r["step"] for r in rundir.read_jsonl(log)] == list(range(1, 151))  # resumed, not restarted
    states = _wait(lambda: _job_states(job_id)[-1] == "COMPLETED" and _job_states(job_id),
                   "SLURM to record the task as completed")
    assert states == ["REQUEUED", "COMPLETED"]
