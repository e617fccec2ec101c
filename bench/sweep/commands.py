"""``colorbench sweep`` and ``colorbench status``: what they print and the exit codes they return."""
from __future__ import annotations

import sys
from pathlib import Path

from bench.config import ConfigError
from bench.sweep.ablation import Ablation, load_ablation
from bench.sweep.profiles import FULL
from bench.sweep.results import AblationResults, printed_warnings, warn
from bench.sweep.reuse import reuse_finished_runs
from bench.sweep.status import collect_status, format_table
from bench.sweep.submit import SweepOptions, describe_plan, plan_sweep, resolve_executor, submit, wait_for

EXIT_OK = 0
EXIT_RUNS_FAILED = 1


def sweep_command(file: str | Path, options: SweepOptions = SweepOptions()) -> int:
    """Expand, check and submit an ablation; 1 when a run of it has failed (after waiting, for local/debug).

    Runs whose data is not on this machine (so their ids cannot be named) refuse the whole sweep,
    unless ``options.skip_missing_data``: then they are left out with one line saying why.
    """
    ablation = load_ablation(file, options.overrides, options.profile, fetch_data=not options.dry_run)
    folder = AblationResults(options.results / ablation.name)
    executor = resolve_executor(options.executor)
    if not options.dry_run:
        _check_data(ablation, options.skip_missing_data)
    if options.reuse:
        for run, source in reuse_finished_runs(ablation, folder, copy=not options.dry_run):
            print(f"{run.run_id}: finished in {source.parent.name}; "
                  f"{'would be copied' if options.dry_run else 'copied'} from {source}, not trained again")
    with printed_warnings():
        plan = plan_sweep(ablation, folder, options.rerun_failed)
    if options.dry_run:
        print(describe_plan(ablation, folder, plan, executor, options))
        return EXIT_OK
    submitted = submit(ablation, folder, plan, executor, options)
    wait = options.wait
    if not submitted:
        print(f"ablation {ablation.name}: nothing to submit")
        statuses = plan.statuses
    elif executor == "slurm" and not wait:
        print(f"ablation {ablation.name}: submitted {len(submitted)} runs to SLURM as one job array; "
              f"follow them with: colorbench status {folder.root}")
        statuses = collect_status(folder, ablation.runs)
    elif executor == "slurm":
        statuses = wait_for(folder, ablation, {s.run.run_id for s in submitted})
    else:
        statuses = collect_status(folder, ablation.runs)
    print(format_table(statuses))
    return EXIT_RUNS_FAILED if any(s.failed for s in statuses) else EXIT_OK


def _check_data(ablation: Ablation, skip_missing_data: bool) -> None:
    """Refuse (or, when asked, announce skipping) runs whose data id is unknown: their directories cannot be named."""
    unknown = [run for run in ablation.runs if run.data_problem is not None]
    if not unknown:
        return
    what = f"{ablation.source}: {len(unknown)} of {len(ablation.runs)} runs cannot be named, because their run ids " \
           f"cover the data: {unknown[0].data_problem}"
    if not skip_missing_data:
        raise ConfigError(f"{what}; --skip-missing-data runs the others")
    print(f"colorbench: warning: {what}; they are skipped", file=sys.stderr)


def status_command(target: str | Path | None = None, results: str | Path = "results",
                   overrides: list[str] | tuple[str, ...] = (), profile: str = FULL) -> int:
    """Print the status table of an ablation file's runs, of a results folder, or of every ablation in ``results``."""
    any_failed = False
    with printed_warnings():  # files of a results folder that cannot be read: one line each, on stderr
        for ablation, folder in _ablations(target, Path(results), list(overrides), profile):
            statuses = collect_status(folder, ablation.runs)  # a directory holding another run is a broken row
            print(f"ablation {ablation.name}: {folder.root}")
            print(format_table(statuses))
            any_failed |= any(s.failed for s in statuses)
    return EXIT_RUNS_FAILED if any_failed else EXIT_OK


def _ablations(target: str | Path | None, results: Path, overrides: list[str],
               profile: str) -> list[tuple[Ablation, AblationResults]]:
    if target is None:
        folders = sorted(p for p in results.glob("*/ablation.yaml")) if results.is_dir() else []
        if not folders:
            raise ConfigError(f"{results}: no ablation results here; name an ablation file or a results folder")
        target_folders = [AblationResults(p.parent) for p in folders]
    elif Path(target).is_dir():
        target_folders = [AblationResults(target)]
    elif Path(target).is_file():
        ablation = load_ablation(target, overrides, profile)
        return [(ablation, AblationResults(results / ablation.name))]
    else:
        raise ConfigError(f"{target}: no such ablation file or results folder")
    if overrides:
        raise ConfigError("--set applies to an ablation file; a results folder keeps the overrides it was swept with")
    if target is not None:
        return [(folder.read_snapshot(), folder) for folder in target_folders]
    sections = []
    for folder in target_folders:  # every ablation under --results: one unreadable snapshot is a warning
        try:
            sections.append((folder.read_snapshot(), folder))
        except ConfigError as err:
            warn(f"{err}; the runs of {folder.root} are left out")
    return sections
