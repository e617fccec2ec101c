"""``reports/REPRODUCTION.md``: every study at one profile, each source claim counted once, the headline.

Built only from the files committed beside each study's report (``reproduction.json``,
``reproduction.md``, ``compute.json``), never from ``results/``, so the same reports folder always
gives the same bytes.

Counting.  A *test* is one claim judged on one metric on a set of runs; two studies that judge
the same claim on the same runs hold one test, not two.  The tests whose verdict enters the
headline (not marked by construction or unequal budget, and testable) form one family, corrected
by Holm-Bonferroni: a supported or contradicted test whose adjusted p is not below 5% becomes
inconclusive.  A *claim* (one source sentence, one id) is supported when one of its tests
supports it and none contradicts it, contradicted in the mirror case, disagreeing when
independent tests do both, inconclusive when none decides, and not testable when none could be
run; a claim whose tests are all by construction or of unequal budget is listed apart.
"""
from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bench.config import ConfigError
from bench.report.stats import holm
from bench.reproduce.compute import COMPUTE_FILE
from bench.reproduce.output import JSON_FILE, MARKDOWN_FILE
from bench.reproduce.render import REASON_CLASSES
from bench.reproduce.verdicts import CONTRADICTED, INCONCLUSIVE, NOT_TESTABLE, SUPPORTED
from bench.run import rundir

OVERVIEW_FILE = "REPRODUCTION.md"
HEADLINE_PROFILE = "cpu"  # the profile whose overview is reports/REPRODUCTION.md; another's is REPRODUCTION-<profile>.md
DISAGREEING = "disagreeing"
EXCLUDED = "not counted"
CLAIM_OUTCOMES = (SUPPORTED, CONTRADICTED, INCONCLUSIVE, DISAGREEING, NOT_TESTABLE)
FAMILY_LEVEL = 0.05
_REQUIRED = {"study": str, "title": str, "rows": list, "verdicts": list}
_VERDICT_REQUIRED = {"id": str, "claim": str, "quote": str, "citation": str, "verdict": str, "raw": str, "runs": dict}


@dataclass
class Test:
    """One claim judged on one metric on one set of runs, and every study that holds it."""

    claim_id: str
    metric: str | None
    verdict: str
    raw: str
    gated: bool
    reason_class: str | None
    excluded: str | None
    p_value: float
    studies: list[str]
    detail: str
    stable: bool | None = None  # its verdict over the last half of the learning curve (None: no curve)
    adjusted_p: float = math.nan
    adjusted: str = ""


@dataclass
class ClaimSummary:
    """A source claim: its words, its tests, its outcome before and after the correction."""

    id: str
    label: str
    quote: str
    citation: str
    tests: list[Test] = field(default_factory=list)

    def outcome(self, adjusted: bool) -> str:
        counted = [t for t in self.tests if not t.excluded]
        if not counted:
            return EXCLUDED
        verdicts = {t.adjusted if adjusted else t.verdict for t in counted}
        if verdicts == {NOT_TESTABLE}:
            return NOT_TESTABLE
        if SUPPORTED in verdicts and CONTRADICTED in verdicts:
            return DISAGREEING
        for verdict in (SUPPORTED, CONTRADICTED):
            if verdict in verdicts:
                return verdict
        return INCONCLUSIVE

    def gated(self) -> bool:
        """Inconclusive only because its rows are below a trivial baseline."""
        counted = [t for t in self.tests if not t.excluded and t.verdict != NOT_TESTABLE]
        return bool(counted) and all(t.gated for t in counted)

    def stable(self) -> str:
        """Whether its counted tests' verdicts were stable over the last half of their learning curves."""
        known = [t.stable for t in self.tests if not t.excluded and t.stable is not None]
        return "–" if not known else "yes" if all(known) else "no"

    def reason_class(self) -> str | None:
        classes = [t.reason_class for t in self.tests if not t.excluded and t.reason_class]
        return Counter(classes).most_common(1)[0][0] if classes else None


def write_overview(reports: Path, study_names: list[str], profile: str, setting: str | None = None) -> Path:
    """Write ``reports/REPRODUCTION.md`` for ``study_names`` at ``profile``; return its path.

    ``setting`` describes the profile (its preset's ``description``), shown above the studies.
    """
    rendered, missing = [], []
    for name in study_names:
        folder = reports / (name if profile == "full" else f"{name}-{profile}")
        if (folder / JSON_FILE).is_file() and (folder / MARKDOWN_FILE).is_file():
            rendered.append((name, folder, _read_summary(folder / JSON_FILE), _read_compute(folder / COMPUTE_FILE)))
        else:
            missing.append(name)
    path = reports / overview_file(profile)
    rundir.write_text(path, overview_markdown(rendered, missing, profile, setting))
    return path


def overview_file(profile: str) -> str:
    """The overview's file name at ``profile`` (the README quotes the headline profile's)."""
    return OVERVIEW_FILE if profile == HEADLINE_PROFILE else f"{Path(OVERVIEW_FILE).stem}-{profile}.md"


def claims_across(summaries: list[dict]) -> list[ClaimSummary]:
    """Every source claim once, with its distinct tests, Holm-corrected as one family (see the module docstring)."""
    claims: dict[str, ClaimSummary] = {}
    tests: dict[tuple, Test] = {}
    for summary in summaries:
        for entry in summary["verdicts"]:
            claim = claims.setdefault(entry["id"], ClaimSummary(entry["id"], entry["claim"], entry["quote"],
                                                                entry["citation"]))
            runs = frozenset(run for ids in entry["runs"].values() for run in ids)
            key = (entry["id"], entry.get("metric"), runs if runs else summary["study"])
            if key in tests:  # the same claim on the same runs in another study: one test
                tests[key].studies.append(summary["study"])
                continue
            p = entry.get("p_value")
            test = Test(entry["id"], entry.get("metric"), entry["verdict"], entry["raw"], bool(entry.get("gate")),
                        entry.get("reason_class"), entry.get("excluded"), math.nan if p is None else float(p),
                        [summary["study"]], entry.get("detail", ""), entry.get("stable_over_last_half"))
            tests[key] = test
            claim.tests.append(test)
    family = [t for t in tests.values() if not t.excluded and t.verdict != NOT_TESTABLE and math.isfinite(t.p_value)]
    for test, adjusted in zip(family, holm([t.p_value for t in family])):
        test.adjusted_p = adjusted
    for test in tests.values():
        decided = test.verdict in (SUPPORTED, CONTRADICTED)
        test.adjusted = INCONCLUSIVE if decided and not test.adjusted_p < FAMILY_LEVEL else test.verdict
    return sorted(claims.values(), key=lambda c: c.id)


def headline_counts(claims: list[ClaimSummary], adjusted: bool) -> dict:
    counted = [c for c in claims if c.outcome(adjusted) != EXCLUDED]
    counts = {outcome: sum(c.outcome(adjusted) == outcome for c in counted) for outcome in CLAIM_OUTCOMES}
    counts["gated"] = sum(c.outcome(adjusted) == INCONCLUSIVE and c.gated() for c in counted)
    counts["classes"] = {kind: sum(c.outcome(adjusted) == NOT_TESTABLE and c.reason_class() == kind for c in counted)
                         for kind in REASON_CLASSES}
    counts["claims"] = len(counted)
    counts["excluded"] = len(claims) - len(counted)
    return counts


def overview_markdown(rendered: list[tuple[str, Path, dict, dict | None]], missing: list[str], profile: str,
                      setting: str | None) -> str:
    summaries = [summary for _, _, summary, _ in rendered]
    claims = claims_across(summaries)
    raw, corrected = headline_counts(claims, adjusted=False), headline_counts(claims, adjusted=True)
    family = sum(1 for c in claims for t in c.tests if math.isfinite(t.adjusted_p))
    lines = [f"# Reproduction at the `{profile}` profile", "",
             f"Regenerate with `colorbench reproduce --overview --profile {profile}` (from the committed files of "
             "each study's folder below; each study's own files come from `colorbench reproduce NAME --profile "
             f"{profile}`, and again from its committed `aggregate.parquet` with `--from-aggregate`).", "",
             f"**Headline, {budget_scale(summaries, profile)}: of {raw['claims']} independent published claims, "
             f"{_outcomes(raw)}.** With Holm–Bonferroni across the {family} tests that decide them: "
             f"{_outcomes(corrected, short=True)}.  {raw['excluded']} more claims are shown but not counted "
             f"(judged on an arm's own training objective or on unequal training budgets); "
             f"{len(rendered)} of {len(rendered) + len(missing)} studies.", ""]
    if setting:
        lines += [f"**The `{profile}` profile.** {' '.join(setting.split())}  Each study adapts it where its "
                  "source needs (its settings say how), and each section below says what differs from the "
                  "published setting.", ""]
    lines += ["**How a claim is judged.** Seeds are the unit: each comparison is the 95% Student-t interval of the "
              "per-seed differences of two rows (paired by seed), **supported** when it lies on the claimed side of "
              "0, **contradicted** when it lies on the other, **inconclusive** when it includes 0 (with the seeds "
              "a test would need); a claim that two rows are similar is an equivalence test against a margin the "
              "study declares.  A comparison whose rows do not beat the best trivial baseline (grey input, mean "
              "colour; for labels -> photo the label map, the mean photo) on its metric is inconclusive, *below "
              "the trivial baseline at this scale*, whatever its interval.  Tests on the same runs count once; a "
              "claim whose independent tests disagree is *disagreeing*.  The image bootstrap is shown beside each "
              "interval, never used for a verdict.", ""]
    lines += ["## The claims, each once", "",
              "| claim | source | tests (study: verdict) | verdict | after Holm | stable over the last half |",
              "|---|---|---|---|---|---|"]
    for claim in claims:
        tests = "; ".join(f"{', '.join(t.studies)}: {_test_verdict(t)}" for t in claim.tests)
        outcome = claim.outcome(adjusted=False)
        if outcome == INCONCLUSIVE and claim.gated():
            outcome += " (below baseline)"
        elif outcome == NOT_TESTABLE and claim.reason_class():
            outcome += f" ({claim.reason_class()})"
        lines.append(f"| `{claim.id}`: {_cell(claim.label)} | {_cell(claim.citation)} | {_cell(tests)} | "
                     f"**{outcome}** | {claim.outcome(adjusted=True)} | {claim.stable()} |")
    machines = _machine_labels(rendered)
    lines += ["", "## The studies", "",
              "| study | reproduces | supported | contradicted | inconclusive | not testable | not counted | runs | "
              "run time (total) | wall time | machine |", "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for name, folder, summary, compute in rendered:
        counts = summary["claims"]
        runs = sum(row["runs_done"] for row in summary["rows"])
        planned = sum(row["runs_planned"] for row in summary["rows"])
        lines.append(f"| [{name}]({folder.name}/{MARKDOWN_FILE}) | {summary['title']} | {counts[SUPPORTED]} | "
                     f"{counts[CONTRADICTED]} | {counts[INCONCLUSIVE]} | {counts[NOT_TESTABLE]} | "
                     f"{counts['excluded']} | {runs} of {planned} | {_duration(compute, 'run_seconds_total')} | "
                     f"{_duration(compute, 'wall_seconds')} | {_machines(compute, machines)} |")
    lines += [""] + [f"M{number}: {label}.  " for label, number in machines.items()]
    if missing:
        lines += ["", "Not run at this profile yet: " + ", ".join(f"`{name}`" for name in missing) + "."]
    for name, folder, _, compute in rendered:
        text = (folder / MARKDOWN_FILE).read_text()
        lines += ["", "---", "", _demoted(text).rstrip("\n")]
        if compute:
            lines += ["", f"Compute: {compute['runs_done']} runs, {_duration(compute, 'run_seconds_total')} of run "
                      f"time ({_duration(compute, 'run_seconds_mean')} per run), {_duration(compute, 'wall_seconds')} "
                      f"wall, {compute['first_start']} to {compute['last_end']}, on "
                      f"{_machines(compute, machines)}; command: `{compute['command']}`."]
    return "\n".join(lines) + "\n"


def _outcomes(counts: dict, short: bool = False) -> str:
    gated = f" ({counts['gated']} of them below the trivial baseline)" if counts["gated"] and not short else ""
    classes = ", ".join(f"{kind} {n}" for kind, n in counts["classes"].items() if n)
    text = (f"{counts[SUPPORTED]} supported, {counts[CONTRADICTED]} contradicted, "
            f"{counts[INCONCLUSIVE]} inconclusive{gated}, {counts[DISAGREEING]} disagreeing between independent "
            f"tests, {counts[NOT_TESTABLE]} not testable here")
    return text + (f" ({classes})" if classes and not short else "")


def budget_scale(summaries: list[dict], profile: str) -> str:
    """The scale of the runs behind the verdicts, in words: resolution, generator width, updates and images seen
    per run, test images."""
    def spread(key: str) -> list[int]:
        return sorted({v for s in summaries for row in s["rows"] for v in row.get(key) or []})

    def span(values: list[int], what: str) -> str:
        return f"{values[0]:,} to {values[-1]:,} {what}" if len(values) > 1 else f"{values[0]:,} {what}"

    resolutions = sorted({s["resolution"] for s in summaries if s.get("resolution")})
    images = sorted({s["n_images"] for s in summaries if s.get("n_images")})
    parts = [f"at the `{profile}` profile"]
    if resolutions:
        parts.append(f"{' and '.join(resolutions)} images")
    if widths := spread("widths"):
        parts.append("generators of width " + span(widths, "(base channels)"))
    if updates := spread("updates"):
        parts.append(span(updates, "updates per run"))
    if seen := spread("images_seen"):
        parts.append(span(seen, "training images seen per run"))
    if images:
        parts.append(f"{' or '.join(f'{n:,}' for n in images)} test images")
    return ", ".join(parts)


def _test_verdict(test: Test) -> str:
    text = test.verdict
    if test.gated:
        text += " (below baseline)"
    if test.reason_class:
        text += f" ({test.reason_class})"
    if test.adjusted != test.verdict:
        text += f", {test.adjusted} after Holm"
    if test.excluded:
        text += f", not counted ({test.excluded.split(':')[0]})"
    return text


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


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _read_summary(path: Path) -> dict:
    """A study's reproduction.json, checked for the fields the overview reads (ConfigError naming what is wrong)."""
    data = _read_json(path)
    _check(path, data, _REQUIRED, "")
    for i, entry in enumerate(data["verdicts"]):
        _check(path, entry, _VERDICT_REQUIRED, f"verdicts[{i}].")
    if not isinstance(data.get("claims"), dict) or not all(isinstance(data["claims"].get(k), int) for k in
                                                          (SUPPORTED, CONTRADICTED, INCONCLUSIVE, NOT_TESTABLE,
                                                           "excluded")):
        raise ConfigError(f"{path}: claims: expected the counts of each verdict; render the study again with "
                          "`colorbench reproduce NAME --from-aggregate`")
    for i, row in enumerate(data["rows"]):
        _check(path, row, {"runs_done": int, "runs_planned": int}, f"rows[{i}].")
    return data


def _read_compute(path: Path) -> dict | None:
    if not path.is_file():
        return None
    data = _read_json(path)
    _check(path, data, {"runs_done": int, "first_start": str, "last_end": str, "command": str, "machines": dict}, "")
    return data


def _check(path: Path, data, required: dict[str, type], where: str) -> None:
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: {where or 'the file'}: expected a JSON object, got {type(data).__name__}")
    for key, kind in required.items():
        if not isinstance(data.get(key), kind) or (kind is int and isinstance(data.get(key), bool)):
            raise ConfigError(f"{path}: {where}{key}: expected {kind.__name__}, got {data.get(key)!r:.60}; render "
                              "the study again with `colorbench reproduce NAME --from-aggregate`")


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise ConfigError(f"{path}: not readable JSON ({err})") from None
