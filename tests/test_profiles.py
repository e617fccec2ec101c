"""Profiles of a study file: presets and the file's own blocks applied in order, paths made absolute, bad input named."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bench.config import ConfigError
from bench.sweep.ablation import load_ablation
from bench.sweep.profiles import ProfileError

PRESETS = {
    "cpu": {"base": {"data": {"image_size": 64, "root": "photos"}, "optim": {"epochs": 3}}, "seeds": [0, 1, 2],
            "slurm": {"cpus": 2}},
    "tiny": {"extends": "cpu", "base": {"optim": {"steps": 2}}, "seeds": [0]},
}
STUDY = {
    "name": "study",
    "base": {"data": {"dataset": "samples", "image_size": 256, "batch_size": 4}, "generator": {"depth": 8},
             "optim": {"epochs": 200}},
    "grid": {"discriminator.n_layers": [0, 3, 5]},
    "seeds": [0],
    "slurm": {"gpus": 1, "time": 60},
    "profiles": {"cpu": {"base": {"generator": {"depth": 6}}, "grid": {"discriminator.n_layers": [0, 3, 4]},
                         "seeds": [0, 1, 2, 3, 4]}},
    "reproduce": {"rows": [{"method": "286x286", "point": {"discriminator.n_layers": 5},
                            "at": {"cpu": {"discriminator.n_layers": 4}}}]},
}


def _write(folder: Path, study: dict = STUDY, presets: dict | None = PRESETS) -> Path:
    if presets is not None:
        (folder / "profiles.yaml").write_text(yaml.safe_dump(presets))
    path = folder / "study.yaml"
    path.write_text(yaml.safe_dump(study))
    return path


def test_full_profile_is_the_top_level(tmp_path):
    ablation = load_ablation(_write(tmp_path))
    assert ablation.name == "study"
    assert {run.config.data.image_size for run in ablation.runs} == {256}
    assert [run.config.discriminator.n_layers for run in ablation.runs] == [0, 3, 5]
    assert "profile" not in ablation.document and "profiles" not in ablation.document
    assert ablation.document["reproduce"]["rows"][0]["point"] == {"discriminator.n_layers": 5}


def test_profile_applies_preset_then_the_files_block(tmp_path):
    ablation = load_ablation(_write(tmp_path), profile="cpu")
    config = ablation.runs[0].config
    assert ablation.name == "study-cpu" and ablation.document["profile"] == "cpu"
    assert config.data.image_size == 64  # preset
    assert config.data.batch_size == 4  # the file's base, untouched by the preset
    assert config.generator.depth == 6  # the file's cpu block
    assert config.optim.epochs == 3
    assert ablation.seeds == (0, 1, 2, 3, 4)  # the file's block after the preset's [0, 1, 2]
    assert sorted({run.config.discriminator.n_layers for run in ablation.runs}) == [0, 3, 4]
    assert ablation.slurm.gpus == 1 and ablation.slurm.cpus == 2  # slurm blocks are merged
    # the row's point follows the profile's grid
    assert ablation.document["reproduce"]["rows"][0]["point"] == {"discriminator.n_layers": 4}


def test_extends_applies_the_parent_first(tmp_path):
    ablation = load_ablation(_write(tmp_path), profile="tiny")
    config = ablation.runs[0].config
    assert ablation.name == "study-tiny"
    assert (config.data.image_size, config.generator.depth, config.optim.steps) == (64, 6, 2)
    assert ablation.seeds == (0,)  # tiny's own seeds come last
    assert ablation.document["reproduce"]["rows"][0]["point"] == {"discriminator.n_layers": 4}  # via cpu


def test_a_row_without_an_analogue_at_a_profile_has_no_runs_there_and_says_why(tmp_path):
    study = {**STUDY, "reproduce": {"rows": [{"method": "286x286", "point": {"discriminator.n_layers": 5},
                                              "at": {"cpu": {"absent": "no field that size at 64 px"}}}]}}
    (row,) = load_ablation(_write(tmp_path, study), profile="cpu").document["reproduce"]["rows"]
    assert row == {"method": "286x286", "absent": "no field that size at 64 px"}
    (row,) = load_ablation(_write(tmp_path, study)).document["reproduce"]["rows"]
    assert row["point"] == {"discriminator.n_layers": 5} and "absent" not in row  # the full profile runs it


def test_a_profile_later_in_the_chain_brings_an_absent_row_back_at_its_own_point(tmp_path):
    """tiny extends cpu: the row cpu leaves out runs at tiny, at tiny's point merged into the full profile's."""
    study = {**STUDY, "grid": {"discriminator.n_layers": [3, 5]},
             "reproduce": {"rows": [{"method": "286x286", "point": {"discriminator.n_layers": 5},
                                     "at": {"cpu": {"absent": "no field that size at 64 px"},
                                            "tiny": {"discriminator.n_layers": 3}}}]}}
    (row,) = load_ablation(_write(tmp_path, study), profile="cpu").document["reproduce"]["rows"]
    assert row == {"method": "286x286", "absent": "no field that size at 64 px"}
    (row,) = load_ablation(_write(tmp_path, study), profile="tiny").document["reproduce"]["rows"]
    assert row == {"method": "286x286", "point": {"discriminator.n_layers": 3}}


def test_relative_paths_are_relative_to_the_file_that_names_them(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path.parent)
    study = {**STUDY, "base": {**STUDY["base"], "data": {**STUDY["base"]["data"], "cache_dir": "cache"}}}
    folder = tmp_path / "studies"
    folder.mkdir()
    ablation = load_ablation(_write(folder, study), profile="cpu")
    assert ablation.runs[0].config.data.root == str((folder / "photos").resolve())  # the preset's path
    assert ablation.runs[0].config.data.cache_dir == str((folder / "cache").resolve())


@pytest.mark.parametrize("profile, study, presets, message", [
    ("gpu", STUDY, PRESETS, "unknown profile 'gpu'; allowed: full, cpu, tiny"),
    ("cpu", {**STUDY, "profiles": {"cpu": {"grid": {"generator.ngf": [8]}}}}, PRESETS,
     "profiles.cpu.grid.generator.ngf: not an axis of the study's grid"),
    ("cpu", {**STUDY, "profiles": {"cpu": {"epochs": 3}}}, PRESETS, "unknown key 'epochs'"),
    ("tiny", STUDY, {"tiny": {"extends": "tiny"}}, "extends loops through tiny -> tiny"),
    ("tiny", STUDY, {"tiny": {"extends": "gpu"}}, "extends unknown profile 'gpu'"),
    ("cpu", {**STUDY, "profiles": {"cpu": {"base": {"optim": {"epochs": 0}}}}}, PRESETS, "optim.epochs: got 0"),
])
def test_bad_profiles_are_named(tmp_path, profile, study, presets, message):
    with pytest.raises(ConfigError) as caught:
        load_ablation(_write(tmp_path, study, presets), profile=profile)
    assert message in str(caught.value)
    assert str(tmp_path) in str(caught.value) or "profiles.yaml" in str(caught.value)


def test_profile_error_is_a_config_error(tmp_path):
    with pytest.raises(ProfileError):
        load_ablation(_write(tmp_path), profile="nope")
