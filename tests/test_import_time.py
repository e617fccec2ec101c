"""Fast start: the config, the sweep's job module and ``colorbench --help`` load no heavy library.

Every submitted job imports ``bench.sweep.job`` (and ``bench.config``) and every command
line call ``bench.cli``; torch, torchmetrics and pytorch-fid alone took 10 s there.  Each
check runs in a fresh interpreter, since this test session has imported everything already.
How long the imports take is measured by ``benchmarks/import_time.py``, not asserted here.
"""
from __future__ import annotations

import importlib
import json
import pickle
import subprocess
import sys
import typing

import pytest

HEAVY = ("torch", "torchvision", "torchmetrics", "pytorch_fid", "seaborn", "pandas", "scipy", "matplotlib", "lpips",
         "skimage")


def loaded_after(code: str, stdin: bytes | None = None) -> set[str]:
    """Top-level names of the packages that ``code`` leaves in ``sys.modules`` of a fresh interpreter."""
    report = "\nimport json as _json, sys as _sys\nprint(_json.dumps(sorted(_sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code + report], input=stdin, capture_output=True, check=True)
    return {name.split(".")[0] for name in json.loads(out.stdout.decode().splitlines()[-1])}


def heavy(modules: set[str]) -> list[str]:
    return [name for name in HEAVY if name in modules]


@pytest.mark.parametrize("module", ["bench.config", "bench.sweep.job", "bench.cli", "bench.sweep", "bench.config.names",
                                    "bench.config.colour_spaces", "bench.config.patch_geometry"])
def test_module_imports_no_heavy_library(module):
    assert heavy(loaded_after(f"import {module}")) == []


def test_loading_and_validating_a_config_imports_no_heavy_library():
    code = ("from bench.config import RunConfig, load_config\nfrom bench.run.identity import config_hash\n"
            "config = load_config(None, ['eval.metrics=psnr_rgb8,fid_inception_pt', 'discriminator.n_layers=5'])\n"
            "assert config.out_channels == 2 and config.eval.metrics == ('psnr_rgb8', 'fid_inception_pt')\n"
            "config_hash(config)")
    assert heavy(loaded_after(code)) == []


def test_planning_a_sweep_over_photos_fingerprints_them_without_a_heavy_library(tmp_path):
    """``--dry-run`` and ``status`` name each run by its data id, which reads file bytes and nothing else."""
    from PIL import Image
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(4):
        Image.new("RGB", (40, 40), (60 * i, 90, 200 - 40 * i)).save(photos / f"img{i}.png")
    ablation = tmp_path / "photos.yaml"
    ablation.write_text(f"name: photos\nbase:\n  data: {{dataset: folder, root: {photos}, image_size: 32, "
                        f"cache_dir: {tmp_path / 'cache'}}}\n  generator: {{depth: 5}}\n"
                        "grid:\n  loss.lambda_rec: [10, 100]\n")
    code = ("import contextlib, io\n"
            "from bench.cli import main\n"
            "from bench.run.identity import UNKNOWN_DATA_ID\n"
            "from bench.sweep.ablation import load_ablation\n"
            f"runs = load_ablation({str(ablation)!r}).runs\n"
            "assert len(runs) == 2 and all(UNKNOWN_DATA_ID not in run.run_id for run in runs)\n"
            "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
            f"    assert main(['sweep', {str(ablation)!r}, '--dry-run', '--results', {str(tmp_path / 'r')!r}]) == 0\n"
            "assert runs[0].run_id in out.getvalue()")
    assert heavy(loaded_after(code)) == []


def test_help_of_every_command_imports_no_heavy_library():
    code = ("import contextlib, io\n"
            "from bench.cli import build_parser\n"
            "for argv in (['--help'], *([name, '--help'] for name in build_parser()._subparsers._group_actions[0]"
            ".choices)):\n"
            "    with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.suppress(SystemExit):\n"
            "        build_parser().parse_args(argv)\n"
            "    assert 'usage: colorbench' in out.getvalue(), argv")
    assert heavy(loaded_after(code)) == []


def test_python_m_bench_help_does_not_import_torch():
    """The real entry point: ``-X importtime`` lists every module the process imported."""
    run = subprocess.run([sys.executable, "-X", "importtime", "-m", "bench", "--help"], capture_output=True, text=True)
    assert run.returncode == 0 and run.stdout.startswith("usage: colorbench")
    imported = {line.split("|")[-1].strip().split(".")[0] for line in run.stderr.splitlines()
                if line.startswith("import time:") and "|" in line}
    assert "bench" in imported and heavy(imported) == []


def test_the_pickled_job_loads_without_torch_and_imports_the_trainer_when_called():
    from bench.sweep.job import TrainJob
    code = ("import pickle, sys\n"
            "job = pickle.loads(sys.stdin.buffer.read())\n"
            "assert type(job).__module__ == 'bench.sweep.job'")
    assert heavy(loaded_after(code, stdin=pickle.dumps(TrainJob()))) == []


def test_light_names_are_the_heavy_modules_own():
    """One definition each: the heavy modules re-export (or, for the metrics, order by) the light ones."""
    from bench.config import DataConfig, RunConfig, colour_spaces, names, patch_geometry
    from bench.data import colour
    from bench.evaluation.metrics import METRICS
    from bench.models import patchgan
    assert tuple(METRICS) == names.METRIC_NAMES == RunConfig().eval.metrics
    assert colour.AB_COLOUR_SPACES is colour_spaces.AB_COLOUR_SPACES
    assert colour.LAB_SCALINGS is colour_spaces.LAB_SCALINGS
    assert patchgan.min_patch_image_size is patch_geometry.min_patch_image_size
    assert importlib.import_module("bench.data.augmentation").AUGMENTATIONS is names.AUGMENTATIONS
    assert importlib.import_module("bench.data.datasets").BENCHMARK_DATASETS is names.BENCHMARK_DATASETS
    hints = typing.get_type_hints(DataConfig)
    assert typing.get_args(hints["augmentation"]) == names.AUGMENTATIONS
    assert set(names.BENCHMARK_DATASETS) < set(typing.get_args(hints["dataset"]))
    assert set(colour_spaces.COLOUR_SPACES) == set(typing.get_args(typing.get_type_hints(RunConfig)["colour_space"]))
