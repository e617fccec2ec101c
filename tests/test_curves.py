"""Learning curves: where a curve flattens, where it crosses a trivial baseline or would, and data against updates,
each checked on curves built here with a known answer."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from bench.report.curves import TRAIN_LOSS, curves_markdown, learning_curves
from bench.report.tables import decimals

STEPS = [250, 500, 1000, 2000, 4000, 8000]
SEEDS = [0, 1, 2]
OFFSETS = np.array([-0.2, 0.0, 0.2])  # each seed's luck: the seeds' standard deviation at every step is 0.2


def _curves(values_by_step: dict[int, float], metric: str = "psnr_rgb8", variant_runs=("a",),
            loss: dict[int, float] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows, runs = [], []
    for variant in variant_runs:
        for seed, offset in zip(SEEDS, OFFSETS):
            run_id = f"{variant}-s{seed}"
            runs.append({"run_id": run_id, "variant": variant})
            rows += [{"run_id": run_id, "seed": seed, "step": step, "metric": metric, "value": value + offset}
                     for step, value in values_by_step.items()]
            rows += [{"run_id": run_id, "seed": seed, "step": step, "metric": TRAIN_LOSS, "value": value}
                     for step, value in (loss or {}).items()]
    return pd.DataFrame(rows), pd.DataFrame(runs)


def test_a_curve_flattens_where_every_later_doubling_gains_less_than_the_seeds_spread():
    # gains per doubling: 2.0, 1.0, 0.5, 0.15, 0.1 dB; the spread is 0.2 dB: flat from 2,000 updates on
    means = dict(zip(STEPS, [18.0, 20.0, 21.0, 21.5, 21.65, 21.75]))
    (curve,) = learning_curves(*_curves(means), {}, {"psnr_rgb8": True})
    assert curve.spreads == pytest.approx((0.2,) * 6)
    assert curve.flattens_at == 2000
    # a late jump larger than the spread means it has not flattened
    (curve,) = learning_curves(*_curves({**means, 8000: 22.5}), {}, {"psnr_rgb8": True})
    assert curve.flattens_at is None


def test_lower_is_better_metrics_flatten_and_cross_in_their_own_direction():
    l1 = dict(zip(STEPS, [20.0, 18.0, 17.0, 16.9, 16.85, 16.8]))  # falling: better
    (curve,) = learning_curves(*_curves(l1, metric="l1_rgb8"), {"grey input": {"l1_rgb8": 17.5}}, {"l1_rgb8": False})
    assert curve.flattens_at == 1000
    (crossing,) = curve.crossings
    # the seeds' 95% interval at 1,000 is 17.0 +- 4.303 * 0.2 / sqrt(3) = [16.50, 17.50): wholly below 17.5 from there
    half = 4.302652729911275 * 0.2 / math.sqrt(3)
    assert 17.0 + half < 17.5 < 18.0 - half
    assert crossing.from_step == 1000 and crossing.needed is None


def test_a_baseline_not_crossed_is_extrapolated_from_each_seeds_last_three_evaluations():
    # +0.5 dB per doubling from 2,000 on: 21.0 at 8,000 plus 0.5 per doubling reaches 22.7 at 8,000 * 2^3.4
    means = dict(zip(STEPS, [19.0, 19.5, 20.0, 20.0, 20.5, 21.0]))
    (curve,) = learning_curves(*_curves(means), {"grey input": {"psnr_rgb8": 22.7}}, {"psnr_rgb8": True})
    (crossing,) = curve.crossings
    assert crossing.from_step is None and crossing.seeds_heading_there == 3
    # each seed's last three points: a line through (log2 2000, 20.0 + o), (log2 4000, 20.5 + o), (log2 8000, 21.0 + o)
    expected = [8000 * 2 ** ((22.7 - (21.0 + offset)) / 0.5) for offset in OFFSETS]
    median, low, high = crossing.needed
    assert median == pytest.approx(np.median(expected), rel=1e-6)
    assert (low, high) == pytest.approx((min(expected), max(expected)), rel=1e-6)
    # a curve heading away never gets there
    falling = dict(zip(STEPS, [21.0, 20.8, 20.6, 20.4, 20.2, 20.0]))
    (curve,) = learning_curves(*_curves(falling), {"grey input": {"psnr_rgb8": 22.7}}, {"psnr_rgb8": True})
    assert math.isinf(curve.crossings[0].needed[0]) and curve.crossings[0].seeds_heading_there == 0
    assert "below grey input and not heading there" in "\n".join(curves_markdown([curve], decimals))


def test_the_extrapolation_starts_from_where_each_seed_is_not_from_its_fitted_line():
    # last three: 20.0, 21.0, 20.6 (+ each seed's offset) at 2,000 / 4,000 / 8,000: the least-squares slope over
    # three equally spaced points is (last - first) / 2 = 0.3 dB per doubling; from 20.6 + o at 8,000 to 21.5
    means = dict(zip(STEPS, [18.0, 19.0, 20.0, 20.0, 21.0, 20.6]))
    (curve,) = learning_curves(*_curves(means), {"grey input": {"psnr_rgb8": 21.5}}, {"psnr_rgb8": True})
    (crossing,) = curve.crossings
    expected = sorted(8000 * 2 ** ((21.5 - (20.6 + offset)) / 0.3) for offset in OFFSETS)
    assert crossing.needed == pytest.approx((expected[1], expected[0], expected[2]), rel=1e-6)
    assert expected[1] == pytest.approx(64000)
    assert (crossing.seeds_heading_there, crossing.seeds_past, crossing.last_step) == (3, 0, 8000)
    assert "would need ~64,000 updates (seeds:" in "\n".join(curves_markdown([curve], decimals))


def test_seeds_past_a_baseline_their_interval_is_not_past_call_for_seeds_not_updates():
    # at 8,000 the seeds are 22.4, 22.6, 22.8 against 22.5: two past it, but the 95% interval 22.6 +- 0.497 is not
    means = dict(zip(STEPS, [20.0, 20.5, 21.0, 21.6, 22.1, 22.6]))
    (curve,) = learning_curves(*_curves(means), {"grey input": {"psnr_rgb8": 22.5}}, {"psnr_rgb8": True})
    (crossing,) = curve.crossings
    assert crossing.from_step is None
    assert (crossing.seeds_past, crossing.seeds_heading_there) == (2, 1)
    assert crossing.needed[0] == 8000  # the median seed is past it at the last evaluation
    text = "\n".join(curves_markdown([curve], decimals))
    assert "not past grey input on the seeds' 95% interval at 8,000 (2 of 3 seeds past it, 1 of 3 seeds heading " \
           "there): more seeds, not more updates, would settle it" in text
    # one seed past it and two heading away: not heading there, with the one seed said
    away = dict(zip(STEPS, [20.0, 20.5, 21.0, 22.6, 22.5, 22.4]))
    (curve,) = learning_curves(*_curves(away), {"grey input": {"psnr_rgb8": 22.5}}, {"psnr_rgb8": True})
    assert "below grey input and not heading there (1 of 3 seeds past it)" in \
        "\n".join(curves_markdown([curve], decimals))


def test_a_flat_test_curve_over_a_falling_training_loss_is_data_limited():
    means = dict(zip(STEPS, [18.0, 20.0, 21.0, 21.1, 21.15, 21.2]))
    falling = {step: 1.0 / (i + 1) for i, step in enumerate(STEPS)}  # 0.25 at 4,000 -> 0.167 at 8,000: -33%
    (curve,) = learning_curves(*_curves(means, loss=falling), {}, {"psnr_rgb8": True})
    assert curve.train_loss_fall == pytest.approx(1 - (1 / 6) / (1 / 5))
    assert curve.data_limited
    flat_loss = {step: 0.1 for step in STEPS}
    (curve,) = learning_curves(*_curves(means, loss=flat_loss), {}, {"psnr_rgb8": True})
    assert curve.train_loss_fall == 0 and not curve.data_limited


def test_one_seed_beating_a_baseline_says_it_has_no_interval():
    rows, runs = _curves(dict(zip(STEPS, [21.0, 21.5, 22.0, 22.5, 23.0, 23.5])))
    one = rows[rows["seed"] == 1]  # offset 0: 22.0 at 1,000 is the first value above 21.8, and it stays above
    (curve,) = learning_curves(one, runs, {"grey input": {"psnr_rgb8": 21.8}}, {"psnr_rgb8": True})
    assert curve.crossings[0].from_step == 1000 and curve.flattens_at is None  # no spread: never called flat
    assert "beats grey input from 1,000 (one seed: its value, no interval)" in "\n".join(
        curves_markdown([curve], decimals))


def test_one_evaluation_is_no_curve():
    assert learning_curves(*_curves({1500: 20.0}), {}, {"psnr_rgb8": True}) == []
