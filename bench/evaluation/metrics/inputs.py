"""Validation of the inputs metrics take: image batches and feature matrices."""
from __future__ import annotations

import numpy as np
import torch

from bench.data.colour import check_rgb8


def check_pair(pred: torch.Tensor, target: torch.Tensor) -> None:
    """Raise ValueError unless ``pred`` and ``target`` are uint8 (B, 3, H, W) batches of one shape."""
    check_rgb8("pred", pred)
    check_rgb8("target", target)
    if pred.shape != target.shape:
        raise ValueError(f"pred and target: shapes differ: {tuple(pred.shape)} vs {tuple(target.shape)}")


def as_feature_matrix(name: str, features) -> np.ndarray:
    """``features`` as a finite float64 (N, D) array; ValueError naming ``name`` otherwise."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2:
        raise ValueError(f"{name}: expected an (N, D) feature matrix; got shape {features.shape}")
    if not np.isfinite(features).all():
        raise ValueError(f"{name}: contains non-finite values")
    return features
