"""A reproduction as markdown, in the source's own layout: its rows, its columns, ours beside them, its claims."""
from __future__ import annotations

import math

from bench.evaluation.baselines import GREY_INPUT_LABEL
from bench.report.published import format_published
from bench.report.tables import decimals, metric_heading
from bench.reproduce.verdicts import RANK_RESAMPLES, Reproduction

VERDICT_ORDER = ("holds", "does not hold", "not testable here")


def reproduction_markdown(reproduction: Reproduction, profile: str, heading: str = "#") -> str:
    """The study's table with the published numbers, ours (mean [95% t-interval] over seeds), claims, rank."""
    study = reproduction.study
    lines = [f"{heading} Reproduction: {study.title}", ""]
    if study.published is not None:
        lines.append(f"Published: {study.published.citation}, {study.published.where}.")
    lines.append(f"Ours: study `{study.name}` (profile `{profile}`), measured on {_scored_on(reproduction)}.")
    if study.differences:
        lines += ["", f"**What differs from the published setting.** {study.differences}"]
    lines += ["", *_table(reproduction), "", *_claims(reproduction)]
    if study.rank is not None:
        lines += ["", *_rank(reproduction)]
    if reproduction.unavailable:
        lines += ["", "Metrics without values: " + "; ".join(f"`{m}`: {why}" for m, why in
                                                           sorted(reproduction.unavailable.items())) + "."]
    return "\n".join(lines) + "\n"


def verdict_counts(reproduction: Reproduction) -> dict[str, int]:
    """How many claims hold, do not hold, are not testable here."""
    counts = dict.fromkeys(VERDICT_ORDER, 0)
    for verdict in reproduction.verdicts:
        counts[verdict.verdict] += 1
    return counts


def _scored_on(reproduction: Reproduction) -> str:
    if reproduction.dataset is None:
        return "no finished runs yet"
    images = f"{reproduction.n_images} test images" if reproduction.n_images else "its test images"
    return f"{images} of `{reproduction.dataset}` at {reproduction.resolution}"


def _table(reproduction: Reproduction) -> list[str]:
    study = reproduction.study
    published = [m["name"] for m in study.published.metrics] if study.published is not None else []
    places = {metric: decimals([row.ours[metric].mean for row in reproduction.rows if metric in row.ours])
              for metric in study.metrics}
    header = ["row", *[f"published: {name}" for name in published],
              *[f"ours: {metric_heading(metric)}" for metric in study.metrics], "runs done"]
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    for row in reproduction.rows:
        cells = [row.method, *[format_published(v) for v in row.published]]
        cells += [_summary(row.ours.get(metric), places[metric]) for metric in study.metrics]
        cells.append(f"{row.runs_done} of {row.runs_planned}" if row.runs_planned else "no runs (published only)")
        lines.append("| " + " | ".join(cells) + " |")
    grey = reproduction.grey_input
    if grey is not None:
        cells = [GREY_INPUT_LABEL, *["–" for _ in published]]
        cells += [f"{grey.values[m]:.{places[m]}f}" if m in grey.values else "–" for m in study.metrics]
        lines.append("| " + " | ".join([*cells, grey.note]) + " |")
    lines += ["", "Ours: mean over seeds [95% Student-t interval of the mean] (seeds); `–`: no finished run."]
    if grey is not None:
        lines.append(f"{GREY_INPUT_LABEL}: the greyscale input itself as the output, the trivial baseline a "
                     "colouriser must beat, scored by the runs on the same test images with the same metrics.")
    return lines


def _summary(summary, places: int) -> str:
    if summary is None:
        return "–"
    if summary.n < 2 or math.isnan(summary.ci_low):
        return f"{summary.mean:.{places}f} ({summary.n})"
    return f"{summary.mean:.{places}f} [{summary.ci_low:.{places}f}, {summary.ci_high:.{places}f}] ({summary.n})"


def _claims(reproduction: Reproduction) -> list[str]:
    counts = verdict_counts(reproduction)
    testable = counts["holds"] + counts["does not hold"]
    lines = [f"**Claims**: {counts['holds']} of {testable} testable hold "
             f"({counts['not testable here']} not testable here).", "",
             "| claim | metric | verdict | why |", "|---|---|---|---|"]
    for verdict in reproduction.verdicts:
        metric = f"`{verdict.claim.metric}`" if verdict.claim.metric else "–"
        lines.append(f"| {verdict.claim.text} | {metric} | **{verdict.verdict}** | {_cell(verdict.detail)} |")
    return lines


def _rank(reproduction: Reproduction) -> list[str]:
    rank = reproduction.study.rank
    if reproduction.rank is None:
        return [f"**Rank agreement** ({rank.published} vs `{rank.ours}`): not computed; it needs at least 3 rows with "
                "a published value and finished runs."]
    agreement = reproduction.rank
    return [f"**Rank agreement** of the published column {rank.published} with our `{rank.ours}` over "
            f"{agreement.n_rows} rows: Kendall's tau = {agreement.tau:+.2f} [{agreement.ci_low:+.2f}, "
            f"{agreement.ci_high:+.2f}] (95% percentile interval, {RANK_RESAMPLES:,} resamples of each row's seeds)."]


def _cell(text: str) -> str:
    return text.replace("|", "\\|")
