"""The statistics of one group of runs: nuisance settings chosen, per-variant summaries, differences from the baseline.

Only finished runs (state done) enter.  A variant is one setting of every scientific axis;
fixed axes split the runs into groups that are never compared with each other.  Nuisance
axes are tuned within each variant: the setting with the best mean (over seeds) of the
selection metric on the validation split is kept, or on the test split when the runs record
no validation split, which the report then says.  The reported numbers are those of the
test split.

The grey-input baseline's records (:mod:`bench.evaluation.baselines`) never enter a variant's numbers:
``grey_input`` summarises them per section (the mean over the reported runs, the same value
for runs on the same test images), and ``grey_input_missing`` says why a section has none.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench.config.names import METRIC_NAMES
from bench.evaluation.baselines import GREY_INPUT_LABEL, GREY_INPUT_SOURCE, NOT_APPLICABLE, NOT_RECORDED
from bench.evaluation.method_dir import BASELINE_SOURCE, SCORED_STATE
from bench.report.design import Design, DesignAxis, cell_label
from bench.report.stats import (
    BOOTSTRAP_SEED,
    LEVEL,
    N_RESAMPLES,
    holm,
    paired_bootstrap_intervals,
    seed_summary,
    seeds_needed,
    welch_interval,
    welch_p,
    wilcoxon_p,
)

REPORT_SPLIT = "test"
BATCH_COLUMN = "config.data.batch_size"  # a run's images per update
WIDTH_COLUMN = "config.generator.ngf"  # its generator's width (base channels)
VALIDATION_SPLITS = ("val", "validation")
DEFAULT_SELECTION_METRICS = ("psnr_rgb8", "ssim_rgb8")
# Which way is better, for choosing nuisance settings and naming the best variant (DDColor marks CF as higher-better).
HIGHER_IS_BETTER = {"psnr_rgb8": True, "ssim_rgb8": True, "mse_ab_rgb8": False, "cf": True, "delta_cf": False,
                    "hist_isect_lab": True, "lpips_alex": False, "fid_inception_pt": False, "kid_inception_pt": False,
                    "l1_rgb8": False, "de2000_rgb8": False}
SECTION_COLUMNS = ["dataset", "split", "fixed"]  # one table section per evaluation set and fixed-axes setting
GREY_COLUMNS = ["dataset", "split", "fixed", "metric", "value", "spread", "n_runs", "n_runs_section", "n_images",
                "resolution"]
BASELINE_COLUMNS = ["dataset", "split", "baseline", "metric", "value", "n_images", "resolution"]
CURVE_COLUMNS = ["run_id", "seed", "step", "metric", "value"]


@dataclass(frozen=True)
class Analysis:
    """Everything a report shows about one group of runs.

    ``summary``: one row per section x variant x metric (n seeds, mean, std, t-interval);
    ``comparisons``: one row per section x non-baseline variant x metric (difference from the
    baseline, its interval, excludes_zero, Wilcoxon p, method); ``choices``: the nuisance setting
    kept for each section x variant; ``runs``: one row per run (state, step, variant); ``reported``: the
    rows of the collection behind ``summary`` (one per run x metric, with variant labels); ``measured``: the
    same on the test split for every nuisance setting, not only the kept one (a reproduction row names its
    runs by their settings, nuisance included).
    """

    design: Design
    summary: pd.DataFrame
    comparisons: pd.DataFrame
    choices: pd.DataFrame
    runs: pd.DataFrame
    reported: pd.DataFrame
    selection_metric: str | None
    selection_split: str | None
    unavailable: dict[str, str]  # metric -> why it has no value (as the runs recorded it)
    n_resamples: int
    bootstrap_seed: int
    measured: pd.DataFrame
    # one row per section x metric: the grey input's value (mean over the reported runs), its spread over them,
    # how many runs recorded it, n_images, resolution; and section (dataset, split, fixed) -> why it has no row
    grey_input: pd.DataFrame = dataclasses.field(default_factory=lambda: _empty(GREY_COLUMNS))
    grey_input_missing: dict[tuple, str] = dataclasses.field(default_factory=dict)
    # one row per evaluation set x trivial baseline x metric: the baseline's value on those test images (a method
    # directory's scores, or for older results the grey input as the runs scored it)
    baselines: pd.DataFrame = dataclasses.field(default_factory=lambda: _empty(BASELINE_COLUMNS))
    # one row per finished run x evaluation step x metric on the report split: the learning curves
    curves: pd.DataFrame = dataclasses.field(default_factory=lambda: _empty(CURVE_COLUMNS))


def analyse(frame: pd.DataFrame, design: Design, select_by: str | None = None, n_resamples: int = N_RESAMPLES,
            seed: int = BOOTSTRAP_SEED, curves: pd.DataFrame | None = None) -> Analysis:
    """The statistics of the rows of one group of a :class:`~bench.report.collect.Collection` (see the module);
    ``curves`` are the collection's curves (of any groups: the group's finished runs are taken)."""
    scored = frame["state"] == SCORED_STATE if "state" in frame.columns else pd.Series(False, index=frame.index)
    frame, scored = _with_labels(frame[~scored], design), frame[scored]
    runs = _runs(frame)
    done = frame[(frame["state"] == "done") & frame["metric"].notna()]
    grey = done["source"] == GREY_INPUT_SOURCE if "source" in done.columns else pd.Series(False, index=done.index)
    done, grey_rows = done[~grey], done[grey]
    unavailable = _unavailable(done)
    measured = done[done["value"].notna()]
    select_by = select_by or next((m for m in DEFAULT_SELECTION_METRICS if m in set(measured["metric"])),
                                  min(measured["metric"], default=None))
    selection_split, choices = None, _empty(["dataset", "fixed", "variant", "setting", "value"])
    every_setting = _on_report_split(measured)
    if design.role("nuisance") and select_by is not None:
        selection_split = _selection_split(measured, select_by)
        measured, choices = _choose_nuisance(measured, select_by, selection_split)
    reported = _on_report_split(measured)
    summary = _summarise(reported)
    comparisons = _compare(reported, n_resamples, seed)
    grey_input, grey_missing = _grey_input(grey_rows, reported)
    return Analysis(design, summary, comparisons, choices, runs, reported, select_by, selection_split, unavailable,
                    n_resamples, seed, every_setting, grey_input, grey_missing, _baselines(scored, grey_rows),
                    _test_curves(curves, runs))


def _on_report_split(rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` on the report split, in table order with seeds ascending within each variant and metric."""
    return _sorted(rows[rows["split"] == REPORT_SPLIT].sort_values("seed", kind="stable"))


def better(metric: str) -> bool | None:
    """True when higher values of ``metric`` are better, False when lower are, None when unknown."""
    return HIGHER_IS_BETTER.get(metric)


# ---------------------------------------------------------------------------------------

def _with_labels(frame: pd.DataFrame, design: Design) -> pd.DataFrame:
    """``frame`` with each run's setting per axis as text, its ``variant``, ``fixed`` and ``nuisance`` labels and
    grid positions, and ``is_baseline`` (the baseline's scientific settings)."""
    frame = frame.copy()
    for axis in design.axes:
        values = frame[axis.column] if axis.column in frame.columns else pd.Series(None, index=frame.index)
        frame[_label_column(axis)] = [None if v is None or (isinstance(v, float) and math.isnan(v)) else cell_label(v)
                                      for v in values]
    frame["variant"] = _join(frame, design.role("scientific"), "all runs")
    frame["fixed"] = _join(frame, design.role("fixed"), "")
    frame["nuisance"] = _join(frame, design.role("nuisance"), "")
    frame["variant_position"] = _positions(frame, design.role("scientific"))
    frame["nuisance_position"] = _positions(frame, design.role("nuisance"))
    frame[["dataset", "split"]] = frame[["dataset", "split"]].fillna("unknown")
    frame["is_baseline"] = _is_baseline(frame, design)
    return frame


def _label_column(axis: DesignAxis) -> str:
    return f"setting:{axis.name}"


def _join(frame: pd.DataFrame, axes: tuple[DesignAxis, ...], empty: str) -> pd.Series:
    if not axes:
        return pd.Series(empty, index=frame.index, dtype=object)
    parts = [axis.name + "=" + frame[_label_column(axis)].fillna("?") for axis in axes]
    joined = parts[0]
    for part in parts[1:]:
        joined = joined + ", " + part
    return joined.astype(object)


def _positions(frame: pd.DataFrame, axes: tuple[DesignAxis, ...]) -> pd.Series:
    """Each row's grid position on ``axes`` (unknown settings last), the order of tables and plots."""
    def position(row: pd.Series) -> tuple:
        return tuple(axis.labels.index(row[_label_column(axis)]) if row[_label_column(axis)] in axis.labels
                     else len(axis.labels) for axis in axes)
    return frame.apply(position, axis=1) if len(frame) else pd.Series(dtype=object)


def _is_baseline(frame: pd.DataFrame, design: Design) -> pd.Series:
    """Rows of the baseline's scientific settings (with any nuisance setting: the best one is chosen later)."""
    if design.baseline is None:
        return pd.Series(False, index=frame.index)
    matches = pd.Series(True, index=frame.index)
    for axis in design.role("scientific"):
        matches &= frame[_label_column(axis)] == design.baseline[axis.name]
    return matches


def _runs(frame: pd.DataFrame) -> pd.DataFrame:
    columns = ["run_id", "seed", "state", "last_step", "total_steps", "variant", "fixed", "nuisance", "is_baseline",
               "run_dir"]
    runs = frame.drop_duplicates("run_id")
    runs = runs.sort_values(["fixed", "variant_position", "nuisance_position", "seed", "run_id"], kind="stable")
    # bench.run.machine.machine_label; why a run's data is not on this machine; the batch and width of its budget
    optional = ("machine", "data_problem", BATCH_COLUMN, WIDTH_COLUMN)
    runs = runs.assign(**{name: runs[name] if name in runs.columns else None for name in optional})
    return runs[columns + list(optional)].reset_index(drop=True)


def _unavailable(done: pd.DataFrame) -> dict[str, str]:
    reasons = {}
    for metric, rows in done[done["value"].isna()].groupby("metric", sort=True):
        given = sorted(set(rows["unavailable"].dropna()))
        reasons[metric] = given[0] if given else "no value recorded"
    return reasons


def _grey_input(grey_rows: pd.DataFrame, reported: pd.DataFrame) -> tuple[pd.DataFrame, dict[tuple, str]]:
    """Per section of ``reported`` and metric, the grey input's value over the runs reported there; and, for a
    section none of whose runs recorded it, why (the paired task has none; older runs did not record it)."""
    rows, missing = [], {}
    for key, section in reported.groupby(SECTION_COLUMNS, sort=True):
        runs = set(section["run_id"])
        mine = grey_rows[(grey_rows[SECTION_COLUMNS] == pd.Series(key, index=SECTION_COLUMNS)).all(axis=1)
                         & grey_rows["run_id"].isin(runs) & grey_rows["value"].notna()]
        if mine.empty:
            paired = "config.data.task" in section.columns and (section["config.data.task"] == "paired").all()
            missing[key] = NOT_APPLICABLE if paired else NOT_RECORDED
            continue
        for metric, values in mine.groupby("metric", sort=False):
            images = sorted({int(n) for n in values["n_images"] if not pd.isna(n)})
            rows.append({**dict(zip(SECTION_COLUMNS, key)), "metric": metric, "value": float(values["value"].mean()),
                         "spread": float(values["value"].max() - values["value"].min()),
                         "n_runs": int(values["run_id"].nunique()), "n_runs_section": len(runs),
                         "n_images": images[0] if len(images) == 1 else None,
                         "resolution": values["resolution"].iloc[0]})
    frame = pd.DataFrame(rows, columns=GREY_COLUMNS)
    if not frame.empty:
        frame = frame.assign(_rank=frame["metric"].map(metric_rank)).sort_values(
            [*SECTION_COLUMNS, "_rank"], kind="stable").drop(columns="_rank").reset_index(drop=True)
    return frame, missing


def _baselines(scored: pd.DataFrame, grey_rows: pd.DataFrame) -> pd.DataFrame:
    """The trivial baselines' values per evaluation set and metric: the method directories' scores, and the grey
    input as the runs scored it where no method directory holds it (results made before baselines were methods)."""
    rows = []
    if len(scored) and "source" in scored.columns:
        for _, row in scored[(scored["source"] == BASELINE_SOURCE) & scored["value"].notna()].iterrows():
            rows.append({"dataset": row["dataset"], "split": row["split"], "baseline": row["method"],
                         "metric": row["metric"], "value": float(row["value"]),
                         "n_images": None if pd.isna(row["n_images"]) else int(row["n_images"]),
                         "resolution": row["resolution"]})
    have = {(r["dataset"], r["split"], r["baseline"], r["metric"]) for r in rows}
    grey = grey_rows[grey_rows["value"].notna()] if len(grey_rows) else grey_rows
    for (dataset, split, metric), values in (grey.groupby(["dataset", "split", "metric"], sort=True)
                                             if len(grey) else ()):
        if (dataset, split, GREY_INPUT_LABEL, metric) not in have:
            images = sorted({int(n) for n in values["n_images"] if not pd.isna(n)})
            rows.append({"dataset": dataset, "split": split, "baseline": GREY_INPUT_LABEL, "metric": metric,
                         "value": float(values["value"].mean()), "n_images": images[0] if len(images) == 1 else None,
                         "resolution": values["resolution"].iloc[0]})
    frame = pd.DataFrame(rows, columns=BASELINE_COLUMNS)
    return frame.sort_values(["dataset", "split", "baseline", "metric"], kind="stable").reset_index(drop=True)


def _test_curves(curves: pd.DataFrame | None, runs: pd.DataFrame) -> pd.DataFrame:
    """The metric values of every evaluation of the finished runs on the report split (``<split>/<metric>`` series),
    and their training loss (``train/loss_g_rec``: the generator's reconstruction term on its batches)."""
    done = runs.loc[runs["state"] == "done", ["run_id", "seed"]]
    if curves is None or curves.empty or done.empty:
        return _empty(CURVE_COLUMNS)
    prefix = f"{REPORT_SPLIT}/"
    rows = curves[(curves["series"].str.startswith(prefix) | (curves["series"] == "loss_g_rec"))
                  & curves["run_id"].isin(done["run_id"])]
    metric = np.where(rows["series"] == "loss_g_rec", "train/loss_g_rec", rows["series"].str.slice(len(prefix)))
    rows = rows.assign(metric=metric)[["run_id", "step", "metric", "value"]]
    rows = rows.merge(done, on="run_id")[CURVE_COLUMNS]
    return rows.sort_values(["run_id", "metric", "step"], kind="stable").reset_index(drop=True)


def _selection_split(measured: pd.DataFrame, metric: str) -> str:
    splits = set(measured.loc[measured["metric"] == metric, "split"].dropna())
    return next((s for s in VALIDATION_SPLITS if s in splits), REPORT_SPLIT)


def _choose_nuisance(measured: pd.DataFrame, metric: str, split: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Keep, per dataset x fixed x variant, the runs of the nuisance setting with the best mean ``metric`` on
    ``split``; return them and the choices."""
    sign = -1.0 if better(metric) is False else 1.0
    scored = measured[(measured["metric"] == metric) & (measured["split"] == split)]
    kept, choices = [], []
    for (dataset, fixed, variant), rows in measured.groupby(["dataset", "fixed", "variant"], sort=True):
        candidates = scored[(scored["dataset"] == dataset) & (scored["fixed"] == fixed)
                            & (scored["variant"] == variant)]
        means = candidates.groupby("nuisance")["value"].mean()
        if means.empty:
            continue
        # Ties go to the earliest setting in grid order, so the choice never depends on row order.
        order = dict(zip(candidates["nuisance"], candidates["nuisance_position"]))
        best = min(means.index, key=lambda n: (-sign * means[n], order[n]))
        kept.append(rows[rows["nuisance"] == best])
        choices.append({"dataset": dataset, "fixed": fixed, "variant": variant, "setting": best,
                        "value": float(means[best])})
    if not kept:
        return measured.iloc[0:0], _empty(["dataset", "fixed", "variant", "setting", "value"])
    return pd.concat(kept), pd.DataFrame(choices)


def _summarise(reported: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for (dataset, split, fixed, variant, metric), group in reported.groupby(
            ["dataset", "split", "fixed", "variant", "metric"], sort=True):
        per_seed = group.sort_values("seed")
        summary = seed_summary(per_seed["value"].to_numpy())
        first = group.iloc[0]
        rows.append({"dataset": dataset, "split": split, "fixed": fixed, "variant": variant,
                     "variant_position": first["variant_position"], "is_baseline": bool(first["is_baseline"]),
                     "nuisance": first["nuisance"], "resolution": first["resolution"],
                     "n_images": None if pd.isna(first["n_images"]) else int(first["n_images"]),
                     "metric": metric, "higher_is_better": better(metric), "n_seeds": summary.n,
                     "seeds": " ".join(str(int(s)) for s in per_seed["seed"]), "mean": summary.mean,
                     "std": summary.std, "ci_low": summary.ci_low, "ci_high": summary.ci_high})
    columns = ["dataset", "split", "fixed", "variant", "variant_position", "is_baseline", "nuisance", "resolution",
               "n_images", "metric", "higher_is_better", "n_seeds", "seeds", "mean", "std", "ci_low", "ci_high"]
    return _sorted(pd.DataFrame(rows, columns=columns))


def _compare(reported: pd.DataFrame, n_resamples: int, seed: int) -> pd.DataFrame:
    columns = ["dataset", "split", "fixed", "variant", "variant_position", "metric", "difference", "ci_low", "ci_high",
               "excludes_zero", "wilcoxon_p", "method", "n_images_paired", "arms", "ci_low_bonferroni",
               "ci_high_bonferroni", "excludes_zero_bonferroni", "p_value", "p_holm", "seeds_needed"]
    rows = []
    for (dataset, split, fixed, metric), group in reported.groupby(["dataset", "split", "fixed", "metric"], sort=True):
        baseline = group[group["is_baseline"]]
        if baseline.empty:
            continue
        arms = list(group[~group["is_baseline"]].groupby("variant", sort=True))
        family = [{"dataset": dataset, "split": split, "fixed": fixed, "variant": variant,
                   "variant_position": arm["variant_position"].iloc[0], "metric": metric,
                   **compare_arms(arm, baseline, n_resamples, seed, n_arms=len(arms))} for variant, arm in arms]
        for row, adjusted in zip(family, holm([row["p_value"] for row in family])):
            row["p_holm"] = adjusted
        rows += family
    return _sorted(pd.DataFrame(rows, columns=columns))


def compare_arms(arm: pd.DataFrame, baseline: pd.DataFrame, n_resamples: int, seed: int, n_arms: int = 1) -> dict:
    """Paired bootstrap + Wilcoxon over the images both arms scored, else Welch over seeds.

    With ``n_arms`` arms compared with the same baseline, the interval is also given at the
    Bonferroni level and the seeds needed are for the Bonferroni-corrected test.
    """
    corrected = 1 - (1 - LEVEL) / n_arms
    seed_values = arm["value"].to_numpy(), baseline["value"].to_numpy()
    needed = seeds_needed(*seed_values, alpha=1 - corrected)
    paired = _paired_values(arm, baseline)
    if paired is not None:
        variant_values, baseline_values = paired
        difference, bonferroni = paired_bootstrap_intervals(variant_values, baseline_values, (LEVEL, corrected),
                                                            n_resamples, seed)
        n_images = variant_values.shape[1]
        p = wilcoxon_p(variant_values, baseline_values)
        method = f"paired bootstrap over {n_images} images x seeds ({len(arm)} vs {len(baseline)})"
    else:
        difference, bonferroni = (welch_interval(*seed_values, level=level) for level in (LEVEL, corrected))
        n_images, p = 0, welch_p(*seed_values)
        method = f"Welch t over seeds ({len(arm)} vs {len(baseline)})"
    return {"difference": difference.value, "ci_low": difference.ci_low, "ci_high": difference.ci_high,
            "excludes_zero": difference.excludes_zero, "wilcoxon_p": p if paired is not None else math.nan,
            "method": method, "n_images_paired": n_images, "arms": n_arms, "ci_low_bonferroni": bonferroni.ci_low,
            "ci_high_bonferroni": bonferroni.ci_high, "excludes_zero_bonferroni": bonferroni.excludes_zero,
            "p_value": p, "seeds_needed": needed}


def _paired_values(arm: pd.DataFrame, baseline: pd.DataFrame) -> tuple[np.ndarray, np.ndarray] | None:
    """(seeds, images) arrays of both arms over the image ids that every run of both scored; None without
    per-image values."""
    runs = pd.concat([arm, baseline])
    if any(not isinstance(ids, list) or not isinstance(values, list) or len(ids) != len(values)
           for ids, values in zip(runs["image_ids"], runs["per_image"])):
        return None
    common = set(runs["image_ids"].iloc[0]).intersection(*runs["image_ids"])
    if not common:
        return None
    order = [i for i in baseline["image_ids"].iloc[0] if i in common]

    def matrix(rows: pd.DataFrame) -> np.ndarray:
        return np.array([[dict(zip(ids, values))[i] for i in order]
                         for ids, values in zip(rows["image_ids"], rows["per_image"])], dtype=np.float64)
    return matrix(arm.sort_values("seed")), matrix(baseline.sort_values("seed"))


def metric_rank(metric: str) -> tuple[int, str]:
    """Sort key of metric names: the registry's order, then unknown names alphabetically."""
    names = list(METRIC_NAMES)
    return (names.index(metric), "") if metric in names else (len(names), metric)


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows by section, grid order of the variant, metric in the registry's order."""
    frame = frame.assign(_metric_rank=frame["metric"].map(metric_rank))
    return frame.sort_values(["dataset", "split", "fixed", "variant_position", "variant", "_metric_rank"],
                             kind="stable").drop(columns="_metric_rank").reset_index(drop=True)


def _empty(columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame({column: pd.Series(dtype=object) for column in columns})
