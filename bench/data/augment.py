"""Training-time augmentation on uint8 image batches, as in pix2pix: random crop ("jitter") and flip.

Images are stored at ``load_size`` (larger than the training size when jittering) and
cropped here, on tensors, drawing every random number from the generator passed in so
that a run's augmentation is reproducible from its seed.
"""
from __future__ import annotations

import torch

AUGMENTATIONS = ("none", "flip", "jitter", "flip+jitter")
# pix2pix resizes 256 -> 286 before its random 256 crop (and 128 -> 143); 286 / 256 = 1.117.
JITTER_SCALE = 1.117


def load_size(image_size: int, augmentation: str) -> int:
    """Side at which training images are stored: round(1.117 * image_size) with jitter, else image_size."""
    _check_augmentation(augmentation)
    return round(JITTER_SCALE * image_size) if "jitter" in augmentation else image_size


def augment(batch: torch.Tensor, augmentation: str, size: int, generator: torch.Generator) -> torch.Tensor:
    """Augment a uint8 (B, 3, S, S) batch into (B, 3, size, size).

    ``jitter`` crops each sample at a random offset (S >= size); ``flip`` mirrors each
    sample left-right with probability 0.5; ``none`` needs S == size and returns the batch
    as is.  Same generator state, same output.
    """
    _check_augmentation(augmentation)
    if batch.dtype != torch.uint8 or batch.ndim != 4 or batch.shape[1] != 3 or batch.shape[2] != batch.shape[3]:
        raise ValueError(f"augment: expected a uint8 (B, 3, S, S) batch; got {batch.dtype} {tuple(batch.shape)}")
    side = batch.shape[-1]
    if "jitter" in augmentation:
        if side < size:
            raise ValueError(f"augment: cannot crop {size}x{size} out of {side}x{side}")
        batch = _random_crop(batch, size, generator)
    elif side != size:
        raise ValueError(f"augment: {augmentation!r} needs {size}x{size} images; got {side}x{side}")
    if "flip" in augmentation:
        batch = _random_flip(batch, generator)
    return batch


def _random_crop(batch: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    offsets = torch.randint(0, batch.shape[-1] - size + 1, (batch.shape[0], 2), generator=generator,
                            device=generator.device).tolist()
    return torch.stack([image[:, top:top + size, left:left + size] for image, (top, left) in zip(batch, offsets)])


def _random_flip(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    flipped = torch.rand(batch.shape[0], generator=generator, device=generator.device) < 0.5
    return torch.where(flipped.to(batch.device)[:, None, None, None], batch.flip(-1), batch)


def _check_augmentation(augmentation: str) -> None:
    if augmentation not in AUGMENTATIONS:
        raise ValueError(f"augmentation: got {augmentation!r}; allowed: {', '.join(AUGMENTATIONS)}")
