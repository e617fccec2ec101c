"""``colorbench eval``: re-scoring a run's checkpoint on its own test split or another dataset."""
import numpy as np
import pytest
import yaml
from conftest import colourful_image
from PIL import Image
from test_scoring import CountingStandIn
from test_train import tiny

from bench.cli import main
from bench.evaluation.detectors import StandInFeatures
from bench.evaluation.score_run import score_run
from bench.run import rundir
from bench.training.train import train

CHEAP = ["psnr_rgb8", "ssim_rgb8", "mse_ab_rgb8", "cf", "delta_cf", "hist_isect_lab"]


@pytest.fixture(scope="module")
def finished_run(image_folder, tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "run"
    train(tiny(image_folder), run)
    return run


def records_of(run, source):
    return [r for r in rundir.read_jsonl(run / "metrics.jsonl") if r["source"] == source]


def test_eval_reproduces_the_final_evaluation_of_training(finished_run, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    for name in ("config.yaml", "checkpoint.pt", "metrics.jsonl"):
        (run / name).write_bytes((finished_run / name).read_bytes())
    records = score_run(run, metrics=CHEAP)
    assert [r["metric"] for r in records] == CHEAP
    final = {r["metric"]: r for r in records_of(run, "train") if r["step"] == 8}
    for record in records:
        assert record["source"] == "eval" and record["step"] == 8 and record["epoch"] is None
        expected = final[record["metric"]]
        for key in ("value", "per_image", "per_channel", "cf_output", "image_ids", "dataset", "resolution"):
            assert record.get(key) == expected.get(key), (record["metric"], key)
    assert records_of(run, "eval") == records  # appended to the run's metrics.jsonl


def test_eval_scores_another_dataset_with_the_cli(finished_run, tmp_path, capsys):
    other = tmp_path / "other"
    other.mkdir()
    rng = np.random.default_rng(7)
    for i in range(8):
        Image.fromarray(colourful_image(rng, 40)).save(other / f"photo{i}.png")
    before = len(list(rundir.read_jsonl(finished_run / "metrics.jsonl")))
    assert main(["eval", str(finished_run), "--dataset", str(other), "--metrics", "psnr_rgb8, cf",
                 "--set", "data.test_fraction=0.5"]) == 0
    out = capsys.readouterr().out
    assert "step 8, folder test split: 4 images at 32x32" in out and "psnr_rgb8" in out and "cf" in out
    added = list(rundir.read_jsonl(finished_run / "metrics.jsonl"))[before:]
    # the run's records, then the grey-input baseline's on the same images (bench/evaluation/baselines.py)
    assert [(r["metric"], r["source"]) for r in added] == [("psnr_rgb8", "eval"), ("cf", "eval"),
                                                           ("psnr_rgb8", "grey_input"), ("cf", "grey_input")]
    added = added[:2]
    assert all(r["dataset"]["root"] == str(other.resolve()) and r["n_images"] == 4 for r in added)
    assert all(r["image_ids"][0].startswith("photo") for r in added)


def test_eval_records_unavailable_metrics_with_their_reason(finished_run, tmp_path, capsys):
    assert main(["eval", str(finished_run), "--metrics", "lpips_alex,kid_inception_pt",
                 "--set", f"eval.weights_dir={tmp_path}"]) == 0
    out = capsys.readouterr().out
    assert out.count("unavailable: ") == 2 and "alexnet-owt-7be5be79.pth not found" in out
    last = list(rundir.read_jsonl(finished_run / "metrics.jsonl"))[-2:]
    assert [r["value"] for r in last] == [None, None] and all(str(tmp_path) in r["unavailable"] for r in last)


def test_a_sweep_computes_the_real_image_features_once(image_folder, tmp_path):
    extractor = CountingStandIn()
    for seed in (0, 1):  # two runs of one ablation, as a sweep has them
        run = tmp_path / f"s{seed}"
        train(tiny(image_folder, f"seed={seed}", "optim.steps=1", "eval.metrics=[psnr_rgb8]",
                   f"data.cache_dir={tmp_path / 'cache'}"), run)
        extractor.images_seen = 0
        (fid,) = score_run(run, metrics=["fid_inception_pt"], stand_ins={"fid_inception": extractor})
        assert fid["detector"] == StandInFeatures.id and fid["value"] > 0
        # outputs + ground truth, then outputs only; and the grey input's FID (bench/evaluation/baselines.py) its 5 images
        assert extractor.images_seen == (15 if seed == 0 else 10)


@pytest.mark.parametrize("argv, message", [
    (["--metrics", "psnr"], "eval.metrics: unknown psnr"),
    (["--set", "generator.ngf=4"], "eval can only change data.*, eval.* and device"),
    (["--dataset", "/nonexistent/photos"], "--dataset /nonexistent/photos: not a dataset name"),
    (["--set", "data.image_size=-3"], "data.image_size: got -3"),
])
def test_bad_eval_input_exits_2(finished_run, argv, message, capsys):
    lines = (finished_run / "metrics.jsonl").read_text()
    assert main(["eval", str(finished_run), *argv]) == 2
    assert message in capsys.readouterr().err
    assert (finished_run / "metrics.jsonl").read_text() == lines


def test_eval_needs_a_run_with_a_checkpoint(finished_run, tmp_path, capsys):
    assert main(["eval", str(tmp_path)]) == 2
    assert f"{tmp_path}: not a run directory (no config.yaml)" in capsys.readouterr().err
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(yaml.safe_load((finished_run / "config.yaml").read_text())))
    assert main(["eval", str(tmp_path)]) == 2
    assert "no checkpoint.pt to score" in capsys.readouterr().err
