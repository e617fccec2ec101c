"""Compare two run directories file by file: what a resumed run must share with an uninterrupted one.

``run_differences(a, b)`` lists every difference between the files of two run directories
of the same run, as lines a person can read; an empty list means they are the same run,
written the same way.  Every file counts, byte for byte (checkpoint.pt, samples/*.png,
data_manifest.json ...), except for three things that say when and where a run was
written rather than what it computed:

* the timing fields of ``stats.jsonl`` records (:data:`bench.run.rundir.TIMING_FIELDS`),
* the ``environment`` block of ``config.yaml`` (host, versions, thread count, git state
  of the process that started the run),
* the ``run_dir`` entry of ``DONE`` (the directory's own path).

A checkpoint (``*.pt``) whose bytes differ is compared by content: every tensor bit for bit
(dtype and shape included) and every other value equal.  Its bytes can differ where the
contents do not, because pickle writes a string shared by two entries once and refers to it
after, and a resumed run's strings come from a file rather than from the code.

Used by the resume tests and by ``benchmarks/fault_injection.py``.
"""
from __future__ import annotations

import json
from pathlib import Path

import yaml

from bench.run.rundir import TIMING_FIELDS


def run_differences(a: str | Path, b: str | Path, limit: int = 20) -> list[str]:
    """Differences between run directories ``a`` and ``b`` (at most ``limit`` of them); [] when identical."""
    a, b = Path(a), Path(b)
    files_a, files_b = _files(a), _files(b)
    found = [f"only in {a}: {name}" for name in sorted(files_a - files_b)]
    found += [f"only in {b}: {name}" for name in sorted(files_b - files_a)]
    for name in sorted(files_a & files_b):
        difference = _compare(a / name, b / name, name)
        if difference:
            found.append(f"{name}: {difference}")
        if len(found) >= limit:
            break
    return found[:limit]


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()} if root.is_dir() else set()


def _compare(path_a: Path, path_b: Path, name: str) -> str | None:
    bytes_a, bytes_b = path_a.read_bytes(), path_b.read_bytes()
    if bytes_a == bytes_b:
        return None
    try:
        if name.endswith(".jsonl"):
            return _compare_jsonl(bytes_a, bytes_b, drop=TIMING_FIELDS if name == "stats.jsonl" else ())
        if name == "config.yaml":
            from bench.config.yamlio import loads  # colorbench's one YAML reader: no aliases (bombs), no duplicate keys
            meta_a, meta_b = loads(bytes_a.decode(), str(path_a)), loads(bytes_b.decode(), str(path_b))
            if isinstance(meta_a, dict) and isinstance(meta_b, dict):
                meta_a.pop("environment", None)
                meta_b.pop("environment", None)
                return None if meta_a == meta_b else _first_key_difference(meta_a, meta_b)
        if name == "DONE":
            done_a, done_b = json.loads(bytes_a), json.loads(bytes_b)
            if isinstance(done_a, dict) and isinstance(done_b, dict):
                done_a.pop("run_dir", None)
                done_b.pop("run_dir", None)
                return None if done_a == done_b else _first_key_difference(done_a, done_b)
    except (ValueError, yaml.YAMLError) as err:
        return f"cannot be compared ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})"
    if name.endswith(".pt"):
        return _checkpoint_difference(path_a, path_b)
    return f"different bytes ({len(bytes_a)} and {len(bytes_b)} bytes)"


def _compare_jsonl(bytes_a: bytes, bytes_b: bytes, drop) -> str | None:
    lines_a, lines_b = bytes_a.decode().splitlines(), bytes_b.decode().splitlines()
    for number, (line_a, line_b) in enumerate(zip(lines_a, lines_b), start=1):
        record_a, record_b = json.loads(line_a), json.loads(line_b)
        if isinstance(record_a, dict) and isinstance(record_b, dict):
            record_a = {k: v for k, v in record_a.items() if k not in drop}
            record_b = {k: v for k, v in record_b.items() if k not in drop}
        if record_a != record_b:
            return f"line {number} differs: {_first_key_difference(record_a, record_b)}"
    if len(lines_a) != len(lines_b):
        return f"{len(lines_a)} and {len(lines_b)} lines"
    return None


def _first_key_difference(a, b) -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            if a.get(key, _MISSING) != b.get(key, _MISSING):
                return f"{key}: {_short(a.get(key, _MISSING))} vs {_short(b.get(key, _MISSING))}"
    return f"{_short(a)} vs {_short(b)}"


class _Missing:
    def __repr__(self) -> str:
        return "(absent)"


_MISSING = _Missing()


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _checkpoint_difference(path_a: Path, path_b: Path) -> str | None:
    """The first entry in which two checkpoints differ; None when their contents are identical."""
    import torch
    try:
        state_a = torch.load(path_a, map_location="cpu", weights_only=True)
        state_b = torch.load(path_b, map_location="cpu", weights_only=True)
    except Exception as err:  # a damaged file: the bytes differ, that is all there is to say
        return f"different bytes, and one cannot be loaded ({type(err).__name__})"
    where = _state_difference(state_a, state_b, "")
    return None if where is None else f"different contents, first at {where}"


def _state_difference(a, b, where: str) -> str | None:
    import torch
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        same = (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.dtype == b.dtype
                and a.shape == b.shape and _same_bits(a, b))
        return None if same else where or "."
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            if key not in a or key not in b:
                return f"{where}/{key}"
            found = _state_difference(a[key], b[key], f"{where}/{key}")
            if found:
                return found
        return None
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        if len(a) != len(b):
            return where or "."
        for i, (x, y) in enumerate(zip(a, b)):
            found = _state_difference(x, y, f"{where}/{i}")
            if found:
                return found
        return None
    return None if a == b else where or "."


def _same_bits(a, b) -> bool:
    """Bit-for-bit equality (torch.equal holds 0.0 == -0.0 and NaN != NaN)."""
    import torch
    try:
        return torch.equal(a.detach().cpu().contiguous().view(-1).view(torch.uint8),
                           b.detach().cpu().contiguous().view(-1).view(torch.uint8))
    except RuntimeError:  # a dtype without a byte view
        return torch.equal(a, b)
