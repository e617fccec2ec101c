"""Training-time augmentation on uint8 image batches, as in pix2pix: random crop ("jitter") and flip.

Images are stored at ``load_size`` (larger than the training size when jittering) and
cropped here, on tensors, drawing every random number from the generator passed in so
that a run's augmentation is reproducible from its seed.
"""
from __future__ import annotations

import numpy as np
import torch

from bench.config.names import AUGMENTATIONS  # defined without torch for the CLI; re-exported here

# pix2pix resizes 256 -> 286 before its random 256 crop (and 128 -> 143); 286 / 256 = 1.117.
JITTER_SCALE = 1.117


def load_size(image_size: int, augmentation: str) -> int:
    """Side at which training images are stored: round(1.117 * image_size) with jitter, else image_size."""
    _check_augmentation(augmentation)
    return round(JITTER_SCALE * image_size) if "jitter" in augmentation else image_size


def augment(images: torch.Tensor, augmentation: str, size: int, generator: torch.Generator,
            rows: torch.Tensor | None = None) -> torch.Tensor:
    """Augment the ``rows`` of a uint8 (N, C, S, S) CPU tensor into a new (B, C, size, size) batch.

    ``rows`` (1-D indices, default every row) picks the samples, in order; the result equals
    augmenting ``images[rows]``.  ``jitter`` crops each sample at a random offset (S >= size);
    ``flip`` mirrors each sample left-right with probability 0.5; ``none`` needs S == size.
    All C channels of a sample get the same crop and flip, so a paired sample (photo and
    input image stacked on channels) stays aligned.  Same generator state, same output.
    """
    _check_augmentation(augmentation)
    if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[2] != images.shape[3] \
            or images.device.type != "cpu":
        raise ValueError(f"augment: expected a uint8 (N, C, S, S) CPU tensor; got {images.dtype} "
                         f"{tuple(images.shape)} on {images.device}")
    side = images.shape[-1]
    if "jitter" in augmentation:
        if side < size:
            raise ValueError(f"augment: cannot crop {size}x{size} out of {side}x{side}")
    elif side != size:
        raise ValueError(f"augment: {augmentation!r} needs {size}x{size} images; got {side}x{side}")
    if augmentation == "none" and rows is None:
        return images
    picked = list(range(len(images))) if rows is None else rows.tolist()
    offsets, flips = draw_crops(len(picked), augmentation, side, size, generator)
    # One numpy copy per output pixel: for images this small torch's parallel copy kernels
    # spend longer waking their threads than copying, worst on a busy machine.
    source = images.numpy()
    windows = []
    for row, (top, left), flipped in zip(picked, offsets, flips):
        window = source[row, :, top:top + size, left:left + size]
        windows.append(window[..., ::-1] if flipped else window)
    return torch.from_numpy(np.stack(windows))


def _check_augmentation(augmentation: str) -> None:
    if augmentation not in AUGMENTATIONS:
        raise ValueError(f"augmentation: got {augmentation!r}; allowed: {', '.join(AUGMENTATIONS)}")


def draw_crops(n: int, augmentation: str, side: int, size: int,
               generator: torch.Generator) -> tuple[list[tuple[int, int]], list[bool]]:
    """The (top, left) crop offset and the flip of each of ``n`` samples, drawn from ``generator``.

    Offsets are drawn before flips, as (n, 2) then (n,), whichever augmentations are on: the
    one sequence of draws that :func:`augment` and :func:`crop_on_device` share.
    """
    _check_augmentation(augmentation)
    offsets = (torch.randint(0, side - size + 1, (n, 2), generator=generator, device=generator.device).tolist()
               if "jitter" in augmentation else [(0, 0)] * n)
    flips = ((torch.rand(n, generator=generator, device=generator.device) < 0.5).tolist()
             if "flip" in augmentation else [False] * n)
    return [tuple(offset) for offset in offsets], flips


def crop_on_device(images: torch.Tensor, rows: torch.Tensor, augmentation: str, size: int,
                   generator: torch.Generator) -> torch.Tensor:
    """:func:`augment` of the ``rows`` of a uint8 (N, C, S, S) tensor on any device, as one gather there.

    The crops and flips are drawn on the CPU from ``generator`` (:func:`draw_crops`, the same
    draws as :func:`augment`), then every output pixel is read from ``images`` by one indexing
    kernel on its device, so a training set kept in GPU memory is cropped and flipped there;
    the batch equals :func:`augment`'s bit for bit (it only copies bytes).
    """
    if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[2] != images.shape[3]:
        raise ValueError(f"crop_on_device: expected a uint8 (N, C, S, S) tensor; got {images.dtype} "
                         f"{tuple(images.shape)}")
    side = images.shape[-1]
    if ("jitter" in augmentation and side < size) or ("jitter" not in augmentation and side != size):
        raise ValueError(f"crop_on_device: {augmentation!r} cannot make {size}x{size} batches of {side}x{side} images")
    offsets, flips = draw_crops(len(rows), augmentation, side, size, generator)
    device = images.device
    offsets_t = torch.tensor(offsets, dtype=torch.long).reshape(-1, 2).to(device)
    flipped = torch.tensor(flips, dtype=torch.bool).to(device)
    span = torch.arange(size, device=device)
    top, left = offsets_t[:, :1], offsets_t[:, 1:]
    ys = top + span  # (B, size)
    xs = torch.where(flipped[:, None], left + (size - 1 - span), left + span)  # (B, size)
    channels = torch.arange(images.shape[1], device=device)
    picked = rows.to(device=device, dtype=torch.long)
    return images[picked[:, None, None, None], channels[None, :, None, None], ys[:, None, :, None],
                  xs[:, None, None, :]]
