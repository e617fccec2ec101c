"""The benchmark's image metrics, keyed by names that encode their protocol, and those protocols in plain values."""
from __future__ import annotations

from collections.abc import Callable, Iterable

import torch

from .pixel import (DATA_RANGE, SSIM_BORDER, SSIM_K1, SSIM_K2, SSIM_KERNEL_SIZE, SSIM_SIGMA, mse_ab, psnr_rgb8,
                    ssim_rgb8)

METRICS: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "psnr_rgb8": psnr_rgb8,
    "ssim_rgb8": ssim_rgb8,
    "mse_ab_rgb8": mse_ab,
}

_INPUT = "8-bit sRGB, rounded"

PROTOCOLS: dict[str, dict] = {
    "psnr_rgb8": {
        "input": _INPUT, "data_range": DATA_RANGE, "channels": "R, G, B",
        "reduction": "per image, mean squared error over channels and pixels",
        "identical_images": "inf", "implementation": "torchmetrics peak_signal_noise_ratio, float64",
    },
    "ssim_rgb8": {
        "input": _INPUT, "data_range": DATA_RANGE, "window": "gaussian", "gaussian_sigma": SSIM_SIGMA,
        "kernel_size": SSIM_KERNEL_SIZE, "k1": SSIM_K1, "k2": SSIM_K2, "covariance": "population",
        "border": f"mean over pixels at least {SSIM_BORDER} from every edge (scikit-image's crop)",
        "channels": "per channel, then mean of R, G, B",
        "implementation": "torchmetrics structural_similarity_index_measure map, cropped; float64",
        "reference": "skimage.metrics.structural_similarity(channel_axis=-1, gaussian_weights=True, "
                     "sigma=1.5, use_sample_covariance=False, data_range=255)",
    },
    "mse_ab_rgb8": {
        "input": _INPUT, "colour_space": "CIELAB, D65, observer 2 degrees (skimage rgb2lab)",
        "channels": "a, b", "units": "Lab units squared",
        "reduction": "per image, mean over a, b and pixels",
    },
}


def compute_metrics(pred_rgb8: torch.Tensor, target_rgb8: torch.Tensor,
                    names: Iterable[str] | None = None) -> dict[str, torch.Tensor]:
    """Per-image values (float64, shaped (B,)) of the metrics ``names`` (default: all of ``METRICS``).

    ``pred_rgb8`` and ``target_rgb8`` are uint8 sRGB tensors shaped (B, 3, H, W).
    """
    names = list(METRICS) if names is None else list(names)
    unknown = [name for name in names if name not in METRICS]
    if unknown:
        raise ValueError(f"metrics: unknown {unknown}; allowed: {', '.join(METRICS)}")
    return {name: METRICS[name](pred_rgb8, target_rgb8) for name in names}
