"""Checkpoint files: everything needed to continue a run bitwise-identically.

Saved with torch.save and loaded with ``weights_only=True``, so only tensors and plain
Python values go in (numpy's RNG state is converted to a tensor for that reason).  The
trainer's checkpoint also names the run it belongs to (``run_id``) and its ``step``, so a
checkpoint copied in from another run is refused rather than continued.
"""
from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch

from .rundir import RunDirError, atomic_write

# The checkpoint in a run directory: the trainer writes it, a requeued job resumes from it.
CHECKPOINT_FILE = "checkpoint.pt"
# What a finished run's checkpoint keeps unless config.keep_training_state (bench.train): enough to score it.
FINISHED_CHECKPOINT_KEYS = ("generator", "step", "run_id")


def seed_all(seed: int) -> None:
    """Seed torch (as ``torch.manual_seed(seed)``), python and numpy from a run's seed.

    Training draws from torch alone; seeding the other two makes the states a checkpoint
    records the same in every process, so two runs of one config write identical checkpoints.
    """
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)


def rng_state() -> dict:
    """Python, numpy, torch (and CUDA) random states as checkpoint-safe values."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore the states captured by :func:`rng_state`."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


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
