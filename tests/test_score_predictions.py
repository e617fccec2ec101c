"""``colorbench score``: external predictions and trivial baselines scored into method directories.

Expected values come from independent computations: PSNR and L1 in numpy, SSIM with scikit-image,
ΔE00 with the formulas written out in ``test_de2000``, JPEG decoding and resizing with Pillow, CIELAB
with scikit-image.
"""
import json
import shutil
import struct
import zlib

import numpy as np
import pytest
import torch
import yaml
from conftest import SHARED_DATA, colourful_image
from PIL import Image
from skimage.color import lab2rgb, rgb2lab
from skimage.metrics import structural_similarity
from test_de2000 import ROUNDED, ciede2000, srgb8_to_lab
from test_train import tiny

from bench.cli import main
from bench.config import ConfigError
from bench.config.names import BASELINE_NAMES, RESIZER_NAMES
from bench.data import prepare_data
from bench.evaluation import baselines, predictions
from bench.evaluation.fingerprint import comparison_fields
from bench.evaluation.method_dir import METHOD_FILE, read_method
from bench.evaluation.outputs import evaluation_outputs
from bench.evaluation.score_predictions import protocol_config, score_baselines, score_predictions
from bench.models import build_generator
from bench.run import rundir
from bench.run.checkpoint import load_checkpoint
from bench.training.train import train

PIXEL = ["psnr_rgb8", "ssim_rgb8", "l1_rgb8", "de2000_rgb8"]
SIZE = 64


# ---------------------------------------------------------------------------------------
# Independent computations

def psnr(pred: np.ndarray, target: np.ndarray) -> float:
    mse = np.mean((pred.astype(np.float64) - target.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0 ** 2 / mse))


def expected_values(preds: list[np.ndarray], targets: list[np.ndarray]) -> dict[str, list[float]]:
    """Per-image PSNR, SSIM, L1 and ΔE00 of (H, W, 3) uint8 pairs, computed without the code under test."""
    return {
        "psnr_rgb8": [psnr(p, t) for p, t in zip(preds, targets)],
        "ssim_rgb8": [structural_similarity(p, t, channel_axis=-1, gaussian_weights=True, sigma=1.5,
                                            use_sample_covariance=False, data_range=255) for p, t in zip(preds, targets)],
        "l1_rgb8": [float(np.abs(p.astype(float) - t).mean()) for p, t in zip(preds, targets)],
        "de2000_rgb8": [float(ciede2000(srgb8_to_lab(p, ROUNDED), srgb8_to_lab(t, ROUNDED)).mean())
                        for p, t in zip(preds, targets)],
    }


def hue_rotated(photo: np.ndarray, degrees: float) -> np.ndarray:
    """The photo with its CIELAB (a, b) rotated by ``degrees`` (same L and chroma), as 8-bit sRGB."""
    lab = rgb2lab(photo)
    angle = np.radians(degrees)
    a, b = lab[..., 1].copy(), lab[..., 2].copy()
    lab[..., 1], lab[..., 2] = a * np.cos(angle) - b * np.sin(angle), a * np.sin(angle) + b * np.cos(angle)
    return np.clip(np.round(lab2rgb(lab) * 255), 0, 255).astype(np.uint8)


def with_luminance(pred: np.ndarray, photo: np.ndarray) -> np.ndarray:
    lab = rgb2lab(pred)
    lab[..., 0] = rgb2lab(photo)[..., 0]
    return np.clip(np.round(lab2rgb(lab) * 255), 0, 255).astype(np.uint8)


def assert_records_match(records: list[dict], expected: dict[str, list[float]], rel: float = 1e-6) -> None:
    by_metric = {r["metric"]: r for r in records}
    for metric, values in expected.items():
        assert by_metric[metric]["per_image"] == pytest.approx(values, rel=rel, abs=1e-9), metric
        assert by_metric[metric]["value"] == pytest.approx(np.mean(values), rel=rel, abs=1e-9), metric


# ---------------------------------------------------------------------------------------
# Fixtures

@pytest.fixture(scope="module")
def real_folder(tmp_path_factory):
    """Eight real photographs as a folder dataset (four test items at 64x64)."""
    source = SHARED_DATA / "imagenet300"
    if not source.is_dir():
        pytest.skip(f"real photos not available: {source} is absent")
    folder = tmp_path_factory.mktemp("photos")
    for path in sorted(source.glob("*.JPEG"))[:8]:
        shutil.copy(path, folder / path.name)
    return folder


@pytest.fixture(scope="module")
def real_protocol(real_folder):
    config = protocol_config(None, str(real_folder), PIXEL, [f"data.image_size={SIZE}", "data.test_fraction=0.5"])
    data = prepare_data(config.data)
    return config, data


def save_predictions(folder, ids, images, suffix=".png", **options):
    folder.mkdir(parents=True, exist_ok=True)
    for test_id, image in zip(ids, images):
        path = folder / (test_id.rsplit(".", 1)[0] + suffix)
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(path, **options)


def photos_of(data) -> list[np.ndarray]:
    return list(data.test.permute(0, 2, 3, 1).numpy())


# ---------------------------------------------------------------------------------------
# Known transforms of real ground-truth photos

def test_identity_predictions_score_perfectly_with_psnr_inf(real_protocol, tmp_path):
    config, data = real_protocol
    photos = photos_of(data)
    save_predictions(tmp_path / "identity", data.test_ids, photos)
    scored = score_predictions(tmp_path / "identity", config, tmp_path / "out")
    by_metric = {r["metric"]: r for r in scored.records}
    assert by_metric["psnr_rgb8"]["per_image"] == [float("inf")] * 4  # documented: identical images give inf
    assert by_metric["ssim_rgb8"]["per_image"] == pytest.approx([1.0] * 4, abs=1e-12)
    assert by_metric["l1_rgb8"]["value"] == 0.0 and by_metric["de2000_rgb8"]["value"] == 0.0
    assert all(r["source"] == "method" and r["image_ids"] == data.test_ids for r in scored.records)


def test_hue_rotation_scores_equal_an_independent_computation(real_protocol, tmp_path):
    config, data = real_protocol
    photos = photos_of(data)
    rotated = [hue_rotated(photo, 60) for photo in photos]
    save_predictions(tmp_path / "hue", data.test_ids, rotated)
    scored = score_predictions(tmp_path / "hue", config, tmp_path / "out")
    assert_records_match(scored.records, expected_values(rotated, photos))
    # the input's luminance put back first, as many papers evaluate
    kept = score_predictions(tmp_path / "hue", config, tmp_path / "kept", keep_input_luminance=True)
    assert_records_match(kept.records, expected_values([with_luminance(r, p) for r, p in zip(rotated, photos)],
                                                       photos), rel=2e-3)
    assert kept.records[0]["fingerprint"]["input_luminance"] is True
    assert read_method(tmp_path / "kept")["protocol"]["keep_input_luminance"] is True


def test_jpeg_predictions_score_equal_an_independent_computation_and_are_marked_lossy(real_protocol, tmp_path):
    config, data = real_protocol
    photos = photos_of(data)
    save_predictions(tmp_path / "jpeg", data.test_ids, photos, suffix=".jpg", quality=75)
    decoded = [np.asarray(Image.open(tmp_path / "jpeg" / (i.rsplit(".", 1)[0] + ".jpg")).convert("RGB"))
               for i in data.test_ids]
    scored = score_predictions(tmp_path / "jpeg", config, tmp_path / "out", name="jpeg q75")
    assert_records_match(scored.records, expected_values(decoded, photos))
    fingerprint = scored.records[0]["fingerprint"]
    assert fingerprint["outputs_format"] == "JPEG" and fingerprint["outputs_lossy"] is True
    method = read_method(tmp_path / "out")
    assert method["name"] == "jpeg q75" and method["predictions"]["formats"] == ["JPEG"]
    files = method["predictions"]["files"]
    assert sorted(files) == sorted(i.rsplit(".", 1)[0] + ".jpg" for i in data.test_ids)
    import hashlib
    assert all(hashlib.sha256((tmp_path / "jpeg" / f).read_bytes()).hexdigest() == h for f, h in files.items())


def test_resized_predictions_name_their_resizer(real_protocol, tmp_path):
    config, data = real_protocol
    photos = photos_of(data)
    large = [np.asarray(Image.fromarray(p).resize((2 * SIZE, 2 * SIZE), Image.Resampling.BICUBIC)) for p in photos]
    save_predictions(tmp_path / "large", data.test_ids, large)
    back = [np.asarray(Image.fromarray(p).resize((SIZE, SIZE), Image.Resampling.BICUBIC)) for p in large]
    scored = score_predictions(tmp_path / "large", config, tmp_path / "out", resize="bicubic")
    assert_records_match(scored.records, expected_values(back, photos))
    assert scored.records[0]["fingerprint"]["outputs_resized"] == predictions.RESIZERS["bicubic"][1]
    assert read_method(tmp_path / "out")["predictions"]["resized"] == 4


# ---------------------------------------------------------------------------------------
# Runs and baselines

METRICS = "eval.metrics=psnr_rgb8,ssim_rgb8,l1_rgb8,de2000_rgb8,cf,delta_cf"


@pytest.fixture(scope="module")
def finished_run(image_folder, tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "run"
    train(tiny(image_folder, METRICS), run)
    return run


def records_of(run, source, step=None):
    return [r for r in rundir.read_jsonl(run / "metrics.jsonl")
            if r["source"] == source and (step is None or r["step"] == step)]


def test_a_trained_runs_outputs_scored_through_score_equal_its_own_records(finished_run, tmp_path, capsys):
    config = protocol_config(finished_run / "config.yaml")
    data = prepare_data(config.data)
    state = load_checkpoint(finished_run / "checkpoint.pt")
    generator = build_generator(config.generator, config.in_channels, config.out_channels)
    generator.load_state_dict(state["generator"])
    outputs = evaluation_outputs(generator, data.network_images("test", config.data.task), config,
                                 torch.device("cpu"), state["step"])
    save_predictions(tmp_path / "outputs", data.test_ids, list(outputs.permute(0, 2, 3, 1).numpy()))
    out = tmp_path / "results" / "methods" / "mine"
    assert main(["score", str(tmp_path / "outputs"), "--config", str(finished_run / "config.yaml"),
                 "--name", "my colouriser", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "my colouriser: folder test split, 5 images at 32x32" in printed and str(out) in printed
    own = {r["metric"]: r for r in records_of(finished_run, "train", step=8)}
    scored = list(rundir.read_jsonl(out / "metrics.jsonl"))
    assert [r["metric"] for r in scored] == list(config.eval.metrics)
    for record in scored:
        for key in ("value", "per_image", "image_ids", "dataset", "resolution", "n_images", "protocol", "detector"):
            assert record.get(key) == own[record["metric"]].get(key), (record["metric"], key)
        assert record["source"] == "method" and record["step"] == 0
    assert (out / "DONE").is_file() and read_method(out)["kind"] == "predictions"


def test_score_baseline_grey_input_equals_the_runs_grey_input_records(finished_run, tmp_path):
    out = tmp_path / "grey"
    assert main(["score", "--baseline", "grey_input", "--config", str(finished_run / "config.yaml"),
                 "--out", str(out)]) == 0
    run_grey = {r["metric"]: r for r in records_of(finished_run, "grey_input")}
    scored = list(rundir.read_jsonl(out / "metrics.jsonl"))
    assert sorted(r["metric"] for r in scored) == sorted(run_grey)
    for record in scored:
        grey = run_grey[record["metric"]]
        assert record.get("per_image") == grey.get("per_image") and record["value"] == grey["value"], record["metric"]
        assert record["image_ids"] == grey["image_ids"] and record["source"] == "baseline"
        assert comparison_fields(record)["test_list"] == comparison_fields(grey)["test_list"]
    method = read_method(out)
    assert method["name"] == "grey input (a = b = 0)" and method["kind"] == "baseline"
    assert method["run_id"] == f"baseline-grey_input-{method['protocol']['data_id']}"
    assert method["run_id"].split("-")[-1] == yaml.safe_load((finished_run / "config.yaml").read_text())[
        "run_id"].split("-")[1]  # the run's own data id


def test_mean_colour_is_the_training_sets_mean_ab_per_pixel(image_folder):
    config = tiny(image_folder)  # flip+jitter: training images stored at 36x36, resized to 32 for the mean
    data = prepare_data(config.data)
    train_photos = data.train.permute(0, 2, 3, 1).numpy()
    assert train_photos.shape[1] == 36
    resized = np.stack([np.stack([np.asarray(Image.fromarray(photo[..., c]).convert("F").resize(
        (32, 32), Image.Resampling.BILINEAR)) for c in range(3)], -1) for photo in train_photos]) / 255.0
    mean_ab = np.mean([rgb2lab(np.clip(photo, 0, 1))[..., 1:] for photo in resized], axis=0)
    expected = []
    for photo in data.test.permute(0, 2, 3, 1).numpy():
        lab = np.concatenate([rgb2lab(photo)[..., :1], mean_ab], axis=-1)
        expected.append(np.clip(np.round(lab2rgb(lab) * 255), 0, 255).astype(np.uint8))
    ours = baselines.mean_colour(data.test, data.train).permute(0, 2, 3, 1).numpy()
    difference = np.abs(ours.astype(int) - np.stack(expected))
    assert difference.max() <= 1 and (difference > 0).mean() < 0.01  # float32 resizing against float64: rounding
    assert ours.shape == (5, 32, 32, 3)


def test_mean_photo_and_label_map_baselines_of_the_paired_task(tmp_path):
    photos = tmp_path / "pairs"
    rng = np.random.default_rng(3)
    for split in ("train", "test"):
        (photos / split).mkdir(parents=True)
        for i in range(4):
            Image.fromarray(np.concatenate([colourful_image(rng, 40), colourful_image(rng, 40)], axis=1)).save(
                photos / split / f"{i}.png")
    config = protocol_config(None, "facades", ["psnr_rgb8"], [f"data.root={photos}", "data.task=paired",
                                                             "colour_space=rgb", "data.image_size=32",
                                                             "data.augmentation=none"])
    data = prepare_data(config.data)
    labels = baselines.label_map(data.network_images("test", "paired"))
    assert torch.equal(labels, data.test_inputs)
    mean = baselines.mean_photo(4, 32, data.train)
    expected = np.round(data.train.double().mean(dim=0).numpy()).astype(np.uint8)
    assert (mean == torch.from_numpy(expected)).all() and mean.shape == (4, 3, 32, 32)
    folders = score_baselines(config, tmp_path / "baselines")
    assert [f.name for f in folders] == ["label_map", "mean_photo"]
    record = next(iter(rundir.read_jsonl(folders[1] / "metrics.jsonl")))
    targets = data.test.permute(0, 2, 3, 1).numpy()
    assert record["per_image"] == pytest.approx([psnr(expected.transpose(1, 2, 0), t) for t in targets], rel=1e-6)
    with pytest.raises(ConfigError, match="--keep-input-luminance: only for colourisation; data.task is paired"):
        score_predictions(tmp_path, config, tmp_path / "kept", keep_input_luminance=True)
    assert not (tmp_path / "kept").exists()


def test_score_baselines_keeps_what_is_scored_and_rescores_on_another_protocol(image_folder, tmp_path):
    config = tiny(image_folder, "eval.metrics=psnr_rgb8")
    folders = score_baselines(config, tmp_path / "b")
    assert [f.name for f in folders] == ["grey_input", "mean_colour"]
    written = {f: (f / METHOD_FILE).stat().st_mtime_ns for f in folders}
    assert score_baselines(config, tmp_path / "b") == folders
    assert {f: (f / METHOD_FILE).stat().st_mtime_ns for f in folders} == written  # kept as they were
    score_baselines(config, tmp_path / "b", metrics=("psnr_rgb8", "l1_rgb8"))  # a metric more: scored again
    assert [r["metric"] for r in rundir.read_jsonl(folders[0] / "metrics.jsonl")] == ["psnr_rgb8", "l1_rgb8"]
    other = tiny(image_folder, "eval.metrics=psnr_rgb8", "data.test_fraction=0.5")
    score_baselines(other, tmp_path / "b")  # other test images: replaced
    assert read_method(folders[0])["protocol"]["n_images"] == 10
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == ["grey_input", "mean_colour"]  # no leftovers


def test_the_command_line_lists_the_baselines_and_resizers_the_modules_define():
    assert tuple(baselines.BASELINES) == BASELINE_NAMES and tuple(predictions.RESIZERS) == RESIZER_NAMES


# ---------------------------------------------------------------------------------------
# Matching

def test_flat_predictions_match_nested_ids_by_their_last_part_and_allow_missing_counts(tmp_path):
    ids = ["val/a.jpg", "val/b.jpg", "val/c.jpg"]
    image = np.full((8, 8, 3), 90, np.uint8)
    flat = tmp_path / "flat"
    flat.mkdir()
    for name in ("a.png", "b.png", "z.png"):
        Image.fromarray(image).save(flat / name)
    with pytest.raises(predictions.PredictionError, match="1 of 3 test items have no prediction: val/c.jpg; 1 files "
                                                          "predict no test item: z"):
        predictions.read_predictions(flat, ids, 8)
    found = predictions.read_predictions(flat, ids, 8, allow_missing=True)
    assert found.ids == ["val/a.jpg", "val/b.jpg"] and found.indices == [0, 1]
    assert found.missing == ["val/c.jpg"] and found.extra == ["z"] and sorted(found.files) == ["a.png", "b.png"]
    nested = tmp_path / "nested"
    for name in ("val/a.png", "val/b.png", "val/c.png", ".hidden/x.png"):
        (nested / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(nested / name)
    (nested / "notes.txt").write_text("ignored")
    assert predictions.read_predictions(nested, ids, 8).ids == ids
    with pytest.raises(predictions.PredictionError, match="shared by several test items"):
        predictions.read_predictions(flat, ["x/a.jpg", "y/a.jpg", "x/b.jpg"], 8, allow_missing=True)


# ---------------------------------------------------------------------------------------
# Bad input: one line, exit 2, nothing written

def sixteen_bit_png(path, height=32, width=32):
    """A 16-bit-per-channel RGB PNG, written by hand (Pillow cannot write one)."""
    rows = np.random.default_rng(0).integers(0, 65535, (height, width, 3)).astype(">u2")
    raw = b"".join(b"\x00" + row.tobytes() for row in rows)

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def break_predictions(folder, ids, case):
    """A folder of the right predictions, then one thing wrong with it."""
    rng = np.random.default_rng(1)
    images = [colourful_image(rng, 32) for _ in ids]
    save_predictions(folder, ids, images)
    first = folder / (ids[0].rsplit(".", 1)[0] + ".png")
    if case == "missing":
        first.unlink()
    elif case == "extra":
        Image.fromarray(images[0]).save(folder / "stranger.png")
    elif case == "duplicate":
        Image.fromarray(images[0]).save(first.with_suffix(".jpg"))
    elif case == "size":
        Image.fromarray(images[0]).resize((40, 40)).save(first)
    elif case == "greyscale":
        Image.fromarray(images[0]).convert("L").save(first)
    elif case == "sixteen_bit":
        sixteen_bit_png(first)
    elif case == "truncated":
        first.write_bytes(first.read_bytes()[: len(first.read_bytes()) // 2])
    elif case == "transparent":
        Image.fromarray(np.dstack([images[0], np.full((32, 32), 100, np.uint8)])).save(first)


BAD = {
    "missing": "1 of 5 test items have no prediction",
    "extra": "1 files predict no test item: stranger",
    "duplicate": "1 ids have more than one file",
    "size": "1 predictions are not 32x32, the evaluation resolution",
    "greyscale": "single-channel (L), a greyscale image",
    "sixteen_bit": "16 bits per channel",
    "truncated": "unreadable",
    "transparent": "transparent pixels",
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_predictions_are_one_line_exit_2_and_nothing_written(case, finished_run, tmp_path, capsys):
    config = protocol_config(finished_run / "config.yaml")
    ids = prepare_data(config.data).test_ids
    break_predictions(tmp_path / "preds", ids, case)
    results = tmp_path / "results"
    results.mkdir()
    code = main(["score", str(tmp_path / "preds"), "--config", str(finished_run / "config.yaml"),
                 "--results", str(results)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("colorbench: error: ") and BAD[case] in err, err
    assert list(results.iterdir()) == []


@pytest.mark.parametrize("argv, message", [
    (["--baseline", "label_map"], "--baseline label_map: a baseline of the paired task; data.task is colourise"),
    (["--baseline", "grey_input", "--resize", "bicubic"], "score --baseline: --resize apply to predictions only"),
    ([], "score: give a folder of predictions or --baseline KEY"),
    (["PREDS", "--split", "val"], "invalid choice: 'val'"),
])
def test_bad_score_options_are_one_line_exit_2(argv, message, finished_run, tmp_path, capsys):
    argv = [str(tmp_path) if a == "PREDS" else a for a in argv]
    results = tmp_path / "results"
    try:
        code = main(["score", *argv, "--config", str(finished_run / "config.yaml"), "--results", str(results)])
    except SystemExit as exit_:  # argparse's own refusals
        code = exit_.code
    err = capsys.readouterr().err
    assert code == 2 and message in err, err
    assert not results.exists()


def test_an_out_folder_that_is_no_method_directory_is_refused(finished_run, tmp_path, capsys):
    out = tmp_path / "notes"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    assert main(["score", "--baseline", "grey_input", "--config", str(finished_run / "config.yaml"),
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err == f"colorbench: error: {out}: exists and is not a method directory; choose another --out or remove it\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes"] and [p.name for p in out.iterdir()] == ["mine.txt"]


def test_an_interrupted_write_leaves_the_old_method_directory_whole(image_folder, tmp_path, monkeypatch):
    config = tiny(image_folder, "eval.metrics=psnr_rgb8")
    folder = score_baselines(config, tmp_path)[0]
    before = (folder / "metrics.jsonl").read_bytes()

    def failing(*args, **kwargs):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(rundir, "write_json", failing)  # DONE cannot be written
    with pytest.raises(OSError):
        score_baselines(config, tmp_path, metrics=("psnr_rgb8", "l1_rgb8"))
    assert (folder / "metrics.jsonl").read_bytes() == before and (folder / "DONE").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grey_input", "mean_colour"]
    assert json.loads((folder / "DONE").read_text()) == {"records": 1}
