"""Checkpoint files: everything needed to continue a run bitwise-identically.

Saved with torch.save and loaded with ``weights_only=True``, so only tensors and plain
Python values go in (numpy's RNG state is converted to a tensor for that reason).  The
trainer's checkpoint also names the run it belongs to (``run_id``) and its ``step``, so a
checkpoint copied in from another run is refused rather than continued.
"""
from __future__ import annotations

from pathlib import Path

import torch

from bench.run.rundir import RunDirError, atomic_write

# The checkpoint in a run directory: the trainer writes it, a requeued job resumes from it.
CHECKPOINT_FILE = "checkpoint.pt"
# What a finished run's checkpoint keeps unless config.keep_training_state (bench.training.train): enough to score it.
FINISHED_CHECKPOINT_KEYS = ("generator", "step", "run_id")


def save_checkpoint(path: Path, state: dict) -> None:
    """Atomically write ``state`` (temp file + os.replace)."""
    atomic_write(path, lambda handle: torch.save(state, handle), mode="wb")


def load_checkpoint(path: Path) -> dict:
    """Load a checkpoint onto the CPU with ``weights_only=True``.

    A file that cannot be loaded (empty, truncated, not a checkpoint) raises :class:`RunDirError`
    with one line naming it.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        state = torch.load(path, map_location="cpu", weights_only=True) if size else None
    except FileNotFoundError:
        raise
    except Exception as err:  # torch raises RuntimeError, UnpicklingError, EOFError, ... with long messages
        problem = _load_problem(err)
    else:
        problem = "it is empty" if not size else None if isinstance(state, dict) else "it holds no state dict"
    if problem:
        raise RunDirError(f"{path}: not a readable checkpoint ({problem}); delete it to restart the run from "
                          "step 0, or put back an intact copy")
    return state


def _load_problem(err: Exception) -> str:
    text = str(err)
    if "central directory" in text or "zip archive" in text or isinstance(err, EOFError):
        return "truncated or not a torch zip archive"
    if "Weights only load failed" in text or "weights_only" in text:
        return "it holds objects other than tensors and plain values"
    first = text.splitlines()[0] if text else ""
    return f"{type(err).__name__}: {first[:120]}" if first else type(err).__name__
