"""Files of a run directory: atomic writes, append-only JSONL, summaries and the directory lock.

A run directory holds config.yaml, stats.jsonl, metrics.jsonl, data_manifest.json,
samples/, checkpoint.pt and, last, DONE (or FAILED).  Whole files are written to a
temporary name in the same folder and renamed, so a reader never sees half a file.
While a process trains a run it holds an exclusive lock on the directory (``.lock``,
which names its PID and host), so a second writer is refused instead of mixing its
records into the first one's.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator

from bench.config import ConfigError

# Fields of stats.jsonl records that are timings: they vary between two runs of one config
# (and between a resumed run and an uninterrupted one); every other field of a run directory
# is reproducible (bench/run/compare.py compares run directories without them).
TIMING_FIELDS = frozenset({"images_per_s"})

LOCK_FILE = ".lock"


class RunDirError(ConfigError):
    """A run directory holds something that is not this run's, is damaged, or is in use by another process."""


def atomic_write(path: Path, write: Callable[[Any], None], mode: str = "w") -> None:
    """Call ``write(fileobj)`` on a temporary file beside ``path``, then rename it to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        _name_path(err, path)
        raise


def _name_path(err: BaseException, path: Path) -> None:
    """Give the OSError behind ``err`` (itself, or the one torch.save's RuntimeError hides in its context) the
    path it was writing, so that "No space left on device" says where; errors are otherwise unchanged."""
    seen = 0
    while err is not None and seen < 8:
        if isinstance(err, OSError) and err.errno is not None:
            if err.filename is None:
                err.filename = str(path)
            return
        err, seen = err.__cause__ or err.__context__, seen + 1


def write_text(path: Path, text: str) -> None:
    """Atomically write ``text`` to ``path``."""
    atomic_write(path, lambda handle: handle.write(text))


def write_json(path: Path, data: Any) -> None:
    """Atomically write ``data`` as indented JSON."""
    write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def append_jsonl(path: Path, record: dict) -> None:
    """Append one JSON record as a line (a partial last line from a crash is ignored by read_jsonl)."""
    try:
        with open(path, "a") as handle:
            handle.write(json.dumps(record, sort_keys=True) + "\n")
    except OSError as err:  # a full disk: name the file
        _name_path(err, path)
        raise


def read_jsonl(path: Path, strict: bool = False) -> Iterator[dict]:
    """Records of a JSONL file; a missing file is empty and a torn last line is skipped.

    Without ``strict`` every line that is not a JSON record is skipped; with it only a torn
    last line is (what an interrupted append leaves), and any other raises :class:`RunDirError`
    naming the file and the line.
    """
    if not path.exists():
        return
    lines = path.read_text().splitlines()
    last = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if not isinstance(record, dict):
                raise ValueError(f"a JSON {type(record).__name__}, not a record")
        except ValueError as err:
            if strict and number - 1 != last:
                reason = err.msg if isinstance(err, json.JSONDecodeError) else str(err)
                raise RunDirError(f"{path}: line {number} is not a JSON record ({reason}); an interrupted run "
                                  "leaves at most a torn last line, so the file was damaged or edited: repair or "
                                  "remove that line") from None
            continue
        yield record


def truncate_jsonl(path: Path, last_step: int) -> None:
    """Drop records written after ``last_step`` (work a resumed run will redo) and a torn last line, atomically.

    Any other line that is not a record is an error (:class:`RunDirError`), and the file is left as it is.
    """
    if not path.exists():
        return
    kept = [r for r in read_jsonl(path, strict=True) if r.get("step", 0) <= last_step]
    text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in kept)
    if text != path.read_text():
        write_text(path, text)


def read_summary(path: Path, advice: str) -> dict:
    """A JSON object file such as DONE or FAILED; anything else raises :class:`RunDirError` ending in ``advice``."""
    try:
        data = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as err:
        reason = err.msg if isinstance(err, json.JSONDecodeError) else type(err).__name__
        raise RunDirError(f"{path}: not a valid summary ({reason}); {advice}") from None
    if not isinstance(data, dict):
        raise RunDirError(f"{path}: not a valid summary (a JSON {type(data).__name__}); {advice}")
    return data


def remove_stale_temporary_files(run_dir: Path) -> list[Path]:
    """Delete the temporary files of atomic writes a killed process left behind (``.<name>.*.tmp``).

    Only while holding the directory's lock: no other process can be writing them then.
    """
    removed = []
    for folder in (run_dir, run_dir / "samples"):
        for path in folder.glob(".*.tmp") if folder.is_dir() else ():
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


@contextlib.contextmanager
def locked(run_dir: Path) -> Iterator[None]:
    """Hold the exclusive lock of ``run_dir`` (``flock`` on ``run_dir/.lock``) for the ``with`` block.

    A second process is refused with :class:`RunDirError` naming the holder's PID and host.  The
    lock belongs to the open file, so it ends with the process that holds it, however it ends: the
    file a killed process leaves behind blocks nobody.  The file is removed on release.
    """
    path = run_dir / LOCK_FILE
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RunDirError(f"{run_dir}: in use by another colorbench process ({_holder(path)}; lock file "
                              f"{path}); wait for it to end or stop it, or use another directory") from None
        except OSError as err:  # a file system without locks (some network mounts): go on, unprotected
            os.close(fd)
            warnings.warn(f"{run_dir}: cannot lock {path} ({err}); a second process training this directory "
                          "would not be refused", stacklevel=3)
            yield
            return
        try:
            same_file = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same_file = False
        if same_file:
            break
        os.close(fd)  # the holder released and removed the file between our open and our lock: again
    try:
        holder = {"pid": os.getpid(), "host": socket.gethostname(),
                  "since": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "command": " ".join(sys.argv)[:300]}
        os.ftruncate(fd, 0)
        os.write(fd, (json.dumps(holder) + "\n").encode())
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # before unlocking: whoever locks next finds the file it locked gone and opens anew
        os.close(fd)


def _holder(path: Path) -> str:
    for _ in range(20):  # the holder writes its record just after taking the lock
        try:
            holder = json.loads(path.read_text())
            return f"pid {holder['pid']} on host {holder['host']}, since {holder['since']}"
        except (OSError, ValueError, KeyError, TypeError):
            time.sleep(0.05)
    return "pid and host unknown"


def read_json(path: Path) -> Any:
    """Parse a JSON file."""
    return json.loads(path.read_text())
