"""What ``colorbench data prepare`` prints: the counts, the skips, where the files are and how to train on them."""
from __future__ import annotations

import dataclasses
import shlex

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
    lines += [f"  cache    {manifest['cache_file']}", f"  manifest {manifest['manifest_file']}",
              "train on it with: colorbench train "
              + " ".join(f"--set {shlex.quote(override)}" for override in training_overrides(cfg))]
    return "\n".join(lines)


def training_overrides(cfg: DataConfig) -> list[str]:
    """``data.<field>=<value>`` for every field of ``cfg`` that differs from its default (download aside)."""
    return [f"data.{field.name}={getattr(cfg, field.name)}" for field in dataclasses.fields(DataConfig)
            if getattr(cfg, field.name) != field.default and field.name != "download"]
