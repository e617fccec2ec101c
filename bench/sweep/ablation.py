"""Ablation files: a grid of runs in one YAML file, validated and expanded before anything runs.

    name: skip-vs-gan                  # the results folder: results/<name>/
    description: U-Net skips and the adversarial term
    base:                              # overrides of the config defaults, shared by every run
      data: {dataset: samples, image_size: 64}
    grid:                              # axis -> values; the runs are every combination x every seed
      generator.skip_connections: [true, false]
      adversarial:                     # a zip group: its keys vary together, position by position
        zip:
          loss.adversarial: [bce, none]
          discriminator.arch: [patchgan, none]
    seeds: [0, 1]
    baseline: {generator.skip_connections: true, loss.adversarial: bce}   # default: first values
    roles: {generator.skip_connections: scientific, adversarial: scientific}
    slurm: {partition: gpu, time: "4:00:00", gpus: 1, cpus: 8, mem: 32G}

Roles follow the tuning playbook: scientific axes are what the ablation compares, nuisance
axes are tuned within each scientific value (the report keeps the best), and fixed axes
split the study (results are compared within each of their values, never across).
Mistakes (unknown keys, values the config rejects, an empty grid, two grid points that are
the same run) raise :class:`AblationError` naming the file, the key and the value.

Run ids cover the data (``bench.run.identity``): expanding fingerprints each distinct data
config once.  Where the data is not here, its runs carry ``UNKNOWN_DATA_ID`` and the reason
(``PlannedRun.data_problem``): enough to list, dry-run and report them, never to submit.
"""
from __future__ import annotations

import collections
import itertools
import json
import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bench.config import (
    INT_LIMIT,
    SEED_LIMIT,
    ConfigError,
    RunConfig,
    apply_overrides,
    config_from_dict,
    config_to_dict,
    describe_fields,
    flatten_keys,
    parse_override,
    read_yaml,
)
from bench.data.fingerprint import DataUnavailable, data_id
from bench.run.identity import UNKNOWN_DATA_ID, run_id
from bench.sweep.profiles import FULL, read_presets, resolve_paths, select_profile

# profile: which profile of a study file this expanded document is (see bench.sweep.profiles);
# reproduce: how the study maps onto its published table (read by bench.reproduce).
TOP_LEVEL_KEYS = ("name", "description", "base", "grid", "seeds", "baseline", "roles", "slurm", "profile",
                  "reproduce")
ROLES = ("scientific", "nuisance", "fixed")
SLURM_KEYS = ("partition", "time", "gpus", "cpus", "mem", "constraint", "account", "qos", "array_parallelism",
              "max_num_timeout", "signal_delay_s", "runs_per_task", "extra")
CONFIG_KEYS = frozenset(key for key, _, _ in describe_fields())
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
SUFFIX_MAX_CHARS = 80
NAME_MAX_CHARS = 100  # it names the results folder, and with "-<profile>" its report folder
MAX_RUNS = 2000  # grid points x seeds of one ablation file
MAX_SLURM_MINUTES = 365 * 24 * 60  # slurm.time: a year (SLURM's own limit is a partition's MaxTime)


class AblationError(ConfigError):
    """An ablation file is invalid; the message names the file, the key and the value."""


@dataclass(frozen=True)
class Axis:
    """One grid dimension: a config key, or a zip group of keys whose values change together."""

    name: str
    keys: tuple[str, ...]
    values: tuple[tuple[Any, ...], ...]  # one tuple per position, holding a value for each key
    role: str = "scientific"

    def point(self, position: int) -> dict[str, Any]:
        """The key -> value settings of this axis at ``position``."""
        return dict(zip(self.keys, self.values[position]))


@dataclass(frozen=True)
class SlurmSettings:
    """The ``slurm`` block: resources of every job of the array and how requeues are handled."""

    partition: str | None = None
    time_min: int = 24 * 60
    gpus: int | None = None
    cpus: int | None = None
    mem_gb: float | None = None
    constraint: str | None = None
    account: str | None = None
    qos: str | None = None
    array_parallelism: int | None = None
    max_num_timeout: int = 3  # time-outs (and, with time <= 10 min, preemptions) requeued before a job fails
    signal_delay_s: int = 90  # how long before the time limit the job gets USR2 to checkpoint
    runs_per_task: int = 1  # runs packed into one array task, each in its own process, sharing its GPU and CPUs
    extra: dict[str, Any] = field(default_factory=dict)  # further sbatch parameters, e.g. {mail-type: END}


@dataclass(frozen=True)
class PlannedRun:
    """One run of an ablation: a grid point at one seed."""

    run_id: str  # <config hash>-<data id>-s<seed>: the identity (bench.run.identity)
    dir_name: str  # the run id plus a readable suffix (not part of the identity)
    config: RunConfig
    point: dict[str, Any]  # every grid key -> its value at this point
    differing: dict[str, Any]  # dotted config keys whose value differs from the base config (seed aside)
    is_baseline: bool
    data_problem: str | None = None  # why the data id is UNKNOWN_DATA_ID; None when it is known

    @property
    def seed(self) -> int:
        return self.config.seed


@dataclass(frozen=True)
class Ablation:
    """A validated ablation file and its runs."""

    name: str
    description: str
    source: str  # the file it was read from, for messages
    base: dict
    axes: tuple[Axis, ...]
    seeds: tuple[int, ...]
    baseline: dict[str, Any]  # grid key -> value at the baseline point
    slurm: SlurmSettings
    runs: tuple[PlannedRun, ...]
    document: dict  # the file's contents with --set applied to base (what a results folder keeps)


def read_study(path: Path) -> tuple[Any, dict]:
    """A study (ablation) file's contents, relative paths made absolute, and the profile presets beside it."""
    data = read_yaml(path, "ablation file", AblationError)
    if not isinstance(data, dict):
        return data, {}
    return resolve_paths(data, path.parent), read_presets(path.parent, exclude=path)


def load_ablation(path: str | Path, overrides: list[str] | tuple[str, ...] = (), profile: str = FULL,
                  fetch_data: bool = False) -> Ablation:
    """Read, validate and expand an ablation file at ``profile``; ``overrides`` (``key=value``) change its base.

    ``fetch_data`` downloads a missing benchmark dataset (``data.download``) to compute the run ids.
    """
    path = Path(path)
    data, presets = read_study(path)
    if not isinstance(data, dict):
        raise AblationError(f"{path}: expected a mapping with the keys {', '.join(TOP_LEVEL_KEYS)}")
    return parse_ablation(select_profile(data, profile, presets, str(path)), str(path), overrides, fetch_data)


def parse_ablation(data: dict, source: str, overrides: list[str] | tuple[str, ...] = (),
                   fetch_data: bool = False) -> Ablation:
    """Validate the plain contents of an ablation file and expand its runs (see the module docstring)."""
    def fail(message: str) -> None:
        raise AblationError(f"{source}: {message}")

    unknown = sorted(str(k) for k in set(data) - set(TOP_LEVEL_KEYS))
    if "profiles" in data:
        fail("profiles: a study file's profiles are chosen with --profile (load_ablation), not parsed here")
    if unknown:
        fail(f"unknown key {unknown[0]!r}; allowed keys: {', '.join(TOP_LEVEL_KEYS)}")
    name = data.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        fail(f"name: got {name!r}; allowed: letters, digits, '.', '_' and '-' (it names the results folder)")
    if len(name) > NAME_MAX_CHARS:
        fail(f"name: got {len(name)} characters; allowed: at most {NAME_MAX_CHARS} (it names the results folder)")
    description = data.get("description", "")
    if not isinstance(description, str):
        fail(f"description: got {description!r}; allowed: text")

    axes = _parse_grid(data.get("grid"), fail)
    _check_size(axes, data.get("seeds", [0]), fail)
    axes = _apply_roles(axes, data.get("roles"), fail)
    base = _parse_base(data.get("base"), overrides, axes, fail)
    seeds = _parse_seeds(data.get("seeds", [0]), fail)
    baseline_positions = _parse_baseline(data.get("baseline"), axes, fail)
    slurm = _parse_slurm(data.get("slurm"), fail)
    runs = _expand(base, axes, seeds, baseline_positions, fail, _DataIds(fetch_data))
    baseline = {}
    for axis, position in zip(axes, baseline_positions):
        baseline.update(axis.point(position))
    document = {**data, "base": base}
    return Ablation(name, description, source, base, axes, seeds, baseline, slurm, tuple(runs), document)


def _parse_grid(grid: Any, fail) -> tuple[Axis, ...]:
    if not grid:
        fail("grid: empty; give at least one axis, e.g. grid: {generator.skip_connections: [true, false]}")
    if not isinstance(grid, dict):
        fail(f"grid: got {grid!r}; allowed: a mapping of axis -> list of values")
    axes, varied_by = [], {}
    for name, spec in grid.items():
        where = f"grid.{name}"
        if isinstance(spec, list):
            _check_config_key(where, name, fail)
            keys, columns = (name,), {name: spec}
        elif isinstance(spec, dict) and set(spec) == {"zip"} and isinstance(spec["zip"], dict) and spec["zip"]:
            if name in CONFIG_KEYS:
                fail(f"{where}: a zip group needs a name of its own, not the config key {name}")
            columns = spec["zip"]
            keys = tuple(columns)
            for key, values in columns.items():
                _check_config_key(f"{where}.zip.{key}", key, fail)
                if not isinstance(values, list):
                    fail(f"{where}.zip.{key}: got {values!r}; allowed: a list of values")
            lengths = {len(values) for values in columns.values()}
            if len(lengths) > 1:
                sizes = ", ".join(f"{key}: {len(values)}" for key, values in columns.items())
                fail(f"{where}.zip: lists of different lengths ({sizes}); "
                     "the keys of a zip group change together, so each needs one value per position")
        else:
            fail(f"{where}: got {spec!r}; allowed: a list of values, or a zip group {{zip: {{key: [values], ...}}}}")
        for key in keys:
            if key in varied_by:
                fail(f"{where}: {key} is already varied by grid.{varied_by[key]}")
            varied_by[key] = name
        values = tuple(zip(*(columns[key] for key in keys)))
        if not values:
            fail(f"{where}: empty list of values")
        axes.append(Axis(str(name), keys, values))
    return tuple(axes)


def _check_size(axes: tuple[Axis, ...], seeds: Any, fail) -> None:
    """Refuse, before expanding anything, a grid of more than MAX_RUNS runs (each costs milliseconds to expand and
    plan, and a SLURM job array holds at most MaxArraySize tasks, 1001 by default)."""
    points = math.prod(len(axis.values) for axis in axes)
    n_seeds = len(seeds) if isinstance(seeds, list) else 1
    if points * n_seeds > MAX_RUNS:
        fail(f"grid: {points * n_seeds} runs ({points} grid points x {n_seeds} seeds); allowed: at most {MAX_RUNS} "
             "runs in one ablation file (split it into several)")


def _check_config_key(where: str, key: Any, fail) -> None:
    if key == "seed":
        fail(f"{where}: seeds are given by the top-level list seeds: [...]")
    if key not in CONFIG_KEYS:
        fail(f"{where}: unknown config key {key!r}; an axis is a dotted config key (e.g. "
             "generator.skip_connections, see `colorbench train --help`) or a zip group")


def _apply_roles(axes: tuple[Axis, ...], roles: Any, fail) -> tuple[Axis, ...]:
    roles = roles or {}
    if not isinstance(roles, dict):
        fail(f"roles: got {roles!r}; allowed: a mapping of grid axis -> {' | '.join(ROLES)}")
    names = [axis.name for axis in axes]
    for name, role in roles.items():
        if name not in names:
            fail(f"roles.{name}: not a grid axis; the axes are {', '.join(names)}")
        if role not in ROLES:
            fail(f"roles.{name}: got {role!r}; allowed: {', '.join(ROLES)}")
    return tuple(replace(axis, role=roles.get(axis.name, "scientific")) for axis in axes)


def _parse_base(base: Any, overrides, axes: tuple[Axis, ...], fail) -> dict:
    base = {} if base is None else base
    if not isinstance(base, dict):
        fail(f"base: got {base!r}; allowed: a mapping of config keys, as in a config file")
    grid_keys = {key for axis in axes for key in axis.keys}
    for text in overrides:
        key = ".".join(parse_override(text)[0])
        if key in grid_keys:
            fail(f"--set {text}: {key} is a grid axis of this ablation; change the grid instead")
    base = apply_overrides(base, list(overrides))
    if "seed" in base:
        fail("base.seed: seeds are given by the top-level list seeds: [...]")
    try:
        config_from_dict(base)
    except ConfigError as err:
        fail(f"base: {err}")
    return base


def _parse_seeds(seeds: Any, fail) -> tuple[int, ...]:
    if not isinstance(seeds, list) or not seeds or not all(_is_int(s) for s in seeds):
        fail(f"seeds: got {seeds!r}; allowed: a non-empty list of integers")
    for seed in seeds:
        if not 0 <= seed < SEED_LIMIT:
            fail(f"seeds: got {seed}; allowed: 0 <= seed < 2**63")
    repeated = sorted(seed for seed, count in collections.Counter(seeds).items() if count > 1)
    if repeated:
        fail(f"seeds: {repeated[0]} appears more than once")
    return tuple(seeds)


def _parse_baseline(baseline: Any, axes: tuple[Axis, ...], fail) -> tuple[int, ...]:
    """The position on each axis of the baseline point (default: the first value of every axis)."""
    if baseline is None:
        return tuple(0 for _ in axes)
    if not isinstance(baseline, dict):
        fail(f"baseline: got {baseline!r}; allowed: a mapping of grid key -> value")
    grid_keys = [key for axis in axes for key in axis.keys]
    for key in baseline:
        if key not in grid_keys:
            fail(f"baseline.{key}: not a key of the grid; the grid keys are {', '.join(grid_keys)}")
    positions = []
    for axis in axes:
        given = {key: baseline[key] for key in axis.keys if key in baseline}
        matches = [i for i in range(len(axis.values))
                   if all(_same(axis.point(i)[key], value) for key, value in given.items())]
        if not given and len(matches) > 1:
            fail(f"baseline: no value for grid axis {axis.name}; give {axis.keys[0]}: one of "
                 f"{[v[0] for v in axis.values]}")
        if not matches:
            key, value = next(iter(given.items()))
            fail(f"baseline.{key}: got {value!r}; not a grid point of axis {axis.name} "
                 f"(its values: {[list(v) if len(v) > 1 else v[0] for v in axis.values]})")
        if len(matches) > 1:
            fail(f"baseline: {given} matches {len(matches)} positions of zip group {axis.name}; "
                 f"give more of its keys ({', '.join(axis.keys)})")
        positions.append(matches[0])
    return tuple(positions)


def _parse_slurm(block: Any, fail) -> SlurmSettings:
    block = {} if block is None else block
    if not isinstance(block, dict):
        fail(f"slurm: got {block!r}; allowed: a mapping with keys {', '.join(SLURM_KEYS)}")
    unknown = sorted(str(k) for k in set(block) - set(SLURM_KEYS))
    if unknown:
        fail(f"slurm: unknown key {unknown[0]!r}; allowed keys: {', '.join(SLURM_KEYS)}")
    settings = {}
    for key in ("partition", "constraint", "account", "qos"):
        if key in block:
            if not isinstance(block[key], str) or not block[key]:
                fail(f"slurm.{key}: got {block[key]!r}; allowed: a non-empty string")
            settings[key] = block[key]
    for key, minimum in (("gpus", 0), ("cpus", 1), ("array_parallelism", 1), ("max_num_timeout", 0),
                         ("signal_delay_s", 0), ("runs_per_task", 1)):
        if key in block:
            if not _is_int(block[key]) or not minimum <= block[key] < INT_LIMIT:
                fail(f"slurm.{key}: got {block[key]!r}; allowed: an integer >= {minimum} (below 2**63)")
            settings[key] = block[key]
    if "time" in block:
        settings["time_min"] = _minutes(block["time"], fail)
    if "mem" in block:
        settings["mem_gb"] = _gigabytes(block["mem"], fail)
    if "extra" in block:
        extra = block["extra"]
        if not isinstance(extra, dict) or not all(isinstance(v, str) or (isinstance(v, (int, float)) and _finite(v))
                                                  for v in extra.values()):
            fail(f"slurm.extra: got {extra!r}; allowed: a mapping of sbatch option -> value, e.g. {{mail-type: END}}")
        settings["extra"] = dict(extra)
    return SlurmSettings(**settings)


_TIME = re.compile(r"(?:(?P<days>\d+)-)?(?P<a>\d+)(?::(?P<b>\d+))?(?::(?P<c>\d+))?")


def _minutes(value: Any, fail) -> int:
    """sbatch --time formats (minutes, MM:SS, HH:MM:SS, D-HH[:MM[:SS]]) as whole minutes, rounded up."""
    too_long = f"slurm.time: got {value!r}; allowed: at most 365 days ({MAX_SLURM_MINUTES} minutes)"
    if _is_int(value) and value > 0:
        if value > MAX_SLURM_MINUTES:
            fail(too_long)
        return value
    match = _TIME.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        fail(f"slurm.time: got {value!r}; allowed: minutes, or an sbatch time such as 30:00, 4:00:00, 1-12:00:00")
    days, a, b, c = (int(g) if g else None for g in match.group("days", "a", "b", "c"))
    if days is not None:  # D-HH, D-HH:MM, D-HH:MM:SS
        seconds = days * 86400 + a * 3600 + (b or 0) * 60 + (c or 0)
    elif c is not None:  # HH:MM:SS
        seconds = a * 3600 + b * 60 + c
    elif b is not None:  # MM:SS
        seconds = a * 60 + b
    else:  # MM
        seconds = a * 60
    if seconds <= 0:
        fail(f"slurm.time: got {value!r}; allowed: a positive duration")
    if seconds > MAX_SLURM_MINUTES * 60:
        fail(too_long)
    return math.ceil(seconds / 60)


_MEMORY = re.compile(r"(?P<number>\d+(?:\.\d+)?)\s*(?P<unit>[KMGT])B?", re.IGNORECASE)
_UNIT_GB = {"K": 1 / 1024 ** 2, "M": 1 / 1024, "G": 1.0, "T": 1024.0}


def _gigabytes(value: Any, fail) -> float:
    """``16G``, ``500M``, ``1T`` or a number of GB, as GB."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0 and _finite(value):
        return float(value)
    match = _MEMORY.fullmatch(value.strip()) if isinstance(value, str) else None
    gigabytes = float(match["number"]) * _UNIT_GB[match["unit"].upper()] if match else math.nan
    if not (gigabytes > 0 and math.isfinite(gigabytes)):
        fail(f"slurm.mem: got {value!r}; allowed: a size such as 16G or 500M, or a number of GB")
    return gigabytes


class _DataIds:
    """The data id of each distinct data config (and weights file), computed once per expansion."""

    def __init__(self, fetch: bool) -> None:
        self.fetch, self.known = fetch, {}

    def __call__(self, config: RunConfig) -> tuple[str, str | None]:
        """(data id, None), or (UNKNOWN_DATA_ID, why) where the data is not here."""
        gen = config.generator
        key = (config.data, gen.arch, gen.pretrained_encoder, gen.pretrained_path)
        if key not in self.known:
            try:
                self.known[key] = data_id(config, fetch=self.fetch), None
            except DataUnavailable as err:
                self.known[key] = UNKNOWN_DATA_ID, str(err)
        return self.known[key]


def _expand(base: dict, axes: tuple[Axis, ...], seeds: tuple[int, ...], baseline_positions: tuple[int, ...],
            fail, data_ids: _DataIds) -> list[PlannedRun]:
    base_values = flatten_keys(config_to_dict(config_from_dict(base)))
    runs, point_of_run = [], {}
    for positions in itertools.product(*(range(len(axis.values)) for axis in axes)):
        point = {}
        for axis, position in zip(axes, positions):
            point.update(axis.point(position))
        # JSON is YAML, so each grid value goes through the parser that --set uses.
        data = apply_overrides(base, [f"{key}={json.dumps(value)}" for key, value in point.items()])
        try:
            first = config_from_dict({**data, "seed": seeds[0]})
        except ConfigError as err:
            fail(f"grid point {_describe(point)}: {err}")
        differing = {key: value for key, value in flatten_keys(config_to_dict(first)).items()
                     if key != "seed" and value != base_values.get(key)}
        data, data_problem = data_ids(first)
        for seed in seeds:
            config = replace(first, seed=seed)
            identity = run_id(config, data)
            if identity in point_of_run and data_problem is None:  # unknown data may yet differ: not judged
                fail(f"grid points {_describe(point_of_run[identity])} and {_describe(point)} are the same run "
                     f"{identity} (no result-affecting difference); remove one")
            point_of_run[identity] = point
            runs.append(PlannedRun(identity, f"{identity}-{_suffix(differing)}", config, point, differing,
                                   positions == baseline_positions, data_problem))
    return runs


def _suffix(differing: dict[str, Any]) -> str:
    """A readable, file-name-safe summary of what a run changes, e.g. ``skip_connections=false,adversarial=none``."""
    if not differing:
        return "base"
    parts = [f"{key.rsplit('.', 1)[-1]}={format_value(value)}" for key, value in differing.items()]
    return re.sub(r"[^A-Za-z0-9._=,+-]", "_", ",".join(parts))[:SUFFIX_MAX_CHARS]


def format_value(value: Any) -> str:
    """A config value as YAML writes it: true/false, null, numbers, lists joined by '-'."""
    if isinstance(value, bool):
        return str(value).lower()
    if value is None:
        return "null"
    if isinstance(value, (list, tuple)):
        return "-".join(format_value(v) for v in value)
    return str(value)


def _describe(point: dict[str, Any]) -> str:
    return "{" + ", ".join(f"{key}: {format_value(value)}" for key, value in point.items()) + "}"


def _finite(value: Any) -> bool:
    """False for float infinities and nan (and integers beyond float's range)."""
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _same(a: Any, b: Any) -> bool:
    """Equal as YAML values (true is not 1, 1 is not 1.0)."""
    return json.dumps(a) == json.dumps(b)
