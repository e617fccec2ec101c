"""metrics.jsonl records: protocol fields, set vs per-image values, unavailable metrics, the reference-feature cache."""
import json

import numpy as np
import pytest
import torch

from bench.evaluation.detectors import StandInFeatures, extract_features
from bench.evaluation.metrics import METRICS
from bench.evaluation.metrics.frechet import frechet_feature_distance
from bench.evaluation.metrics.kid import kernel_distance
from bench.evaluation.reference import reference_key
from bench.evaluation.scoring import ScoringSetup, metric_records

DATASET = {"source": "folder", "root": "/data/x", "file_list_hash": "abc"}


class CountingStandIn(StandInFeatures):
    """The stand-in feature extractor, counting the images it is shown."""

    def __init__(self) -> None:
        super().__init__()
        self.images_seen = 0

    def forward(self, images_rgb8: torch.Tensor) -> torch.Tensor:
        self.images_seen += len(images_rgb8)
        return super().forward(images_rgb8)


def image_sets(seed: int = 0, n: int = 6, size: int = 24) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    rng = np.random.default_rng(seed)
    targets = torch.from_numpy(rng.integers(0, 256, (n, 3, size, size), dtype=np.uint8))
    outputs = (targets.int() // 2 + 40).to(torch.uint8)  # duller, shifted outputs
    return outputs, targets, [f"img{i}.png" for i in range(n)]


def score(outputs, targets, ids, names, setup):
    return metric_records(outputs, targets, ids, names, setup, dataset=DATASET, split="test", step=12, epoch=3,
                          source="train")


def test_every_record_carries_the_protocol(tmp_path):
    outputs, targets, ids = image_sets()
    setup = ScoringSetup(str(tmp_path / "no-weights"), tmp_path / "cache", torch.device("cpu"),
                         stand_ins={"fid_inception": StandInFeatures()})
    records = score(outputs, targets, ids, list(METRICS), setup)
    assert [r["metric"] for r in records] == list(METRICS)
    for record in records:
        assert {"split": "test", "step": 12, "epoch": 3, "source": "train", "dataset": DATASET, "n_images": 6,
                "resolution": [24, 24], "image_ids": ids}.items() <= record.items()
        assert record["protocol"] == METRICS[record["metric"]].protocol
        assert json.loads(json.dumps(record)) == record
    by_name = {r["metric"]: r for r in records}
    assert by_name["psnr_rgb8"]["detector"] is None and len(by_name["psnr_rgb8"]["per_image"]) == 6
    assert by_name["psnr_rgb8"]["value"] == pytest.approx(np.mean(by_name["psnr_rgb8"]["per_image"]))
    assert "per_image" not in by_name["hist_isect_lab"]
    assert set(by_name["hist_isect_lab"]["per_channel"]) == {"L", "a", "b"}
    assert by_name["delta_cf"]["value"] == pytest.approx(abs(by_name["delta_cf"]["cf_output"]
                                                             - by_name["delta_cf"]["cf_target"]))
    assert by_name["fid_inception_pt"]["detector"] == by_name["kid_inception_pt"]["detector"] == StandInFeatures.id


def test_fid_and_kid_go_through_the_same_functions_as_with_inception(tmp_path):
    outputs, targets, ids = image_sets(n=12)
    extractor = StandInFeatures()
    setup = ScoringSetup(None, tmp_path, torch.device("cpu"), stand_ins={"fid_inception": extractor})
    records = {r["metric"]: r for r in score(outputs, targets, ids, ["fid_inception_pt", "kid_inception_pt"], setup)}
    fake = extract_features(outputs, extractor, torch.device("cpu"))
    real = extract_features(targets, extractor, torch.device("cpu"))
    expected_fid = frechet_feature_distance(fake, real)["value"]
    assert records["fid_inception_pt"]["value"] == pytest.approx(expected_fid, rel=1e-12)
    assert records["kid_inception_pt"]["value"] == pytest.approx(kernel_distance(fake, real)["value"], rel=1e-12)
    assert records["fid_inception_pt"]["value"] > 0.01
    assert records["kid_inception_pt"]["subsets"] == 1 and records["kid_inception_pt"]["subset_size"] == 12
    same = {r["metric"]: r for r in score(targets, targets, ids, ["fid_inception_pt"], setup)}
    assert same["fid_inception_pt"]["value"] == pytest.approx(0.0, abs=1e-6)  # 12 images, 51 dims: rank-deficient


def test_absent_weights_give_unavailable_records_not_numbers(tmp_path):
    outputs, targets, ids = image_sets()
    setup = ScoringSetup(str(tmp_path / "empty"), tmp_path / "cache", torch.device("cpu"))
    records = {r["metric"]: r for r in score(outputs, targets, ids, ["lpips_alex", "fid_inception_pt", "cf"], setup)}
    for name, weights in (("lpips_alex", "alexnet-owt-7be5be79.pth"),
                          ("fid_inception_pt", "pt_inception-2015-12-05-6726825d.pth")):
        record = records[name]
        assert record["value"] is None and "per_image" not in record
        assert weights in record["unavailable"] and str(tmp_path / "empty") in record["unavailable"]
        assert "colorbench assets fetch" in record["unavailable"] and weights in record["detector"]
        assert record["n_images"] == 6 and record["resolution"] == [24, 24]
    assert records["cf"]["value"] > 0 and "unavailable" not in records["cf"]
    assert not (tmp_path / "cache").exists()  # nothing computed for the unavailable metrics


def test_a_wrong_weights_file_is_unavailable_naming_the_mismatch(tmp_path):
    (tmp_path / "pt_inception-2015-12-05-6726825d.pth").write_bytes(b"not the FID Inception")
    outputs, targets, ids = image_sets()
    setup = ScoringSetup(str(tmp_path), tmp_path / "cache", torch.device("cpu"))
    (record,) = score(outputs, targets, ids, ["kid_inception_pt"], setup)
    assert record["value"] is None and "does not match" in record["unavailable"]
    assert "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2" in record["unavailable"]


def test_reference_features_are_computed_once_for_all_runs(tmp_path):
    outputs, targets, ids = image_sets(n=8)
    extractor = CountingStandIn()
    setup = ScoringSetup(None, tmp_path, torch.device("cpu"), stand_ins={"fid_inception": extractor})
    first = score(outputs, targets, ids, ["fid_inception_pt", "kid_inception_pt"], setup)
    assert extractor.images_seen == 16  # the outputs once and the ground truth once, for FID and KID together
    assert len(list((tmp_path / "reference").glob("*.pt"))) == 1
    # another run (another generator's outputs, a new process's setup) scores against the same ground truth
    extractor.images_seen = 0
    other_outputs = (targets.int() // 3).to(torch.uint8)
    setup = ScoringSetup(None, tmp_path, torch.device("cpu"), stand_ins={"fid_inception": extractor})
    second = score(other_outputs, targets, ids, ["fid_inception_pt"], setup)
    assert extractor.images_seen == 8  # only the outputs
    assert second[0]["value"] != first[0]["value"]
    cached = score(outputs, targets, ids, ["fid_inception_pt"], setup)
    assert cached[0]["value"] == first[0]["value"]  # features from the cache give the same FID


def test_the_reference_key_tracks_what_the_detector_sees():
    _, targets, ids = image_sets()
    key = reference_key(targets, ids, dataset="folder", split="test", detector_id="d")
    assert key["resolution"] == [24, 24] and key["n_images"] == 6 and key["split"] == "test"
    changed = targets.clone()
    changed[0, 0, 0, 0] ^= 1
    variants = [reference_key(changed, ids, dataset="folder", split="test", detector_id="d"),
                reference_key(targets, ids[::-1], dataset="folder", split="test", detector_id="d"),
                reference_key(targets, ids, dataset="folder", split="train", detector_id="d"),
                reference_key(targets, ids, dataset="coco2017", split="test", detector_id="d"),
                reference_key(targets, ids, dataset="folder", split="test", detector_id="other")]
    assert all(variant != key for variant in variants)
    assert reference_key(targets.clone(), list(ids), dataset="folder", split="test", detector_id="d") == key


def test_unknown_metric_names_are_rejected(tmp_path):
    outputs, targets, ids = image_sets()
    with pytest.raises(ValueError, match="unknown \\['fid'\\]; allowed: psnr_rgb8"):
        score(outputs, targets, ids, ["fid"], ScoringSetup(None, tmp_path, torch.device("cpu")))
