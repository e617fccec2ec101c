"""``colorbench leaderboard``: every method, run group and trivial baseline of a results folder, ranked per protocol.

An *entry* is one of:

* a **run group**: the runs of one grid point (one config id) of an ablation, seeds pooled: the
  mean over seeds and the 95% Student-t interval of the mean (``bench.report.stats.seed_summary``);
* a **method**: a method directory of external predictions (``colorbench score PREDICTIONS``);
* a **baseline**: a trivial baseline's method directory (``colorbench score --baseline``), or the
  grey input as runs scored it (the same images give the same value, so it is one number).

Rows are compared only under one protocol.  A *table* holds the rows that share the dataset, split,
resolution, number of test images and the table fields of their fingerprint
(``bench.evaluation.fingerprint.TABLE_FIELDS``: test list, the ground truth's resize rule, lossy
outputs, resized outputs, re-inserted luminance); a *column* holds one metric under one metric
protocol and detector (``COLUMN_FIELDS``).  Rows in different tables, or columns, are never ranked
together: each table after the first of its dataset and split names the fields in which it differs
from that one, and a metric measured under two protocols gets two columns with the fields named.

Within a column each entry has a rank (1 = best; ties share the better rank; the metric's direction
is ``bench.report.analysis.better``) and whether its interval overlaps that of the next-ranked entry,
i.e. whether the order of the two is resolved by the seeds (a single value is its own interval).
Written as ``leaderboard.md``, ``leaderboard.csv`` (every number, one row per table x column x entry,
with the fingerprint), ``leaderboard.tex`` (booktabs) and ``leaderboard.png``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from bench.config import ConfigError
from bench.evaluation.baselines import GREY_INPUT_LABEL, GREY_INPUT_SOURCE
from bench.evaluation.fingerprint import COLUMN_FIELDS, FIELDS, NOT_RECORDED, TABLE_FIELDS
from bench.evaluation.method_dir import BASELINE_SOURCE, METHOD_SOURCE, SCORED_STATE
from bench.report.analysis import better, metric_rank
from bench.report.collect import collect
from bench.report.figures import save_figure
from bench.report.stats import LEVEL, seed_summary
from bench.report.tables import decimals, metric_heading, number, tex_escape
from bench.run import rundir
from bench.sweep.results import printed_warnings

TABLE_KEY = ["dataset", "split", "resolution", "n_images", *(f"fingerprint.{f}" for f in TABLE_FIELDS)]
COLUMN_KEY = ["metric", *(f"fingerprint.{f}" for f in COLUMN_FIELDS)]
RUN_GROUP, METHOD, BASELINE = "run group", "method", "baseline"
DEFAULT_RANK_BY = "psnr_rgb8"
KIND_COLOURS = {RUN_GROUP: "tab:blue", METHOD: "tab:orange", BASELINE: "tab:grey"}
FILES = ("leaderboard.md", "leaderboard.csv", "leaderboard.tex", "leaderboard.png")
CSV_COLUMNS = ["table", "dataset", "split", "resolution", "n_images", "entry", "kind", "runs", "column", "metric",
               "higher_is_better", "n_seeds", "mean", "std", "ci_low", "ci_high", "rank", "overlaps_next",
               *(f"fingerprint.{f}" for f in FIELDS)]


@dataclass(frozen=True)
class Leaderboard:
    """``entries``: one row per table x column x entry (the CSV's rows); ``tables``: one row per table, its number,
    key fields, title and the fields in which it differs from the first table of its dataset and split;
    ``rank_by``: the metric that orders each table's rows."""

    entries: pd.DataFrame
    tables: pd.DataFrame
    rank_by: str | None


def leaderboard(frame: pd.DataFrame, *, dataset: str | None = None, split: str = "test",
                metrics: list[str] | None = None, rank_by: str | None = None) -> Leaderboard:
    """The leaderboard of the rows of a :class:`~bench.report.collect.Collection`'s ``metrics`` frame."""
    rows = _scored_rows(frame, dataset, split, metrics)
    if rows.empty:
        wanted = f"dataset {dataset}, " if dataset else ""
        raise ConfigError(f"leaderboard: no finished run or scored method with values on the {wanted}{split} split")
    tables = _tables(rows)
    rows = rows.merge(tables[["table", *TABLE_KEY]], on=TABLE_KEY)
    entries = _rank(_summaries(rows, tables))
    present = list(dict.fromkeys(entries["metric"]))
    rank_by = rank_by or (DEFAULT_RANK_BY if DEFAULT_RANK_BY in present else (present[0] if present else None))
    if rank_by not in present:
        raise ConfigError(f"--rank-by {rank_by}: no entry has it; recorded: {', '.join(present)}")
    return Leaderboard(entries, tables, rank_by)


def _scored_rows(frame: pd.DataFrame, dataset: str | None, split: str, metrics: list[str] | None) -> pd.DataFrame:
    """Finished runs' and scored methods' rows with values, each with its ``entry`` name, ``kind`` and group key."""
    frame = frame.copy()
    for column in TABLE_KEY + COLUMN_KEY + ["method", "config_id"]:
        if column not in frame.columns:
            frame[column] = NOT_RECORDED if column.startswith("fingerprint.") else None
    keep = frame["state"].isin(["done", SCORED_STATE]) & frame["value"].notna() & frame["metric"].notna()
    keep &= frame["split"] == split
    if dataset is not None:
        keep &= frame["dataset"] == dataset
    if metrics is not None:
        keep &= frame["metric"].isin(metrics)
    rows = frame[keep].copy()
    rows[["resolution", "n_images"]] = rows[["resolution", "n_images"]].astype(str)
    rows["config_id"] = rows["config_id"].fillna(rows["run_id"])  # a run whose config.yaml is gone: a group alone
    source = rows["source"].fillna("train")
    run_names = _run_group_names(rows[~source.isin([METHOD_SOURCE, BASELINE_SOURCE, GREY_INPUT_SOURCE])])
    kinds, names, keys = [], [], []
    for (_, row), origin in zip(rows.iterrows(), source):
        if origin == METHOD_SOURCE:
            kinds.append(METHOD)
            names.append(str(row["method"]))
            keys.append(f"method {row['run_id']}")
        elif origin in (BASELINE_SOURCE, GREY_INPUT_SOURCE):
            name = str(row["method"]) if origin == BASELINE_SOURCE else GREY_INPUT_LABEL
            kinds.append(BASELINE)
            names.append(name)
            keys.append(f"baseline {name}")
        else:
            kinds.append(RUN_GROUP)
            names.append(run_names[(row["ablation"], row["config_id"])])
            keys.append(f"runs {row['ablation']} {row['config_id']}")
    return rows.assign(kind=kinds, entry=names, entry_key=keys)


def _run_group_names(runs: pd.DataFrame) -> dict[tuple, str]:
    """(ablation, config id) -> ``<ablation>: <settings>``: its grid axes' settings, or, for runs swept without an
    ablation file, the config fields that set its runs apart from the group's others (else its config hash)."""
    names = {}
    for ablation, group in runs.groupby("ablation", sort=True):
        columns = [c for c in group.columns if c.startswith("axis.") and group[c].notna().any()]
        if not columns:
            settings = group.filter(like="config.").astype(str).assign(_id=group["config_id"])
            constant = settings.groupby("_id").nunique().max() == 1
            columns = [c for c in settings.columns if c != "_id" and constant.get(c, False)
                       and settings[c].nunique() > 1]
        for config_id, rows in group.groupby("config_id", sort=True):
            first = rows.iloc[0]
            label = ", ".join(f"{c.split('.', 1)[1]}={first[c]}" for c in columns if pd.notna(first[c]))
            names[(ablation, config_id)] = f"{ablation}: {label or 'config ' + str(config_id).split('-')[0]}"
    return names


def _tables(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per table key, numbered by dataset, split, then most entries first; its title and differences."""
    sizes = rows.groupby(TABLE_KEY, sort=True)["entry_key"].nunique().rename("entries").reset_index()
    sizes = sizes.sort_values(["dataset", "split", "entries", *TABLE_KEY], ascending=[True, True, False]
                              + [True] * len(TABLE_KEY), kind="stable").reset_index(drop=True)
    sizes["table"] = range(1, len(sizes) + 1)
    titles, differences = [], []
    for _, table in sizes.iterrows():
        first = sizes[(sizes["dataset"] == table["dataset"]) & (sizes["split"] == table["split"])].iloc[0]
        titles.append(f"{table['dataset']}, {table['split']} split, {table['resolution']}, {table['n_images']} images")
        differs = [f"{column.removeprefix('fingerprint.')} ({table[column]} here, {first[column]} in table "
                   f"{first['table']})" for column in TABLE_KEY if table[column] != first[column]]
        differences.append("; ".join(differs))
    return sizes.assign(title=titles, differs=differences)


def _summaries(rows: pd.DataFrame, tables: pd.DataFrame) -> pd.DataFrame:
    """One row per table x column x entry: the values pooled (seeds of a run group; a baseline's one value)."""
    columns = _columns(rows)
    rows = rows.merge(columns, on=["table", *COLUMN_KEY])
    out = []
    for (table, column, entry_key), group in rows.groupby(["table", "column", "entry_key"], sort=True):
        if group["kind"].iloc[0] == BASELINE:  # deterministic: runs scoring the same images record one value
            group = group.drop_duplicates("value")
        summary = seed_summary(group["value"].to_numpy(dtype=float))
        first = group.iloc[0]
        out.append({"table": table, "dataset": first["dataset"], "split": first["split"],
                    "resolution": first["resolution"], "n_images": first["n_images"], "entry": first["entry"],
                    "entry_key": entry_key, "kind": first["kind"], "runs": " ".join(sorted(set(group["run_id"]))),
                    "column": column, "metric": first["metric"], "higher_is_better": better(first["metric"]),
                    "n_seeds": summary.n if first["kind"] == RUN_GROUP else None, "mean": summary.mean,
                    "std": summary.std, "ci_low": summary.ci_low, "ci_high": summary.ci_high,
                    "column_differs": first["column_differs"],
                    **{f"fingerprint.{f}": first.get(f"fingerprint.{f}", NOT_RECORDED) for f in FIELDS}})
    return _disambiguated(pd.DataFrame(out))


def _columns(rows: pd.DataFrame) -> pd.DataFrame:
    """Per table, one column per metric and metric protocol: the protocol most entries share is ``psnr_rgb8``, the
    others ``psnr_rgb8 (2)``, ... with the fields in which each differs from it."""
    keys = rows.groupby(["table", *COLUMN_KEY], sort=True)["entry_key"].nunique().rename("_entries").reset_index()
    keys = keys.assign(_rank=keys["metric"].map(metric_rank)).sort_values(
        ["table", "_rank", "_entries"], ascending=[True, True, False], kind="stable")
    labels, differs = [], []
    for _, key in keys.iterrows():
        same = keys[(keys["table"] == key["table"]) & (keys["metric"] == key["metric"])]
        position = [tuple(k) for k in same[COLUMN_KEY].itertuples(index=False)].index(tuple(key[COLUMN_KEY]))
        labels.append(key["metric"] if position == 0 else f"{key['metric']} ({position + 1})")
        first = same.iloc[0]
        differs.append("; ".join(f"{c.removeprefix('fingerprint.')} ({key[c]} here, {first[c]} in "
                                 f"{first['metric']})" for c in COLUMN_KEY if key[c] != first[c]))
    return keys.drop(columns=["_rank", "_entries"]).assign(column=labels, column_differs=differs)


def _disambiguated(entries: pd.DataFrame) -> pd.DataFrame:
    """Entry names made unique within each table (two methods of one name: their run ids added)."""
    entries = entries.copy()
    for _, rows in entries.groupby("table"):
        names = rows.drop_duplicates("entry_key")
        for name, same in names.groupby("entry"):
            if len(same) > 1:
                for _, row in same.iterrows():
                    entries.loc[entries["entry_key"] == row["entry_key"], "entry"] = f"{name} ({row['runs']})"
    return entries


def _rank(entries: pd.DataFrame) -> pd.DataFrame:
    """Each entry's rank within its column and whether its interval overlaps the next-ranked entry's."""
    ranks, overlaps = pd.Series(math.nan, index=entries.index), pd.Series(None, index=entries.index, dtype=object)
    for _, column in entries.groupby(["table", "column"], sort=True):
        direction = column["higher_is_better"].iloc[0]
        if direction is None:
            continue
        sign = -1.0 if direction else 1.0
        order = column.assign(_key=sign * column["mean"]).sort_values(["_key", "entry"], kind="stable")
        keys = order["_key"].tolist()
        for position, (index, row) in enumerate(order.iterrows()):
            ranks[index] = 1 + sum(1 for key in keys if key < row["_key"])
            if position + 1 < len(order):
                following = order.iloc[position + 1]
                overlaps[index] = bool(_low(row) <= _high(following) and _low(following) <= _high(row))
    return entries.assign(rank=ranks, overlaps_next=overlaps)


def _low(row: pd.Series) -> float:
    return row["mean"] if math.isnan(row["ci_low"]) else row["ci_low"]


def _high(row: pd.Series) -> float:
    return row["mean"] if math.isnan(row["ci_high"]) else row["ci_high"]


# ---------------------------------------------------------------------------------------
# Output

def leaderboard_command(results: str | Path = "results", out: str | Path = "reports/leaderboard", *,
                        dataset: str | None = None, split: str = "test", metrics: list[str] | None = None,
                        rank_by: str | None = None) -> int:
    """Collect ``results`` and write its leaderboard into ``out``; print where."""
    with printed_warnings():
        board = leaderboard(collect(results).metrics, dataset=dataset, split=split, metrics=metrics, rank_by=rank_by)
    for path in write_leaderboard(board, Path(out)):
        print(path)
    return 0


def write_leaderboard(board: Leaderboard, out: Path) -> list[Path]:
    """Write leaderboard.md, .csv, .tex and .png into ``out``; return their paths."""
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / name for name in FILES]
    rundir.write_text(paths[0], markdown(board))
    rundir.write_text(paths[1], board.entries.reindex(columns=CSV_COLUMNS).to_csv(index=False, lineterminator="\n"))
    rundir.write_text(paths[2], latex(board))
    figure(board, paths[3])
    return paths


def _ordered(board: Leaderboard, table: int) -> tuple[pd.DataFrame, list[str], dict[str, int]]:
    """A table's entries, its entry names in the order of their rank on ``rank_by``, and its columns' decimals."""
    entries = board.entries[board.entries["table"] == table]
    ordered = entries.drop_duplicates("column").assign(_rank=lambda f: f["metric"].map(metric_rank))
    columns = ordered.sort_values(["_rank", "column"], kind="stable")["column"].tolist()
    places = {c: decimals(entries.loc[entries["column"] == c, "mean"]) for c in columns}
    ranked = entries[entries["column"] == board.rank_by].sort_values(["rank", "entry"], na_position="last")
    names = list(dict.fromkeys([*ranked["entry"], *sorted(set(entries["entry"]))]))
    return entries, names, places


def _metric_of(entries: pd.DataFrame, column: str) -> str:
    return entries.loc[entries["column"] == column, "metric"].iloc[0]


def _heading(entries: pd.DataFrame, column: str) -> str:
    """``psnr_rgb8 ↑``, or ``psnr_rgb8 ↑ (2)`` for the same metric under another protocol."""
    metric = _metric_of(entries, column)
    return metric_heading(metric) + column[len(metric):]


def _cell(row: pd.Series | None, places: int, tex: bool = False) -> str:
    if row is None:
        return "--" if tex else "–"
    text = number(row["mean"], places)
    if not math.isnan(row["ci_low"]):
        text += f" [{number(row['ci_low'], places)}, {number(row['ci_high'], places)}]"
    if not math.isnan(row["rank"]):
        text += f" \\#{int(row['rank'])}" if tex else f" #{int(row['rank'])}"
        if row["overlaps_next"] is True:
            text += " $\\approx$" if tex else " ≈"
    return text


def markdown(board: Leaderboard) -> str:
    """leaderboard.md: one table per protocol, entries x metric columns, with the protocol and its differences."""
    legend = (f"Generated by `colorbench leaderboard`.  Cells: mean [{LEVEL * 100:.0f}% t-interval over seeds, for "
              "run groups of 2 or more seeds] #rank on that metric (1 = best); ≈: the interval overlaps the "
              "next-ranked entry's (a single value is its own interval), so the order of the two is not resolved.  "
              f"Rows are ordered by their rank on {board.rank_by}.  Rows under different protocols are never ranked "
              "together: each has its own table, which names the fields that differ.")
    lines = ["# Leaderboard", "", legend, ""]
    for _, table in board.tables.iterrows():
        entries, names, places = _ordered(board, table["table"])
        columns = list(places)
        first = entries.iloc[0]
        lines += [f"## Table {table['table']}: {table['title']}", "",
                  "Protocol: " + "; ".join(f"{f.replace('_', ' ')}: {first[f'fingerprint.{f}']}" for f in TABLE_FIELDS)
                  + ".", ""]
        if table["differs"]:
            lines += [f"Differs from table {_first_table(board, table)} in: {table['differs']}; not ranked with it.",
                      ""]
        for column, differs in entries[["column", "column_differs"]].drop_duplicates().itertuples(index=False):
            if differs:
                lines += [f"Column {column} differs in: {differs}; ranked apart.", ""]
        heads = [_heading(entries, c) for c in columns]
        lines += ["| entry | kind | seeds | " + " | ".join(heads) + " |", "|---" * (3 + len(columns)) + "|"]
        for name in names:
            rows = entries[entries["entry"] == name]
            cells = {r["column"]: r for _, r in rows.iterrows()}
            seeds = rows["n_seeds"].dropna()
            lines.append(f"| {name} | {rows['kind'].iloc[0]} | {int(seeds.max()) if len(seeds) else '–'} | "
                         + " | ".join(_cell(cells.get(c), places[c]) for c in columns) + " |")
        lines.append("")
    return "\n".join(lines)


def _first_table(board: Leaderboard, table: pd.Series) -> int:
    tables = board.tables
    return int(tables[(tables["dataset"] == table["dataset"]) & (tables["split"] == table["split"])]["table"].min())


def latex(board: Leaderboard) -> str:
    """leaderboard.tex: one booktabs table per protocol table."""
    blocks = ["% Generated by colorbench leaderboard; needs \\usepackage{booktabs}."]
    for _, table in board.tables.iterrows():
        entries, names, places = _ordered(board, table["table"])
        columns = list(places)
        caption = (f"{tex_escape(table['title'])}. Mean [{LEVEL * 100:.0f}\\% t-interval over seeds] \\#rank; "
                   "$\\approx$: overlaps the next-ranked entry's interval."
                   + (f" Differs from table {_first_table(board, table)} in: {tex_escape(table['differs'])}."
                      if table["differs"] else ""))
        header = ["Entry", "Kind"] + [tex_escape(c) + {True: " $\\uparrow$", False: " $\\downarrow$"}.get(
            better(_metric_of(entries, c)), "") for c in columns]
        rows = []
        for name in names:
            found = entries[entries["entry"] == name]
            cells = {r["column"]: r for _, r in found.iterrows()}
            rows.append(" & ".join([tex_escape(name), found["kind"].iloc[0]]
                                   + [_cell(cells.get(c), places[c], tex=True) for c in columns]) + " \\\\")
        blocks += ["\\begin{table}[t]", "\\centering", f"\\caption{{{caption}}}",
                   f"\\label{{tab:leaderboard-{table['table']}}}", "\\begin{tabular}{ll" + "r" * len(columns) + "}",
                   "\\toprule", " & ".join(header) + " \\\\", "\\midrule", *rows, "\\bottomrule", "\\end{tabular}",
                   "\\end{table}", ""]
    return "\n".join(blocks)


def figure(board: Leaderboard, path: Path) -> None:
    """leaderboard.png: per table (rows of panels) and column, each entry's mean and interval, best at the top."""
    tables = board.tables["table"].tolist()
    columns = {t: list(_ordered(board, t)[2]) for t in tables}
    width = max(len(c) for c in columns.values())
    heights = [0.6 + 0.3 * board.entries.loc[board.entries["table"] == t, "entry"].nunique() for t in tables]
    fig = Figure(figsize=(3.6 * width + 2.5, sum(heights) + 0.6))
    axes = fig.subplots(len(tables), width, squeeze=False, gridspec_kw={"height_ratios": heights})
    for row, table in enumerate(tables):
        entries, names, _ = _ordered(board, table)
        for col in range(width):
            ax = axes[row][col]
            if col >= len(columns[table]):
                ax.set_visible(False)
                continue
            column = columns[table][col]
            shown = entries[entries["column"] == column].set_index("entry").reindex(names)
            shown = shown.assign(y=range(len(names) - 1, -1, -1))  # the best at the top
            for kind, colour in KIND_COLOURS.items():
                mine = shown[(shown["kind"] == kind) & shown["mean"].map(lambda v: math.isfinite(v))]
                low, high = (mine["mean"] - mine["ci_low"]).fillna(0), (mine["ci_high"] - mine["mean"]).fillna(0)
                ax.errorbar(mine["mean"], mine["y"], xerr=[low, high], fmt="o", capsize=3, markersize=4,
                            color=colour, label=kind)
            ax.set_yticks(shown["y"], names if col == 0 else [""] * len(names), fontsize=7)
            ax.set_title(f"table {table}: {_heading(entries, column)}", fontsize=8)
            ax.tick_params(axis="x", labelsize=7)
    fig.suptitle(f"Leaderboard: mean and {LEVEL * 100:.0f}% t-interval over seeds; run groups blue, methods "
                 "orange, baselines grey", fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)
