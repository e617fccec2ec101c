"""Colourfulness (Hasler & Süsstrunk 2003) of 8-bit sRGB images, and the ΔCF that DDColor reports.

CF is computed on 8-bit values (0..255) in float64 from the opponent components
rg = |R - G| and yb = |(R + G) / 2 - B|::

    CF = sqrt(std(rg)^2 + std(yb)^2) + 0.3 * sqrt(mean(rg)^2 + mean(yb)^2)

with population standard deviations over the pixels of one image.  The absolute values are
those of DDColor's evaluation code (``basicsr/metrics/colorfulness.py``), whose published CF
and ΔCF this metric is compared with; Hasler & Süsstrunk's paper uses the signed differences.
"""
from __future__ import annotations

import torch

from bench.data.colour import check_rgb8
from bench.evaluation.metrics.inputs import check_pair

MEAN_WEIGHT = 0.3


def colourfulness(images_rgb8: torch.Tensor) -> torch.Tensor:
    """CF of each uint8 sRGB image (B, 3, H, W), float64 shaped (B,)."""
    check_rgb8("images", images_rgb8)
    red, green, blue = images_rgb8.double().unbind(dim=1)
    rg = (red - green).abs().flatten(1)
    yb = (0.5 * (red + green) - blue).abs().flatten(1)
    spread = (rg.var(dim=1, correction=0) + yb.var(dim=1, correction=0)).sqrt()
    magnitude = (rg.mean(dim=1).square() + yb.mean(dim=1).square()).sqrt()
    return spread + MEAN_WEIGHT * magnitude


def delta_colourfulness(pred_rgb8: torch.Tensor, target_rgb8: torch.Tensor) -> dict[str, float]:
    """|mean CF(pred) - mean CF(target)| over the set, with both means (DDColor's ΔCF)."""
    check_pair(pred_rgb8, target_rgb8)
    cf_pred = colourfulness(pred_rgb8).mean().item()
    cf_target = colourfulness(target_rgb8).mean().item()
    return {"value": abs(cf_pred - cf_target), "cf_output": cf_pred, "cf_target": cf_target}
