"""One pix2pix update, ``train_step``: D on the real and the detached fake pair, then G.

Kept apart from the loop in ``bench.training.train`` so that the arithmetic of an update (which
loss terms, their weights, D's halved loss, the clipping scope, D's conditional input) is
one short module that tests and mutation testing can target.
"""
from __future__ import annotations

import contextlib
import math
from pathlib import Path
from typing import Callable

import torch

from bench.config import RunConfig
from bench.data.colour import encode
from bench.run import rundir
from bench.training.losses import adversarial_loss, reconstruction_loss


class TrainingFailed(RuntimeError):
    """The run stopped on a non-finite loss (details in the run's FAILED file)."""


def build_optimizer(model: torch.nn.Module, config: RunConfig) -> torch.optim.Adam:
    """Adam of G or D with the run's learning rate and betas."""
    # The fused kernel updates all parameters in one pass (CPU and CUDA): the same Adam
    # arithmetic as the per-parameter loop, several times faster on unet_256's 54 M weights.
    return torch.optim.Adam(model.parameters(), lr=config.optim.lr, betas=config.optim.betas, fused=True)


def _set_requires_grad(model: torch.nn.Module, flag: bool) -> None:
    for p in model.parameters():
        p.requires_grad_(flag)


def _untimed(phase: str) -> contextlib.AbstractContextManager:
    return contextlib.nullcontext()


def train_step(batch_rgb8, generator, discriminator, opt_g, opt_d, config: RunConfig, *, adversarial: bool,
               run_dir: Path, step: int,
               timer: Callable[[str], contextlib.AbstractContextManager] = _untimed) -> dict[str, float]:
    """One pix2pix update: D on real and detached fake, then G. Returns the loss terms.

    ``timer(phase)`` wraps the phases ``data`` (colour conversion), ``g_forward``, ``d_step``
    (D forward and backward), ``g_step`` (G's losses and backward) and ``optimizer`` (clipping
    and both optimiser steps), so ``colorbench perf`` times the very code a run executes.
    """
    loss_cfg, clip_g = config.loss, config.optim.grad_clip_norm
    clip_d = clip_g if config.optim.grad_clip_scope == "both" else None  # scope generator: as source report 000
    autocast = torch.autocast(batch_rgb8.device.type, dtype=torch.bfloat16, enabled=config.precision == "bf16")
    with timer("data"):
        inputs, targets = encode(batch_rgb8, config.encoding)
        if config.compute.channels_last:  # the networks' layout (bench.training.gpu_path)
            inputs, targets = (t.contiguous(memory_format=torch.channels_last) for t in (inputs, targets))
    with timer("g_forward"), autocast:
        fake = generator(inputs).float()

    def d_logits(output: torch.Tensor) -> torch.Tensor:
        seen = torch.cat([inputs, output], 1) if config.discriminator.conditional else output
        with autocast:
            return discriminator(seen).float()

    losses: dict[str, torch.Tensor] = {}
    if adversarial:
        with timer("d_step"):
            _set_requires_grad(discriminator, True)
            opt_d.zero_grad(set_to_none=True)
            losses["d_fake"] = adversarial_loss(loss_cfg.adversarial, d_logits(fake.detach()), real=False)
            losses["d_real"] = adversarial_loss(loss_cfg.adversarial, d_logits(targets), real=True)
            loss_d = 0.5 * (losses["d_fake"] + losses["d_real"])
            _check_finite(losses, run_dir, step)
            loss_d.backward()
        with timer("optimizer"):
            if clip_d is not None:
                torch.nn.utils.clip_grad_norm_(discriminator.parameters(), clip_d)
            opt_d.step()
        _set_requires_grad(discriminator, False)

    with timer("g_step"):
        opt_g.zero_grad(set_to_none=True)
        loss_g = torch.zeros((), device=fake.device)
        if adversarial and loss_cfg.lambda_adv > 0:
            losses["g_adv"] = adversarial_loss(loss_cfg.adversarial, d_logits(fake), real=True)
            loss_g = loss_g + loss_cfg.lambda_adv * losses["g_adv"]
        if loss_cfg.reconstruction != "none" and loss_cfg.lambda_rec > 0:
            losses["g_rec"] = reconstruction_loss(loss_cfg.reconstruction, fake, targets)
            loss_g = loss_g + loss_cfg.lambda_rec * losses["g_rec"]
        learns = loss_g.requires_grad  # during warm-up with only adversarial loss there is nothing to learn
        if learns:
            _check_finite(losses, run_dir, step)
            loss_g.backward()
    if learns:
        with timer("optimizer"):
            if clip_g is not None:
                torch.nn.utils.clip_grad_norm_(generator.parameters(), clip_g)
            opt_g.step()
    return {k: float(v.detach()) for k, v in losses.items()}


def _check_finite(losses: dict[str, torch.Tensor], run_dir: Path, step: int) -> None:
    values = {k: float(v.detach()) for k, v in losses.items()}
    bad = sorted(k for k, v in values.items() if not math.isfinite(v))
    if bad:
        reason = f"non-finite loss {', '.join(bad)} at step {step}"
        rundir.write_json(run_dir / "FAILED", {"step": step, "losses": {k: repr(v) for k, v in values.items()},
                                               "reason": reason})
        raise TrainingFailed(f"{run_dir}: {reason}")
