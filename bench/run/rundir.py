"""Files of a run directory: the one reader of run and results files, atomic writes, append-only JSONL,
the rule for a consistent run directory, and the directory lock.

A run directory holds config.yaml, stats.jsonl, metrics.jsonl, data_manifest.json,
samples/, checkpoint.pt and, last, DONE (or FAILED).  Whole files are written to a
temporary name in the same folder and renamed, so a reader never sees half a file.
While a process trains or scores a run it holds an exclusive lock on the directory
(``.lock``, which names its PID and host), so a second writer is refused instead of mixing
its records into the first one's.

Every command reads these files (and a results folder's jobs.jsonl and job logs) through
this module, because a results folder may come from anyone: only regular files are read (a
FIFO would block the reader forever, a device such as /dev/zero never ends), never a link
that leads out of its folder, never more than a cap per kind of file, and every record is
checked field by field, a problem named by file and line (:class:`RunFileError`).
:func:`check_run_dir` is the one rule of what makes a run directory consistent, which
``train``, ``eval``, ``status``, ``aggregate`` and ``report`` all apply.

Nothing here imports torch: ``colorbench status`` reads checkpoint.pt's run id and step with
:func:`checkpoint_header`, which unpickles no object.
"""
from __future__ import annotations

import codecs
import collections
import contextlib
import fcntl
import json
import os
import pickle
import re
import socket
import stat
import sys
import tempfile
import time
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator

from bench.config import ConfigError, config_from_dict, yamlio
from bench.run.identity import run_id as config_run_id
from bench.run.identity import same_run

# Fields of stats.jsonl records that are timings: they vary between two runs of one config
# (and between a resumed run and an uninterrupted one); every other field of a run directory
# is reproducible (bench/run/compare.py compares run directories without them).
TIMING_FIELDS = frozenset({"images_per_s"})

LOCK_FILE = ".lock"
CONFIG_FILE = "config.yaml"
CHECKPOINT_FILE = "checkpoint.pt"
DONE_FILE = "DONE"
FAILED_FILE = "FAILED"
# Files a run writes after its config.yaml: one of them without config.yaml is a directory whose
# config.yaml was deleted, so which run they belong to can no longer be checked.
RUN_FILES = (CHECKPOINT_FILE, "stats.jsonl", "metrics.jsonl", "data_manifest.json", "samples", DONE_FILE, FAILED_FILE)

# The most colorbench reads of each kind of file.  What it writes stays far below: metrics.jsonl
# of 200 evaluations of 5,000 test images with per-image values is about 100 MB.
MAX_LOG_BYTES = 1 << 28  # stats.jsonl, metrics.jsonl, jobs.jsonl, data_manifest.json
MAX_SUMMARY_BYTES = 1 << 20  # DONE, FAILED, a job's outcome, the lock file
MAX_IMAGE_BYTES = 1 << 26  # a samples grid PNG
MAX_CHECKPOINT_HEADER_BYTES = 1 << 24  # checkpoint.pt's data.pkl (names and shapes; the weights lie beside it)
TAIL_BYTES = 1 << 16  # of a job's stderr, for its last lines
TORN_LINE = "; a torn last line, as an interrupted write leaves"  # ends the problem of such a line


class RunDirError(ConfigError):
    """A run directory holds something that is not this run's, is damaged, or is in use by another process."""


class ForeignRunError(RunDirError):
    """A run directory's files name another run than it holds or is planned for: never written to, never reported."""


class RunFileError(RunDirError):
    """A file of a run directory or results folder that colorbench refuses to read: not a regular file, a link
    leading out of its folder, larger than its cap, not UTF-8 text, or not a record of its kind (named by line)."""


# ---------------------------------------------------------------------------------------
# The one reader

def open_regular(path: str | Path, within: str | Path | None = None) -> BinaryIO | None:
    """``path`` open for reading; None when there is none.

    Refused with :class:`RunFileError`: a link whose target lies outside ``within`` (default: the
    file's own folder), and anything that is not a regular file.  The file is opened without
    waiting (``O_NONBLOCK``), so a FIFO is refused instead of blocking until a writer comes.
    """
    path = Path(path)
    if not os.path.lexists(path):
        return None
    base = os.path.realpath(within if within is not None else path.parent)
    real = os.path.realpath(path)
    if os.path.commonpath([base, real]) != base:
        link = f"a link to {real}, " if os.path.islink(path) else ""
        raise RunFileError(f"{path}: {link}outside {base}; colorbench reads no file outside the folder")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:  # a dangling link inside the folder, or removed meanwhile
        return None
    except OSError as err:
        raise RunFileError(f"{path}: cannot be read ({err.strerror or err})") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise RunFileError(f"{path}: {_file_kind(mode)}, not a regular file; colorbench reads only the files it writes")
    return os.fdopen(fd, "rb")


def _file_kind(mode: int) -> str:
    kinds = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))
    return next((name for test, name in kinds if test(mode)), "a special file")


def _size(n: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


def read_bytes(path: str | Path, limit: int, *, within: str | Path | None = None) -> bytes | None:
    """The bytes of the file ``path`` (None when absent), at most ``limit`` of them (:func:`open_regular`'s checks)."""
    handle = open_regular(Path(path), within)
    if handle is None:
        return None
    with handle:
        size = os.fstat(handle.fileno()).st_size
        data = handle.read(limit + 1) if size <= limit else b""
    if size > limit or len(data) > limit:  # a file growing while it is read is as large as it has become
        raise RunFileError(f"{path}: {_size(max(size, len(data)))}, more than the {_size(limit)} colorbench reads "
                           "of such a file")
    return data


def _utf8(path: Path, data: bytes, offset: int = 0, final: bool = True) -> str:
    try:
        return codecs.getincrementaldecoder("utf-8")().decode(data, final=final)
    except UnicodeDecodeError as err:
        raise RunFileError(f"{path}: not UTF-8 text (byte 0x{data[err.start]:02x} at offset {offset + err.start})"
                           ) from None


def read_text(path: str | Path, limit: int = MAX_LOG_BYTES, *, within: str | Path | None = None) -> str | None:
    """The UTF-8 text of the file ``path`` (None when absent); :class:`RunFileError` naming it otherwise."""
    data = read_bytes(path, limit, within=within)
    return None if data is None else _utf8(Path(path), data)


def read_tail(path: str | Path, size: int = TAIL_BYTES, *, within: str | Path | None = None) -> str | None:
    """The last ``size`` bytes of the file ``path`` as text (a cut or invalid character replaced); None when absent."""
    handle = open_regular(Path(path), within)
    if handle is None:
        return None
    with handle:
        handle.seek(max(0, os.fstat(handle.fileno()).st_size - size))
        return handle.read(size).decode("utf-8", errors="replace")


def read_json(path: str | Path, limit: int = MAX_LOG_BYTES, *, within: str | Path | None = None) -> Any:
    """The JSON value of the file ``path`` (e.g. data_manifest.json); :class:`RunFileError` naming it otherwise."""
    text = read_text(path, limit, within=within)
    if text is None:
        raise RunFileError(f"{path}: no such file")
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as err:
        raise RunFileError(f"{path}: not JSON ({_json_problem(err)})") from None


def read_yaml(path: str | Path, *, within: str | Path | None = None) -> Any:
    """The YAML value of the file ``path`` (``bench.config.yamlio``'s rules); None when absent."""
    data = read_bytes(path, yamlio.MAX_BYTES, within=within)
    if data is None:
        return None
    try:
        return yamlio.decode(data, str(path))
    except yamlio.YamlError as err:
        raise RunFileError(str(err)) from None


def _json_problem(err: BaseException) -> str:
    if isinstance(err, json.JSONDecodeError):
        return err.msg
    return "nested too deeply" if isinstance(err, RecursionError) else str(err)


# ---------------------------------------------------------------------------------------
# Records: what each field of each kind of record must be

def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _or_null(what: str, check: Callable[[Any], bool]) -> tuple[str, Callable[[Any], bool]]:
    return f"{what} or null", lambda value: value is None or check(value)


_JOB_ID = re.compile(r"[A-Za-z0-9_.-]{1,100}")  # SLURM's 123 or 123_4, a local PID, DEBUG_...; never a path
_STEP = ("an integer >= 0", lambda v: _is_int(v) and v >= 0)
_TOTAL = ("an integer >= 1", lambda v: _is_int(v) and v >= 1)
_NUMBER = ("a number", _is_number)
_TEXT = ("text", lambda v: isinstance(v, str))
_MAPPING = ("a mapping", lambda v: isinstance(v, dict))
_SCALAR_VALUES = ("a mapping of names to numbers or null",
                  lambda v: isinstance(v, dict) and all(x is None or _is_number(x) for x in v.values()))

# kind -> (required fields, optional fields, optional fields by prefix); other fields are let through, so that a
# later colorbench's records still read.  Older records lack the optional ones.
RECORD_FIELDS: dict[str, tuple[dict, dict, dict]] = {
    "stats": ({"step": _STEP},
              {"total_steps": _TOTAL, "epoch": _STEP, "lr": _NUMBER, "images_per_s": _or_null(*_NUMBER)},
              {"loss_": _or_null(*_NUMBER)}),
    "metrics": ({"step": _STEP, "metric": _TEXT},
                {"split": _or_null(*_TEXT), "source": _or_null(*_TEXT), "value": _or_null(*_NUMBER),
                 "epoch": _or_null(*_STEP), "n_images": _or_null(*_STEP), "unavailable": _or_null(*_TEXT),
                 "protocol": _or_null("a mapping or text", lambda v: isinstance(v, (dict, str))),
                 "detector": _or_null(*_TEXT), "dataset": _or_null(*_MAPPING),
                 "resolution": _or_null("[height, width]", lambda v: isinstance(v, list) and len(v) == 2
                                        and all(_is_int(x) and x > 0 for x in v)),
                 "per_image": _or_null("a list of numbers", lambda v: isinstance(v, list)
                                       and all(x is None or _is_number(x) for x in v)),
                 "image_ids": _or_null("a list of text", lambda v: isinstance(v, list)
                                       and all(isinstance(x, str) for x in v))},
                {}),
    "jobs": ({"run_id": _TEXT, "executor": ("slurm, local or debug", lambda v: v in ("slurm", "local", "debug")),
              "time": _NUMBER},
             {"job_id": _or_null("a job id (letters, digits, '_', '.', '-')",
                                 lambda v: isinstance(v, str) and _JOB_ID.fullmatch(v) is not None),
              "folder": _TEXT, "run_dir": _TEXT, "error": _TEXT, "pid": ("a process id", lambda v: _is_int(v) and v > 0),
              "pid_start": _or_null(*_STEP)},
             {}),
    "DONE": ({"step": _STEP, "total_steps": _TOTAL},
             {"state": ("done", lambda v: v == "done"), "run_id": _TEXT, "run_dir": _TEXT, "metrics": _SCALAR_VALUES},
             {}),
    "FAILED": ({}, {"step": _STEP, "reason": _TEXT, "losses": _MAPPING, "run_id": _TEXT}, {}),
}
KIND_OF_FILE = {"stats.jsonl": "stats", "metrics.jsonl": "metrics", "jobs.jsonl": "jobs", DONE_FILE: "DONE",
                FAILED_FILE: "FAILED"}


def record_problem(record: Any, kind: str | None) -> str | None:
    """Why ``record`` is not a record of ``kind`` (a key of :data:`RECORD_FIELDS`; None: any JSON object); None if it is."""
    if not isinstance(record, dict):
        return f"a JSON {type(record).__name__}, not a record"
    if kind is None:
        return None
    required, optional, prefixed = RECORD_FIELDS[kind]
    for name, (allowed, _) in required.items():
        if name not in record:
            return f"no {name!r} field (allowed: {allowed})"
    for name, value in record.items():
        rule = required.get(name) or optional.get(name) or next(
            (rule for prefix, rule in prefixed.items() if name.startswith(prefix)), None)
        if rule is not None and not rule[1](value):
            shown = json.dumps(value)
            return f"{name}: got {shown if len(shown) <= 60 else shown[:57] + '...'}; allowed: {rule[0]}"
    return None


def read_jsonl(path: str | Path, strict: bool = False, *, kind: str | None = None, problems: list[str] | None = None,
               within: str | Path | None = None) -> list[dict]:
    """The records of a JSONL file, each checked against its kind (default: by the file's name); [] when absent.

    A last line that is not JSON is a torn write (what an interrupted append leaves) and is
    skipped.  Any other line that is not a valid record is, with ``strict``, a
    :class:`RunFileError` naming the file and the line; without it the line is skipped and
    ``"<path>: line <n>: <why>"`` appended to ``problems``.  The file itself must pass the
    reader's checks (:func:`read_text`) either way.
    """
    path = Path(path)
    text = read_text(path, MAX_LOG_BYTES, within=within)
    if text is None:
        return []
    kind = kind or KIND_OF_FILE.get(path.name)
    lines = text.split("\n")
    last = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
    records = []
    for index, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (ValueError, RecursionError) as err:
            torn = index == last
            problem = f"not a JSON record ({_json_problem(err)})" + (TORN_LINE if torn else "")
            if torn:  # an interrupted append: dropped, as the run it belongs to drops the step it was writing
                if problems is not None:
                    problems.append(f"{path}: line {index + 1}: {problem}")
                continue
        else:
            problem = record_problem(record, kind)
            if problem is None:
                records.append(record)
                continue
        if strict:
            raise RunFileError(f"{path}: line {index + 1}: {problem}; an interrupted run leaves at most a torn last "
                               "line, so the file was damaged or edited: repair or remove that line")
        if problems is not None:
            problems.append(f"{path}: line {index + 1}: {problem}")
    return records


def truncate_jsonl(path: Path, last_step: int) -> None:
    """Drop records written after ``last_step`` (work a resumed run will redo) and a torn last line, atomically.

    Any other line that is not a record is an error (:class:`RunFileError`), and the file is left as it is.
    """
    text = read_text(path)
    if text is None:
        return
    kept = [r for r in read_jsonl(path, strict=True) if r["step"] <= last_step]
    new = "".join(json.dumps(r, sort_keys=True) + "\n" for r in kept)
    if new != text:
        write_text(path, new)


def read_summary(path: str | Path, advice: str, kind: str | None = None) -> dict:
    """A JSON object file such as DONE or FAILED, checked as a record of ``kind`` (default: by its name); anything else
    raises :class:`RunFileError` naming it and ending in ``advice``."""
    path = Path(path)
    try:
        text = read_text(path, MAX_SUMMARY_BYTES)
    except RunFileError as err:
        raise RunFileError(f"{err}; {advice}") from None
    if text is None:
        raise RunFileError(f"{path}: no such file; {advice}")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as err:
        raise RunFileError(f"{path}: not a valid summary ({_json_problem(err)}); {advice}") from None
    problem = record_problem(data, kind or KIND_OF_FILE.get(path.name))
    if problem is not None:
        raise RunFileError(f"{path}: not a valid summary ({problem}); {advice}")
    return data


# ---------------------------------------------------------------------------------------
# checkpoint.pt without torch

class _Opaque:
    """What every object of a peeked-at checkpoint becomes: nothing (no class it names is ever looked up)."""

    def __new__(cls, *args: Any, **kwargs: Any) -> _Opaque:
        return super().__new__(cls)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        pass

    def __setitem__(self, key: Any, value: Any) -> None:
        pass

    def append(self, value: Any) -> None:
        pass

    def extend(self, values: Any) -> None:
        pass


class _Peek(pickle.Unpickler):
    """Plain values as they are; every class, function and tensor storage as an :class:`_Opaque`: runs no code."""

    def find_class(self, module: str, name: str) -> Any:
        return collections.OrderedDict if (module, name) == ("collections", "OrderedDict") else _Opaque

    def persistent_load(self, pid: Any) -> None:
        return None


CHECKPOINT_ADVICE = "delete it to restart the run from step 0, or put back an intact copy"


def checkpoint_header(path: str | Path) -> dict | None:
    """checkpoint.pt's plain top-level values (``run_id``, ``step``, which parts it holds: the weights as None) read
    without torch and without running any of its code; None when there is none.

    A file that is not a torch checkpoint raises :class:`RunFileError` naming it.
    """
    path = Path(path)
    handle = open_regular(path)
    if handle is None:
        return None
    with handle:
        if os.fstat(handle.fileno()).st_size == 0:
            raise RunFileError(f"{path}: not a readable checkpoint (it is empty); {CHECKPOINT_ADVICE}")
        try:
            with zipfile.ZipFile(handle) as archive:
                member = next((info for info in archive.infolist() if info.filename.count("/") == 1
                               and info.filename.endswith("/data.pkl")), None)
                if member is None or member.file_size > MAX_CHECKPOINT_HEADER_BYTES:
                    raise zipfile.BadZipFile("no data.pkl of a size torch writes")
                with archive.open(member) as pickled:
                    state = _Peek(pickled).load()
        except RunFileError:
            raise
        except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError):
            raise RunFileError(f"{path}: not a readable checkpoint (truncated or not a torch zip archive); "
                               f"{CHECKPOINT_ADVICE}") from None
        except Exception as err:  # pickle raises many kinds on damaged data
            raise RunFileError(f"{path}: not a readable checkpoint ({type(err).__name__}); {CHECKPOINT_ADVICE}"
                               ) from None
    if not isinstance(state, dict):
        raise RunFileError(f"{path}: not a readable checkpoint (it holds no state dict); {CHECKPOINT_ADVICE}")
    return {key: value if isinstance(value, (str, int, float, bool, type(None))) else None
            for key, value in state.items() if isinstance(key, str)}


# ---------------------------------------------------------------------------------------
# The rule: a run directory is consistent when config.yaml, checkpoint.pt and DONE name one run

@dataclass(frozen=True)
class RunClaim:
    """What a run directory's config.yaml says: the run id, its data id (None: written before data ids) and config."""

    run_id: str
    data_id: str | None
    config: dict
    record: dict  # the whole file


def read_claim(run_dir: str | Path) -> RunClaim | None:
    """The run config.yaml of ``run_dir`` names (None when it has none); :class:`RunFileError` when it cannot be
    read, is not a run's config.yaml, or its config is not the run its run id names (edited by hand, or written by
    a colorbench whose result-affecting fields were others)."""
    path = Path(run_dir) / CONFIG_FILE
    if not os.path.lexists(path):
        return None
    record = read_yaml(path)
    advice = "restore it, or use another directory"
    if not isinstance(record, dict) or not isinstance(record.get("run_id"), str):
        raise RunFileError(f"{path}: not a run's config.yaml (no run id); {advice}")
    claimed, data, config = record["run_id"], record.get("data_id"), record.get("config")
    if not isinstance(config, dict):
        raise RunFileError(f"{path}: not a run's config.yaml (no 'config' mapping); {advice}")
    if data is not None:  # config.yaml of a colorbench before data ids names none, and cannot be checked
        if not isinstance(data, str):
            raise RunFileError(f"{path}: data_id: got {data!r}; allowed: text; {advice}")
        try:
            computed = config_run_id(config_from_dict(config), data)
        except ConfigError as err:
            raise RunFileError(f"{path}: its config is not valid ({err}); {advice}") from None
        if computed != claimed:
            raise ForeignRunError(f"{run_dir}: config.yaml says run {claimed!r} but its config is run {computed!r}; "
                                  f"{advice}")
    return RunClaim(claimed, data, config, record)


LOG_FILES = ("stats.jsonl", "metrics.jsonl")


def check_run_dir(run_dir: str | Path, expected: str | None = None, logs: bool = False) -> RunClaim | None:
    """The rule every command applies before it reads a run or writes to it; returns config.yaml's claim.

    A run directory is consistent when config.yaml can be read and its config is its run id
    (:func:`read_claim`), that id is ``expected`` (when given: the directory's planned run, by
    ``bench.run.identity.same_run``), and checkpoint.pt and DONE, where they say which run they
    are, say the same; a directory with run files but no config.yaml cannot be checked.  With
    ``logs`` (the commands that append to them: ``train``, ``eval``) every line of stats.jsonl and
    metrics.jsonl but a torn last one must be a record, too.
    Anything else raises :class:`RunDirError` naming the file: :class:`ForeignRunError` where a file
    names another run, :class:`RunFileError` where one cannot be read.  A directory without run
    files is consistent (None).
    """
    run_dir = Path(run_dir)
    claim = read_claim(run_dir)
    if claim is None:
        leftovers = [name for name in RUN_FILES if os.path.lexists(run_dir / name)]
        if leftovers:
            raise RunDirError(f"{run_dir}: holds {', '.join(leftovers)} but no config.yaml ({run_dir / CONFIG_FILE} "
                              "was deleted?), so which run they belong to cannot be checked; put config.yaml back, "
                              "or use another directory")
        return None
    if expected is not None and not same_run(expected, claim.run_id):
        raise ForeignRunError(f"{run_dir}: holds run {claim.run_id!r}, not {expected!r} (a different config, seed or "
                          "data); use another directory")
    for name, what, advice in ((DONE_FILE, "the summary", "delete it, and the run's command writes it anew from its "
                                "checkpoint"), (FAILED_FILE, "the failure", "delete it to run the run again")):
        path = run_dir / name
        if os.path.lexists(path):
            summary = read_summary(path, advice)
            if summary.get("run_id", claim.run_id) != claim.run_id:
                raise ForeignRunError(f"{path}: {what} of run {summary['run_id']!r}, not of this directory's run "
                                      f"{claim.run_id!r}; {advice}")
    header = checkpoint_header(run_dir / CHECKPOINT_FILE)
    if header is not None:
        advice = "delete it to restart this run from step 0, or put back this run's own checkpoint"
        owner = header.get("run_id")
        if not isinstance(owner, str):
            raise RunDirError(f"{run_dir / CHECKPOINT_FILE}: does not say which run it belongs to (no run id: an older "
                              f"colorbench wrote it, or another program); {advice}")
        if owner != claim.run_id:
            raise ForeignRunError(f"{run_dir / CHECKPOINT_FILE}: belongs to run {owner!r}, not to this directory's run "
                              f"{claim.run_id!r} (copied or moved here?); {advice}")
        step = header.get("step")
        if not _is_int(step) or step < 0:
            raise RunDirError(f"{run_dir / CHECKPOINT_FILE}: step {step!r} is not a step of this run (an integer "
                              f">= 0); {advice}")
    for log in LOG_FILES if logs else ():
        read_jsonl(run_dir / log, strict=True)
    return claim


def run_dir_problem(run_dir: str | Path, expected: str | None = None) -> RunDirError | None:
    """The error :func:`check_run_dir` raises for ``run_dir`` (its message one line naming the file); None when the
    directory is consistent."""
    try:
        check_run_dir(run_dir, expected)
    except RunDirError as err:
        return err
    return None


# ---------------------------------------------------------------------------------------
# Writing

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


def _open_for_writing(path: Path, flags: int) -> int:
    """A file descriptor of the regular file ``path`` (never a link, FIFO or device: a planted link to a file of
    the user's would otherwise be written to, and a FIFO would block)."""
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o644)
    except OSError as err:
        if os.path.islink(path):
            raise RunFileError(f"{path}: a link; colorbench writes only into files of its own, remove it") from None
        _name_path(err, path)
        raise
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise RunFileError(f"{path}: {_file_kind(mode)}, not a regular file; colorbench writes only into files of "
                           "its own, remove it")
    return fd


def append_jsonl(path: Path, record: dict) -> None:
    """Append one JSON record as a line (a partial last line from a crash is ignored by read_jsonl)."""
    fd = _open_for_writing(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        with os.fdopen(fd, "a") as handle:
            handle.write(json.dumps(record, sort_keys=True) + "\n")
    except OSError as err:  # a full disk: name the file
        _name_path(err, path)
        raise


def remove_stale_temporary_files(run_dir: Path) -> list[Path]:
    """Delete the temporary files of atomic writes a killed process left behind (``.<name>.*.tmp``).

    Only while holding the directory's lock: no other process can be writing them then.
    """
    removed = []
    for folder in (run_dir, run_dir / "samples"):
        for path in folder.glob(".*.tmp") if folder.is_dir() else ():
            if path.is_file() or path.is_symlink():
                path.unlink(missing_ok=True)
                removed.append(path)
    return removed


# ---------------------------------------------------------------------------------------
# The lock

@contextlib.contextmanager
def locked(run_dir: Path) -> Iterator[None]:
    """Hold the exclusive lock of ``run_dir`` (``flock`` on ``run_dir/.lock``) for the ``with`` block.

    A second process is refused with :class:`RunDirError` naming the holder's PID and host.  The
    lock belongs to the open file, so it ends with the process that holds it, however it ends: the
    file a killed process leaves behind blocks nobody.  The file is removed on release.
    """
    path = run_dir / LOCK_FILE
    while True:
        fd = _open_for_writing(path, os.O_RDWR | os.O_CREAT)
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
            holder = json.loads(read_text(path, MAX_SUMMARY_BYTES) or "")
            return f"pid {holder['pid']} on host {holder['host']}, since {holder['since']}"
        except (OSError, ValueError, KeyError, TypeError):
            time.sleep(0.05)
    return "pid and host unknown"
