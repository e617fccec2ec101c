"""Run identity: the ids that name a run by everything its results depend on.

    config id = <config hash>-<data id>     one grid point; the seeds of a point share it
    run id    = <config id>-s<seed>         one run, and the name of its directory

The config hash covers the result-affecting config fields (those not marked
``identity=False`` in ``bench.config``).
The data id covers what the data *is*, not where it lies: 8 hex digits of a sha256 over
each candidate image of the train and test splits, in order (its split, the sha256 of its
file's bytes, its crop box and paired box), and over the sha256 of the weights file the
generator loads, if any.  The same photos under another path or on another machine keep
their id; other photos, other crops or another weights file never share one.  Which of
the candidates a run keeps follows from them and the config (filters, n_train, n_test), so
hashing the candidates, which reads bytes but decodes no pixel, is enough.

File hashes are remembered in ``<cache_dir>/file-sha256.json`` by path, size and mtime, so
a sweep of hundreds of runs reads each photo once.  Light to import: the data layer (and
torch with it) loads only when an id is computed.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from pathlib import Path
from typing import Any

from bench.config import ConfigError, RunConfig
from bench.rundir import atomic_write

UNKNOWN_DATA_ID = "________"  # shown (never written as a directory) where the data is not here to fingerprint
DATA_ID_HEX = 8
_HASH_CACHE_FILE = "file-sha256.json"


class DataUnavailable(ConfigError):
    """The data (or the weights file) a config names is not here, so its data id cannot be computed."""


def config_hash(config: RunConfig) -> str:
    """Stable 12-hex-digit hash of the result-affecting fields (seed, paths, device, cadence excluded).

    The first half of a config id; the second is the data id.
    """
    canonical = json.dumps(_identity_dict(config), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def _identity_dict(config: Any) -> dict:
    """The fields of ``config`` (a dataclass) that enter the hash, nested as in the config."""
    out = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value):
            if section := _identity_dict(value):  # a section of only non-identity fields (log) leaves ids as they were
                out[f.name] = section
        elif f.metadata.get("identity", True):
            out[f.name] = list(value) if isinstance(value, tuple) else value
    return out


def config_id(config: RunConfig, data_id: str) -> str:
    """The id of a grid point: the config hash and the data id."""
    return f"{config_hash(config)}-{data_id}"


def run_id(config: RunConfig, data_id: str) -> str:
    """The id of one run: the config id and the seed."""
    return f"{config_id(config, data_id)}-s{config.seed}"


def config_id_of(run: str) -> str:
    """The config id within the run id ``run``."""
    return run.rsplit("-s", 1)[0]


def same_run(planned: str, actual: str) -> bool:
    """Whether ``actual`` is the run id ``planned`` names; a planned id with ``UNKNOWN_DATA_ID`` (its data not
    here) names the run of that config hash and seed on whatever data it was trained."""
    if UNKNOWN_DATA_ID not in planned:
        return planned == actual
    head, _, seed = planned.partition(f"-{UNKNOWN_DATA_ID}-")
    return re.fullmatch(rf"{re.escape(head)}-[0-9a-f]{{{DATA_ID_HEX}}}-{re.escape(seed)}", actual) is not None


def data_id(config: RunConfig, *, fetch: bool = False) -> str:
    """The data id of ``config`` (see the module docstring); ``fetch`` downloads a missing benchmark dataset first
    when ``data.download`` is set.  Raises :class:`DataUnavailable` naming what is missing."""
    return data_id_of(data_fingerprint(config, fetch=fetch))


def data_id_of(fingerprint: dict[str, Any]) -> str:
    """The data id a :func:`data_fingerprint` hashes to."""
    return hashlib.sha256(json.dumps(fingerprint, sort_keys=True).encode()).hexdigest()[:DATA_ID_HEX]


def data_fingerprint(config: RunConfig, *, fetch: bool = False) -> dict[str, Any]:
    """What the data id hashes: ``{"images": [[split, sha256, box, pair_box], ...], "weights": sha256 | None}``."""
    from bench.data.cache import cache_dir  # imports torch
    from bench.data.datasets import dataset_root
    from bench.data.download import download_dataset
    from bench.data.errors import DatasetError
    from bench.data.sources import open_source

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
    from bench.models.resnet_unet import default_weights_path  # imports torch
    path = Path(gen.pretrained_path).expanduser() if gen.pretrained_path else default_weights_path()
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
