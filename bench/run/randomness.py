"""The randomness of a run: seeding, the RNG states a checkpoint saves, and seeds derived from (seed, purpose, index).

Training draws its data order and augmentation from seeds derived from the run's seed and the
step (:func:`derived_seed`), not from a running RNG, so a resumed run draws exactly what an
uninterrupted one would; the states :func:`rng_state` captures cover what does run on (dropout).
"""
from __future__ import annotations

import hashlib
import random

import numpy as np
import torch


def derived_seed(seed: int, purpose: str, index: int) -> int:
    """A 63-bit seed for (run seed, purpose, index), independent of any RNG state."""
    digest = hashlib.sha256(f"{seed}/{purpose}/{index}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


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
