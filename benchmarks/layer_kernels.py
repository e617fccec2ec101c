"""Forward + backward time of the U-Net's 4x4 stride-2 layers: oneDNN kernels vs one GEMM.

Prints, for every down / up layer of a U-Net at a batch size and resolution, the median
milliseconds of forward + backward through ``DownConv`` / ``UpConv`` with the GEMM path
forced off and forced on, in fp32 and under bf16 autocast (fp32 parameters, as training runs
them), with ``bench.training.allocator`` applied as ``train`` applies it.  ``GEMM_MAX_ROWS`` in
``bench/models/layers.py`` is read off this table.

    python benchmarks/layer_kernels.py --batch 1 --size 256 --depth 8
    python benchmarks/layer_kernels.py --batch 16 --size 128 --depth 7
"""
from __future__ import annotations

import argparse
import contextlib
import statistics
import time

import torch

from bench.models import layers
from bench.training.allocator import retain_freed_memory


def time_layer(layer: torch.nn.Module, x: torch.Tensor, bf16: bool, gemm: bool, repeats: int) -> float:
    """Median ms of forward + backward (input and weight gradients) of ``layer`` on ``x``."""
    saved = dict(layers.GEMM_MAX_ROWS)
    layers.GEMM_MAX_ROWS.update({dtype: (2**62 if gemm else 0) for dtype in (torch.float32, torch.bfloat16)})
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    times = []
    try:
        for i in range(repeats + 2):
            start = time.perf_counter()
            with autocast:
                out = layer(x)
            out.float().sum().backward()
            if i >= 2:
                times.append(time.perf_counter() - start)
            layer.zero_grad(set_to_none=True)
    finally:
        layers.GEMM_MAX_ROWS.clear()
        layers.GEMM_MAX_ROWS.update(saved)
    return statistics.median(times) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--depth", type=int, default=8)
    parser.add_argument("--ngf", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    retain_freed_memory()
    torch.manual_seed(0)
    widths = [args.ngf * min(2 ** level, 8) for level in range(args.depth)]
    shapes = [("down", widths[level - 1], widths[level], args.size >> level) for level in range(1, args.depth)]
    shapes += [("up", widths[level] * (1 if level == args.depth - 1 else 2), widths[level - 1],
                args.size >> (level + 1)) for level in range(args.depth - 1, 0, -1)]
    print(f"batch {args.batch}, {args.size}x{args.size}, depth {args.depth}; ms of forward + backward")
    print(f"{'layer':>24s} {'GEMM rows':>9s} | {'fp32 oneDNN':>11s} {'fp32 GEMM':>9s} | "
          f"{'bf16 oneDNN':>11s} {'bf16 GEMM':>9s}")
    for kind, c_in, c_out, side in shapes:
        layer = (layers.DownConv if kind == "down" else layers.UpConv)(c_in, c_out, bias=False)
        rows = args.batch * (side // 2) ** 2 if kind == "down" else args.batch * side ** 2
        x = torch.randn(args.batch, c_in, side, side, requires_grad=True)
        figures = [time_layer(layer, x, bf16, gemm, args.repeats) for bf16 in (False, True) for gemm in (False, True)]
        print(f"{kind:>4s} {c_in:5d}->{c_out:4d} on {side:3d}^2 {rows:9d} | {figures[0]:11.1f} {figures[1]:9.1f} | "
              f"{figures[2]:11.1f} {figures[3]:9.1f}")


if __name__ == "__main__":
    main()
