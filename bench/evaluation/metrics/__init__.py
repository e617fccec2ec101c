"""The benchmark's metrics, keyed by names that encode their protocol, and those protocols in plain values.

Every metric is a pure function.  What it takes is declared by ``Metric.takes``:

* ``"images"``: ``compute(pred_rgb8, target_rgb8)``, uint8 (B, 3, H, W) batches;
* ``"network"``: ``compute(pred_rgb8, target_rgb8, network)``, with the network named by ``detector``;
* ``"features"``: ``compute(fake_features, real_features)``, (N, D) arrays that the feature
  extractor named by ``detector`` computed from the outputs and from the ground truth.

A per-image metric returns one float64 value per image, shaped (B,); a set metric returns a
dict with the set's ``value`` and any further numbers its record keeps.  Loading networks,
extracting features and writing records is the caller's job (``bench.evaluation.scoring``).

The names and their order are ``bench.config.names.METRIC_NAMES``, which ``bench.config`` reads
without importing this package (and torchmetrics, pytorch-fid, lpips with it).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

import torch

from bench.config.names import METRIC_NAMES
from bench.evaluation.metrics import kid
from bench.evaluation.metrics.colour_difference import WEIGHTS, de2000_rgb8
from bench.evaluation.metrics.colourfulness import MEAN_WEIGHT, colourfulness, delta_colourfulness
from bench.evaluation.metrics.frechet import frechet_feature_distance
from bench.evaluation.metrics.histogram import LAB_BINS, histogram_intersection_lab
from bench.evaluation.metrics.inputs import check_pair
from bench.evaluation.metrics.kid import kernel_distance
from bench.evaluation.metrics.perceptual import lpips_distance
from bench.evaluation.metrics.pixel import (
    DATA_RANGE,
    SSIM_BORDER,
    SSIM_K1,
    SSIM_K2,
    SSIM_KERNEL_SIZE,
    SSIM_SIGMA,
    l1_rgb8,
    mse_ab,
    psnr_rgb8,
    ssim_rgb8,
)

FID_INCEPTION = "fid_inception"
LPIPS_ALEX = "lpips_alex"


@dataclass(frozen=True)
class Metric:
    """A registered metric: its function, what it takes, whether it scores images or the set, its protocol."""

    compute: Callable
    per_image: bool
    takes: Literal["images", "network", "features"]
    protocol: dict
    detector: str | None = None

    def __post_init__(self) -> None:
        if (self.takes == "images") != (self.detector is None):
            raise ValueError(f"Metric: a detector is named exactly when it takes a network or features; "
                             f"got takes={self.takes!r}, detector={self.detector!r}")


def _cf_of_outputs(pred_rgb8: torch.Tensor, target_rgb8: torch.Tensor) -> torch.Tensor:
    """CF of the outputs alone (the ground truth's enters through delta_cf), for outputs that match it."""
    check_pair(pred_rgb8, target_rgb8)
    return colourfulness(pred_rgb8)


_INPUT = "8-bit sRGB, rounded"
_LAB = "CIELAB, D65, observer 2 degrees (skimage rgb2lab)"
_INCEPTION_INPUT = ("8-bit sRGB as value / 255 (what pytorch-fid's ToTensor gives for PNG files), resized inside "
                    "the network to 299x299 bilinearly (F.interpolate, align_corners=False, no antialiasing), "
                    "scaled to 2x - 1")
_INCEPTION_FEATURES = "pytorch-fid InceptionV3 block 3 (pool3, 2048-d) with the FID weights pt_inception-2015-12-05"
_REFERENCE = ("the ground-truth images of the same split at the same resolution; their features are cached per "
              "(dataset, split, resolution, hash of the image ids and pixels, detector)")

_DEFINITIONS: dict[str, Metric] = {
    "psnr_rgb8": Metric(psnr_rgb8, True, "images", {
        "input": _INPUT, "data_range": DATA_RANGE, "channels": "R, G, B",
        "reduction": "per image, mean squared error over channels and pixels",
        "identical_images": "inf", "implementation": "torchmetrics peak_signal_noise_ratio, float64",
    }),
    "ssim_rgb8": Metric(ssim_rgb8, True, "images", {
        "input": _INPUT, "data_range": DATA_RANGE, "window": "gaussian", "gaussian_sigma": SSIM_SIGMA,
        "kernel_size": SSIM_KERNEL_SIZE, "k1": SSIM_K1, "k2": SSIM_K2, "covariance": "population",
        "border": f"mean over pixels at least {SSIM_BORDER} from every edge (scikit-image's crop)",
        "channels": "per channel, then mean of R, G, B",
        "implementation": "torchmetrics structural_similarity_index_measure map, cropped; float64",
        "reference": "skimage.metrics.structural_similarity(channel_axis=-1, gaussian_weights=True, "
                     "sigma=1.5, use_sample_covariance=False, data_range=255)",
    }),
    "l1_rgb8": Metric(l1_rgb8, True, "images", {
        "input": _INPUT, "channels": "R, G, B", "units": "8-bit levels, 0..255",
        "reduction": "per image, mean absolute difference over channels and pixels", "identical_images": 0,
    }),
    "mse_ab_rgb8": Metric(mse_ab, True, "images", {
        "input": _INPUT, "colour_space": _LAB, "channels": "a, b", "units": "Lab units squared",
        "reduction": "per image, mean over a, b and pixels",
    }),
    "de2000_rgb8": Metric(de2000_rgb8, True, "images", {
        "input": _INPUT, "colour_space": _LAB, "formula": "CIEDE2000 (Sharma, Wu & Dalal 2005), "
        + ", ".join(f"{k} = {v}" for k, v in WEIGHTS.items()), "units": "Delta E 2000",
        "reduction": "per image, mean over pixels", "identical_images": 0,
        "implementation": "skimage.color.deltaE_ciede2000 on skimage.color.rgb2lab(rgb8 / 255), float64",
    }),
    "cf": Metric(_cf_of_outputs, True, "images", {
        "input": _INPUT + ", values 0..255, float64", "of": "the outputs",
        "formula": f"sqrt(std(rg)^2 + std(yb)^2) + {MEAN_WEIGHT} * sqrt(mean(rg)^2 + mean(yb)^2), "
                   "rg = |R - G|, yb = |(R + G) / 2 - B|, population std over the pixels of one image",
        "reduction": "per image; value = mean over images",
        "reference": "Hasler & Suesstrunk 2003 as computed by DDColor (basicsr/metrics/colorfulness.py, "
                     "absolute rg and yb; the paper's are signed)",
    }),
    "delta_cf": Metric(delta_colourfulness, False, "images", {
        "input": _INPUT, "formula": "|mean CF(outputs) - mean CF(ground truth)|, CF as in cf",
        "reduction": "per set", "reference": "DDColor (Kang et al. 2023), Table 1",
    }),
    "hist_isect_lab": Metric(histogram_intersection_lab, False, "images", {
        "input": _INPUT, "colour_space": _LAB,
        "bins": {channel: {"count": bins, "range": [low, high]} for channel, (bins, low, high) in LAB_BINS.items()},
        "bin_edges": "width 1 Lab unit, [low, low + 1), the last bin includes its upper edge",
        "histogram": "all pixels of all images of the set, normalised to sum 1 (marginal distribution)",
        "formula": "sum over bins of min(p_output, p_ground_truth), per channel; value = mean of L, a, b",
        "reduction": "per set", "reference": "pix2pix (Isola et al. 2017), Fig. 7",
    }),
    "lpips_alex": Metric(lpips_distance, True, "network", {
        "input": _INPUT + ", as value / 255 with normalize=True (so [-1, 1])",
        "network": "lpips package, LPIPS v0.1, net=alex: linear layers shipped with the package, AlexNet "
                   "backbone from torchvision's ImageNet weights alexnet-owt-7be5be79.pth",
        "resolution": "the evaluation resolution, no resizing", "reduction": "per image (spatial average)",
        "reference": "Zhang et al. 2018",
    }, LPIPS_ALEX),
    "fid_inception_pt": Metric(frechet_feature_distance, False, "features", {
        "input": _INCEPTION_INPUT, "features": _INCEPTION_FEATURES,
        "statistics": "mean and covariance (N - 1) of the features in float64, as pytorch-fid",
        "distance": "||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)); equals "
                    "pytorch_fid.fid_score.calculate_frechet_distance",
        "reference_set": _REFERENCE, "reduction": "per set",
        "caveat": "biased: it grows as n_images shrinks, so compare only at equal n_images",
    }, FID_INCEPTION),
    "kid_inception_pt": Metric(kernel_distance, False, "features", {
        "input": _INCEPTION_INPUT, "features": _INCEPTION_FEATURES,
        "kernel": f"polynomial (x.y / D + {kid.COEF:g})^{kid.DEGREE}", "estimator": "unbiased MMD^2",
        "subsets": kid.N_SUBSETS, "subset_size": f"min({kid.SUBSET_SIZE}, n_outputs, n_ground_truth)",
        "sampling": f"without replacement, numpy default_rng({kid.SEED}); one subset when it is the whole of "
                    "both sets (every subset would be that set reordered)",
        "value": "mean over subsets; std over subsets recorded", "reference_set": _REFERENCE,
        "reduction": "per set", "reference": "Binkowski et al. 2018; subsets as StyleGAN2-ADA, clean-fid, "
                                             "torch-fidelity",
    }, FID_INCEPTION),
}
if set(_DEFINITIONS) != set(METRIC_NAMES):  # bench.config validates eval.metrics against bench.config.names alone
    raise ImportError(f"bench.evaluation.metrics: the metrics defined here {sorted(_DEFINITIONS)} differ from "
                      f"bench.config.names.METRIC_NAMES {sorted(METRIC_NAMES)}; keep the two the same")
METRICS: dict[str, Metric] = {name: _DEFINITIONS[name] for name in METRIC_NAMES}  # in bench.config.names' order

PROTOCOLS: dict[str, dict] = {name: metric.protocol for name, metric in METRICS.items()}


def check_names(names: Iterable[str]) -> list[str]:
    """``names`` as a list; ValueError naming any that is not registered."""
    names = list(names)
    unknown = [name for name in names if name not in METRICS]
    if unknown:
        raise ValueError(f"metrics: unknown {unknown}; allowed: {', '.join(METRICS)}")
    return names


def compute_metrics(pred_rgb8: torch.Tensor, target_rgb8: torch.Tensor,
                    names: Iterable[str] | None = None) -> dict[str, torch.Tensor | dict]:
    """Values of the metrics ``names`` that take images only (default: all of them).

    ``pred_rgb8`` and ``target_rgb8`` are uint8 sRGB tensors shaped (B, 3, H, W).  A
    per-image metric gives a float64 tensor shaped (B,), a set metric a dict with ``value``.
    """
    names = [name for name in METRICS if METRICS[name].takes == "images"] if names is None else check_names(names)
    needs_more = [name for name in names if METRICS[name].takes != "images"]
    if needs_more:
        raise ValueError(f"metrics: {needs_more} need a network or features; "
                         "score them with bench.evaluation.scoring.metric_records")
    return {name: METRICS[name].compute(pred_rgb8, target_rgb8) for name in names}
