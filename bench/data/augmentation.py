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
    n = len(picked)
    # Offsets are drawn before flips, as (B, 2) then (B,), whichever augmentations are on.
    offsets = (torch.randint(0, side - size + 1, (n, 2), generator=generator, device=generator.device).tolist()
               if "jitter" in augmentation else [(0, 0)] * n)
    flips = ((torch.rand(n, generator=generator, device=generator.device) < 0.5).tolist()
             if "flip" in augmentation else [False] * n)
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
