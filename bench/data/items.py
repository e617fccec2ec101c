"""What a dataset is made of before decoding: items (a file, or a crop of one) split into train and test."""
from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
# How bench.data.build makes every item an image of the evaluation size S (its _resize), in the words metric
# records give it: one rule since the first version, so records made before they named it had it too.
ITEM_RESIZE = "each file, or its crop box, resized to S x S ignoring the aspect ratio, Pillow bicubic (as pix2pix)"

Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class SourceImage:
    """One dataset item: a file, or the crop ``box`` = (left, top, right, bottom) of it.

    Box coordinates are pixels of the EXIF-oriented image; ``None`` means the whole image.
    Items of one ``group`` show the same scene and always land in the same split.
    ``pair_box``, when set, is the crop of the same file that is this item's paired input
    image (the label map of an aligned pix2pix pair).
    """

    id: str
    group: str
    path: Path
    box: Box | None = None
    pair_box: Box | None = None


@dataclass(frozen=True)
class SourceSplits:
    """The items of a source, split into train and test; ``root`` names where they came from."""

    name: str
    root: str
    train: list[SourceImage]
    test: list[SourceImage]


def image_files(root: Path) -> list[str]:
    """Relative POSIX paths of the image files under ``root`` (recursively), sorted."""
    return sorted(path.relative_to(root).as_posix() for path in root.rglob("*")
                  if path.suffix.lower() in IMAGE_EXTENSIONS and path.is_file())


Item = TypeVar("Item")


def seeded_order(items: list[Item], limit: int | None, seed: int) -> list[Item]:
    """``items`` unchanged when ``limit`` is None; else shuffled by ``random.Random(seed)``.

    The builder keeps the first ``limit`` usable items of this order, so a limit selects
    a seeded random sample; equal lists shuffle alike, whatever else the seed was used for.
    """
    if limit is None:
        return items
    shuffled = list(items)
    random.Random(seed).shuffle(shuffled)
    return shuffled
