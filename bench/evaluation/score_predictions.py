"""``colorbench score``: any method's outputs, or a trivial baseline, scored with the benchmark's protocol.

The protocol is a run configuration's data and eval settings (``--config``, a run's config.yaml
works, ``--dataset``, ``--set``): the dataset, its split and selection, the evaluation size, the
metrics.  The test items are prepared exactly as for a run (``bench.data.prepare_data``) and scored
with the same metric functions, detectors, reference-feature cache and per-image records
(``bench.evaluation.scoring.metric_records``), so the numbers sit beside the runs' own.

* :func:`score_predictions`: a folder of predicted images (:mod:`bench.evaluation.predictions`
  matches and checks them), optionally with the input's luminance put back first
  (``keep_input_luminance``: each output's CIELAB L replaced by its ground truth's, i.e. the greyscale
  input's, in float64, then rounded to 8 bits; colourisation only);
* :func:`score_baseline`, :func:`score_baselines`: the trivial baselines of
  :mod:`bench.evaluation.baselines`.

Each writes a method directory (:mod:`bench.evaluation.method_dir`), whole or not at all; every
check runs before anything is written.  Its ``run_id`` is stable: ``baseline-<key>-<data id>`` for a
baseline (the dataset's file-list hash where the data id cannot be computed), and
``method-<name>-<8 hex digits of the sha256 of its files and protocol>`` for predictions.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from bench.config import ConfigError, DataConfig, RunConfig, apply_overrides, config_from_dict, read_config_file
from bench.data import prepare_data
from bench.data.colour import lab_to_rgb8, rgb_to_lab
from bench.data.fingerprint import DataUnavailable, data_id
from bench.data.items import ITEM_RESIZE
from bench.data.prepare import PreparedData
from bench.evaluation.baselines import BASELINES, Baseline
from bench.evaluation.fingerprint import LOSSY_FORMATS, Outputs, list_hash
from bench.evaluation.method_dir import (
    BASELINE_SOURCE,
    METHOD_SOURCE,
    check_target,
    is_finished,
    read_method,
    write_method_dir,
)
from bench.evaluation.predictions import RESIZERS, PredictionError, read_predictions
from bench.evaluation.score_run import dataset_fields
from bench.evaluation.scoring import ScoringSetup, dataset_identity, metric_records, scoring_setup
from bench.run.machine import resolve_device

SPLITS = ("test", "train")
STEP = 0  # a method directory's records are of no training step


@dataclass(frozen=True)
class Scored:
    """A method directory written: its folder, its method.yaml and its records."""

    folder: Path
    method: dict
    records: list[dict]


def protocol_config(config_file: str | Path | None, dataset: str | None = None, metrics: list[str] | None = None,
                    overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    """The run configuration that states the protocol: ``config_file`` (default: the defaults), the data of
    ``dataset`` (a ``data.dataset`` name or a folder of images), ``overrides`` (``key=value``), ``metrics``.

    Scoring uses its data and eval sections, ``device`` and ``colour_space`` (the grey input's rendering).
    Without a config file and without ``generator.*`` overrides, a generator depth the evaluation size
    allows is set, so that ``--set data.image_size=S`` alone validates (the model is not used).
    """
    data = read_config_file(config_file) if config_file is not None else {}
    if dataset is not None:
        data.setdefault("data", {}).update(dataset_fields(dataset))
    data = apply_overrides(data, list(overrides))
    if config_file is None and "generator" not in data:  # the model is not used, but a config validates whole
        data["generator"] = _generator_for(data.get("data", {}).get("image_size", DataConfig().image_size))
    if metrics is not None:
        data.setdefault("eval", {})["metrics"] = list(metrics)
    try:
        return config_from_dict(data)
    except ConfigError as err:
        raise ConfigError(f"{config_file}: {err}" if config_file is not None else str(err)) from None


def _generator_for(image_size: object) -> dict:
    """A generator setting that ``image_size`` allows: the deepest U-Net, else the deepest classic U-Net."""
    if not isinstance(image_size, int) or image_size <= 0:
        return {}  # the config's own check names the bad size
    for depth in range(9, 4, -1):
        if image_size % 2 ** depth == 0:
            return {"depth": depth}
    depth = max((d for d in range(1, 7) if image_size % 2 ** d == 0), default=None)
    return {"arch": "classic_unet", "depth": depth, "dropout": False} if depth else {}


def score_predictions(predictions: str | Path, config: RunConfig, out: str | Path, *, name: str | None = None,
                      split: str = "test", allow_missing: bool = False, resize: str | None = None,
                      keep_input_luminance: bool = False,
                      stand_ins: Mapping[str, torch.nn.Module] | None = None) -> Scored:
    """Score the images in the folder ``predictions`` against ``split`` of ``config``'s data into the method
    directory ``out`` (see the module and :mod:`bench.evaluation.predictions`)."""
    predictions = Path(predictions)
    _check_split(split)
    check_target(Path(out))  # before minutes of scoring, not after
    if keep_input_luminance and config.data.task != "colourise":
        raise ConfigError(f"--keep-input-luminance: only for colourisation; data.task is {config.data.task} "
                          "(the input is no grey photo)")
    data = prepare_data(config.data)
    targets, ids = getattr(data, split), getattr(data, f"{split}_ids")
    found = read_predictions(predictions, ids, targets.shape[-1], allow_missing=allow_missing, resize=resize)
    targets = targets[found.indices]
    outputs = _with_luminance_of(found.images, targets) if keep_input_luminance else found.images
    described = Outputs("predictions", "+".join(found.formats), any(f in LOSSY_FORMATS for f in found.formats),
                        RESIZERS[resize][1] if found.resized else None, keep_input_luminance)
    protocol = _protocol(config, data, split, found.ids, described)
    name = name or predictions.resolve().name
    contents = json.dumps({"files": sorted(found.files.values()), "protocol": protocol}, sort_keys=True)
    method = {"name": name, "kind": "predictions",
              "run_id": f"method-{_slug(name)}-{hashlib.sha256(contents.encode()).hexdigest()[:8]}",
              "predictions": {"folder": str(predictions.resolve()), "formats": list(found.formats),
                              "scored": len(found.ids), "resized": found.resized, "missing": found.missing,
                              "extra": found.extra, "files": found.files},
              "protocol": protocol, "metrics": list(config.eval.metrics)}
    records = metric_records(outputs, targets, found.ids, config.eval.metrics, _setup(config, stand_ins),
                             dataset=dataset_identity(data.manifest), split=split, step=STEP, epoch=None,
                             source=METHOD_SOURCE, outputs=described)
    return Scored(write_method_dir(Path(out), method, records), method, records)


def score_baseline(key: str, config: RunConfig, out: str | Path, *, split: str = "test",
                   stand_ins: Mapping[str, torch.nn.Module] | None = None) -> Scored:
    """Score the trivial baseline ``key`` on ``split`` of ``config``'s data into the method directory ``out``."""
    baseline = _baseline(key, config)
    _check_split(split)
    check_target(Path(out))
    data = prepare_data(config.data)
    method = _baseline_method(baseline, config, data, split)
    records = _baseline_records(baseline, config, data, split, stand_ins)
    return Scored(write_method_dir(Path(out), method, records), method, records)


def score_baselines(config: RunConfig, out_folder: Path, metrics: tuple[str, ...] | None = None) -> list[Path]:
    """One method directory per baseline of ``config.data.task``, ``out_folder/<key>/``, scored on the test split
    of the config's own data with ``metrics`` (default ``config.eval.metrics``); return them.

    A directory that exists, is whole, states the same protocol and run id (so the same data id) and holds
    every metric asked for is kept as it is; any other is scored again and replaced.
    """
    if metrics is not None:
        config = dataclasses.replace(config, eval=dataclasses.replace(config.eval, metrics=tuple(metrics)))
    data = prepare_data(config.data)
    folders = []
    for baseline in BASELINES.values():
        if baseline.task != config.data.task:
            continue
        folder = Path(out_folder) / baseline.key
        method = _baseline_method(baseline, config, data, "test")
        if not _already_scored(folder, method):
            write_method_dir(folder, method, _baseline_records(baseline, config, data, "test", None))
        folders.append(folder)
    return folders


def _baseline(key: str, config: RunConfig) -> Baseline:
    if key not in BASELINES:
        raise ConfigError(f"--baseline {key}: unknown; allowed: {', '.join(BASELINES)}")
    baseline = BASELINES[key]
    if baseline.task != config.data.task:
        allowed = ", ".join(k for k, b in BASELINES.items() if b.task == config.data.task)
        raise ConfigError(f"--baseline {key}: a baseline of the {baseline.task} task; data.task is "
                          f"{config.data.task} (its baselines: {allowed})")
    return baseline


def _baseline_method(baseline: Baseline, config: RunConfig, data: PreparedData, split: str) -> dict:
    protocol = _protocol(config, data, split, getattr(data, f"{split}_ids"), Outputs(f"baseline {baseline.key}"))
    data_or_files = protocol["data_id"] or str(data.manifest.get("file_list_hash"))[:8]
    return {"name": baseline.label, "kind": "baseline", "baseline": baseline.key,
            "run_id": f"baseline-{baseline.key}-{data_or_files}", "protocol": protocol,
            "metrics": list(config.eval.metrics)}


def _baseline_records(baseline: Baseline, config: RunConfig, data: PreparedData, split: str,
                      stand_ins: Mapping[str, torch.nn.Module] | None) -> list[dict]:
    return metric_records(baseline.outputs(data, split, config.encoding), getattr(data, split),
                          getattr(data, f"{split}_ids"), config.eval.metrics, _setup(config, stand_ins),
                          dataset=dataset_identity(data.manifest), split=split, step=STEP, epoch=None,
                          source=BASELINE_SOURCE, outputs=Outputs(f"baseline {baseline.key}"))


def _already_scored(folder: Path, method: dict) -> bool:
    """Whether ``folder`` is a whole method directory of ``method``'s run id and protocol with all its metrics."""
    if not is_finished(folder):
        return False
    try:
        recorded = read_method(folder)
    except ConfigError:
        return False
    return (recorded.get("run_id") == method["run_id"] and recorded.get("protocol") == method["protocol"]
            and set(method["metrics"]) <= set(recorded.get("metrics") or []))


def _protocol(config: RunConfig, data: PreparedData, split: str, ids: list[str], outputs: Outputs) -> dict:
    """The protocol options a method directory states (method.yaml's ``protocol``)."""
    side = getattr(data, split).shape[-1]
    try:
        known_id = data_id(config)
    except DataUnavailable:
        known_id = None
    return {"dataset": dataset_identity(data.manifest), "data": config.data.dataset, "task": config.data.task,
            "split": split, "resolution": [side, side], "n_images": len(ids), "test_list": list_hash(ids),
            "n_test": config.data.n_test, "split_seed": config.data.split_seed, "ground_truth": ITEM_RESIZE,
            "outputs_resized": outputs.resized, "keep_input_luminance": outputs.input_luminance,
            "data_id": known_id}


def _with_luminance_of(outputs8: torch.Tensor, photos8: torch.Tensor) -> torch.Tensor:
    """``outputs8`` with each CIELAB L replaced by its photo's (the greyscale input's), as 8-bit sRGB."""
    outputs_lab, photos_lab = (rgb_to_lab(images.double() / 255.0) for images in (outputs8, photos8))
    return lab_to_rgb8(torch.cat([photos_lab[:, :1], outputs_lab[:, 1:]], dim=1))


def _setup(config: RunConfig, stand_ins: Mapping[str, torch.nn.Module] | None) -> ScoringSetup:
    return dataclasses.replace(scoring_setup(config, resolve_device(config.device)), stand_ins=dict(stand_ins or {}))


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise PredictionError(f"--split {split}: unknown; allowed: {', '.join(SPLITS)}")


def _slug(name: str) -> str:
    """``name`` as a folder and id part: letters, digits, '.', '_' and '-'; other runs of characters as '-'."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "method"


def default_out(results: str | Path, name: str, baseline: bool) -> Path:
    """Where ``colorbench score`` writes without ``--out``: ``<results>/baselines/<key>``, ``.../methods/<name>``."""
    return Path(results) / ("baselines" if baseline else "methods") / _slug(name)
