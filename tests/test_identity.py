"""Run identity covers the data: the photos' bytes and crops and the weights file, never where they lie."""
import hashlib
import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import colourful_image
from PIL import Image

from bench.cli import main
from bench.config import ConfigError, load_config
from bench.data.fingerprint import DataUnavailable, data_fingerprint, data_id
from bench.data.sources import open_source
from bench.run.identity import DATA_ID_HEX, UNKNOWN_DATA_ID, config_hash, config_id, run_id, same_run
from bench.sweep.ablation import AblationError, load_ablation
from bench.sweep.results import AblationResults
from bench.training.train import train

TINY = ["data.image_size=32", "data.test_fraction=0.25", "data.batch_size=4", "generator.depth=5",
        "generator.ngf=8", "discriminator.ndf=8", "discriminator.n_layers=1", "optim.steps=1",
        "optim.schedule=constant", "eval.n_sample_images=0", "device=cpu"]


def folder_config(root, *overrides):
    return load_config(None, ["data.dataset=folder", f"data.root={root}", *TINY, *overrides])


@pytest.fixture
def photos(tmp_path, image_folder):
    """A private copy of the 20 synthetic photos (tests change them)."""
    return shutil.copytree(image_folder, tmp_path / "photos")


def repaint(path, seed=1):
    """Replace the photo at ``path`` by another colourful image of the same size."""
    Image.fromarray(colourful_image(np.random.default_rng(seed), 48)).save(path)


def test_the_fingerprint_is_each_candidates_split_file_sha256_and_crop_in_order(photos):
    config = folder_config(photos)
    source = open_source(config.data)
    expected = [[split, hashlib.sha256(item.path.read_bytes()).hexdigest(), None, None]
                for split, items in (("train", source.train), ("test", source.test)) for item in items]
    fingerprint = data_fingerprint(config)
    assert fingerprint == {"images": expected, "weights": None}
    assert len(expected) == 20
    canonical = json.dumps({"images": expected, "weights": None}, sort_keys=True).encode()
    assert data_id(config) == hashlib.sha256(canonical).hexdigest()[:DATA_ID_HEX]


def test_the_samples_fingerprint_holds_the_tiles_crop_boxes():
    config = load_config(None, [])
    source = open_source(config.data)
    boxes = [image[2] for image in data_fingerprint(config)["images"]]
    assert boxes == [list(item.box) for item in source.train + source.test]
    assert len(set(map(tuple, boxes))) > 1


def test_the_same_photos_at_another_path_keep_the_id_and_other_photos_never_share_it(photos, tmp_path):
    moved = shutil.copytree(photos, tmp_path / "elsewhere" / "photos-copy")
    assert data_id(folder_config(photos)) == data_id(folder_config(moved))
    assert run_id(folder_config(photos), data_id(folder_config(photos))) == \
        run_id(folder_config(moved), data_id(folder_config(moved)))
    repaint(moved / "img07.png")
    assert data_id(folder_config(photos)) != data_id(folder_config(moved))
    assert config_hash(folder_config(photos)) == config_hash(folder_config(moved))  # only the data differs


def test_a_changed_file_is_hashed_again_not_read_from_the_hash_cache(photos):
    config = folder_config(photos)
    before = data_id(config)
    repaint(photos / "img03.png")
    assert data_id(config) != before


def test_the_weights_file_enters_the_id_by_its_bytes(tmp_path):
    weights = tmp_path / "a.pth"
    weights.write_bytes(b"weights A")
    same = tmp_path / "copy" / "b.pth"
    same.parent.mkdir()
    same.write_bytes(b"weights A")
    other = tmp_path / "c.pth"
    other.write_bytes(b"weights C")

    def config(path):
        return load_config(None, ["generator.arch=resnet18_unet", "generator.pretrained_encoder=true",
                                  f"generator.pretrained_path={path}", "data.image_size=64"])
    fingerprint = data_fingerprint(config(weights))
    assert fingerprint["weights"] == hashlib.sha256(b"weights A").hexdigest()
    assert data_id(config(weights)) == data_id(config(same)) != data_id(config(other))
    with pytest.raises(DataUnavailable, match=re.escape(f"{tmp_path / 'missing.pth'}: No such file or directory")):
        data_id(config(tmp_path / "missing.pth"))


def test_ids_compose_as_documented(photos):
    config = folder_config(photos, "seed=3")
    data = data_id(config)
    assert config_id(config, data) == f"{config_hash(config)}-{data}"
    assert run_id(config, data) == f"{config_hash(config)}-{data}-s3"


def test_same_run_matches_a_placeholder_data_id_only_with_the_same_hash_and_seed():
    assert same_run("abcdef012345-0123abcd-s1", "abcdef012345-0123abcd-s1")
    assert not same_run("abcdef012345-0123abcd-s1", "abcdef012345-0123abce-s1")
    planned = f"abcdef012345-{UNKNOWN_DATA_ID}-s1"
    assert same_run(planned, "abcdef012345-99999999-s1")
    assert not same_run(planned, "abcdef012345-99999999-s11")
    assert not same_run(planned, "bbcdef012345-99999999-s1")
    assert not same_run(planned, "abcdef012345-9999999-s1")


def write_ablation(tmp_path, roots, name="folders"):
    path = tmp_path / f"{name}.yaml"
    base = {"data": {"dataset": "folder", "root": str(roots[0]), "image_size": 32, "test_fraction": 0.25, "batch_size": 4},
            "generator": {"depth": 5, "ngf": 8}, "discriminator": {"ndf": 8, "n_layers": 1},
            "optim": {"steps": 1, "schedule": "constant"}, "eval": {"n_sample_images": 0}, "device": "cpu"}
    path.write_text(yaml.safe_dump({"name": name, "base": base, "grid": {"data.root": [str(r) for r in roots]}}))
    return path


def test_an_ablation_over_two_folders_of_different_photos_is_two_runs(photos, tmp_path):
    other = shutil.copytree(photos, tmp_path / "other")
    repaint(other / "img11.png")
    runs = load_ablation(write_ablation(tmp_path, [photos, other])).runs
    assert len({run.run_id for run in runs}) == 2
    assert len({run.run_id.split("-")[0] for run in runs}) == 1  # the same config hash, other data ids


def test_an_ablation_over_two_folders_of_the_same_photos_is_refused_as_one_run(photos, tmp_path):
    same = shutil.copytree(photos, tmp_path / "same")
    with pytest.raises(AblationError, match="are the same run"):
        load_ablation(write_ablation(tmp_path, [photos, same]))


def test_train_refuses_a_directory_trained_on_other_photos(photos, tmp_path):
    out = tmp_path / "run"
    train(folder_config(photos), out)
    claimed = yaml.safe_load((out / "config.yaml").read_text())
    assert claimed["data_id"] == data_id(folder_config(photos))
    assert claimed["data"] == {"images": 20, "weights_sha256": None}
    repaint(photos / "img05.png")
    with pytest.raises(ConfigError, match="a different config, seed or data"):
        train(folder_config(photos), out)


def test_train_refuses_a_planned_run_id_its_data_no_longer_has(photos, tmp_path):
    planned = run_id(folder_config(photos), data_id(folder_config(photos)))
    repaint(photos / "img02.png")
    with pytest.raises(ConfigError, match="the photos or weights changed since the sweep planned it"):
        train(folder_config(photos), tmp_path / planned, planned_run_id=planned)
    assert not (tmp_path / planned).exists() or not any((tmp_path / planned).iterdir())


def test_a_sweep_does_not_skip_a_done_run_made_on_other_photos(photos, tmp_path, capsys):
    path = write_ablation(tmp_path, [photos])
    results = tmp_path / "results"
    assert main(["sweep", str(path), "--results", str(results), "--executor", "debug"]) == 0
    done = {run.run_id for run in load_ablation(path).runs}
    repaint(photos / "img09.png")
    capsys.readouterr()
    assert main(["sweep", str(path), "--results", str(results), "--dry-run"]) == 0
    out = capsys.readouterr().out
    (run,) = load_ablation(path).runs
    assert run.run_id not in done
    line = next(line for line in out.splitlines() if line.startswith(run.run_id))
    assert line.split()[2:4] == ["missing", "submit"]


def test_data_that_is_not_here_can_be_listed_but_not_swept(tmp_path, photos, capsys):
    path = write_ablation(tmp_path, [tmp_path / "absent"])
    (run,) = load_ablation(path).runs
    assert UNKNOWN_DATA_ID in run.run_id and "absent: not a directory" in run.data_problem
    assert main(["sweep", str(path), "--results", str(tmp_path / "results"), "--dry-run"]) == 0
    assert "skip: its data is not here" in capsys.readouterr().out
    assert main(["sweep", str(path), "--results", str(tmp_path / "results"), "--executor", "debug"]) == 2
    err = capsys.readouterr().err
    assert "1 of 1 runs cannot be named" in err and "--skip-missing-data runs the others" in err
    assert not list((tmp_path / "results").glob("*/*/config.yaml"))


def test_skip_missing_data_sweeps_the_runs_whose_data_is_here(tmp_path, photos, capsys):
    path = write_ablation(tmp_path, [photos, tmp_path / "absent"])
    results = tmp_path / "results"
    assert main(["sweep", str(path), "--results", str(results), "--executor", "debug"]) == 2
    assert "1 of 2 runs cannot be named" in capsys.readouterr().err  # refused as a whole by default
    assert main(["sweep", str(path), "--results", str(results), "--executor", "debug", "--skip-missing-data"]) == 0
    captured = capsys.readouterr()
    assert "1 of 2 runs cannot be named" in captured.err and "they are skipped" in captured.err
    here, absent = load_ablation(path).runs
    assert absent.data_problem is not None and here.data_problem is None
    done = [p.parent.name for p in (results / "folders").glob("*/DONE")]
    assert len(done) == 1 and done[0].startswith(here.run_id)


def test_a_results_folder_finds_runs_whose_data_is_gone_by_hash_and_seed(photos, tmp_path):
    path = write_ablation(tmp_path, [photos])
    results = tmp_path / "results"
    assert main(["sweep", str(path), "--results", str(results), "--executor", "debug"]) == 0
    (trained,) = load_ablation(path).runs
    shutil.rmtree(photos)
    (planned,) = load_ablation(path).runs
    assert planned.data_problem is not None
    folder = AblationResults(results / "folders")
    assert [p.name.startswith(trained.run_id) for p in folder.existing_dirs(planned)] == [True]
    folder.check_conflicts([planned])  # the directory holds that run: no conflict


# ---- the canonical forms and the hash store (mutation testing found these untested) ----

def test_the_config_hash_is_sha256_of_the_sorted_compact_json_of_the_identity_fields():
    import dataclasses

    def fields(section):  # written out here: every field not marked identity=False, sections nested, and a
        out = {}          # field added after runs existed (hashed_at_default=False) only when not at its default
        for f in dataclasses.fields(section):
            value = getattr(section, f.name)
            if dataclasses.is_dataclass(value):
                if nested := fields(value):
                    out[f.name] = nested
            elif f.metadata["identity"] and (f.metadata["hashed_at_default"] or value != f.default):
                out[f.name] = list(value) if isinstance(value, tuple) else value
        return out
    for overrides in (["loss.lambda_rec=7.5", "optim.betas=[0.5, 0.9]"], ["compute.channels_last=true"]):
        config = load_config(None, overrides)
        canonical = json.dumps(fields(config), sort_keys=True, separators=(",", ":"))
        assert config_hash(config) == hashlib.sha256(canonical.encode()).hexdigest()[:12]
    assert "seed" not in fields(config) and "root" not in fields(config)["data"]
    assert "compute" not in fields(load_config(None, []))  # at its defaults: earlier runs keep their ids
    assert fields(config)["compute"] == {"channels_last": True}


def test_the_config_id_is_read_back_from_a_run_id():
    from bench.run.identity import config_id_of
    assert config_id_of("0123456789ab-0123abcd-s12") == "0123456789ab-0123abcd"
    assert config_id_of(f"0123456789ab-{UNKNOWN_DATA_ID}-s0") == f"0123456789ab-{UNKNOWN_DATA_ID}"


def test_ids_never_download_unless_asked(tmp_path, monkeypatch):
    import bench.data.fingerprint
    calls = []
    monkeypatch.setattr(bench.data.fingerprint, "download_dataset", lambda *args: calls.append(args))
    config = load_config(None, ["data.dataset=facades", f"data.root={tmp_path / 'facades'}", "data.download=true",
                                f"data.cache_dir={tmp_path / 'cache'}", "colour_space=rgb", "data.task=paired"])
    with pytest.raises(DataUnavailable):
        data_id(config)
    with pytest.raises(DataUnavailable):
        data_fingerprint(config)
    assert calls == []
    with pytest.raises(DataUnavailable):
        data_id(config, fetch=True)  # the stand-in downloads nothing, so the folder is still missing
    assert calls == [("facades", tmp_path / "facades", tmp_path / "cache" / "downloads")]


def test_paired_items_enter_the_fingerprint_with_their_paired_box(tmp_path):
    from test_datasets import make_facades
    root = make_facades(tmp_path / "facades", n_train=2, n_test=1)
    config = load_config(None, ["data.dataset=facades", f"data.root={root}", "colour_space=rgb", "data.task=paired"])
    source = open_source(config.data)
    assert [image[3] for image in data_fingerprint(config)["images"]] == [
        list(item.pair_box) for item in source.train + source.test]


def test_only_a_pretrained_resnet_encoder_puts_a_weights_file_in_the_id(tmp_path, monkeypatch):
    weights = tmp_path / "w.pth"
    weights.write_bytes(b"w")
    plain = load_config(None, ["generator.arch=resnet18_unet", f"generator.pretrained_path={weights}",
                               "data.image_size=64"])
    assert data_fingerprint(plain)["weights"] is None
    hub = tmp_path / "torch-home"
    monkeypatch.setenv("TORCH_HOME", str(hub))
    from bench.models.resnet_unet import default_weights_path
    default_weights_path().parent.mkdir(parents=True)
    default_weights_path().write_bytes(b"hub weights")
    pretrained = load_config(None, ["generator.arch=resnet18_unet", "generator.pretrained_encoder=true",
                                    "data.image_size=64"])
    assert data_fingerprint(pretrained)["weights"] == hashlib.sha256(b"hub weights").hexdigest()


def test_a_file_whose_size_and_mtime_are_unchanged_is_not_read_again(photos, monkeypatch):
    import builtins
    config = folder_config(photos)
    first = data_id(config)
    store = json.loads((Path(os.environ["COLORBENCH_CACHE"]) / "file-sha256.json").read_text())
    assert store[str((photos / "img00.png").resolve())][2] == hashlib.sha256(
        (photos / "img00.png").read_bytes()).hexdigest()
    opened = []
    real_open = builtins.open
    monkeypatch.setattr(builtins, "open", lambda path, *a, **k: opened.append(str(path)) or real_open(path, *a, **k))
    assert data_id(config) == first
    assert not [path for path in opened if path.startswith(str(photos))]


def test_the_hash_store_lives_in_the_configured_cache_and_survives_damage(photos, tmp_path):
    cache = tmp_path / "a" / "b" / "cache"
    config = folder_config(photos, f"data.cache_dir={cache}")
    first = data_id(config)
    store = cache / "file-sha256.json"
    assert len(json.loads(store.read_text())) == 20
    for damage in ("[]", "{not json"):
        store.write_text(damage)
        assert data_id(config) == first
