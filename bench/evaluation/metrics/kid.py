"""Kernel distance between two sets of features (KID when they are Inception features).

Bińkowski et al. 2018: the unbiased estimate of the squared MMD with the polynomial kernel
k(x, y) = (x·y / D + 1)^3, averaged over random subsets, with the subset scheme of the
common implementations (StyleGAN2-ADA, clean-fid, torch-fidelity): 100 subsets of
min(1000, N_fake, N_real) rows of each set, drawn without replacement.  Unlike FID it is
unbiased, so values from test sets of different sizes are comparable.
"""
from __future__ import annotations

import numpy as np
import torch
from torchmetrics.image.kid import poly_mmd

from bench.evaluation.metrics.inputs import as_feature_matrix

N_SUBSETS = 100
SUBSET_SIZE = 1000
SEED = 0
DEGREE = 3
COEF = 1.0


def subset_indices(n_fake: int, n_real: int, subset_size: int = SUBSET_SIZE, n_subsets: int = N_SUBSETS,
                   seed: int = SEED) -> list[tuple[np.ndarray, np.ndarray]]:
    """(fake rows, real rows) of each subset, ``min(subset_size, n_fake, n_real)`` each, from ``seed``.

    When that size is both set sizes every subset is the whole of both sets in another order,
    and the estimate does not depend on the order, so a single subset is returned.
    """
    size = min(subset_size, n_fake, n_real)
    if size < 2:
        raise ValueError(f"kernel distance: each set needs at least 2 rows; got {n_fake} and {n_real}")
    if size == n_fake == n_real:
        return [(np.arange(n_fake), np.arange(n_real))]
    rng = np.random.default_rng(seed)
    return [(rng.choice(n_fake, size, replace=False), rng.choice(n_real, size, replace=False))
            for _ in range(n_subsets)]


def kernel_distance(fake: np.ndarray, real: np.ndarray, subset_size: int = SUBSET_SIZE, n_subsets: int = N_SUBSETS,
                    seed: int = SEED) -> dict:
    """Mean (``value``) and standard deviation over subsets of the unbiased polynomial-kernel MMD^2."""
    fake = torch.from_numpy(as_feature_matrix("fake", fake))
    real = torch.from_numpy(as_feature_matrix("real", real))
    if fake.shape[1] != real.shape[1]:
        raise ValueError(f"fake and real: feature dimensions differ: {fake.shape[1]} vs {real.shape[1]}")
    subsets = subset_indices(len(fake), len(real), subset_size, n_subsets, seed)
    estimates = torch.stack([poly_mmd(real[rows_real], fake[rows_fake], degree=DEGREE, coef=COEF)
                             for rows_fake, rows_real in subsets])
    return {"value": estimates.mean().item(), "std": estimates.std(correction=0).item(),
            "subsets": len(subsets), "subset_size": len(subsets[0][0])}
