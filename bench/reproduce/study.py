"""A study: an ablation file whose ``reproduce`` block maps the grid onto a published table and its claims.

    reproduce:
      title: "pix2pix Table 1: loss functions, on colourisation"
      published: pix2pix-table-1          # a table of bench/report/published.yaml (optional)
      metrics: [psnr_rgb8, ssim_rgb8]     # ours, shown beside the published columns
      differences: what differs from the published setting
      settings:                           # each setting and where it comes from
        - {setting: "lambda 100", provenance: stated, source: pix2pix-v3, where: "Sec. 4.2",
           quote: "Adding both terms together (with λ = 100) reduces these artifacts."}
        - {setting: "3 seeds", provenance: our choice, why: "the paper reports one run per row"}
      rows:                               # the source's rows, in its order
        - {method: L1, point: {loss.adversarial: none}}   # grid keys -> values: the runs of that row
        - {method: ground truth}                           # published only
      rank: {published: "FCN per-pixel acc.", ours: ssim_rgb8}
      claims:
        - id: pix2pix-cgan-colour-distribution   # the same id in every study that tests the sentence
          claim: "cGAN: colour distribution closer to the ground truth than L1's"   # a short label
          source: pix2pix-v3                      # a document of bench.reproduce.sources
          where: "Sec. 4.2, Fig. 7"
          quote: "Using a cGAN, on the other hand, pushes the output distribution closer to the ground truth."
          operationalisation: why this metric and these rows test the sentence, and what would contradict it
          better: [cGAN, L1]                      # or similar / best / value / not_testable (below)
          metric: hist_isect_lab

A claim is one of:

* ``better: [A, B]``: A beats B on ``metric``;
* ``similar: [A, B]`` with ``margin`` (on the metric's scale) and ``margin_why``: A and B differ by
  less than the margin (an equivalence test), for sentences such as "scored similarly";
* ``best: R``: R beats every other row with runs;
* ``value: {row, metric, published}``: R scores the published number (testable only where the
  published protocol is ours);
* ``not_testable: {class, reason}``: the class is ``weights`` (a file ``colorbench assets fetch``
  would bring), ``data`` (a dataset not on this machine) or ``protocol`` (a measurement we cannot
  make, such as an FCN trained on Cityscapes or Mechanical Turk).

Optional per claim: ``smallest_effect`` (the smallest difference of interest on the metric's
scale; default :data:`bench.reproduce.verdicts.SMALLEST_EFFECTS`) and ``caveat`` (``{by_construction:
why}`` when the metric is an arm's own training objective, ``{unequal_budget: why}`` when the arms
train for different numbers of updates): such a claim is shown but not counted in the headline.

A setting's ``provenance`` is ``stated`` (with ``source``, ``where`` and the ``quote`` that states
it), ``inferred``, ``reference default`` (pix2pix's reference implementation) or ``our choice``
(each of the last three with ``why``).  Quotations are checked against the documents' text by the
tests (:mod:`bench.reproduce.sources`).

Everything is checked against the expanded ablation, so a row that selects no run or a claim
naming an unknown row fails before anything is submitted.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from bench.config import ConfigError
from bench.config.names import METRIC_NAMES
from bench.report.published import PublishedTable
from bench.reproduce.sources import DOCUMENTS
from bench.sweep.ablation import Ablation

BLOCK_KEYS = ("title", "published", "metrics", "differences", "settings", "rows", "rank", "claims")
CLAIM_KINDS = ("better", "similar", "best", "value", "not_testable")
CLAIM_KEYS = ("id", "claim", "source", "where", "quote", "operationalisation", "metric", "margin", "margin_why",
              "smallest_effect", "caveat", *CLAIM_KINDS)
NOT_TESTABLE_CLASSES = ("weights", "data", "protocol")
CAVEATS = ("by_construction", "unequal_budget")
PROVENANCES = ("stated", "inferred", "reference default", "our choice")
DEFAULT_METRICS = ("psnr_rgb8", "ssim_rgb8")
_CLAIM_ID = re.compile(r"[a-z0-9][a-z0-9.-]*")


class StudyError(ConfigError):
    """A study's ``reproduce`` block is invalid; the message names the file and the key."""


@dataclass(frozen=True)
class StudyRow:
    """One row of the source's table and the planned runs (every seed) that reproduce it."""

    method: str
    point: dict[str, Any] | None
    run_ids: tuple[str, ...]
    absent: str | None = None  # why the row has no runs at this profile (no analogue at its scale)


@dataclass(frozen=True)
class Quote:
    """Where a claim or a setting comes from: a document of :mod:`bench.reproduce.sources`, the section, the words."""

    source: str
    where: str
    text: str

    def citation(self) -> str:
        return f"{DOCUMENTS[self.source].citation}, {self.where}"


@dataclass(frozen=True)
class Claim:
    """A claim of a source and how it is tested: ``better`` (rows[0] beats rows[1]), ``similar`` (rows[0] and
    rows[1] differ by less than ``margin``), ``best`` (rows[0] beats every other row), ``value`` (rows[0]'s number
    is ``published``) or ``not_testable`` (``reason``, of ``reason_class``)."""

    id: str
    text: str
    kind: str
    quote: Quote
    operationalisation: str
    rows: tuple[str, ...] = ()
    metric: str | None = None
    published: float | None = None
    margin: float | None = None
    margin_why: str | None = None
    smallest_effect: float | None = None
    caveat: tuple[str, str] | None = None  # (by_construction | unequal_budget, why)
    reason: str | None = None
    reason_class: str | None = None


@dataclass(frozen=True)
class Setting:
    """One setting of a study and its provenance (``stated`` ones carry the quote that states them)."""

    setting: str
    provenance: str
    quote: Quote | None = None
    why: str | None = None


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
    settings: tuple[Setting, ...] = ()

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
    ids = [claim.id for claim in claims]
    if len(set(ids)) != len(ids):
        fail(f".claims: id {next(i for i in ids if ids.count(i) > 1)!r} appears twice; one id per claim")
    settings = tuple(_setting(i, entry, fail) for i, entry in enumerate(block.get("settings") or []))
    return Study(ablation.name, ablation.source, block.get("title") or ablation.name, published, metrics,
                 " ".join(block.get("differences", "").split()), rows, rank, claims, settings)


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
        unknown = sorted(set(entry) - {"method", "point", "absent"})
        if unknown:
            fail(f"{here} ({entry['method']}): unknown key {unknown[0]!r}; allowed keys: method, point, at")
        if entry["method"] in seen:
            fail(f"{here}: method {entry['method']!r} appears twice")
        seen.add(entry["method"])
        point = entry.get("point")
        if point is None:
            absent = entry.get("absent")
            rows.append(StudyRow(entry["method"], None, (), " ".join(absent.split()) if absent else None))
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
    if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
        fail(f"{here}: got {entry!r}; allowed: {{id: ..., claim: ..., source: ..., where: ..., quote: ..., "
             f"operationalisation: ..., and one of {', '.join(CLAIM_KINDS)}}}")
    claim_id = entry["id"]
    here = f".claims[{i}] ({claim_id})"
    if not _CLAIM_ID.fullmatch(claim_id):
        fail(f"{here}.id: got {claim_id!r}; allowed: lower-case letters, digits, '.' and '-'")
    unknown = sorted(str(k) for k in set(entry) - set(CLAIM_KEYS))
    if unknown:
        fail(f"{here}: unknown key {unknown[0]!r}; allowed keys: {', '.join(CLAIM_KEYS)}")
    kinds = [kind for kind in CLAIM_KINDS if kind in entry]
    if len(kinds) != 1:
        fail(f"{here}: give exactly one of {', '.join(CLAIM_KINDS)}; got keys {', '.join(sorted(entry))}")
    text, operationalisation = _text(entry, "claim", here, fail), _text(entry, "operationalisation", here, fail)
    quote = _quote(entry, here, fail)
    kind, spec = kinds[0], entry[kinds[0]]
    common = {"id": claim_id, "text": text, "kind": kind, "quote": quote, "operationalisation": operationalisation,
              "smallest_effect": _optional_number(entry, "smallest_effect", here, fail, positive=True),
              "caveat": _caveat(entry.get("caveat"), here, fail)}
    if kind == "not_testable":
        if not isinstance(spec, dict) or set(spec) != {"class", "reason"} or spec["class"] not in NOT_TESTABLE_CLASSES \
                or not isinstance(spec["reason"], str) or not spec["reason"].strip():
            fail(f"{here}.not_testable: got {spec!r}; allowed: {{class: {' | '.join(NOT_TESTABLE_CLASSES)}, "
                 "reason: text}")
        return Claim(**common, reason=" ".join(spec["reason"].split()), reason_class=spec["class"])
    if kind == "value":
        if not isinstance(spec, dict) or set(spec) != {"row", "metric", "published"}:
            fail(f"{here}.value: got {spec!r}; allowed: {{row: method, metric: name, published: number}}")
        rows, metric = (spec["row"],), spec["metric"]
        if not isinstance(spec["published"], (int, float)) or isinstance(spec["published"], bool):
            fail(f"{here}.value.published: got {spec['published']!r}; allowed: a number")
    elif kind in ("better", "similar"):
        rows = tuple(spec) if isinstance(spec, list) else ()
        if len(rows) != 2 or rows[0] == rows[1]:
            fail(f"{here}.{kind}: got {spec!r}; allowed: [row, another row]"
                 + (" (the one claimed better first)" if kind == "better" else ""))
        metric = entry.get("metric")
    else:
        rows, metric = (spec,), entry.get("metric")
    for method in rows:
        if method not in methods:
            fail(f"{here}: row {method!r} is not one of the rows ({', '.join(methods)})")
    if metric not in METRIC_NAMES:
        fail(f"{here}.metric: got {metric!r}; allowed: {', '.join(METRIC_NAMES)}")
    margin = _optional_number(entry, "margin", here, fail, positive=True)
    if (kind == "similar") != (margin is not None) or (margin is not None and not isinstance(entry.get("margin_why"),
                                                                                          str)):
        fail(f"{here}: a similar claim needs margin (a number > 0 on the metric's scale) and margin_why (text); "
             "other claims take neither")
    return Claim(**common, rows=rows, metric=metric, published=float(spec["published"]) if kind == "value" else None,
                 margin=margin, margin_why=" ".join(entry["margin_why"].split()) if margin is not None else None)


def _text(entry: dict, key: str, here: str, fail) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value.strip():
        fail(f"{here}.{key}: got {value!r}; allowed: text")
    return " ".join(value.split())


def _quote(entry: dict, here: str, fail) -> Quote:
    """The claim's or setting's source, section and quotation (the tests check the words against the source)."""
    if entry.get("source") not in DOCUMENTS:
        fail(f"{here}.source: got {entry.get('source')!r}; allowed: {', '.join(DOCUMENTS)}")
    return Quote(entry["source"], _text(entry, "where", here, fail), _text(entry, "quote", here, fail))


def _optional_number(entry: dict, key: str, here: str, fail, positive: bool = False) -> float | None:
    value = entry.get(key)
    if value is None:
        return None
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or \
            (positive and value <= 0):
        fail(f"{here}.{key}: got {value!r}; allowed: a number" + (" > 0" if positive else ""))
    return float(value)


def _caveat(value: Any, here: str, fail) -> tuple[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or len(value) != 1 or next(iter(value)) not in CAVEATS \
            or not isinstance(next(iter(value.values())), str):
        fail(f"{here}.caveat: got {value!r}; allowed: {{by_construction: why}} or {{unequal_budget: why}}")
    (kind, why), = value.items()
    return kind, " ".join(why.split())


def _setting(i: int, entry: Any, fail) -> Setting:
    here = f".settings[{i}]"
    if not isinstance(entry, dict) or not isinstance(entry.get("setting"), str):
        fail(f"{here}: got {entry!r}; allowed: {{setting: text, provenance: {' | '.join(PROVENANCES)}, ...}}")
    here = f".settings[{i}] ({entry['setting']})"
    provenance = entry.get("provenance")
    if provenance not in PROVENANCES:
        fail(f"{here}.provenance: got {provenance!r}; allowed: {', '.join(PROVENANCES)}")
    if provenance == "stated":
        extra = sorted(set(entry) - {"setting", "provenance", "source", "where", "quote"})
        if extra:
            fail(f"{here}: unknown key {extra[0]!r} for a stated setting; allowed: setting, provenance, source, "
                 "where, quote")
        return Setting(" ".join(entry["setting"].split()), provenance, quote=_quote(entry, here, fail))
    extra = sorted(set(entry) - {"setting", "provenance", "why"})
    if extra:
        fail(f"{here}: unknown key {extra[0]!r}; a setting that is not stated takes setting, provenance and why")
    return Setting(" ".join(entry["setting"].split()), provenance, why=_text(entry, "why", here, fail))


def _same(a: Any, b: Any) -> bool:
    """Equal as YAML values (true is not 1, 1 is not 1.0)."""
    return json.dumps(a) == json.dumps(b)
