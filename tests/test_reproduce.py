"""Reproduction: rows select the right runs, every verdict follows from the per-seed numbers by a rule derived
here independently (scipy's t-tests), the trivial baselines gate comparisons, bad blocks are named."""
from __future__ import annotations

import types

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bench.report.analysis import BASELINE_COLUMNS, BATCH_COLUMN, CURVE_COLUMNS, WIDTH_COLUMN
from bench.report.published import load_published
from bench.report.stats import seeds_for_difference, seeds_for_equivalence
from bench.reproduce.overview import budget_scale
from bench.reproduce.render import reproduction_markdown
from bench.reproduce.study import StudyError, parse_study
from bench.reproduce.verdicts import BELOW_BASELINE, CONTRADICTED, INCONCLUSIVE, NOT_TESTABLE, SUPPORTED, reproduce
from bench.sweep.ablation import parse_ablation

ARMS = {"L1": {"loss.adversarial": "none", "discriminator.arch": "none", "discriminator.conditional": True},
        "L1+GAN": {"loss.adversarial": "bce", "discriminator.arch": "patchgan", "discriminator.conditional": False},
        "L1+cGAN": {"loss.adversarial": "bce", "discriminator.arch": "patchgan", "discriminator.conditional": True}}
SEEDS = [0, 1, 2]
QUOTED = {"source": "pix2pix-v3", "where": "Sec. 4.2", "quote": "L1 alone leads to reasonable but blurry results.",
          "operationalisation": "a toy test"}


def _claim(claim_id: str, **spec) -> dict:
    return {"id": claim_id, "claim": claim_id, **QUOTED, **spec}


def _ablation(reproduce_block: dict):
    zip_group = {key: [arm[key] for arm in ARMS.values()] for key in ARMS["L1"]}
    return parse_ablation({"name": "toy", "base": {"data": {"dataset": "samples", "image_size": 64},
                                                   "generator": {"depth": 6}},
                           "grid": {"loss": {"zip": zip_group}}, "seeds": SEEDS, "reproduce": reproduce_block},
                          "toy.yaml")


BLOCK = {
    "title": "Table 1 on toys", "published": "pix2pix-table-1", "metrics": ["psnr_rgb8", "delta_cf"],
    "rows": [{"method": "L1", "point": {"discriminator.arch": "none"}},
             {"method": "L1+GAN", "point": {"discriminator.conditional": False}},
             {"method": "L1+cGAN", "point": {"discriminator.conditional": True, "loss.adversarial": "bce"}},
             {"method": "ground truth"}],
    "rank": {"published": "FCN per-pixel acc.", "ours": "psnr_rgb8"},
    "claims": [_claim("cgan-beats-l1", better=["L1+cGAN", "L1"], metric="psnr_rgb8"),
               _claim("l1-beats-cgan", better=["L1", "L1+cGAN"], metric="psnr_rgb8"),
               _claim("gan-beats-cgan", better=["L1+GAN", "L1+cGAN"], metric="psnr_rgb8"),
               _claim("cgan-is-best", best="L1+cGAN", metric="psnr_rgb8"),
               _claim("gan-is-best", best="L1+GAN", metric="psnr_rgb8"),
               _claim("gan-similar-to-cgan", similar=["L1+GAN", "L1+cGAN"], metric="psnr_rgb8", margin=0.5,
                      margin_why="toy"),
               _claim("cgan-similar-to-l1", similar=["L1+cGAN", "L1"], metric="psnr_rgb8", margin=0.5,
                      margin_why="toy"),
               _claim("lower-delta-cf", better=["L1+cGAN", "L1"], metric="delta_cf"),
               _claim("fcn", not_testable={"class": "protocol", "reason": "needs Cityscapes"})],
}
# Per-image PSNR of 5 test images per seed: L1+cGAN is L1 + 1 dB plus a per-seed offset; L1+GAN equals L1+cGAN but
# for a per-seed wobble of a few hundredths of a dB (an unresolved difference, well inside a 0.5 dB margin).
BASE = np.array([[20.0, 21.0, 19.5, 22.0, 20.5], [20.2, 21.3, 19.0, 22.4, 20.1], [19.8, 21.1, 19.9, 21.7, 20.6]])
CGAN_OFFSET = np.array([0.9, 1.2, 1.0])[:, None]
GAN_WOBBLE = np.array([0.03, -0.02, 0.04])[:, None]
PSNR = {"L1": BASE, "L1+cGAN": BASE + CGAN_OFFSET, "L1+GAN": BASE + CGAN_OFFSET + GAN_WOBBLE}
DELTA_CF = {"L1": [5.0, 5.2, 4.9], "L1+cGAN": [2.0, 2.1, 1.9], "L1+GAN": [3.0, 3.1, 2.9]}  # lower is better


def _analysis(ablation, study, steps=None) -> types.SimpleNamespace:
    rows = []
    for row in study.rows:
        for run_id in row.run_ids:
            seed = int(run_id.rsplit("-s", 1)[1])
            common = {"run_id": run_id, "seed": seed, "dataset": "samples", "split": "test", "source": "train",
                      "resolution": "64x64", "n_images": 5}
            rows.append({**common, "metric": "psnr_rgb8", "value": float(PSNR[row.method][seed].mean()),
                         "image_ids": [f"img{i}" for i in range(5)], "per_image": list(PSNR[row.method][seed])})
            rows.append({**common, "metric": "delta_cf", "value": DELTA_CF[row.method][seed], "image_ids": None,
                         "per_image": None})
    run_ids = [run.run_id for run in ablation.runs]
    total = [(steps or {}).get(run_id, 100) for run_id in run_ids]
    runs = pd.DataFrame({"run_id": run_ids, "state": "done", "data_problem": None, "total_steps": total})
    return types.SimpleNamespace(measured=pd.DataFrame(rows), runs=runs, unavailable={},
                                 baselines=pd.DataFrame(columns=BASELINE_COLUMNS),
                                 curves=pd.DataFrame(columns=CURVE_COLUMNS))


def _verdicts(block=BLOCK, **analysis_changes):
    ablation = _ablation(block)
    study = parse_study(ablation, load_published())
    analysis = _analysis(ablation, study)
    for key, value in analysis_changes.items():
        setattr(analysis, key, value)
    result = reproduce(study, analysis, n_resamples=2000, seed=0)
    return result, {v.claim.id: v for v in result.verdicts}


def _per_seed(method: str) -> np.ndarray:
    return PSNR[method].mean(axis=1)


def test_better_is_judged_on_the_seeds_paired_t_interval():
    _, verdicts = _verdicts()
    expected = stats.ttest_rel(_per_seed("L1+cGAN"), _per_seed("L1"))  # seeds as the unit, paired by seed
    low, high = expected.confidence_interval(0.95)
    (comparison,) = verdicts["cgan-beats-l1"].comparisons
    assert (comparison.seeds.value, comparison.seeds.ci_low, comparison.seeds.ci_high) == pytest.approx(
        (CGAN_OFFSET.mean(), low, high))
    assert comparison.seeds.p_value == pytest.approx(expected.pvalue) and comparison.seeds.paired
    assert low > 0 and verdicts["cgan-beats-l1"].verdict == SUPPORTED
    assert verdicts["l1-beats-cgan"].verdict == CONTRADICTED  # the same interval, on the other side
    # the image bootstrap is shown beside it, never decides
    assert "paired bootstrap over 5 images" in comparison.bootstrap["method"]


def test_an_unresolved_difference_is_inconclusive_with_the_seeds_it_would_need():
    _, verdicts = _verdicts()
    gan = verdicts["gan-beats-cgan"]
    differences = (GAN_WOBBLE[:, 0])
    assert stats.ttest_1samp(differences, 0).pvalue > 0.05
    assert gan.verdict == INCONCLUSIVE and gan.raw == INCONCLUSIVE
    (comparison,) = gan.comparisons
    sd = comparison.seeds.sd
    assert sd == pytest.approx(differences.std(ddof=1))
    assert comparison.seeds_needed_observed == seeds_for_difference(sd, differences.mean()) == 32
    assert comparison.seeds_needed_smallest == seeds_for_difference(sd, 0.5)  # psnr's smallest effect of interest
    assert "seeds needed for 80% power" in gan.detail


def test_power_matches_published_tables():
    """Cohen's (1988) tables for a two-sided paired t-test at alpha 0.05 and power 0.8: d = 1 needs 10 pairs,
    d = 0.5 needs 34; a two-sample test at d = 1 needs 17 per group."""
    assert seeds_for_difference(sd=1.0, effect=1.0) == 10
    assert seeds_for_difference(sd=2.0, effect=1.0) == 34
    assert seeds_for_difference(sd=1.0, effect=1.0, paired=False) == 17
    assert seeds_for_difference(sd=1.0, effect=0.0) == float("inf")
    # TOST, normal approximation (Chow, Shao & Wang 2008): n = (z_0.95 + z_0.9)^2 sd^2 / margin^2 at a zero difference
    assert seeds_for_equivalence(sd=1.0, margin=1.0, true_difference=0.0) == np.ceil((1.6449 + 1.2816) ** 2)
    assert seeds_for_equivalence(sd=1.0, margin=1.0, true_difference=1.0) == float("inf")


def test_similar_is_an_equivalence_test_against_the_declared_margin():
    _, verdicts = _verdicts()
    # GAN vs cGAN: per-seed differences of a few hundredths; the 90% interval lies inside +-0.5
    low90, high90 = stats.ttest_1samp(GAN_WOBBLE[:, 0], 0).confidence_interval(0.90)
    assert -0.5 < low90 and high90 < 0.5 and verdicts["gan-similar-to-cgan"].verdict == SUPPORTED
    # cGAN vs L1 differ by about 1 dB: the 95% interval lies wholly beyond the margin
    low95, _ = stats.ttest_rel(_per_seed("L1+cGAN"), _per_seed("L1")).confidence_interval(0.95)
    assert low95 > 0.5 and verdicts["cgan-similar-to-l1"].verdict == CONTRADICTED


def test_best_needs_every_other_row_beaten():
    _, verdicts = _verdicts()
    assert verdicts["cgan-is-best"].verdict == INCONCLUSIVE  # beats L1, ties L1+GAN
    assert verdicts["gan-is-best"].verdict == INCONCLUSIVE
    assert len(verdicts["cgan-is-best"].comparisons) == 2


def test_set_metrics_are_judged_over_seeds_too():
    _, verdicts = _verdicts()
    delta = verdicts["lower-delta-cf"]
    expected = stats.ttest_rel(DELTA_CF["L1+cGAN"], DELTA_CF["L1"])
    assert delta.comparisons[0].seeds.p_value == pytest.approx(expected.pvalue)
    assert delta.verdict == SUPPORTED and "lower is better" in delta.detail  # lower delta_cf is better


def test_rows_below_the_trivial_baseline_make_a_comparison_inconclusive():
    baselines = pd.DataFrame([
        {"dataset": "samples", "split": "test", "baseline": "grey input (a = b = 0)", "metric": "psnr_rgb8",
         "value": 21.0, "n_images": 5, "resolution": "64x64"},
        {"dataset": "samples", "split": "test", "baseline": "mean colour (training set, per pixel)",
         "metric": "psnr_rgb8", "value": 20.6, "n_images": 5, "resolution": "64x64"}])
    result, verdicts = _verdicts(baselines=baselines)
    cgan = verdicts["cgan-beats-l1"]  # L1 (20.6) is below the grey input's 21.0, the best baseline on PSNR
    assert cgan.raw == SUPPORTED and cgan.verdict == INCONCLUSIVE
    assert cgan.gate.startswith(f"{BELOW_BASELINE}: L1 ") and "grey input (a = b = 0) 21" in cgan.gate
    assert "L1+cGAN" not in cgan.gate  # 21.6 [21.3, 21.9] beats it
    assert verdicts["lower-delta-cf"].gate is None  # no baseline recorded delta_cf: nothing to gate with
    text = reproduction_markdown(result, "cpu")
    assert "| *grey input (a = b = 0)* | – | – | – | 21.00 | – | trivial baseline, the same 5 test images |" in text
    assert "| *mean colour (training set, per pixel)* | – | – | – | 20.60 | – |" in text


def test_a_verdict_is_followed_along_the_learning_curve():
    """Each evaluation the runs share is judged like the last: here L1+cGAN is level with L1 at the first (their
    curves start together) and 1 dB ahead from the second on, so the final verdict holds from 50% of the budget."""
    ablation = _ablation(BLOCK)
    study = parse_study(ablation, load_published())
    analysis = _analysis(ablation, study)
    points = []
    for row in study.rows[:3]:
        for run_id in row.run_ids:
            seed = int(run_id.rsplit("-s", 1)[1])
            final = float(PSNR[row.method][seed].mean())
            early = float(BASE[seed].mean()) + 0.001 * seed  # every arm alike at the first evaluation
            points += [{"run_id": run_id, "seed": seed, "step": 25, "metric": "psnr_rgb8", "value": early},
                       {"run_id": run_id, "seed": seed, "step": 50, "metric": "psnr_rgb8", "value": final},
                       {"run_id": run_id, "seed": seed, "step": 100, "metric": "psnr_rgb8", "value": final}]
    analysis.curves = pd.DataFrame(points)
    verdicts = {v.claim.id: v for v in reproduce(study, analysis, n_resamples=200, seed=0).verdicts}
    cgan = verdicts["cgan-beats-l1"]
    assert cgan.trajectory == ((25, 0.25, INCONCLUSIVE), (50, 0.5, SUPPORTED), (100, 1.0, SUPPORTED))
    assert cgan.stable_from() == 0.5 and cgan.stable_over_last_half()
    assert verdicts["fcn"].trajectory == ()  # not testable: no curve
    assert "the final verdict holds from 50% of the budget on." in reproduction_markdown(
        reproduce(study, analysis, n_resamples=200, seed=0), "cpu")


def test_claims_on_an_arms_objective_or_unequal_budgets_are_shown_but_not_counted():
    block = {**BLOCK, "claims": [_claim("cgan-beats-l1", better=["L1+cGAN", "L1"], metric="psnr_rgb8",
                                        caveat={"by_construction": "PSNR is a transform of the L2 loss"}),
                                 _claim("lower-delta-cf", better=["L1+cGAN", "L1"], metric="delta_cf")]}
    ablation = _ablation(block)
    study = parse_study(ablation, load_published())
    l1_runs = study.rows[0].run_ids
    analysis = _analysis(ablation, study, steps={run_id: 300 for run_id in l1_runs})
    verdicts = {v.claim.id: v for v in reproduce(study, analysis, 200, 0).verdicts}
    assert verdicts["cgan-beats-l1"].excluded == "by construction: PSNR is a transform of the L2 loss"
    assert verdicts["lower-delta-cf"].excluded == "unequal budget: L1+cGAN trains 100 updates, L1 trains 300 updates"
    assert verdicts["lower-delta-cf"].verdict == SUPPORTED  # judged as usual, just not counted


def test_not_testable_says_which_class_of_reason():
    ablation = _ablation(BLOCK)
    study = parse_study(ablation, load_published())
    analysis = _analysis(ablation, study)
    (gan,) = [row for row in study.rows if row.method == "L1+GAN"]
    analysis.measured = analysis.measured[~analysis.measured["run_id"].isin(gan.run_ids)]
    analysis.runs.loc[analysis.runs["run_id"].isin(gan.run_ids), ["state", "data_problem"]] = \
        ["missing", "generator.pretrained_encoder: the weights file cannot be fingerprinted: resnet18.pth"]
    analysis.unavailable = {"delta_cf": "pt_inception-2015-12-05-6726825d.pth not found"}
    verdicts = {v.claim.id: v for v in reproduce(study, analysis, n_resamples=200, seed=0).verdicts}
    assert (verdicts["gan-beats-cgan"].verdict, verdicts["gan-beats-cgan"].reason_class) == (NOT_TESTABLE, "weights")
    assert (verdicts["lower-delta-cf"].verdict, verdicts["lower-delta-cf"].reason_class) == (NOT_TESTABLE, "weights")
    assert (verdicts["fcn"].reason_class, verdicts["fcn"].detail) == ("protocol", "needs Cityscapes")
    assert verdicts["cgan-beats-l1"].verdict == SUPPORTED  # the arms that ran are judged as before


def test_a_claim_on_a_row_without_an_analogue_at_this_scale_is_not_testable():
    rows = [*BLOCK["rows"][:3], {"method": "ground truth", "absent": "no such field at 64 px"}]
    block = {**BLOCK, "rows": rows, "claims": [_claim("gt", better=["ground truth", "L1"], metric="psnr_rgb8")]}
    result, verdicts = _verdicts(block)
    assert (verdicts["gt"].verdict, verdicts["gt"].reason_class) == (NOT_TESTABLE, "protocol")
    assert verdicts["gt"].detail == "ground truth has no analogue at this scale: no such field at 64 px"
    text = reproduction_markdown(result, "cpu")
    assert "| ground truth | 0.8 | 0.26 | 0.21 | – | – | no analogue at this scale |" in text


def test_rows_select_the_runs_of_their_grid_point():
    ablation = _ablation(BLOCK)
    study = parse_study(ablation, load_published())
    planned = {run.run_id: run.point for run in ablation.runs}
    for row in study.rows[:3]:
        assert len(row.run_ids) == len(SEEDS)
        assert all(planned[r]["discriminator.conditional"] == ARMS[row.method]["discriminator.conditional"]
                   and planned[r]["discriminator.arch"] == ARMS[row.method]["discriminator.arch"] for r in row.run_ids)
    assert study.rows[3].run_ids == ()


def test_row_numbers_are_seed_means_with_t_intervals():
    result, _ = _verdicts()
    row = {r.method: r for r in result.rows}
    summary = row["L1"].ours["psnr_rgb8"]
    per_seed = BASE.mean(axis=1)
    half = 4.302652729911275 * per_seed.std(ddof=1) / np.sqrt(3)  # t(0.975, 2 df)
    assert summary.mean == pytest.approx(per_seed.mean())
    assert (summary.ci_low, summary.ci_high) == pytest.approx((per_seed.mean() - half, per_seed.mean() + half))
    assert row["L1"].published == (0.42, 0.15, 0.11) and row["L1"].updates == (100,)
    assert row["ground truth"].ours == {} and row["ground truth"].runs_planned == 0


def test_each_row_states_its_budget_in_updates_images_seen_and_width():
    ablation = _ablation(BLOCK)
    study = parse_study(ablation, load_published())
    analysis = _analysis(ablation, study)
    l1 = set(study.rows[0].run_ids)
    is_l1 = analysis.runs["run_id"].isin(l1)
    analysis.runs[BATCH_COLUMN] = np.where(is_l1, 4, 1)
    analysis.runs[WIDTH_COLUMN] = np.where(is_l1, 16, 32)
    analysis.runs.loc[is_l1, "total_steps"] = 250
    rows = {r.method: r for r in reproduce(study, analysis, 200, 0).rows}
    assert (rows["L1"].updates, rows["L1"].images_seen, rows["L1"].widths) == ((250,), (1000,), (16,))
    assert (rows["L1+cGAN"].updates, rows["L1+cGAN"].images_seen, rows["L1+cGAN"].widths) == ((100,), (100,), (32,))
    # the overview's headline names the range of each across the studies' rows
    summaries = [{"resolution": "64x64", "n_images": 5, "rows": [
        {"updates": [250], "images_seen": [1000], "widths": [16]}, {"updates": [100], "images_seen": [100],
                                                                     "widths": [32]}]}]
    assert budget_scale(summaries, "cpu") == ("at the `cpu` profile, 64x64 images, generators of width 16 to 32 "
                                                "(base channels), 100 to 250 updates per run, 100 to 1,000 training "
                                                "images seen per run, 5 test images")


def test_rank_agreement_is_kendalls_tau_of_published_and_ours():
    result, _ = _verdicts()
    # published per-pixel accuracy L1 0.42 < L1+GAN 0.64 < L1+cGAN 0.66; ours L1 < L1+cGAN < L1+GAN (the wobble
    # averages +0.0167): (L1, GAN) and (L1, cGAN) concordant, (GAN, cGAN) discordant: tau = (2 - 1) / 3.
    assert result.rank.n_rows == 3
    assert result.rank.tau == pytest.approx(1 / 3)
    assert -1 <= result.rank.ci_low <= result.rank.tau <= result.rank.ci_high <= 1


def test_a_value_claim_is_tested_only_under_the_published_protocol():
    block = {**BLOCK, "published": "seed-000", "metrics": ["ssim_rgb8"],
             "rows": [{"method": "pix2pix", "point": {"discriminator.conditional": True, "loss.adversarial": "bce"}}],
             "claims": [_claim("ssim-0.81", value={"row": "pix2pix", "metric": "ssim_rgb8", "published": 0.81})]}
    block.pop("rank")
    ablation = _ablation(block)
    study = parse_study(ablation, load_published())
    run_ids = study.rows[0].run_ids
    frame = pd.DataFrame([{"run_id": r, "seed": i, "dataset": "samples", "split": "test", "source": "train",
                           "resolution": "64x64", "n_images": 52, "metric": "ssim_rgb8", "value": v,
                           "image_ids": None, "per_image": None} for i, (r, v) in enumerate(zip(run_ids, [.8, .82, .81]))])
    runs = pd.DataFrame({"run_id": run_ids, "state": "done", "data_problem": None, "total_steps": 100})
    analysis = types.SimpleNamespace(measured=frame, runs=runs, unavailable={},
                                     baselines=pd.DataFrame(columns=BASELINE_COLUMNS),
                                 curves=pd.DataFrame(columns=CURVE_COLUMNS))
    (verdict,) = reproduce(study, analysis, 100, 0).verdicts
    assert (verdict.verdict, verdict.reason_class) == (NOT_TESTABLE, "protocol")
    assert "dataset coco2017 vs ours samples" in verdict.detail and "128x128 vs ours 64x64" in verdict.detail
    same = frame.assign(dataset="coco2017", resolution="128x128", n_images=1000)
    (verdict,) = reproduce(study, types.SimpleNamespace(**{**vars(analysis), "measured": same}), 100, 0).verdicts
    assert verdict.verdict == SUPPORTED  # 0.81 lies in [0.785, 0.835]
    (verdict,) = reproduce(study, types.SimpleNamespace(**{**vars(analysis), "measured": same.assign(
        value=[0.6, 0.61, 0.62])}), 100, 0).verdicts
    assert verdict.verdict == CONTRADICTED


def test_markdown_quotes_each_claim_with_its_source_and_verdict():
    result, _ = _verdicts()
    text = reproduction_markdown(result, "cpu")
    assert "| row | published: FCN per-pixel acc. |" in text
    assert "| L1+cGAN | 0.66 | 0.23 | 0.17 |" in text
    assert "| ground truth | 0.8 | 0.26 | 0.21 | – | – | no runs (published only) |" in text
    assert ("**Claims**: 3 supported, 2 contradicted, 3 inconclusive, 1 not testable (protocol 1)." in text)
    assert "> L1 alone leads to reasonable but blurry results." in text
    assert "— pix2pix (Isola et al., arXiv 1611.07004 v3), Sec. 4.2" in text
    assert "Kendall's tau = +0.33" in text


@pytest.mark.parametrize("change, message", [
    ({"published": "no-such-table"}, "reproduce.published: got 'no-such-table'"),
    ({"metrics": ["psnr"]}, "reproduce.metrics: unknown psnr"),
    ({"rows": [{"method": "L1", "point": {"loss.lambda_rec": 10}}]}, "loss.lambda_rec is not a grid key"),
    ({"rows": [{"method": "L1", "point": {"discriminator.arch": "unet"}}]}, "matches no grid point"),
    ({"rows": [{"method": "A", "point": {"discriminator.arch": "patchgan"}},
               {"method": "B", "point": {"discriminator.conditional": True}}]}, "two rows select the same runs"),
    ({"claims": [_claim("x", better=["L1", "pix2pix"], metric="psnr_rgb8")]}, "row 'pix2pix' is not one"),
    ({"claims": [_claim("x", best="L1", metric="sharpness")]}, "metric: got 'sharpness'"),
    ({"claims": [_claim("x", best="L1", better=["L1", "L1+GAN"])]}, "give exactly one of"),
    ({"claims": [_claim("x", similar=["L1", "L1+GAN"], metric="psnr_rgb8")]}, "a similar claim needs margin"),
    ({"claims": [_claim("x", better=["L1", "L1+GAN"], metric="psnr_rgb8", margin=1, margin_why="m")]},
     "other claims take neither"),
    ({"claims": [_claim("x", not_testable="needs Cityscapes")]}, "not_testable: got 'needs Cityscapes'"),
    ({"claims": [{**_claim("x", best="L1", metric="psnr_rgb8"), "source": "a blog"}]}, "source: got 'a blog'"),
    ({"claims": [{**_claim("x", best="L1", metric="psnr_rgb8"), "quote": ""}]}, "quote: got ''"),
    ({"claims": [_claim("x", best="L1", metric="psnr_rgb8", caveat={"too_short": "y"})]}, "caveat: got"),
    ({"claims": [_claim("X Y", best="L1", metric="psnr_rgb8")]}, "id: got 'X Y'"),
    ({"claims": [_claim("x", best="L1", metric="psnr_rgb8"), _claim("x", best="L1+GAN", metric="psnr_rgb8")]},
     "id 'x' appears twice"),
    ({"settings": [{"setting": "lambda 100", "provenance": "stated"}]}, "source: got None"),
    ({"settings": [{"setting": "3 seeds", "provenance": "our choice"}]}, "why: got None"),
    ({"settings": [{"setting": "3 seeds", "provenance": "obvious", "why": "y"}]}, "provenance: got 'obvious'"),
    ({"rank": {"published": "accuracy", "ours": "psnr_rgb8"}}, "rank.published: got 'accuracy'"),
    ({"surprise": 1}, "unknown key 'surprise'"),
])
def test_bad_reproduce_blocks_are_named(change, message):
    with pytest.raises(StudyError, match="toy.yaml: reproduce") as caught:
        parse_study(_ablation({**BLOCK, **change}), load_published())
    assert message in str(caught.value)
