"""Benchmark datasets on synthetic trees: layouts, pairs, selection, duplicates, the manifest and the cache."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import colourful_image
from PIL import Image

import bench.data.build
from bench.cli import main
from bench.config import ConfigError, DataConfig, load_config
from bench.data import DatasetError, augment, dataset_root, prepare_data
from bench.data.decode import mean_chroma
from bench.data.sources import open_source


def write(path: Path, rgb: np.ndarray, **save_args) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path, **save_args)
    return path


def label_map(photo: np.ndarray) -> np.ndarray:
    """A flat-coloured 'label map' derived from the photo: four levels per channel."""
    return (photo // 64 * 64 + 32).astype(np.uint8)


def make_facades(root: Path, n_train: int, n_test: int, n_val: int = 2, side: int = 40, seed: int = 0) -> Path:
    """pix2pix's aligned layout: <root>/{train,val,test}/<i>.png, photo on the left, label map on the right."""
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("val", n_val), ("test", n_test)):
        for i in range(n):
            photo = colourful_image(rng, side)
            write(root / split / f"{i + 1}.png", np.concatenate([photo, label_map(photo)], axis=1))
    return root


def make_coco(root: Path, n_train: int, n_val: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    for folder, n in (("train2017", n_train), ("val2017", n_val)):
        for i in range(n):
            write(root / folder / f"{i:012d}.jpg", colourful_image(rng, 48), quality=95)
    return root


def make_country211(root: Path, per_class: int = 3, seed: int = 0) -> Path:
    """torchvision's Country211 layout: <root>/country211/{train,valid,test}/<country code>/<n>.jpg."""
    rng = np.random.default_rng(seed)
    for split in ("train", "valid", "test"):
        for country in ("AD", "AE"):
            for i in range(per_class):
                write(root / "country211" / split / country / f"{i}.jpg", colourful_image(rng, 40), quality=95)
    return root


def make_folder(root: Path, n: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    for i in range(n):
        write(root / f"img{i:02d}.png", colourful_image(rng, 40))
    return root


def data_config(dataset: str, root: Path, cache: Path, **changes) -> DataConfig:
    return DataConfig(dataset=dataset, root=str(root), cache_dir=str(cache),
                      **{"image_size": 32, "augmentation": "none", **changes})


def forbid_decoding(monkeypatch):
    def fail(*args):
        raise AssertionError("an image was decoded")

    monkeypatch.setattr(bench.data.build, "read_colour_image", fail)


def bicubic(rgb: np.ndarray, side: int) -> np.ndarray:
    return np.asarray(Image.fromarray(rgb).resize((side, side), Image.Resampling.BICUBIC)).transpose(2, 0, 1)


# ---------------------------------------------------------------------------------------
# facades: aligned pairs

@pytest.fixture(scope="module")
def facades(tmp_path_factory):
    root = make_facades(tmp_path_factory.mktemp("facades"), n_train=6, n_test=3)
    return root, prepare_data(data_config("facades", root, tmp_path_factory.mktemp("cache")))


def test_facades_rows_are_the_photo_and_label_halves_of_each_file(facades):
    root, data = facades
    assert data.train.shape == data.train_inputs.shape == (6, 3, 32, 32)
    assert data.test.shape == data.test_inputs.shape == (3, 3, 32, 32)
    assert sorted(data.train_ids) == [f"train/{i}.png" for i in range(1, 7)]
    assert sorted(data.test_ids) == [f"test/{i}.png" for i in range(1, 4)]  # val/ is not used
    for row, item_id in enumerate(data.train_ids):
        pair = np.asarray(Image.open(root / item_id))
        np.testing.assert_array_equal(data.train[row].numpy(), bicubic(pair[:, :40], 32))
        np.testing.assert_array_equal(data.train_inputs[row].numpy(), bicubic(pair[:, 40:], 32))
    entry = data.manifest["splits"]["train"]["items"][0]
    assert entry["box"] == [0, 0, 40, 40] and entry["pair_box"] == [40, 0, 80, 40]


def test_network_images_stack_pairs_on_channels(facades):
    _, data = facades
    assert data.network_images("train", "colourise") is data.train
    paired = data.network_images("test", "paired")
    assert paired.shape == (3, 6, 32, 32)
    assert torch.equal(paired[:, :3], data.test) and torch.equal(paired[:, 3:], data.test_inputs)


def test_a_dataset_without_pairs_refuses_the_paired_task(tmp_path):
    data = prepare_data(data_config("folder", make_folder(tmp_path / "images", 4), tmp_path / "cache"))
    assert data.train_inputs is None
    with pytest.raises(DatasetError, match="paired needs a dataset of image pairs; folder has none"):
        data.network_images("train", "paired")


def test_augment_crops_and_flips_both_images_of_a_pair_alike():
    pairs = torch.randint(0, 256, (16, 6, 36, 36), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    out = augment(pairs, "flip+jitter", 32, torch.Generator().manual_seed(5))
    photos = augment(pairs[:, :3].contiguous(), "flip+jitter", 32, torch.Generator().manual_seed(5))
    inputs = augment(pairs[:, 3:].contiguous(), "flip+jitter", 32, torch.Generator().manual_seed(5))
    assert out.shape == (16, 6, 32, 32)
    assert torch.equal(out[:, :3], photos) and torch.equal(out[:, 3:], inputs)


def test_facades_pair_with_a_grey_photo_is_skipped(tmp_path):
    root = make_facades(tmp_path / "facades", n_train=3, n_test=1)
    grey = np.repeat(colourful_image(np.random.default_rng(9), 40)[..., :1], 3, axis=2)
    pair = np.concatenate([grey, label_map(colourful_image(np.random.default_rng(9), 40))], axis=1)
    assert mean_chroma(pair) > 2.0  # the file as a whole is colourful: only the photo half is grey
    write(root / "train" / "2.png", pair)
    data = prepare_data(data_config("facades", root, tmp_path / "cache"))
    assert data.manifest["splits"]["train"]["skipped"] == [
        {"id": "train/2.png", "reason": "greyscale: near-equal channels (chroma 0.00 <= 2.0)"}]
    assert sorted(data.train_ids) == ["train/1.png", "train/3.png"]


def test_facades_missing_split_folder_names_it(tmp_path):
    root = make_facades(tmp_path / "facades", n_train=2, n_test=1)
    shutil.rmtree(root / "test")
    with pytest.raises(DatasetError, match=r"facades: .*facades/test is not a directory; set --root .* --download"):
        prepare_data(data_config("facades", root, tmp_path / "cache"))


# ---------------------------------------------------------------------------------------
# coco2017 and country211 layouts

def test_coco2017_trains_on_train2017_and_tests_on_val2017(tmp_path):
    root = make_coco(tmp_path / "coco", n_train=5, n_val=3)
    data = prepare_data(data_config("coco2017", root, tmp_path / "cache"))
    assert data.train_ids == [f"train2017/{i:012d}.jpg" for i in range(5)]
    assert data.test_ids == [f"val2017/{i:012d}.jpg" for i in range(3)]
    assert data.manifest["source"] == "coco2017" and data.manifest["root"] == str(root.resolve())


def test_coco2017_without_val2017_is_an_error(tmp_path):
    root = make_coco(tmp_path / "coco", n_train=3, n_val=0)
    with pytest.raises(DatasetError, match=r"coco2017: .*val2017 is not a directory"):
        prepare_data(data_config("coco2017", root, tmp_path / "cache"))
    (root / "val2017").mkdir()
    with pytest.raises(DatasetError, match=r"coco2017: no image files in .*val2017"):
        prepare_data(data_config("coco2017", root, tmp_path / "cache"))


def test_country211_is_read_through_torchvision(tmp_path):
    root = make_country211(tmp_path / "c211")
    data = prepare_data(data_config("country211", root, tmp_path / "cache"))
    assert data.train_ids == [f"country211/train/{c}/{i}.jpg" for c in ("AD", "AE") for i in range(3)]
    assert data.test_ids == [f"country211/test/{c}/{i}.jpg" for c in ("AD", "AE") for i in range(3)]


def test_country211_missing_is_an_error_naming_the_folder(tmp_path):
    with pytest.raises(DatasetError, match=r"country211: no dataset at .*absent/country211/train .*--download"):
        prepare_data(data_config("country211", tmp_path / "absent", tmp_path / "cache"))


def test_benchmark_root_defaults_to_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("COLORBENCH_CACHE", str(tmp_path / "env"))
    assert dataset_root(DataConfig(dataset="facades")) == tmp_path / "env" / "datasets" / "facades"
    configured = DataConfig(dataset="facades", cache_dir=str(tmp_path / "c"))
    assert dataset_root(configured) == tmp_path / "c" / "datasets" / "facades"
    assert dataset_root(DataConfig(dataset="coco2017", root="/data/coco")) == Path("/data/coco")


# ---------------------------------------------------------------------------------------
# Selection, exclusion and duplicates

def grey_png(path: Path, seed: int) -> Path:
    return write(path, np.repeat(colourful_image(np.random.default_rng(seed), 40)[..., :1], 3, axis=2))


@pytest.fixture
def mixed_folder(tmp_path) -> Path:
    """20 colour images and 3 greyscale ones."""
    root = make_folder(tmp_path / "images", 20)
    for i in range(3):
        grey_png(root / f"grey{i}.png", 100 + i)
    return root


def selection(root: Path, cache: Path, **changes) -> dict:
    data = prepare_data(data_config("folder", root, cache, **changes))
    splits = data.manifest["splits"]
    return {split: {"kept": [e["id"] for e in splits[split]["items"]],
                    "skipped": [e["id"] for e in splits[split]["skipped"]]} for split in splits} | {"data": data}


def test_n_train_and_n_test_keep_exactly_that_many_usable_images(mixed_folder, tmp_path):
    chosen = selection(mixed_folder, tmp_path / "cache", n_train=8, n_test=5)
    train, test = chosen["train"], chosen["test"]
    assert len(test["kept"]) == 5 and len(train["kept"]) == 8
    examined = train["kept"] + train["skipped"] + test["kept"] + test["skipped"]
    assert len(examined) == len(set(examined))  # nothing examined twice, nothing in both splits
    assert all(name.startswith("grey") for name in train["skipped"] + test["skipped"])
    record = chosen["data"].manifest["splits"]["train"]
    assert record["requested"] == 8 and record["candidates"] == 23 - len(test["kept"] + test["skipped"])
    assert record["examined_files"] == len(train["kept"] + train["skipped"])


def test_selection_is_deterministic_per_seed(mixed_folder, tmp_path):
    first = selection(mixed_folder, tmp_path / "a", n_train=8, n_test=5, split_seed=3)
    again = selection(mixed_folder, tmp_path / "b", n_train=8, n_test=5, split_seed=3)
    other = selection(mixed_folder, tmp_path / "c", n_train=8, n_test=5, split_seed=4)
    assert first["train"] == again["train"] and first["test"] == again["test"]
    assert torch.equal(first["data"].train, again["data"].train)
    assert first["test"]["kept"] != other["test"]["kept"]


def test_n_test_alone_leaves_every_other_file_to_training(mixed_folder, tmp_path):
    chosen = selection(mixed_folder, tmp_path / "cache", n_test=4)
    assert len(chosen["test"]["kept"]) == 4
    assert len(chosen["train"]["kept"]) + len(chosen["test"]["kept"]) == 20
    assert sorted(chosen["train"]["skipped"] + chosen["test"]["skipped"]) == ["grey0.png", "grey1.png", "grey2.png"]


def test_too_few_usable_images_is_an_error_with_counts(mixed_folder, tmp_path):
    (tmp_path / "train.txt").write_text("img00.png\nimg01.png\ngrey0.png\n")
    (tmp_path / "test.txt").write_text("img02.png\n")
    with pytest.raises(DatasetError) as error:
        prepare_data(data_config("folder", mixed_folder, tmp_path / "cache", n_train=3,
                                 train_list=str(tmp_path / "train.txt"), test_list=str(tmp_path / "test.txt")))
    assert str(error.value) == (f"the train split in {mixed_folder.resolve()} needs 3 usable images; "
                                "3 candidates gave 2, 1 skipped (greyscale: 1)")


def test_byte_identical_copies_are_skipped_as_duplicates(tmp_path):
    root = make_folder(tmp_path / "images", 4)
    shutil.copy(root / "img00.png", root / "copy_of_test.png")
    shutil.copy(root / "img01.png", root / "copy_of_train.png")
    (tmp_path / "train.txt").write_text("img01.png\ncopy_of_train.png\ncopy_of_test.png\nimg02.png\n")
    (tmp_path / "test.txt").write_text("img00.png\nimg03.png\n")
    data = prepare_data(data_config("folder", root, tmp_path / "cache", train_list=str(tmp_path / "train.txt"),
                                    test_list=str(tmp_path / "test.txt")))
    train = data.manifest["splits"]["train"]
    assert data.train_ids == ["img01.png", "img02.png"] and data.test_ids == ["img00.png", "img03.png"]
    assert train["skipped"] == [{"id": "copy_of_train.png", "reason": "duplicate: same bytes as img01.png"},
                                {"id": "copy_of_test.png", "reason": "duplicate: same bytes as img00.png"}]
    assert train["skip_counts"] == {"duplicate": 2}


# ---------------------------------------------------------------------------------------
# The cache, the manifest file and the command

def test_manifest_file_is_the_manifest_and_the_cache_is_reused(tmp_path, monkeypatch):
    root = make_coco(tmp_path / "coco", n_train=4, n_val=2)
    cfg = data_config("coco2017", root, tmp_path / "cache", n_train=3)
    data = prepare_data(cfg)
    manifest_file = Path(data.manifest["manifest_file"])
    assert manifest_file.parent == tmp_path / "cache" / "manifests"
    assert json.loads(manifest_file.read_text()) == data.manifest
    manifest_file.unlink()
    forbid_decoding(monkeypatch)
    again = prepare_data(cfg)
    assert torch.equal(again.train, data.train) and again.manifest == data.manifest
    assert manifest_file.is_file()  # rewritten from the cached payload


def test_data_prepare_command_and_training_read_the_same_cache(tmp_path, monkeypatch, capsys):
    root = make_facades(tmp_path / "facades", n_train=5, n_test=2)
    args = ["data", "prepare", "facades", "--root", str(root), "--size", "32", "--n-train", "4",
            "--cache-dir", str(tmp_path / "cache")]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "train       4 images of 36x36 with paired inputs; skipped 0" in out  # jitter's load size
    assert "test        2 images of 32x32 with paired inputs; skipped 0" in out
    overrides = out.split("train on it with: colorbench train ")[1].split()
    assert overrides[::2] == ["--set"] * (len(overrides) // 2)
    assert f"data.root={root}" in overrides and "data.n_train=4" in overrides

    forbid_decoding(monkeypatch)
    assert main(args) == 0  # the same arguments: read from the cache
    config = load_config(None, [*overrides[1::2], "generator.depth=5"])
    assert prepare_data(config.data).manifest["cache_file"] in out


@pytest.mark.parametrize("args, message", [
    (["coco2017", "--root", "{tmp}/nothing"], "coco2017: {tmp}/nothing/train2017 is not a directory"),
    (["imagefolder", "--root", "{tmp}/nothing"], "data.root {tmp}/nothing: not a directory"),
    (["imagefolder"], "data.root: the folder dataset needs data.root"),
    (["samples", "--download"], "data.download: got true for data.dataset=samples"),
])
def test_data_prepare_bad_input_exits_2(tmp_path, capsys, args, message):
    args = [arg.format(tmp=tmp_path) for arg in args]
    assert main(["data", "prepare", *args, "--cache-dir", str(tmp_path / "cache")]) == 2
    assert f"colorbench: error: {message.format(tmp=tmp_path)}" in capsys.readouterr().err


@pytest.mark.parametrize("command", [["data"], ["data", "prepare"]])
def test_data_help(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([*command, "--help"])
    assert exit_.value.code == 0 and "usage: colorbench data" in capsys.readouterr().out


def test_data_prepare_rejects_unknown_names_and_bad_counts(capsys):
    for args in (["imagenet"], ["facades", "--n-train", "0"], ["facades", "--size", "x"]):
        with pytest.raises(SystemExit) as exit_:
            main(["data", "prepare", *args])
        assert exit_.value.code == 2
    assert "invalid choice: 'imagenet'" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------
# Configuration

@pytest.mark.parametrize("overrides, message", [
    (["data.task=paired", "colour_space=rgb"], "data.task: paired needs a dataset of image pairs; "
                                               "got data.dataset=samples; allowed: facades"),
    (["data.task=paired", "data.dataset=facades"], "colour_space: got lab; data.task=paired predicts the whole "
                                                   "photo, allowed: rgb"),
    (["data.task=grey"], "data.task: got 'grey'; allowed: colourise, paired"),
    (["data.dataset=imagenet"],
     "data.dataset: got 'imagenet'; allowed: samples, folder, coco2017, country211, facades"),
    (["data.n_train=0"], "data.n_train: got 0; allowed: a number > 0"),
    (["data.n_test=-1"], "data.n_test: got -1; allowed: a number > 0"),
    (["data.download=true"], "data.download: got true for data.dataset=samples, which has nothing to download"),
    (["data.dataset=coco2017", "data.train_list=a.txt", "data.test_list=b.txt"],
     "data.train_list / data.test_list: only for data.dataset: folder (got coco2017)"),
])
def test_bad_data_config_names_the_field(overrides, message):
    with pytest.raises(ConfigError) as error:
        load_config(None, overrides)
    assert message in str(error.value)


def test_paired_task_has_three_input_channels():
    paired = load_config(None, ["data.dataset=facades", "data.task=paired", "colour_space=rgb"])
    assert (paired.in_channels, paired.out_channels, paired.encoding) == (3, 3, "paired")
    colourise = load_config(None, ["data.dataset=facades", "colour_space=rgb"])
    assert (colourise.in_channels, colourise.out_channels, colourise.encoding) == (1, 3, "rgb")


def test_open_source_orders_candidates_by_seed_only_when_selecting(tmp_path):
    root = make_folder(tmp_path / "images", 12)
    every = open_source(data_config("folder", root, tmp_path / "cache"))
    assert [item.id for item in every.train] == sorted(item.id for item in every.train)
    selected = open_source(data_config("folder", root, tmp_path / "cache", n_test=3, n_train=5))
    assert len(selected.train) == len(selected.test) == 12  # every file is a candidate of both
    assert [item.id for item in selected.test] == [item.id for item in selected.train]  # one order, one pool
    assert [item.id for item in selected.test] != sorted(item.id for item in selected.test)
    rest = open_source(data_config("folder", root, tmp_path / "cache", n_test=3))
    assert [item.id for item in rest.train] == sorted(item.id for item in rest.train)  # all of it, in file order


def test_augment_rows_equal_augmenting_the_gathered_rows():
    images = torch.randint(0, 256, (30, 3, 36, 36), dtype=torch.uint8, generator=torch.Generator().manual_seed(2))
    rows = torch.tensor([7, 3, 29, 3])
    for augmentation, size in (("flip+jitter", 32), ("none", 36), ("flip", 36)):
        picked = augment(images, augmentation, size, torch.Generator().manual_seed(8), rows=rows)
        gathered = augment(images[rows], augmentation, size, torch.Generator().manual_seed(8))
        assert torch.equal(picked, gathered) and picked.shape[0] == 4


def test_augment_needs_a_cpu_tensor():
    with pytest.raises(ValueError, match=r"augment: expected a uint8 \(N, C, S, S\) CPU tensor; got .* on meta"):
        augment(torch.empty((2, 3, 8, 8), dtype=torch.uint8, device="meta"), "flip", 8, torch.Generator())


def test_data_prepare_prints_absolute_paths_that_train_from_any_folder(tmp_path, monkeypatch, capsys):
    make_facades(tmp_path / "facades", n_train=3, n_test=1)
    monkeypatch.chdir(tmp_path)
    assert main(["data", "prepare", "facades", "--root", "facades", "--size", "32", "--cache-dir", "cache"]) == 0
    out = capsys.readouterr().out
    overrides = out.split("train on it with: colorbench train ")[1].split()[1::2]
    assert f"data.root={tmp_path / 'facades'}" in overrides and f"data.cache_dir={tmp_path / 'cache'}" in overrides

    monkeypatch.chdir(tmp_path / "facades")  # elsewhere: the printed overrides find the same cache
    forbid_decoding(monkeypatch)
    config = load_config(None, [*overrides, "generator.depth=5"])
    assert prepare_data(config.data).manifest["cache_file"] in out
