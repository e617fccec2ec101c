"""Reproduction: a study's rows select the right runs, each claim's verdict follows from the numbers, bad blocks are named."""
from __future__ import annotations

import types

import numpy as np
import pandas as pd
import pytest

from bench.report.published import load_published
from bench.reproduce.render import reproduction_markdown
from bench.reproduce.study import StudyError, parse_study
from bench.reproduce.verdicts import DOES_NOT_HOLD, HOLDS, NOT_TESTABLE, reproduce
from bench.sweep.ablation import parse_ablation

ARMS = {"L1": {"loss.adversarial": "none", "discriminator.arch": "none", "discriminator.conditional": True},
        "L1+GAN": {"loss.adversarial": "bce", "discriminator.arch": "patchgan", "discriminator.conditional": False},
        "L1+cGAN": {"loss.adversarial": "bce", "discriminator.arch": "patchgan", "discriminator.conditional": True}}
SEEDS = [0, 1, 2]


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
    "claims": [{"claim": "cGAN beats L1", "better": ["L1+cGAN", "L1"], "metric": "psnr_rgb8"},
               {"claim": "L1 beats cGAN", "better": ["L1", "L1+cGAN"], "metric": "psnr_rgb8"},
               {"claim": "GAN beats cGAN", "better": ["L1+GAN", "L1+cGAN"], "metric": "psnr_rgb8"},
               {"claim": "cGAN is best", "best": "L1+cGAN", "metric": "psnr_rgb8"},
               {"claim": "GAN is best", "best": "L1+GAN", "metric": "psnr_rgb8"},
               {"claim": "lower delta CF", "better": ["L1+cGAN", "L1"], "metric": "delta_cf"},
               {"claim": "FCN", "not_testable": "needs Cityscapes"}],
}
# Per-image PSNR of 5 test images per seed: L1+cGAN is L1 + 1 dB on every image and seed; L1+GAN
# equals L1+cGAN but for a noise of +-0.01 that changes sign with the image (an unresolved difference).
BASE = np.array([[20.0, 21.0, 19.5, 22.0, 20.5], [20.2, 21.3, 19.0, 22.4, 20.1], [19.8, 21.1, 19.9, 21.7, 20.6]])
PSNR = {"L1": BASE, "L1+cGAN": BASE + 1.0, "L1+GAN": BASE + 1.0 + 0.01 * np.array([1, -1, 1, -1, 1])[None, :]}
DELTA_CF = {"L1": [5.0, 5.2, 4.9], "L1+cGAN": [2.0, 2.1, 1.9], "L1+GAN": [3.0, 3.1, 2.9]}  # lower is better


def _analysis(ablation, study) -> types.SimpleNamespace:
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
    runs = pd.DataFrame({"run_id": [run.run_id for run in ablation.runs], "state": "done", "data_problem": None})
    return types.SimpleNamespace(measured=pd.DataFrame(rows), runs=runs, unavailable={})


def _verdicts(block=BLOCK):
    ablation = _ablation(block)
    study = parse_study(ablation, load_published())
    result = reproduce(study, _analysis(ablation, study), n_resamples=2000, seed=0)
    return result, {v.claim.text: v for v in result.verdicts}


def test_an_arm_whose_data_is_not_here_is_not_testable_and_says_why():
    ablation = _ablation(BLOCK)
    study = parse_study(ablation, load_published())
    analysis = _analysis(ablation, study)
    (gan,) = [row for row in study.rows if row.method == "L1+GAN"]
    analysis.measured = analysis.measured[~analysis.measured["run_id"].isin(gan.run_ids)]
    analysis.runs.loc[analysis.runs["run_id"].isin(gan.run_ids), ["state", "data_problem"]] = \
        ["missing", "generator.pretrained_encoder: resnet18.pth: No such file or directory"]
    verdicts = {v.claim.text: v for v in reproduce(study, analysis, n_resamples=200, seed=0).verdicts}
    assert verdicts["GAN beats cGAN"].verdict == NOT_TESTABLE
    assert verdicts["GAN beats cGAN"].detail.endswith(
        "not run, because the data is not on this machine: "
        "generator.pretrained_encoder: resnet18.pth: No such file or directory")
    assert verdicts["cGAN beats L1"].verdict == HOLDS  # the arms that ran are judged as before


def test_rows_select_the_runs_of_their_grid_point():
    ablation = _ablation(BLOCK)
    study = parse_study(ablation, load_published())
    planned = {run.run_id: run.point for run in ablation.runs}
    for row in study.rows[:3]:
        assert len(row.run_ids) == len(SEEDS)
        assert all(planned[r]["discriminator.conditional"] == ARMS[row.method]["discriminator.conditional"]
                   and planned[r]["discriminator.arch"] == ARMS[row.method]["discriminator.arch"] for r in row.run_ids)
    assert study.rows[3].run_ids == ()


def test_verdicts_follow_the_numbers():
    result, verdicts = _verdicts()
    assert verdicts["cGAN beats L1"].verdict == HOLDS
    # every image and seed differs by exactly 1 dB; the interval is wider because each arm's seeds are resampled
    assert "L1+cGAN - L1 = +1 [" in verdicts["cGAN beats L1"].detail
    assert verdicts["L1 beats cGAN"].verdict == DOES_NOT_HOLD
    assert verdicts["L1 beats cGAN"].detail.startswith("reversed")
    assert verdicts["GAN beats cGAN"].verdict == DOES_NOT_HOLD
    assert verdicts["GAN beats cGAN"].detail.startswith("not resolved")
    # best: cGAN beats L1 but ties GAN -> not resolved; GAN likewise
    assert verdicts["cGAN is best"].verdict == DOES_NOT_HOLD and "ahead of 1 of 2" in verdicts["cGAN is best"].detail
    # delta_cf is lower-better: cGAN's 2.0 beats L1's 5.0; Welch over 3 seeds per arm
    assert verdicts["lower delta CF"].verdict == HOLDS and "Welch" in verdicts["lower delta CF"].detail
    # the difference on delta CF's own scale, as in the table: 2.0 - 5.03 on average, lower is better
    assert "delta_cf L1+cGAN - L1 = -3.033 [" in verdicts["lower delta CF"].detail
    assert "lower is better" in verdicts["lower delta CF"].detail
    assert verdicts["FCN"].verdict == NOT_TESTABLE and verdicts["FCN"].detail == "needs Cityscapes"


def test_row_numbers_are_seed_means_with_t_intervals():
    result, _ = _verdicts()
    row = {r.method: r for r in result.rows}
    summary = row["L1"].ours["psnr_rgb8"]
    per_seed = BASE.mean(axis=1)
    half = 4.302652729911275 * per_seed.std(ddof=1) / np.sqrt(3)  # t(0.975, 2 df)
    assert summary.mean == pytest.approx(per_seed.mean())
    assert (summary.ci_low, summary.ci_high) == pytest.approx((per_seed.mean() - half, per_seed.mean() + half))
    assert row["L1"].published == (0.42, 0.15, 0.11)
    assert row["ground truth"].ours == {} and row["ground truth"].runs_planned == 0


def test_rank_agreement_is_kendalls_tau_of_published_and_ours():
    result, _ = _verdicts()
    # published per-pixel accuracy L1 0.42 < L1+GAN 0.64 < L1+cGAN 0.66; ours L1 < L1+cGAN, and L1+GAN vs L1+cGAN
    # is +0.002 on the mean (3 of 5 images +0.01): ours L1 < L1+cGAN < L1+GAN.  Pairs: (L1, GAN) and (L1, cGAN)
    # concordant, (GAN, cGAN) discordant: tau = (2 - 1) / 3.
    assert result.rank.n_rows == 3
    assert result.rank.tau == pytest.approx(1 / 3)
    assert -1 <= result.rank.ci_low <= result.rank.tau <= result.rank.ci_high <= 1


def test_a_value_claim_is_tested_only_under_the_published_protocol():
    block = {**BLOCK, "published": "seed-000", "rank": None, "metrics": ["ssim_rgb8"],
             "rows": [{"method": "pix2pix", "point": {"discriminator.conditional": True, "loss.adversarial": "bce"}}],
             "claims": [{"claim": "SSIM 0.81", "value": {"row": "pix2pix", "metric": "ssim_rgb8", "published": 0.81}}]}
    block.pop("rank")
    ablation = _ablation(block)
    study = parse_study(ablation, load_published())
    run_ids = study.rows[0].run_ids
    frame = pd.DataFrame([{"run_id": r, "seed": i, "dataset": "samples", "split": "test", "source": "train",
                           "resolution": "64x64", "n_images": 52, "metric": "ssim_rgb8", "value": v,
                           "image_ids": None, "per_image": None} for i, (r, v) in enumerate(zip(run_ids, [.8, .82, .81]))])
    analysis = types.SimpleNamespace(measured=frame, runs=pd.DataFrame({"run_id": run_ids, "state": "done", "data_problem": None}),
                                     unavailable={})
    (verdict,) = reproduce(study, analysis, 100, 0).verdicts
    assert verdict.verdict == NOT_TESTABLE
    assert "dataset coco2017 vs ours samples" in verdict.detail and "128x128 vs ours 64x64" in verdict.detail
    same = frame.assign(dataset="coco2017", resolution="128x128", n_images=1000)
    (verdict,) = reproduce(study, types.SimpleNamespace(**{**vars(analysis), "measured": same}), 100, 0).verdicts
    assert verdict.verdict == HOLDS  # 0.81 lies in [0.785, 0.835]
    (verdict,) = reproduce(study, types.SimpleNamespace(**{**vars(analysis), "measured": same.assign(
        value=[0.6, 0.61, 0.62])}), 100, 0).verdicts
    assert verdict.verdict == DOES_NOT_HOLD


def test_markdown_puts_published_and_ours_side_by_side():
    result, _ = _verdicts()
    text = reproduction_markdown(result, "cpu")
    assert "| row | published: FCN per-pixel acc. |" in text
    assert "| L1+cGAN | 0.66 | 0.23 | 0.17 |" in text
    assert "| ground truth | 0.8 | 0.26 | 0.21 | – | – | no runs (published only) |" in text
    assert "**Claims**: 2 of 6 testable hold (1 not testable here)." in text
    assert "Kendall's tau = +0.33" in text


@pytest.mark.parametrize("change, message", [
    ({"published": "no-such-table"}, "reproduce.published: got 'no-such-table'"),
    ({"metrics": ["psnr"]}, "reproduce.metrics: unknown psnr"),
    ({"rows": [{"method": "L1", "point": {"loss.lambda_rec": 10}}]}, "loss.lambda_rec is not a grid key"),
    ({"rows": [{"method": "L1", "point": {"discriminator.arch": "unet"}}]}, "matches no grid point"),
    ({"rows": [{"method": "A", "point": {"discriminator.arch": "patchgan"}},
               {"method": "B", "point": {"discriminator.conditional": True}}]}, "two rows select the same runs"),
    ({"claims": [{"claim": "x", "better": ["L1", "pix2pix"], "metric": "psnr_rgb8"}]}, "row 'pix2pix' is not one"),
    ({"claims": [{"claim": "x", "best": "L1", "metric": "sharpness"}]}, "metric: got 'sharpness'"),
    ({"claims": [{"claim": "x", "best": "L1", "better": ["L1", "L1+GAN"]}]}, "give exactly one of"),
    ({"rank": {"published": "accuracy", "ours": "psnr_rgb8"}}, "rank.published: got 'accuracy'"),
    ({"surprise": 1}, "unknown key 'surprise'"),
])
def test_bad_reproduce_blocks_are_named(change, message):
    with pytest.raises(StudyError, match="toy.yaml: reproduce") as caught:
        parse_study(_ablation({**BLOCK, **change}), load_published())
    assert message in str(caught.value)


def test_the_grey_input_row_shows_the_runs_values_or_why_there_are_none():
    ablation = _ablation(BLOCK)
    study = parse_study(ablation, load_published())
    analysis = _analysis(ablation, study)  # runs made before grey-input scoring: no grey_input rows
    text = reproduction_markdown(reproduce(study, analysis, n_resamples=100, seed=0), "cpu")
    assert ("| grey input (a = b = 0) | – | – | – | – | – | not recorded (run made before grey-input scoring) |"
            in text)
    grey = pd.DataFrame([{"dataset": "samples", "split": "test", "fixed": "", "metric": metric, "value": value,
                          "spread": 0.0, "n_runs": 9, "n_runs_section": 9, "n_images": 5, "resolution": "64x64"}
                         for metric, value in (("psnr_rgb8", 17.0236), ("ssim_rgb8", 0.8503))])
    result = reproduce(study, types.SimpleNamespace(**vars(analysis), grey_input=grey, grey_input_missing={}),
                       n_resamples=100, seed=0)
    assert result.grey_input.values == {"psnr_rgb8": 17.0236, "ssim_rgb8": 0.8503}
    text = reproduction_markdown(result, "cpu")
    # the published columns are empty; ours in the decimals of the rows' psnr_rgb8 column; delta_cf not recorded
    assert "| grey input (a = b = 0) | – | – | – | 17.02 | – | same 5 test images |" in text
    assert text.index("| ground truth |") < text.index("| grey input (a = b = 0) |")
    paired = types.SimpleNamespace(**vars(analysis), grey_input=grey.iloc[0:0],
                                   grey_input_missing={("samples", "test", ""): "not applicable (paired)"})
    text = reproduction_markdown(reproduce(study, paired, n_resamples=100, seed=0), "cpu")
    assert "| grey input (a = b = 0) | – | – | – | – | – | not applicable (paired) |" in text
