"""Our runs beside a study's published rows, and a verdict per claim: supported, contradicted, inconclusive, or not
testable here (with the class of the reason: ``weights``, ``data``, ``protocol``, ``runs``).

Seeds are the unit of replication.  Each arm's value per seed is its metric on the test images
(the mean over images for per-image metrics, the set value for set metrics); two arms are
compared by the Student-t interval of their per-seed differences (paired by seed when both
ran the same seeds, Welch's otherwise: :func:`bench.report.stats.seed_difference`).  The
paired bootstrap over the same test images and the seeds is shown beside it, never used for
the verdict: with 3-5 seeds it is too narrow.

* ``better`` (A beats B): **supported** when the 95% interval of A - B lies on A's side of 0
  (in the metric's own direction), **contradicted** when it lies on the other side, else
  **inconclusive**, with the seeds a paired test would need for 80% power at the observed
  difference and at the claim's smallest effect of interest.
* ``similar`` (A and B differ by less than the claim's margin m): **supported** when the 90%
  interval lies inside (-m, m) (two one-sided tests at 5%), **contradicted** when the 95%
  interval lies wholly beyond m or -m (the rows differ by more than the margin), else inconclusive.
* ``best`` (R beats every other row): supported when R beats each of them as above,
  contradicted when any of them beats R, else inconclusive.
* ``value`` (R scores the published number): testable only where the published protocol
  (dataset, resolution, test images) is ours; supported when the number lies in R's 95%
  t-interval over seeds, contradicted when it does not.

The trivial baselines gate every comparison: a ``better``, ``similar`` or ``best`` claim whose
rows do not all beat the best trivial baseline on the claim's metric (each row's 95% interval
over seeds wholly on the better side of it) is **inconclusive: below the trivial baseline at
this scale**, whatever its interval says (the interval's own verdict is kept as ``raw``).  A
claim judged on an arm's own training objective or on arms trained for different numbers of
updates is marked ``by construction`` / ``unequal budget`` and kept out of the headline.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

from bench.report.analysis import BATCH_COLUMN, REPORT_SPLIT, WIDTH_COLUMN, Analysis, better, compare_arms
from bench.report.published import comparability
from bench.report.stats import (
    LEVEL,
    SeedDifference,
    SeedSummary,
    seed_difference,
    seed_summary,
    seeds_for_difference,
    seeds_for_equivalence,
)
from bench.reproduce.study import Claim, Rank, Study

SUPPORTED, CONTRADICTED, INCONCLUSIVE, NOT_TESTABLE = "supported", "contradicted", "inconclusive", "not testable"
VERDICTS = (SUPPORTED, CONTRADICTED, INCONCLUSIVE, NOT_TESTABLE)
BELOW_BASELINE = "below the trivial baseline at this scale"
EQUIVALENCE_LEVEL = 0.90  # the two one-sided tests at 5% each: the 90% interval inside the margin
RANK_RESAMPLES = 2_000

# The smallest difference of interest per metric, on the metric's own scale, where a claim declares none: what the
# seeds needed for 80% power are computed against.  Chosen from the spread of published numbers, not from our runs:
# PSNR 0.5 dB and SSIM 0.01 are below the gaps between methods in colourisation tables (e.g. DDColor's Table 1:
# 0.3-3 dB); L1 on 0..255, 0.5 grey levels; histogram intersection 0.02 (pix2pix Fig. 7's rows differ by
# 0.01-0.15); colourfulness and its gap 2 (DDColor's Table 1: CF 21-44 between methods); LPIPS 0.01; FID 2 and KID
# 0.002 (clean-fid: a resizer alone moves FID by several points); CIEDE2000 0.5 (about half a just-noticeable
# difference); mean squared ab error 10 (Lab units squared: a few percent of the grey input's ~250 here).
SMALLEST_EFFECTS = {"psnr_rgb8": 0.5, "ssim_rgb8": 0.01, "l1_rgb8": 0.5, "mse_ab_rgb8": 10.0, "cf": 2.0,
                    "delta_cf": 2.0, "hist_isect_lab": 0.02, "lpips_alex": 0.01, "fid_inception_pt": 2.0,
                    "kid_inception_pt": 0.002, "de2000_rgb8": 0.5}


@dataclass(frozen=True)
class RowResult:
    method: str
    published: tuple[float | None, ...]  # one per column of the published table (empty without one)
    ours: dict[str, SeedSummary]  # metric -> summary over seeds (metrics without values absent)
    runs_done: int
    runs_planned: int
    updates: tuple[int, ...] = ()  # the numbers of updates its runs train (one, unless the row mixes budgets)
    images_seen: tuple[int, ...] = ()  # updates x batch size of its finished runs
    widths: tuple[int, ...] = ()  # its generators' widths (base channels)


@dataclass(frozen=True)
class Comparison:
    """The numbers behind a two-row verdict, on the metric's own scale (A - B)."""

    rows: tuple[str, str]
    seeds: SeedDifference
    bootstrap: dict  # the paired bootstrap over images x seeds, shown beside: difference, ci_low, ci_high, method
    seeds_needed_observed: float = math.nan  # for 80% power, computed for inconclusive verdicts only
    seeds_needed_smallest: float = math.nan


@dataclass(frozen=True)
class Verdict:
    claim: Claim
    verdict: str  # after the trivial-baseline gate
    raw: str  # what the interval alone says
    detail: str
    reason_class: str | None = None  # not testable: weights, data, protocol or runs
    gate: str | None = None  # why a comparison is inconclusive whatever its interval says
    excluded: str | None = None  # "by construction: ..." / "unequal budget: ...": shown, not counted
    p_value: float = math.nan  # of the verdict's test (NaN: no test), for the correction across claims
    comparisons: tuple[Comparison, ...] = ()
    runs: dict[str, tuple[str, ...]] = field(default_factory=dict)  # row -> the run ids it was judged on
    # the verdict at each evaluation of the runs' learning curves: (updates, fraction of the last, verdict)
    trajectory: tuple[tuple[int, float, str], ...] = ()

    def stable_from(self) -> float | None:
        """The earliest fraction of the budget from which every later evaluation gives the final verdict."""
        if not self.trajectory:
            return None
        earliest = self.trajectory[-1][1]
        for _, fraction, verdict in reversed(self.trajectory):
            if verdict != self.verdict:
                break
            earliest = fraction
        return earliest

    def stable_over_last_half(self) -> bool | None:
        """Whether every evaluation from half the budget on gives the final verdict (None: no learning curve)."""
        if not self.trajectory:
            return None
        return all(verdict == self.verdict for _, fraction, verdict in self.trajectory if fraction >= 0.5)


@dataclass(frozen=True)
class RankAgreement:
    rank: Rank
    n_rows: int
    tau: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class Baselines:
    """The trivial baselines on the reported test images: name -> metric -> value; or why there are none."""

    values: dict[str, dict[str, float]]
    note: str

    def best(self, metric: str) -> tuple[str, float] | None:
        """The baseline with the best value of ``metric`` (None: no baseline recorded it, or no known direction)."""
        candidates = [(name, values[metric]) for name, values in self.values.items() if metric in values]
        if not candidates or better(metric) is None:
            return None
        return (max if better(metric) else min)(candidates, key=lambda item: item[1])


@dataclass(frozen=True)
class Reproduction:
    study: Study
    rows: tuple[RowResult, ...]
    verdicts: tuple[Verdict, ...]
    rank: RankAgreement | None
    dataset: str | None
    resolution: str | None
    n_images: int | None
    unavailable: dict[str, str]  # metric -> why it has no value
    baselines: Baselines | None = None  # None: no finished run yet


def reproduce(study: Study, analysis: Analysis, n_resamples: int, seed: int) -> Reproduction:
    """Compare ``study``'s rows and claims with the finished runs that ``analysis`` summarises."""
    measured = _primary(analysis.measured)  # each row's runs by their settings, a nuisance setting included
    done = set(analysis.runs.loc[analysis.runs["state"] == "done", "run_id"])
    arms = {row.method: measured[measured["run_id"].isin(row.run_ids)] for row in study.rows}
    first = measured.iloc[0] if len(measured) else None
    dataset = None if first is None else first["dataset"]
    resolution = None if first is None else first["resolution"]
    n_images = None if first is None or pd.isna(first["n_images"]) else int(first["n_images"])
    runs = analysis.runs
    data_problems = dict(zip(runs["run_id"], runs["data_problem"]))
    absent = {row.method: reason for row in study.rows for run_id in row.run_ids
              if isinstance(reason := data_problems.get(run_id), str)}
    finished = {row.method: runs[runs["run_id"].isin(row.run_ids) & (runs["state"] == "done")] for row in study.rows}
    budgets = {method: list(_distinct(rows["total_steps"])) for method, rows in finished.items()}
    rows = tuple(_row_result(study, row, arms[row.method], done, budgets[row.method], _budget_of(finished[row.method]))
                 for row in study.rows)
    baselines = _baselines(analysis, dataset)
    judge = ClaimJudge(study, arms, dataset, resolution, n_images, n_resamples, seed, dict(analysis.unavailable),
                       absent, budgets, baselines)
    verdicts = tuple(_with_trajectory(judge, judge.verdict(claim), study, analysis.curves) for claim in study.claims)
    rank = _rank_agreement(study, arms, seed) if study.rank else None
    return Reproduction(study, rows, verdicts, rank, dataset, resolution, n_images, dict(analysis.unavailable),
                        baselines)


def _with_trajectory(judge: "ClaimJudge", verdict: Verdict, study: Study, curves: pd.DataFrame) -> Verdict:
    """``verdict`` with the verdict of its claim at every evaluation its rows' runs share (their learning curves)."""
    claim = verdict.claim
    if verdict.verdict == NOT_TESTABLE or claim.kind not in ("better", "similar", "best") or curves.empty:
        return verdict
    rows = {row.method: set(row.run_ids) for row in study.rows if row.method in verdict.runs}
    points = curves[(curves["metric"] == claim.metric) & curves["run_id"].isin(set().union(*rows.values()))]
    steps = sorted(set.intersection(*(set(runs["step"]) for _, runs in points.groupby("run_id"))) if len(points)
                   else ())
    if len(steps) < 2:
        return verdict
    trajectory = []
    for step in steps:
        at = points[points["step"] == step]
        arms = {row: at[at["run_id"].isin(run_ids)] for row, run_ids in rows.items()}
        judged = dataclasses.replace(judge, arms={**judge.arms, **arms}, bootstrap=False).verdict(claim)
        trajectory.append((int(step), step / steps[-1], judged.verdict))
    return dataclasses.replace(verdict, trajectory=tuple(trajectory))


def _baselines(analysis: Analysis, dataset: str | None) -> Baselines | None:
    """The trivial baselines on the reported test images of ``dataset``."""
    if dataset is None:
        return None
    frame = analysis.baselines
    rows = frame[(frame["dataset"] == dataset) & (frame["split"] == REPORT_SPLIT)]
    values: dict[str, dict[str, float]] = {}
    for _, row in rows.iterrows():
        values.setdefault(row["baseline"], {})[row["metric"]] = float(row["value"])
    if not values:
        return Baselines({}, "no trivial baseline was scored on these test images")
    images = sorted({int(n) for n in rows["n_images"] if not pd.isna(n)})
    return Baselines(values, f"the same {images[0]} test images" if len(images) == 1 else "the same test images")


def _primary(measured: pd.DataFrame) -> pd.DataFrame:
    """The rows of the runs' own test split (the dataset most runs were scored on, not a re-scoring elsewhere)."""
    if measured.empty:
        return measured
    if "source" in measured.columns and (measured["source"] == "train").any():
        measured = measured[measured["source"] == "train"]
    dataset = measured["dataset"].value_counts().sort_index().idxmax()
    return measured[measured["dataset"] == dataset]


def _distinct(values: pd.Series) -> tuple[int, ...]:
    return tuple(sorted({int(v) for v in values if not pd.isna(v)}))


def _budget_of(runs: pd.DataFrame) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The images seen (updates x batch) and the generator widths of ``runs``, each sorted and distinct."""
    batch, width = runs.get(BATCH_COLUMN), runs.get(WIDTH_COLUMN)  # absent from aggregates made before them
    return (_distinct(runs["total_steps"] * batch.astype(float)) if batch is not None else (),
            _distinct(width) if width is not None else ())


def _row_result(study: Study, row, arm: pd.DataFrame, done: set[str], updates: list[int],
                budget: tuple[tuple[int, ...], tuple[int, ...]]) -> RowResult:
    published = ()
    if study.published is not None:
        match = [r for r in study.published.rows if r["method"] == row.method]
        published = tuple(match[0]["values"]) if match else tuple(None for _ in study.published.metrics)
    ours = {}
    for metric in study.metrics:
        values = arm.loc[arm["metric"] == metric].sort_values("seed")["value"].to_numpy()
        if len(values):
            ours[metric] = seed_summary(values)
    return RowResult(row.method, published, ours, len(done & set(row.run_ids)), len(row.run_ids), tuple(updates),
                     *budget)


@dataclass(frozen=True)
class ClaimJudge:
    """Judges a study's claims against its arms: every verdict is computed here (see the module docstring).

    ``arms`` holds each row's measured records (one per run x metric), ``unavailable`` the metrics without values
    and why, ``absent_data`` the rows whose data is not here and why, ``budgets`` each row's numbers of updates.
    """

    study: Study
    arms: dict[str, pd.DataFrame]
    dataset: str | None
    resolution: str | None
    n_images: int | None
    n_resamples: int
    seed: int
    unavailable: dict[str, str]
    absent_data: dict[str, str]
    budgets: dict[str, list[int]]
    baselines: Baselines | None
    bootstrap: bool = True  # the image bootstrap beside each interval (only the final evaluation has per-image values)

    def verdict(self, claim: Claim) -> Verdict:
        if claim.kind == "not_testable":
            return _not_testable(claim, claim.reason_class, claim.reason)
        if claim.metric in self.unavailable:
            why = self.unavailable[claim.metric]
            kind = "weights" if "weights" in why or ".pth" in why else "protocol"
            return _not_testable(claim, kind, f"{claim.metric} has no value: {why}")
        absent = [row for row in self.study.rows if row.method in claim.rows and row.absent]
        if absent:
            return _not_testable(claim, "protocol", "; ".join(f"{row.method} has no analogue at this scale: "
                                                            f"{row.absent}" for row in absent))
        missing = [method for method in claim.rows if self.per_seed(method, claim.metric) == {}]
        if missing:
            reasons = sorted({self.absent_data[method] for method in missing if method in self.absent_data})
            why = f"no finished run of {', '.join(missing)} recorded {claim.metric}"
            if reasons:
                why += f"; not run, because the data is not on this machine: {'; '.join(reasons)}"
                kind = "weights" if any("weights" in r or "pretrained" in r for r in reasons) else "data"
            else:
                kind = "runs"
            return _not_testable(claim, kind, why)
        judged = {"better": self._better, "similar": self._similar, "best": self._best, "value": self._value}
        return judged[claim.kind](claim)

    def per_seed(self, method: str, metric: str) -> dict[int, float]:
        """The row's value of ``metric`` per seed."""
        arm = self.arms[method]
        rows = arm[(arm["metric"] == metric) & arm["value"].notna()]
        return {int(seed): float(value) for seed, value in zip(rows["seed"], rows["value"])}

    def compare(self, a: str, b: str, metric: str) -> Comparison:
        """A - B on ``metric``'s own scale over seeds, and the image bootstrap beside it."""
        seeds = seed_difference(self.per_seed(a, metric), self.per_seed(b, metric))
        if not self.bootstrap:
            return Comparison((a, b), seeds, {"difference": seeds.value, "ci_low": math.nan, "ci_high": math.nan,
                                              "method": "not computed"})
        arm_a, arm_b = (self.arms[m][(self.arms[m]["metric"] == metric) & self.arms[m]["value"].notna()]
                        for m in (a, b))
        bootstrap = compare_arms(arm_a, arm_b, self.n_resamples, self.seed)
        return Comparison((a, b), seeds, {key: bootstrap[key] for key in ("difference", "ci_low", "ci_high", "method")})

    def effect(self, claim: Claim) -> float:
        return claim.smallest_effect if claim.smallest_effect is not None else SMALLEST_EFFECTS.get(claim.metric,
                                                                                                    math.nan)

    def _better(self, claim: Claim) -> Verdict:
        a, b = claim.rows
        comparison = self.compare(a, b, claim.metric)
        seeds, sign = comparison.seeds, _sign(claim.metric)
        if math.isnan(seeds.ci_low):
            return _not_testable(claim, "runs", f"{claim.metric} {a} - {b} = {_signed(seeds.value)} has no interval "
                                 "(fewer than 2 seeds a row)")
        low, high = sorted((sign * seeds.ci_low, sign * seeds.ci_high))
        raw = SUPPORTED if low > 0 else CONTRADICTED if high < 0 else INCONCLUSIVE
        detail = f"{claim.metric} {a} - {b} = {_interval(seeds)}{_direction(claim.metric)}"
        return self._finish(claim, raw, detail, seeds.p_value, (comparison,))

    def _similar(self, claim: Claim) -> Verdict:
        a, b = claim.rows
        margin = claim.margin
        comparison = self.compare(a, b, claim.metric)
        seeds = comparison.seeds
        if math.isnan(seeds.ci_low):
            return _not_testable(claim, "runs", f"{claim.metric} {a} - {b} has no interval (fewer than 2 seeds a row)")
        low90, high90 = seeds.at(EQUIVALENCE_LEVEL)
        equivalence_p = max(seeds.one_sided_p(-margin, upper=True), seeds.one_sided_p(margin, upper=False))
        beyond_p = seeds.one_sided_p(margin, upper=True) if seeds.value > 0 else seeds.one_sided_p(-margin, upper=False)
        # p of the test behind each outcome, at the 5% level: the two one-sided tests (the 90% interval inside the
        # margin) and the two-sided test of a difference beyond the margin (the 95% interval outside it)
        if -margin < low90 and high90 < margin:
            raw, p = SUPPORTED, equivalence_p
        elif seeds.ci_low > margin or seeds.ci_high < -margin:
            raw, p = CONTRADICTED, 2 * beyond_p
        else:
            raw, p = INCONCLUSIVE, min(equivalence_p, 2 * beyond_p)
        detail = (f"{claim.metric} {a} - {b} = {_interval(seeds)}, 90% [{_signed(low90)}, {_signed(high90)}] "
                  f"against the margin ±{margin:g}")
        return self._finish(claim, raw, detail, min(p, 1.0), (comparison,))

    def _best(self, claim: Claim) -> Verdict:
        (row,) = claim.rows
        others = [r.method for r in self.study.rows if r.method != row and self.per_seed(r.method, claim.metric)]
        if not others:
            return _not_testable(claim, "runs", f"no other row has finished runs with {claim.metric}")
        sign = _sign(claim.metric)
        comparisons = tuple(self.compare(row, other, claim.metric) for other in others)
        if any(math.isnan(c.seeds.ci_low) for c in comparisons):
            return _not_testable(claim, "runs", f"{claim.metric} has no interval (fewer than 2 seeds a row)")
        gains = [sorted((sign * c.seeds.ci_low, sign * c.seeds.ci_high)) for c in comparisons]
        behind = [c.rows[1] for c, (low, high) in zip(comparisons, gains) if high < 0]
        ahead = [c.rows[1] for c, (low, high) in zip(comparisons, gains) if low > 0]
        if behind:
            raw, p = CONTRADICTED, min(c.seeds.p_value for c in comparisons if c.rows[1] in behind)
        else:
            raw = SUPPORTED if len(ahead) == len(others) else INCONCLUSIVE
            p = max(c.seeds.p_value for c in comparisons)  # the intersection-union test: each comparison must win
        parts = "; ".join(f"vs {c.rows[1]}: {_interval(c.seeds)}" for c in comparisons)
        detail = f"{claim.metric}, {row} minus each other row{_direction(claim.metric)}: {parts}"
        if behind:
            detail = f"{', '.join(behind)} beat(s) it: {detail}"
        return self._finish(claim, raw, detail, p, comparisons)

    def _value(self, claim: Claim) -> Verdict:
        (row,) = claim.rows
        summary = seed_summary([v for _, v in sorted(self.per_seed(row, claim.metric).items())])
        ours = (f"ours {_plain(summary.mean)} [{_plain(summary.ci_low)}, {_plain(summary.ci_high)}] over {summary.n} "
                "seeds" if summary.n > 1 else f"ours {_plain(summary.mean)} (one seed)")
        table = self.study.published
        columns = [m for m in table.metrics if m.get("ours") == claim.metric] if table is not None else []
        if not columns:
            return _not_testable(claim, "protocol", f"the published protocol of {claim.metric} is not recorded; {ours}")
        protocol = comparability(table, columns[0], self.dataset, self.resolution, self.n_images)
        if protocol.verdict == "no":
            return _not_testable(claim, "protocol", f"protocol differs ({'; '.join(protocol.reasons)}); {ours}")
        if summary.n < 2:
            return _not_testable(claim, "runs", f"one seed gives no interval to hold the published number; {ours}")
        inside = summary.ci_low <= claim.published <= summary.ci_high
        detail = f"published {claim.published}, {ours}" + (f"; {protocol.describe()}" if protocol.reasons else "")
        raw = SUPPORTED if inside else CONTRADICTED
        return Verdict(claim, raw, raw, detail, excluded=self._excluded(claim), runs=self._runs(claim))

    def _finish(self, claim: Claim, raw: str, detail: str, p_value: float,
                comparisons: tuple[Comparison, ...]) -> Verdict:
        """The gate of the trivial baselines, the exclusions and the seeds needed, around an interval's verdict."""
        gate = self._gate(claim, comparisons)
        verdict = INCONCLUSIVE if gate else raw
        if verdict == INCONCLUSIVE and not gate:
            comparisons = tuple(self._with_seeds_needed(claim, c) for c in comparisons)
            worst = max(comparisons, key=lambda c: c.seeds.p_value)
            if claim.kind == "similar":
                detail += (f"; seeds needed for 80% power: {_count(worst.seeds_needed_observed)} if the observed "
                           f"difference is the true one, {_count(worst.seeds_needed_smallest)} if the rows are equal")
            else:
                detail += (f"; seeds needed for 80% power: {_count(worst.seeds_needed_observed)} at the observed "
                           f"difference, {_count(worst.seeds_needed_smallest)} at the smallest effect of interest "
                           f"{self.effect(claim):g}")
        return Verdict(claim, verdict, raw, detail, gate=gate, excluded=self._excluded(claim), p_value=p_value,
                       comparisons=comparisons, runs=self._runs(claim))

    def _with_seeds_needed(self, claim: Claim, comparison: Comparison) -> Comparison:
        """The seeds a test of the claim would need for 80% power, at the observed difference and at the smallest
        effect of interest (equivalence: if the observed difference were the true one, and if the rows were equal)."""
        seeds = comparison.seeds
        if claim.kind == "similar":
            needed = (seeds_for_equivalence(seeds.sd, claim.margin, seeds.value, seeds.paired),
                      seeds_for_equivalence(seeds.sd, claim.margin, 0.0, seeds.paired))
        else:
            needed = (seeds_for_difference(seeds.sd, seeds.value, seeds.paired),
                      seeds_for_difference(seeds.sd, self.effect(claim), seeds.paired))
        return dataclasses.replace(comparison, seeds_needed_observed=needed[0], seeds_needed_smallest=needed[1])

    def _gate(self, claim: Claim, comparisons: tuple[Comparison, ...]) -> str | None:
        """Why the claim cannot be judged at this scale: a row of it does not beat the best trivial baseline."""
        best = self.baselines.best(claim.metric) if self.baselines is not None else None
        if best is None:
            return None
        name, value = best
        rows = sorted({row for c in comparisons for row in c.rows}, key=list(self.arms).index)
        below = []
        for row in rows:
            summary = seed_summary([v for _, v in sorted(self.per_seed(row, claim.metric).items())])
            beats = summary.ci_low > value if better(claim.metric) else summary.ci_high < value
            if not beats:
                below.append(f"{row} {_plain(summary.mean)} [{_plain(summary.ci_low)}, {_plain(summary.ci_high)}]")
        if not below:
            return None
        return f"{BELOW_BASELINE}: {'; '.join(below)} vs {name} {_plain(value)} on {claim.metric}"

    def _excluded(self, claim: Claim) -> str | None:
        if claim.caveat is not None:
            kind, why = claim.caveat
            return f"{kind.replace('_', ' ')}: {why}"
        budgets = {row: self.budgets.get(row, []) for row in self._compared_rows(claim)}
        if len({tuple(b) for b in budgets.values() if b}) > 1:
            return "unequal budget: " + ", ".join(f"{row} trains {'/'.join(f'{s:,}' for s in b)} updates"
                                                  for row, b in budgets.items() if b)
        return None

    def _compared_rows(self, claim: Claim) -> list[str]:
        if claim.kind == "best":
            return [r.method for r in self.study.rows if self.per_seed(r.method, claim.metric)]
        return list(claim.rows)

    def _runs(self, claim: Claim) -> dict[str, tuple[str, ...]]:
        rows = self._compared_rows(claim)
        return {row: tuple(sorted(set(self.arms[row].loc[self.arms[row]["metric"] == claim.metric, "run_id"])))
                for row in rows}


def _not_testable(claim: Claim, reason_class: str, why: str) -> Verdict:
    return Verdict(claim, NOT_TESTABLE, NOT_TESTABLE, why, reason_class=reason_class)


def _rank_agreement(study: Study, arms: dict[str, pd.DataFrame], seed: int) -> RankAgreement | None:
    """Kendall's tau between the published column and our seed means over the rows that have both."""
    rank = study.rank
    column = [m["name"] for m in study.published.metrics].index(rank.published)
    published, per_seed = [], []
    for row in study.published.rows:
        arm = arms.get(row["method"])
        if arm is None or row["values"][column] is None:
            continue
        values = arm.loc[(arm["metric"] == rank.ours) & arm["value"].notna()].sort_values("seed")["value"].to_numpy()
        if len(values):
            published.append(row["values"][column] * (1 if rank.published_higher_is_better else -1))
            per_seed.append(values * (-1 if better(rank.ours) is False else 1))
    if len(published) < 3:
        return None
    tau = _tau(published, [v.mean() for v in per_seed])
    rng = np.random.default_rng(seed)
    taus = [_tau(published, [rng.choice(v, size=len(v)).mean() for v in per_seed]) for _ in range(RANK_RESAMPLES)]
    taus = [t for t in taus if not math.isnan(t)]
    low, high = np.quantile(taus, [0.025, 0.975]) if taus else (math.nan, math.nan)
    return RankAgreement(rank, len(published), tau, float(low), float(high))


def _tau(a: list[float], b: list[float]) -> float:
    return float(scipy_stats.kendalltau(a, b).statistic)


def _sign(metric: str) -> float:
    """+1 where higher is better, -1 where lower is: the sign that turns A - B into A's gain."""
    return -1.0 if better(metric) is False else 1.0


def _interval(seeds: SeedDifference) -> str:
    test = "paired t over" if seeds.paired else "Welch t over"
    return (f"{_signed(seeds.value)} [{_signed(seeds.ci_low)}, {_signed(seeds.ci_high)}] "
            f"({int(LEVEL * 100)}%, {test} {seeds.n} seeds)")


def _direction(metric: str) -> str:
    return "; lower is better" if better(metric) is False else ""


def _count(seeds: float) -> str:
    if math.isnan(seeds):
        return "unknown"
    return "more than 10,000" if math.isinf(seeds) else f"{int(seeds):,}"


def _signed(value: float) -> str:
    return f"{value:+.4g}"


def _plain(value: float) -> str:
    return "nan" if math.isnan(value) else f"{value:.4g}"
