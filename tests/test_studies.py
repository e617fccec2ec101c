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
from bench.reproduce.command import reproduce_command, study_files
from bench.reproduce.compute import COMPUTE_FILE
from bench.reproduce.output import MARKDOWN_FILE
from bench.reproduce.overview import OVERVIEW_FILE
from bench.reproduce.study import parse_study
from bench.sweep.ablation import load_ablation
from bench.sweep.submit import SweepOptions

ABLATIONS = Path(__file__).resolve().parents[1] / "ablations"
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
STUDIES = study_files(ABLATIONS)
# What the reproduction suite promises: each pix2pix table, each seed system, each named axis.
REQUIRED = ["pix2pix-table1-losses", "pix2pix-table2-generator", "pix2pix-table3-receptive-field",
            "pix2pix-table5-colourisation", "pix2pix-table1-facades", "seed000-coco-pix2pix",
            "seed001-unet-regression", "seed002-pix2pix-facades", "seed002-losses", "seed002-augmentation",
            "seed002-batch-size", "seed002-enhanced", "seed003-resnet-unet", "seed004-coco-pix2pix", "axis-loss",
            "axis-lambda", "axis-batch-size", "axis-augmentation", "axis-skip-connections", "axis-pretraining",
            "axis-colour-space"]


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
    for profile in ("full", "cpu", "tiny"):
        ablation = load_ablation(path, profile=profile)
        study = parse_study(ablation, load_published())
        assert all(row.run_ids or row.point is None for row in study.rows)
        assert main(["sweep", str(path), "--dry-run", "--profile", profile, "--results", str(tmp_path)]) == 0
    assert len(load_ablation(path, profile="cpu").seeds) >= 3
    assert "runs" in capsys.readouterr().out


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
        assert f"| {claim.text} |" in text
    assert f"## Reproduction: {study.title}" in (out / ablation.name / "table.md").read_text()


def test_the_committed_reproduction_regenerates_byte_for_byte_from_the_committed_study_folders(tmp_path, capsys):
    reports = ABLATIONS.parent / "reports"
    for study in STUDIES:  # every study has its cpu-scale report committed
        assert (reports / f"{study.stem}-cpu" / MARKDOWN_FILE).is_file(), study.stem
        assert (reports / f"{study.stem}-cpu" / COMPUTE_FILE).is_file(), study.stem
    out = tmp_path / "reports"
    shutil.copytree(reports, out, ignore=shutil.ignore_patterns(OVERVIEW_FILE))
    assert main(["reproduce", "--overview", "--profile", "cpu", "--out", str(out)]) == 0
    capsys.readouterr()
    assert (out / OVERVIEW_FILE).read_bytes() == (reports / OVERVIEW_FILE).read_bytes()
    committed = (reports / OVERVIEW_FILE).read_text()
    headline = committed.split("**Headline: ", 1)[1].split(" testable published claims", 1)[0]  # "22 of 55"
    readme = (ABLATIONS.parent / "README.md").read_text()
    assert f"Headline: **{headline} testable published claims hold at this scale**" in readme


def test_the_overview_counts_every_rendered_claim_and_regenerates_from_committed_files_alone(tmp_path, capsys):
    path = ABLATIONS / "pix2pix-table5-colourisation.yaml"
    results, out = tmp_path / "results", tmp_path / "reports"
    assert reproduce_command(str(path), SweepOptions("debug", results=results, profile="tiny"), out, n_resamples=200) == 0
    folder = out / "pix2pix-table5-colourisation-tiny"
    compute = json.loads((folder / "compute.json").read_text())
    assert compute["runs_done"] == len(list(results.glob("*/*/DONE"))) == 2  # two rows, one seed at tiny
    assert compute["command"].startswith("colorbench reproduce pix2pix-table5-colourisation --profile tiny")
    assert {"aggregate.parquet", "aggregate.csv", "reproduction.json", "reproduction.md"} <= {
        p.name for p in folder.iterdir()}
    shutil.rmtree(results)  # the overview reads the reports folder only
    capsys.readouterr()
    assert main(["reproduce", "--overview", "--profile", "tiny", "--out", str(out)]) == 0
    overview = out / "REPRODUCTION.md"
    assert capsys.readouterr().out.strip() == str(overview)
    text = overview.read_text()
    claims = json.loads((folder / "reproduction.json").read_text())["claims"]
    testable = claims["holds"] + claims["does not hold"]
    assert f"**Headline: {claims['holds']} of {testable} testable published claims hold at this scale**" in text
    assert f"over 1 of {len(STUDIES)} studies" in text and "Not run at this profile yet: `axis-augmentation`" in text
    assert "\n## Reproduction: pix2pix Table 5" in text  # the study's section, one level down
    first = overview.read_bytes()
    assert main(["reproduce", "--overview", "--profile", "tiny", "--out", str(out)]) == 0
    assert overview.read_bytes() == first
