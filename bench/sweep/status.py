"""Where every run of an ablation stands: done, running, pending, interrupted, failed, diverged or missing.

The run directory says done (DONE) and diverged (FAILED, a non-finite loss); the job the
sweep recorded in jobs.jsonl says pending or running (SLURM's accounting through
submitit, or the local job's process), and for a job that ended without finishing its run,
why: the exception the job recorded (``bench.sweep.outcome``: JSON in the submitit folder;
submitit's pickled result files are never read, so looking at a results folder runs none of
its code), else the scheduler's final state.  A job
that a signal stopped at a step boundary (Ctrl-C on a local sweep) returned its run
``interrupted``, with that step saved: the run is resumable, and the next sweep submits it
again as it does a missing one.  A DONE or FAILED that cannot be read is a failed run whose
reason names the file, never a crash of ``colorbench status``; a run whose config.yaml,
stats.jsonl or metrics.jsonl is not text (binary garbage, a folder of that name) is ``broken``,
with the file as its reason.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from submitit.core.utils import JobPaths
from submitit.slurm.slurm import SlurmInfoWatcher

from bench.run import rundir
from bench.sweep.ablation import PlannedRun, format_value
from bench.sweep.outcome import read_outcome
from bench.sweep.results import AblationResults, read_records

STATES = ("done", "running", "pending", "interrupted", "failed", "diverged", "missing", "broken")
LOG_FILES = ("stats.jsonl", "metrics.jsonl")  # a run is broken when one of them holds a line that is not a record
TORN = rundir.TORN_LINE
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
        return self.state in ("failed", "diverged", "broken")


def collect_status(results: AblationResults, runs: tuple[PlannedRun, ...] | list[PlannedRun]) -> list[RunStatus]:
    """The status of each of ``runs`` in ``results``."""
    jobs = results.latest_jobs()
    jobs = {run.run_id: jobs[run.run_id] for run in runs if run.run_id in jobs}
    phases = _job_phases(jobs)
    return [_run_status(results, run, jobs.get(run.run_id), *phases.get(run.run_id, ("", ""))) for run in runs]


def _run_status(results: AblationResults, run: PlannedRun, job: dict | None, phase: str,
                scheduler_state: str) -> RunStatus:
    """``phase`` is the job's: pending, running, ended, or '' when no job ran the run."""
    run_dir = results.run_dir(run)
    status = RunStatus(run, run_dir, "missing", job=job)
    problem = _broken(results, run, run_dir)
    if problem is not None:
        status.state, status.reason = "broken", problem
        return status
    if os.path.lexists(run_dir / "DONE"):  # read and checked by the rule, a run's own
        done = rundir.read_summary(run_dir / "DONE", "")
        status.state, status.step, status.total_steps = "done", done["step"], done["total_steps"]
        return status
    status.step, status.total_steps = _progress(run_dir)
    if phase in ("pending", "running") and job.get("pack") and _job_result(results, job) is not None:
        phase = "ended"  # a packed run whose own process has ended while its neighbours in the job go on
    if phase in ("pending", "running"):
        status.state = phase
        return status
    if phase == "ended":
        status.stderr_path, status.stderr_tail = _stderr_tail(results, job)
    stopped_at = _interrupted_step(results, job) if phase == "ended" else None
    if os.path.lexists(run_dir / "FAILED"):
        status.state, status.reason = "diverged", _divergence_reason(run_dir / "FAILED")
    elif stopped_at is not None:
        status.state = "interrupted"
        status.reason = f"a signal stopped it at step {stopped_at}, saved; colorbench sweep continues it"
    elif phase == "ended":
        status.state, status.reason = "failed", _failure_reason(results, job, scheduler_state)
    elif status.step is not None:
        status.state, status.reason = "failed", f"stopped at step {status.step}; no job of this folder ran it"
    return status


def _broken(results: AblationResults, run: PlannedRun, run_dir: Path) -> str | None:
    """Why the run is broken: its directory breaks the rule every command applies (``bench.run.rundir.check_run_dir``:
    config.yaml, DONE, FAILED and checkpoint.pt name this run), a log cannot be read as text, or a log line other
    than a torn last one is not a record (training refuses such a directory too); None when it is not."""
    problem = results.run_dir_problem(run)
    if problem is not None:
        return str(problem)
    for name in LOG_FILES:
        try:
            damaged = [line for line in log_problems(run_dir / name) if not line.endswith(TORN)]
        except rundir.RunFileError as err:
            return str(err)
        if damaged:
            return damaged[0]
    return None


def log_problems(path: Path) -> list[str]:
    """The lines of a log that are not records, each ``"<path>: line <n>: <why>"``."""
    problems: list[str] = []
    read_records(path, problems)
    return problems


def _progress(run_dir: Path) -> tuple[int | None, int | None]:
    """(last logged step, total steps) of an unfinished run; None where not known yet."""
    if not run_dir.exists():
        return None, None
    try:
        records = read_records(run_dir / "stats.jsonl")
    except rundir.RunFileError:  # checked by _broken; replaced by a FIFO or a link meanwhile: no progress known
        return None, None
    return (records[-1]["step"], records[-1].get("total_steps")) if records else (0, None)


def _divergence_reason(path: Path) -> str:
    summary = rundir.read_summary(path, "")  # read and checked by the rule already
    return str(summary["reason"]) if "reason" in summary else f"{path}: names no reason"


def _job_result(results: AblationResults, job: dict) -> tuple[str, object] | None:
    """(``error``, its last line) or (``success``, the run's summary) as the job recorded them in JSON
    (``bench.sweep.outcome``); None when it recorded nothing readable inside the results folder."""
    if not job.get("folder") or not job.get("job_id"):
        return None
    return read_outcome(job["folder"], job["job_id"], within=results.root)


def _stderr_tail(results: AblationResults, job: dict) -> tuple[Path | None, list[str]]:
    """The job's stderr file and its last lines, read through ``bench.run.rundir``: only inside the results folder
    (jobs.jsonl is input, and its folder field may name any folder of the machine), only the end of the file; a
    file that cannot be read is one line saying why."""
    if not job.get("folder") or not job.get("job_id"):
        return None, []
    path = JobPaths(job["folder"], job_id=job["job_id"], task_id=0).stderr
    try:
        text = rundir.read_tail(path, within=results.root) or ""
    except rundir.RunFileError as err:
        return path, [f"(not shown: {err})"]
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    return path, lines[-STDERR_TAIL_LINES:]


def _interrupted_step(results: AblationResults, job: dict | None) -> int | None:
    """The step a job that a signal stopped saved its run at; None for any other ending."""
    result = _job_result(results, job) if job else None
    if result is None or result[0] != "success" or not isinstance(result[1], dict):
        return None
    summary = result[1]
    return summary.get("step") if summary.get("state") == "interrupted" and summary.get("signal") else None


def _failure_reason(results: AblationResults, job: dict, scheduler_state: str) -> str:
    if job.get("error"):  # recorded by the sweep itself (debug executor)
        return job["error"]
    result = _job_result(results, job)
    if result is not None:
        outcome, value = result
        if outcome == "error":
            return str(value) or "the job raised an exception"
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
