"""How a sweep's job ended, as a small JSON file colorbench writes itself.

``colorbench status`` needs a failed job's exception and the summary a job returned (an
interrupted run's step).  submitit keeps them in pickles (``<job id>_0_result.pkl``), and
unpickling a file runs whatever code it names: reading a results folder someone else wrote
must not do that.  So the job writes ``<job id>_<task>_outcome.json`` beside submitit's
files, and status reads only that:

    {"outcome": "error", "error": "bench.data.errors.DatasetError: no usable image ..."}
    {"outcome": "success", "state": "interrupted", "step": 120, "total_steps": 400, "signal": "SIGINT"}
"""
from __future__ import annotations

import json
import traceback
from pathlib import Path
from typing import Any, Callable

from bench.run import rundir

SUMMARY_FIELDS = ("state", "step", "total_steps", "signal")


def outcome_path(folder: str | Path, job_id: str, task_id: int = 0) -> Path:
    """Where the job ``job_id`` of the submitit folder ``folder`` records its outcome."""
    return Path(folder) / f"{job_id}_{task_id}_outcome.json"


def record_outcome(run: Callable[..., dict], *args: Any, **kwargs: Any) -> dict:
    """``run(*args, **kwargs)``, recording how it ended in the submitit job's outcome file (outside a job: nothing).

    Only exceptions are recorded as errors; a requeue (submitit's ``SystemExit``) leaves no outcome.
    """
    try:
        summary = run(*args, **kwargs)
    except Exception as err:
        lines = [line for line in "".join(traceback.format_exception_only(type(err), err)).splitlines()
                 if line.strip()]
        _write({"outcome": "error", "error": lines[-1] if lines else type(err).__name__})
        raise
    _write({"outcome": "success", **{key: summary.get(key) for key in SUMMARY_FIELDS if key in summary}})
    return summary


def read_outcome(folder: str | Path, job_id: str, within: str | Path | None = None) -> tuple[str, Any] | None:
    """(``"error"``, its last line) or (``"success"``, the summary fields) recorded by the job; None when it recorded
    nothing, or something that is not an outcome (the file is input: it is checked, never trusted, and read through
    ``bench.run.rundir``'s reader: only inside ``within``, the results folder, and only a small regular file)."""
    try:
        record = json.loads(rundir.read_text(outcome_path(folder, job_id), rundir.MAX_SUMMARY_BYTES,
                                             within=within) or "")
    except (OSError, ValueError, RecursionError):  # RunFileError is a ValueError
        return None
    if not isinstance(record, dict):
        return None
    if record.get("outcome") == "error" and isinstance(record.get("error"), str):
        return "error", record["error"]
    if record.get("outcome") == "success":
        summary = {key: record[key] for key in SUMMARY_FIELDS if key in record}
        if all(isinstance(value, (str, int, type(None))) for value in summary.values()):
            return "success", summary
    return None


def _write(record: dict) -> None:
    try:
        import submitit
        environment = submitit.JobEnvironment()
        path = outcome_path(environment.paths.folder, environment.job_id, environment.global_rank)
    except Exception:  # not inside a submitit job that has a folder (the debug executor): nothing to record
        return
    try:
        rundir.write_json(path, record)
    except OSError as err:  # status then falls back on the scheduler's state; the run itself is unaffected
        print(f"colorbench: cannot record the job's outcome in {path} ({err.strerror or err})", flush=True)
