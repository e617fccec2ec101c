"""``colorbench aggregate`` and ``colorbench report``: results folders in, tables and figures out.

    reports/
        README.md                 every ablation with its one-line finding
        published.md              the published numbers with their sources and protocols
        <ablation>/table.md       finding, per-variant summary, differences from the baseline,
                                  published numbers, runs; table.csv and table.tex hold the same numbers
        <ablation>/*.png          metrics, curves, qualitative, histograms (see bench.report.figures)
        <ablation>/summary.json   what README.md says about it

Everything is a function of the results, so running a report again gives identical files.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from bench.config import ConfigError
from bench.evaluation.method_dir import SCORED_STATE
from bench.report import figures
from bench.report.analysis import Analysis, analyse
from bench.report.collect import Collection, collect, write_aggregate
from bench.report.design import Design, design_from_configs, design_of_ablation
from bench.report.published import PublishedTable, load_published, published_markdown
from bench.report.stats import BOOTSTRAP_SEED, N_RESAMPLES
from bench.report.tables import csv_text, finding, latex, markdown
from bench.run import rundir
from bench.sweep.ablation import Ablation, load_ablation
from bench.sweep.profiles import FULL
from bench.sweep.results import AblationResults
from bench.sweep.results import printed_warnings as _printed_warnings  # collection warnings, once each

# file -> draw(analysis, collection, results folder, path) -> whether there was anything to draw
FIGURES = {
    "metrics.png": lambda analysis, collection, results, path: figures.metrics_figure(analysis, path),
    "curves.png": lambda analysis, collection, results, path: figures.curves_figure(analysis, collection.curves, path),
    "learning-curves.png": lambda analysis, collection, results, path: figures.learning_curves_figure(analysis, path),
    "qualitative.png": lambda analysis, collection, results, path: figures.qualitative_figure(analysis, results, path),
    "histograms.png": lambda analysis, collection, results, path: figures.histograms_figure(analysis, results, path),
}
SUMMARY_FILE = "summary.json"

# (study, analysis, report folder, published tables, resamples, bootstrap seed) -> the section ending table.md
StudySection = Callable[[Ablation, Analysis, Path, list[PublishedTable], int, int], str]


def aggregate_command(results: str | Path = "results", out: str | Path | None = None) -> int:
    """Collect ``results`` into aggregate.parquet/.csv and curves.parquet/.csv (in ``out``, default ``results``)."""
    with _printed_warnings():
        collection = collect(results)
        paths = write_aggregate(collection, out or results)
    runs = collection.metrics.drop_duplicates(["ablation", "run_id"])
    states = runs["state"].value_counts().sort_index()
    print(f"{len(runs)} runs in {runs['ablation'].nunique()} groups ("
          + ", ".join(f"{n} {state}" for state, n in states.items()) + f"), {len(collection.metrics)} rows")
    for path in paths:
        print(f"  {path}")
    return 0


def report_command(targets: list[str] | tuple[str, ...] = (), results: str | Path = "results",
                   out: str | Path = "reports", select_by: str | None = None,
                   n_resamples: int | None = None, profile: str = FULL,
                   study_section: StudySection | None = None) -> int:
    """Write ``out/<ablation>/`` for each target (default: every group under ``results``) and ``out/README.md``.

    ``study_section`` renders what a study file's ``reproduce`` block adds to its report (the command line passes
    :func:`bench.reproduce.output.write_reproduction`); without it every table is the ablation report alone.
    """
    out = Path(out)
    published = load_published()
    with _printed_warnings():
        for root in report_roots(targets, Path(results), profile):
            collection = collect(root)
            if collection.metrics.empty:
                raise ConfigError(f"{root}: no run directories here")
            # a folder holding method directories (colorbench score) alone has no runs to report
            runs = collection.metrics[collection.metrics["state"] != SCORED_STATE]
            for group in sorted(set(runs["ablation"])):
                folder = out / group
                write_report(collection, group, root, folder, published, select_by=select_by,
                             n_resamples=n_resamples or N_RESAMPLES, published_link="../published.md",
                             study_section=study_section)
                print(f"{group}: {folder / 'table.md'}")
        index = write_index(out, published)
    print(f"index: {index}")
    return 0


def folder_report(results: Path, out: Path) -> Path:
    """The report of the runs directly inside ``results`` (``colorbench demo``'s folder) in ``out``; its table.md."""
    with _printed_warnings():
        collection = collect(results)
        groups = [name for name, folder in collection.folders.items() if folder == Path(".")]
        if not groups:
            raise ConfigError(f"{results}: no run directories directly inside")
        write_report(collection, groups[0], results, out, load_published())
        return out / "table.md"


def write_report(collection: Collection, group: str, results: Path, out: Path, published: list[PublishedTable],
                 select_by: str | None = None, n_resamples: int = N_RESAMPLES, seed: int = BOOTSTRAP_SEED,
                 published_link: str | None = None, study_section: StudySection | None = None) -> dict:
    """Write the report of ``group`` (runs collected from ``results``) into ``out``; return its summary.json.

    Where the group was swept from a study file and ``study_section`` is given, ``table.md`` ends with what it
    returns (it may write files of its own into ``out``).
    """
    frame = collection.metrics[collection.metrics["ablation"] == group]
    if select_by is not None and select_by not in set(frame["metric"].dropna()):
        raise ConfigError(f"--select-by {select_by}: no run of {group} recorded it; recorded: "
                          + ", ".join(sorted(set(frame["metric"].dropna()))))
    folder = results / collection.folders[group]
    analysis = analyse(frame, design_for(folder, group, frame), select_by, n_resamples, seed, collection.curves)
    out.mkdir(parents=True, exist_ok=True)
    drawn = []
    for name, draw in FIGURES.items():
        if draw(analysis, collection, results, out / name):
            drawn.append(name)
        else:
            (out / name).unlink(missing_ok=True)  # a figure of an earlier report that has nothing to show now
    table = markdown(analysis, published, drawn, published_link)
    study = study_of(folder, group) if study_section is not None else None
    if study is not None:  # a study file's report shows its published table and claims beside ours
        table += "\n" + study_section(study, analysis, out, published, n_resamples, seed)
    rundir.write_text(out / "table.md", table)
    rundir.write_text(out / "table.csv", csv_text(analysis))
    rundir.write_text(out / "table.tex", latex(analysis))
    runs = analysis.runs
    summary = {"name": group, "description": " ".join(analysis.design.description.split()),
               "finding": finding(analysis), "runs": len(runs), "done": int((runs["state"] == "done").sum()),
               "figures": drawn}
    rundir.write_json(out / SUMMARY_FILE, summary)
    return summary


def design_for(folder: Path, group: str, frame) -> Design:
    """The design of the ablation in ``folder`` (the group's folder) when it has one, else one derived from configs."""
    ablation = study_of(folder, group, with_reproduce=False)
    return design_of_ablation(ablation) if ablation is not None else design_from_configs(group, frame)


def study_of(folder: Path, group: str, with_reproduce: bool = True) -> Ablation | None:
    """The ablation swept into ``folder`` as ``group`` (only one with a ``reproduce`` block, by default)."""
    if not (folder / "ablation.yaml").exists():
        return None
    try:
        ablation = AblationResults(folder).read_snapshot()
    except ConfigError:  # collect has warned about it; the runs are compared by config
        return None
    if ablation.name != group or (with_reproduce and "reproduce" not in ablation.document):
        return None
    return ablation


def write_index(out: Path, published: list[PublishedTable]) -> Path:
    """``out/README.md``: every report folder under ``out`` with its finding; and ``out/published.md``."""
    rows = []
    for path in sorted(out.rglob(SUMMARY_FILE)):
        summary = json.loads(path.read_text())
        link = path.parent.relative_to(out).as_posix()
        rows.append(f"| [{summary['name']}]({link}/table.md) | {summary['runs']} ({summary['done']} done) | "
                    f"{summary['finding']} |")
    lines = ["# Reports", "",
             "Generated by `colorbench report` (all of them: `colorbench report --results results --out reports`); "
             "running it again on the same results gives identical files.  Each table gives, per variant, the mean "
             "and standard deviation over seeds with the 95% t-interval of the mean, and each variant's difference "
             "from the baseline with its paired bootstrap interval over the same test images.", "",
             "| ablation | runs | finding |", "|---|---|---|", *rows, "",
             "Published numbers, with their sources and protocols: [published.md](published.md).", ""]
    rundir.write_text(out / "published.md", published_markdown(published))
    rundir.write_text(out / "README.md", "\n".join(lines))
    return out / "README.md"


# ---------------------------------------------------------------------------------------

def report_roots(targets: list[str] | tuple[str, ...], results: Path, profile: str = FULL) -> list[Path]:
    """The results folder of each target: an ablation file, a results folder, or a folder name under ``results``."""
    if not targets:
        if not results.is_dir():
            raise ConfigError(f"{results}: no such results folder; run `colorbench sweep FILE` or `colorbench demo` "
                              "first, or give --results")
        return [results]
    roots = []
    for target in targets:
        path = Path(target)
        if path.is_file():
            path = results / load_ablation(path, profile=profile).name
            if not path.is_dir():
                raise ConfigError(f"{target}: no results at {path}; run `colorbench sweep {target}` first")
        elif not path.is_dir():
            path = results / target
            if not path.is_dir():
                raise ConfigError(f"{target}: not an ablation file, a results folder, or a folder of {results}")
        roots.append(path)
    return roots
