"""Decode the items of one split into a uint8 tensor at a fixed side, recording what was kept and skipped."""
from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from bench.data.decode import SkipImage, check_size, read_colour_image
from bench.data.sources import SourceImage


@dataclass(frozen=True)
class DecodedSplit:
    """``images`` uint8 (N, 3, side, side) with their ``ids``; ``record`` is the split's manifest entry."""

    images: torch.Tensor
    ids: list[str]
    record: dict


def decode_split(items: list[SourceImage], name: str, side: int, min_side: int,
                 greyscale_chroma: float) -> DecodedSplit:
    """Decode each file of ``items`` once, crop its boxes and resize every item to side x side.

    The resize ignores the aspect ratio and is bicubic, as pix2pix's.  ``record`` holds
    ``items`` (id, sha256 of the source file, box), ``skipped`` (id, reason) and
    ``skip_counts`` (per reason kind: greyscale, unreadable, too small).
    """
    by_path: dict[Path, list[SourceImage]] = {}
    for item in items:
        by_path.setdefault(item.path, []).append(item)
    images, kept, skipped = [], [], []
    for path, path_items in tqdm(by_path.items(), desc=f"decoding {name} images", unit="file", disable=None):
        try:
            rgb = read_colour_image(path, min_side, greyscale_chroma)
        except SkipImage as skip:
            skipped += [(item, skip) for item in path_items]
            continue
        sha256 = _file_sha256(path)
        for item in path_items:
            try:
                image = _crop_and_resize(rgb, item.box, side, min_side)
            except SkipImage as skip:
                skipped.append((item, skip))
            else:
                images.append(image)
                kept.append({"id": item.id, "sha256": sha256, "box": None if item.box is None else list(item.box)})
    skip_counts = dict(Counter(skip.kind for _, skip in skipped))
    record = {
        "items": kept,
        "skipped": [{"id": item.id, "reason": skip.reason} for item, skip in skipped],
        "skip_counts": skip_counts,
    }
    stacked = torch.stack(images) if images else torch.empty((0, 3, side, side), dtype=torch.uint8)
    return DecodedSplit(stacked, [entry["id"] for entry in kept], record)


def _crop_and_resize(rgb: np.ndarray, box: tuple[int, int, int, int] | None, side: int, min_side: int) -> torch.Tensor:
    """(3, side, side) uint8 of ``rgb`` cropped to ``box``; a crop below ``min_side`` is skipped like a small file."""
    if box is not None:
        left, top, right, bottom = box
        check_size(right - left, bottom - top, min_side)
        rgb = rgb[top:bottom, left:right]
    resized = Image.fromarray(rgb).resize((side, side), Image.Resampling.BICUBIC)
    return torch.from_numpy(np.array(resized)).permute(2, 0, 1).contiguous()


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
