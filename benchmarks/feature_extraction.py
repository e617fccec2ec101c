"""Speed of FID/KID scoring: images/s of feature extraction, and what the reference-feature cache saves a sweep.

    python benchmarks/feature_extraction.py [--images 500] [--size 128] [--runs 8] [--device auto]

Times the FID Inception when its weights are found (torch's hub cache or --weights-dir);
otherwise the stand-in extractor the tests use, and says so: its speed is not Inception's.
The sweep part scores ``--runs`` generators' outputs (here: perturbed copies of the
ground truth) against one ground-truth set through ``bench.evaluation.scoring.metric_records``, once
with the shared reference cache and once with an empty cache per run, as if there were none.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from bench.evaluation.detectors import StandInFeatures, WeightsUnavailable, extract_features, load_detector
from bench.evaluation.scoring import ScoringSetup, metric_records
from bench.run.machine import resolve_device


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=500, help="images per set (default 500)")
    parser.add_argument("--size", type=int, default=128, help="image side (default 128)")
    parser.add_argument("--batch-size", type=int, default=50, help="feature-extraction batch (default 50)")
    parser.add_argument("--runs", type=int, default=8, help="runs in the simulated sweep (default 8)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--weights-dir", help="folder of pt_inception-2015-12-05-6726825d.pth (default: hub cache)")
    args = parser.parse_args()
    device = resolve_device(args.device)

    try:
        extractor = load_detector("fid_inception", args.weights_dir, device)
        print(f"detector: {extractor.id}")
        stand_ins = {}
    except WeightsUnavailable as err:
        extractor = StandInFeatures().to(device)
        print(f"FID Inception weights unavailable ({err}).\n"
              f"Timing the STAND-IN extractor instead ({extractor.id}); its speed is not Inception's.")
        stand_ins = {"fid_inception": extractor}
    print(f"device {device}, torch threads {torch.get_num_threads()}, {args.images} images of "
          f"{args.size}x{args.size}, batch {args.batch_size}")

    generator = torch.Generator().manual_seed(0)
    targets = torch.randint(0, 256, (args.images, 3, args.size, args.size), dtype=torch.uint8, generator=generator)
    ids = [f"img{i:05d}" for i in range(args.images)]
    extract_features(targets[:args.batch_size], extractor, device, args.batch_size)  # warm-up
    seconds = _timed(lambda: extract_features(targets, extractor, device, args.batch_size), device)
    print(f"feature extraction: {args.images / seconds:,.1f} images/s ({seconds:.2f} s for {args.images})")

    outputs = [(targets.int() + run + 1).clamp(0, 255).to(torch.uint8) for run in range(args.runs)]
    with tempfile.TemporaryDirectory() as shared, tempfile.TemporaryDirectory() as private:
        def score(run: int, cache: Path) -> None:
            setup = ScoringSetup(args.weights_dir, cache, device, stand_ins=stand_ins, batch_size=args.batch_size)
            metric_records(outputs[run], targets, ids, ["fid_inception_pt", "kid_inception_pt"], setup,
                           dataset={"source": "benchmark"}, split="test", step=0, epoch=0, source="eval")

        cached = [_timed(lambda run=run: score(run, Path(shared)), device) for run in range(args.runs)]
        uncached = [_timed(lambda run=run: score(run, Path(private) / str(run)), device) for run in range(args.runs)]
    print(f"sweep of {args.runs} runs, FID + KID each:")
    print(f"  without the reference cache: {sum(uncached):.2f} s (ground-truth features extracted {args.runs} times)")
    print(f"  with the reference cache:    {sum(cached):.2f} s (first run {cached[0]:.2f} s computes them, "
          f"then {sum(cached[1:]) / max(args.runs - 1, 1):.2f} s per run)")
    print(f"  saved: {sum(uncached) - sum(cached):.2f} s ({1 - sum(cached) / sum(uncached):.0%})")


def _timed(work, device: torch.device) -> float:
    start = time.perf_counter()
    work()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
