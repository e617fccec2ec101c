"""Colour-histogram intersection with the ground truth per CIELAB channel (pix2pix, Fig. 7).

Bin layout, one Lab unit per bin: L has 100 bins over [0, 100] and a and b have 256 bins
over [-128, 128] each; bins are half-open [low, low + 1) except the last, which includes
its upper edge.  Every 8-bit sRGB colour lies inside these ranges (L 0..100, a -86.2..98.3,
b -107.9..94.5); values are clamped into them anyway, so a rounding error at an end can never
drop a pixel.  As in the paper, the histograms are the marginal distributions of all pixels
of all images of a set, each normalised to sum 1, and the intersection of two of them is the
sum over bins of the smaller value: 1 for equal distributions, 0 for disjoint ones.
"""
from __future__ import annotations

import torch

from bench.data.colour import check_rgb8, rgb_to_lab
from bench.evaluation.metrics.inputs import check_pair

# channel: (bins, low, high)
LAB_BINS: dict[str, tuple[int, float, float]] = {"L": (100, 0.0, 100.0), "a": (256, -128.0, 128.0),
                                                 "b": (256, -128.0, 128.0)}


def lab_histograms(images_rgb8: torch.Tensor) -> dict[str, torch.Tensor]:
    """Normalised float64 histogram of each Lab channel, pooled over all pixels of the uint8 (B, 3, H, W) batch."""
    check_rgb8("images", images_rgb8)
    lab = rgb_to_lab(images_rgb8.double() / 255.0)
    histograms = {}
    for index, (channel, (bins, low, high)) in enumerate(LAB_BINS.items()):
        counts = torch.histc(lab[:, index].clamp(low, high), bins=bins, min=low, max=high)
        histograms[channel] = counts / counts.sum()
    return histograms


def histogram_intersection_lab(pred_rgb8: torch.Tensor, target_rgb8: torch.Tensor) -> dict:
    """Intersection of the Lab histograms of two sets per channel, and their mean as ``value``."""
    check_pair(pred_rgb8, target_rgb8)
    pred, target = lab_histograms(pred_rgb8), lab_histograms(target_rgb8)
    per_channel = {channel: torch.minimum(pred[channel], target[channel]).sum().item() for channel in LAB_BINS}
    return {"value": sum(per_channel.values()) / len(per_channel), "per_channel": per_channel}
