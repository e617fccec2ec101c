"""An :class:`~bench.report.analysis.Analysis` as text: table.md, table.csv, table.tex (booktabs) and a finding.

Numbers are formatted with a fixed number of decimals per metric (about four significant
digits of the largest mean), so the same analysis always gives the same bytes.  Each section
ends with the grey-input row: the trivial baseline (the greyscale input itself, a = b = 0)
scored by the runs on the same test images with the same metrics (:mod:`bench.evaluation.baselines`).
"""
from __future__ import annotations

import math

import pandas as pd

from bench.evaluation.baselines import GREY_INPUT_LABEL, NOT_RECORDED
from bench.evaluation.fingerprint import COLUMN_FIELDS, TABLE_FIELDS
from bench.report.analysis import HIGHER_IS_BETTER, REPORT_SPLIT, SECTION_COLUMNS, Analysis, better
from bench.report.curves import Curve, curves_markdown, learning_curves
from bench.report.published import PublishedTable, comparability, format_published
from bench.report.stats import LEVEL

FEW_SEEDS = 3  # below this many seeds per arm the report warns that intervals are optimistic
CSV_COLUMNS = ["dataset", "split", "fixed", "variant", "is_baseline", "nuisance", "resolution", "n_images", "metric",
               "higher_is_better", "n_seeds", "seeds", "mean", "std", "ci_low", "ci_high", "difference",
               "difference_ci_low", "difference_ci_high", "excludes_zero", "wilcoxon_p", "method", "n_images_paired",
               "arms", "ci_low_bonferroni", "ci_high_bonferroni", "excludes_zero_bonferroni", "p_value", "p_holm",
               "seeds_needed"]


def decimals(values: pd.Series | list[float]) -> int:
    """Decimals that show about four significant digits of the largest finite magnitude in ``values``."""
    finite = [abs(v) for v in values if isinstance(v, (int, float)) and math.isfinite(v) and v != 0]
    if not finite:
        return 3
    return min(6, max(0, 3 - math.floor(math.log10(max(finite)))))


def number(value: float, places: int, sign: bool = False) -> str:
    """``value`` with ``places`` decimals, signed when ``sign`` ('–' for NaN; zero never as -0.00 or +0.00)."""
    if value is None or math.isnan(value):
        return "–"
    if math.isinf(value):
        return ("+inf" if sign else "inf") if value > 0 else "-inf"
    text = f"{value:{'+' if sign else ''}.{places}f}"
    return f"{0:.{places}f}" if float(text) == 0 else text


def metric_heading(metric: str) -> str:
    arrow = {True: " ↑", False: " ↓"}.get(better(metric), "")
    return f"{metric}{arrow}"


def csv_text(analysis: Analysis) -> str:
    """table.csv: one row per section x variant x metric, the summary and the difference from the baseline."""
    differences = analysis.comparisons.rename(columns={"ci_low": "difference_ci_low", "ci_high": "difference_ci_high"})
    merged = analysis.summary.merge(
        differences.drop(columns=["variant_position"]),
        on=["dataset", "split", "fixed", "variant", "metric"], how="left")
    for column in CSV_COLUMNS:
        if column not in merged.columns:
            merged[column] = None
    parts = []
    for key, rows in (merged.groupby(SECTION_COLUMNS, sort=True) if len(merged) else ()):
        parts += [rows, _grey_input_csv(analysis, key)]
    merged = pd.concat(parts, ignore_index=True) if parts else merged
    return merged[CSV_COLUMNS].to_csv(index=False, lineterminator="\n")


def markdown(analysis: Analysis, published: list[PublishedTable], figures: list[str],
             published_link: str | None = None) -> str:
    """table.md: finding, per section the summary table and the differences, choices, published numbers, figures
    and runs; ``published_link`` is the relative link of published.md (none when None)."""
    design = analysis.design
    lines = [f"# {design.name}", ""]
    if design.description:
        lines += [" ".join(design.description.split()), ""]
    lines += [f"**Finding.** {finding(analysis)}", "", _design_text(analysis), ""]
    machines = _machines(analysis.runs)
    if machines and machines[0].startswith("**Warning"):
        lines += [machines[0].split("**;")[0] + "** (listed under Runs): their last digits may differ.", ""]
    for key, summary in _sections(analysis.summary):
        lines += _section(analysis, key, summary)
    if analysis.unavailable:
        lines += ["## Metrics without values", ""]
        lines += [f"- `{metric}`: {reason}" for metric, reason in analysis.unavailable.items()]
        lines.append("")
    lines += _published_section(analysis, published, published_link)
    lines += curves_markdown(report_curves(analysis), decimals)
    if figures:
        lines += ["## Figures", ""]
        lines += [f"![{name}]({name})" for name in figures]
        lines.append("")
    lines += _runs_section(analysis.runs)
    return "\n".join(lines)


def report_curves(analysis: Analysis) -> list[Curve]:
    """The learning curves of the report's variants, with the trivial baselines of the test images they were
    scored on."""
    baselines = analysis.baselines[analysis.baselines["split"] == REPORT_SPLIT]
    values: dict[str, dict[str, float]] = {}
    for _, row in baselines.iterrows():
        values.setdefault(row["baseline"], {})[row["metric"]] = float(row["value"])
    return learning_curves(analysis.curves, analysis.runs, values, HIGHER_IS_BETTER)


def latex(analysis: Analysis) -> str:
    """table.tex: one booktabs table per section, variants x metrics, mean $\\pm$ std over seeds."""
    blocks = ["% Generated by colorbench report; needs \\usepackage{booktabs}."]
    for key, summary in _sections(analysis.summary):
        metrics = list(dict.fromkeys(summary["metric"]))
        places = {m: decimals(summary.loc[summary["metric"] == m, "mean"]) for m in metrics}
        significant = _significant(analysis.comparisons, key)
        first = summary.iloc[0]
        caption = (f"{tex_escape(analysis.design.name)}: {tex_escape(_section_title(key, first))}. Mean $\\pm$ std "
                   "over seeds "
                   f"(n per variant in the second column); $^*$: the {LEVEL * 100:.0f}\\% interval of the difference "
                   "from the baseline excludes 0. Last row: the grey input ($a = b = 0$) scored on the same test "
                   "images.")
        header = ["Variant", "$n$"] + [tex_escape(m) + {True: " $\\uparrow$", False: " $\\downarrow$"}.get(
            better(m), "") for m in metrics]
        rows = []
        for variant, rows_of_variant in summary.groupby("variant_position", sort=True):
            cells = {r["metric"]: r for _, r in rows_of_variant.iterrows()}
            row0 = rows_of_variant.iloc[0]
            name = tex_escape(row0["variant"]) + (" (baseline)" if row0["is_baseline"] else "")
            values = []
            for m in metrics:
                if m not in cells:
                    values.append("--")
                    continue
                cell = f"{number(cells[m]['mean'], places[m])} $\\pm$ {number(cells[m]['std'], places[m])}"
                values.append(cell + ("$^*$" if (row0["variant"], m) in significant else ""))
            rows.append(" & ".join([name, str(int(row0["n_seeds"]))] + values) + " \\\\")
        rows += ["\\midrule", _grey_input_tex(analysis, key, metrics, places)]
        blocks += ["\\begin{table}[t]", "\\centering", f"\\caption{{{caption}}}",
                   f"\\label{{tab:{_tex_label(analysis.design.name)}}}", "\\begin{tabular}{l" + "r" * (len(header) - 1)
                   + "}", "\\toprule", " & ".join(header) + " \\\\", "\\midrule", *rows, "\\bottomrule",
                   "\\end{tabular}", "\\end{table}", ""]
    return "\n".join(blocks)


def finding(analysis: Analysis) -> str:
    """One line: the best variant on the selection metric, its effect against the baseline and its significance."""
    metric = analysis.selection_metric
    summary = analysis.summary
    if metric is None or summary.empty or metric not in set(summary["metric"]):
        return "no finished run has a value yet."
    key, section = next(iter(_sections(summary)))
    rows = section[section["metric"] == metric]
    higher = better(metric) is not False
    best = rows.loc[rows["mean"].idxmax() if higher else rows["mean"].idxmin()]
    places = decimals(rows["mean"])
    where = f" ({_section_title(key, best)})" if len(list(_sections(summary))) > 1 else ""
    text = f"best `{metric}`{where}: {best['variant']}, {number(best['mean'], places)}"
    if best["n_seeds"] > 1:
        text += f" ± {number(best['std'], places)} over {best['n_seeds']} seeds"
    if len(rows) == 1:
        return text + " (one variant, nothing to compare)."
    comparisons = analysis.comparisons
    mine = _in_section(comparisons, key)
    mine = mine[mine["metric"] == metric]
    if mine.empty:
        return text + "; no baseline to compare with."
    if best["is_baseline"]:
        closest = mine.loc[(mine["difference"].abs()).idxmin()]
        return text + f" (the baseline); next best {closest['variant']} differs by {_effect(closest, places)}."
    row = mine[mine["variant"] == best["variant"]]
    if row.empty:
        return text + "; no comparison with the baseline."
    return text + f"; it differs from the baseline by {_effect(row.iloc[0], places)}."


def _effect(row: pd.Series, places: int) -> str:
    verdict = {"yes": "interval excludes 0", "no": "interval includes 0, not significant",
               "–": "no interval (one seed)"}[_excludes(row)]
    return (f"{number(row['difference'], places, sign=True)} [{number(row['ci_low'], places, sign=True)}, "
            f"{number(row['ci_high'], places, sign=True)}], {verdict}")


# ---------------------------------------------------------------------------------------

def _sections(frame: pd.DataFrame):
    """(section key, rows) per dataset x split x fixed setting, in order."""
    if frame.empty:
        return
    for key, rows in frame.groupby(SECTION_COLUMNS, sort=True):
        yield key, rows


def _in_section(frame: pd.DataFrame, key: tuple) -> pd.DataFrame:
    """The rows of ``frame`` in the section ``key`` (dataset, split, fixed)."""
    if frame.empty:
        return frame
    return frame[(frame[SECTION_COLUMNS] == pd.Series(key, index=SECTION_COLUMNS)).all(axis=1)]


def _section_title(key: tuple, first: pd.Series) -> str:
    dataset, split, fixed = key
    text = f"{dataset}, {split} split: {first['n_images']} images at {first['resolution']}"
    return text + (f", {fixed}" if fixed else "")


def _design_text(analysis: Analysis) -> str:
    design = analysis.design
    parts = []
    scientific = [a.name for a in design.role("scientific")]
    parts.append(f"Variants: every setting of {', '.join(scientific)}." if scientific else
                 "One variant (all runs share their config apart from the seed).")
    if design.baseline:
        baseline = ", ".join(f"{a.name}={design.baseline[a.name]}" for a in design.role("scientific"))
        parts.append(f"Baseline: {baseline}.")
    fixed = design.role("fixed")
    if fixed:
        parts.append(f"Fixed axes ({', '.join(a.name for a in fixed)}) split the results; "
                     "variants are compared only within one of their settings.")
    nuisance = design.role("nuisance")
    if nuisance and analysis.selection_split is not None:
        split = analysis.selection_split
        parts.append(f"Nuisance axes ({', '.join(a.name for a in nuisance)}) are set per variant to the best mean "
                     f"`{analysis.selection_metric}` on the {split} split" +
                     (" (no validation split was recorded, so this uses the test split and the tuned variants' "
                      "numbers are optimistic)." if split == "test" else "."))
    n_done = int((analysis.runs["state"] == "done").sum())
    parts.append(f"Runs: {len(analysis.runs)} ({n_done} done); only finished runs enter the tables.")
    return " ".join(parts)


def _section(analysis: Analysis, key: tuple, summary: pd.DataFrame) -> list[str]:
    first = summary.iloc[0]
    metrics = list(dict.fromkeys(summary["metric"]))
    places = {m: decimals(summary.loc[summary["metric"] == m, "mean"]) for m in metrics}
    lines = [f"## {_section_title(key, first)}", "",
             f"Mean ± std over seeds, with the {LEVEL:.0%} t-interval of the mean in brackets "
             "(↑: higher is better, ↓: lower is better).", "",
             "| variant | seeds | " + " | ".join(metric_heading(m) for m in metrics) + " |",
             "|---|---|" + "---|" * len(metrics)]
    for _, rows in summary.groupby("variant_position", sort=True):
        cells = {r["metric"]: r for _, r in rows.iterrows()}
        row0 = rows.iloc[0]
        name = row0["variant"] + (" **(baseline)**" if row0["is_baseline"] else "")
        values = []
        for m in metrics:
            if m not in cells:
                values.append("–")
                continue
            c, p = cells[m], places[m]
            text = number(c["mean"], p)
            if c["n_seeds"] > 1:
                text += f" ± {number(c['std'], p)} [{number(c['ci_low'], p)}, {number(c['ci_high'], p)}]"
            values.append(text)
        lines.append(f"| {name} | {row0['seeds']} | " + " | ".join(values) + " |")
    lines += _grey_input_lines(analysis, key, metrics, places)
    lines.append("")
    lines += _protocol_differences(_in_section(analysis.reported, key))
    lines += _differences(analysis, key, places, int(summary["n_seeds"].min()))
    lines += _choices(analysis, key)
    return lines


def _protocol_differences(rows: pd.DataFrame) -> list[str]:
    """A warning naming the protocol fingerprint fields (:mod:`bench.evaluation.fingerprint`) in which the runs
    compared in a section differ, with their values; none when they agree (or records hold no fingerprint)."""
    differing = []
    for field in TABLE_FIELDS:
        values = sorted(set(rows[f"fingerprint.{field}"].dropna())) if f"fingerprint.{field}" in rows else []
        if len(values) > 1:
            differing.append(f"{field} ({', '.join(values)})")
    for metric, of_metric in rows.groupby("metric", sort=False):
        for field in COLUMN_FIELDS:
            column = f"fingerprint.{field}"
            values = sorted(set(of_metric[column].dropna())) if column in of_metric else []
            if len(values) > 1:
                differing.append(f"{metric}'s {field} ({', '.join(values)})")
    if not differing:
        return []
    return [f"**Warning: the runs compared here were scored under different protocols**, differing in: "
            f"{'; '.join(differing)}.  Their numbers are not like for like (`colorbench leaderboard` keeps them "
            "apart).", ""]


def _grey_note(grey: pd.DataFrame) -> str:
    """What the grey-input row of a section is: which images, how many runs recorded it, whether they agree."""
    first = grey.iloc[0]
    images = "the same test images" if pd.isna(first["n_images"]) else f"the same {int(first['n_images'])} test images"
    runs, of = int(grey["n_runs"].max()), int(first["n_runs_section"])
    if of == 1:
        return f"{images}, same metrics; recorded by the run"
    agree = "identical in every run" if (grey["spread"] == 0).all() else "mean over the runs; their values differ"
    recorded = f"recorded by {runs} of {of} runs" if runs < of else "recorded by each run"
    return f"{images}, same metrics; {recorded}, {agree}"


def _grey_input_lines(analysis: Analysis, key: tuple, metrics: list[str], places: dict[str, int]) -> list[str]:
    """The section's grey-input row of table.md and the line below the table saying what it is."""
    grey = _in_section(analysis.grey_input, key)
    if grey.empty:
        why = analysis.grey_input_missing.get(key, NOT_RECORDED)
        return [f"| {GREY_INPUT_LABEL} | – | {why} |" + " – |" * (len(metrics) - 1)]
    cells = {r["metric"]: r for _, r in grey.iterrows()}
    values = [number(cells[m]["value"], places[m]) if m in cells else "–" for m in metrics]
    return [f"| {GREY_INPUT_LABEL} | – | " + " | ".join(values) + " |", "",
            f"{GREY_INPUT_LABEL}: the greyscale input itself as the output, the trivial baseline a colouriser "
            f"must beat; scored on {_grey_note(grey)}."]


def _grey_input_tex(analysis: Analysis, key: tuple, metrics: list[str], places: dict[str, int]) -> str:
    grey = _in_section(analysis.grey_input, key)
    name = "grey input ($a = b = 0$)"
    if grey.empty:
        why = analysis.grey_input_missing.get(key, NOT_RECORDED)
        return f"{name} & -- & \\multicolumn{{{len(metrics)}}}{{l}}{{{tex_escape(why)}}} \\\\"
    cells = {r["metric"]: r for _, r in grey.iterrows()}
    values = [number(cells[m]["value"], places[m]) if m in cells else "--" for m in metrics]
    return " & ".join([name, "--"] + values) + " \\\\"


def _grey_input_csv(analysis: Analysis, key: tuple) -> pd.DataFrame:
    """The section's grey-input rows of table.csv (``method`` says what they are, or why there are none)."""
    grey = _in_section(analysis.grey_input, key)
    section = dict(zip(SECTION_COLUMNS, key))
    if grey.empty:
        rows = [{**section, "variant": GREY_INPUT_LABEL, "is_baseline": False,
                 "method": analysis.grey_input_missing.get(key, NOT_RECORDED)}]
    else:
        note = _grey_note(grey)
        rows = [{**section, "variant": GREY_INPUT_LABEL, "is_baseline": False, "nuisance": "",
                 "resolution": r["resolution"], "n_images": r["n_images"], "metric": r["metric"],
                 "higher_is_better": better(r["metric"]), "n_seeds": r["n_runs"], "mean": r["value"],
                 "method": note} for _, r in grey.iterrows()]
    return pd.DataFrame(rows).reindex(columns=CSV_COLUMNS)


def _differences(analysis: Analysis, key: tuple, places: dict[str, int], fewest_seeds: int) -> list[str]:
    rows = _in_section(analysis.comparisons, key)
    if rows.empty:
        return []
    lines = ["### Difference from the baseline", "",
             "Variant minus baseline.  Per-image metrics: paired bootstrap over the same test images, resampling "
             f"seeds per arm ({analysis.n_resamples:,d} resamples, seed {analysis.bootstrap_seed}, percentile "
             f"{LEVEL:.0%} interval), and the Wilcoxon signed-rank p of the per-image differences of seed means; "
             "set metrics: Welch t-interval and t-test over seeds.  \"yes\": the interval excludes 0.  Across the "
             f"k arms compared with the baseline: the interval at the Bonferroni level 1 - {1 - LEVEL:.2f}/k "
             "(\"corrected\"), the Holm-Bonferroni adjusted p, and the seeds per arm a two-sample test at that "
             "level would need to resolve the observed difference with 80 % power, from the measured spread over "
             "seeds (normal approximation; \"inf\": no difference observed)." + (
                 f"  With {fewest_seeds} seed(s) in an arm, resampling seeds captures little of how much a run "
                 "depends on its seed: read these intervals as optimistic." if fewest_seeds < FEW_SEEDS else ""), "",
             "| variant | metric | difference | interval | excludes 0 | corrected interval | excludes 0 | p | "
             "Holm p | seeds needed | method |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for _, row in rows.iterrows():
        p = places.get(row["metric"], 3)
        lines.append(f"| {row['variant']} | {metric_heading(row['metric'])} | "
                     f"{number(row['difference'], p, sign=True)} | [{number(row['ci_low'], p, sign=True)}, "
                     f"{number(row['ci_high'], p, sign=True)}] | {_excludes(row)} | "
                     f"[{number(row['ci_low_bonferroni'], p, sign=True)}, "
                     f"{number(row['ci_high_bonferroni'], p, sign=True)}] | {_excludes(row, '_bonferroni')} | "
                     f"{_p_value(row['p_value'])} | {_p_value(row['p_holm'])} | {number(row['seeds_needed'], 0)} | "
                     f"{row['method']} |")
    lines.append("")
    return lines


def _excludes(row: pd.Series, suffix: str = "") -> str:
    """yes / no, or '–' when the interval could not be computed (one seed in an arm of a set metric)."""
    if math.isnan(row[f"ci_low{suffix}"]):
        return "–"
    return "yes" if row[f"excludes_zero{suffix}"] else "no"


def _p_value(p: float) -> str:
    if p is None or math.isnan(p):
        return "–"
    return "<0.0001" if p < 1e-4 else f"{p:.4f}"


def _choices(analysis: Analysis, key: tuple) -> list[str]:
    choices = analysis.choices
    if choices.empty:
        return []
    dataset, _, fixed = key
    rows = choices[(choices["dataset"] == dataset) & (choices["fixed"] == fixed)]
    if rows.empty:
        return []
    metric, places = analysis.selection_metric, decimals(rows["value"])
    lines = ["### Nuisance settings kept", "",
             f"| variant | setting | mean `{metric}` ({analysis.selection_split} split) |", "|---|---|---|"]
    lines += [f"| {r['variant']} | {r['setting']} | {number(r['value'], places)} |" for _, r in rows.iterrows()]
    return lines + [""]


def _published_section(analysis: Analysis, published: list[PublishedTable], link: str | None) -> list[str]:
    """Published numbers of our metrics: beside ours where the protocol (partly) matches, else why not."""
    summary = analysis.summary
    if summary.empty:
        return []
    ours = summary.drop_duplicates(["dataset", "resolution", "n_images"])
    metrics = set(summary["metric"])
    beside, elsewhere = [], []
    for table in published:
        columns = [(i, m) for i, m in enumerate(table.metrics) if m.get("ours") in metrics]
        for _, section in ours.iterrows():
            verdicts = [(i, m, comparability(table, m, section["dataset"], section["resolution"], section["n_images"]))
                        for i, m in columns]
            for i, m, verdict in verdicts:
                reference = _reference_value(summary, section, m["ours"])
                for row in table.rows:
                    if verdict.verdict != "no" and row["values"][i] is not None:
                        beside.append(f"| {table.title} ({table.where}) | {row['method']} | {m['name']} | "
                                      f"{format_published(row['values'][i])} | `{m['ours']}` {reference} | "
                                      f"{verdict.describe()} |")
            rejected = [(m, v) for _, m, v in verdicts if v.verdict == "no"]
            if rejected:
                names = ", ".join(dict.fromkeys(m["name"] for m, _ in rejected))
                reasons = "; ".join(dict.fromkeys(r for _, v in rejected for r in v.reasons))
                elsewhere.append(f"- {table.title} — {table.where}, {names}: not comparable with ours on "
                                 f"{section['dataset']}: {reasons}.")
    if not beside and not elsewhere:
        return []
    lines = ["## Published numbers", ""]
    if link:
        lines += [f"All published numbers with their sources and protocols: [published.md]({link}).", ""]
    if beside:
        lines += ["| published | method | metric | value | ours | comparable |", "|---|---|---|---|---|---|",
                  *beside, ""]
    return lines + elsewhere + [""]


def _reference_value(summary: pd.DataFrame, section: pd.Series, metric: str) -> str:
    """Our value of ``metric`` in the section of ``section``: the baseline's, else the first variant's."""
    rows = summary[(summary["dataset"] == section["dataset"]) & (summary["metric"] == metric)]
    if rows.empty:
        return "–"
    row = rows[rows["is_baseline"]].iloc[0] if rows["is_baseline"].any() else rows.iloc[0]
    return f"{number(row['mean'], decimals(rows['mean']))} ({row['variant']})"


def _machines(runs: pd.DataFrame) -> list[str]:
    """Which machines (CPU model and ISA, math libraries, reproducible mode) the runs with a directory ran on;
    a warning when there are several: CPU kernels differ between ISAs, and so do the last digits."""
    ran = runs[runs["run_dir"].notna()] if "run_dir" in runs.columns else runs
    if ran.empty or "machine" not in ran.columns:
        return []
    labels = ran["machine"].where(ran["machine"].notna(), None)
    known = sorted({label for label in labels if isinstance(label, str)})
    unknown = int(sum(not isinstance(label, str) for label in labels))
    if len(known) <= 1:
        text = f"Machine: {known[0]}" if known else "Machine: not recorded (runs made before machine recording)"
        if known and unknown:
            text += f"; {unknown} run(s) did not record theirs"
        return [text + ".", ""]
    lines = [f"**Warning: the runs of this table ran on {len(known)} different machines or math code paths**; CPU "
             "kernels differ between instruction sets, so runs of one config may differ in their last digits "
             "(`colorbench --reproducible` pins them; see docs/reproducibility.md):", ""]
    for label in known:
        names = ", ".join(ran.loc[labels == label, "run_id"].astype(str))
        lines.append(f"- {label}: {names}")
    if unknown:
        lines.append(f"- not recorded: {unknown} run(s)")
    return lines + [""]


def _runs_section(runs: pd.DataFrame) -> list[str]:
    lines = ["## Runs", "", *_machines(runs), "| run | seed | state | step | variant | run directory |",
             "|---|---|---|---|---|---|"]
    for _, run in runs.iterrows():
        step = "" if pd.isna(run["last_step"]) else f"{int(run['last_step'])}"
        if step and not pd.isna(run["total_steps"]):
            step += f"/{int(run['total_steps'])}"
        seed = "" if pd.isna(run["seed"]) else str(int(run["seed"]))
        where = "" if pd.isna(run["run_dir"]) else f"`{run['run_dir']}`"
        if not where and isinstance(run["data_problem"], str):
            where = f"not run: its data is not here ({run['data_problem']})"
        extra = f" {run['nuisance']}" if run["nuisance"] else ""
        lines.append(f"| {run['run_id']} | {seed} | {run['state']} | {step} | {run['variant']}{extra} | {where} |")
    return lines + [""]


def _significant(comparisons: pd.DataFrame, key: tuple) -> set[tuple[str, str]]:
    rows = _in_section(comparisons, key)
    return {(r["variant"], r["metric"]) for _, r in rows.iterrows() if r["excludes_zero"]}


_TEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
                "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def tex_escape(text: str) -> str:
    """``text`` with LaTeX's special characters escaped."""
    return "".join(_TEX_ESCAPES.get(ch, ch) for ch in str(text))


def _tex_label(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in text)
