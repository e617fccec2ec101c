"""A study: an ablation file whose ``reproduce`` block maps the grid onto a published table and its claims.

    reproduce:
      title: "pix2pix Table 1: loss functions, on colourisation"
      published: pix2pix-table-1          # a table of bench/report/published.yaml (optional)
      metrics: [psnr_rgb8, ssim_rgb8]     # ours, shown beside the published columns
      differences: what differs from the published setting
      rows:                               # the source's rows, in its order
        - {method: L1, point: {loss.adversarial: none}}   # grid keys -> values: the runs of that row
        - {method: ground truth}                           # published only
      rank: {published: "FCN per-pixel acc.", ours: ssim_rgb8}
      claims:
        - {claim: "L1+cGAN beats L1", better: [L1+cGAN, L1], metric: hist_isect_lab}
        - {claim: "70x70 is the sweet spot", best: "70x70", metric: ssim_rgb8}
        - {claim: "SSIM 0.81", value: {row: L1+cGAN, metric: ssim_rgb8, published: 0.81}}
        - {claim: "FCN scores on Cityscapes", not_testable: why}

Everything is checked against the expanded ablation, so a row that selects no run or a claim
naming an unknown row fails before anything is submitted.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from bench.config import ConfigError
from bench.config.names import METRIC_NAMES
from bench.report.published import PublishedTable
from bench.sweep.ablation import Ablation

BLOCK_KEYS = ("title", "published", "metrics", "differences", "rows", "rank", "claims")
CLAIM_KINDS = ("better", "best", "value", "not_testable")
DEFAULT_METRICS = ("psnr_rgb8", "ssim_rgb8")


class StudyError(ConfigError):
    """A study's ``reproduce`` block is invalid; the message names the file and the key."""


@dataclass(frozen=True)
class StudyRow:
    """One row of the source's table and the planned runs (every seed) that reproduce it."""

    method: str
    point: dict[str, Any] | None
    run_ids: tuple[str, ...]


@dataclass(frozen=True)
class Claim:
    """A claim of the source and how it is checked: ``better`` (rows[0] beats rows[1]), ``best`` (rows[0] is the
    best row), ``value`` (rows[0]'s number is ``published``) or ``not_testable`` (``reason``)."""

    text: str
    kind: str
    rows: tuple[str, ...] = ()
    metric: str | None = None
    published: float | None = None
    reason: str | None = None


@dataclass(frozen=True)
class Rank:
    """Rank agreement between a published column and one of our metrics."""

    published: str
    ours: str
    published_higher_is_better: bool = True


@dataclass(frozen=True)
class Study:
    name: str
    source: str
    title: str
    published: PublishedTable | None
    metrics: tuple[str, ...]
    differences: str
    rows: tuple[StudyRow, ...]
    rank: Rank | None
    claims: tuple[Claim, ...]

    def row(self, method: str) -> StudyRow:
        return next(row for row in self.rows if row.method == method)


def has_study(ablation: Ablation) -> bool:
    return "reproduce" in ablation.document


def parse_study(ablation: Ablation, tables: list[PublishedTable]) -> Study:
    """The study of ``ablation``'s ``reproduce`` block, checked against its grid and the published tables."""
    where = f"{ablation.source}: reproduce"
    block = ablation.document.get("reproduce")

    def fail(message: str) -> None:
        raise StudyError(f"{where}{message}")

    if not isinstance(block, dict):
        fail(f": got {block!r}; allowed: a mapping with keys {', '.join(BLOCK_KEYS)}")
    unknown = sorted(str(k) for k in set(block) - set(BLOCK_KEYS))
    if unknown:
        fail(f": unknown key {unknown[0]!r}; allowed keys: {', '.join(BLOCK_KEYS)}")
    for key in ("title", "differences"):
        if not isinstance(block.get(key, ""), str):
            fail(f".{key}: got {block[key]!r}; allowed: text")
    published = _published_table(block.get("published"), tables, fail)
    metrics = _metrics(block.get("metrics", list(DEFAULT_METRICS)), fail)
    rows = _rows(block.get("rows"), ablation, fail)
    methods = [row.method for row in rows]
    rank = _rank(block.get("rank"), published, fail)
    claims = tuple(_claim(i, entry, methods, fail) for i, entry in enumerate(block.get("claims") or []))
    return Study(ablation.name, ablation.source, block.get("title") or ablation.name, published, metrics,
                 " ".join(block.get("differences", "").split()), rows, rank, claims)


def _published_table(table_id: Any, tables: list[PublishedTable], fail) -> PublishedTable | None:
    if table_id is None:
        return None
    ids = [table.id for table in tables]
    if table_id not in ids:
        fail(f".published: got {table_id!r}; allowed: a table id of bench/report/published.yaml ({', '.join(ids)})")
    return tables[ids.index(table_id)]


def _metrics(metrics: Any, fail) -> tuple[str, ...]:
    if not isinstance(metrics, list) or not metrics or not all(isinstance(m, str) for m in metrics):
        fail(f".metrics: got {metrics!r}; allowed: a non-empty list of metric names")
    unknown = [m for m in metrics if m not in METRIC_NAMES]
    if unknown:
        fail(f".metrics: unknown {', '.join(unknown)}; allowed: {', '.join(METRIC_NAMES)}")
    return tuple(metrics)


def _rows(entries: Any, ablation: Ablation, fail) -> tuple[StudyRow, ...]:
    if not isinstance(entries, list) or not entries:
        fail(".rows: missing or empty; give the source's rows, e.g. [{method: L1, point: {loss.adversarial: none}}]")
    grid_keys = {key for axis in ablation.axes for key in axis.keys}
    rows, seen = [], set()
    for i, entry in enumerate(entries):
        here = f".rows[{i}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("method"), str) or not entry["method"]:
            fail(f"{here}: got {entry!r}; allowed: {{method: text, point: {{grid key: value}}}}")
        unknown = sorted(set(entry) - {"method", "point"})
        if unknown:
            fail(f"{here} ({entry['method']}): unknown key {unknown[0]!r}; allowed keys: method, point, at")
        if entry["method"] in seen:
            fail(f"{here}: method {entry['method']!r} appears twice")
        seen.add(entry["method"])
        point = entry.get("point")
        if point is None:
            rows.append(StudyRow(entry["method"], None, ()))
            continue
        if not isinstance(point, dict) or not point:
            fail(f"{here} ({entry['method']}).point: got {point!r}; allowed: a mapping of grid key -> value")
        for key in point:
            if key not in grid_keys:
                fail(f"{here} ({entry['method']}).point: {key} is not a grid key; the grid keys are "
                     f"{', '.join(sorted(grid_keys))}")
        run_ids = tuple(run.run_id for run in ablation.runs
                        if all(_same(run.point[key], value) for key, value in point.items()))
        if not run_ids:
            fail(f"{here} ({entry['method']}).point: {point} matches no grid point of {ablation.name}")
        rows.append(StudyRow(entry["method"], dict(point), run_ids))
    claimed = [set(row.run_ids) for row in rows if row.run_ids]
    for i, a in enumerate(claimed):
        for b in claimed[i + 1:]:
            if a & b:
                fail(".rows: two rows select the same runs; give each row the grid keys that tell them apart")
    return tuple(rows)


def _rank(entry: Any, published: PublishedTable | None, fail) -> Rank | None:
    if entry is None:
        return None
    if published is None:
        fail(".rank: needs .published, the table whose column gives the published order")
    if not isinstance(entry, dict) or set(entry) - {"published", "ours", "published_higher_is_better"}:
        fail(f".rank: got {entry!r}; allowed: {{published: column, ours: metric, published_higher_is_better: bool}}")
    columns = [metric["name"] for metric in published.metrics]
    if entry.get("published") not in columns:
        fail(f".rank.published: got {entry.get('published')!r}; allowed: a column of {published.id} "
             f"({', '.join(columns)})")
    if entry.get("ours") not in METRIC_NAMES:
        fail(f".rank.ours: got {entry.get('ours')!r}; allowed: {', '.join(METRIC_NAMES)}")
    higher = entry.get("published_higher_is_better", True)
    if not isinstance(higher, bool):
        fail(f".rank.published_higher_is_better: got {higher!r}; allowed: true, false")
    return Rank(entry["published"], entry["ours"], higher)


def _claim(i: int, entry: Any, methods: list[str], fail) -> Claim:
    here = f".claims[{i}]"
    if not isinstance(entry, dict) or not isinstance(entry.get("claim"), str):
        fail(f"{here}: got {entry!r}; allowed: {{claim: text, and one of {', '.join(CLAIM_KINDS)}}}")
    kinds = [kind for kind in CLAIM_KINDS if kind in entry]
    extra = sorted(set(entry) - {"claim", "metric", *CLAIM_KINDS})
    if len(kinds) != 1 or extra:
        fail(f"{here} ({entry['claim']}): give exactly one of {', '.join(CLAIM_KINDS)} (and metric); got keys "
             f"{', '.join(sorted(entry))}")
    kind, spec = kinds[0], entry[kinds[0]]
    text = " ".join(entry["claim"].split())
    if kind == "not_testable":
        if not isinstance(spec, str) or not spec:
            fail(f"{here}.not_testable: got {spec!r}; allowed: the reason, as text")
        return Claim(text, kind, reason=" ".join(spec.split()))
    if kind == "value":
        if not isinstance(spec, dict) or set(spec) != {"row", "metric", "published"}:
            fail(f"{here}.value: got {spec!r}; allowed: {{row: method, metric: name, published: number}}")
        rows, metric = (spec["row"],), spec["metric"]
        if not isinstance(spec["published"], (int, float)) or isinstance(spec["published"], bool):
            fail(f"{here}.value.published: got {spec['published']!r}; allowed: a number")
    else:
        rows = tuple(spec) if kind == "better" and isinstance(spec, list) else (spec,)
        if kind == "better" and len(rows) != 2:
            fail(f"{here}.better: got {spec!r}; allowed: [row that wins, row that loses]")
        metric = entry.get("metric")
    for method in rows:
        if method not in methods:
            fail(f"{here} ({text}): row {method!r} is not one of the rows ({', '.join(methods)})")
    if metric not in METRIC_NAMES:
        fail(f"{here} ({text}).metric: got {metric!r}; allowed: {', '.join(METRIC_NAMES)}")
    return Claim(text, kind, rows, metric, float(spec["published"]) if kind == "value" else None)


def _same(a: Any, b: Any) -> bool:
    """Equal as YAML values (true is not 1, 1 is not 1.0)."""
    return json.dumps(a) == json.dumps(b)
