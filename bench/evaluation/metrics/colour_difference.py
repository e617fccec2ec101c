"""CIEDE2000 (ΔE00), colour science's standard colour difference, between 8-bit sRGB images, per image.

Both images are converted to CIELAB with scikit-image's ``rgb2lab`` (sRGB / 255, illuminant D65,
observer 2°) and compared pixel by pixel with ``skimage.color.deltaE_ciede2000`` (kL = kC = kH = 1,
Sharma, Wu & Dalal 2005); the value of an image is the mean over its pixels.  Lower is better;
identical images give 0, and one unit is about a just-noticeable difference.
"""
from __future__ import annotations

import numpy as np
import torch
from skimage.color import deltaE_ciede2000, rgb2lab

from bench.evaluation.metrics.inputs import check_pair

DATA_RANGE = 255
WEIGHTS = {"kL": 1, "kC": 1, "kH": 1}  # the reference conditions of CIE 142-2001


def de2000_rgb8(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image mean CIEDE2000 of uint8 (B, 3, H, W) batches, float64 shaped (B,)."""
    check_pair(pred, target)
    values = np.empty(len(pred), dtype=np.float64)
    for index, (one_pred, one_target) in enumerate(zip(pred, target)):  # one image at a time: ~20 float64 temporaries
        lab_pred, lab_target = (rgb2lab(image.permute(1, 2, 0).numpy().astype(np.float64) / DATA_RANGE)
                                for image in (one_pred, one_target))
        values[index] = deltaE_ciede2000(lab_pred, lab_target, **WEIGHTS, channel_axis=-1).mean()
    return torch.from_numpy(values)
