"""``colorbench eval``: score a run's checkpoint again, on its own test split or another dataset.

New metrics apply to old runs without retraining: the generator is rebuilt from the run's
config.yaml, loaded from its checkpoint (``weights_only=True``), and its outputs are
regenerated exactly as the evaluation during training made them (same seed, batch size and
inference mode).  The records are appended to the run's metrics.jsonl with
``"source": "eval"`` and the dataset they were scored on, followed by the grey-input baseline's
records (``"source": "grey_input"``, :mod:`bench.evaluation.baselines`) of each metric the run has none of
yet for those test images (another dataset, a metric added later).
"""
from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from pathlib import Path

import torch

from bench.config import ConfigError, DataConfig, RunConfig, apply_overrides, config_from_dict
from bench.data import prepare_data
from bench.evaluation.baselines import record_grey_input
from bench.evaluation.outputs import evaluation_outputs
from bench.evaluation.scoring import dataset_identity, metric_records, scoring_setup
from bench.models import build_generator
from bench.run import reproducible, rundir
from bench.run.checkpoint import CHECKPOINT_FILE, load_own_checkpoint
from bench.run.machine import resolve_device

# What may differ from the run's own config: where and what to score, never the model.
OVERRIDABLE_SECTIONS = ("data.", "eval.")


def score_run(run_dir: str | Path, *, dataset: str | None = None, metrics: list[str] | None = None,
            overrides: list[str] | tuple[str, ...] = (),
            stand_ins: Mapping[str, torch.nn.Module] | None = None) -> list[dict]:
    """Score the checkpoint of ``run_dir`` and append the records to its metrics.jsonl; return them.

    ``dataset`` is a dataset name (``data.dataset``'s choices) or a folder of images, scored
    on its test split as the run's data settings split it; default: the run's own dataset.
    ``metrics`` defaults to the run's ``eval.metrics``; ``overrides`` are ``key=value``
    settings of ``data.*``, ``eval.*`` or ``device``.  ``stand_ins`` replace detector networks
    (tests and benchmarks only; see :class:`bench.evaluation.scoring.ScoringSetup`).
    """
    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").exists():
        raise ConfigError(f"{run_dir}: not a run directory (no config.yaml)")
    with rundir.locked(run_dir):  # a training of the run (or another eval) is refused, never appended into
        return _score_run(run_dir, dataset, metrics, overrides, stand_ins)


def _score_run(run_dir: Path, dataset: str | None, metrics: list[str] | None, overrides: list[str] | tuple[str, ...],
               stand_ins: Mapping[str, torch.nn.Module] | None) -> list[dict]:
    claim = rundir.check_run_dir(run_dir, logs=True)  # the rule train applies too: one run's files, intact logs
    if claim is None:
        raise ConfigError(f"{run_dir}: not a run directory (no config.yaml)")
    config = _scoring_config(run_dir, claim.config, dataset, metrics, overrides)
    checkpoint = run_dir / CHECKPOINT_FILE
    state = load_own_checkpoint(checkpoint, claim.run_id, last_step=_last_step(run_dir))
    if state is None:
        raise ConfigError(f"{run_dir}: no {CHECKPOINT_FILE} to score (the run has not saved a checkpoint yet)")
    reproducible.configure_torch()
    device = resolve_device(config.device)
    # The checkpoint holds every weight, so an ImageNet-initialised encoder need not be loaded again.
    generator = build_generator(dataclasses.replace(config.generator, pretrained_encoder=False),
                                config.in_channels, config.out_channels)
    try:
        generator.load_state_dict(state["generator"])
    except (RuntimeError, KeyError, ValueError, TypeError) as err:  # torch lists every mismatched tensor
        problem = str(err).splitlines()[0][:160] if str(err) else type(err).__name__
        raise rundir.RunDirError(f"{checkpoint}: does not fit this run's generator ({problem}); it is not this "
                                 "run's checkpoint: put back its own") from None
    generator.to(device)
    data = prepare_data(config.data)
    test_images = data.network_images("test", config.data.task)
    outputs = evaluation_outputs(generator, test_images, config, device, state["step"])
    setup = dataclasses.replace(scoring_setup(config, device), stand_ins=dict(stand_ins or {}))
    records = metric_records(outputs, data.test, data.test_ids, config.eval.metrics, setup,
                             dataset=dataset_identity(data.manifest), split="test", step=state["step"],
                             epoch=None, source="eval")
    for record in records:
        rundir.append_jsonl(run_dir / "metrics.jsonl", record)
    record_grey_input(run_dir, test_images, data.test, data.test_ids, config.eval.metrics, setup,
                      encoding=config.encoding, dataset=dataset_identity(data.manifest), split="test",
                      step=state["step"], epoch=None)
    return records


def _last_step(run_dir: Path) -> int | None:
    """The last step of the run: DONE's for a finished run, else the total its stats.jsonl names (None: not known)."""
    if (run_dir / "DONE").exists():
        return rundir.read_summary(run_dir / "DONE", "")["step"]  # checked by the rule already
    totals = [r["total_steps"] for r in rundir.read_jsonl(run_dir / "stats.jsonl") if "total_steps" in r]
    return totals[-1] if totals else None


def _scoring_config(run_dir: Path, run_config: dict, dataset: str | None, metrics: list[str] | None,
                    overrides: list[str] | tuple[str, ...]) -> RunConfig:
    """The run's config (``run_config``: config.yaml's, read and checked by ``bench.run.rundir``) with the dataset,
    metrics and overrides applied; ConfigError naming any bad one."""
    for text in overrides:
        key = text.split("=", 1)[0].strip()
        if not (key.startswith(OVERRIDABLE_SECTIONS) or key == "device"):
            raise ConfigError(f"--set {text!r}: eval can only change data.*, eval.* and device; "
                              "the model is the run's")
    data = apply_overrides(run_config, [])  # a copy
    if dataset is not None:
        data.setdefault("data", {}).update(dataset_fields(dataset))
    data = apply_overrides(data, list(overrides))
    if metrics is not None:
        data.setdefault("eval", {})["metrics"] = list(metrics)
    try:
        return config_from_dict(data)
    except ConfigError as err:
        raise ConfigError(f"{run_dir}: {err}") from None


def dataset_fields(dataset: str) -> dict:
    """``data.*`` settings selecting ``dataset``: a ``data.dataset`` name, else a folder of images."""
    names = typing.get_args(typing.get_type_hints(DataConfig)["dataset"])
    if dataset in names and dataset != "folder":
        return {"dataset": dataset, "root": None, "train_list": None, "test_list": None}
    folder = Path(dataset).expanduser()
    if not folder.is_dir():
        raise ConfigError(f"--dataset {dataset}: not a dataset name ({', '.join(n for n in names if n != 'folder')}) "
                          "nor a folder of images")
    return {"dataset": "folder", "root": str(folder.resolve()), "train_list": None, "test_list": None}
