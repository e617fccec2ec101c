"""Decode the candidates of one split into a uint8 tensor at a fixed side, recording what was kept and skipped."""
from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from bench.data.decode import SkipImage, check_colour, check_size, read_colour_image
from bench.data.items import Box, SourceImage


@dataclass(frozen=True)
class DecodedSplit:
    """``images`` uint8 (N, 3, side, side) with their ``ids``; ``record`` is the split's manifest entry.

    ``pairs`` holds each item's paired input image, row for row (None when the items have
    none); ``examined`` the files looked at, kept or skipped; ``kept_files`` maps the sha256
    of each kept file to the id of its first item.
    """

    images: torch.Tensor
    pairs: torch.Tensor | None
    ids: list[str]
    record: dict
    examined: frozenset[Path]
    kept_files: dict[str, str]


def decode_split(items: list[SourceImage], name: str, side: int, min_side: int, greyscale_chroma: float, *,
                 limit: int | None = None, exclude: frozenset[Path] = frozenset(),
                 kept_elsewhere: dict[str, str] | None = None) -> DecodedSplit:
    """Decode each file of ``items`` once, in order, crop its boxes and resize every item to side x side.

    The resize ignores the aspect ratio and is bicubic, as pix2pix's.  A file is skipped
    when it is unreadable, greyscale or too small (see ``read_colour_image``), or holds the
    same bytes as a file already kept here or in ``kept_elsewhere`` (sha256 -> id); a crop
    is checked for size and greyscale too.  Files in ``exclude`` are no candidates.  With
    ``limit``, decoding stops once that many items are kept.

    ``record`` holds ``candidates`` (items), ``requested`` (the limit), ``examined_files``,
    ``items`` (id, sha256 of the file, box, and pair_box for pairs), ``skipped`` (id,
    reason) and ``skip_counts`` (per reason kind: greyscale, unreadable, too small, duplicate).
    """
    by_path: dict[Path, list[SourceImage]] = {}
    for item in items:
        if item.path not in exclude:
            by_path.setdefault(item.path, []).append(item)
    paired = any(item.pair_box is not None for item in items)
    known = dict(kept_elsewhere or {})
    kept_files: dict[str, str] = {}
    images, pairs, kept, skipped, examined = [], [], [], [], []
    # With a limit the bar counts kept images towards it; without, the files decoded.
    bar = tqdm(total=limit or len(by_path), desc=f"decoding {name} images", unit="image" if limit else "file",
               disable=None)
    for path, path_items in by_path.items():
        if limit is not None and len(kept) >= limit:
            break
        examined.append(path)
        n_kept = len(kept)
        try:
            rgb = read_colour_image(path, min_side, greyscale_chroma)
            sha256 = _file_sha256(path)
            if sha256 in known:
                raise SkipImage(f"duplicate: same bytes as {known[sha256]}")
        except SkipImage as skip:
            skipped += [(item, skip) for item in path_items]
        else:
            for item in path_items:
                if limit is not None and len(kept) >= limit:
                    break
                try:
                    image, pair = _item_images(rgb, item, side, min_side, greyscale_chroma, paired)
                except SkipImage as skip:
                    skipped.append((item, skip))
                    continue
                images.append(image)
                pairs.append(pair)
                kept.append({"id": item.id, "sha256": sha256, "box": _listed(item.box),
                             **({"pair_box": _listed(item.pair_box)} if paired else {})})
            if len(kept) > n_kept:
                known[sha256] = kept_files[sha256] = kept[n_kept]["id"]
        bar.update(len(kept) - n_kept if limit else 1)
    bar.close()
    record = {
        "candidates": sum(len(path_items) for path_items in by_path.values()),
        "requested": limit,
        "examined_files": len(examined),
        "items": kept,
        "skipped": [{"id": item.id, "reason": skip.reason} for item, skip in skipped],
        "skip_counts": dict(Counter(skip.kind for _, skip in skipped)),
    }
    return DecodedSplit(_stack(images, side), _stack(pairs, side) if paired else None,
                        [entry["id"] for entry in kept], record, frozenset(examined), kept_files)


def _item_images(rgb: np.ndarray, item: SourceImage, side: int, min_side: int, greyscale_chroma: float,
                 paired: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The item's image (its crop, checked like a file) and, for pairs, its paired input image, at side x side."""
    target = _crop(rgb, item.box, min_side)
    if item.box is not None:  # the whole file passed the check already; a crop of it may still be grey
        check_colour(target, greyscale_chroma)
    if not paired:
        return _resize(target, side), None
    if item.pair_box is None:
        raise SkipImage("unreadable: not an aligned image pair")
    return _resize(target, side), _resize(_crop(rgb, item.pair_box, min_side), side)


def _crop(rgb: np.ndarray, box: Box | None, min_side: int) -> np.ndarray:
    """``rgb`` cropped to ``box``; a crop below ``min_side`` is skipped like a small file."""
    if box is None:
        return rgb
    left, top, right, bottom = box
    check_size(right - left, bottom - top, min_side)
    return rgb[top:bottom, left:right]


def _resize(rgb: np.ndarray, side: int) -> torch.Tensor:
    """(3, side, side) uint8 of the (H, W, 3) ``rgb``, bicubic (``bench.data.items.ITEM_RESIZE``)."""
    resized = Image.fromarray(rgb).resize((side, side), Image.Resampling.BICUBIC)
    return torch.from_numpy(np.array(resized)).permute(2, 0, 1).contiguous()


def _stack(images: list[torch.Tensor], side: int) -> torch.Tensor:
    return torch.stack(images) if images else torch.empty((0, 3, side, side), dtype=torch.uint8)


def _listed(box: Box | None) -> list[int] | None:
    return None if box is None else list(box)


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
