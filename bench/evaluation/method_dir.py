"""A method directory: the scores of a method colorbench did not train, an external one's or a trivial baseline's.

    <dir>/method.yaml     name; kind (baseline or predictions); run_id; for a baseline its key, for predictions
                          the folder they came from, their file formats and the sha256 of every file; the
                          protocol (dataset identity and name, task, split, resolution, the ground truth's resize
                          rule, the predictions' resizer, whether the input's luminance was re-inserted, the
                          data id when known, the images scored); the metrics
    <dir>/metrics.jsonl   one record per metric in a run's format (bench.evaluation.scoring.metric_records),
                          with source ``baseline`` or ``method``
    <dir>/DONE            written last

A method directory is written whole or not at all: into a temporary folder beside it, then renamed
into place (an older one of that name is renamed aside first and removed after).  ``colorbench
aggregate``, ``report``, ``leaderboard`` and ``reproduce`` read it like a run, in the state ``scored``.

This module imports no heavy library: the report layer reads method directories with it.
"""
from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

from bench.config import ConfigError, yamlio
from bench.run import rundir

METHOD_FILE = "method.yaml"
METRICS_FILE = "metrics.jsonl"
DONE_FILE = "DONE"
SCORED_STATE = "scored"  # the state of a method directory's rows (runs: done, running, ...)
BASELINE_SOURCE = "baseline"  # the records' source: a trivial baseline's outputs
METHOD_SOURCE = "method"  # ... external predictions
KINDS = {"baseline": BASELINE_SOURCE, "predictions": METHOD_SOURCE}  # method.yaml's kind -> its records' source


def is_method_dir(path: Path) -> bool:
    """True when ``path`` holds a method.yaml (a method directory, finished or not)."""
    return (path / METHOD_FILE).exists()


def write_method_dir(folder: Path, method: dict, records: list[dict]) -> Path:
    """Write ``method`` (method.yaml) and ``records`` (metrics.jsonl) into ``folder`` as one whole; return it.

    ``folder`` may be absent, an empty folder or a method directory (replaced); anything else is a
    ConfigError naming it, and nothing is written.
    """
    folder = Path(folder)
    check_target(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = _new_folder(folder, "tmp")
    try:
        rundir.write_text(staging / METHOD_FILE, yamlio.dumps(method))
        for record in records:
            rundir.append_jsonl(staging / METRICS_FILE, record)
        rundir.write_json(staging / DONE_FILE, {"records": len(records)})
        _replace(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return folder


def check_target(folder: Path) -> None:
    """ConfigError naming ``folder`` unless a method directory may be written there (absent, empty, or one)."""
    if folder.exists() and not (folder.is_dir() and (is_method_dir(folder) or not any(folder.iterdir()))):
        raise ConfigError(f"{folder}: exists and is not a method directory; choose another --out or remove it")


def _replace(staging: Path, folder: Path) -> None:
    """Rename ``staging`` to ``folder``; an existing ``folder`` is renamed aside first and removed once replaced."""
    if not folder.exists():
        os.rename(staging, folder)
        return
    aside = _new_folder(folder, "old") / folder.name
    os.rename(folder, aside)
    try:
        os.rename(staging, folder)
    except BaseException:
        os.rename(aside, folder)
        raise
    finally:
        shutil.rmtree(aside.parent, ignore_errors=True)


def _new_folder(beside: Path, kind: str) -> Path:
    """A new hidden folder beside ``beside`` (readers skip hidden folders), made with the usual permissions."""
    folder = beside.parent / f".{beside.name}.{uuid.uuid4().hex[:12]}.{kind}"
    folder.mkdir()
    return folder


def read_method(folder: Path) -> dict:
    """The method.yaml of ``folder``, checked to name the method and its kind; ConfigError naming it otherwise."""
    path = Path(folder) / METHOD_FILE
    try:
        method = yamlio.read(path)
    except (OSError, yamlio.YamlError) as err:
        raise ConfigError(f"{path}: cannot be read ({err})") from None
    if not isinstance(method, dict) or not isinstance(method.get("name"), str) or method.get("kind") not in KINDS:
        raise ConfigError(f"{path}: not a method.yaml (needs a name and a kind: {' or '.join(KINDS)})")
    return method


def is_finished(folder: Path) -> bool:
    """Whether the method directory ``folder`` is whole (its DONE written last)."""
    return (Path(folder) / DONE_FILE).is_file()
