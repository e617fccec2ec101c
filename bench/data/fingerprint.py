"""The data fingerprint: what a run's data id hashes, read off the files without decoding a pixel.

``{"images": [[split, sha256, box, pair_box], ...], "weights": sha256 | None}``: each candidate
image of the train and test splits in order, with the sha256 of its file's bytes, its crop box
and paired box, and the sha256 of the weights file the generator loads, if any
(:func:`bench.run.identity.data_id_of` hashes it into the data id).

File hashes are remembered in ``<cache_dir>/file-sha256.json`` by path, size and mtime, so
a sweep of hundreds of runs reads each photo once.  Light to import: no torch (the weights
file's default path loads torchvision only for a pretrained generator).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from bench.config import ConfigError, RunConfig
from bench.data.cache import cache_dir
from bench.data.datasets import dataset_root
from bench.data.download import download_dataset
from bench.data.errors import DatasetError
from bench.data.sources import open_source
from bench.run.identity import data_id_of
from bench.run.rundir import atomic_write

_HASH_CACHE_FILE = "file-sha256.json"


class DataUnavailable(ConfigError):
    """The data (or the weights file) a config names is not here, so its data id cannot be computed."""


def data_id(config: RunConfig, *, fetch: bool = False) -> str:
    """The data id of ``config`` (see the module docstring); ``fetch`` downloads a missing benchmark dataset first
    when ``data.download`` is set.  Raises :class:`DataUnavailable` naming what is missing."""
    return data_id_of(data_fingerprint(config, fetch=fetch))


def data_fingerprint(config: RunConfig, *, fetch: bool = False) -> dict[str, Any]:
    """What the data id hashes: ``{"images": [[split, sha256, box, pair_box], ...], "weights": sha256 | None}``."""
    cfg = config.data
    hashes = _FileHashes(cache_dir(cfg.cache_dir) / _HASH_CACHE_FILE)
    try:
        if fetch and cfg.download:
            download_dataset(cfg.dataset, dataset_root(cfg), cache_dir(cfg.cache_dir) / "downloads")
        source = open_source(cfg)
        images = [[split, hashes.sha256(item.path), _listed(item.box), _listed(item.pair_box)]
                  for split, items in (("train", source.train), ("test", source.test)) for item in items]
    except (DatasetError, OSError) as err:
        raise DataUnavailable(f"the data of this run cannot be fingerprinted: {_reason(err)}") from None
    fingerprint = {"images": images, "weights": _weights_sha256(config, hashes)}
    hashes.save()
    return fingerprint


def _weights_sha256(config: RunConfig, hashes: "_FileHashes") -> str | None:
    """The sha256 of the file an ImageNet-pretrained generator loads; None when it loads none."""
    gen = config.generator
    if gen.arch != "resnet18_unet" or not gen.pretrained_encoder:
        return None
    from bench.data.assets import asset_path  # imports torchvision, which knows the file's name
    path = Path(gen.pretrained_path).expanduser() if gen.pretrained_path else asset_path("resnet18")
    try:
        return hashes.sha256(path)
    except OSError as err:
        raise DataUnavailable(f"generator.pretrained_encoder: the weights file cannot be fingerprinted: "
                              f"{_reason(err)}") from None


class _FileHashes:
    """sha256 of files, remembered by (path, size, mtime_ns) in a JSON file; an unreadable store starts empty."""

    def __init__(self, store: Path) -> None:
        self.store, self.changed = store, False
        try:
            known = json.loads(store.read_text())
        except (OSError, ValueError):
            known = {}
        self.known: dict[str, list] = known if isinstance(known, dict) else {}

    def sha256(self, path: Path) -> str:
        stat = path.stat()
        key = str(path.resolve())
        entry = self.known.get(key)
        if isinstance(entry, list) and entry[:2] == [stat.st_size, stat.st_mtime_ns]:
            return entry[2]
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        self.known[key] = [stat.st_size, stat.st_mtime_ns, digest.hexdigest()]
        self.changed = True
        return digest.hexdigest()

    def save(self) -> None:
        """Write the store when it learnt something; a cache folder that cannot be written only costs speed."""
        if not self.changed:
            return
        try:
            self.store.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(self.store, lambda handle: json.dump(self.known, handle))
        except OSError:
            pass


def _listed(box: tuple[int, ...] | None) -> list[int] | None:
    return None if box is None else list(box)


def _reason(err: BaseException) -> str:
    if isinstance(err, OSError) and err.filename is not None:
        return f"{err.filename}: {err.strerror or err}"
    return str(err)
