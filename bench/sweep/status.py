"""Where every run of an ablation stands: done, running, pending, failed, diverged or missing.

The run directory says done (DONE) and diverged (FAILED, a non-finite loss); the job the
sweep recorded in jobs.jsonl says pending or running (SLURM's accounting through
submitit, or the local job's process), and for a job that ended without finishing its run,
why: the exception in submitit's result file, else the scheduler's final state.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from submitit.core.utils import JobPaths, pickle_load
from submitit.slurm.slurm import SlurmInfoWatcher

from bench import rundir
from bench.sweep.ablation import PlannedRun, format_value
from bench.sweep.results import AblationResults

STATES = ("done", "running", "pending", "failed", "diverged", "missing")
STDERR_TAIL_LINES = 8
# sacct knows a job a moment after sbatch returns; a job it never knows about is gone.
UNKNOWN_JOB_GRACE_S = 120
# A requeued job's latest accounting record is PENDING again, so PREEMPTED means it ended there.
_SLURM_PENDING = {"PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "CONFIGURING", "RESIZING", "SUSPENDED"}
_SLURM_RUNNING = {"RUNNING", "COMPLETING", "STAGE_OUT", "SIGNALING"}


@dataclass
class RunStatus:
    """One row of the status table."""

    run: PlannedRun
    run_dir: Path
    state: str
    step: int | None = None
    total_steps: int | None = None
    reason: str | None = None
    job: dict | None = None
    stderr_path: Path | None = None
    stderr_tail: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return self.state in ("failed", "diverged")


def collect_status(results: AblationResults, runs: tuple[PlannedRun, ...] | list[PlannedRun]) -> list[RunStatus]:
    """The status of each of ``runs`` in ``results``."""
    jobs = results.latest_jobs()
    jobs = {run.run_id: jobs[run.run_id] for run in runs if run.run_id in jobs}
    phases = _job_phases(jobs)
    return [_run_status(run, results.run_dir(run), jobs.get(run.run_id), *phases.get(run.run_id, ("", "")))
            for run in runs]


def _run_status(run: PlannedRun, run_dir: Path, job: dict | None, phase: str, scheduler_state: str) -> RunStatus:
    """``phase`` is the job's: pending, running, ended, or '' when no job ran the run."""
    status = RunStatus(run, run_dir, "missing", job=job)
    if (run_dir / "DONE").exists():
        done = rundir.read_json(run_dir / "DONE")
        status.state, status.step, status.total_steps = "done", done["step"], done["total_steps"]
        return status
    status.step, status.total_steps = _progress(run_dir)
    if phase in ("pending", "running"):
        status.state = phase
        return status
    if phase == "ended":
        status.stderr_path = JobPaths(job["folder"], job_id=job["job_id"], task_id=0).stderr
        status.stderr_tail = _tail(status.stderr_path)
    if (run_dir / "FAILED").exists():
        status.state, status.reason = "diverged", rundir.read_json(run_dir / "FAILED")["reason"]
    elif phase == "ended":
        status.state, status.reason = "failed", _failure_reason(job, scheduler_state)
    elif status.step is not None:
        status.state, status.reason = "failed", f"stopped at step {status.step}; no job of this folder ran it"
    return status


def _progress(run_dir: Path) -> tuple[int | None, int | None]:
    """(last logged step, total steps) of an unfinished run; None where not known yet."""
    if not run_dir.exists():
        return None, None
    records = list(rundir.read_jsonl(run_dir / "stats.jsonl"))
    return (records[-1]["step"], records[-1]["total_steps"]) if records else (0, None)


def _failure_reason(job: dict, scheduler_state: str) -> str:
    if job.get("error"):  # recorded by the sweep itself (debug executor)
        return job["error"]
    result = JobPaths(job["folder"], job_id=job["job_id"], task_id=0).result_pickle
    if result.exists():
        outcome, value = pickle_load(result)
        if outcome == "error":
            lines = [line for line in str(value).splitlines() if line.strip()]
            return lines[-1] if lines else "the job raised an exception"
        if isinstance(value, dict) and value.get("state") != "done":
            return f"the job ended with the run {value.get('state')} at step {value.get('step')}"
    ended = f"state {scheduler_state}" if scheduler_state else "no result"
    return f"job {job['job_id']} ({job['executor']}) ended without finishing the run ({ended})"


def _job_phases(jobs: dict[str, dict]) -> dict[str, tuple[str, str]]:
    """run id -> (pending | running | ended | '', the scheduler's state) of each run's latest job record."""
    # A watcher of our own: submitit's shared one never asks again about a job it has seen end,
    # but a preempted job ends and comes back.
    watcher = SlurmInfoWatcher()
    for job in jobs.values():
        if job["executor"] == "slurm":
            watcher.register_job(job["job_id"])
    watcher.update()  # one sacct call for all of them
    phases = {}
    for run_id, job in jobs.items():
        if job["executor"] == "slurm":
            state = watcher.get_info(job["job_id"], mode="cache").get("State", "UNKNOWN").split()[0]
            if state == "UNKNOWN":
                young = time.time() - job["time"] < UNKNOWN_JOB_GRACE_S
                phases[run_id] = ("pending" if young else "ended", "unknown to sacct")
            elif state in _SLURM_PENDING:
                phases[run_id] = ("pending", state)
            elif state in _SLURM_RUNNING:
                phases[run_id] = ("running", state)
            else:
                phases[run_id] = ("ended", state)
        elif job["executor"] == "local":
            # A local job is its controller process; a queued run waits in the sweep process.
            alive = process_start_time(job["pid"]) == job["pid_start"]
            if job.get("job_id"):
                phases[run_id] = ("running" if alive else "ended", "")
            elif alive:
                phases[run_id] = ("pending", "")
        else:  # debug: ran inside the sweep, which has returned
            phases[run_id] = ("ended", "")
    return phases


def process_start_time(pid: int) -> int | None:
    """The start time (clock ticks after boot) of a live, non-zombie process; None otherwise.

    Together with the PID it names a process uniquely, so a reused PID is not mistaken for a job.
    """
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] == "Z" else int(fields[19])


def _tail(path: Path) -> list[str]:
    if not path.exists():
        return []
    lines = [line.rstrip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-STDERR_TAIL_LINES:]


def format_table(statuses: list[RunStatus], actions: dict[str, str] | None = None) -> str:
    """The status table: run id, seed, state, step of total, [action,] differing keys; failures in detail."""
    header = ["run id", "seed", "state", "step"] + (["action"] if actions else []) + ["differing keys"]
    rows = []
    for s in statuses:
        step = "" if s.step is None else f"{s.step}/{'?' if s.total_steps is None else s.total_steps}"
        keys = ", ".join(f"{key}={format_value(value)}" for key, value in s.run.differing.items()) or "(base)"
        if s.run.is_baseline:
            keys += "  [baseline]"
        rows.append([s.run.run_id, str(s.run.seed), s.state, step] + ([actions[s.run.run_id]] if actions else [])
                    + [keys])
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    lines = []
    for row, s in zip([header, *rows], [None, *statuses]):
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1])
        if s is not None and s.failed:
            lines.append(f"    reason: {s.reason}")
            lines.append(f"    run directory: {s.run_dir}")
            if s.stderr_tail:
                lines.append(f"    last lines of {s.stderr_path}:")
                lines += [f"      | {line}" for line in s.stderr_tail]
    counts = {state: sum(s.state == state for s in statuses) for state in STATES}
    lines.append(", ".join(f"{n} {state}" for state, n in counts.items() if n) + f" (of {len(statuses)} runs)")
    return "\n".join(lines)
