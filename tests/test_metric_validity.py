"""The distribution, colour and perceptual metrics against their references and hand computations."""
import hashlib
import math
from pathlib import Path

import lpips
import numpy as np
import pytest
import torch
import torchvision
from PIL import Image
from pytorch_fid.fid_score import calculate_frechet_distance, get_activations
from skimage import color, data

from bench.data import assets
from bench.evaluation.detectors import LpipsAlex, extract_features, load_detector
from bench.evaluation.metrics import METRICS
from bench.evaluation.metrics.colourfulness import colourfulness, delta_colourfulness
from bench.evaluation.metrics.frechet import feature_statistics, frechet_distance, frechet_feature_distance
from bench.evaluation.metrics.histogram import LAB_BINS, histogram_intersection_lab, lab_histograms
from bench.evaluation.metrics.kid import kernel_distance, subset_indices
from bench.evaluation.metrics.perceptual import lpips_distance


def batch(*images_hwc: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 images -> (B, 3, H, W) uint8 tensor."""
    return torch.from_numpy(np.stack(images_hwc)).permute(0, 3, 1, 2).contiguous()


def relu_features(rng: np.random.Generator, n: int, dims: int, scale: float = 1.0, shift: float = 0.0) -> np.ndarray:
    """``n`` samples of non-negative, correlated features like Inception's pool3 activations.

    The correlation is fixed per ``dims``, so equal ``scale`` and ``shift`` sample one distribution.
    """
    mixing = np.random.default_rng(dims).normal(size=(dims, dims)) / math.sqrt(dims)
    return np.maximum(rng.normal(size=(n, dims)) @ mixing * scale + shift, 0.0)


# --- Fréchet distance -----------------------------------------------------------------------------------------------

@pytest.mark.filterwarnings("ignore:The `disp` argument is deprecated")  # scipy's sqrtm inside pytorch-fid
@pytest.mark.parametrize("n, dims", [(500, 32), (40, 64), (120, 256)])  # full-rank, then fewer images than dims
def test_frechet_matches_pytorch_fid(n, dims):
    rng = np.random.default_rng(dims)
    stats1 = feature_statistics(relu_features(rng, n, dims))
    stats2 = feature_statistics(relu_features(rng, n + 7, dims, scale=1.3, shift=0.2))
    ours = frechet_distance(*stats1, *stats2)
    reference = calculate_frechet_distance(*stats1, *stats2)
    assert ours == pytest.approx(reference, rel=1e-6)
    assert ours > 1.0


def test_statistics_are_pytorch_fids():
    features = relu_features(np.random.default_rng(1), 50, 8)
    mu, sigma = feature_statistics(features)
    np.testing.assert_array_equal(mu, np.mean(features, axis=0))
    np.testing.assert_array_equal(sigma, np.cov(features, rowvar=False))


def test_equal_covariances_leave_the_squared_mean_distance():
    rng = np.random.default_rng(2)
    sigma = np.cov(relu_features(rng, 200, 16), rowvar=False)
    mu1, mu2 = rng.normal(size=16), rng.normal(size=16)
    expected = float(np.sum((mu1 - mu2) ** 2))
    assert frechet_distance(mu1, sigma, mu2, sigma) == pytest.approx(expected, rel=0, abs=1e-9 * np.trace(sigma))


def test_one_dimensional_gaussians_have_the_closed_form():
    # for N(m1, s1^2) and N(m2, s2^2): (m1 - m2)^2 + (s1 - s2)^2
    assert frechet_distance(np.array([1.0]), np.array([[4.0]]), np.array([-2.0]), np.array([[9.0]])) == \
        pytest.approx(3.0 ** 2 + (2.0 - 3.0) ** 2, rel=1e-12)


def test_a_set_against_itself_is_zero():
    features = relu_features(np.random.default_rng(3), 60, 24)
    assert frechet_feature_distance(features, features)["value"] == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("fake, real, message", [
    (np.zeros((5, 4)), np.zeros((5, 3)), "mu2: expected shape"),
    (np.zeros((1, 4)), np.zeros((5, 4)), "at least 2 rows"),
    (np.zeros(5), np.zeros((5, 4)), "an \\(N, D\\) feature matrix"),
    (np.full((5, 4), np.nan), np.zeros((5, 4)), "non-finite"),
])
def test_frechet_rejects_bad_features(fake, real, message):
    with pytest.raises(ValueError, match=message):
        frechet_feature_distance(fake, real)


# --- KID ------------------------------------------------------------------------------------------------------------

def direct_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 with k(a, b) = (a.b / d + 1)^3, written out as sums over pairs."""
    d, m = x.shape[1], len(x)
    k = lambda a, b: (a @ b / d + 1.0) ** 3  # noqa: E731
    within = sum(k(x[i], x[j]) + k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    across = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / m ** 2
    return within - 2 * across


def test_kid_matches_the_direct_formula():
    rng = np.random.default_rng(4)
    fake, real = relu_features(rng, 12, 5), relu_features(rng, 12, 5, shift=0.3)
    result = kernel_distance(fake, real)
    assert result["subsets"] == 1 and result["subset_size"] == 12 and result["std"] == 0.0  # whole sets: one subset
    assert result["value"] == pytest.approx(direct_mmd2(fake, real), rel=1e-12)


def test_kid_averages_the_formula_over_seeded_subsets():
    rng = np.random.default_rng(5)
    fake, real = relu_features(rng, 30, 4), relu_features(rng, 40, 4, shift=0.2)
    subsets = subset_indices(30, 40, subset_size=10, n_subsets=6, seed=7)
    estimates = [direct_mmd2(fake[f], real[r]) for f, r in subsets]
    result = kernel_distance(fake, real, subset_size=10, n_subsets=6, seed=7)
    assert result["subsets"] == 6 and result["subset_size"] == 10
    assert result["value"] == pytest.approx(np.mean(estimates), rel=1e-12)
    assert result["std"] == pytest.approx(np.std(estimates), rel=1e-9)
    assert len({tuple(f) for f, _ in subsets}) == 6  # distinct draws
    assert all(len(set(f)) == 10 and len(set(r)) == 10 for f, r in subsets)  # without replacement
    assert kernel_distance(fake, real, subset_size=10, n_subsets=6, seed=7) == result


def test_kid_of_a_set_with_itself_is_about_zero():
    rng = np.random.default_rng(6)
    x = relu_features(rng, 400, 16)
    itself = kernel_distance(x, x)["value"]
    # with Y = X the unbiased estimate is exactly (2 / m) (mean off-diagonal k - mean diagonal k): O(1/m)
    k = (x @ x.T / 16 + 1.0) ** 3
    off_diagonal = (k.sum() - np.trace(k)) / (400 * 399)
    assert itself == pytest.approx(2 / 400 * (off_diagonal - np.trace(k) / 400), rel=1e-9)
    same_distribution = kernel_distance(x, relu_features(rng, 400, 16))["value"]
    shifted = kernel_distance(x, relu_features(rng, 400, 16, shift=0.3))["value"]
    assert abs(itself) < 0.05 * shifted and abs(same_distribution) < 0.05 * shifted


@pytest.mark.parametrize("fake, real, message", [
    (np.zeros((5, 4)), np.zeros((5, 3)), "feature dimensions differ"),
    (np.zeros((1, 4)), np.zeros((5, 4)), "at least 2 rows"),
    (np.full((5, 4), np.inf), np.zeros((5, 4)), "fake: contains non-finite"),
])
def test_kid_rejects_bad_features(fake, real, message):
    with pytest.raises(ValueError, match=message):
        kernel_distance(fake, real)


# --- colourfulness --------------------------------------------------------------------------------------------------

def test_cf_of_a_constructed_image_equals_the_hand_computation():
    image = np.array([[[255, 0, 0], [0, 255, 0]], [[0, 0, 255], [255, 255, 255]]], np.uint8)
    # rg = |R-G| = 255, 255, 0, 0: mean 127.5, std 127.5
    # yb = |(R+G)/2-B| = 127.5, 127.5, 255, 0: mean 127.5, std 127.5/sqrt(2)
    expected = math.sqrt(127.5 ** 2 + 127.5 ** 2 / 2) + 0.3 * math.sqrt(127.5 ** 2 + 127.5 ** 2)
    assert colourfulness(batch(image)).tolist() == [pytest.approx(expected, rel=1e-12)]
    grey = np.full((4, 4, 3), 77, np.uint8)
    assert colourfulness(batch(grey)).tolist() == [0.0]


def ddcolor_cf(image_rgb: np.ndarray) -> float:
    """DDColor's calculate_cf (basicsr/metrics/colorfulness.py) on an RGB image, in numpy."""
    red, green, blue = (image_rgb[..., i].astype(float) for i in range(3))
    rg, yb = np.absolute(red - green), np.absolute(0.5 * (red + green) - blue)
    return np.sqrt(np.std(rg) ** 2 + np.std(yb) ** 2) + 0.3 * np.sqrt(np.mean(rg) ** 2 + np.mean(yb) ** 2)


def test_cf_equals_ddcolors_on_photos_and_delta_cf_is_the_difference_of_means():
    photos = [data.astronaut()[:128, :128], data.coffee()[:128, :128], data.chelsea()[:128, :128]]
    values = colourfulness(batch(*photos))
    assert values.dtype == torch.float64
    assert values.tolist() == pytest.approx([ddcolor_cf(p) for p in photos], rel=1e-12)
    outputs = [np.repeat(p.mean(-1, keepdims=True), 3, -1).astype(np.uint8) for p in photos]  # greyed outputs
    result = delta_colourfulness(batch(*outputs), batch(*photos))
    assert result["cf_target"] == pytest.approx(np.mean([ddcolor_cf(p) for p in photos]), rel=1e-12)
    assert result["value"] == pytest.approx(abs(result["cf_output"] - result["cf_target"]), rel=1e-12)
    assert result["cf_output"] < 1.0 < result["value"]  # grey outputs: no colour, large ΔCF


# --- colour-histogram intersection ----------------------------------------------------------------------------------

def solid(rgb, size=8) -> np.ndarray:
    return np.broadcast_to(np.array(rgb, np.uint8), (size, size, 3)).copy()


def test_histogram_intersection_with_itself_is_one():
    photo = data.astronaut()[::8, ::8]
    for image in (photo, solid((255, 255, 255)), solid((0, 0, 0))):  # white and black sit on the range ends
        result = histogram_intersection_lab(batch(image), batch(image))
        assert result["per_channel"] == pytest.approx({"L": 1.0, "a": 1.0, "b": 1.0}, abs=1e-12)
        assert result["value"] == pytest.approx(1.0, abs=1e-12)


def test_histogram_intersection_of_disjoint_colours_is_zero_and_halves_add():
    red, green = solid((255, 0, 0)), solid((0, 255, 0))  # Lab (53, 80, 67) and (88, -86, 83): apart in L, a and b
    assert histogram_intersection_lab(batch(red), batch(green)) == {"value": 0.0,
                                                                    "per_channel": {"L": 0.0, "a": 0.0, "b": 0.0}}
    half = np.concatenate([red[:4], green[:4]])
    result = histogram_intersection_lab(batch(half), batch(red))
    assert result["per_channel"] == pytest.approx({"L": 0.5, "a": 0.5, "b": 0.5}, abs=1e-12)
    pooled = histogram_intersection_lab(batch(red, green), batch(red, red))  # pooled over the set's pixels
    assert pooled["value"] == pytest.approx(0.5, abs=1e-12)


def test_histograms_have_the_stated_bins_and_match_numpy():
    assert LAB_BINS == {"L": (100, 0.0, 100.0), "a": (256, -128.0, 128.0), "b": (256, -128.0, 128.0)}
    photos = [data.astronaut()[::4, ::4], data.coffee()[::4, ::5][:128, :128]]
    photos = [p[:100, :100] for p in photos]
    ours = lab_histograms(batch(*photos))
    lab = color.rgb2lab(np.stack(photos))
    for index, (channel, (bins, low, high)) in enumerate(LAB_BINS.items()):
        counts, _ = np.histogram(lab[..., index], bins=bins, range=(low, high))
        np.testing.assert_allclose(ours[channel].numpy(), counts / counts.sum(), rtol=0, atol=1e-12)


# --- LPIPS and the Inception input path, on stand-in weights written as the expected files -------------------------

def _weights_file(directory: Path, name: str, state_dict: dict, monkeypatch) -> None:
    """Save ``state_dict`` as asset ``name``'s file and make the asset table expect exactly that file."""
    path = directory / assets.ASSETS[name].filename
    torch.save(state_dict, path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    monkeypatch.setitem(assets.ASSETS, name, assets.Asset(name, assets.ASSETS[name].url, digest, "test"))


def test_lpips_maps_torchvision_alexnet_into_lpips(tmp_path, monkeypatch):
    torch.manual_seed(0)
    alexnet = torchvision.models.alexnet(weights=None)
    _weights_file(tmp_path, "alexnet", alexnet.state_dict(), monkeypatch)
    network = load_detector("lpips_alex", str(tmp_path), torch.device("cpu"))
    assert isinstance(network, LpipsAlex) and "alexnet-owt-7be5be79.pth" in network.id
    # reference: lpips slicing the same AlexNet itself
    monkeypatch.setattr(lpips.pretrained_networks.tv, "alexnet", lambda *args, **kwargs: alexnet)
    reference = lpips.LPIPS(net="alex", verbose=False).eval()
    rng = np.random.default_rng(0)
    pred = torch.from_numpy(rng.integers(0, 256, (3, 3, 32, 32), dtype=np.uint8))
    target = torch.from_numpy(rng.integers(0, 256, (3, 3, 32, 32), dtype=np.uint8))
    values = lpips_distance(pred, target, network, batch_size=2)
    with torch.no_grad():
        expected = reference(pred.float() / 255, target.float() / 255, normalize=True).flatten().double()
    torch.testing.assert_close(values, expected, rtol=1e-6, atol=1e-7)
    assert values.shape == (3,) and (values > 0).all()
    assert lpips_distance(pred, pred, network).abs().max() < 1e-6


def test_inception_features_equal_pytorch_fids_path_from_png_files(tmp_path, monkeypatch):
    # The FID Inception has torchvision's parameter names and shapes, so an untrained torchvision
    # Inception (1008 classes) stands in for the weights; only the input path is under test here.
    torch.manual_seed(0)
    stand_in = torchvision.models.inception_v3(weights=None, num_classes=1008, aux_logits=False, init_weights=False)
    _weights_file(tmp_path, "fid_inception", stand_in.state_dict(), monkeypatch)
    extractor = load_detector("fid_inception", str(tmp_path), torch.device("cpu"))
    rng = np.random.default_rng(1)
    images = torch.from_numpy(rng.integers(0, 256, (2, 3, 40, 40), dtype=np.uint8))
    files = []
    for index, image in enumerate(images):
        files.append(tmp_path / f"{index}.png")
        Image.fromarray(image.permute(1, 2, 0).numpy()).save(files[-1])
    ours = extract_features(images, extractor, torch.device("cpu"), batch_size=1)
    reference = get_activations(files, extractor.network, batch_size=2, dims=2048, device="cpu", num_workers=0)
    assert ours.shape == (2, 2048)
    np.testing.assert_allclose(ours, reference, rtol=1e-5, atol=1e-6)


def test_registry_names_the_detectors():
    assert METRICS["fid_inception_pt"].detector == METRICS["kid_inception_pt"].detector == "fid_inception"
    assert METRICS["lpips_alex"].detector == "lpips_alex"
    assert {name for name, metric in METRICS.items() if metric.per_image} == \
        {"psnr_rgb8", "ssim_rgb8", "l1_rgb8", "mse_ab_rgb8", "de2000_rgb8", "cf", "lpips_alex"}
