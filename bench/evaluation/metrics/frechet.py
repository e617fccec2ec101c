"""Fréchet distance between Gaussians fitted to two sets of features (FID when they are Inception features).

Feature matrices are (N, D) arrays, one row per image.  Statistics are those of pytorch-fid:
the mean and the covariance with N - 1 in the denominator, in float64.
"""
from __future__ import annotations

import numpy as np

from bench.evaluation.metrics.inputs import as_feature_matrix


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and covariance (D, D) of (N, D) features in float64, as pytorch-fid's ``np.cov(rowvar=False)``."""
    features = as_feature_matrix("features", features)
    if len(features) < 2:
        raise ValueError(f"features: a covariance needs at least 2 rows; got {len(features)}")
    return features.mean(axis=0), np.cov(features, rowvar=False)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """||mu1 - mu2||^2 + Tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^(1/2)).

    The trace of the root is the sum of the square roots of the eigenvalues of
    sigma1^(1/2) sigma2 sigma1^(1/2), a symmetric positive semi-definite matrix similar to
    sigma1 sigma2, so no complex arithmetic or ``sqrtm`` is needed and rank-deficient
    covariances (fewer images than feature dimensions) are handled without adding a ridge.
    Equals ``pytorch_fid.fid_score.calculate_frechet_distance`` to about 1e-8 relative.
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    dims = len(mu1)
    expected = {"mu2": (mu2, (dims,)), "sigma1": (sigma1, (dims, dims)), "sigma2": (sigma2, (dims, dims))}
    for name, (value, shape) in expected.items():
        if value.shape != shape:
            raise ValueError(f"{name}: expected shape {shape} to match mu1; got {value.shape}")
    root1 = _psd_sqrt(sigma1)
    product = root1 @ sigma2 @ root1
    # eigenvalues of a PSD matrix are >= 0; rounding can leave tiny negative ones, which are 0
    eigenvalues = np.linalg.eigvalsh((product + product.T) / 2)
    trace_root = np.sqrt(np.clip(eigenvalues, 0.0, None)).sum()
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_root)


def frechet_feature_distance(fake: np.ndarray, real: np.ndarray) -> dict[str, float]:
    """The Fréchet distance between the statistics of two (N, D) feature sets (FID for Inception pool3 features)."""
    return {"value": frechet_distance(*feature_statistics(fake), *feature_statistics(real))}


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric positive semi-definite matrix."""
    eigenvalues, eigenvectors = np.linalg.eigh(matrix)
    return (eigenvectors * np.sqrt(np.clip(eigenvalues, 0.0, None))) @ eigenvectors.T
