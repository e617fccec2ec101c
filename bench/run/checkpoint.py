"""Checkpoint files: everything needed to continue a run bitwise-identically.

Saved with torch.save and loaded with ``weights_only=True``, so only tensors and plain
Python values go in (numpy's RNG state is converted to a tensor for that reason).  The
trainer's checkpoint also names the run it belongs to (``run_id``) and its ``step``, so a
checkpoint copied in from another run is refused rather than continued.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

from bench.run.rundir import CHECKPOINT_ADVICE, RunDirError, atomic_write, open_regular
from bench.run.rundir import CHECKPOINT_FILE as CHECKPOINT_FILE  # the file's name, where checkpoints are read

# What a finished run's checkpoint keeps unless config.keep_training_state (bench.training.train): enough to score it.
FINISHED_CHECKPOINT_KEYS = ("generator", "step", "run_id")


def save_checkpoint(path: Path, state: dict) -> None:
    """Atomically write ``state`` (temp file + os.replace)."""
    atomic_write(path, lambda handle: torch.save(state, handle), mode="wb")


def load_checkpoint(path: Path) -> dict:
    """Load a checkpoint onto the CPU with ``weights_only=True``.

    A file that cannot be loaded (empty, truncated, not a checkpoint; not a regular file or a link
    out of its folder: ``bench.run.rundir``'s reader) raises :class:`RunDirError` with one line naming it.
    """
    path = Path(path)
    handle = open_regular(path)
    if handle is None:
        raise FileNotFoundError(2, "No such file or directory", str(path))
    with handle:
        size = os.fstat(handle.fileno()).st_size
        try:
            state = torch.load(handle, map_location="cpu", weights_only=True) if size else None
        except Exception as err:  # torch raises RuntimeError, UnpicklingError, EOFError, ... with long messages
            problem = load_problem(err)
        else:
            problem = "it is empty" if not size else None if isinstance(state, dict) else "it holds no state dict"
    if problem:
        raise RunDirError(f"{path}: not a readable checkpoint ({problem}); {CHECKPOINT_ADVICE}")
    return state


def load_problem(err: Exception) -> str:
    """What went wrong loading a torch file, in a few words on one line (torch's own messages span dozens)."""
    text = str(err)
    if any(sign in text for sign in ("central directory", "zip archive", "invalid load key", "Unsupported operand")) \
            or isinstance(err, EOFError):
        return "truncated or not a torch zip archive"
    if "Weights only load failed" in text or "weights_only" in text:
        return "it holds objects other than tensors and plain values"
    first = text.splitlines()[0] if text else ""
    return f"{type(err).__name__}: {first[:120]}" if first else type(err).__name__


def load_own_checkpoint(path: Path, run: str, *, last_step: int | None = None) -> dict | None:
    """The checkpoint at ``path`` of the run ``run`` (None when there is none), loaded as :func:`load_checkpoint` does.

    Refused with :class:`RunDirError` naming the file: one that names no run or another run, a
    step that is not an integer from 0 to ``last_step`` (when known), and one without generator
    weights.  ``train`` and ``eval`` both load checkpoints through this.
    """
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        return None
    state = load_checkpoint(path)
    advice = "delete it to restart this run from step 0, or put back this run's own checkpoint"
    if "run_id" not in state:
        raise RunDirError(f"{path}: does not say which run it belongs to (no run id: an older colorbench wrote it, "
                          f"or another program); {advice}")
    if state["run_id"] != run:
        raise RunDirError(f"{path}: belongs to run {state['run_id']!r}, not to this directory's run {run!r} (copied "
                          f"or moved here?); {advice}")
    step = state.get("step")
    if not (isinstance(step, int) and not isinstance(step, bool) and 0 <= step <= (step if last_step is None
                                                                                    else last_step)):
        allowed = "an integer >= 0" if last_step is None else f"0 to {last_step}"
        raise RunDirError(f"{path}: step {step!r} is not a step of this run ({allowed}); {advice}")
    if not isinstance(state.get("generator"), dict):
        raise RunDirError(f"{path}: holds no generator weights; {advice}")
    return state
