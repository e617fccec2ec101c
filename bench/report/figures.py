"""The report's figures as PNG files, drawn with seaborn on matplotlib's Agg canvas.

* ``metrics.png``: per metric, each variant's value per seed (dots) and the mean with its 95%
  t-interval (the numbers of table.md);
* ``curves.png``: each loss term and the test PSNR against the step, mean over seeds with a
  band of one standard deviation;
* ``qualitative.png``: the same test images as grey input, ground truth and each variant's output;
* ``histograms.png``: per Lab channel, the colour histogram of each variant's outputs and of the
  ground truth.

The outputs of the last two are read from each run's last ``samples/step-*.png`` grid (written
by :func:`bench.evaluation.outputs.save_sample_grid` at the final evaluation: the first
``eval.n_sample_images`` test images, exactly as scored), so a report needs neither the dataset nor
a checkpoint.  The run shown per variant is its lowest seed.

Figures are built on :class:`matplotlib.figure.Figure` (no pyplot, so no global state) and saved
without the Software metadata, so the same inputs give the same bytes.
"""
from __future__ import annotations

import contextlib
import io
import textwrap
import warnings
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import seaborn as sns
import torch
from matplotlib.figure import Figure
from PIL import Image

from bench.evaluation.metrics.histogram import LAB_BINS, lab_histograms
from bench.report.analysis import REPORT_SPLIT, SECTION_COLUMNS, Analysis, better, metric_rank
from bench.run import rundir
from bench.run.rundir import atomic_write
from bench.sweep.results import warn

DPI = 100
MAX_GRID_PIXELS = 1 << 26  # 64 Mpx, 192 MB decoded: a grid of 8 images of 1024x1024 is 10 Mpx
GRID_PADDING = 2  # bench.evaluation.outputs.save_sample_grid: torchvision make_grid(..., nrow=3, padding=2)
GRID_COLUMNS = 3  # input | output | ground truth
CURVE_METRIC = "psnr_rgb8"
STYLE = "whitegrid"
PALETTE = "colorblind"


def save_figure(figure: Figure, path: Path) -> None:
    """Write ``figure`` as a PNG without metadata that changes between runs."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    atomic_write(path, lambda handle: handle.write(buffer.getvalue()), mode="wb")


class SampleGridError(ValueError):
    """A file where a samples grid should be that is not one; the message names it."""


def read_sample_grid(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(inputs, outputs, ground truths) of a samples grid, each uint8 (N, S, S, 3).

    The file is read through ``bench.run.rundir``'s reader (a regular file inside its run directory, at most
    ``MAX_IMAGE_BYTES``), and its size and shape are checked from the PNG header before a pixel is decoded:
    anything else is a :class:`SampleGridError` (or the reader's ``RunFileError``) naming it.
    """
    data = rundir.read_bytes(path, rundir.MAX_IMAGE_BYTES)
    if data is None:
        raise SampleGridError(f"{path}: no such file")
    try:
        with warnings.catch_warnings():  # a size Pillow warns about is refused below, by its header
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError:
        raise SampleGridError(f"{path}: more pixels than an image Pillow decodes; not a samples grid") from None
    except Exception as err:  # Pillow raises many kinds on what is not an image it knows
        raise SampleGridError(f"{path}: not an image ({type(err).__name__})") from None
    width, height = image.size
    side = (width - GRID_PADDING) // GRID_COLUMNS - GRID_PADDING
    rows = (height - GRID_PADDING) // (side + GRID_PADDING) if side > 0 else 0
    if side < 1 or rows < 1 or width != GRID_COLUMNS * (side + GRID_PADDING) + GRID_PADDING or \
            height != rows * (side + GRID_PADDING) + GRID_PADDING:
        raise SampleGridError(f"{path}: {width}x{height} is not a samples grid of {GRID_COLUMNS} columns")
    if width * height > MAX_GRID_PIXELS:
        raise SampleGridError(f"{path}: {width}x{height}, more than the {MAX_GRID_PIXELS:,} pixels a report reads "
                              "of a samples grid")
    try:
        grid = np.asarray(image.convert("RGB"))
    except Exception as err:  # truncated or damaged pixel data
        raise SampleGridError(f"{path}: its pixels cannot be decoded ({type(err).__name__})") from None

    def tiles(column: int) -> np.ndarray:
        x = GRID_PADDING + column * (side + GRID_PADDING)
        return np.stack([grid[GRID_PADDING + r * (side + GRID_PADDING):][:side, x:x + side] for r in range(rows)])
    return tiles(0), tiles(1), tiles(2)


def last_sample_grid(run_dir: Path) -> Path | None:
    """The run's latest samples grid (the final evaluation's for a finished run)."""
    grids = sorted((run_dir / "samples").glob("step-*.png"))
    return grids[-1] if grids else None


def metrics_figure(analysis: Analysis, path: Path) -> bool:
    """Write metrics.png; False (nothing written) when no metric has a value."""
    summary, values = analysis.summary, analysis.reported
    if summary.empty:
        return False
    metrics = list(dict.fromkeys(summary["metric"]))
    sections = _section_labels(summary)
    order = list(dict.fromkeys(summary["variant"]))  # grid order, the same x positions in every panel
    hue_order = list(sections.values())
    columns = min(3, len(metrics))
    rows = -(-len(metrics) // columns)
    with _style():
        figure = Figure(figsize=(4.2 * columns, 3.2 * rows + 0.25 * max(len(_wrap(v).splitlines()) for v in order)))
        axes = figure.subplots(rows, columns, squeeze=False).ravel()
        for index, (ax, metric) in enumerate(zip(axes, metrics)):
            points = values[values["metric"] == metric].assign(section=lambda f: _section_of(f, sections))
            means = summary[summary["metric"] == metric].assign(section=lambda f: _section_of(f, sections))
            sns.stripplot(data=points, x="variant", y="value", hue="section", order=order, hue_order=hue_order,
                          dodge=len(hue_order) > 1, jitter=False, alpha=0.5, size=5, palette=PALETTE, ax=ax,
                          legend=False)
            positions = {variant: i for i, variant in enumerate(order)}
            offsets = _dodge(len(hue_order))
            colours = sns.color_palette(PALETTE, len(hue_order))
            for (section, colour, offset) in zip(hue_order, colours, offsets):
                rows_of = means[means["section"] == section]
                x = [positions[v] + offset for v in rows_of["variant"]]
                low = (rows_of["mean"] - rows_of["ci_low"]).fillna(0)
                high = (rows_of["ci_high"] - rows_of["mean"]).fillna(0)
                ax.errorbar(x, rows_of["mean"], yerr=[low, high], fmt="D", color=colour, capsize=4, markersize=6,
                            label=section)
            lowest = index + columns >= len(metrics)  # variant names under the lowest panel of each column only
            ax.set_xticks(range(len(order)), [_wrap(v) for v in order] if lowest else [""] * len(order),
                          fontsize=7, rotation=30, ha="right", rotation_mode="anchor")
            ax.set_xlabel("")
            ax.set_ylabel("")
            arrow = {True: " (higher is better)", False: " (lower is better)"}.get(better(metric), "")
            ax.set_title(metric + arrow, fontsize=9)
            if len(hue_order) > 1:
                ax.legend(fontsize=6)
        for ax in axes[len(metrics):]:
            ax.set_visible(False)
        figure.suptitle(f"{analysis.design.name}: mean and 95% t-interval over seeds (diamonds), seeds (dots)",
                        fontsize=10)
        figure.tight_layout()
        save_figure(figure, path)
    return True


def curves_figure(analysis: Analysis, curves: pd.DataFrame, path: Path) -> bool:
    """Write curves.png for the reported runs; False when they logged nothing."""
    runs = analysis.reported.drop_duplicates("run_id")[["run_id", "variant", "fixed", "variant_position"]]
    data = curves.merge(runs, on="run_id")
    series = sorted(s for s in set(data["series"]) if s.startswith("loss_"))
    if f"{REPORT_SPLIT}/{CURVE_METRIC}" in set(data["series"]):
        series.append(f"{REPORT_SPLIT}/{CURVE_METRIC}")
    if not series:
        return False
    data = data.assign(label=lambda f: np.where(f["fixed"] != "", f["variant"] + ", " + f["fixed"], f["variant"]))
    order = list(dict.fromkeys(data.sort_values(["fixed", "variant_position"], kind="stable")["label"]))
    columns = min(3, len(series))
    rows = -(-len(series) // columns)
    with _style():
        figure = Figure(figsize=(4.5 * columns, 3.4 * rows + 0.4 * len(order)))
        axes = figure.subplots(rows, columns, squeeze=False).ravel()
        for ax, name in zip(axes, series):
            sns.lineplot(data=data[data["series"] == name], x="step", y="value", hue="label", hue_order=order,
                         estimator="mean", errorbar="sd", palette=PALETTE, ax=ax, legend=False,
                         marker="o" if name.startswith(f"{REPORT_SPLIT}/") else None, markersize=4)
            ax.set_title(name, fontsize=9)
            ax.set_xlabel("step")
            ax.set_ylabel("")
        for ax in axes[len(series):]:
            ax.set_visible(False)
        handles = [matplotlib.lines.Line2D([], [], color=c) for c in sns.color_palette(PALETTE, len(order))]
        figure.legend(handles, order, loc="lower center", ncols=1, fontsize=7, frameon=False)
        figure.suptitle(f"{analysis.design.name}: training curves, mean over seeds ± 1 std", fontsize=10)
        figure.tight_layout(rect=(0, 0.06 * len(order) / max(rows, 1), 1, 1))
        save_figure(figure, path)
    return True


def learning_curves_figure(analysis: Analysis, path: Path) -> bool:
    """Write learning-curves.png: each metric against the updates per variant (mean over seeds ± 1 std), the trivial
    baselines as horizontal lines; False when no run was evaluated more than once."""
    curves = analysis.curves[analysis.curves["metric"].isin(
        [m for m in analysis.curves["metric"].unique() if better(m) is not None])]
    if curves.empty or curves.groupby("run_id")["step"].nunique().max() < 2:
        return False
    data = curves.merge(analysis.runs[["run_id", "variant"]], on="run_id")
    metrics = sorted(set(data["metric"]), key=metric_rank)
    order = list(dict.fromkeys(analysis.runs["variant"]))
    baselines = analysis.baselines[analysis.baselines["split"] == REPORT_SPLIT]
    names = sorted(set(baselines["baseline"]))
    columns = min(3, len(metrics))
    rows = -(-len(metrics) // columns)
    with _style():
        figure = Figure(figsize=(4.5 * columns, 3.4 * rows + 0.3 * (len(order) + len(names))))
        axes = figure.subplots(rows, columns, squeeze=False).ravel()
        for ax, metric in zip(axes, metrics):
            sns.lineplot(data=data[data["metric"] == metric], x="step", y="value", hue="variant", hue_order=order,
                         estimator="mean", errorbar="sd", palette=PALETTE, ax=ax, legend=False, marker="o",
                         markersize=4)
            for name, style in zip(names, ("--", ":", "-.")):
                value = baselines.loc[(baselines["baseline"] == name) & (baselines["metric"] == metric), "value"]
                if len(value):
                    ax.axhline(float(value.iloc[0]), color="0.35", linestyle=style, linewidth=1)
            ax.set_xscale("log", base=2)
            ax.set_title(f"{metric} ({'higher' if better(metric) else 'lower'} is better)", fontsize=9)
            ax.set_xlabel("updates")
            ax.set_ylabel("")
        for ax in axes[len(metrics):]:
            ax.set_visible(False)
        handles = [matplotlib.lines.Line2D([], [], color=c) for c in sns.color_palette(PALETTE, len(order))]
        handles += [matplotlib.lines.Line2D([], [], color="0.35", linestyle=s) for s in ("--", ":", "-.")[:len(names)]]
        figure.legend(handles, order + names, loc="lower center", ncols=1, fontsize=7, frameon=False)
        figure.suptitle(f"{analysis.design.name}: test metrics against updates, mean over seeds ± 1 std; "
                        "grey lines: trivial baselines", fontsize=10)
        figure.tight_layout(rect=(0, 0.05 * (len(order) + len(names)) / max(rows, 1), 1, 1))
        save_figure(figure, path)
    return True


def sample_outputs(analysis: Analysis, results: Path) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Per variant label, the outputs of its lowest-seed run's last samples grid; and the inputs and ground truth.

    Variants whose grid is missing, cannot be read (a warning) or shows other images than the first variant's are
    left out.
    """
    runs = analysis.reported.drop_duplicates("run_id").sort_values(["fixed", "variant_position", "seed"],
                                                                    kind="stable")
    outputs, inputs, truths = {}, None, None
    for _, run in runs.drop_duplicates(["fixed", "variant"]).iterrows():
        grid = last_sample_grid(results / run["run_dir"])
        if grid is None:
            continue
        try:
            shown, output, truth = read_sample_grid(grid)
        except (SampleGridError, rundir.RunFileError) as err:  # one bad grid leaves the other variants' figures
            warn(f"{err}; the figures show the other runs")
            continue
        if truths is None:
            inputs, truths = shown, truth
        elif truth.shape != truths.shape or not np.array_equal(truth, truths):
            continue
        label = run["variant"] + (f", {run['fixed']}" if run["fixed"] else "")
        outputs[label] = output
    return outputs, inputs, truths


def qualitative_figure(analysis: Analysis, results: Path, path: Path) -> bool:
    """Write qualitative.png; False when no reported run has a samples grid."""
    outputs, inputs, truths = sample_outputs(analysis, results)
    if not outputs:
        return False
    columns = [("input", inputs), ("ground truth", truths)] + list(outputs.items())
    n_images = len(truths)
    figure = Figure(figsize=(1.6 * len(columns), 1.6 * n_images + 1.0))
    axes = figure.subplots(n_images, len(columns), squeeze=False)
    for column, (title, images) in enumerate(columns):
        for row in range(n_images):
            ax = axes[row, column]
            ax.imshow(images[row], interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
        axes[0, column].set_title(_wrap(title, 22), fontsize=6)
    figure.suptitle(f"{analysis.design.name}: the same test images, each variant's output (lowest seed)", fontsize=8)
    figure.tight_layout()
    save_figure(figure, path)
    return True


def histograms_figure(analysis: Analysis, results: Path, path: Path) -> bool:
    """Write histograms.png (Lab histograms of outputs vs ground truth); False without samples grids."""
    outputs, _, truths = sample_outputs(analysis, results)
    if not outputs:
        return False
    sets = {"ground truth": truths, **outputs}
    frames = []
    for label, images in sets.items():
        histograms = lab_histograms(torch.from_numpy(images).permute(0, 3, 1, 2).contiguous())
        for channel, (bins, low, high) in LAB_BINS.items():
            centres = low + (np.arange(bins) + 0.5) * (high - low) / bins
            frames.append(pd.DataFrame({"set": label, "channel": channel, "value": centres,
                                        "share": histograms[channel].numpy()}))
    data = pd.concat(frames, ignore_index=True)
    order = list(sets)
    palette = ["black"] + sns.color_palette(PALETTE, len(outputs))
    with _style():
        figure = Figure(figsize=(13, 3.6 + 0.15 * len(order)))
        axes = figure.subplots(1, len(LAB_BINS))
        for ax, channel in zip(axes, LAB_BINS):
            rows = data[data["channel"] == channel]
            sns.lineplot(data=rows, x="value", y="share", hue="set", hue_order=order, palette=palette, ax=ax,
                         legend=False, linewidth=1.2, errorbar=None)
            occupied = rows.loc[rows["share"] > 0, "value"]
            ax.set_xlim(occupied.min() - 5, occupied.max() + 5)
            ax.set_title(f"{channel} (share of pixels per unit bin)", fontsize=9)
            ax.set_xlabel(channel)
            ax.set_ylabel("")
        handles = [matplotlib.lines.Line2D([], [], color=c) for c in palette]
        figure.legend(handles, order, loc="lower center", ncols=2, fontsize=7, frameon=False)
        figure.suptitle(f"{analysis.design.name}: Lab histograms of the {len(truths)} sample test images, "
                        "outputs vs ground truth (black)", fontsize=10)
        figure.tight_layout(rect=(0, 0.05 * -(-len(order) // 2), 1, 1))
        save_figure(figure, path)
    return True


# ---------------------------------------------------------------------------------------

@contextlib.contextmanager
def _style():
    """seaborn's style and context for the axes created inside, leaving matplotlib's global settings as they were."""
    with sns.axes_style(STYLE), sns.plotting_context("paper"):
        yield


def _section_labels(summary: pd.DataFrame) -> dict[tuple, str]:
    keys = summary[SECTION_COLUMNS].drop_duplicates().itertuples(index=False, name=None)
    return {key: ", ".join(part for part in (key[0], key[2]) if part) for key in keys}


def _section_of(frame: pd.DataFrame, labels: dict[tuple, str]) -> list[str]:
    return [labels[key] for key in frame[SECTION_COLUMNS].itertuples(index=False, name=None)]


def _dodge(n: int) -> list[float]:
    """x offsets of ``n`` hue levels, matching seaborn's dodge of a strip plot (width 0.8)."""
    if n == 1:
        return [0.0]
    width = 0.8 / n
    return [-0.4 + width * (i + 0.5) for i in range(n)]


def _wrap(label: str, width: int = 22) -> str:
    """A variant label for a plot: one line per axis setting, dotted config keys shortened to their last part."""
    parts = [part.split("=", 1) for part in label.split(", ")]
    short = [f"{key.rsplit('.', 1)[-1]}={value}" if value is not None else key
             for key, value in ((p[0], p[1] if len(p) > 1 else None) for p in parts)]
    return "\n".join(line for part in short for line in textwrap.wrap(part, width, break_long_words=False) or [""])
