"""Learning curves: each variant's metric at every evaluation budget, where it flattens, where it crosses the trivial
baselines, and whether the data or the updates limit it.

Pure functions of the analysis's tables (``Analysis.curves``: one row per finished run x evaluation step x metric;
``Analysis.baselines``).  Seeds are the unit, as everywhere in the reports:

* **flattens at** the earliest evaluation from which every later one gains less, in the metric's direction, than
  the spread of the seeds (their standard deviation) at its own budget: more updates than that only move the mean
  within the noise of one more seed;
* **beats a baseline from** the earliest evaluation from which the 95% t-interval of the seeds' mean lies wholly
  on the better side of the baseline, at every later evaluation too; where it never does, the budget each seed
  would need is extrapolated from its last evaluation with the slope of its last three (a line in log2 of the
  updates): its last budget if it is past the baseline already, never if it heads away.  The arm's budget is the
  median over seeds with their range; a median past the last evaluation is budget to find, a median at it means
  most seeds are past the baseline but their interval is not (more seeds, not more updates, would settle it);
* **data-limited** where the curve has flattened while the training loss still fell by more than
  :data:`STILL_FALLING` over the last doubling of updates: the model fits its training photos better without
  generalising better, so more photos (or more distinct views of them), not more updates, would move it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench.report.stats import seed_summary

TRAIN_LOSS = "train/loss_g_rec"  # the generator's reconstruction loss on its training batches (stats.jsonl)
STILL_FALLING = 0.05  # a relative fall of the training loss over the last doubling that counts as still falling
EXTRAPOLATION_POINTS = 3
MAX_DOUBLINGS = 64  # a crossing further than this many doublings away is out of reach (and past float range soon)
CURVES_HEADING = "## Learning curves"


@dataclass(frozen=True)
class BaselineCrossing:
    baseline: str
    value: float
    from_step: int | None  # the first evaluation from which the variant beats it for good (None: not by the last)
    needed: tuple[float, float, float] | None  # each seed's budget: median and range (inf: never; None: no trend)
    seeds_heading_there: int  # seeds not past it yet whose curve heads there
    n_seeds: int
    seeds_past: int = 0  # seeds past it at their last evaluation, while the seeds' interval is not
    last_step: int = 0  # the last evaluation the budgets extrapolate from


@dataclass(frozen=True)
class Curve:
    """One variant's learning curve on one metric."""

    variant: str
    metric: str
    steps: tuple[int, ...]
    means: tuple[float, ...]
    spreads: tuple[float, ...]  # the seeds' standard deviation at each step
    flattens_at: int | None  # None: still gaining more than the spread at the last doubling
    crossings: tuple[BaselineCrossing, ...]
    train_loss_fall: float | None  # the training loss's relative fall over the last doubling of updates

    @property
    def data_limited(self) -> bool:
        return self.flattens_at is not None and self.train_loss_fall is not None and \
            self.train_loss_fall > STILL_FALLING


def learning_curves(curves: pd.DataFrame, runs: pd.DataFrame, baselines: dict[str, dict[str, float]],
                    higher_is_better: dict[str, bool | None]) -> list[Curve]:
    """Every variant's curve on every metric with at least two evaluations (``runs``: run_id -> variant)."""
    labelled = curves.merge(runs[["run_id", "variant"]], on="run_id")
    results = []
    for (variant, metric), rows in labelled.groupby(["variant", "metric"], sort=True):
        direction = higher_is_better.get(metric)
        if metric == TRAIN_LOSS or direction is None:
            continue
        per_step = {int(step): values.sort_values("seed")["value"].to_numpy()
                    for step, values in rows.groupby("step", sort=True)}
        if len(per_step) < 2:
            continue
        steps = sorted(per_step)
        sign = 1.0 if direction else -1.0
        means = [float(per_step[s].mean()) for s in steps]
        spreads = [float(per_step[s].std(ddof=1)) if len(per_step[s]) > 1 else math.nan for s in steps]
        crossings = tuple(_crossing(name, values[metric], per_step, steps, sign, rows)
                          for name, values in sorted(baselines.items()) if metric in values)
        loss = labelled[(labelled["variant"] == variant) & (labelled["metric"] == TRAIN_LOSS)]
        results.append(Curve(variant, metric, tuple(steps), tuple(means), tuple(spreads),
                             _flattens_at(steps, means, spreads, sign), crossings, _last_fall(loss)))
    return results


def _flattens_at(steps: list[int], means: list[float], spreads: list[float], sign: float) -> int | None:
    """The earliest step from which every later evaluation gains less than the seeds' spread at its budget."""
    flat_from = None
    for i in range(len(steps) - 1, 0, -1):
        gain = sign * (means[i] - means[i - 1])
        if math.isnan(spreads[i]) or gain >= spreads[i]:
            break
        flat_from = steps[i - 1]
    return flat_from


def _crossing(name: str, value: float, per_step: dict[int, np.ndarray], steps: list[int], sign: float,
              rows: pd.DataFrame) -> BaselineCrossing:
    beats = []
    for step in steps:
        summary = seed_summary(per_step[step])
        low, high = (summary.ci_low, summary.ci_high) if summary.n > 1 else (summary.mean, summary.mean)
        beats.append(low > value if sign > 0 else high < value)
    from_step = None
    for step, beat in zip(reversed(steps), reversed(beats)):
        if not beat:
            break
        from_step = step
    n_seeds = int(rows["seed"].nunique())
    if from_step is not None:
        return BaselineCrossing(name, value, from_step, None, n_seeds, n_seeds)
    needed, heading, past = [], 0, 0
    for _, seed_rows in rows.groupby("seed"):
        last = seed_rows.sort_values("step").tail(EXTRAPOLATION_POINTS)
        if len(last) < 2:
            continue
        last_step, last_value = float(last["step"].iloc[-1]), float(last["value"].iloc[-1])
        if sign * (last_value - value) > 0:
            past += 1
            needed.append(last_step)
            continue
        slope = np.polyfit(np.log2(last["step"].to_numpy(dtype=float)), last["value"].to_numpy(), 1)[0]
        if sign * slope > 0:  # heading towards the baseline: from where the seed is, at its recent pace
            heading += 1
            doublings = (value - last_value) / slope
            needed.append(last_step * 2.0 ** doublings if doublings < MAX_DOUBLINGS else math.inf)
        else:
            needed.append(math.inf)
    if not needed:
        return BaselineCrossing(name, value, None, None, 0, n_seeds)
    return BaselineCrossing(name, value, None, (float(np.median(needed)), min(needed), max(needed)), heading,
                            n_seeds, past, steps[-1])


def _last_fall(loss: pd.DataFrame) -> float | None:
    """The relative fall of the mean training loss from half the last step to the last step (None: not logged)."""
    if loss.empty:
        return None
    means = loss.groupby("step")["value"].mean().sort_index()
    last = means.index[-1]
    earlier = means[means.index <= last / 2]
    if earlier.empty or earlier.iloc[-1] <= 0:
        return None
    return float((earlier.iloc[-1] - means.iloc[-1]) / earlier.iloc[-1])


def curves_markdown(results: list[Curve], decimals) -> list[str]:
    """The learning-curve section of a report: per variant and metric, the mean at each budget and the findings."""
    if not results:
        return []
    steps = sorted({s for curve in results for s in curve.steps})
    lines = [CURVES_HEADING, "",
             "Mean over seeds at each evaluation (updates); the curve **flattens** where every later doubling gains "
             "less than the seeds' spread; it **beats** a trivial baseline from the evaluation on which its seeds' "
             "95% interval stays on the better side.", "",
             "| variant | metric | " + " | ".join(f"{s:,}" for s in steps) + " | flattens at | trivial baselines |",
             "|---|---|" + "---:|" * len(steps) + "---|---|"]
    for curve in results:
        places = decimals(list(curve.means))
        values = dict(zip(curve.steps, curve.means))
        cells = [f"{values[s]:.{places}f}" if s in values else "–" for s in steps]
        flat = f"{curve.flattens_at:,}" if curve.flattens_at is not None else "not yet"
        if curve.data_limited:
            flat += f" (training loss still falling {curve.train_loss_fall:.0%}: data-limited)"
        lines.append(f"| {curve.variant} | `{curve.metric}` | " + " | ".join(cells)
                     + f" | {flat} | {'; '.join(_crossing_text(c) for c in curve.crossings) or '–'} |")
    return lines + [""]


def _crossing_text(crossing: BaselineCrossing) -> str:
    if crossing.from_step is not None:
        alone = " (one seed: its value, no interval)" if crossing.n_seeds == 1 else ""
        return f"beats {crossing.baseline} from {crossing.from_step:,}{alone}"
    counts = ", ".join(f"{count} of {crossing.n_seeds} seeds {what}" for count, what in
                       ((crossing.seeds_past, "past it"), (crossing.seeds_heading_there, "heading there")) if count)
    if crossing.needed is None or math.isinf(crossing.needed[0]):
        return f"below {crossing.baseline} and not heading there" + (f" ({counts})" if counts else "")
    median, low, high = crossing.needed
    if median <= crossing.last_step:
        return (f"not past {crossing.baseline} on the seeds' 95% interval at {crossing.last_step:,} ({counts}): more "
                f"seeds, not more updates, would settle it")
    return f"below {crossing.baseline}; would need ~{_budget(median)} updates (seeds: {_budget(low)} to " \
           f"{_budget(high)}; {counts})"


def _budget(steps: float) -> str:
    if math.isinf(steps):
        return "never"
    if steps > 1e12:
        return "more than 10^12"
    return f"{steps:,.0f}" if steps < 1e6 else f"{steps:.1e}"
