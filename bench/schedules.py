"""Learning-rate schedules as a per-step multiplicative factor (wrapped in LambdaLR)."""
from __future__ import annotations

import math
from functools import partial

import torch

from .config import OptimConfig


def lr_factor(cfg: OptimConfig, step: int, steps_per_epoch: int, total_steps: int) -> float:
    """Multiplier of the base learning rate for the optimisation step ``step`` (0-based).

    linear: pix2pix's rule, 1 - max(0, epoch + 1 - decay_start) / (epochs - decay_start + 1),
    constant before ``decay_start_epoch`` and close to 0 in the last epoch.
    step: ``step_factor`` ** (number of decay points passed), decay points at
    decay_start_epoch, decay_start_epoch + step_every, ...
    cosine: half a cosine from 1 to 0 over all steps.
    """
    epoch = step // steps_per_epoch
    total_epochs = math.ceil(total_steps / steps_per_epoch)
    if cfg.schedule == "constant":
        return 1.0
    if cfg.schedule == "linear":
        decay_epochs = max(1, total_epochs - cfg.decay_start_epoch + 1)
        return 1.0 - max(0, epoch + 1 - cfg.decay_start_epoch) / decay_epochs
    if cfg.schedule == "step":
        if epoch < cfg.decay_start_epoch:
            return 1.0
        return cfg.step_factor ** (1 + (epoch - cfg.decay_start_epoch) // cfg.step_every)
    if cfg.schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * step / total_steps))
    raise ValueError(f"unknown schedule {cfg.schedule!r}")


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: OptimConfig, steps_per_epoch: int,
                    total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """A LambdaLR stepped once per optimisation step; its state_dict holds plain values only."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, partial(lr_factor, cfg, steps_per_epoch=steps_per_epoch, total_steps=total_steps))
