"""Profiles: one study file at several scales (full GPU/SLURM scale, CPU scale, a tiny CI check).

A study file's top level describes the study at the source's own scale: the profile
``full``.  Another profile rewrites it before the grid is expanded:

    profiles:                      # in the study file: this study's adjustments per profile
      cpu:
        base: {optim: {epochs: 8}}            # deep-merged into the file's base
        grid: {discriminator.n_layers: [0, 1, 3, 4]}   # replaces the values of an existing axis
        seeds: [0, 1, 2, 3, 4]                # replaces the seeds
        slurm: {time: "01:00:00"}             # updates the slurm block

The presets in ``profiles.yaml`` beside the study file (e.g. the CPU data split) apply first,
then the file's block of the same name; ``extends: NAME`` applies that profile before this
one.  A profile's results go to ``<results>/<name>-<profile>/``, so scales never mix.
Relative paths (data.root, the image lists, caches, weights) are relative to the file that
names them, so a study runs the same from any working directory.
"""
from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

from bench.config import ConfigError, read_yaml

FULL = "full"
PRESETS_FILE = "profiles.yaml"
PROFILE_KEYS = ("extends", "description", "base", "grid", "seeds", "slurm")
PATH_KEYS = (("data", "root"), ("data", "train_list"), ("data", "test_list"), ("data", "cache_dir"),
             ("generator", "pretrained_path"), ("eval", "weights_dir"))
_NAME = re.compile(r"[a-z][a-z0-9_]*")


class ProfileError(ConfigError):
    """A profile is unknown or malformed; the message names the file and the key."""


def read_presets(folder: Path, exclude: Path | None = None) -> dict[str, Any]:
    """The profile presets of a studies folder (``folder/profiles.yaml``; none when absent), relative paths made
    absolute; ``exclude`` is a file that is not to be read as its own presets (the presets file itself)."""
    path = folder / PRESETS_FILE
    if not path.is_file() or (exclude is not None and path.resolve() == exclude.resolve()):
        return {}
    presets = read_yaml(path, "profile presets", ProfileError) or {}
    if not isinstance(presets, dict):
        raise ProfileError(f"{path}: expected a mapping of profile name -> profile")
    return {name: _resolve_block(block, folder) for name, block in presets.items()}


def profile_description(presets: dict[str, Any], profile: str) -> str | None:
    """The ``description`` of a preset profile, if it has one."""
    preset = presets.get(profile)
    return preset.get("description") if isinstance(preset, dict) else None


def resolve_paths(data: dict, folder: Path) -> dict:
    """``data`` with the relative paths of its base and its profiles' bases made absolute against ``folder``."""
    data = copy.deepcopy(data)
    if isinstance(data.get("base"), dict):
        data["base"] = _absolute(data["base"], folder)
    if isinstance(data.get("profiles"), dict):
        data["profiles"] = {name: _resolve_block(block, folder) for name, block in data["profiles"].items()}
    return data


def _resolve_block(block: Any, folder: Path) -> Any:
    if isinstance(block, dict) and isinstance(block.get("base"), dict):
        return {**block, "base": _absolute(block["base"], folder)}
    return block


def _absolute(base: dict, folder: Path) -> dict:
    base = copy.deepcopy(base)
    for section, key in PATH_KEYS:
        value = base.get(section, {}).get(key) if isinstance(base.get(section), dict) else None
        if isinstance(value, str) and value and not Path(value).expanduser().is_absolute():
            base[section][key] = str((folder / value).resolve())
    return base


def available_profiles(data: dict, presets: dict) -> list[str]:
    """``full`` and every profile the presets or the file define."""
    own = data.get("profiles") or {}
    return [FULL] + sorted(set(presets) | set(own if isinstance(own, dict) else {}))


def select_profile(data: dict, profile: str, presets: dict, source: str) -> dict:
    """The study file's contents as profile ``profile`` sees them (``full``: the top level as written)."""
    own = data.get("profiles", {})
    if own is None:
        own = {}
    if not isinstance(own, dict):
        raise ProfileError(f"{source}: profiles: got {own!r}; allowed: a mapping of profile name -> profile")
    selected = {key: value for key, value in data.items() if key != "profiles"}
    if profile == FULL:
        return _rows_at(selected, [])
    known = available_profiles(data, presets)
    if profile not in known:
        raise ProfileError(f"{source}: unknown profile {profile!r}; allowed: {', '.join(known)}")
    chain = _chain(profile, presets, own, source)
    for name in chain:
        for where, block in ((f"{PRESETS_FILE}: {name}", presets.get(name)), (f"{source}: profiles.{name}",
                                                                               own.get(name))):
            if block is not None:
                selected = _apply(selected, block, where)
    selected["name"] = f"{data.get('name')}-{profile}"
    selected["profile"] = profile
    return _rows_at(selected, chain)


def _rows_at(data: dict, chain: list[str]) -> dict:
    """``data`` with each reproduction row's point as the profiles of ``chain`` change it.

    A row ``{method: ..., point: {...}, at: {cpu: {...}}}`` of the ``reproduce`` block names its
    grid point; where a profile replaces that axis's values, ``at`` gives the point there, or
    ``{absent: why}`` where the row has no analogue at that profile (it is then shown unrun, with why).
    A profile later in the chain that gives a point again brings the row back: ``cpu_long``
    (extending ``cpu``) can run an arm ``cpu`` leaves out.
    """
    block = data.get("reproduce")
    if not isinstance(block, dict) or not isinstance(block.get("rows"), list):
        return data
    rows = []
    for row in block["rows"]:
        if isinstance(row, dict) and "at" in row:
            at, row = row["at"], {key: value for key, value in row.items() if key != "at"}
            if not isinstance(at, dict) or not all(isinstance(point, dict) for point in at.values()):
                raise ProfileError(f"reproduce.rows: {row.get('method')!r}: at: got {at!r}; allowed: a mapping of "
                                   "profile -> the point's keys under that profile")
            point = row.get("point")
            for name in chain:
                if name not in at or not isinstance(point, dict):
                    continue
                if set(at[name]) == {"absent"} and isinstance(at[name]["absent"], str):
                    row = {key: value for key, value in row.items() if key != "point"}  # no runs at this profile
                    row["absent"] = at[name]["absent"]
                else:
                    point = {**point, **at[name]}
                    row = {**{key: value for key, value in row.items() if key != "absent"}, "point": point}
        rows.append(row)
    return {**data, "reproduce": {**block, "rows": rows}}


def _chain(profile: str, presets: dict, own: dict, source: str) -> list[str]:
    """The profiles applied for ``profile``, the one it extends first."""
    chain = []
    name = profile
    while name is not None:
        if name in chain:
            raise ProfileError(f"{source}: profile {profile}: extends loops through {' -> '.join(chain + [name])}")
        if name not in presets and name not in own:
            raise ProfileError(f"{source}: profile {chain[-1]} extends unknown profile {name!r}")
        if not _NAME.fullmatch(name) or name == FULL:
            raise ProfileError(f"{source}: profile name {name!r}; allowed: lower-case letters, digits and '_', "
                               f"not {FULL}")
        chain.append(name)
        parents = {block.get("extends") for block in (presets.get(name), own.get(name)) if isinstance(block, dict)}
        parents.discard(None)
        if len(parents) > 1:
            raise ProfileError(f"{source}: profile {name} extends {sorted(parents)}; the presets and the file disagree")
        name = parents.pop() if parents else None
    return chain[::-1]


def _apply(data: dict, block: Any, where: str) -> dict:
    """``data`` with one profile block applied (see the module docstring)."""
    if not isinstance(block, dict):
        raise ProfileError(f"{where}: got {block!r}; allowed: a mapping with keys {', '.join(PROFILE_KEYS)}")
    unknown = sorted(str(k) for k in set(block) - set(PROFILE_KEYS))
    if unknown:
        raise ProfileError(f"{where}: unknown key {unknown[0]!r}; allowed keys: {', '.join(PROFILE_KEYS)}")
    data = copy.deepcopy(data)
    if "base" in block:
        if not isinstance(block["base"], dict):
            raise ProfileError(f"{where}.base: got {block['base']!r}; allowed: a mapping of config keys")
        data["base"] = _merge(data.get("base") or {}, block["base"])
    if "grid" in block:
        grid = data.get("grid") or {}
        if not isinstance(block["grid"], dict):
            raise ProfileError(f"{where}.grid: got {block['grid']!r}; allowed: a mapping of axis -> values")
        for axis, values in block["grid"].items():
            if axis not in grid:
                raise ProfileError(f"{where}.grid.{axis}: not an axis of the study's grid; its axes: "
                                   f"{', '.join(map(str, grid))}")
            grid[axis] = values
        data["grid"] = grid
    if "seeds" in block:
        data["seeds"] = block["seeds"]
    if "slurm" in block:
        if not isinstance(block["slurm"], dict):
            raise ProfileError(f"{where}.slurm: got {block['slurm']!r}; allowed: a mapping")
        data["slurm"] = {**(data.get("slurm") or {}), **block["slurm"]}
    return data


def _merge(base: dict, update: dict) -> dict:
    """``base`` with ``update``'s values, sections merged key by key."""
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged
