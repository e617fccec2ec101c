"""Every folder of ../shared/data prepared as the benchmark commands would: counts, splits, skips, determinism.

The greyscale photographs listed here were found by eye and by their chroma (measured with
the image's mean tint removed): coco128 has one single-channel file, three RGB files with
equal channels and one toned black-and-white photo, coco300 four and two tinted ones (a sepia
print, birds against a blue-grey sky), imagenet300 thirteen (chroma 0 to 1.83), sun80 and
facades none.  The colour photographs closest to the threshold (coco300's 000000000128.jpg at
2.16, imagenet300's ILSVRC2012_val_00000155.JPEG at 2.62) must be kept.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from test_datasets import forbid_decoding

from bench.config import DataConfig
from bench.data import prepare_data

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

NEAR_EQUAL = "greyscale: near-equal channels"
GREYSCALE = {
    "coco128": {"000000000086.jpg": "greyscale: single-channel", "000000000328.jpg": NEAR_EQUAL,
                "000000000359.jpg": NEAR_EQUAL,  # a toned black-and-white photo
                "000000000542.jpg": NEAR_EQUAL, "000000000634.jpg": NEAR_EQUAL},
    "coco300": {f"000000000{n}.jpg": NEAR_EQUAL for n in ("066", "109", "136", "146", "200", "271")},  # 109, 271 tinted
    "imagenet300": {f"ILSVRC2012_val_00000{n}.JPEG": NEAR_EQUAL for n in (
        "014", "015", "048", "055", "057", "087", "088", "106", "113", "131", "146", "184", "237")},
    "sun80": {},
}
FILES = {"coco128": 128, "coco300": 300, "imagenet300": 300, "sun80": 80}
N_TEST = 20


def shared(folder: str) -> Path:
    path = SHARED_DATA / folder
    if not path.is_dir():
        pytest.skip(f"shared test photos not found at {path}")
    return path


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("shared-cache")


def folder_config(folder: str, cache: Path, **changes) -> DataConfig:
    return DataConfig(dataset="folder", root=str(shared(folder)), cache_dir=str(cache),
                      **{"image_size": 32, "augmentation": "none", "n_test": N_TEST, **changes})


@pytest.fixture(scope="module")
def prepared(cache):
    """Each photo folder as ``colorbench data prepare imagefolder --n-test 20 --size 32`` prepares it, once."""
    made = {}

    def get(folder: str):
        if folder not in made:
            made[folder] = prepare_data(folder_config(folder, cache))
        return made[folder]

    return get


def skipped(manifest: dict) -> dict[str, str]:
    return {entry["id"]: entry["reason"].split(" (")[0]
            for split in ("train", "test") for entry in manifest["splits"][split]["skipped"]}


@pytest.mark.parametrize("folder", list(FILES))
def test_photo_folder_counts_splits_and_skips(prepared, folder):
    data = prepared(folder)
    assert skipped(data.manifest) == GREYSCALE[folder]
    assert len(data.test) == N_TEST
    assert len(data.train) == FILES[folder] - N_TEST - len(GREYSCALE[folder])
    assert not set(data.train_ids) & set(data.test_ids)
    assert len(set(data.train_ids)) == len(data.train_ids)
    assert data.train.shape[1:] == data.test.shape[1:] == (3, 32, 32) and data.train.dtype == torch.uint8


def test_colour_photos_just_above_the_threshold_are_kept(prepared):
    for folder, name in (("coco300", "000000000128.jpg"), ("coco300", "000000000229.jpg"),
                         ("imagenet300", "ILSVRC2012_val_00000155.JPEG"),
                         ("imagenet300", "ILSVRC2012_val_00000138.JPEG")):
        data = prepared(folder)
        assert name in data.train_ids + data.test_ids


def test_manifest_hashes_the_files_it_kept(prepared):
    data = prepared("sun80")
    items = data.manifest["splits"]["train"]["items"][:3]
    for entry in items:
        assert entry["sha256"] == hashlib.sha256((SHARED_DATA / "sun80" / entry["id"]).read_bytes()).hexdigest()


def test_preparation_is_deterministic_and_cached(prepared, tmp_path, monkeypatch):
    first = prepared("imagenet300")
    rebuilt = prepare_data(folder_config("imagenet300", tmp_path / "fresh"))
    assert torch.equal(first.train, rebuilt.train) and torch.equal(first.test, rebuilt.test)
    where = ("cache_file", "manifest_file")
    assert {k: v for k, v in first.manifest.items() if k not in where} == \
        {k: v for k, v in rebuilt.manifest.items() if k not in where}
    forbid_decoding(monkeypatch)
    assert prepare_data(folder_config("imagenet300", tmp_path / "fresh")).train_ids == first.train_ids


def test_another_seed_selects_another_test_split(cache):
    one = prepare_data(folder_config("imagenet300", cache, n_train=30, n_test=10, split_seed=1))
    two = prepare_data(folder_config("imagenet300", cache, n_train=30, n_test=10, split_seed=2))
    assert (len(one.train), len(one.test)) == (len(two.train), len(two.test)) == (30, 10)
    assert one.test_ids != two.test_ids


def test_coco_layout_from_the_shared_photos(tmp_path, cache):
    """train2017/ and val2017/ as the coco2017 source expects them (here: coco300 and coco128)."""
    root = tmp_path / "coco"
    root.mkdir()
    (root / "train2017").symlink_to(shared("coco300"), target_is_directory=True)
    (root / "val2017").symlink_to(shared("coco128"), target_is_directory=True)
    data = prepare_data(DataConfig(dataset="coco2017", root=str(root), image_size=32, augmentation="none",
                                   n_train=40, n_test=10, cache_dir=str(cache)))
    assert (len(data.train), len(data.test)) == (40, 10)
    assert all(i.startswith("train2017/") for i in data.train_ids)
    assert all(i.startswith("val2017/") for i in data.test_ids)
    for split, folder in (("train", "coco300"), ("test", "coco128")):
        for entry in data.manifest["splits"][split]["skipped"]:
            assert GREYSCALE[folder][entry["id"].split("/")[1]] in entry["reason"]


def test_facades_aligned_pairs(cache):
    root = shared("facades")
    data = prepare_data(DataConfig(dataset="facades", root=str(root), image_size=32, augmentation="none",
                                   cache_dir=str(cache)))
    assert (len(data.train), len(data.test)) == (400, 106)
    assert data.train_inputs.shape == data.train.shape and data.test_inputs.shape == data.test.shape
    assert data.manifest["splits"]["train"]["skipped"] == data.manifest["splits"]["test"]["skipped"] == []
    row = data.test_ids.index("test/1.jpg")
    pair = np.asarray(Image.open(root / "test" / "1.jpg").convert("RGB"))
    for images, half in ((data.test, pair[:, :256]), (data.test_inputs, pair[:, 256:])):
        expected = np.asarray(Image.fromarray(half).resize((32, 32), Image.Resampling.BICUBIC)).transpose(2, 0, 1)
        np.testing.assert_array_equal(images[row].numpy(), expected)
