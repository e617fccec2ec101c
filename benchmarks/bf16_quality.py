"""bf16 against fp32 on the demo: test PSNR / SSIM over seeds, paired, and bf16 inference alone.

For each seed it trains the demo config (``colorbench demo``'s) twice, ``precision: fp32``
and ``bf16``, and prints both final test scores and their difference, then the mean
difference over seeds with its 95 % t-interval.  A GAN's trajectory is chaotic: any
perturbation, bf16 rounding or another seed, moves the final score by about as much, so the
paired difference over seeds is the figure to read, not one run.  The last column isolates
bf16's own effect on the outputs: the fp32-trained weights scored with bf16 inference.

    python benchmarks/bf16_quality.py --seeds 0 1 2 3 [--set KEY=VALUE ...] [--out DIR]
"""
from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
from pathlib import Path

from scipy import stats

from bench.cli import demo_config_path
from bench.config import load_config
from bench.data import prepare_data
from bench.evaluation.metrics import psnr_rgb8
from bench.evaluation.outputs import evaluation_outputs
from bench.models import build_generator
from bench.run.checkpoint import CHECKPOINT_FILE, load_checkpoint
from bench.run.machine import resolve_device
from bench.training.train import train


def bf16_inference_psnr(config, run_dir: Path) -> float:
    """Mean test PSNR of the run's final weights colourised under bf16 autocast."""
    config = dataclasses.replace(config, precision="bf16")
    state = load_checkpoint(run_dir / CHECKPOINT_FILE)
    generator = build_generator(config.generator, config.in_channels, config.out_channels)
    generator.load_state_dict(state["generator"])
    device = resolve_device(config.device)
    data = prepare_data(config.data)
    outputs = evaluation_outputs(generator.to(device), data.network_images("test", config.data.task), config, device,
                                 state["step"])
    return float(psnr_rgb8(outputs, data.test).mean())


def interval(values: list[float]) -> str:
    mean = statistics.mean(values)
    if len(values) < 2:
        return f"{mean:+.3f}"
    half = stats.t.ppf(0.975, len(values) - 1) * statistics.stdev(values) / len(values) ** 0.5
    return f"{mean:+.3f} [{mean - half:+.3f}, {mean + half:+.3f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--out", type=Path, default=None, help="keep the runs here (default: a temporary folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="colorbench-bf16-") as scratch:
        out = args.out or Path(scratch)
        rows = []
        for seed in args.seeds:
            scores, configs, dirs = {}, {}, {}
            for precision in ("fp32", "bf16"):
                configs[precision] = load_config(demo_config_path(),
                                                 [*args.overrides, f"seed={seed}", f"precision={precision}"])
                dirs[precision] = out / f"{precision}-s{seed}"
                scores[precision] = train(configs[precision], dirs[precision])["metrics"]
            rows.append((seed, scores["fp32"], scores["bf16"], bf16_inference_psnr(configs["fp32"], dirs["fp32"])))
    print("seed | fp32 PSNR | bf16 PSNR | bf16 - fp32 | fp32 SSIM | bf16 SSIM | bf16 inference of the fp32 "
          "weights: PSNR - fp32")
    for seed, fp32, bf16, inference in rows:
        print(f"{seed:4d} | {fp32['psnr_rgb8']:9.3f} | {bf16['psnr_rgb8']:9.3f} | "
              f"{bf16['psnr_rgb8'] - fp32['psnr_rgb8']:+11.3f} | {fp32['ssim_rgb8']:9.4f} | {bf16['ssim_rgb8']:9.4f} | "
              f"{inference - fp32['psnr_rgb8']:+.4f}")
    print(f"mean bf16 - fp32 over {len(rows)} seeds, 95 % t-interval: PSNR "
          f"{interval([b['psnr_rgb8'] - f['psnr_rgb8'] for _, f, b, _ in rows])} dB, SSIM "
          f"{interval([b['ssim_rgb8'] - f['ssim_rgb8'] for _, f, b, _ in rows])}; bf16 inference alone: "
          f"{interval([i - f['psnr_rgb8'] for _, f, _, i in rows])} dB")


if __name__ == "__main__":
    main()
