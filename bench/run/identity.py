"""Run identity: the ids that name a run by everything its results depend on.

    config id = <config hash>-<data id>     one grid point; the seeds of a point share it
    run id    = <config id>-s<seed>         one run, and the name of its directory

The config hash covers the result-affecting config fields (those not marked
``identity=False`` in ``bench.config``); a field marked ``hashed_at_default=False`` (added
after runs existed, such as ``compute.channels_last``) enters it only when set to something
other than its default, so the runs made before it keep their ids.
The data id covers what the data *is*, not where it lies: 8 hex digits of a sha256 over
each candidate image of the train and test splits, in order (its split, the sha256 of its
file's bytes, its crop box and paired box), and over the sha256 of the weights file the
generator loads, if any.  The same photos under another path or on another machine keep
their id; other photos, other crops or another weights file never share one.  Which of
the candidates a run keeps follows from them and the config (filters, n_train, n_test), so
hashing the candidates, which reads bytes but decodes no pixel, is enough.

What the data id hashes is read off the data by :mod:`bench.data.fingerprint`; this module
only hashes, so it imports nothing but the config.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from typing import Any

from bench.config import RunConfig

UNKNOWN_DATA_ID = "________"  # shown (never written as a directory) where the data is not here to fingerprint
DATA_ID_HEX = 8


def config_hash(config: RunConfig) -> str:
    """Stable 12-hex-digit hash of the result-affecting fields (seed, paths, device, cadence excluded).

    The first half of a config id; the second is the data id.
    """
    canonical = json.dumps(_identity_dict(config), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def _identity_dict(config: Any) -> dict:
    """The fields of ``config`` (a dataclass) that enter the hash, nested as in the config."""
    out = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value):
            if section := _identity_dict(value):  # a section of only non-identity fields (log) leaves ids as they were
                out[f.name] = section
        elif f.metadata.get("identity", True):
            if not f.metadata.get("hashed_at_default", True) and value == f.default:
                continue  # a field added later: at its default every earlier run keeps its id
            out[f.name] = list(value) if isinstance(value, tuple) else value
    return out


def config_id(config: RunConfig, data_id: str) -> str:
    """The id of a grid point: the config hash and the data id."""
    return f"{config_hash(config)}-{data_id}"


def run_id(config: RunConfig, data_id: str) -> str:
    """The id of one run: the config id and the seed."""
    return f"{config_id(config, data_id)}-s{config.seed}"


def config_id_of(run: str) -> str:
    """The config id within the run id ``run``."""
    return run.rsplit("-s", 1)[0]


def same_run(planned: str, actual: str) -> bool:
    """Whether ``actual`` is the run id ``planned`` names; a planned id with ``UNKNOWN_DATA_ID`` (its data not
    here) names the run of that config hash and seed on whatever data it was trained."""
    if UNKNOWN_DATA_ID not in planned:
        return planned == actual
    head, _, seed = planned.partition(f"-{UNKNOWN_DATA_ID}-")
    return re.fullmatch(rf"{re.escape(head)}-[0-9a-f]{{{DATA_ID_HEX}}}-{re.escape(seed)}", actual) is not None


def data_id_of(fingerprint: dict[str, Any]) -> str:
    """The data id a :func:`data_fingerprint` hashes to."""
    return hashlib.sha256(json.dumps(fingerprint, sort_keys=True).encode()).hexdigest()[:DATA_ID_HEX]
