"""The training step done the plain way, as the reference pix2pix implementation does it.

junyanz/pytorch-CycleGAN-and-pix2pix, colorization mode: a DataLoader whose dataset opens
each image with PIL for every sample, resizes and crops it with torchvision transforms,
converts it with scikit-image's ``rgb2lab``; stock torch layers; fp32; ``torch.optim.Adam``
with its default implementation; ``optimize_parameters``' update order.  It is the yardstick of
``colorbench perf --baseline`` and must compute the same losses as ``bench.training.train.train_step``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from skimage import color
from torchvision import transforms

from bench.config import RunConfig
from bench.models import build_networks
from bench.models.layers import to_stock_layers


class ReferenceColorizationDataset(torch.utils.data.Dataset):
    """Image files decoded per sample: resize to ``load_size``, random crop, flip, then L / ab."""

    def __init__(self, paths: list[Path], load_size: int, crop_size: int, flip: bool) -> None:
        self.paths = paths
        steps = [transforms.Resize((load_size, load_size), transforms.InterpolationMode.BICUBIC)]
        if crop_size != load_size:
            steps.append(transforms.RandomCrop(crop_size))
        if flip:
            steps.append(transforms.RandomHorizontalFlip())
        self.transform = transforms.Compose(steps)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        with Image.open(self.paths[index]) as image:
            rgb = np.array(self.transform(image.convert("RGB")))
        return lab_tensors(rgb)


def lab_tensors(rgb8: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """The reference's (A, B) of one (H, W, 3) uint8 image: L / 50 - 1 and ab / 110."""
    lab = torch.from_numpy(color.rgb2lab(rgb8).astype(np.float32)).permute(2, 0, 1)
    return lab[:1] / 50.0 - 1.0, lab[1:] / 110.0


def reference_networks(config: RunConfig) -> tuple[torch.nn.Module, torch.nn.Module]:
    """``build_networks(config)`` (same initialisation from the same RNG state) with stock torch layers."""
    generator, discriminator = build_networks(config)
    return to_stock_layers(generator), discriminator


def reference_step(generator: torch.nn.Module, discriminator: torch.nn.Module, opt_g: torch.optim.Optimizer,
                   opt_d: torch.optim.Optimizer, real_a: torch.Tensor, real_b: torch.Tensor,
                   lambda_l1: float) -> dict[str, float]:
    """``Pix2PixModel.optimize_parameters`` with the vanilla GAN loss; returns the unweighted loss terms."""
    fake_b = generator(real_a)
    for p in discriminator.parameters():
        p.requires_grad_(True)
    opt_d.zero_grad()
    pred_fake = discriminator(torch.cat((real_a, fake_b), 1).detach())
    loss_d_fake = F.binary_cross_entropy_with_logits(pred_fake, torch.zeros_like(pred_fake))
    pred_real = discriminator(torch.cat((real_a, real_b), 1))
    loss_d_real = F.binary_cross_entropy_with_logits(pred_real, torch.ones_like(pred_real))
    ((loss_d_fake + loss_d_real) * 0.5).backward()
    opt_d.step()
    for p in discriminator.parameters():
        p.requires_grad_(False)
    opt_g.zero_grad()
    pred_fake = discriminator(torch.cat((real_a, fake_b), 1))
    loss_g_gan = F.binary_cross_entropy_with_logits(pred_fake, torch.ones_like(pred_fake))
    loss_g_l1 = F.l1_loss(fake_b, real_b)
    (loss_g_gan + lambda_l1 * loss_g_l1).backward()
    opt_g.step()
    return {"d_fake": loss_d_fake.item(), "d_real": loss_d_real.item(), "g_adv": loss_g_gan.item(),
            "g_rec": loss_g_l1.item()}
