"""Loss terms of the generator and the discriminator (pix2pix's GANLoss and L1, plus variants)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def reconstruction_loss(kind: str, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Pixel loss between generator output and target: ``l1``, ``l2`` or their sum ``l1+l2``."""
    if kind == "l1":
        return F.l1_loss(output, target)
    if kind == "l2":
        return F.mse_loss(output, target)
    if kind == "l1+l2":
        return F.l1_loss(output, target) + F.mse_loss(output, target)
    raise ValueError(f"unknown reconstruction loss {kind!r}")


def adversarial_loss(kind: str, logits: torch.Tensor, real: bool) -> torch.Tensor:
    """Loss of discriminator logits against an all-real or all-fake label map.

    ``bce`` is the paper's vanilla GAN loss on logits; ``lsgan`` the least-squares loss
    on the raw outputs (Mao et al. 2017), both as in the reference GANLoss.
    """
    label = torch.ones_like(logits) if real else torch.zeros_like(logits)
    if kind == "bce":
        return F.binary_cross_entropy_with_logits(logits, label)
    if kind == "lsgan":
        return F.mse_loss(logits, label)
    raise ValueError(f"unknown adversarial loss {kind!r}")
