"""The callable a sweep submits: one training run, preemptible through submitit's checkpoint protocol.

On the preemption / time-out signal (USR2) submitit's handler would checkpoint and requeue
at once, in the middle of a training step.  While the run trains, :class:`TrainJob` holds
the signal back instead: the trainer finishes the step it is in, writes ``checkpoint.pt``
for that step and returns; only then does submitit's handler run, call
:meth:`TrainJob.checkpoint` and requeue the job.  The requeued job calls ``train`` again
on the same directory, which resumes from that checkpoint, so a USR2 costs one step plus
the time to save, requeue and start again, never the run.

Every job, and every ``colorbench sweep`` that pickles one, imports this module: it imports
torch and the trainer only when the job runs (``TrainJob.__call__``), so that loading it
costs no more than submitit and the config.
"""
from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import submitit

from bench.config import config_from_dict
from bench.run.reproducible import pinned_threads


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
        import torch
        threads = threads or int(os.environ.get("SLURM_CPUS_PER_TASK", 0)) or None
        threads = pinned_threads() or threads  # --reproducible: the thread count decides the digits too
        if threads:
            torch.set_num_threads(threads)
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

    def hand_over(self) -> None:
        """Let submitit's handler checkpoint and requeue (it exits the process)."""
        if self._submitit_handler is None or self.received is None:
            raise RuntimeError("hand_over without a held preemption signal")
        self._submitit_handler(self.received, None)
