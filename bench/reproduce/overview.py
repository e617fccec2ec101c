"""``reports/REPRODUCTION.md``: every study rendered at one profile, with the headline count of claims that hold.

Built only from files that are committed beside each study's report (``reproduction.json``,
``reproduction.md``, ``compute.json``), never from ``results/``, so the same reports folder
always gives the same bytes.  Studies of the studies folder with no rendered reproduction at
the profile are listed as not run.
"""
from __future__ import annotations

import json
from pathlib import Path

from bench.config import ConfigError
from bench.reproduce.compute import COMPUTE_FILE
from bench.reproduce.output import JSON_FILE, MARKDOWN_FILE
from bench.reproduce.render import VERDICT_ORDER
from bench.run import rundir

OVERVIEW_FILE = "REPRODUCTION.md"


def write_overview(reports: Path, study_names: list[str], profile: str, setting: str | None = None) -> Path:
    """Write ``reports/REPRODUCTION.md`` for ``study_names`` at ``profile``; return its path.

    ``setting`` describes the profile (its preset's ``description``), shown above the studies.
    """
    rendered, missing = [], []
    for name in study_names:
        folder = reports / (name if profile == "full" else f"{name}-{profile}")
        if (folder / JSON_FILE).is_file() and (folder / MARKDOWN_FILE).is_file():
            rendered.append((name, folder, _read_json(folder / JSON_FILE), _read_json(folder / COMPUTE_FILE)))
        else:
            missing.append(name)
    path = reports / OVERVIEW_FILE
    rundir.write_text(path, _markdown(rendered, missing, profile, setting))
    return path


def _markdown(rendered: list[tuple[str, Path, dict, dict | None]], missing: list[str], profile: str,
              setting: str | None) -> str:
    totals = dict.fromkeys(VERDICT_ORDER, 0)
    for _, _, summary, _ in rendered:
        for verdict, count in summary["claims"].items():
            totals[verdict] += count
    testable = totals["holds"] + totals["does not hold"]
    lines = [f"# Reproduction at the `{profile}` profile", "",
             f"Regenerate with `colorbench reproduce --overview --profile {profile}` (from the committed files of "
             "each study's folder below; each study's own numbers come from `colorbench reproduce NAME --profile "
             f"{profile}`).", "",
             f"**Headline: {totals['holds']} of {testable} testable published claims hold at this scale** "
             f"({totals['does not hold']} do not hold; {totals['not testable here']} more are not testable here), "
             f"over {len(rendered)} of {len(rendered) + len(missing)} studies.", ""]
    if setting:
        lines += [f"**The `{profile}` profile.** {' '.join(setting.split())}  Each study adapts it where its "
                  "source needs (its file says how), and each section below says what differs from the "
                  "published setting and how that may explain a difference.", ""]
    machines = _machine_labels(rendered)
    lines += ["| study | reproduces | holds | does not hold | not testable here | runs | run time (total) | "
              "wall time | machine |", "|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for name, folder, summary, compute in rendered:
        claims = summary["claims"]
        runs = sum(row["runs_done"] for row in summary["rows"])
        planned = sum(row["runs_planned"] for row in summary["rows"])
        lines.append(f"| [{name}]({folder.name}/{MARKDOWN_FILE}) | {summary['title']} | {claims['holds']} | "
                     f"{claims['does not hold']} | {claims['not testable here']} | {runs} of {planned} | "
                     f"{_duration(compute, 'run_seconds_total')} | {_duration(compute, 'wall_seconds')} | "
                     f"{_machines(compute, machines)} |")
    lines += [""] + [f"M{number}: {label}.  " for label, number in machines.items()]
    if missing:
        lines += ["", "Not run at this profile yet: " + ", ".join(f"`{name}`" for name in missing) + "."]
    lines += ["", "A comparison claim **holds** when the 95 % interval of the difference (paired bootstrap over the "
              "same test images and the seeds; Welch t over seeds for set metrics) lies on the claimed side of 0, a "
              "\"best\" claim when that is so against every other row, and a published number when it lies in our "
              "95 % t-interval over seeds under a comparable protocol.  It **does not hold** when the difference is "
              "reversed or not resolved by our seeds, and is **not testable here** when its metric, data, weights "
              "or protocol are not available on this machine (each study says which and why).  The intervals are "
              "not corrected across claims; each study's `table.md` gives the corrected ones.  Each study below "
              "states what differs from the published setting."]
    for name, folder, _, compute in rendered:
        text = (folder / MARKDOWN_FILE).read_text()
        lines += ["", "---", "", _demoted(text).rstrip("\n")]
        if compute:
            lines += ["", f"Compute: {compute['runs_done']} runs, {_duration(compute, 'run_seconds_total')} of run "
                      f"time ({_duration(compute, 'run_seconds_mean')} per run), {_duration(compute, 'wall_seconds')} "
                      f"wall, {compute['first_start']} to {compute['last_end']}, on "
                      f"{_machines(compute, machines)}; "
                      f"command: `{compute['command']}`."]
    return "\n".join(lines) + "\n"


def _demoted(markdown: str) -> str:
    """Headings one level lower, so that each study is a section of the overview."""
    return "\n".join("#" + line if line.startswith("#") else line for line in markdown.splitlines())


def _duration(compute: dict | None, key: str) -> str:
    if not compute or key not in compute:
        return "–"
    seconds = compute[key]
    return f"{seconds / 3600:.1f} h" if seconds >= 5400 else f"{seconds / 60:.1f} min"


def _machine_labels(rendered: list[tuple[str, Path, dict, dict | None]]) -> dict[str, int]:
    """Each machine the runs recorded, numbered in order of first appearance (M1, M2, ...)."""
    labels: dict[str, int] = {}
    for *_, compute in rendered:
        for label in (compute or {}).get("machines", {}):
            labels.setdefault(label, len(labels) + 1)
    return labels


def _machines(compute: dict | None, numbers: dict[str, int]) -> str:
    if not compute or not compute.get("machines"):
        return "–"
    return ", ".join(f"M{numbers[label]} ({n} runs)" for label, n in compute["machines"].items())


def _read_json(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except ValueError as err:
        raise ConfigError(f"{path}: not JSON ({err})") from None
