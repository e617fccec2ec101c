"""Uncertainty of a benchmark number: over seeds, and of a variant's difference from the baseline.

Pure functions of arrays.  Over seeds: mean, sample standard deviation and the 95% Student-t
interval of the mean.  Against the baseline, with per-image values of the same test images:

* :func:`paired_bootstrap` resamples the test images with replacement (the same draw for both
  arms: the pairing) and, independently per arm, the seeds; the interval is the percentile
  interval of the difference of means.  With one seed per arm it is the plain paired bootstrap
  over images; with several, the seeds' spread widens it as it should.
* :func:`wilcoxon_p`: the Wilcoxon signed-rank test of the per-image differences of the
  seed-averaged values.
* :func:`welch_interval`: for set metrics (no per-image values), the Welch t-interval of the
  difference of the seed means.

Across the arms of a study (each compared with one baseline): :func:`holm` adjusts their
p-values (Holm-Bonferroni, controlling the family-wise error rate), the intervals are also
given at the Bonferroni level ``1 - (1 - LEVEL) / arms``, and :func:`seeds_needed` is the
number of seeds per arm a two-sample comparison of seed means would need to resolve the
observed difference, given the measured spread over seeds.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats as scipy_stats

LEVEL = 0.95
N_RESAMPLES = 10_000
BOOTSTRAP_SEED = 0
_CHUNK = 1_000  # resamples drawn at once (memory: chunk x images)


@dataclass(frozen=True)
class SeedSummary:
    """Mean, sample std and ``LEVEL`` t-interval of one number over ``n`` seeds (std and interval NaN when n < 2)."""

    n: int
    mean: float
    std: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class Difference:
    """Variant minus baseline, its ``LEVEL`` interval and whether the interval excludes zero."""

    value: float
    ci_low: float
    ci_high: float

    @property
    def excludes_zero(self) -> bool:
        return bool(self.ci_low > 0 or self.ci_high < 0)


def seed_summary(values: np.ndarray | list[float], level: float = LEVEL) -> SeedSummary:
    """Summary of one value per seed: mean, std (ddof 1) and the Student-t interval of the mean."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or len(values) == 0:
        raise ValueError(f"seed_summary: expected a non-empty 1-d array of per-seed values, got shape {values.shape}")
    n, mean = len(values), float(values.mean())
    if n < 2:
        return SeedSummary(n, mean, float("nan"), float("nan"), float("nan"))
    std = float(values.std(ddof=1))
    half = float(scipy_stats.t.ppf(0.5 + level / 2, n - 1)) * std / np.sqrt(n)
    return SeedSummary(n, mean, std, float(mean - half), float(mean + half))


def paired_bootstrap(variant: np.ndarray, baseline: np.ndarray, n_resamples: int = N_RESAMPLES,
                     seed: int = BOOTSTRAP_SEED, level: float = LEVEL) -> Difference:
    """Difference of mean per-image values, variant minus baseline, with its paired bootstrap interval.

    ``variant`` is (seeds of the variant, images) and ``baseline`` (seeds of the baseline, images),
    with the columns the same test images in the same order.
    """
    return paired_bootstrap_intervals(variant, baseline, (level,), n_resamples, seed)[0]


def paired_bootstrap_intervals(variant: np.ndarray, baseline: np.ndarray, levels: tuple[float, ...],
                               n_resamples: int = N_RESAMPLES, seed: int = BOOTSTRAP_SEED) -> list[Difference]:
    """:func:`paired_bootstrap` at each of ``levels``, from one set of resamples."""
    variant, baseline = _per_seed_images("variant", variant), _per_seed_images("baseline", baseline)
    if variant.shape[1] != baseline.shape[1]:
        raise ValueError(f"paired_bootstrap: variant has {variant.shape[1]} images, baseline {baseline.shape[1]}; "
                         "a paired comparison needs the same images")
    if n_resamples < 1:
        raise ValueError(f"paired_bootstrap: n_resamples must be >= 1, got {n_resamples}")
    rng = np.random.default_rng(seed)
    n_images = variant.shape[1]
    differences = []
    for start in range(0, n_resamples, _CHUNK):
        size = min(_CHUNK, n_resamples - start)
        image_counts = _draw_counts(rng, size, n_images)  # one draw of images for both arms: the pairing
        means = []
        for arm in (variant, baseline):
            seed_weights = _draw_counts(rng, size, len(arm)) / len(arm)
            # mean over the drawn seeds and images = seed weights . (arm @ image counts) / images
            means.append(np.einsum("rs,sr->r", seed_weights, arm @ image_counts.T) / n_images)
        differences.append(means[0] - means[1])
    differences = np.concatenate(differences)
    value = float(variant.mean() - baseline.mean())
    return [Difference(value, *map(float, np.quantile(differences, [0.5 - level / 2, 0.5 + level / 2])))
            for level in levels]


def wilcoxon_p(variant: np.ndarray, baseline: np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p-value of the per-image differences of seed means; NaN when all are zero."""
    variant, baseline = _per_seed_images("variant", variant), _per_seed_images("baseline", baseline)
    differences = variant.mean(axis=0) - baseline.mean(axis=0)
    if not np.any(differences):
        return float("nan")
    return float(scipy_stats.wilcoxon(differences).pvalue)


def welch_interval(variant: np.ndarray | list[float], baseline: np.ndarray | list[float],
                   level: float = LEVEL) -> Difference:
    """Difference of seed means with the Welch t-interval (NaN interval unless both arms have 2+ seeds)."""
    variant, baseline = np.asarray(variant, dtype=np.float64), np.asarray(baseline, dtype=np.float64)
    value = float(variant.mean() - baseline.mean())
    if len(variant) < 2 or len(baseline) < 2:
        return Difference(value, float("nan"), float("nan"))
    var_v, var_b = variant.var(ddof=1) / len(variant), baseline.var(ddof=1) / len(baseline)
    se = np.sqrt(var_v + var_b)
    if se == 0:
        return Difference(value, value, value)
    df = (var_v + var_b) ** 2 / (var_v ** 2 / (len(variant) - 1) + var_b ** 2 / (len(baseline) - 1))
    half = float(scipy_stats.t.ppf(0.5 + level / 2, df)) * se
    return Difference(value, float(value - half), float(value + half))


def welch_p(variant: np.ndarray | list[float], baseline: np.ndarray | list[float]) -> float:
    """Two-sided Welch t-test p of the seed means (NaN unless both arms have 2+ seeds and some spread)."""
    variant, baseline = np.asarray(variant, dtype=np.float64), np.asarray(baseline, dtype=np.float64)
    if len(variant) < 2 or len(baseline) < 2 or (variant.var() == 0 and baseline.var() == 0):
        return float("nan")
    return float(scipy_stats.ttest_ind(variant, baseline, equal_var=False).pvalue)


def holm(p_values: list[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in the order given; NaN entries stay NaN and do not count."""
    order = sorted((p, i) for i, p in enumerate(p_values) if not np.isnan(p))
    adjusted = [float("nan")] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(order):
        running = max(running, min(1.0, (len(order) - rank) * p))
        adjusted[i] = running
    return adjusted


def seeds_needed(variant: np.ndarray | list[float], baseline: np.ndarray | list[float], alpha: float = 1 - LEVEL,
                 power: float = 0.8) -> float:
    """Seeds per arm for a two-sided two-sample test at ``alpha`` to detect the observed difference with ``power``.

    Normal approximation with the pooled seed variance s^2 of the two arms and the observed
    difference d of their means: n = 2 (z(1 - alpha/2) + z(power))^2 s^2 / d^2, rounded up.
    NaN with fewer than two seeds in an arm; inf when d is 0.
    """
    variant, baseline = np.asarray(variant, dtype=np.float64), np.asarray(baseline, dtype=np.float64)
    if len(variant) < 2 or len(baseline) < 2:
        return float("nan")
    difference = variant.mean() - baseline.mean()
    pooled = ((len(variant) - 1) * variant.var(ddof=1) + (len(baseline) - 1) * baseline.var(ddof=1)) / (
        len(variant) + len(baseline) - 2)
    if difference == 0:
        return float("inf")
    z = scipy_stats.norm.ppf(1 - alpha / 2) + scipy_stats.norm.ppf(power)
    return float(max(2, math.ceil(2 * z ** 2 * pooled / difference ** 2)))


def _draw_counts(rng: np.random.Generator, size: int, n: int) -> np.ndarray:
    """(size, n) counts of each of n items in ``size`` draws of n items with replacement."""
    draws = rng.integers(0, n, size=(size, n)) + n * np.arange(size)[:, None]
    return np.bincount(draws.ravel(), minlength=size * n).reshape(size, n).astype(np.float64)


def _per_seed_images(name: str, values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2 or 0 in values.shape:
        raise ValueError(f"{name}: expected (seeds, images) per-image values, got shape {values.shape}")
    return values
