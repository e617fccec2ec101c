"""Checkpoint files: everything needed to continue a run bitwise-identically.

Saved with torch.save and loaded with ``weights_only=True``, so only tensors and plain
Python values go in (numpy's RNG state is converted to a tensor for that reason).
"""
from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch

from .rundir import atomic_write

# The checkpoint in a run directory: the trainer writes it, a requeued job resumes from it.
CHECKPOINT_FILE = "checkpoint.pt"


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
    """Load a checkpoint onto the CPU with ``weights_only=True``."""
    return torch.load(path, map_location="cpu", weights_only=True)
