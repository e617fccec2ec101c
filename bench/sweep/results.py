"""The results folder of one ablation.

    results/<ablation>/
        ablation.yaml                       the ablation as last swept (base with --set applied)
        jobs.jsonl                          one record per queued or submitted run (the latest counts)
        submitit/<sweep>/                   submitit's pickles and every job's stdout/stderr, new per sweep
        <config-id>-s<seed>-<suffix>/       one run directory per run (see bench.training.train)

A run is found by its id, whatever its suffix, so a run directory keeps its name when the
readable part of a later sweep's names changes.  A directory that holds another run than
its name says is reported as a conflict and never written to.

Everything here is read as text colorbench wrote (YAML through ``bench.config.yamlio``, JSON), never
unpickled, so looking at a results folder from elsewhere runs no code of it.  A file that
cannot be read is a :class:`ResultsWarning` naming it, never a crash of the whole folder.
"""
from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Iterator

from bench.config import ConfigError, yamlio
from bench.run import rundir
from bench.run.identity import same_run
from bench.sweep.ablation import Ablation, PlannedRun, parse_ablation

MAX_WARNINGS_PER_FILE = 3  # a file with many bad lines is named, not printed whole


class ResultsWarning(UserWarning):
    """A file of a results folder cannot be read (fully); the message names it."""


def warn(message: str) -> None:
    """A :class:`ResultsWarning` on one line (parser errors span several)."""
    warnings.warn(" ".join(message.split()), ResultsWarning, stacklevel=3)


@contextlib.contextmanager
def printed_warnings() -> Iterator[None]:
    """Print each results warning once, as ``colorbench: warning: ...`` on stderr, after the work inside."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResultsWarning)
        try:
            yield
        finally:
            messages = dict.fromkeys(str(w.message) for w in caught if issubclass(w.category, ResultsWarning))
            others = [w for w in caught if not issubclass(w.category, ResultsWarning)]
    for message in messages:
        print(f"colorbench: warning: {message}", file=sys.stderr)
    for warning in others:
        warnings.showwarning(warning.message, warning.category, warning.filename, warning.lineno)


def read_records(path: Path, problems: list[str] | None = None) -> list[dict]:
    """The valid records of the JSONL file ``path`` (``bench.run.rundir.read_jsonl``: each line that is not one is
    skipped and named, ``"<path>: line <n>: <why>"``, in ``problems``); :class:`bench.run.rundir.RunFileError` (a
    ValueError) naming the file when it cannot be read as text at all."""
    return rundir.read_jsonl(path, problems=problems)


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
        rundir.write_text(self.snapshot_path, yamlio.dumps(ablation.document))

    def read_snapshot(self) -> Ablation:
        """The ablation last swept into this folder."""
        if not os.path.lexists(self.snapshot_path):
            raise ConfigError(f"{self.root}: not an ablation's results folder (no ablation.yaml)")
        data = rundir.read_yaml(self.snapshot_path)
        if not isinstance(data, dict):
            raise ConfigError(f"{self.snapshot_path}: not an ablation (expected a mapping)")
        return parse_ablation(data, str(self.snapshot_path))

    def new_submitit_folder(self) -> Path:
        """A fresh folder for one sweep's submitit files (job ids restart when a cluster's records are purged)."""
        parent = self.root / "submitit"
        parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=time.strftime("%Y%m%d-%H%M%S-"), dir=parent))

    def existing_dirs(self, run: PlannedRun) -> list[Path]:
        """Directories named after ``run``'s id (with any suffix; any data id where its data is not here)."""
        if not self.root.is_dir():
            return []
        id_parts = run.run_id.count("-") + 1
        return sorted(p for p in self.root.iterdir()
                      if p.is_dir() and same_run(run.run_id, "-".join(p.name.split("-")[:id_parts])))

    def run_dir(self, run: PlannedRun) -> Path:
        """The run's directory: the existing one, else ``<root>/<run id>-<suffix>``."""
        existing = self.existing_dirs(run)
        return existing[0] if existing else self.root / run.dir_name

    def run_dir_problem(self, run: PlannedRun) -> rundir.RunDirError | None:
        """Why the directory of ``run`` is not consistent (``bench.run.rundir.check_run_dir``, the rule every command
        applies; one directory per run): a :class:`bench.run.rundir.ForeignRunError` where its files name another
        run; None when it is consistent or not there yet."""
        existing = self.existing_dirs(run)
        if len(existing) > 1:
            return rundir.ForeignRunError(f"run {run.run_id} has {len(existing)} directories: "
                                          + ", ".join(p.name for p in existing))
        return rundir.run_dir_problem(existing[0], run.run_id) if existing else None

    def check_conflicts(self, runs: tuple[PlannedRun, ...] | list[PlannedRun]) -> None:
        """Raise :class:`RunDirConflict` listing every directory that holds another run than planned.

        A directory whose files cannot be read is not a conflict: its run is broken, and left alone.
        """
        problems = [str(problem) for run in runs
                    if isinstance(problem := self.run_dir_problem(run), rundir.ForeignRunError)]
        if problems:
            raise RunDirConflict(f"{self.root}: refusing to touch runs whose directories hold something else "
                                 "(move them away or use another --results folder):\n  " + "\n  ".join(problems))

    def record_job(self, run: PlannedRun, **fields) -> None:
        """Append a job record for ``run`` (executor, job id, submitit folder, ...)."""
        record = {"run_id": run.run_id, "run_dir": str(self.run_dir(run)), "time": time.time(), **fields}
        rundir.append_jsonl(self.jobs_path, record)

    def latest_jobs(self) -> dict[str, dict]:
        """The latest job record of each run id.

        A jobs.jsonl that cannot be read, and records that are not job records (each named by its
        line), are warnings (:class:`ResultsWarning`): the runs' states then come from their
        directories alone.
        """
        problems: list[str] = []
        try:
            records = read_records(self.jobs_path, problems)
        except ValueError as err:
            warn(f"{err}; the runs' job states are not known, their states come from their directories")
            return {}
        for problem in problems[:MAX_WARNINGS_PER_FILE]:
            warn(f"{problem} (skipped)")
        if len(problems) > MAX_WARNINGS_PER_FILE:
            warn(f"{self.jobs_path}: {len(problems) - MAX_WARNINGS_PER_FILE} more lines are not job records (skipped)")
        jobs = {record["run_id"]: record for record in records if _is_job_record(record)}
        skipped = sum(not _is_job_record(record) for record in records)
        if skipped:
            warn(f"{self.jobs_path}: {skipped} of {len(records)} records lack their executor's job id or process "
                 "(skipped)")
        return jobs


def _is_job_record(record: dict) -> bool:
    """Whether a job record (its fields' types checked by ``bench.run.rundir``) has what its executor needs: a
    local job its process, the others their job id."""
    if record["executor"] == "local":
        return "pid" in record
    return isinstance(record.get("job_id"), str)
