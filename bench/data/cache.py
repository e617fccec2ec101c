"""On-disk cache of prepared datasets: where it lives, what its key covers, atomic save and safe load.

One file per prepared dataset, ``<cache_dir>/images/<key>.pt``, with a readable copy of its
manifest in ``<cache_dir>/manifests/<key>.json``.  The key covers the source, a cheap
fingerprint of its file list (no file is read), the sizes, the selection and the filter
knobs, so any change to the files or the settings misses the cache and rebuilds.
"""
from __future__ import annotations

import hashlib
import json
import os
import pickle
import warnings
from pathlib import Path

from bench.data.items import SourceSplits
from bench.run.rundir import atomic_write

# Bump when the decoding, filtering, resizing or the payload layout changes, so old files are not reused.
# 3: the greyscale rule measures chroma with each image's mean tint removed (tinted grey photos are skipped).
FORMAT_VERSION = 3


def cache_dir(configured: str | None) -> Path:
    """``configured`` if set, else $COLORBENCH_CACHE, else ~/.cache/colorbench."""
    chosen = configured or os.environ.get("COLORBENCH_CACHE") or Path.home() / ".cache" / "colorbench"
    return Path(chosen).expanduser()


def file_list_hash(source: SourceSplits) -> str:
    """sha256 over each item, in order: its split, id, crop boxes and its file's byte size and mtime_ns.

    An item's id is its path relative to the folder root (or the sample photo and tile),
    so the hash is independent of where the folder is mounted but sees any file change.
    """
    digest = hashlib.sha256()
    for split, items in (("train", source.train), ("test", source.test)):
        for item in items:
            stat = item.path.stat()
            digest.update(json.dumps([split, item.id, item.box, item.pair_box, stat.st_size,
                                      stat.st_mtime_ns]).encode())
    return digest.hexdigest()


def cache_file(directory: Path, **identity: object) -> Path:
    """The cache file for a dataset identified by the JSON-able keyword values (plus ``FORMAT_VERSION``)."""
    canonical = json.dumps({"format_version": FORMAT_VERSION, **identity}, sort_keys=True)
    return directory / "images" / f"{hashlib.sha256(canonical.encode()).hexdigest()}.pt"


def manifest_file(path: Path) -> Path:
    """The readable manifest beside the cache file ``path``: ``<cache_dir>/manifests/<key>.json``."""
    return path.parent.parent / "manifests" / f"{path.stem}.json"


def load_cached(path: Path) -> dict | None:
    """The payload stored at ``path``; None when there is none or it cannot be read (with a warning)."""
    if not path.is_file():
        return None
    import torch  # here, not at the top: run identity reads cache_dir without loading torch
    try:
        return torch.load(path, weights_only=True)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as err:
        warnings.warn(f"ignoring unreadable dataset cache {path} ({type(err).__name__}); rebuilding it", stacklevel=2)
        return None


def save_atomically(payload: dict, path: Path) -> None:
    """Write ``payload`` (tensors and plain values only) to ``path`` so readers never see a partial file."""
    import torch
    atomic_write(path, lambda handle: torch.save(payload, handle), mode="wb")
