"""Data layer: decoding and filtering, sources and splits, the prepared-data cache, augmentation."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

import bench.data.build
from bench.config import DataConfig
from bench.data import (
    DatasetError,
    SkipImage,
    augment,
    folder_source,
    load_size,
    prepare_data,
    read_colour_image,
    samples_source,
)
from bench.data.decode import oriented_size
from bench.data.sources import SAMPLE_TEST_GROUPS, open_source

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def colour_array(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth colour gradient with a seed-dependent offset: mean chroma far above 2."""
    y, x = np.mgrid[0:height, 0:width]
    rgb = np.stack([x * 255 // max(width - 1, 1), y * 255 // max(height - 1, 1), np.full_like(x, 40 * seed % 256)], -1)
    return rgb.astype(np.uint8)


def write_image(path: Path, image: Image.Image | np.ndarray, **save_args) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    (Image.fromarray(image) if isinstance(image, np.ndarray) else image).save(path, **save_args)
    return path


def decision(path: Path, min_side: int = 32, greyscale_chroma: float = 2.0) -> str | tuple[int, ...]:
    """The decoded shape, or the skip reason."""
    try:
        return read_colour_image(path, min_side, greyscale_chroma).shape
    except SkipImage as skip:
        return skip.reason


# ---------------------------------------------------------------------------------------
# Decoding and filtering

def _truncated_jpeg(path: Path) -> Path:
    """Cut inside the compressed scan, so only a full decode (not the header) notices."""
    data = write_image(path, colour_array(64, 64), quality=95).read_bytes()
    path.write_bytes(data[:len(data) // 2])
    return path


def file_with(data: bytes):
    def make(path: Path) -> Path:
        path.write_bytes(data)
        return path

    return make


def _rgb_of_equal_channels(path: Path) -> Path:
    grey = colour_array(48, 64)[..., 0]
    return write_image(path, np.stack([grey] * 3, -1))


BAD_FILES = {
    "truncated.jpg": (_truncated_jpeg, "unreadable: image file is truncated"),
    "zero_bytes.jpg": (file_with(b""), "unreadable: empty file"),
    "text.jpg": (file_with(b"not a photo\n"), "unreadable: not an image format Pillow recognises"),
    "mode_l.png": (lambda p: write_image(p, colour_array(48, 64)[..., 0]), "greyscale: single-channel"),
    "mode_la.png": (lambda p: write_image(p, Image.new("LA", (64, 48), (90, 128))), "greyscale: single-channel"),
    "grey16.png": (lambda p: write_image(p, np.arange(48 * 64, dtype=np.uint16).reshape(48, 64) * 20),
                   "greyscale: single-channel"),
    "equal_channels.png": (_rgb_of_equal_channels, "greyscale: near-equal channels (chroma 0.00 <= 2.0)"),
    "tiny.png": (lambda p: write_image(p, colour_array(8, 8)), "too small: 8x8 < 32"),
}


@pytest.mark.parametrize("name", BAD_FILES)
def test_bad_files_are_skipped_with_their_reason(tmp_path, name):
    make, reason = BAD_FILES[name]
    assert str(decision(make(tmp_path / name))).startswith(reason)


def test_sixteen_bit_png_really_is_sixteen_bit(tmp_path):
    """Guards the grey16 case above: Pillow must read it in an I;16 mode, not as 8-bit L."""
    path = BAD_FILES["grey16.png"][0](tmp_path / "grey16.png")
    assert Image.open(path).mode.startswith("I;16")


def test_greyscale_jpeg_with_chroma_noise_is_skipped(tmp_path):
    path = _rgb_of_equal_channels(tmp_path / "grey.png")
    jpeg = write_image(tmp_path / "grey.jpg", Image.open(path), quality=75)
    assert decision(jpeg).startswith("greyscale: near-equal channels (chroma ")


def halves(top: tuple[int, int, int], bottom: tuple[int, int, int]) -> np.ndarray:
    """A 40x40 image of two flat halves (a flat image of one colour is a tinted grey: chroma 0)."""
    return np.concatenate([np.full((20, 40, 3), top, np.uint8), np.full((20, 40, 3), bottom, np.uint8)])


def test_chroma_threshold_is_inclusive(tmp_path):
    at_threshold = write_image(tmp_path / "a.png", halves((100, 102, 100), (100, 98, 100)))
    above = write_image(tmp_path / "b.png", halves((100, 103, 100), (100, 97, 100)))
    assert decision(at_threshold) == "greyscale: near-equal channels (chroma 2.00 <= 2.0)"
    assert decision(above) == (40, 40, 3)
    assert decision(at_threshold, greyscale_chroma=1.5) == (40, 40, 3)


def test_too_small_uses_the_shorter_side(tmp_path):
    path = write_image(tmp_path / "wide.png", colour_array(31, 200))
    assert decision(path) == "too small: 200x31 < 32"
    assert decision(path, min_side=31) == (31, 200, 3)


def test_cmyk_jpeg_is_converted_to_rgb(tmp_path):
    cyan_yellow = np.zeros((48, 64, 4), np.uint8)  # two colours: one flat colour would be a tinted grey
    cyan_yellow[:, :32, 0] = 255
    cyan_yellow[:, 32:, 2] = 255
    path = write_image(tmp_path / "cmyk.jpg", Image.fromarray(cyan_yellow, "CMYK"), quality=95)
    rgb = read_colour_image(path, 32, 2.0)
    assert rgb.shape == (48, 64, 3) and rgb.dtype == np.uint8
    np.testing.assert_allclose(rgb[:, :28].reshape(-1, 3).mean(0), [0, 255, 255], atol=3)
    np.testing.assert_allclose(rgb[:, 36:].reshape(-1, 3).mean(0), [255, 255, 0], atol=3)


def test_rgba_png_drops_alpha_and_keeps_colour(tmp_path):
    rgb = colour_array(48, 64)
    alpha = np.linspace(0, 255, 64, dtype=np.uint8)[None, :].repeat(48, 0)
    path = write_image(tmp_path / "rgba.png", np.dstack([rgb, alpha]))
    np.testing.assert_array_equal(read_colour_image(path, 32, 2.0), rgb)


def test_palette_png_is_expanded_to_its_colours(tmp_path):
    palette_image = Image.fromarray(colour_array(48, 64)).quantize(16)
    path = write_image(tmp_path / "palette.png", palette_image)
    assert Image.open(path).mode == "P"
    np.testing.assert_array_equal(read_colour_image(path, 32, 2.0), np.asarray(palette_image.convert("RGB")))


def test_exif_orientation_is_applied(tmp_path):
    stored = np.zeros((40, 64, 3), np.uint8)  # 64 wide, 40 high: left half red, right half blue
    stored[:, :32] = (255, 0, 0)
    stored[:, 32:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    path = write_image(tmp_path / "rotated.jpg", stored, exif=exif, quality=95)
    rgb = read_colour_image(path, 32, 2.0)
    assert rgb.shape == (64, 40, 3)
    assert oriented_size(path) == (40, 64)
    np.testing.assert_allclose(rgb[:24].reshape(-1, 3).mean(0), (255, 0, 0), atol=4)  # the left side is now on top
    np.testing.assert_allclose(rgb[-24:].reshape(-1, 3).mean(0), (0, 0, 255), atol=4)


def test_missing_file_is_unreadable(tmp_path):
    assert decision(tmp_path / "absent.jpg") == "unreadable: No such file or directory"


@pytest.fixture(scope="module")
def valid_image_bytes(tmp_path_factory):
    folder = tmp_path_factory.mktemp("valid")
    return {suffix: write_image(folder / f"x{suffix}", colour_array(40, 40)).read_bytes() for suffix in (".jpg", ".png")}


@settings(max_examples=80, deadline=None)
@given(suffix=st.sampled_from([".jpg", ".png"]), cut=st.integers(0, 10_000),
       flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=6))
def test_corrupt_bytes_give_an_image_or_skip_image_never_another_error(tmp_path_factory, valid_image_bytes,
                                                                       suffix, cut, flips):
    data = bytearray(valid_image_bytes[suffix])
    for position, value in flips:
        data[position % len(data)] = value
    path = tmp_path_factory.getbasetemp() / f"corrupt{suffix}"
    path.write_bytes(bytes(data[:cut]))
    result = decision(path)
    assert isinstance(result, str) or result == (40, 40, 3)


# ---------------------------------------------------------------------------------------
# Sources and splits

def make_folder(root: Path, names: list[str]) -> Path:
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"")  # listing never reads a file
    return root


def test_folder_lists_image_files_recursively_sorted_by_extension(tmp_path):
    make_folder(tmp_path, ["b.JPG", "a.png", "sub/c.TIFF", "sub/deep/d.webp", "e.jpeg", "f.bmp", "g.tif",
                           "notes.txt", "anim.gif", "sub/README"])
    source = folder_source(tmp_path, split_seed=0, test_fraction=0.5)
    expected = ["a.png", "b.JPG", "e.jpeg", "f.bmp", "g.tif", "sub/c.TIFF", "sub/deep/d.webp"]
    assert sorted(item.id for item in source.train + source.test) == expected
    for split in (source.train, source.test):
        assert [item.id for item in split] == sorted(item.id for item in split)
        assert all(item.group == item.id and item.box is None and item.path == tmp_path / item.id for item in split)


def test_folder_split_is_deterministic_per_seed(tmp_path):
    make_folder(tmp_path, [f"img{i:02d}.jpg" for i in range(20)])

    def test_ids(seed):
        source = folder_source(tmp_path, split_seed=seed, test_fraction=0.25)
        assert len(source.test) == 5 and len(source.train) == 15
        assert not {i.id for i in source.train} & {i.id for i in source.test}
        return [item.id for item in source.test]

    assert test_ids(0) == test_ids(0)
    assert test_ids(0) != test_ids(1)


@pytest.mark.parametrize("fraction, n_test", [(0.01, 1), (0.5, 2), (0.99, 3)])
def test_folder_split_keeps_at_least_one_image_per_side(tmp_path, fraction, n_test):
    make_folder(tmp_path, ["a.png", "b.png", "c.png", "d.png"])
    source = folder_source(tmp_path, split_seed=0, test_fraction=fraction)
    assert (len(source.train), len(source.test)) == (4 - n_test, n_test)


def test_folder_needs_two_images_and_an_existing_root(tmp_path):
    make_folder(tmp_path, ["only.png"])
    with pytest.raises(DatasetError, match="found 1 image file"):
        folder_source(tmp_path, split_seed=0, test_fraction=0.5)
    with pytest.raises(DatasetError, match="not a directory"):
        folder_source(tmp_path / "absent", split_seed=0, test_fraction=0.5)


def test_folder_explicit_lists(tmp_path):
    root = make_folder(tmp_path / "images", ["a.png", "b.png", "sub/c.png", "unlisted.png"])
    (tmp_path / "train.txt").write_text("# training images\nsub/c.png\n\n  a.png  \n")
    (tmp_path / "test.txt").write_text("b.png\n")
    cfg = DataConfig(dataset="folder", root=str(root), train_list=str(tmp_path / "train.txt"),
                     test_list=str(tmp_path / "test.txt"))
    source = open_source(cfg)
    assert [item.id for item in source.train] == ["sub/c.png", "a.png"]
    assert [item.id for item in source.test] == ["b.png"]


def test_folder_list_naming_a_missing_file_is_an_error(tmp_path):
    root = make_folder(tmp_path / "images", ["a.png", "b.png"])
    (tmp_path / "train.txt").write_text("a.png\n")
    (tmp_path / "test.txt").write_text("b.png\nmissing/x.png\n")
    with pytest.raises(DatasetError, match=r"test\.txt: listed image missing/x\.png does not exist"):
        folder_source(root, 0, 0.1, (tmp_path / "train.txt", tmp_path / "test.txt"))


def test_folder_image_in_both_lists_is_an_error(tmp_path):
    root = make_folder(tmp_path / "images", ["a.png", "b.png"])
    (tmp_path / "train.txt").write_text("a.png\nb.png\n")
    (tmp_path / "test.txt").write_text("b.png\n")
    with pytest.raises(DatasetError, match=r"test\.txt: b\.png is already listed in .*train\.txt"):
        folder_source(root, 0, 0.1, (tmp_path / "train.txt", tmp_path / "test.txt"))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_samples_split_by_whole_photo():
    source = samples_source()
    train_groups, test_groups = {i.group for i in source.train}, {i.group for i in source.test}
    assert test_groups == set(SAMPLE_TEST_GROUPS)
    assert train_groups == {"astronaut", "grace_hopper", "motorcycle", "rocket"}
    assert {i.path.name for i in source.train if i.group == "motorcycle"} == {"motorcycle_left.png",
                                                                              "motorcycle_right.png"}
    # No file of a test photo, nor a byte-identical copy, is tiled into the train split.
    train_files, test_files = {i.path for i in source.train}, {i.path for i in source.test}
    assert not {_sha256(p) for p in train_files} & {_sha256(p) for p in test_files}


def test_samples_tiles_are_squares_inside_their_photo():
    source = samples_source()
    assert (len(source.train), len(source.test)) == (5 * 26, 2 * 26)
    for item in source.train + source.test:
        left, top, right, bottom = item.box
        width, height = oriented_size(item.path)
        assert 0 <= left < right <= width and 0 <= top < bottom <= height
        assert right - left == bottom - top >= min(width, height) // 3 - 1
    full = [i for i in source.train if i.id == "astronaut/full-r0c0"]
    assert [i.box for i in full] == [(0, 0, 512, 512)]
    assert len({i.id for i in source.train + source.test}) == 7 * 26


# ---------------------------------------------------------------------------------------
# prepare_data and its cache

def forbid_decoding(monkeypatch):
    def fail(*args):
        raise AssertionError("an image was decoded")

    monkeypatch.setattr(bench.data.build, "read_colour_image", fail)


def count_decoding(monkeypatch) -> list[Path]:
    decoded = []
    real = bench.data.build.read_colour_image

    def counting(path, *args):
        decoded.append(path)
        return real(path, *args)

    monkeypatch.setattr(bench.data.build, "read_colour_image", counting)
    return decoded


@pytest.fixture(scope="module")
def samples_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def samples_data(samples_cache):
    return prepare_data(DataConfig(image_size=32, augmentation="flip+jitter", cache_dir=str(samples_cache)))


def test_prepare_samples_shapes_and_ids(samples_data):
    assert samples_data.train.dtype == samples_data.test.dtype == torch.uint8
    assert samples_data.train.shape == (130, 3, 36, 36)  # load size round(1.117 * 32)
    assert samples_data.test.shape == (52, 3, 32, 32)
    splits = samples_data.manifest["splits"]
    assert samples_data.train_ids == [entry["id"] for entry in splits["train"]["items"]]
    assert samples_data.test_ids == [entry["id"] for entry in splits["test"]["items"]]
    assert all(i.startswith(("chelsea/", "coffee/")) for i in samples_data.test_ids)


def test_prepare_samples_no_test_file_in_train(samples_data):
    splits = samples_data.manifest["splits"]
    train_files = {entry["sha256"] for entry in splits["train"]["items"]}
    test_files = {entry["sha256"] for entry in splits["test"]["items"]}
    assert len(train_files) == 5 and len(test_files) == 2
    assert not train_files & test_files


def test_prepare_samples_resizes_the_whole_tile(samples_data):
    """The full astronaut tile is the whole 512x512 photo, bicubic-resized to the load size."""
    photo = Image.open(samples_source().train[0].path).convert("RGB")
    expected = np.asarray(photo.resize((36, 36), Image.Resampling.BICUBIC)).transpose(2, 0, 1)
    assert samples_data.train_ids[0] == "astronaut/full-r0c0"
    np.testing.assert_array_equal(samples_data.train[0].numpy(), expected)


def test_prepare_samples_second_call_reads_the_cache(samples_data, samples_cache, monkeypatch):
    forbid_decoding(monkeypatch)
    again = prepare_data(DataConfig(image_size=32, augmentation="flip+jitter", cache_dir=str(samples_cache)))
    assert torch.equal(again.train, samples_data.train) and torch.equal(again.test, samples_data.test)
    assert again.train_ids == samples_data.train_ids and again.manifest == samples_data.manifest
    cache_file = Path(again.manifest["cache_file"])
    assert cache_file.parent == samples_cache / "images" and cache_file.suffix == ".pt"
    assert list(cache_file.parent.iterdir()) == [cache_file]  # no temporary file left behind


def test_manifest_is_plain_json(samples_data):
    manifest = json.loads(json.dumps(samples_data.manifest))
    assert manifest == samples_data.manifest
    assert {"source", "root", "file_list_hash", "cache_file", "splits"} <= manifest.keys()
    assert manifest["source"] == "samples" and manifest["load_size"] == 36


@pytest.fixture
def colour_folder(tmp_path) -> Path:
    root = tmp_path / "photos"
    for i in range(6):
        write_image(root / f"img{i}.png", colour_array(40, 48, seed=i))
    return root


def folder_config(root: Path, cache: Path | None, **changes) -> DataConfig:
    return DataConfig(dataset="folder", root=str(root), cache_dir=None if cache is None else str(cache),
                      **{"image_size": 32, "augmentation": "none", "test_fraction": 0.34, **changes})


def test_prepare_folder_records_items_and_hashes(colour_folder, tmp_path):
    write_image(colour_folder / "grey.png", colour_array(40, 48)[..., 1])
    data = prepare_data(folder_config(colour_folder, tmp_path / "cache"))
    assert data.train.shape[1:] == data.test.shape[1:] == (3, 32, 32)
    assert len(data.train) + len(data.test) == 6
    splits = data.manifest["splits"]
    for entry in splits["train"]["items"] + splits["test"]["items"]:
        assert entry["sha256"] == _sha256(colour_folder / entry["id"]) and entry["box"] is None
    skipped = splits["train"]["skipped"] + splits["test"]["skipped"]
    assert skipped == [{"id": "grey.png", "reason": "greyscale: single-channel"}]
    assert data.manifest["root"] == str(colour_folder.resolve())


def test_prepare_folder_cache_follows_file_changes(colour_folder, tmp_path, monkeypatch):
    cfg = folder_config(colour_folder, tmp_path / "cache")
    cache_files = {prepare_data(cfg).manifest["cache_file"]}
    decoded = count_decoding(monkeypatch)
    assert prepare_data(cfg).manifest["cache_file"] in cache_files and decoded == []

    touched = colour_folder / "img0.png"  # same bytes, later mtime
    stat = touched.stat()
    os.utime(touched, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    cache_files.add(prepare_data(cfg).manifest["cache_file"])
    assert len(cache_files) == 2 and len(decoded) == 6

    resized = colour_folder / "img1.png"  # other bytes and size, same mtime
    stat = resized.stat()
    write_image(resized, colour_array(64, 64, seed=1))
    os.utime(resized, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert resized.stat().st_size != stat.st_size
    cache_files.add(prepare_data(cfg).manifest["cache_file"])
    assert len(cache_files) == 3 and len(decoded) == 12

    cache_files.add(prepare_data(folder_config(colour_folder, tmp_path / "cache", image_size=16)).manifest["cache_file"])
    assert len(cache_files) == 4


def test_cache_dir_defaults_to_environment_variable(colour_folder, tmp_path, monkeypatch):
    monkeypatch.setenv("COLORBENCH_CACHE", str(tmp_path / "env_cache"))
    data = prepare_data(folder_config(colour_folder, cache=None))
    assert Path(data.manifest["cache_file"]).parent == tmp_path / "env_cache" / "images"
    stored = torch.load(data.manifest["cache_file"], weights_only=True)
    assert torch.equal(stored["train"], data.train) and stored["test_ids"] == data.test_ids


def test_unreadable_cache_is_rebuilt(colour_folder, tmp_path):
    cfg = folder_config(colour_folder, tmp_path / "cache")
    first = prepare_data(cfg)
    Path(first.manifest["cache_file"]).write_bytes(b"not a torch file")
    with pytest.warns(UserWarning, match="ignoring unreadable dataset cache"):
        rebuilt = prepare_data(cfg)
    assert torch.equal(rebuilt.train, first.train)
    assert torch.equal(prepare_data(cfg).test, first.test)  # the rewritten file loads


def test_folder_with_nothing_usable_names_folder_and_counts(tmp_path):
    root = tmp_path / "unusable"
    write_image(root / "grey1.png", colour_array(40, 40)[..., 0])
    write_image(root / "grey2.png", np.stack([colour_array(40, 40)[..., 0]] * 3, -1))
    write_image(root / "tiny.png", colour_array(8, 8))
    (root / "text.jpg").write_text("hello")
    write_image(root / "grey3.png", colour_array(40, 40)[..., 2])
    (tmp_path / "train.txt").write_text("grey1.png\ngrey2.png\ntiny.png\ntext.jpg\n")
    (tmp_path / "test.txt").write_text("grey3.png\n")
    cfg = folder_config(root, tmp_path / "cache", train_list=str(tmp_path / "train.txt"),
                        test_list=str(tmp_path / "test.txt"))
    with pytest.raises(DatasetError) as error:
        prepare_data(cfg)
    assert str(error.value) == (f"no usable image for the train and test split in {root.resolve()}: "
                                "5 images listed, 5 skipped (greyscale: 3, too small: 1, unreadable: 1)")


def test_empty_test_split_is_an_error(colour_folder, tmp_path):
    write_image(colour_folder / "grey.png", colour_array(40, 48)[..., 1])
    (tmp_path / "train.txt").write_text("img0.png\nimg1.png\n")
    (tmp_path / "test.txt").write_text("grey.png\n")
    cfg = folder_config(colour_folder, tmp_path / "cache", train_list=str(tmp_path / "train.txt"),
                        test_list=str(tmp_path / "test.txt"))
    with pytest.raises(DatasetError, match=r"no usable image for the test split in .*photos: 3 images listed, 1 skipped \(greyscale: 1\)"):
        prepare_data(cfg)


# ---------------------------------------------------------------------------------------
# Augmentation

def test_load_size_follows_pix2pix():
    assert load_size(256, "flip+jitter") == 286
    assert load_size(128, "jitter") == 143
    assert load_size(64, "flip") == load_size(64, "none") == 64
    with pytest.raises(ValueError, match="allowed: none, flip, jitter, flip\\+jitter"):
        load_size(64, "rotate")


def random_batch(n: int, side: int) -> torch.Tensor:
    return torch.randint(0, 256, (n, 3, side, side), dtype=torch.uint8, generator=torch.Generator().manual_seed(7))


def test_augment_is_deterministic_given_the_generator():
    batch = random_batch(16, 36)
    torch.manual_seed(1)  # the global RNG must play no part
    first = augment(batch, "flip+jitter", 32, torch.Generator().manual_seed(3))
    torch.manual_seed(2)
    second = augment(batch, "flip+jitter", 32, torch.Generator().manual_seed(3))
    other = augment(batch, "flip+jitter", 32, torch.Generator().manual_seed(4))
    assert first.shape == (16, 3, 32, 32) and first.dtype == torch.uint8
    assert torch.equal(first, second)
    assert not torch.equal(first, other)


def test_flip_mirrors_about_half_of_the_samples():
    batch = random_batch(64, 8)
    out = augment(batch, "flip", 8, torch.Generator().manual_seed(0))
    flipped = [torch.equal(o, b.flip(-1)) for o, b in zip(out, batch)]
    assert all(f or torch.equal(o, b) for f, o, b in zip(flipped, out, batch))
    assert 16 <= sum(flipped) <= 48


def windows(image: torch.Tensor, size: int) -> list[tuple[int, int]]:
    """Every offset (top, left) of a size x size window inside ``image``."""
    return [(top, left) for top in range(image.shape[1] - size + 1) for left in range(image.shape[2] - size + 1)]


def test_jitter_crops_a_sub_window_at_varying_offsets():
    batch = random_batch(32, 12)
    out = augment(batch, "jitter", 8, torch.Generator().manual_seed(0))
    offsets = []
    for crop, image in zip(out, batch):
        found = [(t, l) for t, l in windows(image, 8) if torch.equal(crop, image[:, t:t + 8, l:l + 8])]
        assert len(found) == 1
        offsets += found
    assert len(set(offsets)) > 8


def test_flip_and_jitter_gives_flipped_or_plain_sub_windows():
    batch = random_batch(32, 12)
    out = augment(batch, "flip+jitter", 8, torch.Generator().manual_seed(0))
    kinds = []
    for crop, image in zip(out, batch):
        sub_windows = [image[:, t:t + 8, l:l + 8] for t, l in windows(image, 8)]
        plain = any(torch.equal(crop, w) for w in sub_windows)
        mirrored = any(torch.equal(crop, w.flip(-1)) for w in sub_windows)
        assert plain or mirrored
        kinds.append(mirrored)
    assert 0 < sum(kinds) < len(kinds)


def test_none_returns_the_batch_and_checks_sizes():
    batch = random_batch(4, 16)
    assert torch.equal(augment(batch, "none", 16, torch.Generator()), batch)
    with pytest.raises(ValueError, match="needs 8x8 images; got 16x16"):
        augment(batch, "flip", 8, torch.Generator())
    with pytest.raises(ValueError, match="cannot crop 32x32 out of 16x16"):
        augment(batch, "jitter", 32, torch.Generator())
    with pytest.raises(ValueError, match="uint8"):
        augment(batch.float(), "none", 16, torch.Generator())


# ---------------------------------------------------------------------------------------
# Real photographs

def test_coco128_greyscale_files_are_found():
    folder = SHARED_DATA / "coco128"
    if not folder.is_dir():
        pytest.skip(f"shared test photos not found at {folder}")
    skipped = {}
    for path in sorted(folder.iterdir()):
        result = decision(path)
        if isinstance(result, str):
            skipped[path.name] = result.split(" (")[0]
        else:
            assert result[2] == 3 and min(result[:2]) >= 32
    assert skipped == {
        "000000000086.jpg": "greyscale: single-channel",
        "000000000328.jpg": "greyscale: near-equal channels",
        "000000000359.jpg": "greyscale: near-equal channels",  # a toned black-and-white photo: grey + a tint
        "000000000542.jpg": "greyscale: near-equal channels",
        "000000000634.jpg": "greyscale: near-equal channels",
    }
