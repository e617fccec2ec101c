"""What a study's runs cost: ``compute.json`` beside its reproduction, written when the study is rendered.

Read from the run directories while they exist (``results/`` is not kept): each finished run's
training time is from its ``config.yaml`` (written when the run starts) to its ``DONE``
(written last), by file modification times, so a run that was interrupted and resumed counts
the pause too (said in the record).  The study's wall time is how long at least one of its runs
was running (the union of those spans), so a pause between two sessions in which no run ran is
not counted.  The machines are the runs' recorded ones (``bench.run.machine.machine_label``).
"""
from __future__ import annotations

import datetime
import shlex
import sys
from collections import Counter
from pathlib import Path

from bench.config import yamlio
from bench.run import rundir
from bench.run.machine import machine_label

COMPUTE_FILE = "compute.json"


def compute_record(results: Path, command: list[str] | None = None) -> dict:
    """The compute of the finished runs under ``results`` (one ablation's results folder)."""
    durations, starts, ends, machines = [], [], [], Counter()
    for done in sorted(results.glob("*/DONE")):
        claim = done.parent / "config.yaml"
        if not claim.is_file():
            continue
        start, end = claim.stat().st_mtime, done.stat().st_mtime
        durations.append(end - start)
        starts.append(start)
        ends.append(end)
        try:
            record = yamlio.read(claim)
        except (OSError, yamlio.YamlError):
            record = None
        environment = record.get("environment") if isinstance(record, dict) else None
        machines[machine_label(environment) or "not recorded"] += 1
    if not durations:
        return {"runs_done": 0}
    return {
        "runs_done": len(durations),
        "run_seconds_total": round(sum(durations), 1),
        "run_seconds_mean": round(sum(durations) / len(durations), 1),
        "run_seconds_max": round(max(durations), 1),
        "wall_seconds": round(_covered(zip(starts, ends)), 1),
        "first_start": _utc(min(starts)),
        "last_end": _utc(max(ends)),
        "machines": dict(sorted(machines.items())),
        "command": shlex.join(command if command is not None else ["colorbench", *sys.argv[1:]]),
        "how": "each run from its config.yaml to its DONE (file times; a resumed run includes its pause); "
               "wall: while at least one run was running",
    }


def write_compute(results: Path, out: Path, command: list[str] | None = None) -> dict:
    """Write ``out/compute.json`` from ``results``; return the record."""
    record = compute_record(results, command)
    rundir.write_json(out / COMPUTE_FILE, record)
    return record


def _covered(spans) -> float:
    """Seconds covered by the union of the (start, end) ``spans``."""
    total, reach = 0.0, float("-inf")
    for start, end in sorted(spans):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total


def _utc(timestamp: float) -> str:
    return datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
