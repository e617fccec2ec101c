"""Loading speed: training batches served from prepared uint8 images, with the trainer's own batch function.

Target: one epoch over 8,000 prepared 128x128 images with flip + jitter at >= 5,000 images/s
on 2 CPU cores.  Without --config the 8,000 images are synthesised, stored at jitter's load
size (143x143) as a prepared dataset is; with --config (and --set) the run's dataset is
prepared (decoded once, then read from the cache) and its training split served.

    python benchmarks/data_loading.py
    python benchmarks/data_loading.py --config run.yaml --batch-sizes 16
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import time

import torch

from bench.config import load_config
from bench.data import load_size, prepare_data
from bench.training.train import training_batch

TARGET_IMAGES_PER_S = 5_000


def images_per_second(images: torch.Tensor, config, batch_size: int) -> float:
    """Images per second over one epoch of ``training_batch`` at ``batch_size`` (after one warm-up batch)."""
    config = dataclasses.replace(config, data=dataclasses.replace(config.data, batch_size=batch_size))
    training_batch(images, config, epoch=0, index=0, step=0)
    steps = math.ceil(len(images) / batch_size)
    started = time.perf_counter()
    for index in range(steps):
        training_batch(images, config, epoch=1, index=index, step=steps + index)
    return len(images) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", metavar="FILE", help="run config whose prepared training split is served")
    parser.add_argument("--set", dest="overrides", metavar="KEY=VALUE", action="append", default=[],
                        help="config override (repeatable)")
    parser.add_argument("--images", type=int, default=8_000, help="synthetic images (default 8000)")
    parser.add_argument("--batch-sizes", default="1,16,64", help="comma-separated batch sizes (default 1,16,64)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    if args.config or args.overrides:
        config = load_config(args.config, args.overrides)
        images = prepare_data(config.data).network_images("train", config.data.task)
        what = f"{config.data.dataset} training split"
    else:
        config = load_config(None, ["data.image_size=128", "data.augmentation=flip+jitter", "generator.depth=7"])
        side = load_size(config.data.image_size, config.data.augmentation)
        images = torch.randint(0, 256, (args.images, 3, side, side), dtype=torch.uint8,
                               generator=torch.Generator().manual_seed(0))
        what = "synthetic prepared images"
    print(f"{len(images):,} {what}, stored {images.shape[-1]}x{images.shape[-1]}, served at "
          f"{config.data.image_size}x{config.data.image_size} with {config.data.augmentation}; "
          f"{torch.get_num_threads()} threads")
    for batch_size in (int(text) for text in args.batch_sizes.split(",")):
        rate = images_per_second(images, config, batch_size)
        verdict = "meets" if rate >= TARGET_IMAGES_PER_S else "BELOW"
        print(f"  batch {batch_size:4d}: {rate:9,.0f} images/s ({verdict} the {TARGET_IMAGES_PER_S:,}/s target)")


if __name__ == "__main__":
    main()
