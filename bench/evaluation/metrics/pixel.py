"""Per-image pixel metrics of 8-bit sRGB images: PSNR, SSIM, L1, and the MSE of the CIELAB ab channels.

Every function takes two uint8 tensors shaped (B, 3, H, W) (prediction, ground truth) and
returns one float64 value per image, shaped (B,).  Computation is in float64.
"""
from __future__ import annotations

import torch
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

from bench.data.colour import rgb_to_lab
from bench.evaluation.metrics.inputs import check_pair

DATA_RANGE = 255
SSIM_SIGMA = 1.5
# torchmetrics ignores kernel_size for a Gaussian kernel and uses 2 * int(3.5 * sigma + 0.5) + 1,
# scikit-image's truncation; both give 11 for sigma = 1.5.
SSIM_KERNEL_SIZE = 11
SSIM_K1 = 0.01
SSIM_K2 = 0.03
SSIM_BORDER = (SSIM_KERNEL_SIZE - 1) // 2


def psnr_rgb8(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB over the three channels and all pixels, data range 255 (torchmetrics).

    Identical images give ``inf``, kept as such: it is the exact value, and clamping would
    invent a number.  torchmetrics builds ``log(data_range)`` and ``log(10)`` in float32, so
    values differ from scikit-image's ``peak_signal_noise_ratio`` by up to about 1e-7 relative.
    """
    pred64, target64 = _as_float64(pred, target)
    return peak_signal_noise_ratio(pred64, target64, data_range=float(DATA_RANGE), reduction="none", dim=(1, 2, 3))


def ssim_rgb8(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image SSIM with scikit-image's convention, computed with torchmetrics.

    Gaussian window, sigma 1.5, 11x11, data range 255, K1 = 0.01, K2 = 0.03, population
    (co)variances; the SSIM map of each channel is averaged, then the three channels are.

    Border convention: torchmetrics (1.9) reflect-pads each side by 5 pixels (torch
    ``"reflect"``, edge pixel not repeated) and averages the SSIM map over the whole image,
    padded borders included.  scikit-image averages only the pixels at least
    (kernel_size - 1) // 2 = 5 from every edge.  Here torchmetrics' full SSIM map is cropped by
    those 5 pixels on each side before averaging, so only windows lying wholly inside the image
    count and the padding mode plays no part: the value equals
    ``skimage.metrics.structural_similarity(pred, target, channel_axis=-1, gaussian_weights=True,
    sigma=1.5, use_sample_covariance=False, data_range=255)``.  Images must be at least 11x11.
    """
    pred64, target64 = _as_float64(pred, target)
    if min(pred.shape[-2:]) < SSIM_KERNEL_SIZE:
        raise ValueError(f"ssim_rgb8: images must be at least {SSIM_KERNEL_SIZE}x{SSIM_KERNEL_SIZE}; "
                         f"got {tuple(pred.shape[-2:])}")
    _, ssim_map = structural_similarity_index_measure(
        pred64, target64, gaussian_kernel=True, sigma=SSIM_SIGMA, kernel_size=SSIM_KERNEL_SIZE,
        data_range=DATA_RANGE, k1=SSIM_K1, k2=SSIM_K2, reduction="none", return_full_image=True)
    inner = ssim_map[..., SSIM_BORDER:-SSIM_BORDER, SSIM_BORDER:-SSIM_BORDER]
    return inner.mean(dim=(1, 2, 3))


def l1_rgb8(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image mean absolute difference of the 8-bit values (0..255), over the three channels and all pixels.

    Lower is better; identical images give 0.
    """
    pred64, target64 = _as_float64(pred, target)
    return (pred64 - target64).abs().mean(dim=(1, 2, 3))


def mse_ab(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image mean squared error of CIELAB a and b (Lab units squared), over both channels and all pixels.

    Both images are converted with ``bench.data.colour.rgb_to_lab`` (D65, 2°, as scikit-image's ``rgb2lab``).
    """
    pred64, target64 = _as_float64(pred, target)
    ab_pred = rgb_to_lab(pred64 / DATA_RANGE)[:, 1:]
    ab_target = rgb_to_lab(target64 / DATA_RANGE)[:, 1:]
    return (ab_pred - ab_target).square().mean(dim=(1, 2, 3))


def _as_float64(pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    check_pair(pred, target)
    return pred.double(), target.double()
