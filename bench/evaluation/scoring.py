"""Scoring generator outputs against their ground truth: one metrics.jsonl record per requested metric.

Every record carries the protocol: split, step, epoch, source (``train`` for evaluations
during training, ``eval`` for ``colorbench eval``, ``grey_input``, ``baseline`` and ``method`` for
what is not the run's generator), dataset, n_images, resolution, the metric's protocol, its detector
(the network and weights file; null for pixel metrics), the protocol fingerprint
(:mod:`bench.evaluation.fingerprint`: the test list, the ground truth's resize rule, what the outputs
are and how they reached the metrics, the detector's weights' sha256), and either ``value`` (with
``per_image`` values for per-image metrics) or ``value: null`` with ``unavailable`` saying why
(weights absent) — never a number from random weights.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from bench.config import RunConfig
from bench.data.assets import ASSETS
from bench.data.cache import cache_dir
from bench.evaluation.detectors import (
    DETECTOR_ASSETS,
    DETECTOR_IDS,
    FEATURE_BATCH_SIZE,
    WeightsUnavailable,
    extract_features,
    load_detector,
)
from bench.evaluation.fingerprint import GENERATED, Outputs, record_fingerprint
from bench.evaluation.metrics import METRICS, Metric, check_names
from bench.evaluation.reference import reference_features


@dataclass(frozen=True)
class ScoringSetup:
    """Where metric weights and cached reference features live, and the device networks run on.

    ``stand_ins`` maps detector names (``fid_inception``, ``lpips_alex``) to modules used in
    their place, for tests and benchmarks on machines without the weights; each has an ``id``
    that the records name as their detector.
    """

    weights_dir: str | None
    cache_dir: Path
    device: torch.device
    stand_ins: Mapping[str, torch.nn.Module] = field(default_factory=dict)
    batch_size: int = FEATURE_BATCH_SIZE

    def detector(self, name: str) -> torch.nn.Module:
        """The network ``name``: its stand-in, else loaded from the weights (WeightsUnavailable when absent)."""
        if name in self.stand_ins:
            return self.stand_ins[name].to(self.device)
        return load_detector(name, self.weights_dir, self.device)


def scoring_setup(config: RunConfig, device: torch.device) -> ScoringSetup:
    """The setup a run's config describes: ``eval.weights_dir`` and the dataset cache's folder."""
    return ScoringSetup(config.eval.weights_dir, cache_dir(config.data.cache_dir), device)


def dataset_identity(manifest: dict) -> dict:
    """What records say about the dataset scored on: its source, root and file-list hash (from its manifest)."""
    return {key: manifest.get(key) for key in ("source", "root", "file_list_hash")}


def metric_records(outputs_rgb8: torch.Tensor, targets_rgb8: torch.Tensor, image_ids: list[str],
                   names: Iterable[str], setup: ScoringSetup, *, dataset: dict, split: str, step: int,
                   epoch: int | None, source: str, outputs: Outputs = GENERATED) -> list[dict]:
    """One record per metric in ``names`` for uint8 (N, 3, H, W) outputs and their ground truth.

    ``outputs`` says what the outputs are and how they reached the metrics (default: a generator's, in
    memory), for the records' fingerprint.  Features of the outputs are extracted once per detector and
    shared by the metrics that use it (FID and KID); the ground truth's come from the reference cache.
    """
    height, width = targets_rgb8.shape[-2:]
    common = {"split": split, "step": step, "epoch": epoch, "source": source, "dataset": dataset,
              "n_images": len(targets_rgb8), "resolution": [int(height), int(width)], "image_ids": list(image_ids)}
    features: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def feature_pair(detector_name: str, extractor: torch.nn.Module) -> tuple[np.ndarray, np.ndarray]:
        if detector_name not in features:
            fake = extract_features(outputs_rgb8, extractor, setup.device, setup.batch_size, "output features")
            real = reference_features(targets_rgb8, image_ids, extractor, setup.device, setup.cache_dir,
                                      dataset=str(dataset.get("source")), split=split, batch_size=setup.batch_size)
            features[detector_name] = (fake, real)
        return features[detector_name]

    records = []
    for name in check_names(names):
        metric = METRICS[name]
        record = {**common, "metric": name, "protocol": metric.protocol, "detector": None,
                  "fingerprint": record_fingerprint(image_ids, outputs, None)}
        network = None
        if metric.detector is not None:
            weights = None if metric.detector in setup.stand_ins else ASSETS[DETECTOR_ASSETS[metric.detector]].sha256
            record["fingerprint"]["detector_sha256"] = weights
            try:
                network = setup.detector(metric.detector)
            except WeightsUnavailable as err:
                records.append({**record, "detector": DETECTOR_IDS[metric.detector], "value": None,
                                "unavailable": str(err)})
                continue
            record["detector"] = network.id
        if metric.takes == "images":
            result = metric.compute(outputs_rgb8, targets_rgb8)
        elif metric.takes == "network":
            result = metric.compute(outputs_rgb8, targets_rgb8, network)
        else:
            result = metric.compute(*feature_pair(metric.detector, network))
        records.append({**record, **_values(metric, result)})
    return records


def _values(metric: Metric, result: torch.Tensor | dict) -> dict:
    """A per-image result as its mean and per-image list; a set result as it is."""
    if metric.per_image:
        return {"value": float(result.mean()), "per_image": result.tolist()}
    return dict(result)
