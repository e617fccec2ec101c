"""Multiple-comparison correction and power across a study's arms, each checked against an independent derivation."""
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from bench.report.analysis import analyse
from bench.report.design import Design, DesignAxis
from bench.report.stats import holm, paired_bootstrap, paired_bootstrap_intervals, seeds_needed, welch_p

Z_975, Z_80 = 1.959964, 0.841621  # standard normal quantiles from printed tables


def test_holm_by_hand():
    # sorted 0.01, 0.03, 0.04 of 3: 3 x 0.01 = 0.03; 2 x 0.03 = 0.06; 1 x 0.04 = 0.04 -> raised to 0.06 (monotone)
    assert holm([0.01, 0.04, 0.03, math.nan])[:3] == pytest.approx([0.03, 0.06, 0.06])
    assert math.isnan(holm([0.01, 0.04, 0.03, math.nan])[3])
    assert holm([0.5, 0.9]) == [1.0, 1.0]  # capped at 1
    assert holm([0.02]) == [0.02]


def test_seeds_needed_by_the_textbook_formula():
    # d = 1, pooled s^2 = 1: n = 2 (z_.975 + z_.80)^2 = 15.70 -> 16 per arm (the "16 / d^2" rule)
    assert seeds_needed([1.0, 2.0, 3.0], [0.0, 1.0, 2.0]) == 16
    expected = math.ceil(2 * (scipy_stats.norm.ppf(1 - 0.01 / 2) + Z_80) ** 2 * 1.0 / 0.5 ** 2)
    assert seeds_needed([0.5, 1.5, 2.5], [0.0, 1.0, 2.0], alpha=0.01) == expected == 94
    assert seeds_needed([1.0, 1.0], [1.0, 1.0]) == math.inf
    assert math.isnan(seeds_needed([1.0], [0.0, 1.0]))


def test_seeds_needed_gives_about_the_asked_power_in_simulation():
    n = int(seeds_needed([1.0, 2.0, 3.0], [0.0, 1.0, 2.0]))  # true d = 1, sigma = 1
    rng = np.random.default_rng(0)
    trials = 4000
    a = rng.normal(1.0, 1.0, size=(trials, n))
    b = rng.normal(0.0, 1.0, size=(trials, n))
    power = float(np.mean(scipy_stats.ttest_ind(a, b, axis=1).pvalue < 0.05))
    assert 0.76 < power < 0.84


def test_welch_p_by_hand():
    a, b = np.array([20.1, 20.5, 19.8, 20.9]), np.array([19.0, 19.6, 19.2])
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    t = (a.mean() - b.mean()) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    assert welch_p(a, b) == pytest.approx(2 * scipy_stats.t.sf(abs(t), df), rel=1e-9)
    assert math.isnan(welch_p([1.0], [1.0, 2.0])) and math.isnan(welch_p([1.0, 1.0], [1.0, 1.0]))


def test_intervals_at_several_levels_come_from_the_same_resamples():
    rng = np.random.default_rng(1)
    variant, baseline = rng.normal(1, 1, (3, 40)), rng.normal(0, 1, (3, 40))
    at95, at99 = paired_bootstrap_intervals(variant, baseline, (0.95, 0.99), 2000, seed=3)
    assert at95 == paired_bootstrap(variant, baseline, 2000, seed=3, level=0.95)
    assert at99 == paired_bootstrap(variant, baseline, 2000, seed=3, level=0.99)
    assert at99.ci_low < at95.ci_low < at95.ci_high < at99.ci_high


def _three_arms() -> pd.DataFrame:
    """A baseline and three arms (+0.05, +1, +3 dB) over 3 seeds, set metric (no per-image values)."""
    rows = []
    shifts = {"base": 0.0, "small": 0.05, "medium": 1.0, "large": 3.0}
    for arm, shift in shifts.items():
        for seed, noise in enumerate((-0.4, 0.1, 0.3)):
            rows.append({"ablation": "arms", "run_id": f"{arm}-s{seed}", "run_dir": f"{arm}-s{seed}", "seed": seed,
                         "state": "done", "last_step": 1, "total_steps": 1, "split": "test", "dataset": "samples",
                         "metric": "psnr_rgb8", "value": 20.0 + shift + noise, "unavailable": None, "n_images": 4,
                         "resolution": "16x16", "image_ids": None, "per_image": None, "axis.arm": arm})
    return pd.DataFrame(rows)


ARMS = Design("arms", "", (DesignAxis("arm", "axis.arm", "scientific", ("base", "small", "medium", "large")),),
              {"arm": "base"})


def test_the_report_corrects_across_the_arms_compared_with_one_baseline():
    comparisons = analyse(_three_arms(), ARMS, n_resamples=200).comparisons.set_index("variant")
    assert set(comparisons["arms"]) == {3}
    base = np.array([-0.4, 0.1, 0.3]) + 20.0
    p = {arm: scipy_stats.ttest_ind(base + shift, base, equal_var=False).pvalue
         for arm, shift in (("arm=small", 0.05), ("arm=medium", 1.0), ("arm=large", 3.0))}
    assert comparisons["p_value"].to_dict() == pytest.approx(p)
    assert comparisons["p_holm"].to_dict() == pytest.approx(dict(zip(p, holm(list(p.values())))))
    # Bonferroni: the Welch interval at 1 - 0.05 / 3
    s2 = base.var(ddof=1)
    half = scipy_stats.t.ppf(1 - 0.05 / 6, 4) * math.sqrt(2 * s2 / 3)  # equal variances: Welch df = 4
    large = comparisons.loc["arm=large"]
    assert (large["ci_low_bonferroni"], large["ci_high_bonferroni"]) == pytest.approx((3.0 - half, 3.0 + half))
    assert large["ci_low_bonferroni"] < large["ci_low"]
    z = scipy_stats.norm.ppf(1 - 0.05 / 6) + Z_80
    assert comparisons.loc["arm=small", "seeds_needed"] == math.ceil(2 * z ** 2 * s2 / 0.05 ** 2)
    assert comparisons.loc["arm=large", "seeds_needed"] == max(2, math.ceil(2 * z ** 2 * s2 / 9.0))


def test_the_report_table_shows_the_corrected_columns():
    from bench.report.tables import markdown
    text = markdown(analyse(_three_arms(), ARMS, n_resamples=200), [], [])
    assert "| corrected interval | excludes 0 | p | Holm p | seeds needed |" in text
    assert "Bonferroni level 1 - 0.05/k" in text and "Holm-Bonferroni" in text
