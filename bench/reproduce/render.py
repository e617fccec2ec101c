"""A reproduction as markdown, in the source's own layout: its rows, its columns, ours beside them, the trivial
baselines under them, its settings' provenance, and each claim quoted with its verdict."""
from __future__ import annotations

import math

from bench.report.published import format_published
from bench.report.tables import decimals, metric_heading
from bench.reproduce.sources import DOCUMENTS
from bench.reproduce.verdicts import (
    CONTRADICTED,
    EQUIVALENCE_LEVEL,
    INCONCLUSIVE,
    NOT_TESTABLE,
    RANK_RESAMPLES,
    SUPPORTED,
    VERDICTS,
    Reproduction,
    Verdict,
)

REASON_CLASSES = ("weights", "data", "protocol", "runs")


def reproduction_markdown(reproduction: Reproduction, profile: str, heading: str = "#") -> str:
    """The study's table with the published numbers, ours (mean [95% t-interval] over seeds), baselines, claims."""
    study = reproduction.study
    lines = [f"{heading} Reproduction: {study.title}", ""]
    if study.published is not None:
        lines.append(f"Published: {study.published.citation}, {study.published.where}.")
    lines.append(f"Ours: study `{study.name}` (profile `{profile}`), measured on {_scored_on(reproduction)}.")
    if study.differences:
        lines += ["", f"**What differs from the published setting.** {study.differences}"]
    lines += ["", *_table(reproduction), "", *_claims(reproduction, heading + "##")]
    if study.rank is not None:
        lines += ["", *_rank(reproduction)]
    if study.settings:
        lines += ["", *_settings(reproduction)]
    if reproduction.unavailable:
        lines += ["", "Metrics without values: " + "; ".join(f"`{m}`: {why}" for m, why in
                                                           sorted(reproduction.unavailable.items())) + "."]
    return "\n".join(lines) + "\n"


def verdict_counts(reproduction: Reproduction) -> dict:
    """Claims per verdict (after the gate), those gated, those not testable per reason class, those excluded."""
    counted = [v for v in reproduction.verdicts if not v.excluded]
    counts = {verdict: sum(v.verdict == verdict for v in counted) for verdict in VERDICTS}
    counts["below the trivial baseline"] = sum(bool(v.gate) for v in counted)
    counts["not testable by class"] = {kind: sum(v.reason_class == kind for v in counted) for kind in REASON_CLASSES}
    counts["excluded"] = sum(bool(v.excluded) for v in reproduction.verdicts)
    return counts


def counts_sentence(counts: dict) -> str:
    """One sentence of the four outcomes, the gated ones and the reason classes."""
    gated = counts["below the trivial baseline"]
    classes = ", ".join(f"{kind} {n}" for kind, n in counts["not testable by class"].items() if n)
    text = (f"{counts[SUPPORTED]} supported, {counts[CONTRADICTED]} contradicted, {counts[INCONCLUSIVE]} inconclusive"
            + (f" ({gated} of them below the trivial baseline)" if gated else "")
            + f", {counts[NOT_TESTABLE]} not testable" + (f" ({classes})" if classes else ""))
    if counts["excluded"]:
        text += f"; {counts['excluded']} more shown but not counted (by construction or unequal budget)"
    return text


def _scored_on(reproduction: Reproduction) -> str:
    if reproduction.dataset is None:
        return "no finished runs yet"
    images = f"{reproduction.n_images} test images" if reproduction.n_images else "its test images"
    return f"{images} of `{reproduction.dataset}` at {reproduction.resolution}"


def _table(reproduction: Reproduction) -> list[str]:
    study = reproduction.study
    published = [m["name"] for m in study.published.metrics] if study.published is not None else []
    baselines = reproduction.baselines
    places = {metric: decimals([row.ours[metric].mean for row in reproduction.rows if metric in row.ours]
                               + [v[metric] for v in (baselines.values.values() if baselines else []) if metric in v])
              for metric in study.metrics}
    absent = {row.method: row.absent for row in study.rows if row.absent}
    header = ["row", *[f"published: {name}" for name in published],
              *[f"ours: {metric_heading(metric)}" for metric in study.metrics], "runs done"]
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    for row in reproduction.rows:
        cells = [row.method, *[format_published(v) for v in row.published]]
        cells += [_summary(row.ours.get(metric), places[metric]) for metric in study.metrics]
        cells.append(f"{row.runs_done} of {row.runs_planned}" if row.runs_planned else
                     "no analogue at this scale" if row.method in absent else "no runs (published only)")
        lines.append("| " + " | ".join(cells) + " |")
    for name, values in (baselines.values.items() if baselines else ()):
        cells = [f"*{name}*", *["–" for _ in published]]
        cells += [f"{values[m]:.{places[m]}f}" if m in values else "–" for m in study.metrics]
        lines.append("| " + " | ".join([*cells, f"trivial baseline, {baselines.note}"]) + " |")
    lines += ["", "Ours: mean over seeds [95% Student-t interval of the mean] (seeds); `–`: no finished run."]
    lines += [f"{method}: no analogue at this scale: {why}." for method, why in absent.items()]
    if baselines is not None:
        lines.append("Rows in italics are trivial baselines (no training), scored on the same test images with the "
                     "same metrics: what every trained row must beat before its claims are judged"
                     + ("." if baselines.values else f"; here: {baselines.note}."))
    return lines


def _summary(summary, places: int) -> str:
    if summary is None:
        return "–"
    if summary.n < 2 or math.isnan(summary.ci_low):
        return f"{summary.mean:.{places}f} ({summary.n})"
    return f"{summary.mean:.{places}f} [{summary.ci_low:.{places}f}, {summary.ci_high:.{places}f}] ({summary.n})"


def _claims(reproduction: Reproduction, heading: str) -> list[str]:
    counts = verdict_counts(reproduction)
    lines = [f"**Claims**: {counts_sentence(counts)}.", "",
             "| claim | metric | verdict | before the baseline gate |", "|---|---|---|---|"]
    for verdict in reproduction.verdicts:
        metric = f"`{verdict.claim.metric}`" if verdict.claim.metric else "–"
        shown = f"**{verdict.verdict}**" + (f" ({verdict.reason_class})" if verdict.reason_class else "")
        if verdict.excluded:
            shown += ", not counted"
        raw = verdict.raw if verdict.gate else "same"
        lines.append(f"| [{verdict.claim.text}](#{verdict.claim.id}) | {metric} | {shown} | {raw} |")
    for verdict in reproduction.verdicts:
        lines += ["", *_claim_block(verdict, heading)]
    return lines


def _claim_block(verdict: Verdict, heading: str) -> list[str]:
    claim = verdict.claim
    lines = [f'<a id="{claim.id}"></a>', f"{heading} {claim.text}", "",
             f"> {claim.quote.text}", ">", f"> — {claim.quote.citation()}", "",
             f"*Claim `{claim.id}`, tested as:* {claim.operationalisation}"]
    if claim.kind == "similar":
        lines[-1] += f" Equivalence margin ±{claim.margin:g}: {claim.margin_why}."
    lines += ["", f"**{verdict.verdict}**" + (f" ({verdict.reason_class})" if verdict.reason_class else "")
              + f": {verdict.detail}."]
    if verdict.gate:
        lines += ["", f"Inconclusive whatever the interval says ({verdict.raw} before the gate): {verdict.gate}."]
    for comparison in verdict.comparisons:
        boot = comparison.bootstrap
        if not math.isnan(boot["ci_low"]):
            a, b = comparison.rows
            level = f"{int(EQUIVALENCE_LEVEL * 100)}% and 95%" if claim.kind == "similar" else "95%"
            lines += ["", f"Beside it, not used for the verdict ({level} intervals above are over seeds): "
                      f"{a} - {b} = {_signed(boot['difference'])} [{_signed(boot['ci_low'])}, "
                      f"{_signed(boot['ci_high'])}] by {boot['method']}."]
    if verdict.trajectory:
        points = ", ".join(f"{step:,} ({fraction:.0%}) {judged}" for step, fraction, judged in verdict.trajectory)
        stable = verdict.stable_from()
        lines += ["", f"Along the learning curve (updates, share of the budget, verdict): {points}; the final verdict "
                  f"holds from {stable:.0%} of the budget on"
                  + ("." if verdict.stable_over_last_half() else ", so it was not stable over the last half.")]
    if verdict.excluded:
        lines += ["", f"Not counted in the headline: {verdict.excluded}."]
    return lines


def _settings(reproduction: Reproduction) -> list[str]:
    lines = ["**Settings and their provenance**", "", "| setting | provenance | source or reason |", "|---|---|---|"]
    for setting in reproduction.study.settings:
        if setting.quote is not None:
            where = f"{DOCUMENTS[setting.quote.source].citation}, {setting.quote.where}: \"{setting.quote.text}\""
        else:
            where = setting.why
        lines.append(f"| {_cell(setting.setting)} | {setting.provenance} | {_cell(where)} |")
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


def _signed(value: float) -> str:
    return f"{value:+.4g}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")
