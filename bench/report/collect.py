"""Every run directory under a results folder as tidy tables: final metrics (one row per run x metric) and curves.

    results/
        <ablation>/ablation.yaml, <run-id>-<suffix>/ ...    the runs of a sweep (bench.sweep)
        <group>/<run-id>/ ...                                other runs (colorbench demo, colorbench train --out)

A run directory is a folder holding config.yaml, stats.jsonl, metrics.jsonl, DONE or FAILED.
Its group (the ``ablation`` column) is the name in the ablation.yaml beside it, else the path of
its parent folder relative to the results folder (the results folder's own name for runs directly
inside it).  The ``state`` of a run of an ablation is the sweep's (done, running, pending,
failed, diverged, missing: planned runs without a directory appear too); other runs are done
(DONE), diverged (FAILED) or incomplete.

Collection never stops on a bad file: a torn last JSONL line, an unreadable ablation.yaml, a
run its ablation does not plan, each gives a :class:`CollectionWarning` naming the file, and
the run still appears with what could be read.  Every file is read through
``bench.run.rundir``'s reader, and a run directory that breaks its rule
(``bench.run.rundir.check_run_dir``: config.yaml, DONE, FAILED and checkpoint.pt name one run,
the planned one for a run of an ablation), or whose logs cannot be read or hold a line that is
not a record, is a warning and a row with the state ``broken`` and none of its numbers, as
``colorbench status`` shows it.
Records written by older versions (without ``source``, ``dataset`` or per-image values) are
read with those fields empty.  The grey-input baseline's records (``source`` ``grey_input``,
:mod:`bench.evaluation.baselines`) are rows of their own beside the run's, never in its curves.

A method directory (``colorbench score``, :mod:`bench.evaluation.method_dir`: external predictions or a
trivial baseline) is read like a run: one row per metric, ``state`` ``scored``, ``run_id`` its stable id,
``method`` its name, ``source`` as recorded (``method`` or ``baseline``), ``seed`` NaN, no config columns;
its group is the ablation whose folder holds it, else its parent folder, as a run's.  Every metric row
carries the record's protocol fingerprint as ``fingerprint.<field>`` columns
(:func:`bench.evaluation.fingerprint.comparison_fields`; older records read with what is certain).
"""
from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.config import ConfigError, flatten_keys
from bench.evaluation.baselines import is_grey_input
from bench.evaluation.fingerprint import comparison_fields
from bench.evaluation.method_dir import METRICS_FILE, SCORED_STATE, is_finished, is_method_dir, read_method
from bench.run import rundir
from bench.run.identity import config_id_of
from bench.run.machine import machine_label
from bench.sweep.ablation import Ablation, Axis, PlannedRun, format_value
from bench.sweep.results import AblationResults, ResultsWarning, read_records
from bench.sweep.status import collect_status

RUN_FILES = ("config.yaml", "stats.jsonl", "metrics.jsonl", "DONE", "FAILED")
SKIPPED_FOLDERS = ("submitit", "samples", "trackers")  # never hold run directories (trackers: log.tracker's files)
RUN_COLUMNS = ["ablation", "run_id", "run_dir", "config_id", "seed", "state", "last_step", "total_steps", "is_baseline",
               "method"]
METRIC_COLUMNS = ["split", "dataset", "step", "source", "metric", "value", "unavailable", "n_images", "resolution",
                  "image_ids", "per_image"]
LIST_COLUMNS = ("image_ids", "per_image")  # kept in parquet, left out of CSV
AGGREGATE_FILE, CURVES_FILE = "aggregate.parquet", "curves.parquet"
CURVE_COLUMNS = ["step", "series", "value"]


class CollectionWarning(ResultsWarning):
    """A results file could not be read (fully); the message names it."""


@dataclass(frozen=True)
class Collection:
    """``metrics``: one row per run x (split, dataset, metric) of its latest evaluation, a row with no metric for
    a run without one; ``curves``: one row per run x step x series (``loss_*`` from stats.jsonl,
    ``<split>/<metric>`` from metrics.jsonl), with the run columns but not the config's."""

    metrics: pd.DataFrame
    curves: pd.DataFrame
    folders: dict[str, Path]  # group -> its folder, relative to the results folder


def _warn(message: str) -> None:
    """Warn on one line (parser errors span several)."""
    warnings.warn(" ".join(message.split()), CollectionWarning, stacklevel=3)


def collect(results: str | Path) -> Collection:
    """Read every run directory under ``results`` (see the module docstring) into a :class:`Collection`."""
    root = Path(results)
    if not root.is_dir():
        raise ConfigError(f"{root}: no such results folder")
    metric_rows, curve_rows, folders = [], [], {}
    for group, folder, runs in _groups(root):
        if group in folders:
            _warn(f"{folder}: its group name {group!r} is that of {root / folders[group]} too; "
                  f"collected as {folder.relative_to(root).as_posix()!r}")
            group = folder.relative_to(root).as_posix()
        folders[group] = folder.relative_to(root)
        for run in runs:
            rows, curves = _run_rows(root, group, run)
            metric_rows += rows
            curve_rows += curves
    for group, folder, method_dir in _method_dirs(root):
        folders.setdefault(group, folder.relative_to(root))
        metric_rows += _method_rows(root, group, method_dir)
    metrics = _frame(metric_rows, RUN_COLUMNS + METRIC_COLUMNS, ["ablation", "run_id", "run_dir", "split", "dataset",
                                                                  "metric"])
    curves = _frame(curve_rows, RUN_COLUMNS + CURVE_COLUMNS, ["ablation", "run_id", "run_dir", "series", "step"])
    return Collection(metrics, curves, folders)


def write_aggregate(collection: Collection, out: str | Path, csv: bool = True) -> list[Path]:
    """Write ``aggregate.parquet`` and ``curves.parquet`` into ``out``, with CSV copies unless ``csv`` is false;
    return their paths.

    The CSV files leave out the per-image lists (``image_ids``, ``per_image``), which parquet keeps.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, frame in (("aggregate", collection.metrics), ("curves", collection.curves)):
        parquet = out / f"{name}.parquet"
        table = _parquet_safe(frame)
        rundir.atomic_write(parquet, lambda handle: table.to_parquet(handle, index=False), mode="wb")
        written.append(parquet)
        if csv:
            flat = frame.drop(columns=[c for c in LIST_COLUMNS if c in frame.columns])
            rundir.write_text(out / f"{name}.csv", flat.to_csv(index=False, lineterminator="\n"))
            written.append(out / f"{name}.csv")
    return written


def read_aggregate(path: str | Path) -> pd.DataFrame:
    """An ``aggregate.parquet`` as :func:`collect` made it: the per-image columns back as lists."""
    frame = pd.read_parquet(path)
    for column in LIST_COLUMNS:
        if column in frame.columns:
            frame[column] = [value.tolist() if isinstance(value, np.ndarray) else value for value in frame[column]]
    return frame


# ---------------------------------------------------------------------------------------
# Finding runs and their groups

@dataclass(frozen=True)
class _Run:
    run_dir: Path | None  # None: a planned run without a directory
    state: str
    planned: PlannedRun | None = None
    axes: tuple[Axis, ...] = ()


def is_run_dir(path: Path) -> bool:
    """True when ``path`` holds any of a run directory's files."""
    return any((path / name).exists() for name in RUN_FILES)


def find_run_dirs(root: Path) -> list[Path]:
    """Every run directory under ``root`` (``root`` included), sorted; nothing inside a run directory is searched."""
    if is_run_dir(root):
        return [root]
    found = []
    for child in _searched(root):
        found += find_run_dirs(child)
    return found


def _searched(folder: Path) -> list[Path]:
    """The sub-folders of ``folder`` that may hold runs: not hidden (a method directory being written), not
    skipped, not a method directory."""
    return sorted(p for p in folder.iterdir() if p.is_dir() and p.name not in SKIPPED_FOLDERS
                  and not p.name.startswith(".") and not is_method_dir(p))


def _groups(root: Path) -> list[tuple[str, Path, list[_Run]]]:
    """(group name, folder, runs) for every folder of ``root`` holding run directories or an ablation.yaml."""
    by_parent: dict[Path, list[Path]] = {}
    for run_dir in find_run_dirs(root):
        by_parent.setdefault(run_dir.parent if run_dir != root else root, []).append(run_dir)
    for snapshot in sorted(root.rglob("ablation.yaml")):
        by_parent.setdefault(snapshot.parent, [])
    groups = []
    for folder in sorted(by_parent):
        ablation = _read_snapshot(folder)
        if ablation is None:
            name = root.name if folder == root else folder.relative_to(root).as_posix()
            groups.append((name, folder, [_Run(d, _file_state(d)) for d in by_parent[folder]]))
        else:
            groups.append((ablation.name, folder, _ablation_runs(folder, ablation, by_parent[folder])))
    return groups


def _read_snapshot(folder: Path) -> Ablation | None:
    if not (folder / "ablation.yaml").exists():
        return None
    try:
        return AblationResults(folder).read_snapshot()
    except ConfigError as err:
        _warn(f"{folder / 'ablation.yaml'}: cannot be read ({err}); its runs are collected without their grid")
        return None


def _ablation_runs(folder: Path, ablation: Ablation, run_dirs: list[Path]) -> list[_Run]:
    results = AblationResults(folder)
    try:
        statuses = collect_status(results, ablation.runs)
    except (ConfigError, OSError, KeyError, ValueError) as err:  # e.g. a malformed jobs.jsonl
        _warn(f"{results.jobs_path}: the runs' job states cannot be read ({err}); states come from the run files")
        statuses = None
    runs, claimed = [], set()
    for index, planned in enumerate(ablation.runs):
        run_dir = results.run_dir(planned)
        state = statuses[index].state if statuses else (_file_state(run_dir) if run_dir.exists() else "missing")
        runs.append(_Run(run_dir if run_dir.exists() else None, state, planned, ablation.axes))
        claimed.add(run_dir)
    for run_dir in run_dirs:
        if run_dir not in claimed:
            _warn(f"{run_dir}: not a run of the grid in {results.snapshot_path}; collected without its grid point")
            runs.append(_Run(run_dir, _file_state(run_dir)))
    return runs


def _file_state(run_dir: Path) -> str:
    if (run_dir / "DONE").exists():
        return "done"
    if (run_dir / "FAILED").exists():
        return "diverged"
    return "incomplete"


# ---------------------------------------------------------------------------------------
# Reading one run

def _run_rows(root: Path, group: str, run: _Run) -> tuple[list[dict], list[dict]]:
    identity = {"ablation": group, "state": run.state, "is_baseline": bool(run.planned and run.planned.is_baseline)}
    if run.planned is not None:
        identity.update(run_id=run.planned.run_id, seed=run.planned.seed, config_id=config_id_of(run.planned.run_id))
        identity.update(_axis_labels(run.axes, run.planned.point))
        if run.planned.data_problem is not None:
            identity["data_problem"] = run.planned.data_problem
    if run.run_dir is None:
        return [identity], []
    identity["run_dir"] = run.run_dir.relative_to(root).as_posix() if run.run_dir != root else "."
    try:  # the rule every command applies, and the logs through the one reader (bench.run.rundir)
        claim = rundir.check_run_dir(run.run_dir, run.planned.run_id if run.planned else None)
        stats = _read_records(run.run_dir / "stats.jsonl")
        records = _read_records(run.run_dir / "metrics.jsonl")
    except rundir.RunDirError as err:  # none of its numbers is reported: they may be another run's, or damaged
        _warn(f"{err}; the run is collected as broken, without its numbers")
        identity["state"] = "broken"
        identity.setdefault("run_id", run.run_dir.name)
        return [identity], []
    known_data = run.planned is None or run.planned.data_problem is None
    # Where the data is not here the planned ids hold a placeholder: the run's config.yaml says which data it had.
    identity.update(_config_columns(run.run_dir, claim, identity if known_data else {}))
    identity.setdefault("run_id", run.run_dir.name)
    identity.update(_progress(run.run_dir, stats, records))
    rows = [{**identity, **_metric_fields(record, identity)} for record in _latest_records(records)]
    run_columns = {key: value for key, value in identity.items() if not key.startswith("config.")}
    return rows or [identity], [{**run_columns, **point} for point in _curve_points(stats, records)]


def _axis_labels(axes: tuple[Axis, ...], point: dict[str, Any]) -> dict[str, str]:
    """``axis.<name>`` -> the run's value on each grid axis as text (a zip group's values joined by '/')."""
    return {f"axis.{axis.name}": axis_label([point[key] for key in axis.keys]) for axis in axes}


def axis_label(values: list[Any]) -> str:
    """The text of one grid axis setting: its values as YAML writes them, joined by '/'."""
    return "/".join(format_value(value) for value in values)


def _config_columns(run_dir: Path, claim: rundir.RunClaim | None, identity: dict) -> dict:
    """Run id, config id, seed and ``config.<dotted key>`` columns from config.yaml (``claim``: read and checked by
    ``bench.run.rundir.check_run_dir``), whatever version wrote it."""
    if claim is None:
        _warn(f"{run_dir / 'config.yaml'}: missing; the run is collected without its config")
        return {}
    record = claim.record
    columns = {f"config.{key}": _scalar(value) for key, value in flatten_keys(record["config"]).items()}
    for key in ("run_id", "config_id", "seed"):
        if key in record and key not in identity:
            columns[key] = record[key]
    columns["machine"] = machine_label(record.get("environment"))  # CPU/ISA, math code paths (None: not recorded)
    return columns


def _scalar(value: Any) -> Any:
    """A config value as one table cell: lists as YAML writes them inline (e.g. [0.5, 0.999])."""
    if isinstance(value, list):
        return json.dumps(value)
    return value


def _read_records(path: Path) -> list[dict]:
    """The records of a JSONL file, with a warning naming a torn last line (which an interrupted write leaves);
    :class:`bench.run.rundir.RunFileError` naming the file and line when another line is not a record (training
    refuses such a file too) or the file cannot be read."""
    problems: list[str] = []
    records = read_records(path, problems)
    damaged = [problem for problem in problems if not problem.endswith(rundir.TORN_LINE)]
    if damaged:
        raise rundir.RunFileError(damaged[0] + (f" (and {len(damaged) - 1} more lines)" if len(damaged) > 1 else ""))
    for problem in problems:
        _warn(f"{problem} (skipped)")
    return records


def _progress(run_dir: Path, stats: list[dict], records: list[dict]) -> dict:
    """The run's last step and total steps: from DONE, else from its logs."""
    done = run_dir / "DONE"
    if done.exists():  # read and checked by bench.run.rundir.check_run_dir already
        summary = rundir.read_summary(done, "")
        return {"last_step": summary["step"], "total_steps": summary["total_steps"]}
    steps = [r["step"] for r in stats + records if isinstance(r.get("step"), int)]
    totals = [r["total_steps"] for r in stats if isinstance(r.get("total_steps"), int)]
    return {"last_step": max(steps, default=None), "total_steps": totals[-1] if totals else None}


def _latest_records(records: list[dict]) -> list[dict]:
    """The record of each (split, dataset, metric), the run's and the grey input's apart, at its latest step; at
    equal steps the last one written."""
    latest: dict[tuple, dict] = {}
    for record in records:
        if not isinstance(record.get("metric"), str) or not isinstance(record.get("step"), int):
            continue
        key = (record.get("split"), _dataset(record), record["metric"], is_grey_input(record))
        if key not in latest or record["step"] >= latest[key]["step"]:
            latest[key] = record
    return list(latest.values())


def _dataset(record: dict) -> str | None:
    dataset = record.get("dataset")
    return dataset.get("source") if isinstance(dataset, dict) else None


def _metric_fields(record: dict, identity: dict) -> dict:
    resolution = record.get("resolution")
    value = record.get("value")
    return {
        "split": record.get("split"), "step": record["step"], "source": record.get("source"),
        "dataset": _dataset(record) or identity.get("config.data.dataset"), "metric": record["metric"],
        "value": float(value) if isinstance(value, (int, float)) else math.nan,
        "unavailable": record.get("unavailable"), "n_images": record.get("n_images"),
        "resolution": "x".join(str(r) for r in resolution) if isinstance(resolution, list) else None,
        "image_ids": record.get("image_ids"), "per_image": record.get("per_image"),
        **{f"fingerprint.{name}": text for name, text in comparison_fields(record).items()},
    }


def _curve_points(stats: list[dict], records: list[dict]) -> list[dict]:
    """(step, series, value): each loss term of stats.jsonl and each metric value of every evaluation."""
    points = []
    for record in stats:
        for key, value in record.items():
            if key.startswith("loss_") and isinstance(value, (int, float)) and isinstance(record.get("step"), int):
                points.append({"step": record["step"], "series": key, "value": float(value)})
    evaluations: dict[tuple, dict] = {}
    for record in records:  # a later record of the same evaluation (colorbench eval) replaces an earlier one
        if (isinstance(record.get("value"), (int, float)) and isinstance(record.get("step"), int)
                and not is_grey_input(record)):
            evaluations[(record["step"], f"{record.get('split')}/{record.get('metric')}")] = record
    points += [{"step": step, "series": series, "value": float(record["value"])}
               for (step, series), record in evaluations.items()]
    return points


# ---------------------------------------------------------------------------------------
# Method directories (bench.evaluation.method_dir): a method's scores, read like a run's

def _method_dirs(root: Path) -> list[tuple[str, Path, Path]]:
    """(group, its folder, method directory) of every method directory under ``root``, outside run directories.

    Its group is that of the ablation whose folder holds it (an ablation.yaml above it, up to ``root``), else
    its parent folder's path, as a run's."""
    found: list[tuple[str, Path, Path]] = []
    pending = [root]
    while pending:
        folder = pending.pop()
        if is_method_dir(folder):
            found.append((*_method_group(root, folder), folder))
        elif not is_run_dir(folder):
            pending += [p for p in folder.iterdir() if p.is_dir() and p.name not in SKIPPED_FOLDERS
                        and not p.name.startswith(".")]
    return sorted(found, key=lambda entry: entry[2])


def _method_group(root: Path, method_dir: Path) -> tuple[str, Path]:
    for folder in [method_dir.parent, *method_dir.parent.parents]:
        if folder != root and root not in folder.parents:
            break
        ablation = _read_snapshot(folder) if (folder / "ablation.yaml").exists() else None
        if ablation is not None:
            return ablation.name, folder
    parent = method_dir.parent
    return (root.name if parent == root else parent.relative_to(root).as_posix()), parent


def _method_rows(root: Path, group: str, method_dir: Path) -> list[dict]:
    """One row per metric of the method directory's records, in the state ``scored`` (a warning and the state
    ``broken`` when its method.yaml or metrics.jsonl cannot be read, ``incomplete`` without its DONE)."""
    identity = {"ablation": group, "run_id": method_dir.name, "run_dir": method_dir.relative_to(root).as_posix(),
                "config_id": None, "seed": math.nan, "state": SCORED_STATE, "last_step": None, "total_steps": None,
                "is_baseline": False, "method": None}
    try:
        method = read_method(method_dir)
        records = _read_records(method_dir / METRICS_FILE)
    except ConfigError as err:
        _warn(f"{err}; the method directory is collected as broken")
        return [{**identity, "state": "broken"}]
    identity.update(run_id=str(method.get("run_id") or method_dir.name), method=method["name"])
    if not is_finished(method_dir):
        _warn(f"{method_dir}: no DONE (not written by colorbench score, or damaged); collected as incomplete")
        identity["state"] = "incomplete"
    rows = [{**identity, **_metric_fields(record, identity)} for record in _latest_records(records)]
    return rows or [identity]


# ---------------------------------------------------------------------------------------
# Tables

def _frame(rows: list[dict], leading: list[str], order: list[str]) -> pd.DataFrame:
    """Rows as a DataFrame: ``leading`` columns first, then axis.* and config.* columns sorted; rows sorted."""
    frame = pd.DataFrame(rows)
    for column in leading:
        if column not in frame.columns:
            frame[column] = None
    rest = sorted(c for c in frame.columns if c not in leading)
    frame = frame[leading + rest]
    keys = frame[order].astype(str)
    return frame.loc[keys.sort_values(order, kind="stable").index].reset_index(drop=True)


def _parquet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """Object columns whose cells mix types (e.g. a config field an older version wrote as text) as JSON text."""
    frame = frame.copy()
    for column in frame.columns:
        if column in LIST_COLUMNS or frame[column].dtype != object:
            continue
        types = {type(v) for v in frame[column] if v is not None and not (isinstance(v, float) and math.isnan(v))}
        if len(types) > 1:
            frame[column] = [None if v is None or (isinstance(v, float) and math.isnan(v)) else json.dumps(v)
                             for v in frame[column]]
    return frame
