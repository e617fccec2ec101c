"""``colorbench reproduce NAME``: sweep a study file at a profile, then render it beside its published table.

A study is an ablation file with a ``reproduce`` block (see ``bench.reproduce.study``) in the
studies folder (default: the repository's ``ablations/``).  Submission is the sweep's
(finished runs are skipped, so running it again only renders); the report is the ablation
report of ``colorbench report`` with the reproduction files beside it.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import bench
from bench.config import ConfigError, RunConfig, read_yaml
from bench.report.collect import AGGREGATE_FILE, collect, write_aggregate
from bench.report.published import load_published
from bench.report.stats import BOOTSTRAP_SEED, N_RESAMPLES
from bench.reproduce.compute import write_compute
from bench.reproduce.output import MARKDOWN_FILE, write_reproduction
from bench.reproduce.study import parse_study
from bench.run import rundir
from bench.sweep.ablation import Ablation, load_ablation, read_study
from bench.sweep.commands import sweep_command
from bench.sweep.profiles import PRESETS_FILE, available_profiles, read_presets
from bench.sweep.results import AblationResults
from bench.sweep.submit import SweepOptions

BASELINES_FOLDER = "baselines"  # <results>/<study>/baselines/<key>/: the trivial baselines' method directories


def default_studies_folder() -> Path:
    """The repository's ``ablations/`` (beside the package), else ``./ablations``."""
    beside_package = Path(bench.__file__).resolve().parents[1] / "ablations"
    return beside_package if beside_package.is_dir() else Path("ablations")


def study_files(folder: Path) -> list[Path]:
    """The ablation files of ``folder`` that have a ``reproduce`` block, by name."""
    if not folder.is_dir():
        raise ConfigError(f"{folder}: no such studies folder; give --studies DIR")
    files = []
    for path in sorted(folder.glob("*.yaml")):
        if path.name == PRESETS_FILE:
            continue
        data = read_yaml(path, "study file")
        if isinstance(data, dict) and "reproduce" in data:
            files.append(path)
    return files


def find_study(name: str, folder: Path) -> Path:
    """The study file ``name`` names: a path, or a study's name in ``folder``."""
    if Path(name).is_file():
        return Path(name)
    files = study_files(folder)
    by_name = {path.stem: path for path in files}
    if name not in by_name:
        raise ConfigError(f"reproduce {name}: no such study in {folder}; the studies are: {', '.join(by_name)} "
                          "(colorbench reproduce --list)")
    return by_name[name]


def list_command(folder: Path) -> int:
    """Print every study: name, what it reproduces, runs per profile."""
    published = load_published()
    print(f"{'study':34s} {'runs full/cpu':>14s}  reproduces")
    for path in study_files(folder):
        data, presets = read_study(path)
        profiles = available_profiles(data, presets)
        counts = []
        for profile in ("full", "cpu"):
            counts.append(str(len(load_ablation(path, profile=profile).runs)) if profile in profiles else "-")
        study = parse_study(load_ablation(path), published)
        print(f"{path.stem:34s} {'/'.join(counts):>14s}  {study.title}")
    names = ["full", *sorted(read_presets(folder))]
    print(f"\nprofiles: {', '.join(names)}; study files in {folder}")
    return 0


def reproduce_command(name: str, options: SweepOptions = SweepOptions(), out: str | Path = "reports",
                      folder: Path | None = None, n_resamples: int | None = None) -> int:
    """Sweep the study ``name`` at ``options.profile`` (skipping finished runs), then write and print its
    reproduction; an arm whose data is not here is left out and reported not testable."""
    path = find_study(name, folder or default_studies_folder())
    profile, results, overrides = options.profile, options.results, options.overrides
    ablation = load_ablation(path, overrides, profile)
    parse_study(ablation, load_published())  # a bad reproduce block fails before anything is submitted
    code = sweep_command(path, dataclasses.replace(options, skip_missing_data=True))
    if options.dry_run:
        return code
    root = Path(results) / ablation.name
    if not any(root.glob("*/config.yaml")):
        print(f"reproduce {ablation.name}: no run has started yet; run this command again to render it")
        return code
    from bench.evaluation.score_predictions import score_baselines  # here: torch, which --list does not need
    from bench.report.build import report_command
    # The study as it is now (its claims may have changed since its runs were swept) is what the report reads.
    AblationResults(root).write_snapshot(ablation)
    score_baselines(_baseline_config(ablation), root / BASELINES_FOLDER)  # the floor every row must beat
    report_command([str(root)], results, out, n_resamples=n_resamples, study_section=write_reproduction)
    study_out = Path(out) / ablation.name
    write_aggregate(collect(root), study_out, csv=False)  # every run's numbers, to commit: the verdicts' source
    command = ["colorbench", "reproduce", path.stem, "--profile", profile, "--executor", options.executor,
               *(["--max-parallel", str(options.max_parallel)] if options.max_parallel else []),
               *_set_args(overrides)]
    write_compute(root, study_out, command)
    print()
    print((study_out / MARKDOWN_FILE).read_text())
    return code


def _baseline_config(ablation: Ablation) -> RunConfig:
    """The config the study's trivial baselines are scored with: its runs' data, test images and metrics (the
    baseline row's config; every row of a study shares its data)."""
    return next((run.config for run in ablation.runs if run.data_problem is None), ablation.runs[0].config)


def render_from_aggregate(name: str, profile: str, out: str | Path = "reports", folder: Path | None = None,
                          n_resamples: int | None = None) -> Path:
    """Re-derive a study's reproduction.md and reproduction.json, and the learning-curve and reproduction sections of
    its table.md, from its ``aggregate.parquet`` and ``curves.parquet`` in ``out`` and the study file alone (no runs,
    no results folder); return the study's folder.

    The same numbers as rendering from the runs: the aggregate holds every run's records and every baseline's.
    """
    import pandas as pd

    from bench.report.analysis import analyse  # here: pandas and scipy, which --list does not need
    from bench.report.collect import CURVES_FILE, read_aggregate
    from bench.report.curves import CURVES_HEADING, curves_markdown
    from bench.report.design import design_of_ablation
    from bench.report.tables import decimals, report_curves
    ablation = load_ablation(find_study(name, folder or default_studies_folder()), profile=profile)
    study_out = Path(out) / ablation.name
    aggregate = study_out / AGGREGATE_FILE
    if not aggregate.is_file():
        raise ConfigError(f"reproduce {name} --from-aggregate: no {aggregate}; render the study from its runs first "
                          f"(colorbench reproduce {name} --profile {profile})")
    frame = read_aggregate(aggregate)
    curves = pd.read_parquet(study_out / CURVES_FILE) if (study_out / CURVES_FILE).is_file() else None
    analysis = analyse(frame[frame["ablation"] == ablation.name], design_of_ablation(ablation),
                       n_resamples=n_resamples or N_RESAMPLES, seed=BOOTSTRAP_SEED, curves=curves)
    section = write_reproduction(ablation, analysis, study_out, load_published(), n_resamples or N_RESAMPLES,
                                 BOOTSTRAP_SEED)
    table = study_out / "table.md"
    if table.is_file():  # the report's last section is the reproduction's summary: written anew with it
        text = _with_section(table.read_text(), CURVES_HEADING, curves_markdown(report_curves(analysis), decimals))
        head, found, _ = text.partition("\n## Reproduction")
        rundir.write_text(table, (head if found else text.rstrip("\n") + "\n") + "\n" + section)
    return study_out


def _with_section(text: str, heading: str, lines: list[str]) -> str:
    """``text`` with its markdown section ``heading`` (up to the next ``## ``) replaced by ``lines``; unchanged where
    it has no such section."""
    head, found, rest = text.partition(heading + "\n")
    if not found:
        return text
    _, next_found, tail = rest.partition("\n## ")
    return head + "\n".join(lines) + ("\n## " + tail if next_found else "")


def _set_args(overrides: list[str] | tuple[str, ...]) -> list[str]:
    return [part for text in overrides for part in ("--set", text)]
