"""The trivial baselines every method must beat, scored like a run's outputs.

Four baselines, each a function of the prepared data alone (no training, no weights):

Colourisation (``data.task: colourise``):

* ``grey_input``, **grey input (a = b = 0)**: the greyscale input itself, the test photo's L with
  a = b = 0, decoded to sRGB exactly as the sample grids show it (``bench.data.colour.input_rgb8``).
  It scores PSNR 17.02 dB, SSIM 0.850 on the demo's test tiles, more SSIM than the demo's generator.
* ``mean_colour``, **mean colour (training set, per pixel)**: the test photo's L with the training
  set's mean a and b *at each pixel position*: every training photo resized to the evaluation size
  S x S (bilinear with antialiasing, ``torch.nn.functional.interpolate(..., antialias=True)``, on
  RGB / 255 in float64, not rounded), converted to CIELAB (``bench.data.colour.rgb_to_lab``), a and
  b averaged over the training photos per pixel; the test photo's L (float64) with that (a, b) map is
  decoded to 8-bit sRGB (``bench.data.colour.lab_to_rgb8``).  The best constant colouring a method
  could learn without looking at the image.

Labels -> photo (``data.task: paired``, facades):

* ``label_map``, **label map as output**: the input label map itself as the output.
* ``mean_photo``, **mean training photo**: the training set's mean photo per pixel position: every
  training photo resized to S x S as above, averaged per pixel and channel, rounded to 8-bit RGB;
  the same output for every test item.

``colorbench score --baseline KEY`` writes a baseline's scores as a method directory
(:mod:`bench.evaluation.score_predictions`).  Besides, each run scores the grey input once, on its
own test images with its own metric functions, and appends the records to metrics.jsonl with
``"source": "grey_input"`` (otherwise the same fields as the run's records): reports are built from
run directories alone and show a "grey input" row from them.  They are written at the first
evaluation during training, and by ``colorbench eval`` for a dataset or metric the run has no
grey-input record of yet (they are the same at every step: the grey input does not depend on the
weights).  The paired task has no grey input: its input is a label map whose colours are class codes,
not a rendering of the photo; no grey-input record is written for it and reports say so.

Only the constants and the readers are imported at module level: ``bench.report`` reads them
without torch.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bench.config.names import BASELINE_NAMES
from bench.evaluation.fingerprint import GREY_INPUT
from bench.run import rundir

if TYPE_CHECKING:  # only annotations: torch is imported where a baseline is computed
    import torch

    from bench.data.prepare import PreparedData

GREY_INPUT_SOURCE = "grey_input"  # the ``source`` of the records (runs' own: ``train``, ``eval``)
GREY_INPUT_LABEL = "grey input (a = b = 0)"
NOT_RECORDED = "not recorded (run made before grey-input scoring)"
NOT_APPLICABLE = "not applicable (labels -> photo task: the input is a label map, not a grey photo)"
RESIZE_CHUNK = 64  # training photos resized and averaged at a time (memory: a chunk in float64)


@dataclass(frozen=True)
class Baseline:
    """A trivial baseline: its key, display name, the task it applies to, and its outputs for a split.

    ``outputs(data, split, encoding)`` gives uint8 (N, 3, S, S) outputs for the rows of ``split`` of the
    prepared ``data`` (``encoding``: the run's ``RunConfig.encoding``, for the grey input's rendering).
    """

    key: str
    label: str
    task: str
    outputs: Callable[[PreparedData, str, str], torch.Tensor]


def is_grey_input(record: dict) -> bool:
    """Whether a metrics.jsonl record scores the grey input rather than the run's generator."""
    return record.get("source") == GREY_INPUT_SOURCE


def _key(record: dict) -> tuple:
    """What makes two grey-input records score the same thing: split, dataset, resolution, images, metric."""
    return (record.get("split"), json.dumps(record.get("dataset"), sort_keys=True),
            json.dumps(record.get("resolution")), json.dumps(record.get("image_ids")), record.get("metric"))


def record_grey_input(run_dir: str | Path, images8, targets8, image_ids: list[str], names, setup, *, encoding: str,
                      dataset: dict, split: str, step: int, epoch: int | None) -> list[dict]:
    """Score the grey input of ``images8`` (the network images, as ``bench.data.colour.encode`` takes them) against
    ``targets8`` with each metric of ``names`` the run's metrics.jsonl has no grey-input record of yet for these
    images; append the records and return them ([] for the paired task, or when all are recorded)."""
    if encoding == "paired":
        return []
    from bench.data.colour import input_rgb8  # torch: only where a run is scored
    from bench.evaluation.scoring import metric_records

    path = Path(run_dir) / "metrics.jsonl"
    height, width = targets8.shape[-2:]
    probe = {"split": split, "dataset": dataset, "resolution": [int(height), int(width)],
             "image_ids": list(image_ids)}
    recorded = {_key(r) for r in rundir.read_jsonl(path) if is_grey_input(r)}
    missing = [name for name in names if _key({**probe, "metric": name}) not in recorded]
    if not missing:
        return []
    records = metric_records(input_rgb8(images8, encoding), targets8, image_ids, missing, setup, dataset=dataset,
                             split=split, step=step, epoch=epoch, source=GREY_INPUT_SOURCE, outputs=GREY_INPUT)
    for record in records:
        rundir.append_jsonl(path, record)
    return records


def grey_input_values(run_dir: str | Path, split: str = "test") -> dict[str, float | None]:
    """metric -> value of the run's latest grey-input records on ``split`` (empty for runs without them)."""
    values: dict[str, float | None] = {}
    for record in rundir.read_jsonl(Path(run_dir) / "metrics.jsonl"):
        if is_grey_input(record) and record.get("split") == split and isinstance(record.get("metric"), str):
            values[record["metric"]] = record.get("value")
    return values


# ---------------------------------------------------------------------------------------
# The baselines' outputs

def grey_input(images8: torch.Tensor, encoding: str) -> torch.Tensor:
    """The grey input of each of ``images8`` (the photos), as the run with ``encoding`` renders it."""
    from bench.data.colour import input_rgb8
    return input_rgb8(images8, encoding)


def mean_colour(photos8: torch.Tensor, train_photos8: torch.Tensor) -> torch.Tensor:
    """Each photo's L with the training photos' mean (a, b) per pixel position, as 8-bit sRGB."""
    import torch

    from bench.data.colour import lab_to_rgb8, rgb_to_lab
    side = photos8.shape[-1]
    ab = sum(rgb_to_lab(chunk / 255.0)[:, 1:].sum(dim=0) for chunk in _resized(train_photos8, side))
    ab = ab / len(train_photos8)
    lightness = rgb_to_lab(photos8.double() / 255.0)[:, :1]
    return lab_to_rgb8(torch.cat([lightness, ab.expand(len(photos8), -1, -1, -1)], dim=1))


def label_map(pairs8: torch.Tensor) -> torch.Tensor:
    """The input label map of each (photo, label map) pair, (N, 6, S, S), as the output."""
    from bench.data.colour import input_rgb8
    return input_rgb8(pairs8, "paired")


def mean_photo(n: int, side: int, train_photos8: torch.Tensor) -> torch.Tensor:
    """The training photos' mean per pixel position and channel at ``side`` x ``side``, rounded, ``n`` times."""
    import torch
    mean = sum(chunk.sum(dim=0) for chunk in _resized(train_photos8, side)) / len(train_photos8)
    return mean.round().to(torch.uint8).expand(n, -1, -1, -1).contiguous()


def _resized(photos8: torch.Tensor, side: int) -> Iterator[torch.Tensor]:
    """``photos8`` as float64 RGB on 0..255 at ``side`` x ``side`` (antialiased bilinear, not rounded; unchanged at
    that size already), a chunk at a time."""
    import torch.nn.functional as F
    for start in range(0, len(photos8), RESIZE_CHUNK):
        chunk = photos8[start:start + RESIZE_CHUNK].double()
        if chunk.shape[-2:] != (side, side):
            chunk = F.interpolate(chunk, size=(side, side), mode="bilinear", antialias=True,
                                  align_corners=False).clamp(0.0, 255.0)
        yield chunk


BASELINES: dict[str, Baseline] = {baseline.key: baseline for baseline in (
    Baseline("grey_input", GREY_INPUT_LABEL, "colourise",
             lambda data, split, encoding: grey_input(getattr(data, split), encoding)),
    Baseline("mean_colour", "mean colour (training set, per pixel)", "colourise",
             lambda data, split, encoding: mean_colour(getattr(data, split), data.train)),
    Baseline("label_map", "label map as output", "paired",
             lambda data, split, encoding: label_map(data.network_images(split, "paired"))),
    Baseline("mean_photo", "mean training photo", "paired",
             lambda data, split, encoding: mean_photo(len(getattr(data, split)), getattr(data, split).shape[-1],
                                                      data.train)),
)}
"""Every trivial baseline by key, colourisation's first."""
if tuple(BASELINES) != BASELINE_NAMES:  # the command line offers bench.config.names' list without importing this module
    raise ImportError(f"bench.evaluation.baselines: {list(BASELINES)} differ from bench.config.names.BASELINE_NAMES "
                      f"{list(BASELINE_NAMES)}; keep the two the same")
