"""A study's reproduction files beside its report: ``reproduction.md`` and ``reproduction.json``."""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path

from bench.report.analysis import Analysis
from bench.report.published import PublishedTable
from bench.reproduce.verdicts import Reproduction, reproduce
from bench.reproduce.render import reproduction_markdown, verdict_counts
from bench.reproduce.study import parse_study
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
    return reproduction_markdown(reproduction, profile, heading="##")


def summary(reproduction: Reproduction, profile: str) -> dict:
    """The numbers of a reproduction as plain values (NaN as null), for tables across studies."""
    study = reproduction.study
    return _plain({
        "study": study.name, "profile": profile, "title": study.title, "source": study.source,
        "published": None if study.published is None else study.published.id,
        "dataset": reproduction.dataset, "resolution": reproduction.resolution, "n_images": reproduction.n_images,
        "claims": verdict_counts(reproduction),
        "grey_input": None if reproduction.grey_input is None else dataclasses.asdict(reproduction.grey_input),
        "rows": [{"method": row.method, "published": list(row.published), "runs_done": row.runs_done,
                  "runs_planned": row.runs_planned,
                  "ours": {metric: dataclasses.asdict(s) for metric, s in row.ours.items()}}
                 for row in reproduction.rows],
        "verdicts": [{"claim": v.claim.text, "kind": v.claim.kind, "metric": v.claim.metric, "verdict": v.verdict,
                      "detail": v.detail} for v in reproduction.verdicts],
        "rank": None if reproduction.rank is None else {
            "published": reproduction.rank.rank.published, "ours": reproduction.rank.rank.ours,
            "n_rows": reproduction.rank.n_rows, "tau": reproduction.rank.tau,
            "ci_low": reproduction.rank.ci_low, "ci_high": reproduction.rank.ci_high},
    })


def _plain(value):
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
