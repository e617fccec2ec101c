"""The callable a sweep submits: one training run, preemptible through submitit's checkpoint protocol.

On the preemption / time-out signal (USR2) submitit's handler would checkpoint and requeue
at once, in the middle of a training step.  While the run trains, :class:`TrainJob` holds
the signal back instead: the trainer finishes the step it is in, writes ``checkpoint.pt``
for that step and returns; only then does submitit's handler run, call
:meth:`TrainJob.checkpoint` and requeue the job.  The requeued job calls ``train`` again
on the same directory, which resumes from that checkpoint, so a USR2 costs one step plus
the time to save, requeue and start again, never the run.

:class:`PackedTrainJob` packs K runs into one job (one array task, one GPU): it starts each
run in a process of its own (``python -m bench.sweep.job SPEC``), so the K runs share the
task's GPU and CPUs while each keeps its own directory, lock, checkpoint and resume, and a
run that fails or dies leaves its neighbours training.  Each run writes its stdout, stderr
and outcome to a folder of its own (``<sweep folder>/packed/<run id>/``), under the file
names submitit gives a job's (``<job id>_0_log.err``, ``<job id>_0_outcome.json``), which its
jobs.jsonl record names, so ``colorbench status`` shows each run's own state, reason and
stderr.  A preemption (USR2) reaches every run, each saves the step it is in, and the task
is requeued once all have stopped; the requeued task starts the K runs again, which resume
(a finished one returns at once).

Every job, and every ``colorbench sweep`` that pickles one, imports this module: it imports
torch and the trainer only when the job runs (``TrainJob.__call__``, the packed runs'
processes), so that loading it costs no more than submitit and the config.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

import submitit

from bench.config import config_from_dict
from bench.run import rundir
from bench.run.machine import PACK_VARIABLE
from bench.run.reproducible import pinned_threads
from bench.sweep.outcome import SUMMARY_FIELDS, outcome_path

PREEMPTED_EXIT = 75  # a packed run's process: preempted, its step saved; the task is requeued (EX_TEMPFAIL)
PACK_POLL_S = 0.5


def train(config: Any, run_dir: str | Path, **kwargs: Any) -> dict:
    """``bench.training.train.train``, imported (with torch) when a job runs rather than when this module loads."""
    from bench.training.train import train as train_run
    return train_run(config, run_dir, **kwargs)


def resume_file(run_dir: str | Path) -> Path:
    """The checkpoint a requeued job resumes from: the file ``bench.training.train.train`` writes."""
    from bench.run.checkpoint import CHECKPOINT_FILE  # imports torch
    return Path(run_dir) / CHECKPOINT_FILE


class TrainJob(submitit.helpers.Checkpointable):
    """``TrainJob()(config, run_dir, threads, run_id)`` trains the run (a plain config dict) in ``run_dir``.

    ``run_id`` is the id the sweep planned; data changed since then fails the job rather than
    training another run under that name.
    """

    def __call__(self, config: dict, run_dir: str, threads: int | None = None, run_id: str | None = None) -> dict:
        # How the job ended, as JSON beside submitit's files: `colorbench status` never unpickles results.
        from bench.sweep.outcome import record_outcome
        return record_outcome(self._train, config, run_dir, threads, run_id)

    def _train(self, config: dict, run_dir: str, threads: int | None = None, run_id: str | None = None) -> dict:
        _set_threads(threads or int(os.environ.get("SLURM_CPUS_PER_TASK", 0)) or None)
        checkpoint = resume_file(run_dir)
        print(f"colorbench: {'resuming from ' + str(checkpoint) if checkpoint.exists() else 'starting'} "
              f"(run directory {run_dir})", flush=True)
        with _HeldPreemption() as preemption, _local_stop() as stop:
            summary = train(config_from_dict(config), run_dir, planned_run_id=run_id,
                            stop_requested=lambda: preemption.requested() or stop.requested())
        if summary["state"] == "interrupted" and not preemption.requested() and stop.requested():
            name = signal.Signals(stop.received).name
            print(f"colorbench: {name}; stopped at step {summary['step']} of {summary['total_steps']} and saved "
                  f"{checkpoint}; the next sweep continues the run", flush=True)
            return {**summary, "signal": name}  # `colorbench status`: interrupted (resumable), not failed
        if summary["state"] == "interrupted":
            print(f"colorbench: preempted; stopped at step {summary['step']} of {summary['total_steps']} "
                  f"and saved {checkpoint}", flush=True)
            preemption.hand_over()  # submitit checkpoints (below), requeues and exits
        return summary

    def checkpoint(self, config: dict, run_dir: str, threads: int | None = None,
                   run_id: str | None = None) -> submitit.helpers.DelayedSubmission:
        """The requeued submission: the same call, which resumes from :func:`resume_file`."""
        checkpoint = resume_file(run_dir)
        if checkpoint.exists():
            print(f"colorbench: requeueing; the job resumes from {checkpoint}", flush=True)
        else:
            print(f"colorbench: requeueing without a checkpoint ({checkpoint} is missing); the run restarts",
                  file=sys.stderr, flush=True)
        return super().checkpoint(config, run_dir, threads, run_id)


def _set_threads(threads: int | None) -> None:
    """Torch's thread count for a run: ``threads``, or the reproducible mode's pinned count (which decides digits)."""
    import torch
    threads = pinned_threads() or threads
    if threads:
        torch.set_num_threads(threads)


class PackedTrainJob(submitit.helpers.Checkpointable):
    """``PackedTrainJob()(runs)`` trains K runs at once, each in its own process (see the module).

    Each of ``runs`` is a dict: ``config`` (plain), ``run_dir``, ``threads``, ``run_id`` (as for
    :class:`TrainJob`) and ``folder``, the run's own folder for its logs and outcome.  Returns the
    runs' summaries; raises :class:`PackedRunsFailed` when a run failed, after all have ended.
    """

    def __call__(self, runs: list[dict]) -> list[dict]:
        from bench.sweep.outcome import record_outcome
        return record_outcome(self._train, runs)

    def _train(self, runs: list[dict]) -> list[dict]:
        job_id = _job_id()
        print(f"colorbench: {len(runs)} runs packed in job {job_id}, each in its own process", flush=True)
        with _HeldPreemption() as preemption, _local_stop() as stop:
            children = [_start_packed_run(run, slot, len(runs), job_id) for slot, run in enumerate(runs)]
            forwarded: set[int] = set()
            while any(child.poll() is None for child in children):
                for signum, asked in ((preemption.signal, preemption.requested()),
                                      (signal.SIGTERM, stop.requested())):
                    if asked and signum not in forwarded:  # each run saves the step it is in, then ends
                        forwarded.add(signum)
                        for child in children:
                            if child.poll() is None:
                                child.send_signal(signum)
                time.sleep(PACK_POLL_S)
            codes = [child.wait() for child in children]
        summaries, failed, preempted = [], [], []
        for run, code in zip(runs, codes):
            path = outcome_path(run["folder"], job_id)
            if code in (PREEMPTED_EXIT, -preemption.signal):  # killed by it before its handler was in place
                preempted.append(run["run_id"] or run["run_dir"])
                summaries.append({"run_dir": run["run_dir"], "run_id": run["run_id"], "state": "interrupted"})
                continue
            outcome = _read_json(path)
            if not isinstance(outcome, dict) or outcome.get("outcome") not in ("success", "error"):
                how = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
                outcome = {"outcome": "error", "error": f"the run's process ended with {how} and recorded no outcome"}
                rundir.write_json(path, outcome)
            if outcome["outcome"] == "error":
                failed.append(f"{run['run_id'] or run['run_dir']}: {outcome['error']}")
            summaries.append({"run_dir": run["run_dir"], "run_id": run["run_id"],
                              **{key: outcome.get(key) for key in ("outcome", "error", *SUMMARY_FIELDS)
                                 if key in outcome}})
        if preempted and preemption.can_hand_over():
            print(f"colorbench: preempted; {len(preempted)} run(s) saved their step: {', '.join(preempted)}",
                  flush=True)
            preemption.hand_over(preemption.received or preemption.signal)  # submitit requeues the task
        if failed:
            raise PackedRunsFailed(f"{len(failed)} of {len(runs)} packed runs failed (each run's own folder holds "
                                   f"its stderr): " + "; ".join(failed))
        return summaries

    def checkpoint(self, runs: list[dict]) -> submitit.helpers.DelayedSubmission:
        """The requeued task: the same runs, each resuming from its own checkpoint."""
        print(f"colorbench: requeueing {len(runs)} packed runs; each resumes from its own checkpoint", flush=True)
        return super().checkpoint(runs)


class PackedRunsFailed(RuntimeError):
    """A run of a packed task failed; its neighbours ran to their end."""


def _job_id() -> str:
    """This submitit job's id (an array task's ``<array>_<task>``); ``packed`` outside a submitit job."""
    try:
        return str(submitit.JobEnvironment().job_id)
    except RuntimeError:
        return "packed"


def _start_packed_run(run: dict, slot: int, size: int, job_id: str) -> subprocess.Popen:
    """Start one packed run's process, its stdout and stderr in its own folder under submitit's names."""
    folder = Path(run["folder"])
    folder.mkdir(parents=True, exist_ok=True)
    paths = submitit.core.utils.JobPaths(folder, job_id=job_id, task_id=0)
    outcome = outcome_path(folder, job_id)
    outcome.unlink(missing_ok=True)  # an earlier attempt's: status must not read it while this one runs
    spec = folder / f"{job_id}_run.json"
    rundir.write_json(spec, {**run, "outcome": str(outcome)})
    env = {**os.environ, PACK_VARIABLE: f"{slot}/{size}"}
    with open(paths.stdout, "a") as out, open(paths.stderr, "a") as err:
        child = subprocess.Popen([sys.executable, "-u", "-m", "bench.sweep.job", str(spec)], stdout=out, stderr=err,
                                 env=env)
    print(f"colorbench: run {slot + 1}/{size} {run['run_id'] or run['run_dir']} in process {child.pid} "
          f"(logs: {paths.stdout.parent})", flush=True)
    return child


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def packed_run_main(spec_path: str) -> int:
    """One packed run's process: train it, record its outcome; exit 0, 1 (failed) or PREEMPTED_EXIT."""
    spec = json.loads(Path(spec_path).read_text())
    outcome = Path(spec["outcome"])
    threads = spec.get("threads")
    if not threads and os.environ.get("SLURM_CPUS_PER_TASK"):
        size = int(os.environ.get(PACK_VARIABLE, "0/1").split("/")[1])
        threads = max(1, int(os.environ["SLURM_CPUS_PER_TASK"]) // size)
    preemption_signal = getattr(signal, "SIG" + submitit.JobEnvironment.USR_SIG)
    stop = _NotedSignals((preemption_signal, signal.SIGTERM, signal.SIGINT))  # for the whole process, never undone:
    _set_threads(threads)  # the same signal can come from SLURM and again from the job, after training returned
    run_dir = spec["run_dir"]
    print(f"colorbench: {'resuming from ' + str(resume_file(run_dir)) if resume_file(run_dir).exists() else 'starting'}"
          f" (run directory {run_dir}, packed {os.environ.get(PACK_VARIABLE)})", flush=True)
    try:
        summary = train(config_from_dict(spec["config"]), run_dir, planned_run_id=spec.get("run_id"),
                        stop_requested=stop.requested)
    except Exception as err:  # recorded for status; the neighbours go on
        traceback.print_exc()
        lines = [line for line in "".join(traceback.format_exception_only(type(err), err)).splitlines()
                 if line.strip()]
        rundir.write_json(outcome, {"outcome": "error", "error": lines[-1] if lines else type(err).__name__})
        return 1
    if summary["state"] == "interrupted" and stop.received == preemption_signal:
        print(f"colorbench: preempted; stopped at step {summary['step']} of {summary['total_steps']} and saved "
              f"{resume_file(run_dir)}", flush=True)
        return PREEMPTED_EXIT  # no outcome: the requeued task runs it again
    if summary["state"] == "interrupted" and stop.received is not None:
        summary = {**summary, "signal": signal.Signals(stop.received).name}
        print(f"colorbench: {summary['signal']}; stopped at step {summary['step']} of {summary['total_steps']} and "
              f"saved {resume_file(run_dir)}; the next sweep continues the run", flush=True)
    rundir.write_json(outcome, {"outcome": "success", **{key: summary.get(key) for key in SUMMARY_FIELDS
                                                         if key in summary}})
    return 0


class _NotedSignals:
    """A packed run's process: the first of ``signals`` asks the trainer to stop after its step; the rest are noted
    and ignored (a run stops once, whoever signals it)."""

    def __init__(self, signals: tuple[int, ...]) -> None:
        self.received: int | None = None
        for signum in signals:
            signal.signal(signum, self._note)

    def _note(self, signum: int, frame: Any) -> None:
        if self.received is None:
            self.received = signum

    def requested(self) -> bool:
        return self.received is not None


def _local_stop() -> Any:
    """In a local sweep's job, SIGINT (Ctrl-C) and SIGTERM stop the run after its current step, saved.

    Elsewhere (SLURM, where submitit's own protocol handles the signals; the debug executor,
    inside the sweep's process) it changes nothing.
    """
    from bench.training.signals import StopOnSignal
    local = os.environ.get("SUBMITIT_EXECUTOR") == "local"
    return StopOnSignal(signals=(signal.SIGINT, signal.SIGTERM) if local else (), announce=False, escalate=False)


class _HeldPreemption:
    """Inside a submitit job, notes the preemption signal instead of acting on it mid-step.

    :meth:`requested` tells the trainer to stop at the next step boundary; :meth:`hand_over`
    then runs submitit's own handler.  Outside a submitit job (no Python handler installed
    for the signal, as under the debug executor) it changes nothing.
    """

    def __init__(self) -> None:
        self.signal = getattr(signal, "SIG" + submitit.JobEnvironment.USR_SIG)
        self.received: int | None = None
        self._submitit_handler: Any = None

    def __enter__(self) -> "_HeldPreemption":
        handler = signal.getsignal(self.signal)
        if callable(handler) and threading.current_thread() is threading.main_thread():
            self._submitit_handler = handler
            signal.signal(self.signal, self._note)
        return self

    def __exit__(self, *exc_info: Any) -> None:
        if self._submitit_handler is not None:
            signal.signal(self.signal, self._submitit_handler)

    def _note(self, signum: int, frame: Any) -> None:
        # Runs between two bytecodes of whatever the trainer is doing: only note it.
        self.received = signum

    def requested(self) -> bool:
        return self.received is not None

    def can_hand_over(self) -> bool:
        """Whether submitit's handler is there to requeue the job (inside a submitit job, not the debug executor)."""
        return self._submitit_handler is not None

    def hand_over(self, signum: int | None = None) -> None:
        """Let submitit's handler checkpoint and requeue (it exits the process); ``signum``: a packed run's
        preemption, which reached the run's process rather than this one."""
        signum = signum or self.received
        if self._submitit_handler is None or signum is None:
            raise RuntimeError("hand_over without a held preemption signal")
        self._submitit_handler(signum, None)


if __name__ == "__main__":  # a packed run's process (PackedTrainJob)
    sys.exit(packed_run_main(sys.argv[1]))
