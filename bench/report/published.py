"""Published numbers (``published.yaml`` beside this module) and whether their protocol is colorbench's.

A published number is comparable with one of ours when it measures the same quantity the
same way (``metric_protocol: same``) on the same data (dataset, evaluation resolution, number
of test images).  :func:`comparability` says ``yes``, ``partly`` (nothing differs, but part of
the protocol is not stated) or ``no``, with the reasons.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.config import yamlio

PUBLISHED_FILE = Path(__file__).with_name("published.yaml")
METRIC_PROTOCOLS = ("same", "different", "not stated")
METRIC_KEYS = ("name", "ours", "metric_protocol", "metric_note")


class PublishedError(ValueError):
    """published.yaml is malformed; the message names the file, the table and the key."""


@dataclass(frozen=True)
class PublishedTable:
    """One published table: where it comes from, what it was measured on, its columns and rows."""

    id: str
    citation: str
    where: str
    title: str
    protocol: dict[str, Any]
    metrics: tuple[dict[str, Any], ...]  # name, and optionally ours, metric_protocol, metric_note
    rows: tuple[dict[str, Any], ...]  # method, values (one per metric, None where not reported)


@dataclass(frozen=True)
class Comparability:
    """Whether a published column compares with our numbers: ``yes``, ``partly`` or ``no``, and why."""

    verdict: str
    reasons: tuple[str, ...]

    def describe(self) -> str:
        return self.verdict + (": " + "; ".join(self.reasons) if self.reasons else "")


def load_published(path: str | Path = PUBLISHED_FILE) -> list[PublishedTable]:
    """The tables of a published-numbers file, validated."""
    path = Path(path)
    try:
        data = yamlio.read(path)
    except OSError as err:
        raise PublishedError(f"{path}: cannot be read ({err.strerror or err})") from None
    except yamlio.YamlError as err:
        raise PublishedError(str(err)) from None
    if not isinstance(data, dict) or set(data) != {"sources", "tables"}:
        raise PublishedError(f"{path}: expected the keys sources and tables")
    return [_table(path, data["sources"], entry) for entry in data["tables"]]


def _table(path: Path, sources: dict, entry: Any) -> PublishedTable:
    if not isinstance(entry, dict):
        raise PublishedError(f"{path}: table {entry!r}: expected a mapping")
    where = f"{path}: table {entry.get('id')}"
    missing = [key for key in ("id", "source", "where", "title", "protocol", "metrics", "rows") if key not in entry]
    if missing:
        raise PublishedError(f"{where}: missing {', '.join(missing)}")
    if entry["source"] not in sources:
        raise PublishedError(f"{where}: source {entry['source']!r} is not one of sources: {', '.join(sources)}")
    for metric in entry["metrics"]:
        if not isinstance(metric, dict) or "name" not in metric:
            raise PublishedError(f"{where}: a metric without a name: {metric}")
        unknown = [key for key in metric if key not in METRIC_KEYS]
        if unknown:  # e.g. the tail of an unquoted note cut at a comma: {metric_note: a, b} is two keys
            raise PublishedError(f"{where}: metric {metric['name']}: unknown key {unknown[0]!r}; allowed: "
                                 f"{', '.join(METRIC_KEYS)} (quote a value that holds a comma)")
        if metric.get("metric_protocol", "not stated") not in METRIC_PROTOCOLS:
            raise PublishedError(f"{where}: metric {metric['name']}: metric_protocol {metric['metric_protocol']!r}; "
                                 f"allowed: {', '.join(METRIC_PROTOCOLS)}")
    for row in entry["rows"]:
        values = row.get("values")
        if not isinstance(values, list) or len(values) != len(entry["metrics"]):
            raise PublishedError(f"{where}: row {row.get('method')!r} has {values!r}; "
                                 f"expected {len(entry['metrics'])} values (null where not reported)")
        if not all(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in values):
            raise PublishedError(f"{where}: row {row.get('method')!r}: values must be numbers or null, got {values}")
    return PublishedTable(entry["id"], " ".join(str(sources[entry["source"]]["citation"]).split()), entry["where"],
                          entry["title"], dict(entry["protocol"]), tuple(entry["metrics"]), tuple(entry["rows"]))


def comparability(table: PublishedTable, metric: dict[str, Any], dataset: str, resolution: str | None,
                  n_images: int | None) -> Comparability:
    """Whether ``metric`` (a column of ``table``) compares with ours on ``dataset`` at ``resolution`` ("HxW")."""
    differs, unstated = [], []
    protocol = metric.get("metric_protocol", "not stated")
    note = metric.get("metric_note")
    if protocol == "different":
        differs.append(f"metric: {note or 'computed differently'}")
    elif protocol == "not stated":
        unstated.append(f"metric: {note or 'how it is computed is not stated'}")
    theirs = table.protocol
    if theirs.get("dataset") != dataset:
        differs.append(f"dataset {theirs.get('dataset', 'not stated')} vs ours {dataset}")
    side = _side(resolution)
    if "resolution" not in theirs:
        unstated.append("resolution not stated")
    elif theirs["resolution"] != side:
        differs.append(f"resolution {theirs['resolution']}x{theirs['resolution']} vs ours {resolution}")
    if "n_test" not in theirs:
        unstated.append("number of test images not stated")
    elif theirs["n_test"] != n_images:
        differs.append(f"{theirs['n_test']} test images vs ours {n_images}")
    if differs:
        return Comparability("no", tuple(differs))
    return Comparability("partly", tuple(unstated)) if unstated else Comparability("yes", ())


def _side(resolution: str | None) -> int | None:
    """The side of a square "HxW" resolution (None when not square or not known)."""
    if not isinstance(resolution, str) or "x" not in resolution:
        return None
    height, width = resolution.split("x", 1)
    return int(height) if height == width and height.isdigit() else None


def published_markdown(tables: list[PublishedTable]) -> str:
    """Every published table as markdown, each with its source and protocol."""
    lines = ["# Published numbers", "",
             "Generated by `colorbench report` from `bench/report/published.yaml`, where each number is stored with "
             "its source and protocol.  A table of an ablation shows those that measure one of its metrics and "
             "says whether their protocol is colorbench's.", ""]
    for table in tables:
        lines += [f"## {table.title}", "", f"{table.citation}, {table.where}.", ""]
        lines += [f"- {key}: {value}" for key, value in table.protocol.items() if key != "notes"]
        if "notes" in table.protocol:
            lines.append(f"- notes: {' '.join(str(table.protocol['notes']).split())}")
        for metric in table.metrics:
            if "ours" in metric or "metric_note" in metric:
                ours = f"colorbench `{metric['ours']}`, protocol {metric.get('metric_protocol', 'not stated')}" \
                    if "ours" in metric else "no colorbench metric"
                note = f" ({metric['metric_note']})" if "metric_note" in metric else ""
                lines.append(f"- {metric['name']}: {ours}{note}")
        lines += ["", "| method | " + " | ".join(m["name"] for m in table.metrics) + " |",
                  "|---|" + "---|" * len(table.metrics)]
        lines += ["| " + row["method"] + " | " + " | ".join(format_published(v) for v in row["values"]) + " |"
                  for row in table.rows]
        lines.append("")
    return "\n".join(lines)


def format_published(value: float | int | None) -> str:
    """A published value as printed (thousands separated for counts, '–' where not reported)."""
    if value is None:
        return "–"
    if isinstance(value, int) and abs(value) >= 10_000:
        return f"{value:,d}"
    return str(value)
