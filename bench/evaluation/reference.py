"""Features of ground-truth image sets, computed once and shared by every run that scores against them.

A sweep of N runs on one dataset scores N generators against the same real images, so their
detector features are cached on disk, one file per (dataset, split, resolution, images,
detector) under ``<cache_dir>/reference/``, where ``cache_dir`` is the dataset cache's
(``data.cache_dir``, $COLORBENCH_CACHE or ~/.cache/colorbench).  The images enter the key as
the sha256 of their ids and pixels, so anything that changes what the detector sees (other
files, another resize, another filter setting) gets its own entry, while the same images
reached through another path or copy share one.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch

from bench.data.cache import load_cached, save_atomically
from bench.evaluation.detectors import FEATURE_BATCH_SIZE, extract_features

FORMAT_VERSION = 1


def images_sha256(images_rgb8: torch.Tensor, image_ids: list[str]) -> str:
    """sha256 over the image ids (JSON) and the uint8 pixels, shape included."""
    digest = hashlib.sha256(json.dumps([list(image_ids), list(images_rgb8.shape)]).encode())
    digest.update(images_rgb8.contiguous().cpu().numpy().tobytes())
    return digest.hexdigest()


def reference_key(images_rgb8: torch.Tensor, image_ids: list[str], *, dataset: str, split: str,
                  detector_id: str) -> dict:
    """The identity of a reference feature set, as plain values."""
    return {"format_version": FORMAT_VERSION, "dataset": dataset, "split": split,
            "resolution": list(images_rgb8.shape[-2:]), "n_images": len(images_rgb8),
            "images_sha256": images_sha256(images_rgb8, image_ids), "detector": detector_id}


def reference_path(cache_dir: Path, key: dict) -> Path:
    """The cache file of ``key``."""
    return cache_dir / "reference" / f"{hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()}.pt"


def reference_features(images_rgb8: torch.Tensor, image_ids: list[str], extractor: torch.nn.Module,
                       device: torch.device, cache_dir: Path, *, dataset: str, split: str,
                       batch_size: int = FEATURE_BATCH_SIZE) -> np.ndarray:
    """(N, D) features of the ground-truth ``images_rgb8`` by ``extractor``, from the cache or computed and cached.

    ``extractor.id`` names the detector in the key.  The file is written atomically, so
    runs computing the same entry at once each write a whole file and readers never see a
    partial one.
    """
    key = reference_key(images_rgb8, image_ids, dataset=dataset, split=split, detector_id=extractor.id)
    path = reference_path(cache_dir, key)
    payload = load_cached(path)
    if payload is not None and payload.get("key") == key:
        return payload["features"].numpy()
    features = extract_features(images_rgb8, extractor, device, batch_size, description=f"reference features ({split})")
    save_atomically({"key": key, "features": torch.from_numpy(features)}, path)
    return features
