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

import codecs
import contextlib
import json
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Iterator

from bench.config import ConfigError, config_from_dict, read_yaml, yamlio
from bench.run import rundir
from bench.run.identity import run_id, same_run
from bench.sweep.ablation import Ablation, PlannedRun, parse_ablation

EXECUTORS = ("slurm", "local", "debug")


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


def unreadable(path: Path, sample: int | None = None) -> str | None:
    """Why the file ``path`` cannot be read as text: ``"<path>: <why>"``; None when it is absent or text.

    Binary garbage, another encoding, or a directory where the file should be.  With ``sample``
    only the first and last ``sample`` bytes are checked (``colorbench status`` polls many runs).
    """
    if not path.exists() and not path.is_symlink():
        return None
    try:
        with open(path, "rb") as handle:
            head = handle.read(sample if sample is not None else -1)
            size = os.fstat(handle.fileno()).st_size
            tail_at = max(len(head), size - sample) if sample is not None else size
            handle.seek(tail_at)
            tail = handle.read()
    except OSError as err:
        return f"{path}: cannot be read ({err.strerror or err})"
    skip = next((i for i, byte in enumerate(tail[:4]) if byte & 0xC0 != 0x80), 0)  # the rest of a cut character
    for offset, data, final in ((0, head, not tail), (tail_at + skip, tail[skip:], True)):
        try:
            codecs.getincrementaldecoder("utf-8")().decode(data, final=final)  # a character cut at the end is fine
        except UnicodeDecodeError as err:
            return f"{path}: not UTF-8 text (byte 0x{data[err.start]:02x} at offset {offset + err.start})"
    return None


def read_records(path: Path) -> list[dict]:
    """The JSON records of the JSONL file ``path`` (lines that are not records skipped); ``ValueError`` naming the
    file when it cannot be read as text at all."""
    problem = unreadable(path)
    if problem is not None:
        raise ValueError(problem)
    try:
        return list(rundir.read_jsonl(path))
    except RecursionError:  # a line of thousands of nested brackets
        return [record for record in (_json_line(line) for line in path.read_text().splitlines())
                if isinstance(record, dict)]


def _json_line(line: str) -> Any:
    try:
        return json.loads(line)
    except (ValueError, RecursionError):
        return None


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
        if not self.snapshot_path.exists():
            raise ConfigError(f"{self.root}: not an ablation's results folder (no ablation.yaml)")
        data = read_yaml(self.snapshot_path, "ablation snapshot")
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
        """The latest job record of each run id.

        A jobs.jsonl that cannot be read, and records that are not job records, are warnings
        (:class:`ResultsWarning`): the runs' states then come from their directories alone.
        """
        try:
            records = read_records(self.jobs_path)
        except ValueError as err:
            warn(f"{err}; the runs' job states are not known, their states come from their directories")
            return {}
        jobs = {record["run_id"]: record for record in records if _is_job_record(record)}
        skipped = sum(not _is_job_record(record) for record in records)
        if skipped:
            warn(f"{self.jobs_path}: {skipped} of {len(records)} records are not job records (skipped)")
        return jobs


def _claim_problem(path: Path, run: PlannedRun) -> str | None:
    """Why ``path`` does not hold ``run`` (None when it does, or holds nothing yet)."""
    claim = path / "config.yaml"
    if not claim.exists():
        return None
    if unreadable(claim):  # garbage, not another run's claim: `colorbench status` shows the run as broken
        return None
    try:
        record = yamlio.read(claim) or {}
        if not isinstance(record, dict) or not isinstance(record.get("config", {}), dict):
            raise ConfigError("not a mapping with a config mapping")
        stored = config_from_dict(record.get("config", {}))
    except (OSError, yamlio.YamlError, ConfigError) as err:
        return f"config.yaml cannot be read as a run config ({err})"
    claimed, data = record.get("run_id"), record.get("data_id")
    if not isinstance(claimed, str) or not same_run(run.run_id, claimed):
        return f"holds run {claimed!r}, not {run.run_id!r}"
    if not isinstance(data, str):
        return f"config.yaml says run {claimed!r} but names no data id"
    if run_id(stored, data) != claimed:
        return f"config.yaml says run {claimed!r} but its config is run {run_id(stored, data)!r}"
    return None


def _is_job_record(record: Any) -> bool:
    """Whether ``record`` has the fields ``colorbench status`` reads, of their types (jobs.jsonl is input too)."""
    if not (isinstance(record, dict) and isinstance(record.get("run_id"), str) and record.get("executor") in EXECUTORS
            and isinstance(record.get("time"), (int, float)) and isinstance(record.get("folder", ""), str)
            and isinstance(record.get("error", ""), str)):
        return False
    job_id = record.get("job_id")
    if record["executor"] == "local":
        return ((job_id is None or isinstance(job_id, str)) and isinstance(record.get("pid"), int)
                and isinstance(record.get("pid_start"), (int, type(None))))
    return isinstance(job_id, str)
