"""Submitting an ablation: skip the runs that are done or under way, submit the rest through submitit.

* ``slurm``: one job array (submitit's AutoExecutor) with the ablation's ``slurm`` block;
  returns once the array is queued (``wait=True`` stays until every run has ended).
* ``local``: submitit's LocalExecutor on this machine, at most ``max_parallel`` runs at a
  time; waits for all of them.
* ``debug``: submitit's DebugExecutor, one run after another inside this process.

Every run is its own job, so one failing, diverging or losing its node leaves the others
running.  With ``runs_per_task`` K > 1 (``--runs-per-task``, or the ablation's
``slurm.runs_per_task``) K runs share one job, an array task on one GPU, each in its own
process (``bench.sweep.job.PackedTrainJob``): one failing still leaves the others running.
Failed and diverged runs are submitted again only with ``rerun_failed``; they continue from
their last checkpoint.
"""
from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import submitit
from tqdm import tqdm

from bench.config import config_to_dict
from bench.run import reproducible
from bench.run.machine import visible_gpus
from bench.sweep.ablation import Ablation
from bench.sweep.job import PackedTrainJob, TrainJob
from bench.sweep.profiles import FULL
from bench.sweep.results import AblationResults
from bench.sweep.status import RunStatus, collect_status, format_table, process_start_time

EXECUTORS = ("auto", "slurm", "local", "debug")
LOCAL_POLL_S = 1.0
SLURM_POLL_S = 10.0


class SubmissionError(RuntimeError):
    """The scheduler could not be reached or refused the submission."""


@dataclass(frozen=True)
class SweepOptions:
    """How ``colorbench sweep`` (and ``reproduce``, which sweeps) runs an ablation: one field per option."""

    executor: str = "auto"  # auto, slurm, local or debug (resolve_executor)
    dry_run: bool = False  # print the plan, submit nothing
    max_parallel: int | None = None  # runs at a time: the array's parallelism, or local runs (default per core)
    results: Path = Path("results")  # the results folder; the ablation's runs go to <results>/<name>/
    overrides: tuple[str, ...] = ()  # --set key=value on the ablation's base
    profile: str = FULL  # the study file's scale (bench.sweep.profiles)
    rerun_failed: bool = False  # submit failed and diverged runs again
    max_num_timeout: int | None = None  # requeues after time-outs; default: the ablation's slurm block
    wait: bool = False  # slurm: stay until the runs have ended
    skip_missing_data: bool = False  # leave out runs whose data is not here instead of refusing the sweep
    runs_per_task: int | None = None  # runs packed into one job (array task), sharing its GPU; default slurm block's
    reuse: bool = True  # copy in runs another ablation's folder under ``results`` has finished (bench.sweep.reuse)

    def __post_init__(self) -> None:
        if self.executor not in EXECUTORS:
            raise ValueError(f"executor: got {self.executor!r}; allowed: {', '.join(EXECUTORS)}")
        if self.runs_per_task is not None and not (isinstance(self.runs_per_task, int) and self.runs_per_task >= 1):
            raise ValueError(f"runs_per_task: got {self.runs_per_task!r}; allowed: an integer >= 1")
        object.__setattr__(self, "results", Path(self.results))
        object.__setattr__(self, "overrides", tuple(self.overrides))


@dataclass(frozen=True)
class SweepPlan:
    """Each run's current status and what the sweep does with it."""

    statuses: list[RunStatus]
    actions: dict[str, str]  # run id -> "submit" or why it is skipped

    @property
    def to_submit(self) -> list[RunStatus]:
        return [s for s in self.statuses if self.actions[s.run.run_id] == "submit"]


def resolve_executor(name: str) -> str:
    """``auto`` is slurm where submitit finds ``srun``, else local."""
    if name not in EXECUTORS:
        raise ValueError(f"executor: got {name!r}; allowed: {', '.join(EXECUTORS)}")
    if name == "auto":
        return "slurm" if submitit.AutoExecutor.which() == "slurm" else "local"
    return name


def plan_sweep(ablation: Ablation, results: AblationResults, rerun_failed: bool = False) -> SweepPlan:
    """Refuse conflicting run directories, then decide for every run: submit, or skip and why."""
    results.check_conflicts(ablation.runs)
    statuses = collect_status(results, ablation.runs)
    return SweepPlan(statuses, {s.run.run_id: _action(s, rerun_failed) for s in statuses})


def _action(status: RunStatus, rerun_failed: bool) -> str:
    if status.run.data_problem is not None and status.state in ("missing", "interrupted"):
        return "skip: its data is not here"
    if status.state == "broken":  # a file of it is not text: training would meet it too
        return "skip: broken; repair or move its directory (see its reason)"
    if status.state in ("missing", "interrupted") or (status.failed and rerun_failed):
        return "submit"
    if status.failed:
        return "skip: --rerun-failed runs it again"
    return f"skip: {status.state}"


def slurm_parameters(ablation: Ablation, max_parallel: int | None = None) -> dict[str, Any]:
    """The parameters of the job array, as submitit's AutoExecutor takes them."""
    s = ablation.slurm
    parameters = {
        "name": f"colorbench-{ablation.name}", "timeout_min": s.time_min, "slurm_partition": s.partition,
        "cpus_per_task": s.cpus, "gpus_per_node": s.gpus or None, "mem_gb": s.mem_gb,
        "slurm_constraint": s.constraint, "slurm_account": s.account, "slurm_qos": s.qos,
        "slurm_array_parallelism": max_parallel or s.array_parallelism, "slurm_signal_delay_s": s.signal_delay_s,
        "slurm_additional_parameters": s.extra or None,
        "slurm_setup": reproducible.shell_exports() or None,  # --reproducible: the jobs pin the same code paths
    }
    return {key: value for key, value in parameters.items() if value is not None}


def describe_plan(ablation: Ablation, results: AblationResults, plan: SweepPlan, executor: str,
                  options: SweepOptions) -> str:
    """What ``--dry-run`` prints: the run table and the job parameters (``executor``: resolved)."""
    max_parallel = options.max_parallel
    lines = [f"ablation {ablation.name} ({ablation.source}): {len(ablation.runs)} runs "
             f"({len(ablation.runs) // len(ablation.seeds)} grid points x {len(ablation.seeds)} seeds), "
             f"{len(plan.to_submit)} to submit",
             f"results: {results.root}", format_table(plan.statuses, plan.actions), f"executor: {executor}"]
    timeouts = _max_num_timeout(ablation, options)
    per_task = runs_per_task(ablation, options, executor)
    tasks = -(-len(plan.to_submit) // per_task)
    if per_task > 1:
        lines.append(f"  {per_task} runs per task, each in its own process, sharing the task's GPU and CPUs: "
                     f"{tasks} task(s)")
    if executor == "local":
        parallel = max_parallel or local_parallelism(tasks, per_task)
        lines.append(f"  {parallel} {'task(s)' if per_task > 1 else 'run(s)'} at a time, "
                     f"{_local_threads(parallel, per_task)} torch thread(s) per run, "
                     f"time limit {ablation.slurm.time_min} min, max_num_timeout {timeouts}")
    lines.append("SLURM parameters (submitit AutoExecutor):")
    lines += [f"  {key}: {value}" for key, value in slurm_parameters(ablation, max_parallel).items()]
    lines.append(f"  slurm_max_num_timeout: {timeouts}")
    if per_task > 1:
        lines.append(f"  runs_per_task: {per_task} ({_slurm_threads(ablation, per_task) or 'SLURM_CPUS_PER_TASK / K'}"
                     " torch thread(s) per run)")
    return "\n".join(lines)


def runs_per_task(ablation: Ablation, options: SweepOptions, executor: str) -> int:
    """K, the runs packed into one job: ``--runs-per-task``, else the ablation's ``slurm.runs_per_task``; the debug
    executor runs one after another in this process (1)."""
    if executor == "debug":
        return 1
    return options.runs_per_task or ablation.slurm.runs_per_task


def submit(ablation: Ablation, results: AblationResults, plan: SweepPlan, executor: str,
           options: SweepOptions = SweepOptions()) -> list[RunStatus]:
    """Submit the plan's runs with ``executor`` (resolved); for local and debug, return when they have all ended."""
    max_parallel = options.max_parallel
    to_submit = plan.to_submit
    if not to_submit:
        return []
    results.write_snapshot(ablation)
    for status in to_submit:
        _set_aside_failure(status.run_dir)
    folder = results.new_submitit_folder()
    timeouts = _max_num_timeout(ablation, options)
    per_task = runs_per_task(ablation, options, executor)
    if executor == "slurm":
        _submit_slurm(ablation, results, to_submit, folder, max_parallel, timeouts, per_task)
    elif executor == "local":
        tasks = -(-len(to_submit) // per_task)
        _run_local(ablation, results, to_submit, folder, max_parallel or local_parallelism(tasks, per_task), timeouts,
                   per_task)
    elif executor == "debug":
        _run_debug(results, to_submit, folder)
    else:
        raise ValueError(f"executor: got {executor!r}; allowed: slurm, local, debug")
    return to_submit


def _max_num_timeout(ablation: Ablation, options: SweepOptions) -> int:
    return ablation.slurm.max_num_timeout if options.max_num_timeout is None else options.max_num_timeout


def wait_for(results: AblationResults, ablation: Ablation, run_ids: set[str]) -> list[RunStatus]:
    """Poll until none of ``run_ids`` is pending or running; return the statuses of all runs."""
    with tqdm(total=len(run_ids), desc=f"sweep {ablation.name}", unit="run", disable=None) as bar:
        while True:
            statuses = collect_status(results, ablation.runs)
            under_way = [s for s in statuses if s.run.run_id in run_ids and s.state in ("pending", "running")]
            bar.update(len(run_ids) - len(under_way) - bar.n)
            if not under_way:
                return statuses
            time.sleep(SLURM_POLL_S)


def _set_aside_failure(run_dir: Path) -> None:
    """Keep a diverged run's FAILED record under another name, so its rerun can continue."""
    failed = run_dir / "FAILED"
    if failed.exists():
        failed.rename(run_dir / f"FAILED.{time.strftime('%Y%m%d-%H%M%S')}")


def _job_arguments(status: RunStatus, threads: int | None) -> tuple:
    return config_to_dict(status.run.config), str(status.run_dir), threads, status.run.run_id


def _tasks(to_submit: list[RunStatus], per_task: int) -> list[list[RunStatus]]:
    """The runs in jobs of ``per_task`` (the last one may hold fewer), in the plan's order."""
    return [to_submit[i:i + per_task] for i in range(0, len(to_submit), per_task)]


def packed_folder(folder: Path, status: RunStatus) -> Path:
    """A packed run's own folder in a sweep's submitit folder: its stdout, stderr and outcome."""
    return folder / "packed" / status.run.run_id


def _submission(task: list[RunStatus], folder: Path, threads: int | None) -> tuple[Any, tuple]:
    """The callable and arguments of one job: a TrainJob for one run, a PackedTrainJob for several."""
    if len(task) == 1:
        return TrainJob(), _job_arguments(task[0], threads)
    runs = [{"config": config_to_dict(s.run.config), "run_dir": str(s.run_dir), "threads": threads,
             "run_id": s.run.run_id, "folder": str(packed_folder(folder, s))} for s in task]
    return PackedTrainJob(), (runs,)


def _job_fields(task: list[RunStatus], status: RunStatus, folder: Path) -> dict:
    """The jobs.jsonl fields that place a run within its job: a packed run's own folder and slot."""
    if len(task) == 1:
        return {"folder": str(folder)}
    return {"folder": str(packed_folder(folder, status)),
            "pack": {"slot": task.index(status), "size": len(task), "job_folder": str(folder)}}


def _slurm_threads(ablation: Ablation, per_task: int) -> int | None:
    """Torch threads per run of an array task: its CPUs shared by its runs (None: SLURM_CPUS_PER_TASK decides)."""
    return max(1, ablation.slurm.cpus // per_task) if ablation.slurm.cpus else None


def _submit_slurm(ablation: Ablation, results: AblationResults, to_submit: list[RunStatus], folder: Path,
                  max_parallel: int | None, max_num_timeout: int, per_task: int = 1) -> None:
    tasks = _tasks(to_submit, per_task)
    try:
        executor = submitit.AutoExecutor(folder=folder, cluster="slurm", slurm_max_num_timeout=max_num_timeout)
        executor.update_parameters(**slurm_parameters(ablation, max_parallel))
        with executor.batch():
            jobs = [executor.submit(*_flat(_submission(task, folder, _slurm_threads(ablation, per_task))))
                    for task in tasks]
    except (RuntimeError, OSError) as err:  # no srun/sbatch, or sbatch refused (submitit's errors are RuntimeErrors)
        raise SubmissionError(f"submitting {len(to_submit)} runs of {ablation.name} to SLURM failed: {err}") from None
    for task, job in zip(tasks, jobs):
        for status in task:
            results.record_job(status.run, executor="slurm", job_id=job.job_id, **_job_fields(task, status, folder))


def _flat(submission: tuple[Any, tuple]) -> tuple:
    function, arguments = submission
    return (function, *arguments)


def local_parallelism(n_tasks: int, runs_per_task: int = 1) -> int:
    """Local jobs at a time by default: one run per CPU core (small models train faster on one thread
    each than one after another on all of them), but one job on a machine with a GPU, which they would
    share (pack runs with ``runs_per_task`` to share it)."""
    if visible_gpus():  # read off the driver: planning and --dry-run import no torch (seconds to load)
        return 1
    return max(1, min((os.cpu_count() or 1) // runs_per_task, n_tasks))


def _local_threads(parallel: int, runs_per_task: int = 1) -> int:
    """Torch threads per local run, so that parallel runs share the cores instead of fighting over them."""
    return max(1, (os.cpu_count() or 1) // (parallel * runs_per_task))


def _run_local(ablation: Ablation, results: AblationResults, to_submit: list[RunStatus], folder: Path,
               parallel: int, max_num_timeout: int, per_task: int = 1) -> None:
    executor = submitit.LocalExecutor(folder=folder, max_num_timeout=max_num_timeout)
    executor.update_parameters(timeout_min=ablation.slurm.time_min, signal_delay_s=ablation.slurm.signal_delay_s)
    sweep = {"pid": os.getpid(), "pid_start": process_start_time(os.getpid())}
    queue, running = _tasks(to_submit, per_task), []
    for task in queue:  # queued: pending while this process lives
        for status in task:
            results.record_job(status.run, executor="local", job_id=None, **_job_fields(task, status, folder), **sweep)
    try:
        with tqdm(total=len(to_submit), desc=f"sweep {ablation.name}", unit="run", disable=None) as bar:
            while queue or running:
                while queue and len(running) < parallel:
                    task = queue.pop(0)
                    with _sigint_ignored():
                        job = executor.submit(*_flat(_submission(task, folder, _local_threads(parallel, per_task))))
                    pid = int(job.job_id)
                    for status in task:
                        results.record_job(status.run, executor="local", job_id=job.job_id, pid=pid,
                                           pid_start=process_start_time(pid), **_job_fields(task, status, folder))
                    running.append((job, len(task)))
                time.sleep(LOCAL_POLL_S)
                finished = [entry for entry in running if entry[0].done()]
                for entry in finished:
                    running.remove(entry)
                    bar.update(entry[1])
    except KeyboardInterrupt:
        _stop_local_jobs([job for job, _ in running if not job.done()], sum(len(task) for task in queue))
        raise


@contextlib.contextmanager
def _sigint_ignored():
    """Start a local job with SIGINT ignored, a disposition its processes inherit.

    Ctrl-C then reaches the run itself, which installs its own handler (``bench.sweep.job``:
    finish the step, save it, return the run interrupted), but not submitit's controller
    process, which would answer it by killing the run a second later.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _stop_local_jobs(running: list, queued: int) -> None:
    """After Ctrl-C: ask each running job to stop after its current step, and wait until it has saved it."""
    for job in running:
        with contextlib.suppress(OSError):
            os.kill(int(job.job_id), signal.SIGTERM)  # the controller forwards it to the run
    if running:
        print(f"colorbench: interrupted; waiting for {len(running)} running run(s) to save their current step "
              "(Ctrl-C again to leave them to it)", file=sys.stderr, flush=True)
        try:
            while not all(job.done() for job in running):
                time.sleep(0.2)
        except KeyboardInterrupt:
            pass
    print(f"colorbench: sweep interrupted ({len(running)} run(s) stopped and saved, {queued} not started); "
          "rerun the same command to continue", file=sys.stderr, flush=True)


def _run_debug(results: AblationResults, to_submit: list[RunStatus], folder: Path) -> None:
    executor = submitit.DebugExecutor(folder=folder)
    for status in tqdm(to_submit, desc="sweep (debug executor)", unit="run", disable=None):
        job = executor.submit(TrainJob(), *_job_arguments(status, None))
        results.record_job(status.run, executor="debug", job_id=job.job_id, folder=str(folder))
        error = job.exception()  # runs it here; an exception is returned, not raised, so the next run goes on
        if error is not None:
            results.record_job(status.run, executor="debug", job_id=job.job_id, folder=str(folder),
                               error=f"{type(error).__name__}: {error}".splitlines()[0])
