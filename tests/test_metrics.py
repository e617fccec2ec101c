"""bench.evaluation.metrics against scikit-image's PSNR, SSIM and rgb2lab and numpy's L1, one value per image."""
import json
import math

import numpy as np
import pytest
import torch
from skimage import color, data, filters
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from torchmetrics.functional.image import structural_similarity_index_measure

from bench.evaluation.metrics import METRICS, PROTOCOLS, compute_metrics
from bench.evaluation.metrics.pixel import l1_rgb8, mse_ab, psnr_rgb8, ssim_rgb8


def to_batch(*images_hwc: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 numpy images -> (B, 3, H, W) uint8 torch."""
    return torch.from_numpy(np.stack(images_hwc)).permute(0, 3, 1, 2).contiguous()


def to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


def make_pairs() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(prediction, target) pairs of uint8 (H, W, 3) images, 64x64 and 96x128."""
    rng = np.random.default_rng(0)
    astronaut = data.astronaut()[40:136, 180:308]  # 96x128: face and suit
    coffee = data.coffee()[100:164, 200:264]  # 64x64
    random_image = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    return {
        "random_vs_random": (rng.integers(0, 256, (64, 64, 3), dtype=np.uint8), random_image),
        "random_vs_noisy": (to_uint8(random_image + rng.normal(0, 20, random_image.shape)), random_image),
        "astronaut_noisy": (to_uint8(astronaut + rng.normal(0, 10, astronaut.shape)), astronaut),
        "astronaut_blurred": (to_uint8(filters.gaussian(astronaut, sigma=1.5, channel_axis=-1,
                                                        preserve_range=True)), astronaut),
        "astronaut_colour_shifted": (to_uint8(astronaut + np.array([25, -10, 15])), astronaut),
        "coffee_channels_swapped": (coffee[..., ::-1], coffee),
        "coffee_desaturated": (to_uint8(np.repeat(coffee.mean(-1, keepdims=True), 3, -1)), coffee),
    }


PAIRS = make_pairs()


def skimage_ssim(pred: np.ndarray, target: np.ndarray) -> float:
    return structural_similarity(pred, target, channel_axis=-1, gaussian_weights=True, sigma=1.5,
                                 use_sample_covariance=False, data_range=255)


def skimage_mse_ab(pred: np.ndarray, target: np.ndarray) -> float:
    return float(((color.rgb2lab(pred)[..., 1:] - color.rgb2lab(target)[..., 1:]) ** 2).mean())


@pytest.mark.parametrize("name", PAIRS)
def test_psnr_matches_skimage(name):
    pred, target = PAIRS[name]
    value = psnr_rgb8(to_batch(pred), to_batch(target))
    assert value.dtype == torch.float64 and value.shape == (1,)
    # torchmetrics takes log(255) and log(10) in float32: about 1e-6 dB off at 40 dB
    assert value.item() == pytest.approx(peak_signal_noise_ratio(target, pred, data_range=255), rel=1e-7, abs=0)


@pytest.mark.parametrize("name", PAIRS)
def test_ssim_matches_skimage(name):
    pred, target = PAIRS[name]
    value = ssim_rgb8(to_batch(pred), to_batch(target))
    assert value.dtype == torch.float64 and value.shape == (1,)
    assert value.item() == pytest.approx(skimage_ssim(pred, target), rel=0, abs=1e-6)


def test_torchmetrics_default_border_differs_from_skimage():
    # the reason ssim_rgb8 crops the SSIM map: torchmetrics alone averages the reflect-padded borders too
    pred, target = PAIRS["astronaut_noisy"]
    uncropped = structural_similarity_index_measure(to_batch(pred).double(), to_batch(target).double(),
                                                    sigma=1.5, data_range=255)
    assert abs(uncropped.item() - skimage_ssim(pred, target)) > 1e-4


@pytest.mark.parametrize("name", PAIRS)
def test_mse_ab_matches_skimage_rgb2lab(name):
    pred, target = PAIRS[name]
    value = mse_ab(to_batch(pred), to_batch(target))
    assert value.dtype == torch.float64 and value.shape == (1,)
    assert value.item() == pytest.approx(skimage_mse_ab(pred, target), rel=1e-9, abs=1e-4)


def test_l1_matches_numpy_per_image():
    names = list(PAIRS)
    preds = [PAIRS[name][0] for name in names]
    targets = [PAIRS[name][1] for name in names]
    for shape in {pred.shape for pred in preds}:  # one batch per image size
        batch = [i for i, pred in enumerate(preds) if pred.shape == shape]
        value = l1_rgb8(to_batch(*(preds[i] for i in batch)), to_batch(*(targets[i] for i in batch)))
        assert value.dtype == torch.float64 and value.shape == (len(batch),)
        expected = [np.abs(preds[i].astype(float) - targets[i].astype(float)).mean() for i in batch]
        np.testing.assert_allclose(value.numpy(), expected, rtol=1e-12, atol=0)


def test_l1_is_on_the_0_to_255_scale_and_symmetric():
    black = np.zeros((16, 16, 3), np.uint8)
    half_white = black.copy()
    half_white[:8] = 255  # half the pixels differ by 255 in every channel
    assert l1_rgb8(to_batch(half_white), to_batch(black)).item() == 127.5
    one_channel = black.copy()
    one_channel[..., 1] = 30  # one channel of three differs by 30
    assert l1_rgb8(to_batch(black), to_batch(one_channel)).item() == 10.0


def test_identical_images_are_perfect():
    image = to_batch(*PAIRS["astronaut_noisy"])
    values = compute_metrics(image, image.clone(), names=["psnr_rgb8", "ssim_rgb8", "l1_rgb8", "mse_ab_rgb8"])
    assert values["psnr_rgb8"].tolist() == [math.inf, math.inf]
    torch.testing.assert_close(values["ssim_rgb8"], torch.ones(2, dtype=torch.float64), rtol=0, atol=1e-12)
    assert values["l1_rgb8"].tolist() == [0.0, 0.0]
    assert values["mse_ab_rgb8"].tolist() == [0.0, 0.0]


def test_values_are_per_image():
    names = ["random_vs_noisy", "coffee_channels_swapped"]
    preds = to_batch(*(PAIRS[name][0] for name in names))
    targets = to_batch(*(PAIRS[name][1] for name in names))
    batched = compute_metrics(preds, targets)
    assert set(batched) == {name for name, metric in METRICS.items() if metric.takes == "images"}
    per_image = {name: values for name, values in batched.items() if METRICS[name].per_image}
    assert set(per_image) == {"psnr_rgb8", "ssim_rgb8", "l1_rgb8", "mse_ab_rgb8", "de2000_rgb8", "cf"}
    for metric, values in per_image.items():
        assert values.shape == (2,) and values[0] != values[1], metric
        for index in range(2):
            alone = METRICS[metric].compute(preds[index:index + 1], targets[index:index + 1])
            assert values[index].item() == pytest.approx(alone.item(), rel=1e-12), metric
    for metric in set(batched) - set(per_image):  # set metrics: one number for the pair of sets
        assert isinstance(batched[metric]["value"], float), metric


def test_compute_metrics_selects_names():
    pred, target = PAIRS["astronaut_blurred"]
    values = compute_metrics(to_batch(pred), to_batch(target), names=["ssim_rgb8"])
    assert list(values) == ["ssim_rgb8"]
    assert values["ssim_rgb8"].item() == pytest.approx(skimage_ssim(pred, target), rel=0, abs=1e-6)
    with pytest.raises(ValueError, match="psnr"):
        compute_metrics(to_batch(pred), to_batch(target), names=["psnr"])
    with pytest.raises(ValueError, match="need a network or features"):
        compute_metrics(to_batch(pred), to_batch(target), names=["fid_inception_pt"])


def test_every_metric_has_a_json_protocol():
    assert set(PROTOCOLS) == set(METRICS)
    assert json.loads(json.dumps(PROTOCOLS)) == PROTOCOLS
    assert PROTOCOLS["ssim_rgb8"]["gaussian_sigma"] == 1.5 and PROTOCOLS["ssim_rgb8"]["kernel_size"] == 11


@pytest.mark.parametrize("pred, target, message", [
    (torch.zeros(1, 3, 16, 16), torch.zeros(1, 3, 16, 16, dtype=torch.uint8), "pred"),
    (torch.zeros(1, 3, 16, 16, dtype=torch.uint8), torch.zeros(1, 3, 16, 17, dtype=torch.uint8), "shapes differ"),
])
def test_invalid_inputs_are_rejected(pred, target, message):
    for name, metric in METRICS.items():
        if metric.takes == "features":
            continue  # take feature matrices; their checks are in test_metric_validity
        extra = (torch.nn.Identity(),) if metric.takes == "network" else ()
        with pytest.raises(ValueError, match=message):
            metric.compute(pred, target, *extra)
