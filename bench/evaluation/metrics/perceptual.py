"""LPIPS (Zhang et al. 2018) between outputs and ground truth, per image, given the LPIPS network."""
from __future__ import annotations

import torch

from bench.evaluation.metrics.inputs import check_pair

BATCH_SIZE = 16


def lpips_distance(pred_rgb8: torch.Tensor, target_rgb8: torch.Tensor, network: torch.nn.Module,
                   batch_size: int = BATCH_SIZE) -> torch.Tensor:
    """Per-image LPIPS, float64 shaped (B,), of uint8 sRGB batches at their own resolution (no resizing).

    ``network`` is an ``lpips.LPIPS`` module (or one with its call signature); images go in
    as value / 255 with ``normalize=True``, which maps them to the [-1, 1] it expects, in
    batches on its device.
    """
    check_pair(pred_rgb8, target_rgb8)
    device = next(network.parameters()).device
    values = []
    with torch.inference_mode():
        for start in range(0, len(pred_rgb8), batch_size):
            pred, target = (images[start:start + batch_size].to(device).float() / 255.0
                            for images in (pred_rgb8, target_rgb8))
            values.append(network(pred, target, normalize=True).flatten().double().cpu())
    return torch.cat(values) if values else torch.zeros(0, dtype=torch.float64)
