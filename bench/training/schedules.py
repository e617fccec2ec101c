"""Learning-rate schedules as a per-step multiplicative factor (wrapped in LambdaLR)."""
from __future__ import annotations

import math
from functools import partial

import torch

from bench.config import OptimConfig


def lr_factor(cfg: OptimConfig, step: int, steps_per_epoch: int, total_steps: int) -> float:
    """Multiplier of the base learning rate for the optimisation step ``step`` (0-based).

    With E epochs in all, d = ``decay_start_epoch`` and f = ``final_lr_fraction``:

    linear: 1 - (1 - f) * max(0, epoch + 1 - d) / max(1, E - d + 1), constant before d and one
    step short of f, at f + (1 - f) / (E - d + 1), in the last epoch; f = 0 is pix2pix's rule.
    step: ``step_factor`` ** (number of decay points passed), decay points at d, d + step_every, ...
    cosine: f + (1 - f) * (1 + cos(pi * step / total_steps)) / 2, half a cosine from 1 towards f
    over all steps.
    exponential: constant before d, then f ** ((epoch - d) / max(1, E - 1 - d)), a constant ratio
    per epoch that reaches exactly f in the last epoch (when d < E - 1).
    """
    epoch = step // steps_per_epoch
    total_epochs = math.ceil(total_steps / steps_per_epoch)
    final = cfg.final_lr_fraction
    if cfg.schedule == "constant":
        return 1.0
    if cfg.schedule == "linear":
        decay_epochs = max(1, total_epochs - cfg.decay_start_epoch + 1)
        return 1.0 - (1.0 - final) * max(0, epoch + 1 - cfg.decay_start_epoch) / decay_epochs
    if cfg.schedule == "step":
        if epoch < cfg.decay_start_epoch:
            return 1.0
        return cfg.step_factor ** (1 + (epoch - cfg.decay_start_epoch) // cfg.step_every)
    if cfg.schedule == "cosine":
        return final + (1.0 - final) * 0.5 * (1.0 + math.cos(math.pi * step / total_steps))
    if cfg.schedule == "exponential":
        if epoch < cfg.decay_start_epoch:
            return 1.0
        return final ** ((epoch - cfg.decay_start_epoch) / max(1, total_epochs - 1 - cfg.decay_start_epoch))
    raise ValueError(f"unknown schedule {cfg.schedule!r}")


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: OptimConfig, steps_per_epoch: int,
                    total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """A LambdaLR stepped once per optimisation step; its state_dict holds plain values only."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, partial(lr_factor, cfg, steps_per_epoch=steps_per_epoch, total_steps=total_steps))
