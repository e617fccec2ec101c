"""``de2000_rgb8``: mean CIEDE2000 per image, checked against an independent computation.

The independent computation is written here from the published formulas: sRGB -> CIELAB (IEC
61966-2-1 decoding, the sRGB/D65 matrix and white point scikit-image uses, CIE 1976 L*a*b*) and
CIEDE2000 as Sharma, Wu & Dalal (2005) give it, itself checked on their 34 published test pairs.
"""
import math

import numpy as np
import pytest
import torch
from conftest import SHARED_DATA
from PIL import Image

from bench.evaluation.metrics import METRICS, compute_metrics

# Sharma, Wu & Dalal (2005), Table 1: (L1, a1, b1), (L2, a2, b2), ΔE00 to 4 decimals.
SHARMA_PAIRS = [
    ((50.0000, 2.6772, -79.7751), (50.0000, 0.0000, -82.7485), 2.0425),
    ((50.0000, 3.1571, -77.2803), (50.0000, 0.0000, -82.7485), 2.8615),
    ((50.0000, 2.8361, -74.0200), (50.0000, 0.0000, -82.7485), 3.4412),
    ((50.0000, -1.3802, -84.2814), (50.0000, 0.0000, -82.7485), 1.0000),
    ((50.0000, -1.1848, -84.8006), (50.0000, 0.0000, -82.7485), 1.0000),
    ((50.0000, -0.9009, -85.5211), (50.0000, 0.0000, -82.7485), 1.0000),
    ((50.0000, 0.0000, 0.0000), (50.0000, -1.0000, 2.0000), 2.3669),
    ((50.0000, -1.0000, 2.0000), (50.0000, 0.0000, 0.0000), 2.3669),
    ((50.0000, 2.4900, -0.0010), (50.0000, -2.4900, 0.0009), 7.1792),
    ((50.0000, 2.4900, -0.0010), (50.0000, -2.4900, 0.0010), 7.1792),
    ((50.0000, 2.4900, -0.0010), (50.0000, -2.4900, 0.0011), 7.2195),
    ((50.0000, 2.4900, -0.0010), (50.0000, -2.4900, 0.0012), 7.2195),
    ((50.0000, -0.0010, 2.4900), (50.0000, 0.0009, -2.4900), 4.8045),
    ((50.0000, -0.0010, 2.4900), (50.0000, 0.0010, -2.4900), 4.8045),
    ((50.0000, -0.0010, 2.4900), (50.0000, 0.0011, -2.4900), 4.7461),
    ((50.0000, 2.5000, 0.0000), (50.0000, 0.0000, -2.5000), 4.3065),
    ((50.0000, 2.5000, 0.0000), (73.0000, 25.0000, -18.0000), 27.1492),
    ((50.0000, 2.5000, 0.0000), (61.0000, -5.0000, 29.0000), 22.8977),
    ((50.0000, 2.5000, 0.0000), (56.0000, -27.0000, -3.0000), 31.9030),
    ((50.0000, 2.5000, 0.0000), (58.0000, 24.0000, 15.0000), 19.4535),
    ((50.0000, 2.5000, 0.0000), (50.0000, 3.1736, 0.5854), 1.0000),
    ((50.0000, 2.5000, 0.0000), (50.0000, 3.2972, 0.0000), 1.0000),
    ((50.0000, 2.5000, 0.0000), (50.0000, 1.8634, 0.5757), 1.0000),
    ((50.0000, 2.5000, 0.0000), (50.0000, 3.2592, 0.3350), 1.0000),
    ((60.2574, -34.0099, 36.2677), (60.4626, -34.1751, 39.4387), 1.2644),
    ((63.0109, -31.0961, -5.8663), (62.8187, -29.7946, -4.0864), 1.2630),
    ((61.2901, 3.7196, -5.3901), (61.4292, 2.2480, -4.9620), 1.8731),
    ((35.0831, -44.1164, 3.7933), (35.0232, -40.0716, 1.5901), 1.8645),
    ((22.7233, 20.0904, -46.6940), (23.0331, 14.9730, -42.5619), 2.0373),
    ((36.4612, 47.8580, 18.3852), (36.2715, 50.5065, 21.2231), 1.4146),
    ((90.8027, -2.0831, 1.4410), (91.1528, -1.6435, 0.0447), 1.4441),
    ((90.9257, -0.5406, -0.9208), (88.6381, -0.8985, -0.7239), 1.5381),
    ((6.7747, -0.2908, -2.4247), (5.8714, -0.0985, -2.2286), 0.6377),
    ((2.0776, 0.0795, -1.1350), (0.9033, -0.0636, -0.5514), 0.9082),
]


def ciede2000(lab1: np.ndarray, lab2: np.ndarray) -> np.ndarray:
    """ΔE00 of (..., 3) CIELAB arrays, kL = kC = kH = 1, step by step as Sharma et al. (2005), eqs. 1-16."""
    L1, a1, b1 = np.moveaxis(lab1, -1, 0)
    L2, a2, b2 = np.moveaxis(lab2, -1, 0)
    c_bar = (np.hypot(a1, b1) + np.hypot(a2, b2)) / 2
    g = 0.5 * (1 - np.sqrt(c_bar ** 7 / (c_bar ** 7 + 25.0 ** 7)))
    a1p, a2p = (1 + g) * a1, (1 + g) * a2
    c1p, c2p = np.hypot(a1p, b1), np.hypot(a2p, b2)
    h1p = np.where((a1p == 0) & (b1 == 0), 0.0, np.degrees(np.arctan2(b1, a1p)) % 360)
    h2p = np.where((a2p == 0) & (b2 == 0), 0.0, np.degrees(np.arctan2(b2, a2p)) % 360)
    dLp, dCp = L2 - L1, c2p - c1p
    dh = h2p - h1p
    dhp = np.where(c1p * c2p == 0, 0.0, np.where(dh > 180, dh - 360, np.where(dh < -180, dh + 360, dh)))
    dHp = 2 * np.sqrt(c1p * c2p) * np.sin(np.radians(dhp) / 2)
    Lp_bar, Cp_bar = (L1 + L2) / 2, (c1p + c2p) / 2
    h_sum = h1p + h2p
    hp_bar = np.where(c1p * c2p == 0, h_sum,
                      np.where(np.abs(h1p - h2p) <= 180, h_sum / 2,
                               np.where(h_sum < 360, (h_sum + 360) / 2, (h_sum - 360) / 2)))
    t = (1 - 0.17 * np.cos(np.radians(hp_bar - 30)) + 0.24 * np.cos(np.radians(2 * hp_bar))
         + 0.32 * np.cos(np.radians(3 * hp_bar + 6)) - 0.20 * np.cos(np.radians(4 * hp_bar - 63)))
    d_theta = 30 * np.exp(-(((hp_bar - 275) / 25) ** 2))
    rc = 2 * np.sqrt(Cp_bar ** 7 / (Cp_bar ** 7 + 25.0 ** 7))
    sl = 1 + 0.015 * (Lp_bar - 50) ** 2 / np.sqrt(20 + (Lp_bar - 50) ** 2)
    sc, sh = 1 + 0.045 * Cp_bar, 1 + 0.015 * Cp_bar * t
    rt = -np.sin(np.radians(2 * d_theta)) * rc
    return np.sqrt((dLp / sl) ** 2 + (dCp / sc) ** 2 + (dHp / sh) ** 2 + rt * (dCp / sc) * (dHp / sh))


# CIE 1976's f(t): linear below epsilon = (6/29)^3 with slope 1 / (3 (6/29)^2); scikit-image (like many
# implementations) rounds the two to 0.008856 and 7.787, which moves L*a*b* by up to 2e-4.
EXACT = ((6 / 29) ** 3, 1 / (3 * (6 / 29) ** 2))
ROUNDED = (0.008856, 7.787)


def srgb8_to_lab(rgb8: np.ndarray, constants: tuple[float, float] = EXACT) -> np.ndarray:
    """CIELAB of (..., 3) 8-bit sRGB: IEC 61966-2-1 decoding, sRGB -> XYZ (D65), CIE 1976 L*a*b*."""
    epsilon, slope = constants
    c = rgb8.astype(np.float64) / 255
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    matrix = np.array([[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169],
                       [0.019334, 0.119193, 0.950227]])
    xyz = linear @ matrix.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > epsilon, np.cbrt(xyz), slope * xyz + 16 / 116)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1)


def test_the_independent_ciede2000_reproduces_the_published_test_pairs():
    lab1 = np.array([pair[0] for pair in SHARMA_PAIRS])
    lab2 = np.array([pair[1] for pair in SHARMA_PAIRS])
    expected = np.array([pair[2] for pair in SHARMA_PAIRS])
    np.testing.assert_allclose(ciede2000(lab1, lab2), expected, atol=5e-5)
    np.testing.assert_allclose(ciede2000(lab2, lab1), expected, atol=5e-5)  # symmetric


def real_photos(n: int, side: int) -> np.ndarray:
    folder = SHARED_DATA / "imagenet300"
    if not folder.is_dir():
        pytest.skip(f"real photos not available: {folder} is absent")
    files = sorted(folder.glob("*.JPEG"))[:n] or sorted(folder.glob("*.jp*g"))[:n]
    return np.stack([np.asarray(Image.open(f).convert("RGB").resize((side, side), Image.Resampling.BICUBIC))
                     for f in files])


def as_batch(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).contiguous()


def test_de2000_rgb8_equals_the_independent_computation_on_real_photos():
    photos = real_photos(4, 48)
    rng = np.random.default_rng(0)
    shifted = np.clip(photos.astype(int) + rng.integers(-30, 31, size=(len(photos), 1, 1, 3)), 0, 255).astype(np.uint8)
    pairs = [(shifted, photos), (photos[::-1], photos)]  # a colour cast; other photos altogether
    for pred, target in pairs:
        values = compute_metrics(as_batch(pred), as_batch(target), ["de2000_rgb8"])["de2000_rgb8"]
        assert values.dtype == torch.float64 and values.shape == (len(pred),) and (values > 0).all()
        for constants, tolerance in ((ROUNDED, 1e-9), (EXACT, 1e-5)):  # the exact constants: within 1e-5 ΔE00
            expected = ciede2000(srgb8_to_lab(pred, constants), srgb8_to_lab(target, constants))
            np.testing.assert_allclose(values.numpy(), expected.reshape(len(pred), -1).mean(axis=1),
                                       rtol=0, atol=tolerance)


def test_de2000_rgb8_is_zero_for_identical_images_and_is_registered_with_its_protocol():
    photos = as_batch(real_photos(2, 32))
    assert compute_metrics(photos, photos.clone(), ["de2000_rgb8"])["de2000_rgb8"].tolist() == [0.0, 0.0]
    metric = METRICS["de2000_rgb8"]
    assert metric.per_image and metric.takes == "images" and metric.detector is None
    assert "deltaE_ciede2000" in metric.protocol["implementation"] and metric.protocol["identical_images"] == 0
    assert not math.isnan(float(compute_metrics(photos, photos.flip(0), ["de2000_rgb8"])["de2000_rgb8"].mean()))
