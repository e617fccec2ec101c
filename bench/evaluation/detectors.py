"""The networks some metrics need, built only from local weight files, and batched feature extraction.

* ``fid_inception``: pytorch-fid's ``InceptionV3`` (block 3: pool3, 2048-d) with the FID
  weights ``pt_inception-2015-12-05-6726825d.pth``, fed 8-bit RGB / 255 as pytorch-fid's own
  path from PNG files does; it resizes to 299x299 and scales to [-1, 1] itself.
* ``lpips_alex``: the lpips package's ``LPIPS(net="alex")`` v0.1, whose linear layers ship
  with the package, on torchvision's ImageNet AlexNet ``alexnet-owt-7be5be79.pth``.

Weight files are looked for in ``bench.data.assets.weights_dir`` and checked against their
sha256; when one is absent or wrong, :class:`WeightsUnavailable` says which and how to get
it.  Networks are never built on random weights and nothing is downloaded.
"""
from __future__ import annotations

import functools
import pickle
import warnings
from importlib.metadata import version
from unittest import mock

import lpips
import numpy as np
import pytorch_fid.inception
import torch
import torch.nn.functional as F
from tqdm import tqdm

from bench.data.assets import ASSETS, AssetError, asset_path, verify
from bench.data.colour import check_rgb8
from bench.evaluation.metrics import FID_INCEPTION, LPIPS_ALEX

FEATURE_BATCH_SIZE = 50  # pytorch-fid's default
INCEPTION_ID = f"pytorch-fid {version('pytorch-fid')} InceptionV3 pool3 2048-d, {ASSETS['fid_inception'].filename}"
LPIPS_ID = f"lpips {version('lpips')} LPIPS v0.1 alex, {ASSETS['alexnet'].filename}"


class WeightsUnavailable(RuntimeError):
    """The weights a metric needs are absent or not the expected file; the message says which and how to get them."""


class InceptionFeatures(torch.nn.Module):
    """pool3 features (B, 2048) of uint8 sRGB batches by pytorch-fid's FID Inception."""

    id = INCEPTION_ID

    def __init__(self, state_dict: dict) -> None:
        super().__init__()
        # pytorch-fid builds its FID Inception only through load_state_dict_from_url, which downloads
        # the weights when they are not in the hub cache; handing it the state dict read from the
        # local file keeps its exact architecture and never touches the network.
        with mock.patch.object(pytorch_fid.inception, "load_state_dict_from_url", lambda *args, **kwargs: state_dict):
            block = pytorch_fid.inception.InceptionV3.BLOCK_INDEX_BY_DIM[2048]
            self.network = pytorch_fid.inception.InceptionV3([block], resize_input=True, normalize_input=True)
        self.eval()

    def forward(self, images_rgb8: torch.Tensor) -> torch.Tensor:
        return self.network(images_rgb8.float() / 255.0)[0].flatten(1)


class LpipsAlex(torch.nn.Module):
    """lpips' LPIPS v0.1 on AlexNet, its backbone loaded from a torchvision AlexNet state dict."""

    id = LPIPS_ID

    def __init__(self, alexnet_state_dict: dict) -> None:
        super().__init__()
        with warnings.catch_warnings():
            # lpips asks torchvision for alexnet(pretrained=False), the deprecated spelling of weights=None
            warnings.filterwarnings("ignore", message="The parameter 'pretrained' is deprecated")
            warnings.filterwarnings("ignore", message="Arguments other than a weight enum")
            self.model = lpips.LPIPS(net="alex", version="0.1", pnet_rand=True, verbose=False)
        # lpips slices AlexNet's ``features`` keeping torchvision's layer indices: slice2.3.weight is features.3.weight
        backbone = {key: alexnet_state_dict[f"features.{key.split('.', 1)[1]}"] for key in self.model.net.state_dict()}
        self.model.net.load_state_dict(backbone, strict=True)
        self.eval()

    def forward(self, pred: torch.Tensor, target: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        return self.model(pred, target, normalize=normalize)


class StandInFeatures(torch.nn.Module):
    """A fixed 51-d feature map for tests and benchmarks on machines without the Inception weights.

    Per-channel means of 8-bit RGB / 255 over a 4x4 grid (48) and per-channel standard
    deviations (3).  It goes through the same extraction, caching and distance functions as
    Inception, and records name it as their detector: its values are not FIDs.
    """

    id = "stand-in: RGB 4x4 grid means and channel stds (not Inception; values are not FIDs)"

    def forward(self, images_rgb8: torch.Tensor) -> torch.Tensor:
        images = images_rgb8.float() / 255.0
        return torch.cat([F.adaptive_avg_pool2d(images, 4).flatten(1), images.flatten(2).std(dim=2)], dim=1)


def extract_features(images_rgb8: torch.Tensor, extractor: torch.nn.Module, device: torch.device,
                     batch_size: int = FEATURE_BATCH_SIZE, description: str = "features") -> np.ndarray:
    """(N, D) float32 features of uint8 (N, 3, H, W) images, in batches on ``device`` under inference mode."""
    check_rgb8("images", images_rgb8)
    chunks = []
    with torch.inference_mode():
        for start in tqdm(range(0, len(images_rgb8), batch_size), desc=description, unit="batch", disable=None):
            chunks.append(extractor(images_rgb8[start:start + batch_size].to(device)).float().cpu())
    return torch.cat(chunks).numpy()


def load_detector(name: str, weights_dir: str | None, device: torch.device) -> torch.nn.Module:
    """The network ``name`` (``fid_inception`` or ``lpips_alex``) on ``device``, loaded once per process.

    Raises WeightsUnavailable when its weight file is absent or is not the expected file.
    """
    loaders = {FID_INCEPTION: _fid_inception, LPIPS_ALEX: _lpips_alex}
    return loaders[name](weights_dir, str(device))


DETECTOR_IDS = {FID_INCEPTION: InceptionFeatures.id, LPIPS_ALEX: LpipsAlex.id}
DETECTOR_ASSETS = {FID_INCEPTION: "fid_inception", LPIPS_ALEX: "alexnet"}  # the weight file of each (bench.data.assets)


@functools.lru_cache(maxsize=None)
def _fid_inception(weights_dir: str | None, device: str) -> InceptionFeatures:
    return InceptionFeatures(_load_state_dict(DETECTOR_ASSETS[FID_INCEPTION], weights_dir)).to(device)


@functools.lru_cache(maxsize=None)
def _lpips_alex(weights_dir: str | None, device: str) -> LpipsAlex:
    return LpipsAlex(_load_state_dict(DETECTOR_ASSETS[LPIPS_ALEX], weights_dir)).to(device)


def _load_state_dict(name: str, weights_dir: str | None) -> dict:
    """The state dict in asset ``name``'s file, checked against its sha256."""
    path = asset_path(name, weights_dir)
    if not path.is_file():
        raise WeightsUnavailable(
            f"{ASSETS[name].filename} not found in {path.parent}; run `colorbench assets fetch` on a machine with "
            f"internet (or copy the file there), or set eval.weights_dir to a folder holding it")
    try:
        verify(path, ASSETS[name])
    except AssetError as err:
        raise WeightsUnavailable(str(err)) from None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, pickle.UnpicklingError) as err:
        raise WeightsUnavailable(f"{path}: cannot be read as a state dict ({err})") from None
