"""The trivial baseline every colouriser must beat: the grey input itself, scored like a run's outputs.

Copying the greyscale input (L with a = b = 0, decoded to sRGB exactly as the sample grids
show it: ``bench.data.colour.input_rgb8``) scores PSNR 17.02 dB, SSIM 0.850 on the demo's test
tiles, more SSIM than the demo's generator.  So each run scores it too, on its own test
images with its own metric functions, and appends the records to metrics.jsonl with
``"source": "grey_input"`` (otherwise the same fields as the run's records): reports are
built from run directories alone and show a "grey input" row from them.

The records are written once per run and evaluation set: at the first evaluation during
training, and by ``colorbench eval`` for a dataset or metric the run has no grey-input record
of yet (they are the same at every step: the grey input does not depend on the weights).

The paired task (facades' label map -> photo) has no grey input: its input is a label map
whose colours are class codes, not a rendering of the photo, so copying it is no meaningful
baseline; no grey-input record is written for it and reports say so.

Only the constants and the readers are imported at module level: ``bench.report`` reads them
without torch.
"""
from __future__ import annotations

import json
from pathlib import Path

from bench.run import rundir

GREY_INPUT_SOURCE = "grey_input"  # the ``source`` of the records (runs' own: ``train``, ``eval``)
GREY_INPUT_LABEL = "grey input (a = b = 0)"
NOT_RECORDED = "not recorded (run made before grey-input scoring)"
NOT_APPLICABLE = "not applicable (labels -> photo task: the input is a label map, not a grey photo)"


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
                             split=split, step=step, epoch=epoch, source=GREY_INPUT_SOURCE)
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
