"""The results folder of one ablation.

    results/<ablation>/
        ablation.yaml                       the ablation as last swept (base with --set applied)
        jobs.jsonl                          one record per queued or submitted run (the latest counts)
        submitit/<sweep>/                   submitit's pickles and every job's stdout/stderr, new per sweep
        <config-id>-s<seed>-<suffix>/       one run directory per run (see bench.train)

A run is found by its id, whatever its suffix, so a run directory keeps its name when the
readable part of a later sweep's names changes.  A directory that holds another run than
its name says is reported as a conflict and never written to.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import yaml

from bench import rundir
from bench.config import ConfigError, config_from_dict, run_id
from bench.sweep.ablation import Ablation, PlannedRun, parse_ablation


class RunDirConflict(ConfigError):
    """A results folder holds a directory of a planned run's name with another run in it."""


class AblationResults:
    """Paths and records of ``<results>/<ablation name>/``."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    @property
    def snapshot_path(self) -> Path:
        return self.root / "ablation.yaml"

    @property
    def jobs_path(self) -> Path:
        return self.root / "jobs.jsonl"

    def write_snapshot(self, ablation: Ablation) -> None:
        """Keep the swept ablation beside its runs, so ``colorbench status DIR`` knows every planned run."""
        rundir.write_text(self.snapshot_path, yaml.safe_dump(ablation.document, sort_keys=False))

    def read_snapshot(self) -> Ablation:
        """The ablation last swept into this folder."""
        if not self.snapshot_path.exists():
            raise ConfigError(f"{self.root}: not an ablation's results folder (no ablation.yaml)")
        return parse_ablation(yaml.safe_load(self.snapshot_path.read_text()), str(self.snapshot_path))

    def new_submitit_folder(self) -> Path:
        """A fresh folder for one sweep's submitit files (job ids restart when a cluster's records are purged)."""
        parent = self.root / "submitit"
        parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=time.strftime("%Y%m%d-%H%M%S-"), dir=parent))

    def existing_dirs(self, run: PlannedRun) -> list[Path]:
        """Directories named after ``run``'s id (with any suffix)."""
        if not self.root.is_dir():
            return []
        return sorted(p for p in self.root.iterdir()
                      if p.is_dir() and (p.name == run.run_id or p.name.startswith(run.run_id + "-")))

    def run_dir(self, run: PlannedRun) -> Path:
        """The run's directory: the existing one, else ``<root>/<run id>-<suffix>``."""
        existing = self.existing_dirs(run)
        return existing[0] if existing else self.root / run.dir_name

    def check_conflicts(self, runs: tuple[PlannedRun, ...] | list[PlannedRun]) -> None:
        """Raise :class:`RunDirConflict` listing every directory that holds another run than planned."""
        problems = []
        for run in runs:
            existing = self.existing_dirs(run)
            if len(existing) > 1:
                problems.append(f"run {run.run_id} has {len(existing)} directories: "
                                + ", ".join(p.name for p in existing))
            for path in existing:
                problem = _claim_problem(path, run)
                if problem:
                    problems.append(f"{path}: {problem}")
        if problems:
            raise RunDirConflict(f"{self.root}: refusing to touch runs whose directories hold something else "
                                 "(move them away or use another --results folder):\n  " + "\n  ".join(problems))

    def record_job(self, run: PlannedRun, **fields) -> None:
        """Append a job record for ``run`` (executor, job id, submitit folder, ...)."""
        record = {"run_id": run.run_id, "run_dir": str(self.run_dir(run)), "time": time.time(), **fields}
        rundir.append_jsonl(self.jobs_path, record)

    def latest_jobs(self) -> dict[str, dict]:
        """The latest job record of each run id."""
        return {record["run_id"]: record for record in rundir.read_jsonl(self.jobs_path)}


def _claim_problem(path: Path, run: PlannedRun) -> str | None:
    """Why ``path`` does not hold ``run`` (None when it does, or holds nothing yet)."""
    claim = path / "config.yaml"
    if not claim.exists():
        return None
    try:
        record = yaml.safe_load(claim.read_text()) or {}
        stored = config_from_dict(record.get("config", {}))
    except (yaml.YAMLError, ConfigError) as err:
        return f"config.yaml cannot be read as a run config ({err})"
    if record.get("run_id") != run.run_id:
        return f"holds run {record.get('run_id')!r}, not {run.run_id!r}"
    if run_id(stored) != run.run_id:
        return f"config.yaml says run {run.run_id!r} but its config is run {run_id(stored)!r}"
    return None
