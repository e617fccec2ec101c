"""Our runs beside a study's published rows: per-row numbers over seeds, a verdict per claim, rank agreement.

A verdict is ``holds`` when our runs support the claim at the 95% level, ``does not hold``
when they contradict it or do not resolve it (the detail says which), and ``not testable
here`` when the runs it needs did not finish or the claim's protocol is not ours (a
published number measured on other data, or a quantity we cannot measure).

* ``better`` (A beats B): the difference A - B with the report's paired bootstrap over the
  same test images and the seeds (Welch's t over seeds for set metrics), in the metric's
  own direction; it holds when the interval excludes 0 on A's side.
* ``best`` (R is the best row): holds when R beats every other row with runs as above;
  contradicted when another row beats R.
* ``value`` (R scores the published number): testable only where the published protocol
  (dataset, resolution, test images) is ours; holds when the number lies in R's 95% t-interval
  over seeds.
* Rank agreement: Kendall's tau between the published column's order of the rows and the
  order of our seed means, with a percentile interval from resampling each row's seeds.

Beside the rows, the grey input (a = b = 0: the greyscale input as the output, the trivial
baseline; :mod:`bench.evaluation.baselines`) as the runs scored it on the same test images.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

from bench.evaluation.baselines import NOT_RECORDED
from bench.report.analysis import REPORT_SPLIT, Analysis, better, compare_arms
from bench.report.published import comparability
from bench.report.stats import SeedSummary, seed_summary
from bench.reproduce.study import Claim, Rank, Study

HOLDS, DOES_NOT_HOLD, NOT_TESTABLE = "holds", "does not hold", "not testable here"
RANK_RESAMPLES = 2_000


@dataclass(frozen=True)
class RowResult:
    method: str
    published: tuple[float | None, ...]  # one per column of the published table (empty without one)
    ours: dict[str, SeedSummary]  # metric -> summary over seeds (metrics without values absent)
    runs_done: int
    runs_planned: int


@dataclass(frozen=True)
class Verdict:
    claim: Claim
    verdict: str
    detail: str


@dataclass(frozen=True)
class RankAgreement:
    rank: Rank
    n_rows: int
    tau: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class GreyInput:
    """The grey input's values (metric -> mean over the runs, the same for runs on the same test images) and
    what they were scored on, or why there are none."""
    values: dict[str, float]
    note: str


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
    grey_input: GreyInput | None = None  # None: no finished run yet


def reproduce(study: Study, analysis: Analysis, n_resamples: int, seed: int) -> Reproduction:
    """Compare ``study``'s rows and claims with the finished runs that ``analysis`` summarises."""
    measured = _primary(analysis.measured)  # each row's runs by their settings, a nuisance setting included
    done = set(analysis.runs.loc[analysis.runs["state"] == "done", "run_id"])
    arms = {row.method: measured[measured["run_id"].isin(row.run_ids)] for row in study.rows}
    first = measured.iloc[0] if len(measured) else None
    dataset = None if first is None else first["dataset"]
    resolution = None if first is None else first["resolution"]
    n_images = None if first is None or pd.isna(first["n_images"]) else int(first["n_images"])
    rows = tuple(_row_result(study, row, arms[row.method], done) for row in study.rows)
    data_problems = dict(zip(analysis.runs["run_id"], analysis.runs["data_problem"]))
    absent = {row.method: reason for row in study.rows for run_id in row.run_ids
              if isinstance(reason := data_problems.get(run_id), str)}
    judge = ClaimJudge(study, arms, dataset, resolution, n_images, n_resamples, seed, dict(analysis.unavailable),
                       absent)
    verdicts = tuple(judge.verdict(claim) for claim in study.claims)
    rank = _rank_agreement(study, arms, seed) if study.rank else None
    return Reproduction(study, rows, verdicts, rank, dataset, resolution, n_images, dict(analysis.unavailable),
                        _grey_input(analysis, dataset))


def _grey_input(analysis: Analysis, dataset: str | None) -> GreyInput | None:
    """The grey input on the reported test images of ``dataset`` (an analysis without grey-input rows: older runs)."""
    if dataset is None:
        return None
    frame = getattr(analysis, "grey_input", None)
    if frame is not None and len(frame):
        rows = frame[(frame["dataset"] == dataset) & (frame["split"] == REPORT_SPLIT)]
        if len(rows):
            images = sorted({int(n) for n in rows["n_images"] if not pd.isna(n)})
            where = f"same {images[0]} test images" if len(images) == 1 else "same test images"
            return GreyInput({m: float(v) for m, v in rows.groupby("metric", sort=False)["value"].mean().items()},
                             where)
    missing = getattr(analysis, "grey_input_missing", None) or {}
    reasons = [why for key, why in sorted(missing.items()) if key[0] == dataset]
    return GreyInput({}, reasons[0] if reasons else NOT_RECORDED)


def _primary(measured: pd.DataFrame) -> pd.DataFrame:
    """The rows of the runs' own test split (the dataset most runs were scored on, not a re-scoring elsewhere)."""
    if measured.empty:
        return measured
    if "source" in measured.columns and (measured["source"] == "train").any():
        measured = measured[measured["source"] == "train"]
    dataset = measured["dataset"].value_counts().sort_index().idxmax()
    return measured[measured["dataset"] == dataset]


def _row_result(study: Study, row, arm: pd.DataFrame, done: set[str]) -> RowResult:
    published = ()
    if study.published is not None:
        match = [r for r in study.published.rows if r["method"] == row.method]
        published = tuple(match[0]["values"]) if match else tuple(None for _ in study.published.metrics)
    ours = {}
    for metric in study.metrics:
        values = arm.loc[arm["metric"] == metric].sort_values("seed")["value"].to_numpy()
        if len(values):
            ours[metric] = seed_summary(values)
    return RowResult(row.method, published, ours, len(done & set(row.run_ids)), len(row.run_ids))


@dataclass(frozen=True)
class ClaimJudge:
    """Judges a study's claims against its arms: every verdict is computed here (see the module docstring).

    ``arms`` holds each row's measured records (a row of ``Analysis.measured`` per run x metric),
    ``unavailable`` the metrics without values and why, ``absent_data`` the rows whose data is not here.
    """

    study: Study
    arms: dict[str, pd.DataFrame]
    dataset: str | None
    resolution: str | None
    n_images: int | None
    n_resamples: int
    seed: int
    unavailable: dict[str, str]
    absent_data: dict[str, str]  # method -> why its runs' data (photos, weights file) is not on this machine

    def verdict(self, claim: Claim) -> Verdict:
        if claim.kind == "not_testable":
            return Verdict(claim, NOT_TESTABLE, claim.reason)
        if claim.metric in self.unavailable:
            return Verdict(claim, NOT_TESTABLE, f"{claim.metric} has no value: {self.unavailable[claim.metric]}")
        missing = [method for method in claim.rows if self.arm(method, claim.metric).empty]
        if missing:
            why = f"no finished run of {', '.join(missing)} recorded {claim.metric}"
            reasons = sorted({self.absent_data[method] for method in missing if method in self.absent_data})
            if reasons:
                why += f"; not run, because the data is not on this machine: {'; '.join(reasons)}"
            return Verdict(claim, NOT_TESTABLE, why)
        if claim.kind == "better":
            return self._better(claim)
        if claim.kind == "best":
            return self._best(claim)
        return self._value(claim)

    def arm(self, method: str, metric: str) -> pd.DataFrame:
        arm = self.arms[method]
        return arm[(arm["metric"] == metric) & arm["value"].notna()]

    def gain(self, winner: str, loser: str, metric: str) -> tuple[float, float, float, str]:
        """winner - loser in the metric's better direction (positive = winner better), its interval and method."""
        result = compare_arms(self.arm(winner, metric), self.arm(loser, metric), self.n_resamples, self.seed)
        sign = -1.0 if better(metric) is False else 1.0
        low, high = sorted((sign * result["ci_low"], sign * result["ci_high"]))
        return sign * result["difference"], low, high, result["method"]

    def _better(self, claim: Claim) -> Verdict:
        a, b = claim.rows
        gain, low, high, method = self.gain(a, b, claim.metric)
        if math.isnan(low):
            return Verdict(claim, NOT_TESTABLE, f"{claim.metric} {a} - {b} = {_signed(_as_measured(claim.metric, gain))} "
                           f"has no interval ({method}: a set metric needs 2+ seeds per row)")
        interval = (f"{claim.metric} {a} - {b} = {_difference(claim.metric, gain, low, high)} "
                    f"({method}{_direction(claim.metric)})")
        if low > 0:
            return Verdict(claim, HOLDS, interval)
        if high < 0:
            return Verdict(claim, DOES_NOT_HOLD, f"reversed: {interval}")
        return Verdict(claim, DOES_NOT_HOLD, f"not resolved, the interval includes 0: {interval}")

    def _best(self, claim: Claim) -> Verdict:
        (row,) = claim.rows
        others = [r.method for r in self.study.rows if r.method != row and not self.arm(r.method, claim.metric).empty]
        if not others:
            return Verdict(claim, NOT_TESTABLE, f"no other row has finished runs with {claim.metric}")
        gains = {other: self.gain(row, other, claim.metric) for other in others}
        if any(math.isnan(g[1]) for g in gains.values()):
            return Verdict(claim, NOT_TESTABLE, f"{claim.metric} has no interval with one seed per row "
                           f"({gains[others[0]][3]}); a set metric needs 2+ seeds per row")
        ahead = [o for o, g in gains.items() if g[1] > 0]
        behind = [o for o, g in gains.items() if g[2] < 0]
        parts = "; ".join(f"vs {o}: {_difference(claim.metric, *g[:3])}" for o, g in gains.items())
        detail = f"{claim.metric}, {row} minus each other row ({gains[others[0]][3]}{_direction(claim.metric)}): {parts}"
        if len(ahead) == len(others):
            return Verdict(claim, HOLDS, detail)
        if behind:
            return Verdict(claim, DOES_NOT_HOLD, f"contradicted, {', '.join(behind)} beat(s) it: {detail}")
        return Verdict(claim, DOES_NOT_HOLD, f"not resolved, ahead of {len(ahead)} of {len(others)} rows: {detail}")

    def _value(self, claim: Claim) -> Verdict:
        (row,) = claim.rows
        summary = seed_summary(self.arm(row, claim.metric).sort_values("seed")["value"].to_numpy())
        ours = (f"ours {_plain(summary.mean)} [{_plain(summary.ci_low)}, {_plain(summary.ci_high)}] over {summary.n} "
                "seeds" if summary.n > 1 else f"ours {_plain(summary.mean)} (one seed)")
        table = self.study.published
        columns = [m for m in table.metrics if m.get("ours") == claim.metric] if table is not None else []
        if not columns:
            return Verdict(claim, NOT_TESTABLE, f"the published protocol of {claim.metric} is not recorded; {ours}")
        protocol = comparability(table, columns[0], self.dataset, self.resolution, self.n_images)
        if protocol.verdict == "no":
            return Verdict(claim, NOT_TESTABLE, f"protocol differs ({'; '.join(protocol.reasons)}); {ours}")
        if summary.n < 2:
            return Verdict(claim, NOT_TESTABLE, f"one seed gives no interval to hold the published number; {ours}")
        inside = summary.ci_low <= claim.published <= summary.ci_high
        detail = f"published {claim.published}, {ours}" + (f"; {protocol.describe()}" if protocol.reasons else "")
        return Verdict(claim, HOLDS if inside else DOES_NOT_HOLD, detail)


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


def _as_measured(metric: str, gain: float) -> float:
    """A gain (positive = better) back on the metric's own scale, as the table beside it shows it."""
    return -gain if better(metric) is False else gain


def _difference(metric: str, gain: float, low: float, high: float) -> str:
    """A - B and its interval on the metric's own scale (a lower-is-better metric's gain has the other sign)."""
    ends = sorted((_as_measured(metric, low), _as_measured(metric, high)))
    return f"{_signed(_as_measured(metric, gain))} [{_signed(ends[0])}, {_signed(ends[1])}]"


def _direction(metric: str) -> str:
    return "; lower is better" if better(metric) is False else ""


def _signed(value: float) -> str:
    return f"{value:+.4g}"


def _plain(value: float) -> str:
    return "nan" if math.isnan(value) else f"{value:.4g}"
