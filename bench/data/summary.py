"""What ``colorbench data prepare`` prints: the counts, the skips, where the files are and how to train on them.

Paths are printed absolute, so that the files and the printed command work from any folder.
"""
from __future__ import annotations

import dataclasses
import shlex
from pathlib import Path

from bench.config import DataConfig
from bench.data.prepare import PreparedData


def summary(data: PreparedData, cfg: DataConfig) -> str:
    """Lines describing ``data`` (prepared from ``cfg``): per split the images kept, their size and the skips."""
    manifest = data.manifest
    lines = [f"{manifest['source']} from {manifest['root']}"]
    for split, images in (("train", data.train), ("test", data.test)):
        record = manifest["splits"][split]
        counts = ", ".join(f"{kind}: {n}" for kind, n in sorted(record["skip_counts"].items()))
        pairs = " with paired inputs" if getattr(data, f"{split}_inputs") is not None else ""
        lines.append(f"  {split:5s} {len(images):7d} images of {images.shape[-1]}x{images.shape[-2]}{pairs}; "
                     f"skipped {len(record['skipped'])}" + (f" ({counts})" if counts else ""))
    lines += [f"  cache    {Path(manifest['cache_file']).absolute()}",
              f"  manifest {Path(manifest['manifest_file']).absolute()}",
              "train on it with: colorbench train "
              + " ".join(f"--set {shlex.quote(override)}" for override in training_overrides(cfg))]
    return "\n".join(lines)


PATH_FIELDS = ("root", "train_list", "test_list", "cache_dir")
"""The DataConfig fields that name files or folders: printed absolute, so the command works from any folder."""


def training_overrides(cfg: DataConfig) -> list[str]:
    """``data.<field>=<value>`` for every field of ``cfg`` that differs from its default (download aside).

    Paths (:data:`PATH_FIELDS`) are made absolute against the current folder, as ``prepare_data`` read them.
    """
    def shown(name: str) -> object:
        value = getattr(cfg, name)
        return Path(value).expanduser().absolute() if name in PATH_FIELDS and value is not None else value
    return [f"data.{field.name}={shown(field.name)}" for field in dataclasses.fields(DataConfig)
            if getattr(cfg, field.name) != field.default and field.name != "download"]
