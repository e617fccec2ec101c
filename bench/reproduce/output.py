"""A study's reproduction files beside its report: ``reproduction.md`` and ``reproduction.json``."""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path

from bench.report.analysis import Analysis
from bench.report.published import PublishedTable
from bench.reproduce.render import counts_sentence, reproduction_markdown, verdict_counts
from bench.reproduce.study import parse_study
from bench.reproduce.verdicts import Reproduction, Verdict, reproduce
from bench.run import rundir
from bench.sweep.ablation import Ablation
from bench.sweep.profiles import FULL

MARKDOWN_FILE = "reproduction.md"
JSON_FILE = "reproduction.json"


def write_reproduction(ablation: Ablation, analysis: Analysis, out: Path, published: list[PublishedTable],
                       n_resamples: int, seed: int) -> str:
    """Write ``out/reproduction.md`` and ``out/reproduction.json``; return the section for the report's table.md."""
    reproduction = reproduce(parse_study(ablation, published), analysis, n_resamples, seed)
    profile = ablation.document.get("profile", FULL)
    rundir.write_text(out / MARKDOWN_FILE, reproduction_markdown(reproduction, profile))
    rundir.write_json(out / JSON_FILE, summary(reproduction, profile))
    return (f"## Reproduction\n\nThe published table beside ours, each claim quoted from its source with its verdict: "
            f"[{MARKDOWN_FILE}]({MARKDOWN_FILE}) ({counts_sentence(verdict_counts(reproduction))}).\n")


def summary(reproduction: Reproduction, profile: str) -> dict:
    """The numbers of a reproduction as plain values (NaN as null), for the overview across studies."""
    study = reproduction.study
    return _plain({
        "study": study.name, "profile": profile, "title": study.title,
        "published": None if study.published is None else study.published.id,
        "dataset": reproduction.dataset, "resolution": reproduction.resolution, "n_images": reproduction.n_images,
        "claims": verdict_counts(reproduction),
        "baselines": None if reproduction.baselines is None else dataclasses.asdict(reproduction.baselines),
        "rows": [{"method": row.method, "published": list(row.published), "runs_done": row.runs_done,
                  "runs_planned": row.runs_planned, "updates": list(row.updates),
                  "images_seen": list(row.images_seen), "widths": list(row.widths),
                  "ours": {metric: dataclasses.asdict(s) for metric, s in row.ours.items()}}
                 for row in reproduction.rows],
        "verdicts": [_verdict(v) for v in reproduction.verdicts],
        "rank": None if reproduction.rank is None else {
            "published": reproduction.rank.rank.published, "ours": reproduction.rank.rank.ours,
            "n_rows": reproduction.rank.n_rows, "tau": reproduction.rank.tau,
            "ci_low": reproduction.rank.ci_low, "ci_high": reproduction.rank.ci_high},
    })


def _verdict(verdict: Verdict) -> dict:
    claim = verdict.claim
    return {"id": claim.id, "claim": claim.text, "kind": claim.kind, "metric": claim.metric, "rows": list(claim.rows),
            "source": claim.quote.source, "where": claim.quote.where, "quote": claim.quote.text,
            "citation": claim.quote.citation(), "margin": claim.margin,
            "verdict": verdict.verdict, "raw": verdict.raw, "reason_class": verdict.reason_class,
            "gate": verdict.gate, "excluded": verdict.excluded, "p_value": verdict.p_value, "detail": verdict.detail,
            "runs": {row: list(ids) for row, ids in verdict.runs.items()},
            "trajectory": [list(point) for point in verdict.trajectory],
            "stable_over_last_half": verdict.stable_over_last_half(),
            "comparisons": [{"rows": list(c.rows), "difference": c.seeds.value, "ci_low": c.seeds.ci_low,
                             "ci_high": c.seeds.ci_high, "p_value": c.seeds.p_value, "n_seeds": c.seeds.n,
                             "paired": c.seeds.paired, "sd": c.seeds.sd, "bootstrap": c.bootstrap,
                             "seeds_needed_observed": c.seeds_needed_observed,
                             "seeds_needed_smallest": c.seeds_needed_smallest} for c in verdict.comparisons]}


def _plain(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
