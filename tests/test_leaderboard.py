"""Method directories read like runs (aggregate, report) and ``colorbench leaderboard``: one table per protocol."""
import itertools
import json
import shutil

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy import stats
from test_score_predictions import save_predictions
from test_train import tiny

from bench.cli import main
from bench.data import prepare_data
from bench.evaluation.fingerprint import NOT_RECORDED, comparison_fields, list_hash
from bench.evaluation.score_predictions import score_baselines, score_predictions
from bench.report.collect import collect
from bench.report.leaderboard import leaderboard
from bench.run import rundir
from bench.training.train import train

METRICS = "eval.metrics=psnr_rgb8,ssim_rgb8,de2000_rgb8"


@pytest.fixture(scope="module")
def results(image_folder, tmp_path_factory):
    """Four runs (two settings x two seeds), the baselines, a PNG method, a JPEG method, and a method whose PSNR
    was computed under another protocol."""
    root = tmp_path_factory.mktemp("results")
    configs = {}
    for label, lam in (("a", 100), ("b", 10)):
        for seed in (0, 1):
            configs[label] = tiny(image_folder, METRICS, f"loss.lambda_rec={lam}", f"seed={seed}")
            train(configs[label], root / "study" / f"run-{label}-s{seed}")
    config = configs["a"]
    score_baselines(config, root / "study" / "baselines")
    data = prepare_data(config.data)
    shifted = [np.roll(photo, 1, axis=-1) for photo in data.test.permute(0, 2, 3, 1).numpy()]  # channels swapped
    save_predictions(root.parent / "png", data.test_ids, shifted)
    save_predictions(root.parent / "jpeg", data.test_ids, shifted, suffix=".jpg", quality=75)
    score_predictions(root.parent / "png", config, root / "methods" / "swap", name="channel swap")
    score_predictions(root.parent / "jpeg", config, root / "methods" / "swap-jpeg", name="channel swap, JPEG")
    other = root / "methods" / "other-psnr"
    shutil.copytree(root / "methods" / "swap", other)
    records = list(rundir.read_jsonl(other / "metrics.jsonl"))
    for record in records:
        if record["metric"] == "psnr_rgb8":
            record["protocol"] = {**record["protocol"], "data_range": 1.0}  # as if computed on [0, 1] images
    (other / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (other / "method.yaml").write_text((other / "method.yaml").read_text().replace(
        "name: channel swap", "name: channel swap, other PSNR").replace("run_id: method-", "run_id: method-other-"))
    return root


def test_method_directories_are_rows_like_runs(results):
    frame = collect(results).metrics
    scored = frame[frame["state"] == "scored"]
    assert set(scored["method"]) == {"grey input (a = b = 0)", "mean colour (training set, per pixel)",
                                     "channel swap", "channel swap, JPEG", "channel swap, other PSNR"}
    assert scored["seed"].isna().all() and set(scored["source"]) == {"baseline", "method"}
    baseline = scored[scored["method"] == "grey input (a = b = 0)"]
    assert baseline["run_id"].iloc[0].startswith("baseline-grey_input-") and set(baseline["ablation"]) == {
        "study/baselines"}
    assert set(scored.loc[scored["source"] == "method", "ablation"]) == {"methods"}
    assert set(scored["metric"]) == {"psnr_rgb8", "ssim_rgb8", "de2000_rgb8"}
    runs = frame[frame["state"] == "done"]
    assert runs["method"].isna().all() and set(runs["seed"]) == {0, 1}
    assert runs["config.loss.lambda_rec"].notna().all()  # runs keep all their columns
    swap = scored[scored["method"] == "channel swap, JPEG"].iloc[0]
    assert swap["fingerprint.outputs_lossy"] == "true" and swap["fingerprint.outputs_format"] == "JPEG"
    assert runs["fingerprint.outputs"].isin(["generator", "grey input"]).all()


def test_the_aggregate_command_writes_scored_rows(results, tmp_path, capsys):
    assert main(["aggregate", str(results), "--out", str(tmp_path)]) == 0
    table = pd.read_csv(tmp_path / "aggregate.csv")
    assert "4 done" in capsys.readouterr().out
    scored = table[table["state"] == "scored"]
    assert {"method", "fingerprint.test_list", "fingerprint.protocol"} <= set(table.columns) and len(scored) == 15


def test_runs_of_one_setting_are_pooled_over_seeds_with_a_t_interval(results):
    board = leaderboard(collect(results).metrics)
    entries = board.entries[board.entries["table"] == 1]
    groups = entries[(entries["kind"] == "run group") & (entries["metric"] == "psnr_rgb8")]
    assert len(groups) == 2 and set(groups["n_seeds"]) == {2}
    for label in ("a", "b"):
        values = [[r["value"] for r in rundir.read_jsonl(results / "study" / f"run-{label}-s{seed}" / "metrics.jsonl")
                   if r["source"] == "train" and r["metric"] == "psnr_rgb8"][-1] for seed in (0, 1)]
        own = np.array(values)
        run_ids = [json.loads((results / "study" / f"run-{label}-s{seed}" / "DONE").read_text())["run_id"]
                   for seed in (0, 1)]
        row = groups[groups["runs"] == " ".join(sorted(run_ids))].iloc[0]
        half = stats.t.ppf(0.975, 1) * own.std(ddof=1) / np.sqrt(2)
        assert row["mean"] == pytest.approx(own.mean()) and row["ci_low"] == pytest.approx(own.mean() - half)
        assert row["ci_high"] == pytest.approx(own.mean() + half)


def test_ranks_and_overlaps_follow_the_means_and_intervals(results):
    board = leaderboard(collect(results).metrics)
    psnr = board.entries[(board.entries["table"] == 1) & (board.entries["column"] == "psnr_rgb8")]
    ordered = psnr.sort_values("mean", ascending=False)
    assert ordered["rank"].tolist() == list(range(1, len(ordered) + 1))
    de2000 = board.entries[(board.entries["table"] == 1) & (board.entries["column"] == "de2000_rgb8")]
    means = de2000["mean"].tolist()  # lower is better; the copied method ties with its original and shares its rank
    assert de2000["rank"].tolist() == [1 + sum(m < mean for m in means) for mean in means]
    assert de2000["rank"].nunique() == len(de2000) - 1
    rows = ordered.to_dict("records")
    for row, following in itertools.pairwise(rows):
        def interval(r):
            return (r["mean"], r["mean"]) if np.isnan(r["ci_low"]) else (r["ci_low"], r["ci_high"])
        (low, high), (next_low, next_high) = interval(row), interval(following)
        assert row["overlaps_next"] == (low <= next_high and next_low <= high)
    assert pd.isna(rows[-1]["overlaps_next"])  # the last-ranked has no next
    # the grey input as the runs scored it and as its method directory holds it: one entry, one value
    grey = psnr[psnr["entry"] == "grey input (a = b = 0)"]
    assert len(grey) == 1 and grey["kind"].iloc[0] == "baseline" and np.isnan(grey["ci_low"].iloc[0])


def test_rows_of_different_protocols_are_never_ranked_together(results, tmp_path):
    board = leaderboard(collect(results).metrics)
    tables = board.tables.set_index("table")
    assert list(tables.index) == [1, 2]
    jpeg = board.entries[board.entries["entry"] == "channel swap, JPEG"]
    assert set(jpeg["table"]) == {2} and set(board.entries.loc[board.entries["table"] == 2, "entry"]) == {
        "channel swap, JPEG"}
    assert tables.loc[2, "differs"] == "outputs_lossy (true here, false in table 1)"
    assert (jpeg["rank"] == 1).all()  # first of its own table; never placed among table 1's rows
    other = board.entries[board.entries["entry"] == "channel swap, other PSNR"]
    assert set(other.loc[other["metric"] == "psnr_rgb8", "column"]) == {"psnr_rgb8 (2)"}
    assert set(other.loc[other["metric"] == "ssim_rgb8", "column"]) == {"ssim_rgb8"}
    two = board.entries[board.entries["column"] == "psnr_rgb8 (2)"]
    assert len(two) == 1 and two["rank"].iloc[0] == 1 and "protocol (" in two["column_differs"].iloc[0]
    assert main(["leaderboard", "--results", str(results), "--out", str(tmp_path)]) == 0
    md = (tmp_path / "leaderboard.md").read_text()
    assert "## Table 1: folder, test split, 32x32, 5 images" in md and "## Table 2: " in md
    assert "Differs from table 1 in: outputs_lossy (true here, false in table 1); not ranked with it." in md
    assert "Column psnr_rgb8 (2) differs in: protocol (" in md
    csv = pd.read_csv(tmp_path / "leaderboard.csv")
    assert len(csv) == len(board.entries) and set(csv["kind"]) == {"run group", "method", "baseline"}
    assert "\\toprule" in (tmp_path / "leaderboard.tex").read_text()
    assert (tmp_path / "leaderboard.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_leaderboard_of_nothing_scored_is_one_line_exit_2(results, tmp_path, capsys):
    assert main(["leaderboard", "--results", str(results), "--dataset", "coco2017", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.count("\n") == 1 and not list(tmp_path.iterdir())


def test_report_is_not_disturbed_by_scored_rows(results, tmp_path):
    plain = tmp_path / "plain"
    shutil.copytree(results / "study", plain / "study", ignore=shutil.ignore_patterns("baselines"))
    assert main(["report", "--results", str(plain), "--out", str(tmp_path / "r1"), "--resamples", "50"]) == 0
    assert main(["report", "--results", str(results), "--out", str(tmp_path / "r2"), "--resamples", "50"]) == 0
    before = pd.read_csv(tmp_path / "r1" / "study" / "table.csv")
    after = pd.read_csv(tmp_path / "r2" / "study" / "table.csv")
    variants = before["variant"].str.startswith("loss.lambda_rec") | (before["variant"] == "all runs")
    pd.testing.assert_frame_equal(before[variants].reset_index(drop=True),
                                  after[after["variant"].isin(before.loc[variants, "variant"])].reset_index(drop=True))
    assert not (tmp_path / "r2" / "methods").exists()  # a folder of method directories alone is no report


def test_older_records_read_with_what_is_certain_about_them():
    old = {"step": 8, "metric": "psnr_rgb8", "source": "train", "image_ids": ["a", "b"], "protocol": {"x": 1},
           "detector": None}
    fields = comparison_fields(old)
    assert fields["test_list"] == list_hash(["a", "b"]) and fields["outputs"] == "generator"
    assert fields["outputs_lossy"] == "false" and fields["input_luminance"] == "false"
    assert fields["detector_sha256"] == NOT_RECORDED and fields["detector"] == "none"
    oldest = comparison_fields({"step": 1, "metric": "psnr_rgb8"})
    assert oldest["test_list"] == NOT_RECORDED and oldest["protocol"] == NOT_RECORDED
    assert oldest["outputs"] == "generator"  # records without a source are a run's own
    assert comparison_fields({"step": 0, "metric": "m", "source": "method"})["outputs_lossy"] == NOT_RECORDED


def test_predictions_of_another_size_resized_are_a_protocol_of_their_own(results, image_folder, tmp_path):
    config = tiny(image_folder, METRICS)
    data = prepare_data(config.data)
    large = [np.asarray(Image.fromarray(p).resize((64, 64))) for p in data.test.permute(0, 2, 3, 1).numpy()]
    save_predictions(tmp_path / "large", data.test_ids, large)
    copy = tmp_path / "results"
    shutil.copytree(results / "methods", copy / "methods")
    score_predictions(tmp_path / "large", config, copy / "methods" / "large", resize="lanczos")
    board = leaderboard(collect(copy).metrics)
    resized = board.tables[board.tables["differs"].str.contains("outputs_resized")]
    assert len(resized) == 1 and "Pillow Lanczos" in resized["differs"].iloc[0]


def test_report_names_the_protocol_fields_in_which_compared_runs_differ(results, tmp_path):
    copy = tmp_path / "results"
    shutil.copytree(results / "study", copy / "study", ignore=shutil.ignore_patterns("baselines"))
    assert main(["report", "--results", str(copy), "--out", str(tmp_path / "same"), "--resamples", "20"]) == 0
    assert "different protocols" not in (tmp_path / "same" / "study" / "table.md").read_text()
    metrics = copy / "study" / "run-b-s1" / "metrics.jsonl"
    records = list(rundir.read_jsonl(metrics))
    for record in records:
        if record["metric"] == "psnr_rgb8":
            record["protocol"] = {**record["protocol"], "data_range": 1.0}
    metrics.write_text("".join(json.dumps(r) + "\n" for r in records))
    assert main(["report", "--results", str(copy), "--out", str(tmp_path / "other"), "--resamples", "20"]) == 0
    md = (tmp_path / "other" / "study" / "table.md").read_text()
    assert "**Warning: the runs compared here were scored under different protocols**, differing in: psnr_rgb8's " \
           "protocol (" in md
