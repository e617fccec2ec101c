"""Turn a data config into train and test tensors, decoding once and caching the result on disk."""
from __future__ import annotations

import contextlib
import os
import tempfile
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import torch

from bench.config import DataConfig
from bench.data.augmentation import load_size
from bench.data.build import decode_split
from bench.data.cache import (
    FORMAT_VERSION,
    cache_dir,
    cache_file,
    file_list_hash,
    load_cached,
    manifest_file,
    save_atomically,
)
from bench.data.datasets import dataset_root
from bench.data.download import download_dataset
from bench.data.errors import DatasetError
from bench.data.items import SourceSplits
from bench.data.sources import open_source
from bench.run.machine import check_memory
from bench.run.rundir import write_json


@dataclass(frozen=True)
class PreparedData:
    """Decoded dataset: ``train`` uint8 (N, 3, S, S) at the load size, ``test`` uint8 (M, 3, size, size).

    ``train_ids``/``test_ids`` name the rows; ``manifest`` (plain JSON-able values) records
    the source, every kept item with its file's sha256, every skipped item with its reason,
    per-reason counts, the file-list hash, the cache file and its readable copy.  For a
    dataset of pairs, ``train_inputs``/``test_inputs`` hold each row's paired input image
    (facades' label maps), else None.
    """

    train: torch.Tensor
    test: torch.Tensor
    train_ids: list[str]
    test_ids: list[str]
    manifest: dict
    train_inputs: torch.Tensor | None = None
    test_inputs: torch.Tensor | None = None

    def network_images(self, split: str, task: str) -> torch.Tensor:
        """The rows of ``split`` as the trainer passes them to ``bench.data.colour.encode``.

        ``colourise``: the photos; ``paired``: each photo with its paired input image stacked
        on the channels, (N, 6, S, S), so augmentation crops and flips both alike.
        """
        photos = getattr(self, split)
        if task == "colourise":
            return photos
        inputs = getattr(self, f"{split}_inputs")
        if inputs is None:
            raise DatasetError(f"data.task: paired needs a dataset of image pairs; {self.manifest['source']} has none")
        return torch.cat([photos, inputs], dim=1)


def prepare_data(cfg: DataConfig) -> PreparedData:
    """Decode, filter and resize the dataset ``cfg`` describes, or load it from the cache when unchanged.

    With ``cfg.download`` a benchmark dataset missing from its root is downloaded first.
    Training images are stored at ``load_size(cfg.image_size, cfg.augmentation)`` for the
    random crop; test images at ``cfg.image_size``.  The test split is filled first; a file
    examined for it, or a copy of a file kept for it, is never a training image.  Raises
    ``DatasetError`` when a split has no usable image, or fewer than ``n_train``/``n_test``.
    """
    if cfg.download:
        download_dataset(cfg.dataset, dataset_root(cfg), cache_dir(cfg.cache_dir) / "downloads")
    source = open_source(cfg)
    side = load_size(cfg.image_size, cfg.augmentation)
    _check_memory(source, cfg, side)
    settings = {"image_size": cfg.image_size, "load_size": side, "n_train": cfg.n_train, "n_test": cfg.n_test,
                "min_side": cfg.min_side, "greyscale_chroma": cfg.greyscale_chroma}
    list_hash = file_list_hash(source)
    folder = cache_dir(cfg.cache_dir)
    path = cache_file(folder, source=source.name, file_list_hash=list_hash, **settings)
    payload = load_cached(path)
    if payload is None:
        with _writing_cache(folder):
            _check_writable(path.parent)  # before decoding for minutes, not after
        payload = _build(source, cfg, side, settings, list_hash)
        with _writing_cache(folder):
            save_atomically(payload, path)
    manifest = {**payload["manifest"], "cache_file": str(path), "manifest_file": str(manifest_file(path))}
    if not manifest_file(path).is_file():
        try:
            write_json(manifest_file(path), manifest)
        except OSError as err:  # a read-only cache prepared elsewhere: the data is there, only its readable copy not
            warnings.warn(f"{manifest_file(path)}: cannot write the manifest's readable copy ({err.strerror or err})",
                          stacklevel=2)
    return PreparedData(payload["train"], payload["test"], payload["train_ids"], payload["test_ids"], manifest,
                        payload["train_inputs"], payload["test_inputs"])


def _check_memory(source: SourceSplits, cfg: DataConfig, side: int) -> None:
    """Refuse, before decoding for minutes, a dataset whose images cannot fit in memory: each split holds at most
    its candidates (or n_train / n_test of them) at 3 bytes a pixel, twice for image pairs."""
    n_train = len(source.train) if cfg.n_train is None else min(cfg.n_train, len(source.train))
    n_test = len(source.test) if cfg.n_test is None else min(cfg.n_test, len(source.test))
    channels = 6 if cfg.task == "paired" else 3
    needed = channels * (n_train * side ** 2 + n_test * cfg.image_size ** 2)
    check_memory("dataset", needed, f"{n_train} training images at {side}x{side} and {n_test} test images at "
                 f"{cfg.image_size}x{cfg.image_size}", "set data.n_train and data.n_test, or a smaller "
                 "data.image_size", bound="up to")


@contextlib.contextmanager
def _writing_cache(folder: Path) -> Iterator[None]:
    """An OSError while writing the dataset cache (also the one torch.save's RuntimeError hides in its context on
    a full disk) as one DatasetError naming the cache folder."""
    try:
        yield
    except (OSError, RuntimeError) as err:
        cause: BaseException | None = err
        while cause is not None and not (isinstance(cause, OSError) and cause.errno is not None):
            cause = cause.__cause__ or cause.__context__
        if cause is None:
            raise
        raise DatasetError(f"dataset cache {folder}: cannot write there ({cause.strerror or cause}); set "
                           "data.cache_dir or $COLORBENCH_CACHE to a writable folder") from err


def _check_writable(folder: Path) -> None:
    """Create ``folder`` and a file in it (removed again), raising the OSError when it cannot be written."""
    folder.mkdir(parents=True, exist_ok=True)
    fd, probe = tempfile.mkstemp(dir=folder, prefix=".write-test.", suffix=".tmp")
    os.close(fd)
    os.unlink(probe)


def _build(source: SourceSplits, cfg: DataConfig, side: int, settings: dict, list_hash: str) -> dict:
    """Decode both splits (test first) into the cache payload."""
    test = decode_split(source.test, "test", cfg.image_size, cfg.min_side, cfg.greyscale_chroma, limit=cfg.n_test)
    train = decode_split(source.train, "train", side, cfg.min_side, cfg.greyscale_chroma, limit=cfg.n_train,
                         exclude=test.examined, kept_elsewhere=test.kept_files)
    records = {"train": train.record, "test": test.record}
    _check_usable(source.root, records)
    _check_requested(source.root, records)
    manifest = {"format_version": FORMAT_VERSION, "source": source.name, "root": source.root, **settings,
                "split_seed": cfg.split_seed, "file_list_hash": list_hash, "splits": records}
    return {"train": train.images, "test": test.images, "train_ids": train.ids, "test_ids": test.ids,
            "train_inputs": train.pairs, "test_inputs": test.pairs, "manifest": manifest}


def _check_usable(root: str, records: dict[str, dict]) -> None:
    """Raise DatasetError naming the folder and the skip counts when a split has no usable image."""
    empty = [name for name, record in records.items() if not record["items"]]
    if not empty:
        return
    totals = Counter()
    for record in records.values():
        totals.update(record["skip_counts"])
    listed = sum(len(r["items"]) + len(r["skipped"]) for r in records.values())
    raise DatasetError(f"no usable image for the {' and '.join(empty)} split in {root}: {listed} images listed, "
                       f"{sum(totals.values())} skipped ({_counts(totals)})")


def _check_requested(root: str, records: dict[str, dict]) -> None:
    """Raise DatasetError when a split found fewer usable images than n_train / n_test asked for."""
    for name, record in records.items():
        if record["requested"] is not None and len(record["items"]) < record["requested"]:
            raise DatasetError(f"the {name} split in {root} needs {record['requested']} usable images; "
                               f"{record['candidates']} candidates gave {len(record['items'])}, "
                               f"{len(record['skipped'])} skipped ({_counts(record['skip_counts'])})")


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{kind}: {count}" for kind, count in sorted(counts.items())) or "none skipped"
