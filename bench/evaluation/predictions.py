"""A folder of predicted colour images, matched to the test items they predict and checked before any scoring.

Matching, by id:

* a test item's id is its dataset id (``bench.data``: the path under the dataset's root, e.g.
  ``val2017/000000000139.jpg``, or the sample photo and tile, ``chelsea/full-r0c0``) without its
  image extension: ``val2017/000000000139``;
* a prediction's id is its path under the predictions folder, ``/``-separated, without its
  extension: ``val2017/000000000139.png`` -> ``val2017/000000000139``.  Any image extension
  (``bench.data.items.IMAGE_EXTENSIONS``, any case) counts; other files and hidden files and
  folders (``.name``) are ignored;
* a flat folder (no sub-folders with images) may name its files by the last part of the id
  alone (``000000000139.png``), as most colourisers write them, when those last parts are unique
  among the test ids;
* two files of one id (``a.png`` and ``a.jpg``), test items without a prediction (missing) and
  predictions of no test item (extra) are an error that lists them; with ``allow_missing`` the
  test items that have a prediction are scored and the rest (missing and extra) only counted.

Every matched file is then decoded in full (a truncated file is an error, not a partial image) and
must be 8-bit colour: single-channel (greyscale) files and 16-bit-per-channel files are refused, as
is an alpha channel that is not fully opaque; palette files are converted to RGB.  Sizes must equal
the evaluation resolution, or, with ``resize``, the predictions are resized to it by the named Pillow
resampling filter (antialiased), which the records name.  Each problem is one
:class:`PredictionError` line naming the folder, the files and what to do; nothing is scored
unless every file passes.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import torch
from PIL import Image, ImageOps

from bench.config import ConfigError
from bench.config.names import RESIZER_NAMES
from bench.data.items import IMAGE_EXTENSIONS

# --resize NAME -> the Pillow filter and the words records give it
RESIZERS = {
    "bicubic": (Image.Resampling.BICUBIC, "Pillow bicubic, antialiased (the ground truth's own filter)"),
    "bilinear": (Image.Resampling.BILINEAR, "Pillow bilinear, antialiased"),
    "lanczos": (Image.Resampling.LANCZOS, "Pillow Lanczos (a = 3), antialiased"),
}
if tuple(RESIZERS) != RESIZER_NAMES:  # the command line offers bench.config.names' list without importing this module
    raise ImportError(f"bench.evaluation.predictions: {list(RESIZERS)} differ from bench.config.names.RESIZER_NAMES")
_SINGLE_CHANNEL_MODES = {"1", "L", "LA", "La", "I", "F"}
_COLOUR_MODES = {"RGB", "RGBA", "RGBa", "P", "PA"}
LISTED = 5  # ids or files named in one error line; the rest are counted


class PredictionError(ConfigError):
    """A predictions folder or file cannot be scored; the message names it and says why (exit code 2)."""


@dataclass(frozen=True)
class Predictions:
    """The predictions of the matched test items, in the test split's order.

    ``images``: uint8 (N, 3, S, S); ``ids``: the test ids they predict; ``indices``: their rows in the
    test split; ``files``: every matched file's path under the folder -> its sha256; ``formats``: the
    files' formats as Pillow names them (``PNG``, ``JPEG``, ...); ``missing``/``extra``: test ids without a
    prediction and prediction ids of no test item (empty unless ``allow_missing``); ``resized``: how many
    files were resized to S x S.
    """

    images: torch.Tensor
    ids: list[str]
    indices: list[int]
    files: dict[str, str]
    formats: tuple[str, ...]
    missing: list[str]
    extra: list[str]
    resized: int


def item_key(test_id: str) -> str:
    """A test id without its image extension, the id a prediction file must have."""
    path = PurePosixPath(test_id)
    return str(path.with_suffix("")) if path.suffix.lower() in IMAGE_EXTENSIONS else test_id


def read_predictions(folder: str | Path, test_ids: list[str], side: int, *, allow_missing: bool = False,
                     resize: str | None = None) -> Predictions:
    """The predictions in ``folder`` of the test items ``test_ids`` at ``side`` x ``side`` (see the module)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise PredictionError(f"{folder}: no such folder of predictions")
    if resize is not None and resize not in RESIZERS:
        raise PredictionError(f"--resize {resize}: unknown; allowed: {', '.join(RESIZERS)}")
    files = _files_by_id(folder)
    keys = {item_key(test_id): index for index, test_id in enumerate(test_ids)}
    files = _as_test_keys(folder, files, keys)
    duplicates = {key: paths for key, paths in files.items() if len(paths) > 1}
    if duplicates:
        raise PredictionError(f"{folder}: {len(duplicates)} ids have more than one file: " + _listed(
            [" and ".join(p.relative_to(folder).as_posix() for p in paths) for paths in duplicates.values()]))
    missing = [test_ids[index] for key, index in keys.items() if key not in files]
    extra = sorted(key for key in files if key not in keys)
    if (missing or extra) and not allow_missing:
        raise PredictionError(f"{folder}: " + "; ".join(part for part in (
            f"{len(missing)} of {len(test_ids)} test items have no prediction: {_listed(missing)}" if missing else "",
            f"{len(extra)} files predict no test item: {_listed(extra)}" if extra else "") if part)
            + "; name each file by its test item's id (see docs/scoring.md) or pass --allow-missing")
    matched = sorted((keys[key], paths[0]) for key, paths in files.items() if key in keys)
    if not matched:
        raise PredictionError(f"{folder}: none of its {len(files)} image files is a prediction of one of the "
                              f"{len(test_ids)} test items (e.g. {_listed(list(keys))})")
    arrays, formats = zip(*(_decode(path) for _, path in matched))
    wrong = [(path, array.shape) for (_, path), array in zip(matched, arrays) if array.shape[:2] != (side, side)]
    if wrong and resize is None:
        raise PredictionError(f"{folder}: {len(wrong)} predictions are not {side}x{side}, the evaluation resolution: "
                              + _listed([f"{p.relative_to(folder).as_posix()} {s[1]}x{s[0]}" for p, s in wrong])
                              + f"; pass --resize {'|'.join(RESIZERS)} to resize them")
    images = torch.stack([torch.from_numpy(_resized(array, side, resize)).permute(2, 0, 1) for array in arrays])
    return Predictions(images.contiguous(), [test_ids[index] for index, _ in matched], [index for index, _ in matched],
                       {path.relative_to(folder).as_posix(): _sha256(path) for _, path in matched},
                       tuple(sorted(set(formats))), missing, extra, len(wrong))


def _files_by_id(folder: Path) -> dict[str, list[Path]]:
    """Prediction id -> its image files under ``folder`` (hidden files and folders left out), sorted."""
    files: dict[str, list[Path]] = {}
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if any(part.startswith(".") for part in relative.parts) or path.suffix.lower() not in IMAGE_EXTENSIONS:
            continue
        if path.is_file():
            files.setdefault(relative.with_suffix("").as_posix(), []).append(path)
    return files


def _as_test_keys(folder: Path, files: dict[str, list[Path]], keys: dict[str, int]) -> dict[str, list[Path]]:
    """``files`` by test id: a flat folder's files named by the last part of the ids are mapped to the whole ids."""
    if any("/" in key for key in files) or not any("/" in key for key in keys) or set(files) & set(keys):
        return files
    by_name: dict[str, list[str]] = {}
    for key in keys:
        by_name.setdefault(PurePosixPath(key).name, []).append(key)
    shared = sorted(name for name, owners in by_name.items() if len(owners) > 1)
    if shared:
        raise PredictionError(f"{folder}: files are named by the last part of the test ids, but {len(shared)} of "
                              f"those are shared by several test items ({_listed(shared)}); put each file at its "
                              "test item's id, in sub-folders")
    return {by_name[name][0] if name in by_name else name: paths for name, paths in files.items()}


def _decode(path: Path) -> tuple[np.ndarray, str]:
    """The file as an 8-bit (H, W, 3) RGB array in EXIF orientation, and its format; PredictionError otherwise."""
    try:
        with Image.open(path) as image:
            file_format = image.format
            sixteen_bit = any(";16" in str(tile.args) for tile in image.tile) or image.mode.startswith("I;16")
            image.load()  # the whole file: a truncated one fails here
            image = ImageOps.exif_transpose(image)
    except Exception as err:  # Pillow raises many types on damaged files; all mean "cannot be scored"
        raise PredictionError(f"{path}: unreadable ({type(err).__name__}: {err}); predictions must be complete "
                              "8-bit RGB image files") from None
    if sixteen_bit:
        raise PredictionError(f"{path}: 16 bits per channel ({image.mode}); save predictions as 8-bit RGB "
                              "(the metrics score 8-bit outputs)")
    if image.mode in _SINGLE_CHANNEL_MODES:
        raise PredictionError(f"{path}: single-channel ({image.mode}), a greyscale image; predictions must be "
                              "colour (8-bit RGB)")
    if image.mode not in _COLOUR_MODES:
        raise PredictionError(f"{path}: colour mode {image.mode}; save predictions as 8-bit RGB")
    if image.mode in ("RGBA", "RGBa", "PA") or "transparency" in image.info:
        alpha = np.asarray(image.convert("RGBA"))[..., 3]
        if (alpha != 255).any():
            raise PredictionError(f"{path}: transparent pixels ({int((alpha != 255).sum())}); predictions must be "
                                  "opaque 8-bit RGB")
    return np.array(image.convert("RGB")), file_format


def _resized(array: np.ndarray, side: int, resize: str | None) -> np.ndarray:
    if array.shape[:2] == (side, side):
        return array
    return np.array(Image.fromarray(array).resize((side, side), RESIZERS[resize][0]))


def _sha256(path: Path) -> str:
    with open(path, "rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def _listed(items: list[str]) -> str:
    """The first few of ``items``, then how many more."""
    shown = ", ".join(items[:LISTED])
    return shown + (f" and {len(items) - LISTED} more" if len(items) > LISTED else "")
