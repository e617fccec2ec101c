"""Files of a run directory: atomic writes, append-only JSONL, and the environment record.

A run directory holds config.yaml, stats.jsonl, metrics.jsonl, data_manifest.json,
samples/, checkpoint.pt and, last, DONE (or FAILED).  Whole files are written to a
temporary name in the same folder and renamed, so a reader never sees half a file.
"""
from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
import torchvision


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
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(path: Path, text: str) -> None:
    """Atomically write ``text`` to ``path``."""
    atomic_write(path, lambda handle: handle.write(text))


def write_json(path: Path, data: Any) -> None:
    """Atomically write ``data`` as indented JSON."""
    write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def append_jsonl(path: Path, record: dict) -> None:
    """Append one JSON record as a line (a partial last line from a crash is ignored by read_jsonl)."""
    with open(path, "a") as handle:
        handle.write(json.dumps(record, sort_keys=True) + "\n")


def read_jsonl(path: Path) -> Iterator[dict]:
    """Records of a JSONL file; a missing file is empty and a torn last line is skipped."""
    if not path.exists():
        return
    for line in path.read_text().splitlines():
        try:
            yield json.loads(line)
        except json.JSONDecodeError:
            continue


def truncate_jsonl(path: Path, last_step: int) -> None:
    """Drop records written after ``last_step`` (work a resumed run will redo), atomically."""
    if not path.exists():
        return
    kept = [r for r in read_jsonl(path) if r.get("step", 0) <= last_step]
    write_text(path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in kept))


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=Path(__file__).resolve().parent, capture_output=True,
                             text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def environment(device: torch.device) -> dict:
    """Code version and software/hardware the run executes on."""
    commit = _git("rev-parse", "HEAD")
    dirty = bool(_git("status", "--porcelain", "--untracked-files=no")) if commit else None
    device_name = (torch.cuda.get_device_name(device) if device.type == "cuda"
                   else platform.processor() or platform.machine())
    return {
        "git_commit": commit,
        "git_dirty": dirty,
        "python": platform.python_version(),
        "torch": str(torch.__version__),
        "torchvision": str(torchvision.__version__),
        "device": str(device),
        "device_name": device_name,
        "torch_threads": torch.get_num_threads(),
        "hostname": socket.gethostname(),
    }


def read_json(path: Path) -> Any:
    """Parse a JSON file."""
    return json.loads(path.read_text())
