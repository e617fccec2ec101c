"""The grey-input baseline: each run scores the greyscale input (a = b = 0) on its test images, reports show it."""
import numpy as np
import pandas as pd
import pytest
from skimage.color import lab2rgb, rgb2lab
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from test_train import tiny

from bench.cli import main
from bench.data import prepare_data
from bench.evaluation.baselines import (
    GREY_INPUT_LABEL,
    GREY_INPUT_SOURCE,
    NOT_APPLICABLE,
    NOT_RECORDED,
    grey_input_values,
)
from bench.evaluation.score_run import score_run
from bench.report.analysis import analyse
from bench.report.collect import collect
from bench.report.design import design_from_configs
from bench.report.published import load_published
from bench.report.tables import decimals, markdown, number
from bench.run import rundir
from bench.training.train import train

METRICS = "eval.metrics=psnr_rgb8,ssim_rgb8,l1_rgb8,mse_ab_rgb8"


def grey_of(photo: np.ndarray) -> np.ndarray:
    """The photo's L channel with a = b = 0, back to 8-bit sRGB, computed with scikit-image."""
    lab = rgb2lab(photo)
    lab[..., 1:] = 0.0
    return np.clip(np.round(lab2rgb(lab) * 255.0), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def two_runs(image_folder, tmp_path_factory):
    """Two finished tiny runs (seeds 0 and 1) of the same test images, in one results folder."""
    root = tmp_path_factory.mktemp("results") / "grey"
    configs = [tiny(image_folder, METRICS, f"seed={seed}") for seed in (0, 1)]
    for config in configs:
        train(config, root / f"run-s{config.seed}")
    return root, configs


def grey_records(run_dir):
    return [r for r in rundir.read_jsonl(run_dir / "metrics.jsonl") if r["source"] == GREY_INPUT_SOURCE]


def test_grey_input_records_equal_metrics_computed_from_the_test_images(two_runs):
    root, configs = two_runs
    data = prepare_data(configs[0].data)
    photos = data.test.permute(0, 2, 3, 1).numpy()
    greys = [grey_of(photo) for photo in photos]
    records = {r["metric"]: r for r in grey_records(root / "run-s0")}
    assert sorted(records) == ["l1_rgb8", "mse_ab_rgb8", "psnr_rgb8", "ssim_rgb8"]
    first = records["psnr_rgb8"]
    # once per run, at the first evaluation (step 4 of 8), on the run's own test images
    assert first["step"] == 4 and first["split"] == "test" and first["image_ids"] == data.test_ids
    psnr = [peak_signal_noise_ratio(photo, grey, data_range=255) for photo, grey in zip(photos, greys)]
    ssim = [structural_similarity(photo, grey, channel_axis=-1, gaussian_weights=True, sigma=1.5,
                                  use_sample_covariance=False, data_range=255) for photo, grey in zip(photos, greys)]
    l1 = [np.abs(photo.astype(float) - grey).mean() for photo, grey in zip(photos, greys)]
    assert records["psnr_rgb8"]["per_image"] == pytest.approx(psnr, rel=1e-5)
    assert records["psnr_rgb8"]["value"] == pytest.approx(np.mean(psnr), rel=1e-5)
    assert records["ssim_rgb8"]["value"] == pytest.approx(np.mean(ssim), rel=1e-5)
    assert records["l1_rgb8"]["value"] == pytest.approx(np.mean(l1), rel=1e-5)
    ab = [np.square(rgb2lab(photo)[..., 1:] - rgb2lab(grey)[..., 1:]).mean() for photo, grey in zip(photos, greys)]
    assert records["mse_ab_rgb8"]["value"] == pytest.approx(np.mean(ab), rel=1e-5)
    # the same images give the same baseline in every run; the run's own records are apart from it
    assert [r["value"] for r in grey_records(root / "run-s1")] == [r["value"] for r in grey_records(root / "run-s0")]
    assert grey_input_values(root / "run-s0")["psnr_rgb8"] == records["psnr_rgb8"]["value"]
    done = rundir.read_json(root / "run-s0" / "DONE")
    own = [r for r in rundir.read_jsonl(root / "run-s0" / "metrics.jsonl") if r["source"] == "train"]
    assert done["metrics"]["psnr_rgb8"] == own[-4]["value"] != records["psnr_rgb8"]["value"]


def test_reports_show_the_grey_input_row_apart_from_the_runs(two_runs, tmp_path):
    root, _ = two_runs
    value = {r["metric"]: r["value"] for r in grey_records(root / "run-s0")}
    collection = collect(root)
    grey = collection.metrics[collection.metrics["source"] == GREY_INPUT_SOURCE]
    assert len(grey) == 8 and set(grey["step"]) == {4}  # 2 runs x 4 metrics
    assert not collection.curves["value"].isin(list(value.values())).any()  # never a point of a run's curve
    assert main(["report", str(root), "--out", str(tmp_path), "--resamples", "50"]) == 0
    md = (tmp_path / "grey" / "table.md").read_text()
    table = pd.read_csv(tmp_path / "grey" / "table.csv")
    means = table[table["variant"] != GREY_INPUT_LABEL].set_index("metric")["mean"]
    metrics = ["psnr_rgb8", "ssim_rgb8", "l1_rgb8", "mse_ab_rgb8"]  # the registry's order, as the table's columns
    cells = [number(value[m], decimals([means[m]])) for m in metrics]  # the decimals of the runs' column
    assert f"| {GREY_INPUT_LABEL} | – | " + " | ".join(cells) + " |" in md.splitlines()
    assert "scored on the same 5 test images, same metrics; recorded by each run, identical in every run." in md
    rows = table[table["variant"] == GREY_INPUT_LABEL].set_index("metric")
    assert rows.loc["psnr_rgb8", "mean"] == pytest.approx(value["psnr_rgb8"]) and rows.loc["psnr_rgb8", "n_seeds"] == 2
    variant = table[table["variant"] != GREY_INPUT_LABEL].set_index("metric")
    assert variant.loc["psnr_rgb8", "n_seeds"] == 2 and variant.loc["psnr_rgb8", "mean"] != value["psnr_rgb8"]
    assert "grey input ($a = b = 0$) & -- & " in (tmp_path / "grey" / "table.tex").read_text()


def test_runs_without_grey_records_say_so(two_runs, tmp_path):
    root, _ = two_runs
    old = tmp_path / "results" / "old"
    for name in ("run-s0", "run-s1"):
        for file in ("config.yaml", "stats.jsonl", "DONE"):
            (old / name).mkdir(parents=True, exist_ok=True)
            (old / name / file).write_bytes((root / name / file).read_bytes())
        for record in rundir.read_jsonl(root / name / "metrics.jsonl"):
            if record["source"] != GREY_INPUT_SOURCE:
                rundir.append_jsonl(old / name / "metrics.jsonl", record)
    assert main(["report", str(old), "--out", str(tmp_path / "reports"), "--resamples", "50"]) == 0
    md = (tmp_path / "reports" / "old" / "table.md").read_text()
    assert f"| {GREY_INPUT_LABEL} | – | {NOT_RECORDED} | – | – | – |" in md
    assert NOT_APPLICABLE not in md
    # The same runs had they been labels -> photo runs (a valid paired config would be another run id): there is no
    # grey input to score, and the report says so instead of "not recorded".
    frame = collect(old).metrics.assign(**{"config.data.task": "paired"})
    analysis = analyse(frame, design_from_configs("old", frame), n_resamples=50)
    md = markdown(analysis, load_published(), [], None)
    assert f"| {GREY_INPUT_LABEL} | – | {NOT_APPLICABLE} | – | – | – |" in md and NOT_RECORDED not in md


def test_eval_records_the_grey_input_of_another_dataset_once(two_runs, image_folder, tmp_path):
    root, _ = two_runs
    run = tmp_path / "run"
    run.mkdir()
    for name in ("config.yaml", "checkpoint.pt", "metrics.jsonl"):
        (run / name).write_bytes((root / "run-s0" / name).read_bytes())
    before = grey_records(run)
    score_run(run, metrics=["psnr_rgb8", "cf"])  # cf is new: its grey-input record is added, psnr's is there
    added = grey_records(run)[len(before):]
    assert [(r["metric"], r["step"], r["epoch"]) for r in added] == [("cf", 8, None)]
    score_run(run, metrics=["psnr_rgb8", "cf"])
    assert len(grey_records(run)) == len(before) + 1
    score_run(run, metrics=["psnr_rgb8"], overrides=["data.test_fraction=0.5"])  # other test images: scored again
    assert [r["n_images"] for r in grey_records(run)[len(before) + 1:]] == [10]
