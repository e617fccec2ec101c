"""Every study file in ablations/: listed, valid at every profile, and run end to end at the tiny profile.

The tiny profile trains 2 steps of width-8 networks on 8 tiles of the built-in samples photos
(facades studies: 8 pairs of ../shared/data/facades), then renders the reproduction table, so a
study file that cannot run fails here.  Its numbers mean nothing.  Arms with an ImageNet
ResNet-18 encoder get a randomly initialised ResNet-18 file through generator.pretrained_path:
this checks the plumbing only (those weights are not obtainable here).
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import torchvision
import yaml

from bench.cli import main
from bench.report.published import load_published
from bench.reproduce.command import render_from_aggregate, reproduce_command, study_files
from bench.reproduce.compute import COMPUTE_FILE
from bench.reproduce.output import JSON_FILE, MARKDOWN_FILE
from bench.reproduce.overview import HEADLINE_PROFILE, overview_file
from bench.reproduce.study import parse_study
from bench.sweep.ablation import load_ablation
from bench.sweep.profiles import read_presets
from bench.sweep.submit import SweepOptions

ABLATIONS = Path(__file__).resolve().parents[1] / "ablations"
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
STUDIES = study_files(ABLATIONS)
# What the reproduction suite promises: each pix2pix table, each source report, each named axis.
REQUIRED = ["pix2pix-table1-losses", "pix2pix-table2-generator", "pix2pix-table3-receptive-field",
            "pix2pix-table5-colourisation", "pix2pix-table1-facades", "seed000-coco-pix2pix",
            "seed001-unet-regression", "seed002-pix2pix-facades", "seed002-losses", "seed002-augmentation",
            "seed002-batch-size", "seed002-enhanced", "seed003-resnet-unet", "seed004-coco-pix2pix", "axis-loss",
            "axis-lambda", "axis-batch-size", "axis-augmentation", "axis-skip-connections", "axis-pretraining",
            "axis-colour-space", "budget-colourisation", "budget-facades"]


def _text(path: Path) -> str:
    return path.read_text()


def test_every_promised_study_exists_and_is_listed(capsys):
    assert sorted(path.stem for path in STUDIES) == sorted(REQUIRED)
    assert main(["reproduce", "--list"]) == 0
    listed = capsys.readouterr().out
    for name in REQUIRED:
        assert f"\n{name} " in listed


@pytest.mark.parametrize("path", STUDIES, ids=lambda p: p.stem)
def test_study_is_valid_and_documented_at_every_profile(path, capsys, tmp_path):
    text = _text(path)
    assert text.startswith("#"), f"{path.name}: must open with a comment citing its source"
    assert yaml.safe_load(text)["name"] == path.stem
    for profile in ("full", *read_presets(ABLATIONS)):
        ablation = load_ablation(path, profile=profile)
        study = parse_study(ablation, load_published())
        assert all(row.run_ids or row.point is None for row in study.rows)
        assert main(["sweep", str(path), "--dry-run", "--profile", profile, "--results", str(tmp_path)]) == 0
    assert len(load_ablation(path, profile="cpu").seeds) >= 3
    assert "runs" in capsys.readouterr().out


@pytest.mark.parametrize("path", STUDIES, ids=lambda p: p.stem)
def test_the_long_cpu_profile_trains_on_every_training_image_and_records_a_learning_curve(path):
    """cpu_long is the cpu profile with all the split's training photos (facades: all 400 pairs) and >= 6
    evaluations per run, so that every study's report at that profile has learning curves."""
    short, long = load_ablation(path, profile="cpu"), load_ablation(path, profile="cpu_long")
    assert len(long.runs) >= len(short.runs)  # it may add an arm (axis-batch-size), never drop one
    n_train_is_an_axis = any("data.n_train" in axis.keys for axis in long.axes)  # budget-colourisation's
    for run in long.runs:
        assert run.config.data.n_train is None or n_train_is_an_axis
        assert run.config.eval.curve_points >= 6


@pytest.mark.parametrize("path", STUDIES, ids=lambda p: p.stem)
def test_the_study_file_states_the_measured_time_of_each_committed_report(path):
    """The header's times are the committed compute records' (runs finished, wall time), not estimates."""
    reports = ABLATIONS.parent / "reports"
    header = [line for line in _text(path).split("\n") if line.startswith("#")]
    for profile in read_presets(ABLATIONS):
        record = reports / f"{path.stem}-{profile}" / COMPUTE_FILE
        if record.is_file():
            compute = json.loads(record.read_text())
            line = (f"#   {profile}: {compute['runs_done']} runs, {compute['wall_seconds'] / 60:.1f} min wall "
                    f"(reports/{path.stem}-{profile}/{COMPUTE_FILE})")
            assert line in header, line


@pytest.fixture(scope="module")
def random_resnet18(tmp_path_factory) -> Path:
    """A ResNet-18 state dict with torchvision's random initialisation: plumbing for the ImageNet-encoder arms."""
    path = tmp_path_factory.mktemp("weights") / "resnet18-random.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), path)
    return path


@pytest.mark.parametrize("path", STUDIES, ids=lambda p: p.stem)
def test_study_runs_at_tiny_scale_and_renders(path, tmp_path, random_resnet18):
    ablation = load_ablation(path, profile="tiny")
    configs = [run.config for run in ablation.runs]
    if any(c.data.dataset == "facades" for c in configs) and not (SHARED_DATA / "facades").is_dir():
        pytest.skip(f"{SHARED_DATA / 'facades'} is absent: the facades studies train on it")
    overrides = ([f"generator.pretrained_path={random_resnet18}"]
                 if any(c.generator.pretrained_encoder for c in configs) else [])
    results, out = tmp_path / "results", tmp_path / "reports"
    code = reproduce_command(str(path), SweepOptions("debug", results=results, overrides=overrides, profile="tiny"), out,
                             n_resamples=200)
    assert code == 0
    text = (out / ablation.name / MARKDOWN_FILE).read_text()
    study = parse_study(ablation, load_published())
    for row in study.rows:
        assert f"| {row.method} |" in text
        if row.run_ids:
            assert f"| {len(row.run_ids)} of {len(row.run_ids)} |" in text
    for claim in study.claims:
        assert f"| [{claim.text}](#{claim.id}) |" in text and f"> {claim.quote.text}" in text
    assert f"[{MARKDOWN_FILE}]({MARKDOWN_FILE})" in (out / ablation.name / "table.md").read_text()


def _committed_profiles() -> list[str]:
    """The profiles whose study reports are committed in reports/ (each with its overview)."""
    reports = ABLATIONS.parent / "reports"
    return [name for name in read_presets(ABLATIONS)
            if any((reports / f"{study.stem}-{name}" / JSON_FILE).is_file() for study in STUDIES)]


def test_the_headline_profile_has_every_study_committed():
    reports = ABLATIONS.parent / "reports"
    for study in STUDIES:
        assert (reports / f"{study.stem}-{HEADLINE_PROFILE}" / MARKDOWN_FILE).is_file(), study.stem
        assert (reports / f"{study.stem}-{HEADLINE_PROFILE}" / COMPUTE_FILE).is_file(), study.stem


@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason=f"{SHARED_DATA} is absent: the studies' run ids cover its photos")
@pytest.mark.parametrize("profile", _committed_profiles())
def test_every_committed_reproduction_rederives_from_its_aggregate_and_study_file(profile, tmp_path, capsys):
    """Not circular: the verdicts, numbers and learning-curve findings come again from the runs' raw records
    (aggregate.parquet, curves.parquet) and the study files, and the overview from those; any that differs fails."""
    reports = ABLATIONS.parent / "reports"
    out = tmp_path / "reports"
    for study in STUDIES:
        committed = reports / f"{study.stem}-{profile}"
        if not (committed / JSON_FILE).is_file():
            continue
        (out / committed.name).mkdir(parents=True)
        for name in ("aggregate.parquet", "curves.parquet", COMPUTE_FILE, "table.md"):
            if (committed / name).is_file():
                shutil.copy(committed / name, out / committed.name / name)
        render_from_aggregate(study.stem, profile, out)
        for name in (JSON_FILE, MARKDOWN_FILE, "table.md"):
            assert (out / committed.name / name).read_bytes() == (committed / name).read_bytes(), (study.stem, name)
    assert main(["reproduce", "--overview", "--profile", profile, "--out", str(out)]) == 0
    capsys.readouterr()
    overview = overview_file(profile)
    assert (out / overview).read_bytes() == (reports / overview).read_bytes()
    if profile == HEADLINE_PROFILE:
        headline = (reports / overview).read_text().split("**Headline, ", 1)[1].split(".**", 1)[0]
        assert headline in " ".join((ABLATIONS.parent / "README.md").read_text().split())  # the README carries it


def test_the_overview_counts_every_rendered_claim_and_regenerates_from_committed_files_alone(tmp_path, capsys):
    path = ABLATIONS / "pix2pix-table5-colourisation.yaml"
    results, out = tmp_path / "results", tmp_path / "reports"
    assert reproduce_command(str(path), SweepOptions("debug", results=results, profile="tiny"), out, n_resamples=200) == 0
    folder = out / "pix2pix-table5-colourisation-tiny"
    compute = json.loads((folder / "compute.json").read_text())
    assert compute["runs_done"] == len(list(results.glob("*/*/DONE"))) == 2  # two rows, one seed at tiny
    assert compute["command"].startswith("colorbench reproduce pix2pix-table5-colourisation --profile tiny")
    files = {p.name for p in folder.iterdir()}
    assert {"aggregate.parquet", "reproduction.json", "reproduction.md"} <= files and "aggregate.csv" not in files
    shutil.rmtree(results)  # the overview reads the reports folder only
    capsys.readouterr()
    assert main(["reproduce", "--overview", "--profile", "tiny", "--out", str(out)]) == 0
    overview = out / overview_file("tiny")
    assert capsys.readouterr().out.strip() == str(overview)
    text = overview.read_text()
    summary = json.loads((folder / "reproduction.json").read_text())
    counted = [v for v in summary["verdicts"] if not v["excluded"]]
    supported = sum(v["verdict"] == "supported" for v in counted)
    assert f"of {len({v['id'] for v in counted})} independent published claims, {supported} supported" in text
    assert f"1 of {len(STUDIES)} studies" in text and "Not run at this profile yet: `axis-augmentation`" in text
    assert "\n## Reproduction: pix2pix Table 5" in text  # the study's section, one level down
    first = overview.read_bytes()
    assert main(["reproduce", "--overview", "--profile", "tiny", "--out", str(out)]) == 0
    assert overview.read_bytes() == first
