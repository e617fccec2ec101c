"""Decode one image file into an RGB array, or say why it cannot be used for colourisation.

A colourisation dataset must exclude greyscale photographs, which come in two kinds:
single-channel files, and RGB files whose three channels are (nearly) equal up to a uniform
tint (a sepia or blue toned print).  The second kind is detected by the mean chroma of the
image with its mean tint removed: each channel shifted by its mean minus the mean of all
three, then max(R, G, B) - min(R, G, B) averaged over pixels on 0..255.  An exact greyscale
image has 0, tinted or not, and one stored as JPEG gains about 1 to 2 from chroma noise.
The default threshold, chroma <= 2.0, separates the greyscale photographs of ../shared/data
(chroma 0 to 1.83, three of them tinted) from its colour ones (2.16 and up); see docs/datasets.md.
Orientation follows the EXIF tag, so arrays and crop boxes are in the coordinates a viewer
shows.
"""
from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

# Pillow modes holding one colour channel (with or without alpha).
_SINGLE_CHANNEL_MODES = {"1", "L", "LA", "La", "I", "F"}
# EXIF orientations 5..8 turn the stored image by 90 degrees, swapping width and height.
_TRANSPOSING_ORIENTATIONS = {5, 6, 7, 8}


class SkipImage(Exception):
    """This file must be left out of the dataset; ``reason`` says why, as ``"<kind>: <detail>"``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    @property
    def kind(self) -> str:
        """The reason without its detail: ``greyscale``, ``unreadable``, ``too small``, ``too large`` or ``duplicate``."""
        return self.reason.split(":", 1)[0]


def read_colour_image(path: str | Path, min_side: int, greyscale_chroma: float) -> np.ndarray:
    """Decode ``path`` into an (H, W, 3) uint8 RGB array in EXIF orientation, alpha dropped.

    Raises ``SkipImage`` (and nothing else for a bad file) when the file is unreadable,
    single-channel, has a shorter side below ``min_side``, or has a mean chroma of at most
    ``greyscale_chroma``.
    """
    image = _decode(Path(path))
    if image.mode in _SINGLE_CHANNEL_MODES or image.mode.startswith("I;16"):
        raise SkipImage("greyscale: single-channel")
    check_size(image.width, image.height, min_side)
    try:
        rgb = np.array(image.convert("RGB"))  # a writable copy; np.asarray would give a read-only view
    except ValueError as err:  # a mode Pillow cannot convert to RGB
        raise SkipImage(f"unreadable: {err}") from None
    check_colour(rgb, greyscale_chroma)
    return rgb


def mean_chroma(rgb: np.ndarray) -> float:
    """max(R, G, B) - min(R, G, B) averaged over the pixels of an (H, W, 3) uint8 array, on 0..255."""
    return float((rgb.max(axis=2) - rgb.min(axis=2)).mean())


def untinted_chroma(rgb: np.ndarray) -> float:
    """:func:`mean_chroma` of ``rgb`` with its mean tint removed: a grey photo with a uniform cast has ~0.

    The tint is each channel's mean minus the mean of the three; subtracting it leaves a colour
    photo's colours (they vary over the image) and takes a sepia or blue cast away entirely.
    """
    pixels = rgb.reshape(-1, 3).astype(np.float32)
    means = pixels.mean(axis=0)
    untinted = pixels - (means - means.mean())
    return float((untinted.max(axis=1) - untinted.min(axis=1)).mean())


def check_colour(rgb: np.ndarray, greyscale_chroma: float) -> None:
    """Raise ``SkipImage`` when the (H, W, 3) uint8 ``rgb`` has an untinted chroma of at most ``greyscale_chroma``."""
    chroma = untinted_chroma(rgb)
    if chroma <= greyscale_chroma:
        raise SkipImage(f"greyscale: near-equal channels (chroma {chroma:.2f} <= {greyscale_chroma})")


def check_size(width: int, height: int, min_side: int) -> None:
    """Raise ``SkipImage`` when the shorter side of a width x height image is below ``min_side``."""
    if min(width, height) < min_side:
        raise SkipImage(f"too small: {width}x{height} < {min_side}")


def oriented_size(path: str | Path) -> tuple[int, int]:
    """(width, height) of the image as ``read_colour_image`` returns it, read from the header alone."""
    with warnings.catch_warnings():  # only the header is read: a size Pillow warns about is judged by _decode
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        image = Image.open(path)
    with image:
        width, height = image.size
        if image.getexif().get(ExifTags.Base.Orientation, 1) in _TRANSPOSING_ORIENTATIONS:
            return height, width
    return width, height


def _decode(path: Path) -> Image.Image:
    """Fully decode ``path`` (Pillow is lazy) and apply its EXIF orientation."""
    try:
        with warnings.catch_warnings():  # Pillow's warning about a huge image is a reason to skip it, not a print
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                image.load()  # forces the decode, so a truncated file fails here and not later
                return ImageOps.exif_transpose(image)
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as err:
        pixels = re.search(r"\((\d+) pixels\)", str(err))
        size = f"{int(pixels[1]):,} pixels" if pixels else "more pixels"
        raise SkipImage(f"too large: {size}, more than the {Image.MAX_IMAGE_PIXELS:,} Pillow decodes (a "
                        "decompression bomb, or a photo to downscale first)") from None
    except UnidentifiedImageError:  # what Pillow says about empty files too
        is_empty = path.is_file() and path.stat().st_size == 0
        cause = "empty file" if is_empty else "not an image format Pillow recognises"
        raise SkipImage(f"unreadable: {cause}") from None
    except OSError as err:  # missing file, truncated data
        raise SkipImage(f"unreadable: {err.strerror or err}") from None
    except Exception as err:  # Pillow's decoders raise many types on corrupt data; all mean "unreadable"
        raise SkipImage(f"unreadable: {type(err).__name__}: {err}") from None
