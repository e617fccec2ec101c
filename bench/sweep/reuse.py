"""Finished runs shared between studies.

A run id hashes the result-affecting config, the data and the seed, so a run that another
ablation's folder under the same results folder has finished is the run this sweep would train:
the sweep copies it in instead (``--no-reuse`` trains it again).  Only a directory holding DONE,
no FAILED, and passing the run-directory rule (``bench.run.rundir.run_dir_problem``) is taken.
The copy keeps the files' times (what ``compute.json`` reads a run's training time from) and is
made under a hidden name beside its destination, then renamed into place, so an interrupted copy
never looks like a run.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from bench.run import rundir
from bench.sweep.ablation import Ablation, PlannedRun
from bench.sweep.results import AblationResults


def finished_elsewhere(run: PlannedRun, results: AblationResults) -> Path | None:
    """A finished directory of ``run`` in another ablation's folder beside ``results`` (None: there is none)."""
    parent = results.root.parent
    if run.data_problem is not None or not parent.is_dir():
        return None
    for folder in sorted(p for p in parent.iterdir() if p.is_dir() and p.resolve() != results.root.resolve()):
        for candidate in AblationResults(folder).existing_dirs(run):
            if (candidate / rundir.DONE_FILE).is_file() and not (candidate / rundir.FAILED_FILE).exists() \
                    and rundir.run_dir_problem(candidate, run.run_id) is None:
                return candidate
    return None


def reuse_finished_runs(ablation: Ablation, results: AblationResults,
                        copy: bool = True) -> list[tuple[PlannedRun, Path]]:
    """Copy into ``results`` each run of ``ablation`` it has no directory for and another folder has finished;
    return (run, where from) for each (only found, not copied, when ``copy`` is false: a dry run)."""
    found = []
    for run in ablation.runs:
        if results.existing_dirs(run):
            continue
        source = finished_elsewhere(run, results)
        if source is None:
            continue
        if copy:
            copy_run(source, results.root / run.dir_name)
        found.append((run, source))
    return found


def copy_run(source: Path, destination: Path) -> None:
    """``source`` copied to ``destination`` whole or not at all (file times kept)."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.parent / f".{destination.name}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    shutil.copytree(source, partial)
    os.replace(partial, destination)
