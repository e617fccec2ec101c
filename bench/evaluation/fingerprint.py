"""The protocol fingerprint of a metric record: what two numbers must share before they are compared.

A record already names its split, dataset, n_images, resolution, the metric's protocol and its
detector.  Its ``fingerprint`` adds what the field's numbers usually leave unstated:

* ``test_list``: 16 hex digits of the sha256 of the scored image ids, in order (which test images);
* ``ground_truth``: how each test item became an S x S image (``bench.data.items.ITEM_RESIZE``);
* ``outputs``: what was scored (``generator``, ``grey input``, ``baseline <key>``, ``predictions``);
* ``outputs_format``: ``8-bit RGB in memory``, or the predictions' file formats (``PNG``, ``JPEG``, ...);
* ``outputs_lossy``: whether an output went through a lossy file format (JPEG, WebP) before scoring;
* ``outputs_resized``: null, or the resizer that brought predictions to the evaluation size;
* ``input_luminance``: whether the input's L was put back into the outputs before scoring (many papers
  evaluate that way; it raises PSNR a lot);
* ``detector_sha256``: the sha256 of the detector's weights file (null for pixel metrics and stand-ins).

:func:`comparison_fields` reads any record, old ones included, as text fields.  Two numbers are
compared (ranked in one leaderboard table) only when the fields of :data:`TABLE_FIELDS` and, per
metric, of :data:`COLUMN_FIELDS` are equal.  ``outputs`` and ``outputs_format`` are not among them:
a lossless file holds the same pixels as the memory it came from.  ``detector_sha256`` is not either:
the detector id names its weights file, which is only ever loaded after its sha256 matched.

Records written before the fingerprint existed are read with what is certain about them: the test
list from their ``image_ids``, the one resize rule every version has used, outputs as runs made them
(the generator's or the grey input's, in memory, never resized, L not re-inserted), the protocol hashed
from the record's own; anything else is ``not recorded``, which equals nothing recorded.

This module imports no heavy library: the report layer reads records with it.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from bench.data.items import ITEM_RESIZE

IN_MEMORY = "8-bit RGB in memory"
NOT_RECORDED = "not recorded"
LOSSY_FORMATS = ("JPEG", "MPO", "WEBP")  # Pillow's format names; a WebP file may be lossless, but says so nowhere
# Fields a leaderboard table shares (with the record's dataset, split, resolution and n_images), and those a metric's
# column shares (with the metric's name): rows that differ in one of them are never ranked together.
TABLE_FIELDS = ("test_list", "ground_truth", "outputs_lossy", "outputs_resized", "input_luminance")
COLUMN_FIELDS = ("protocol", "detector")
FIELDS = ("test_list", "ground_truth", "outputs", "outputs_format", "outputs_lossy", "outputs_resized",
          "input_luminance", "protocol", "detector", "detector_sha256")
_RUN_SOURCES = {"train": "generator", "eval": "generator", "grey_input": "grey input"}


@dataclass(frozen=True)
class Outputs:
    """What a set of scored outputs is and how it reached the metrics (see the module docstring)."""

    kind: str
    format: str = IN_MEMORY
    lossy: bool = False
    resized: str | None = None
    input_luminance: bool = False


GENERATED = Outputs("generator")
GREY_INPUT = Outputs("grey input")


def list_hash(image_ids: list[str]) -> str:
    """16 hex digits of the sha256 of the image ids, in order."""
    return hashlib.sha256(json.dumps(list(image_ids)).encode()).hexdigest()[:16]


def protocol_hash(protocol: dict) -> str:
    """16 hex digits of the sha256 of a metric's protocol (its definition, e.g. which ΔCF)."""
    return hashlib.sha256(json.dumps(protocol, sort_keys=True).encode()).hexdigest()[:16]


def record_fingerprint(image_ids: list[str], outputs: Outputs, detector_sha256: str | None) -> dict:
    """The ``fingerprint`` of a record scoring ``outputs`` on ``image_ids``."""
    return {"test_list": list_hash(image_ids), "ground_truth": ITEM_RESIZE, "outputs": outputs.kind,
            "outputs_format": outputs.format, "outputs_lossy": outputs.lossy, "outputs_resized": outputs.resized,
            "input_luminance": outputs.input_luminance, "detector_sha256": detector_sha256}


def comparison_fields(record: dict) -> dict[str, str]:
    """Every field of :data:`FIELDS` of ``record`` as text (booleans ``true``/``false``, null ``none``)."""
    recorded = record.get("fingerprint")
    fields = dict(recorded) if isinstance(recorded, dict) else _older(record)
    protocol = record.get("protocol")
    fields["protocol"] = protocol_hash(protocol) if isinstance(protocol, dict) else NOT_RECORDED
    fields["detector"] = record.get("detector")
    return {name: _text(fields.get(name, NOT_RECORDED)) for name in FIELDS}


def _older(record: dict) -> dict:
    """What is certain about a record written before records carried their fingerprint."""
    ids = record.get("image_ids")
    fields = {"test_list": list_hash(ids) if isinstance(ids, list) else NOT_RECORDED, "ground_truth": ITEM_RESIZE}
    kind = _RUN_SOURCES.get(record.get("source") or "train")  # the oldest records name no source: a run's own
    if kind is not None:
        outputs = Outputs(kind)
        fields.update(outputs=outputs.kind, outputs_format=outputs.format, outputs_lossy=outputs.lossy,
                      outputs_resized=outputs.resized, input_luminance=outputs.input_luminance)
    return fields


def _text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "none" if value is None else str(value)
