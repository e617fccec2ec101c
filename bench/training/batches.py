"""Training batches: which images (order from (seed, epoch)) and which crops and flips (from (seed, step)).

:func:`training_batch` builds a batch on the CPU from the prepared uint8 training images.
:class:`TrainingImages` serves a run's batches on its device: with the training images kept
in the device's memory (``compute.training_images``) it crops and flips them there
(:func:`device_training_batch`: one gather kernel, the same draws), otherwise it builds each
batch on the CPU and copies it, from pinned memory and without blocking on a GPU.  Either way a
batch holds the same bytes for the same seed and step, so where the images live changes the
speed of a run, never its digits (tests/test_gpu_path.py).
"""
from __future__ import annotations

import functools

import torch

from bench.config import RunConfig
from bench.data.augmentation import augment, crop_on_device
from bench.run.randomness import derived_seed

# compute.training_images auto keeps the training images on the GPU when they take at most this share of its free memory
RESIDENT_SHARE = 0.25


def training_batch(images: torch.Tensor, config: RunConfig, epoch: int, index: int, step: int) -> torch.Tensor:
    """Batch ``index`` of ``epoch`` of uint8 ``images``: order from (seed, epoch), augmentation from (seed, step)."""
    rows, rng = _rows_and_generator(len(images), config, epoch, index, step)
    return augment(images, config.data.augmentation, config.data.image_size, rng, rows=rows)


def device_training_batch(images: torch.Tensor, config: RunConfig, epoch: int, index: int,
                          step: int) -> torch.Tensor:
    """:func:`training_batch` of ``images`` on their own device (a GPU, or the CPU), cropped and flipped there."""
    rows, rng = _rows_and_generator(len(images), config, epoch, index, step)
    return crop_on_device(images, rows, config.data.augmentation, config.data.image_size, rng)


def _rows_and_generator(n_images: int, config: RunConfig, epoch: int, index: int,
                        step: int) -> tuple[torch.Tensor, torch.Generator]:
    order = _epoch_order(config.seed, epoch, n_images)
    size = config.data.batch_size
    rng = torch.Generator().manual_seed(derived_seed(config.seed, "augment", step))
    return order[index * size:(index + 1) * size], rng


@functools.lru_cache(maxsize=2)
def _epoch_order(seed: int, epoch: int, n_images: int) -> torch.Tensor:
    """The permutation of an epoch (computed once per epoch, not once per batch; never modified)."""
    return torch.randperm(n_images, generator=torch.Generator().manual_seed(derived_seed(seed, "order", epoch)))


def resident_on(setting: str, nbytes: int, device: torch.device) -> bool:
    """Whether ``compute.training_images`` = ``setting`` keeps ``nbytes`` of training images in ``device``'s memory.

    ``device``: always (on the CPU too, where it runs the gather path on CPU tensors); ``host``:
    never; ``auto``: on a GPU, when they take at most :data:`RESIDENT_SHARE` of its free memory.
    """
    if setting in ("device", "host"):
        return setting == "device"
    if device.type != "cuda":
        return False
    free, _total = torch.cuda.mem_get_info(device)
    return nbytes <= RESIDENT_SHARE * free


class TrainingImages:
    """A run's uint8 training images and the batches it trains on, delivered on ``device``."""

    def __init__(self, images: torch.Tensor, config: RunConfig, device: torch.device) -> None:
        self.config, self.device = config, device
        self.resident = resident_on(config.compute.training_images, images.numel() * images.element_size(), device)
        self.images = images.to(device) if self.resident else images
        self.pinned = device.type == "cuda" and not self.resident
        self.n = len(images)

    def __len__(self) -> int:
        return self.n

    @property
    def placement(self) -> str:
        """Where the batches are made, as the run's environment records it."""
        if self.resident:
            return f"resident on {self.device.type}: cropped and flipped there"
        if self.pinned:
            return "cpu: cropped there, copied from pinned memory without blocking"
        return "cpu"

    def batch(self, epoch: int, index: int, step: int) -> torch.Tensor:
        """Batch ``index`` of ``epoch`` at ``step``, on the run's device."""
        if self.resident:
            return device_training_batch(self.images, self.config, epoch, index, step)
        batch = training_batch(self.images, self.config, epoch, index, step)
        if self.pinned:
            return batch.pin_memory().to(self.device, non_blocking=True)
        return batch.to(self.device)
