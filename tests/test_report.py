"""`colorbench aggregate` and `colorbench report` on a results tree written by the tests (no training)."""
import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from PIL import Image
from scipy import stats as scipy_stats

from bench.cli import main
from bench.config import config_from_dict, config_to_dict
from bench.data.colour import input_rgb8
from bench.data.fingerprint import data_id
from bench.evaluation.outputs import save_sample_grid
from bench.report.analysis import analyse
from bench.report.build import report_roots
from bench.report.collect import CollectionWarning, collect
from bench.report.design import Design, DesignAxis, design_from_configs
from bench.report.figures import read_sample_grid
from bench.report.published import PublishedError, comparability, load_published
from bench.report.stats import paired_bootstrap, seed_summary, welch_interval, wilcoxon_p
from bench.run import rundir
from bench.run.identity import config_id, run_id
from bench.sweep.ablation import parse_ablation
from bench.sweep.results import AblationResults

SHARED_REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "published-numbers.md"
IMAGE_IDS = [f"img{i:02d}" for i in range(12)]
DONE_SEEDS = (0, 1, 2)
RESAMPLES = 500
ABLATION = {"name": "toy", "description": "U-Net skip connections on and off.",
            "base": {"data": {"dataset": "samples", "image_size": 64}, "generator": {"depth": 6, "ngf": 8}},
            "grid": {"generator.skip_connections": [True, False]}, "seeds": [0, 1, 2, 3, 4]}


def per_image(metric: str, skip: bool, seed: int, step: int) -> list[float]:
    """Deterministic per-image values: skip connections off costs 1 dB PSNR and 0.02 SSIM."""
    rng = np.random.default_rng([seed, int(skip), step])
    images = np.linspace(-1.0, 1.0, len(IMAGE_IDS))
    if metric == "psnr_rgb8":
        values = 20.0 - (0.0 if skip else 1.0) + 0.1 * seed + images + rng.normal(0, 0.05, len(images))
    else:
        values = 0.8 - (0.0 if skip else 0.02) + 0.005 * seed + 0.01 * images + rng.normal(0, 0.001, len(images))
    return (values - (step < 10)).tolist()  # the earlier evaluation is worse: only the latest may count


def metric_records(skip: bool, seed: int, step: int) -> list[dict]:
    common = {"split": "test", "step": step, "epoch": 0, "source": "train", "dataset": {"source": "samples"},
              "n_images": len(IMAGE_IDS), "resolution": [16, 16], "image_ids": IMAGE_IDS}
    records = [{**common, "metric": m, "value": float(np.mean(per_image(m, skip, seed, step))),
                "per_image": per_image(m, skip, seed, step)} for m in ("psnr_rgb8", "ssim_rgb8")]
    records.append({**common, "metric": "delta_cf", "value": 5.0 + (0 if skip else 2.0) + 0.1 * seed + step})
    records.append({**common, "metric": "lpips_alex", "value": None, "unavailable": "alexnet weights not found"})
    return records


def write_run(run_dir: Path, config, skip: bool, ending: str = "done") -> None:
    """A run directory as bench.training.train leaves it: evaluations at steps 5 and 10; ``ending`` done, failed or torn."""
    rundir.write_text(run_dir / "config.yaml", yaml.safe_dump(
        {"run_id": run_id(config, data_id(config)), "config_id": config_id(config, data_id(config)),
         "data_id": data_id(config), "seed": config.seed,
         "config": config_to_dict(config)}, sort_keys=False))
    last = 5 if ending != "done" else 10
    for step in range(1, last + 1):
        rundir.append_jsonl(run_dir / "stats.jsonl", {"step": step, "total_steps": 10, "epoch": 0, "lr": 2e-4,
                                                      "loss_g_rec": 1.0 / step + 0.01 * config.seed,
                                                      "loss_d_real": 0.7 - 0.01 * step})
    for step in (5, 10)[:1 if ending != "done" else 2]:
        for record in metric_records(skip, config.seed, step):
            rundir.append_jsonl(run_dir / "metrics.jsonl", record)
    if ending == "done":
        rundir.write_json(run_dir / "DONE", {"step": 10, "total_steps": 10, "state": "done"})
    elif ending == "failed":
        rundir.write_json(run_dir / "FAILED", {"step": 6, "losses": {"g_rec": "nan"}, "reason": "non-finite loss"})
    else:  # killed while writing: torn last lines
        for name in ("stats.jsonl", "metrics.jsonl"):
            with open(run_dir / name, "a") as handle:
                handle.write('{"step": 6, "metr')


def sample_images(skip: bool) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(7)
    truth = torch.from_numpy(rng.integers(0, 256, (2, 3, 16, 16), dtype=np.uint8))
    output = truth // 2 if skip else truth // 3
    return truth, output


def build_results(root: Path) -> Path:
    """results/toy: 2 variants x seeds 0-2 done, seed 3 diverged (skips on) and torn (skips off), seed 4 missing;
    results/demo: one run written by an older version and one with an unreadable config.yaml."""
    ablation = parse_ablation(ABLATION, "toy.yaml")
    folder = AblationResults(root / "toy")
    folder.write_snapshot(ablation)
    for run in ablation.runs:
        skip = run.point["generator.skip_connections"]
        if run.seed == 4:
            continue
        ending = "done" if run.seed in DONE_SEEDS else ("failed" if skip else "torn")
        write_run(folder.root / run.dir_name, run.config, skip, ending)
        if run.seed == 0:
            truth, output = sample_images(skip)
            save_sample_grid(folder.root / run.dir_name / "samples" / "step-0000010.png", truth, output)
    old = root / "demo" / "0123456789ab-s0"
    old.mkdir(parents=True)
    (old / "config.yaml").write_text(yaml.safe_dump({"run_id": "0123456789ab-s0", "config_id": "0123456789ab",
                                                     "seed": 0, "config": {"generator": {"ngf": 16}}}))
    for metric, value in (("psnr_rgb8", 18.5), ("mse_ab", 40.0)):  # no source, dataset or per-image values
        rundir.append_jsonl(old / "metrics.jsonl", {"split": "test", "step": 3, "epoch": 0, "metric": metric,
                                                    "value": value, "n_images": 4, "resolution": [32, 32]})
    rundir.write_json(old / "DONE", {"step": 3, "total_steps": 3})
    broken = root / "demo" / "broken-run"
    broken.mkdir()
    (broken / "config.yaml").write_text("config: [unclosed\n")
    return root


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    return build_results(tmp_path_factory.mktemp("results"))


def run_report(results: Path, out: Path, *targets: str) -> str:
    """``colorbench report`` into ``out``; its stderr (the collection warnings, printed once each)."""
    import contextlib
    import io
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert main(["report", *targets, "--results", str(results), "--out", str(out),
                     "--resamples", str(RESAMPLES)]) == 0
    return err.getvalue()


@pytest.fixture(scope="module")
def report(results, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("reports")
    lines = run_report(results, out).splitlines()
    assert len(lines) == 3 and all(line.startswith("colorbench: warning: ") for line in lines)
    assert "broken-run/config.yaml:2:1: " in lines[0] and lines[0].endswith("collected as broken, without its numbers")
    torn = "not a JSON record (Unterminated string starting at); a torn last line, as an interrupted write leaves"
    assert [line.rsplit("/", 1)[1] for line in lines[1:]] == [f"stats.jsonl: line 6: {torn} (skipped)",
                                                              f"metrics.jsonl: line 5: {torn} (skipped)"]
    return out


def done_values(results: Path, metric: str) -> pd.DataFrame:
    """Per run id: skip setting, seed and the final value of ``metric``, computed here from the records written."""
    rows = []
    for run in parse_ablation(ABLATION, "toy.yaml").runs:
        if run.seed in DONE_SEEDS:
            value = float(np.mean(per_image(metric, run.point["generator.skip_connections"], run.seed, 10)))
            rows.append({"skip": run.point["generator.skip_connections"], "seed": run.seed, "value": value})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------
# Collection

def test_collection_has_a_row_per_run_and_metric_with_states(results):
    with pytest.warns(CollectionWarning) as caught:
        collection = collect(results)
    frame = collection.metrics
    toy = frame[frame["ablation"] == "toy"]
    runs = toy.drop_duplicates("run_id").set_index("run_id")
    ablation = parse_ablation(ABLATION, "toy.yaml")
    assert set(runs.index) == {run.run_id for run in ablation.runs}
    for run in ablation.runs:
        expected = {0: "done", 1: "done", 2: "done", 4: "missing"}.get(
            run.seed, "diverged" if run.point["generator.skip_connections"] else "failed")
        assert runs.loc[run.run_id, "state"] == expected
        assert runs.loc[run.run_id, "is_baseline"] == run.is_baseline
        assert runs.loc[run.run_id, "axis.generator.skip_connections"] == str(run.point[
            "generator.skip_connections"]).lower()
    # 6 done + diverged + torn runs x 4 metrics, 2 missing runs with one row each
    assert len(toy) == 8 * 4 + 2
    assert (toy.groupby("run_id").size().sort_index() == pd.Series(
        {r.run_id: 1 if r.seed == 4 else 4 for r in ablation.runs}).sort_index()).all()
    done = toy[toy["state"] == "done"]
    assert set(done["step"]) == {10} and set(toy.loc[toy["state"].isin(["diverged", "failed"]), "step"]) == {5}
    psnr = done[done["metric"] == "psnr_rgb8"].set_index("seed")
    expected = done_values(results, "psnr_rgb8")
    for _, row in expected.iterrows():
        got = psnr[psnr["config.generator.skip_connections"] == row["skip"]].loc[row["seed"], "value"]
        assert got == pytest.approx(row["value"], abs=1e-12)
    assert done["config.generator.ngf"].eq(8).all() and done["config.data.image_size"].eq(64).all()
    lpips = done[done["metric"] == "lpips_alex"]
    assert lpips["value"].isna().all() and set(lpips["unavailable"]) == {"alexnet weights not found"}
    assert all(ids == IMAGE_IDS for ids in done.loc[done["metric"] == "psnr_rgb8", "image_ids"])

    demo = frame[frame["ablation"] == "demo"].set_index("metric", drop=False)
    assert set(demo["run_id"]) == {"0123456789ab-s0", "broken-run"}
    old = demo[demo["run_id"] == "0123456789ab-s0"]
    assert old.loc["psnr_rgb8", "value"] == 18.5 and old.loc["mse_ab", "state"] == "done"
    assert old.loc["psnr_rgb8", "dataset"] is None or pd.isna(old.loc["psnr_rgb8", "dataset"])
    assert demo.loc[demo["run_id"] == "broken-run", "state"].item() == "broken"  # as colorbench status says

    messages = [str(w.message) for w in caught]
    torn = next(run for run in ablation.runs if run.seed == 3 and not run.point["generator.skip_connections"])
    for name in ("stats.jsonl", "metrics.jsonl"):
        assert f"{results / 'toy' / torn.dir_name / name}: line " in "\n".join(messages)
    assert any(str(results / "demo" / "broken-run" / "config.yaml") in m for m in messages)


def test_curves_hold_losses_and_metrics_per_step(results):
    with pytest.warns(CollectionWarning):
        curves = collect(results).curves
    run = next(r for r in parse_ablation(ABLATION, "toy.yaml").runs if r.seed == 1 and r.is_baseline)
    mine = curves[curves["run_id"] == run.run_id]
    losses = mine[mine["series"] == "loss_g_rec"].sort_values("step")
    assert list(losses["step"]) == list(range(1, 11))
    assert losses["value"].tolist() == pytest.approx([1.0 / s + 0.01 for s in range(1, 11)])
    psnr = mine[mine["series"] == "test/psnr_rgb8"].set_index("step")["value"]
    assert psnr.to_dict() == pytest.approx({s: float(np.mean(per_image("psnr_rgb8", True, 1, s))) for s in (5, 10)})


def test_a_later_record_of_the_same_evaluation_replaces_the_earlier(tmp_path):
    run_dir = tmp_path / "group" / "run"
    config = config_from_dict({"seed": 0})
    write_run(run_dir, config, skip=True)
    rescored = {**metric_records(True, 0, 10)[0], "value": 99.0, "source": "eval"}
    rundir.append_jsonl(run_dir / "metrics.jsonl", rescored)
    frame = collect(tmp_path).metrics
    row = frame[frame["metric"] == "psnr_rgb8"].iloc[0]
    assert row["value"] == 99.0 and row["source"] == "eval" and row["ablation"] == "group"


def test_collect_refuses_a_missing_folder(tmp_path, capsys):
    assert main(["aggregate", str(tmp_path / "nothing")]) == 2
    assert "nothing: no such results folder" in capsys.readouterr().err


def test_aggregate_writes_parquet_and_csv(results, tmp_path, capsys):
    assert main(["aggregate", str(results), "--out", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert "12 runs in 2 groups (1 broken, 1 diverged, 7 done, 1 failed, 2 missing)" in out
    assert "colorbench: warning:" in err and "stats.jsonl: line 6: " in err
    with pytest.warns(CollectionWarning):
        expected = collect(results).metrics
    parquet = pd.read_parquet(tmp_path / "aggregate.parquet")
    csv = pd.read_csv(tmp_path / "aggregate.csv")
    assert len(parquet) == len(csv) == len(expected)
    assert "per_image" in parquet.columns and "per_image" not in csv.columns
    assert csv["value"].fillna(-1).tolist() == pytest.approx(expected["value"].fillna(-1).tolist(), abs=0)
    assert list(parquet["per_image"].dropna().iloc[0]) == expected["per_image"].dropna().iloc[0]
    curves = pd.read_csv(tmp_path / "curves.csv")
    assert set(curves["series"]) >= {"loss_g_rec", "loss_d_real", "test/psnr_rgb8"}


# ---------------------------------------------------------------------------------------
# Statistics

def test_seed_summary_is_the_student_t_interval():
    values = [20.1, 20.6, 19.8, 20.3]
    summary = seed_summary(values)
    low, high = scipy_stats.t.interval(0.95, 3, loc=np.mean(values), scale=scipy_stats.sem(values))
    assert (summary.n, summary.mean, summary.std) == (4, pytest.approx(20.2), pytest.approx(np.std(values, ddof=1)))
    assert (summary.ci_low, summary.ci_high) == (pytest.approx(low), pytest.approx(high))
    one = seed_summary([3.0])
    assert one.mean == 3.0 and math.isnan(one.std) and math.isnan(one.ci_low)
    with pytest.raises(ValueError, match="non-empty 1-d"):
        seed_summary([])


def test_welch_interval_matches_scipy():
    a, b = [1.0, 1.4, 0.9, 1.2], [0.5, 0.7, 0.2]
    interval = scipy_stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    difference = welch_interval(a, b)
    assert difference.value == pytest.approx(np.mean(a) - np.mean(b))
    assert (difference.ci_low, difference.ci_high) == (pytest.approx(interval.low), pytest.approx(interval.high))
    assert difference.excludes_zero
    assert math.isnan(welch_interval([1.0], [0.0, 1.0]).ci_low)


def test_paired_bootstrap_removes_the_image_variance_it_pairs():
    rng = np.random.default_rng(0)
    baseline = rng.normal(20, 3, size=(1, 200))  # images differ a lot
    shifted = paired_bootstrap(baseline + 0.25, baseline)
    assert (shifted.value, shifted.ci_low, shifted.ci_high) == pytest.approx((0.25, 0.25, 0.25))
    assert shifted.excludes_zero


def test_paired_bootstrap_with_one_seed_is_the_percentile_bootstrap_over_images():
    rng = np.random.default_rng(1)
    baseline = rng.normal(0, 1, size=(1, 60))
    variant = baseline + rng.normal(0.2, 0.5, size=(1, 60))
    difference = paired_bootstrap(variant, baseline, n_resamples=20_000)
    d = (variant - baseline)[0]
    reference = np.random.default_rng(9).choice(d, size=(20_000, len(d))).mean(axis=1)
    assert difference.value == pytest.approx(d.mean())
    assert difference.ci_low == pytest.approx(np.quantile(reference, 0.025), abs=0.01)
    assert difference.ci_high == pytest.approx(np.quantile(reference, 0.975), abs=0.01)
    assert paired_bootstrap(variant, baseline, n_resamples=500, seed=3) == \
        paired_bootstrap(variant, baseline, n_resamples=500, seed=3)
    assert paired_bootstrap(variant, baseline, n_resamples=500, seed=3) != \
        paired_bootstrap(variant, baseline, n_resamples=500, seed=4)


def test_paired_bootstrap_widens_with_the_spread_of_seeds():
    rng = np.random.default_rng(2)
    images = rng.normal(0, 1, size=60)
    baseline = np.stack([images, images])
    steady = paired_bootstrap(np.stack([images + 0.5, images + 0.5]), baseline)
    spread = paired_bootstrap(np.stack([images + 0.0, images + 1.0]), baseline)  # same mean, seeds disagree
    assert steady.value == pytest.approx(spread.value) == pytest.approx(0.5)
    assert steady.ci_high - steady.ci_low == pytest.approx(0.0)
    assert spread.ci_high - spread.ci_low > 0.5


def test_wilcoxon_is_scipys_on_the_differences_of_seed_means():
    rng = np.random.default_rng(3)
    variant, baseline = rng.normal(0.3, 1, size=(2, 30)), rng.normal(0, 1, size=(3, 30))
    expected = scipy_stats.wilcoxon(variant.mean(axis=0) - baseline.mean(axis=0)).pvalue
    assert wilcoxon_p(variant, baseline) == pytest.approx(expected)
    assert math.isnan(wilcoxon_p(baseline, baseline))


@pytest.mark.parametrize("variant, baseline, message", [
    (np.zeros((2, 5)), np.zeros((2, 6)), "needs the same images"),
    (np.zeros(5), np.zeros((2, 5)), "expected \\(seeds, images\\)"),
    (np.zeros((0, 5)), np.zeros((2, 5)), "expected \\(seeds, images\\)"),
])
def test_paired_bootstrap_rejects_unpaired_input(variant, baseline, message):
    with pytest.raises(ValueError, match=message):
        paired_bootstrap(variant, baseline)


# ---------------------------------------------------------------------------------------
# Analysis: nuisance axes

def nuisance_frame(with_validation: bool) -> pd.DataFrame:
    """skip x lr (nuisance) x 2 seeds: on validation lr 0.001 wins for skips on and 0.0002 for off; on test the
    reverse."""
    rows = []
    for skip in ("true", "false"):
        for lr in ("0.001", "0.0002"):
            for seed in (0, 1):
                val_best = (skip == "true") == (lr == "0.001")
                run = f"{skip}-{lr}-s{seed}"
                for split, value in (("val", 21.0 if val_best else 20.0), ("test", 19.0 if val_best else 22.0)):
                    if split == "val" and not with_validation:
                        continue
                    rows.append({"ablation": "tune", "run_id": run, "run_dir": run, "seed": seed, "state": "done",
                                 "last_step": 10, "total_steps": 10, "split": split, "dataset": "samples",
                                 "metric": "psnr_rgb8", "value": value + 0.1 * seed, "unavailable": None,
                                 "n_images": 4, "resolution": "16x16", "image_ids": None, "per_image": None,
                                 "axis.skip": skip, "axis.lr": lr})
    return pd.DataFrame(rows)


TUNE = Design("tune", "", (DesignAxis("skip", "axis.skip", "scientific", ("true", "false")),
                           DesignAxis("lr", "axis.lr", "nuisance", ("0.001", "0.0002"))),
              {"skip": "true", "lr": "0.001"})


def test_nuisance_settings_are_chosen_on_the_validation_split():
    analysis = analyse(nuisance_frame(with_validation=True), TUNE, n_resamples=RESAMPLES)
    assert analysis.selection_split == "val"
    assert analysis.choices.set_index("variant")["setting"].to_dict() == {"skip=true": "lr=0.001",
                                                                          "skip=false": "lr=0.0002"}
    summary = analysis.summary.set_index("variant")
    assert summary.loc["skip=true", "mean"] == pytest.approx(19.05)  # test split of the chosen setting
    assert summary.loc["skip=false", "mean"] == pytest.approx(19.05)
    assert set(analysis.summary["split"]) == {"test"}
    comparison = analysis.comparisons.iloc[0]
    assert comparison["variant"] == "skip=false" and comparison["difference"] == pytest.approx(0.0)
    assert comparison["method"].startswith("Welch t over seeds")


def test_measured_keeps_every_nuisance_setting_for_rows_that_name_their_own():
    analysis = analyse(nuisance_frame(with_validation=True), TUNE, n_resamples=RESAMPLES)
    assert sorted(analysis.reported["run_id"]) == ["false-0.0002-s0", "false-0.0002-s1", "true-0.001-s0",
                                                   "true-0.001-s1"]  # the kept lr of each variant
    measured = analysis.measured.set_index("run_id")["value"]
    assert set(analysis.measured["split"]) == {"test"} and len(measured) == 8
    assert measured["true-0.0002-s1"] == pytest.approx(22.1)  # a setting not kept, on the test split


def test_without_a_validation_split_the_test_split_chooses_and_the_report_says_so(tmp_path):
    from bench.report.tables import markdown
    analysis = analyse(nuisance_frame(with_validation=False), TUNE, n_resamples=RESAMPLES)
    assert analysis.selection_split == "test"
    assert analysis.choices.set_index("variant")["setting"].to_dict() == {"skip=true": "lr=0.0002",
                                                                          "skip=false": "lr=0.001"}
    text = markdown(analysis, [], [])
    assert "on the test split (no validation split was recorded" in text
    assert "| skip=true | lr=0.0002 | 22.05 |" in text


def test_runs_without_an_ablation_file_vary_by_their_differing_config_fields():
    frame = pd.DataFrame([
        {"run_id": "a-s0", "config_id": "a", "config.generator.ngf": 32, "config.eval.every_epochs": 5},
        {"run_id": "a-s1", "config_id": "a", "config.generator.ngf": 32, "config.eval.every_epochs": 10},
        {"run_id": "b-s0", "config_id": "b", "config.generator.ngf": 8, "config.eval.every_epochs": 5}])
    design = design_from_configs("runs", frame)
    assert [(a.name, a.column, a.labels) for a in design.axes] == [("generator.ngf", "config.generator.ngf",
                                                                    ("8", "32"))]
    assert design.baseline is None
    assert design_from_configs("runs", frame[frame["config_id"] == "a"]).axes == ()


# ---------------------------------------------------------------------------------------
# Reports

def test_table_values_equal_the_dataframe(results, report):
    table = pd.read_csv(report / "toy" / "table.csv")
    for metric in ("psnr_rgb8", "ssim_rgb8"):
        expected = done_values(results, metric).groupby("skip")["value"]
        rows = table[table["metric"] == metric].set_index("variant")
        for skip, label in ((True, "generator.skip_connections=true"), (False, "generator.skip_connections=false")):
            assert rows.loc[label, "mean"] == pytest.approx(expected.mean()[skip], abs=1e-12)
            assert rows.loc[label, "std"] == pytest.approx(expected.std()[skip], abs=1e-12)
            assert rows.loc[label, "n_seeds"] == 3 and rows.loc[label, "seeds"] == "0 1 2"
    psnr = table[table["metric"] == "psnr_rgb8"].set_index("variant")
    off = psnr.loc["generator.skip_connections=false"]
    means = done_values(results, "psnr_rgb8").groupby("skip")["value"].mean()
    assert off["difference"] == pytest.approx(means[False] - means[True], abs=1e-12)
    assert off["difference_ci_high"] < 0 and off["excludes_zero"]
    assert off["method"].startswith("paired bootstrap over 12 images")
    assert psnr.loc["generator.skip_connections=true", "is_baseline"]
    assert math.isnan(psnr.loc["generator.skip_connections=true", "difference"])
    delta_cf = table[table["metric"] == "delta_cf"].set_index("variant").loc["generator.skip_connections=false"]
    assert delta_cf["method"].startswith("Welch t over seeds") and delta_cf["difference"] == pytest.approx(2.0)
    assert "lpips_alex" not in set(table["metric"])

    md = (report / "toy" / "table.md").read_text()
    mean, std = means[True], done_values(results, "psnr_rgb8").groupby("skip")["value"].std()[True]
    assert f"| generator.skip_connections=true **(baseline)** | 0 1 2 | {mean:.2f} ± {std:.2f} [" in md
    assert f"| generator.skip_connections=false | psnr_rgb8 ↑ | {means[False] - means[True]:+.2f} | [" in md
    assert "- `lpips_alex`: alexnet weights not found" in md
    assert "| diverged |" in md and "| failed |" in md and "| missing |" in md
    tex = (report / "toy" / "table.tex").read_text()
    assert "\\toprule" in tex and "\\midrule" in tex and "\\bottomrule" in tex
    assert f"generator.skip\\_connections=false & 3 & {means[False]:.2f} $\\pm$" in tex and "$^*$" in tex


def test_the_index_names_each_report_with_its_finding(report, results):
    index = (report / "README.md").read_text()
    means = done_values(results, "psnr_rgb8").groupby("skip")["value"].mean()
    assert "| [toy](toy/table.md) | 10 (6 done) | best `psnr_rgb8`: generator.skip_connections=true, " \
           f"{means[True]:.2f}" in index
    effect = means[False] - means[True]
    assert f"(the baseline); next best generator.skip_connections=false differs by {effect:+.2f} [" in index
    assert "interval excludes 0" in index
    assert "| [demo](demo/table.md) | 2 (1 done) |" in index
    assert (report / "published.md").exists()
    summary = json.loads((report / "toy" / "summary.json").read_text())
    assert summary["finding"] in index and summary["figures"] == ["metrics.png", "curves.png", "learning-curves.png",
                                                                  "qualitative.png", "histograms.png"]


def test_figures_are_valid_pngs_of_sane_size(report):
    for name in ("metrics.png", "curves.png", "qualitative.png", "histograms.png"):
        with Image.open(report / "toy" / name) as image:
            image.verify()
        with Image.open(report / "toy" / name) as image:
            assert image.format == "PNG" and 300 <= image.width <= 3000 and 200 <= image.height <= 3000
            assert "Software" not in image.info
            assert len(np.unique(np.asarray(image.convert("L")))) > 10  # something is drawn
    # The demo group: the older run has no samples grid, so no qualitative figure and no histograms.
    assert (report / "demo" / "metrics.png").exists() and not (report / "demo" / "qualitative.png").exists()


def test_sample_grids_read_back_as_written(tmp_path):
    truth, output = sample_images(skip=True)
    save_sample_grid(tmp_path / "grid.png", truth, output)
    shown, outputs, truths = read_sample_grid(tmp_path / "grid.png")
    assert np.array_equal(truths, truth.permute(0, 2, 3, 1).numpy())
    assert np.array_equal(outputs, output.permute(0, 2, 3, 1).numpy())
    assert np.array_equal(shown, input_rgb8(truth, "lab").permute(0, 2, 3, 1).numpy())  # the grey input


def test_regeneration_is_byte_stable(results, report, tmp_path):
    def files(folder: Path) -> dict[str, bytes]:
        return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
    run_report(results, tmp_path / "again")
    assert files(tmp_path / "again") == files(report)


def test_report_of_one_ablation_named_by_its_file_its_folder_or_its_name(results, tmp_path, capsys):
    ablation_file = tmp_path / "toy.yaml"
    ablation_file.write_text(yaml.safe_dump(ABLATION))
    assert report_roots([str(ablation_file), "toy", str(results / "toy")], results) == [results / "toy"] * 3
    run_report(results, tmp_path / "out", str(ablation_file))
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["README.md", "published.md", "toy"]
    assert f"toy: {tmp_path / 'out' / 'toy' / 'table.md'}" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["report", "nothing-here"], "nothing-here: not an ablation file, a results folder, or a folder of"),
    (["report", "toy", "--select-by", "fid_inception_pt"], "--select-by fid_inception_pt: no run of toy recorded it"),
])
def test_report_bad_input_exits_2(results, tmp_path, capsys, argv, message):
    assert main([*argv, "--results", str(results), "--out", str(tmp_path / "out")]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("command", [["aggregate"], ["report"]])
def test_help(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([*command, "--help"])
    assert exit_.value.code == 0 and "usage: colorbench" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------
# Published numbers

def published_value(table_id: str, method: str, column: str):
    table = next(t for t in load_published() if t.id == table_id)
    index = [m["name"] for m in table.metrics].index(column)
    return next(r for r in table.rows if r["method"] == method)["values"][index]


def test_published_numbers_of_the_seeds_and_papers():
    assert published_value("seed-000", "pix2pix U-Net + PatchGAN, L1 + cGAN", "SSIM") == 0.81
    assert published_value("seed-000", "pix2pix U-Net + PatchGAN, L1 + cGAN", "PSNR (dB)") == 27.4
    assert published_value("seed-001", "U-Net, 30 epochs, LR decay 1e-3 -> 1/20", "MSE of ab") == 5.7691
    assert published_value("seed-002-table-1", "pix2pix (their implementation)", "G parameters") == 54_413_952
    assert published_value("pix2pix-table-1", "L1+cGAN", "FCN per-pixel acc.") == 0.66
    assert published_value("pix2pix-table-2", "U-Net (L1)", "FCN class IoU") == 0.13
    assert published_value("pix2pix-table-3", "16x16", "FCN per-class acc.") == 0.21
    assert published_value("pix2pix-table-5", "pix2pix L1+cGAN", "% labelled real") == 22.5
    assert published_value("pix2pix-figure-7", "L1+cGAN", "a") == 0.84
    assert published_value("ddcolor-table-1-imagenet-val5k", "DDColor-L (227.9M)", "FID") == 3.92
    assert published_value("ddcolor-table-1-coco-stuff", "BigColor (105.2M)", "CF") is None
    for table in load_published():
        assert table.citation and table.where and isinstance(table.protocol, dict)


@pytest.mark.skipif(not SHARED_REFERENCE.exists(), reason=f"{SHARED_REFERENCE} is absent")
def test_every_published_number_appears_in_the_reference_notes_or_seed_reports():
    sources = [SHARED_REFERENCE, *sorted((SHARED_REFERENCE.parents[1] / "seeds").glob("*.txt"))]
    text = " ".join(path.read_text() for path in sources).replace(",", "")
    numbers = {float(n) for n in re.findall(r"\d+(?:\.\d+)?", text)}
    for table in load_published():
        for row in table.rows:
            for value in row["values"]:
                assert value is None or float(value) in numbers, (table.id, row["method"], value)


def test_comparability_says_yes_partly_or_no_with_reasons():
    tables = {t.id: t for t in load_published()}
    seed_000 = tables["seed-000"]
    ssim = seed_000.metrics[0]
    same_data = comparability(seed_000, ssim, "coco2017", "128x128", 1000)
    assert same_data.verdict == "partly" and "SSIM implementation" in same_data.describe()
    other = comparability(seed_000, ssim, "samples", "64x64", 52)
    assert other.verdict == "no"
    assert other.reasons == ("dataset coco2017 vs ours samples", "resolution 128x128 vs ours 64x64",
                             "1000 test images vs ours 52")
    ddcolor = tables["ddcolor-table-1-imagenet-val5k"]
    cf = next(m for m in ddcolor.metrics if m["name"] == "CF")
    assert comparability(ddcolor, cf, "imagenet val5k", "256x256", 5000).describe() == \
        "partly: resolution not stated"
    fid = next(m for m in ddcolor.metrics if m["name"] == "FID")
    assert comparability(ddcolor, fid, "imagenet val5k", "256x256", 5000).verdict == "no"


@pytest.mark.parametrize("change, message", [
    (lambda d: d["tables"][0].pop("protocol"), "table seed-000: missing protocol"),
    (lambda d: d["tables"][0].update(source="nobody"), "source 'nobody' is not one of sources"),
    (lambda d: d["tables"][0]["rows"][0].update(values=[0.81]), "expected 2 values"),
    (lambda d: d["tables"][0]["metrics"][0].update(metric_protocol="maybe"), "metric_protocol 'maybe'"),
])
def test_a_malformed_published_file_is_refused(tmp_path, change, message):
    from bench.report.published import PUBLISHED_FILE
    data = yaml.safe_load(PUBLISHED_FILE.read_text())
    change(data)
    path = tmp_path / "published.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(PublishedError, match=re.escape(message)):
        load_published(path)


def test_an_unreadable_ablation_file_leaves_its_runs_collected_and_reported(tmp_path, capsys):
    folder = tmp_path / "results" / "broken"
    write_run(folder / "run-a", config_from_dict({"seed": 0}), skip=True)
    (folder / "ablation.yaml").write_text("name: [unclosed\n")
    with pytest.warns(CollectionWarning, match=re.escape(f"{folder / 'ablation.yaml'}: cannot be read")):
        frame = collect(tmp_path / "results").metrics
    assert set(frame["ablation"]) == {"broken"} and set(frame["state"]) == {"done"}
    assert main(["report", "--results", str(tmp_path / "results"), "--out", str(tmp_path / "out"),
                 "--resamples", "50"]) == 0
    assert "ablation.yaml: cannot be read" in capsys.readouterr().err
    config = config_from_dict({"seed": 0})
    run = run_id(config, data_id(config))
    table = (tmp_path / "out" / "broken" / "table.md").read_text()
    assert f"| {run} | 0 | done | 10/10 | all runs | `broken/run-a` |" in table


def test_the_report_follows_each_variant_along_its_learning_curve(report, results):
    """The toy runs are evaluated after every epoch: table.md gives each variant's seed mean at every evaluation."""
    table = (report / "toy" / "table.md").read_text()
    section = table.split("## Learning curves", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| generator.skip_connections=")]
    psnr = [line for line in rows if "`psnr_rgb8`" in line]
    assert len(psnr) == 2  # one per variant
    means = done_values(results, "psnr_rgb8").groupby("skip")["value"].mean()  # the last evaluation's seed means
    assert any(f"| {means[True]:.2f} |" in line for line in psnr if "=true" in line)
