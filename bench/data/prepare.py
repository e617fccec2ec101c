"""Turn a data config into train and test tensors, decoding once and caching the result on disk."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import torch

from bench.config import DataConfig
from bench.data.augment import load_size
from bench.data.build import decode_split
from bench.data.errors import DatasetError
from bench.data.cache import FORMAT_VERSION, cache_dir, cache_file, file_list_hash, load_cached, save_atomically
from bench.data.sources import open_source


@dataclass(frozen=True)
class PreparedData:
    """Decoded dataset: ``train`` uint8 (N, 3, S, S) at the load size, ``test`` uint8 (M, 3, size, size).

    ``train_ids``/``test_ids`` name the rows; ``manifest`` (plain JSON-able values) records
    the source, every kept item with its file's sha256, every skipped item with its reason,
    per-reason counts, the file-list hash and the cache file.
    """

    train: torch.Tensor
    test: torch.Tensor
    train_ids: list[str]
    test_ids: list[str]
    manifest: dict


def prepare_data(cfg: DataConfig) -> PreparedData:
    """Decode, filter and resize the dataset ``cfg`` describes, or load it from the cache when unchanged.

    Training images are stored at ``load_size(cfg.image_size, cfg.augmentation)`` for the
    random crop; test images at ``cfg.image_size``.  Raises ``DatasetError`` when a split
    has no usable image.
    """
    source = open_source(cfg)
    side = load_size(cfg.image_size, cfg.augmentation)
    settings = {"image_size": cfg.image_size, "load_size": side,
                "min_side": cfg.min_side, "greyscale_chroma": cfg.greyscale_chroma}
    list_hash = file_list_hash(source)
    path = cache_file(cache_dir(cfg.cache_dir), source=source.name, file_list_hash=list_hash, **settings)
    payload = load_cached(path)
    if payload is None:
        train = decode_split(source.train, "train", side, cfg.min_side, cfg.greyscale_chroma)
        test = decode_split(source.test, "test", cfg.image_size, cfg.min_side, cfg.greyscale_chroma)
        _check_usable(source.root, {"train": train.record, "test": test.record})
        manifest = {"format_version": FORMAT_VERSION, "source": source.name, "root": source.root, **settings,
                    "file_list_hash": list_hash, "splits": {"train": train.record, "test": test.record}}
        payload = {"train": train.images, "test": test.images, "train_ids": train.ids, "test_ids": test.ids,
                   "manifest": manifest}
        save_atomically(payload, path)
    return PreparedData(payload["train"], payload["test"], payload["train_ids"], payload["test_ids"],
                        {**payload["manifest"], "cache_file": str(path)})


def _check_usable(root: str, records: dict[str, dict]) -> None:
    """Raise DatasetError naming the folder and the skip counts when a split has no usable image."""
    empty = [name for name, record in records.items() if not record["items"]]
    if not empty:
        return
    totals = Counter()
    for record in records.values():
        totals.update(record["skip_counts"])
    listed = sum(len(r["items"]) + len(r["skipped"]) for r in records.values())
    counts = ", ".join(f"{kind}: {count}" for kind, count in sorted(totals.items())) or "none skipped"
    raise DatasetError(f"no usable image for the {' and '.join(empty)} split in {root}: {listed} images listed, "
                       f"{sum(totals.values())} skipped ({counts})")
