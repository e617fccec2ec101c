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


# ---------------------------------------------------------------------------------------
# Seeds as the unit of replication: the statistics behind a reproduction's verdicts

@dataclass(frozen=True)
class SeedDifference:
    """A - B over seeds: the mean difference, its Student-t interval at ``level``, the two-sided p of no
    difference, the degrees of freedom, the standard error, and the standard deviation of the per-seed
    differences (paired) or the pooled one of the arms (unpaired); NaN interval and p with fewer than two seeds
    a side."""

    value: float
    ci_low: float
    ci_high: float
    p_value: float
    df: float
    se: float
    sd: float
    n: int
    paired: bool
    level: float = LEVEL

    def one_sided_p(self, beyond: float, upper: bool) -> float:
        """p of the one-sided t-test that the true difference is above ``beyond`` (``upper``) or below it."""
        if not math.isfinite(self.df) or self.df <= 0:
            return float("nan")
        if self.se == 0:
            return 0.0 if (self.value > beyond if upper else self.value < beyond) else 1.0
        t = (self.value - beyond) / self.se
        return float(scipy_stats.t.sf(t, self.df) if upper else scipy_stats.t.cdf(t, self.df))

    def at(self, level: float) -> tuple[float, float]:
        """The interval at another ``level``."""
        if not math.isfinite(self.df) or self.df <= 0:
            return float("nan"), float("nan")
        half = float(scipy_stats.t.ppf(0.5 + level / 2, self.df)) * self.se
        return self.value - half, self.value + half


def seed_difference(a: dict[int, float], b: dict[int, float], level: float = LEVEL) -> SeedDifference:
    """A - B with seeds as the unit: the paired t-test on the per-seed differences when both arms ran the same
    seeds (a seed fixes the data order and, where the arms' networks agree, the initial weights), else Welch's
    t-test on the two sets of per-seed values."""
    nan = float("nan")
    if set(a) == set(b) and len(a) >= 2:
        differences = np.array([a[seed] - b[seed] for seed in sorted(a)], dtype=np.float64)
        n, value, sd = len(differences), float(differences.mean()), float(differences.std(ddof=1))
        df, se = float(n - 1), sd / math.sqrt(n)
        paired = True
    else:
        values_a, values_b = (np.array(list(arm.values()), dtype=np.float64) for arm in (a, b))
        value, n, paired = float(values_a.mean() - values_b.mean()), min(len(values_a), len(values_b)), False
        if len(values_a) < 2 or len(values_b) < 2:
            return SeedDifference(value, nan, nan, nan, nan, nan, nan, n, paired, level)
        var_a, var_b = values_a.var(ddof=1) / len(values_a), values_b.var(ddof=1) / len(values_b)
        se = float(np.sqrt(var_a + var_b))
        df = float((var_a + var_b) ** 2 / (var_a ** 2 / (len(values_a) - 1) + var_b ** 2 / (len(values_b) - 1))
                   if se > 0 else len(values_a) + len(values_b) - 2)
        sd = float(np.sqrt(((len(values_a) - 1) * values_a.var(ddof=1) + (len(values_b) - 1) * values_b.var(ddof=1))
                           / (len(values_a) + len(values_b) - 2)))
    if se == 0:
        return SeedDifference(value, value, value, 0.0 if value else 1.0, df, se, sd, n, paired, level)
    p = float(2 * scipy_stats.t.sf(abs(value) / se, df))
    half = float(scipy_stats.t.ppf(0.5 + level / 2, df)) * se
    return SeedDifference(value, value - half, value + half, p, df, se, sd, n, paired, level)


def seeds_for_difference(sd: float, effect: float, paired: bool = True, alpha: float = 1 - LEVEL,
                         power: float = 0.8, most: int = 10_000) -> float:
    """Seeds (per arm) a two-sided t-test at ``alpha`` needs to detect a true difference ``effect`` with ``power``,
    given the spread ``sd`` of the per-seed differences (paired) or of each arm's seeds (unpaired).

    Exact power of the t-test from the noncentral t distribution; the smallest n >= 2 that reaches
    ``power``, inf when ``effect`` is 0 or more than ``most`` would be needed, NaN without a spread.
    """
    if not math.isfinite(sd) or not math.isfinite(effect):
        return float("nan")
    if effect == 0:
        return float("inf")
    if sd == 0:
        return 2.0
    for start, stop in ((2, min(most, 256)), (257, most)):  # power grows with n: the first block usually has it
        if start > stop:
            break
        n = np.arange(start, stop + 1, dtype=np.float64)
        df = n - 1 if paired else 2 * n - 2
        noncentrality = abs(effect) / (sd * np.sqrt((1 if paired else 2) / n))
        critical = scipy_stats.t.ppf(1 - alpha / 2, df)
        achieved = scipy_stats.nct.sf(critical, df, noncentrality) + scipy_stats.nct.cdf(-critical, df, noncentrality)
        enough = np.flatnonzero(achieved >= power)
        if len(enough):
            return float(n[enough[0]])
    return float("inf")


def seeds_for_equivalence(sd: float, margin: float, true_difference: float, paired: bool = True,
                          alpha: float = 1 - LEVEL, power: float = 0.8, most: int = 10_000) -> float:
    """Seeds a two one-sided tests (TOST) equivalence test at ``alpha`` against ``margin`` needs, with ``power``,
    when the true difference is ``true_difference`` (normal approximation of the per-seed spread ``sd``); inf when
    the difference is not inside the margin."""
    if not math.isfinite(sd) or not math.isfinite(true_difference):
        return float("nan")
    gap = margin - abs(true_difference)
    if gap <= 0:
        return float("inf")
    z_beta = scipy_stats.norm.ppf(1 - (1 - power) / 2) if true_difference == 0 else scipy_stats.norm.ppf(power)
    scale = 1 if paired else 2
    n = math.ceil(scale * (scipy_stats.norm.ppf(1 - alpha) + z_beta) ** 2 * sd ** 2 / gap ** 2)
    return float(min(max(n, 2), most)) if n <= most else float("inf")
