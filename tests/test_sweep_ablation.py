"""Ablation files: validation of every key, grid expansion, run ids."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bench.config import load_config
from bench.data.fingerprint import data_id
from bench.run.identity import config_hash, run_id
from bench.sweep.ablation import AblationError, SlurmSettings, load_ablation, parse_ablation

REPO = Path(__file__).resolve().parents[1]

BASE = {"data": {"image_size": 32, "batch_size": 4}, "generator": {"depth": 5, "ngf": 8},
        "discriminator": {"ndf": 8, "n_layers": 1}, "optim": {"epochs": 1}}
ADVERSARIAL_ZIP = {"zip": {"loss.adversarial": ["bce", "lsgan", "none"],
                           "discriminator.arch": ["patchgan", "patchgan", "none"]}}


def ablation(**changes):
    data = {"name": "t", "base": BASE, "grid": {"generator.skip_connections": [True, False],
                                                "adversarial": ADVERSARIAL_ZIP}, "seeds": [0, 1, 2]}
    data.update(changes)
    return parse_ablation({k: v for k, v in data.items() if v is not None}, "abl.yaml")


def test_grid_is_the_product_of_axes_with_zip_groups_varying_together_times_seeds():
    runs = ablation().runs
    assert len(runs) == 2 * 3 * 3
    keys = ("generator.skip_connections", "loss.adversarial", "discriminator.arch")
    points = [(*(r.point[key] for key in keys), r.seed) for r in runs]
    assert points == [(skip, adv, arch, seed) for skip in (True, False)
                      for adv, arch in (("bce", "patchgan"), ("lsgan", "patchgan"), ("none", "none"))
                      for seed in (0, 1, 2)]
    for run in runs:
        assert run.config.generator.skip_connections == run.point["generator.skip_connections"]
        assert run.config.loss.adversarial == run.point["loss.adversarial"]
        assert run.config.discriminator.arch == run.point["discriminator.arch"]
        assert run.config.data.image_size == 32 and run.config.seed == run.seed
    assert len({r.run_id for r in runs}) == 18 and len({config_hash(r.config) for r in runs}) == 6


def test_run_id_is_the_trainers_id_of_the_same_config():
    """The same point given to `colorbench train` with --set gets the id the sweep uses."""
    run = ablation().runs[4]  # skip true, lsgan, seed 1
    config = load_config(None, ["data.image_size=32", "data.batch_size=4", "generator.depth=5", "generator.ngf=8",
                                "discriminator.ndf=8", "discriminator.n_layers=1", "optim.epochs=1",
                                "loss.adversarial=lsgan", "seed=1"])
    assert run.run_id == run_id(config, data_id(config)) == f"{config_hash(config)}-{data_id(config)}-s1"
    assert run.config == config


def test_baseline_defaults_to_the_first_value_of_every_axis():
    a = ablation()
    assert a.baseline == {"generator.skip_connections": True, "loss.adversarial": "bce",
                          "discriminator.arch": "patchgan"}
    assert [r.seed for r in a.runs if r.is_baseline] == [0, 1, 2]
    assert all(r.point == a.baseline for r in a.runs if r.is_baseline)


def test_baseline_names_a_grid_point_a_zip_group_by_any_of_its_keys():
    a = ablation(baseline={"generator.skip_connections": False, "loss.adversarial": "lsgan"})
    assert a.baseline == {"generator.skip_connections": False, "loss.adversarial": "lsgan",
                          "discriminator.arch": "patchgan"}
    assert {r.point["loss.adversarial"] for r in a.runs if r.is_baseline} == {"lsgan"}
    assert sum(r.is_baseline for r in a.runs) == 3


def test_differing_keys_are_relative_to_base_and_name_the_directory():
    runs = {(r.point["generator.skip_connections"], r.point["loss.adversarial"], r.seed): r for r in ablation().runs}
    base_run = runs[True, "bce", 0]
    assert base_run.differing == {} and base_run.dir_name == f"{base_run.run_id}-base"
    run = runs[False, "none", 2]
    assert run.differing == {"generator.skip_connections": False, "discriminator.arch": "none",
                             "loss.adversarial": "none"}
    assert run.dir_name == f"{run.run_id}-skip_connections=false,arch=none,adversarial=none"
    # a grid value equal to the base's value is not a difference
    a = ablation(base={**BASE, "loss": {"adversarial": "lsgan"}})
    lsgan = next(r for r in a.runs if r.point["loss.adversarial"] == "lsgan" and r.point["generator.skip_connections"])
    assert lsgan.differing == {}


def test_roles_default_to_scientific():
    a = ablation(roles={"adversarial": "nuisance"})
    assert {axis.name: axis.role for axis in a.axes} == {"generator.skip_connections": "scientific",
                                                         "adversarial": "nuisance"}


def test_set_overrides_change_the_base_and_the_run_ids():
    plain = ablation()
    data = {"name": "t", "base": BASE, "grid": {"generator.skip_connections": [True, False]}}
    changed = parse_ablation(data, "abl.yaml", ["optim.epochs=3"])
    assert changed.base["optim"]["epochs"] == 3 and changed.document["base"]["optim"]["epochs"] == 3
    assert {r.config.optim.epochs for r in changed.runs} == {3}
    assert not {r.run_id for r in changed.runs} & {r.run_id for r in plain.runs}


def test_slurm_block():
    a = ablation(slurm={"partition": "gpu", "time": "1-02:03:00", "gpus": 1, "cpus": 8, "mem": "500M",
                        "constraint": "a100", "account": "lab", "qos": "high", "array_parallelism": 4,
                        "max_num_timeout": 5, "signal_delay_s": 120, "extra": {"mail-type": "END"}})
    assert a.slurm == SlurmSettings(partition="gpu", time_min=24 * 60 + 2 * 60 + 3, gpus=1, cpus=8, mem_gb=500 / 1024,
                                    constraint="a100", account="lab", qos="high", array_parallelism=4,
                                    max_num_timeout=5, signal_delay_s=120, extra={"mail-type": "END"})
    assert ablation().slurm == SlurmSettings()


@pytest.mark.parametrize("time, minutes", [(90, 90), ("90", 90), ("30:30", 31), ("4:00:00", 240), ("2-0", 2880),
                                           ("1-1:30", 1530)])
def test_slurm_time_formats(time, minutes):
    assert ablation(slurm={"time": time}).slurm.time_min == minutes


@pytest.mark.parametrize("mem, gb", [("16G", 16.0), ("16GB", 16.0), ("2048M", 2.0), ("1T", 1024.0), (4, 4.0),
                                     (0.5, 0.5)])
def test_slurm_mem_formats(mem, gb):
    assert ablation(slurm={"mem": mem}).slurm.mem_gb == gb


GRID = {"generator.skip_connections": [True, False]}


@pytest.mark.parametrize("changes, message", [
    ({"grids": GRID}, "abl.yaml: unknown key 'grids'; allowed keys: name, description"),
    ({"name": "a b"}, "abl.yaml: name: got 'a b'"),
    ({"name": None}, "abl.yaml: name: got None"),
    ({"grid": {}}, "abl.yaml: grid: empty"),
    ({"grid": None}, "abl.yaml: grid: empty"),
    ({"grid": [1, 2]}, "abl.yaml: grid: got [1, 2]"),
    ({"grid": {"generator.skip_connections": []}}, "grid.generator.skip_connections: empty list of values"),
    ({"grid": {"generator.skip": [True]}}, "grid.generator.skip: unknown config key 'generator.skip'"),
    ({"grid": {"generator": [True]}}, "grid.generator: unknown config key 'generator'"),
    ({"grid": {"seed": [0, 1]}}, "grid.seed: seeds are given by the top-level list"),
    ({"grid": {"generator.skip_connections": True}}, "grid.generator.skip_connections: got True; allowed: a list"),
    ({"grid": {"g": {"loss.adversarial": ["bce"]}}}, "grid.g: got {'loss.adversarial': ['bce']}; allowed: a list of "
                                                     "values, or a zip group"),
    ({"grid": {"g": {"zip": {"loss.adversarial": ["bce", "none"], "discriminator.arch": ["patchgan"]}}}},
     "grid.g.zip: lists of different lengths (loss.adversarial: 2, discriminator.arch: 1)"),
    ({"grid": {"g": {"zip": {"loss.adversarial": "bce"}}}}, "grid.g.zip.loss.adversarial: got 'bce'; allowed: a list"),
    ({"grid": {"g": {"zip": {"loss.adv": ["bce"]}}}}, "grid.g.zip.loss.adv: unknown config key 'loss.adv'"),
    ({"grid": {"loss.adversarial": {"zip": {"loss.lambda_adv": [1.0]}}}},
     "grid.loss.adversarial: a zip group needs a name of its own"),
    ({"grid": {"loss.adversarial": ["bce"], "g": {"zip": {"loss.adversarial": ["lsgan"]}}}},
     "grid.g: loss.adversarial is already varied by grid.loss.adversarial"),
    ({"grid": {"generator.norm": ["batch", "layer"]}},
     "abl.yaml: grid point {generator.norm: layer}: generator.norm: got 'layer'; allowed: batch, instance"),
    ({"grid": {"loss.adversarial": ["bce", "none"]}},
     "grid point {loss.adversarial: none}: discriminator.arch / loss.adversarial: set both to none, or neither"),
    ({"grid": {"generator.ngf": [8, 8]}}, "grid points {generator.ngf: 8} and {generator.ngf: 8} are the same run"),
    ({"grid": {"log_every": [10, 20]}}, "grid points {log_every: 10} and {log_every: 20} are the same run"),
    ({"base": {"optim": {"lr": -1}}, "grid": GRID}, "abl.yaml: base: optim.lr: got -1"),
    ({"base": {"optimiser": {}}, "grid": GRID}, "abl.yaml: base: unknown config key optimiser"),
    ({"base": {"seed": 3}, "grid": GRID}, "abl.yaml: base.seed: seeds are given by the top-level list"),
    ({"base": [1], "grid": GRID}, "abl.yaml: base: got [1]"),
    ({"seeds": []}, "abl.yaml: seeds: got []; allowed: a non-empty list of integers"),
    ({"seeds": 3}, "abl.yaml: seeds: got 3"),
    ({"seeds": [0, True]}, "abl.yaml: seeds: got [0, True]"),
    ({"seeds": [1, 2, 1]}, "abl.yaml: seeds: 1 appears more than once"),
    ({"baseline": {"generator.ngf": 8}}, "baseline.generator.ngf: not a key of the grid"),
    ({"baseline": {"generator.skip_connections": "yes"}},
     "baseline.generator.skip_connections: got 'yes'; not a grid point of axis generator.skip_connections"),
    ({"baseline": {"generator.skip_connections": True, "discriminator.arch": "patchgan"}},
     "baseline: {'discriminator.arch': 'patchgan'} matches 2 positions of zip group adversarial"),
    ({"baseline": {"loss.adversarial": "none"}},
     "baseline: no value for grid axis generator.skip_connections; give generator.skip_connections: one of"),
    ({"baseline": {"generator.skip_connections": True, "loss.adversarial": "bce", "discriminator.arch": "none"}},
     "baseline.loss.adversarial: got 'bce'; not a grid point of axis adversarial"),
    ({"baseline": [1]}, "abl.yaml: baseline: got [1]"),
    ({"roles": {"loss.adversarial": "scientific"}}, "roles.loss.adversarial: not a grid axis; the axes are "
                                                    "generator.skip_connections, adversarial"),
    ({"roles": {"adversarial": "tuned"}}, "roles.adversarial: got 'tuned'; allowed: scientific, nuisance, fixed"),
    ({"slurm": {"gpu": 1}}, "abl.yaml: slurm: unknown key 'gpu'; allowed keys: partition, time"),
    ({"slurm": {"time": "soon"}}, "slurm.time: got 'soon'; allowed: minutes, or an sbatch time"),
    ({"slurm": {"time": 0}}, "slurm.time: got 0"),
    ({"slurm": {"mem": "16"}}, "slurm.mem: got '16'; allowed: a size such as 16G"),
    ({"slurm": {"cpus": 0}}, "slurm.cpus: got 0; allowed: an integer >= 1"),
    ({"slurm": {"partition": 3}}, "slurm.partition: got 3; allowed: a non-empty string"),
    ({"slurm": {"extra": ["--x"]}}, "slurm.extra: got ['--x']"),
    ({"slurm": "gpu"}, "abl.yaml: slurm: got 'gpu'"),
])
def test_bad_ablation_names_file_key_and_value(changes, message):
    with pytest.raises(AblationError) as error:
        ablation(**changes)
    assert message in str(error.value)


def test_set_of_a_grid_key_is_refused():
    with pytest.raises(AblationError, match=r"--set loss.adversarial=lsgan: loss.adversarial is a grid axis"):
        parse_ablation({"name": "t", "base": BASE, "grid": {"adversarial": ADVERSARIAL_ZIP}}, "abl.yaml",
                       ["loss.adversarial=lsgan"])


def test_unreadable_files(tmp_path):
    with pytest.raises(AblationError, match="missing.yaml: cannot read ablation file"):
        load_ablation(tmp_path / "missing.yaml")
    (tmp_path / "bad.yaml").write_text("name: [unclosed\n")
    with pytest.raises(AblationError, match=r"bad\.yaml:2:1: expected ',' or '\]', but got '<stream end>'"):
        load_ablation(tmp_path / "bad.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n")
    with pytest.raises(AblationError, match="list.yaml: expected a mapping"):
        load_ablation(tmp_path / "list.yaml")


def test_the_smoke_ablation_is_a_two_by_two_grid_times_two_seeds_on_samples():
    a = load_ablation(REPO / "ablations" / "smoke.yaml")
    assert len(a.runs) == 8 and a.seeds == (0, 1) and [len(axis.values) for axis in a.axes] == [2, 2]
    assert {r.config.data.dataset for r in a.runs} == {"samples"}
    assert all(32 <= r.config.data.image_size <= 64 for r in a.runs)


_IDS_SCRIPT = """
import json, sys
from bench.sweep.ablation import load_ablation
runs = load_ablation(sys.argv[1]).runs
print(json.dumps(sorted([r.run_id, sorted(r.point.items())] for r in runs)))
"""


def test_run_ids_are_stable_across_processes_and_key_order(tmp_path):
    forward = {"name": "t", "base": BASE, "grid": {"generator.skip_connections": [True, False],
                                                   "adversarial": ADVERSARIAL_ZIP}, "seeds": [0, 1]}
    backward = {"seeds": [0, 1],
                "grid": {"adversarial": {"zip": dict(reversed(ADVERSARIAL_ZIP["zip"].items()))},
                         "generator.skip_connections": [True, False]},
                "base": {section: dict(reversed(values.items())) for section, values in reversed(BASE.items())},
                "name": "t"}
    outputs = []
    for data, hash_seed in ((forward, "0"), (backward, "12345")):
        path = tmp_path / f"{hash_seed}.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        result = subprocess.run([sys.executable, "-c", _IDS_SCRIPT, str(path)], capture_output=True, text=True,
                                env={**os.environ, "PYTHONHASHSEED": hash_seed}, timeout=120, check=True)
        outputs.append(json.loads(result.stdout))
    assert outputs[0] == outputs[1]
    in_process = sorted([r.run_id, [list(p) for p in sorted(r.point.items())]] for r in
                        load_ablation(tmp_path / "0.yaml").runs)
    assert outputs[0] == in_process and len(in_process) == 12
