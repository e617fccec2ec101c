"""The U-Net's 4x4 stride-2 convolutions, with a bf16 CPU path for layers with few positions.

On the CPU, PyTorch runs ``nn.Conv2d`` and ``nn.ConvTranspose2d`` through oneDNN kernels
that are fast when a layer has many positions, but slow in bf16 in the U-Net's inner
levels, where a 1x1 to 16x16 map meets a weight of up to 8 M values: there the work is one
thin matrix product.  ``DownConv`` and ``UpConv`` compute such layers as exactly that, one
matrix product over unfolded patches (``F.unfold`` / ``F.fold``), 1.2-3x faster on those
shapes; in fp32 oneDNN is as fast or faster (``python benchmarks/layer_kernels.py`` prints
the comparison).  The arithmetic is the same, only the summation order differs.
Everywhere else, and on every other device, they are the stock layers; parameters, names
and state dicts are the same.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

KERNEL, STRIDE, PADDING = 4, 2, 1

# Largest matrix product (rows = batch x positions on the layer's small side) computed as one
# GEMM on the CPU, per compute dtype.  Measured with benchmarks/layer_kernels.py on a 2-core
# AVX-512 BF16 CPU: from 1,024 rows on oneDNN's kernels are faster, and in fp32 they never lose
# by much nor win consistently, so fp32 always takes them.
GEMM_MAX_ROWS = {torch.bfloat16: 256}


def compute_dtype(x: torch.Tensor) -> torch.dtype:
    """The dtype convolutions of ``x`` run in: autocast's when it is on for ``x``'s device."""
    if torch.is_autocast_enabled(x.device.type):
        return torch.get_autocast_dtype(x.device.type)
    return x.dtype


def uses_gemm(x: torch.Tensor, rows: int) -> bool:
    """Whether a layer computes its ``rows``-row product on ``x`` as one GEMM."""
    return x.device.type == "cpu" and rows <= GEMM_MAX_ROWS.get(compute_dtype(x), 0)


class DownConv(nn.Conv2d):
    """``nn.Conv2d(in, out, 4, stride=2, padding=1)``; few output positions in bf16 on the CPU: unfold + one GEMM."""

    def __init__(self, in_channels: int, out_channels: int, bias: bool) -> None:
        super().__init__(in_channels, out_channels, KERNEL, stride=STRIDE, padding=PADDING, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, height, width = x.shape
        out_h, out_w = height // STRIDE, width // STRIDE
        if not uses_gemm(x, n * out_h * out_w):
            return super().forward(x)
        dtype = compute_dtype(x)
        patches = F.unfold(x.to(dtype), KERNEL, padding=PADDING, stride=STRIDE)  # (N, in*16, positions)
        rows = patches.transpose(1, 2).reshape(n * out_h * out_w, -1)
        out = rows @ self.weight.to(dtype).reshape(self.out_channels, -1).t()  # (N*positions, out)
        # contiguous: a channels-last result would carry that layout to every later layer, some slower in it
        out = out.view(n, out_h, out_w, self.out_channels).permute(0, 3, 1, 2).contiguous()
        return out if self.bias is None else out + self.bias.to(dtype).view(1, -1, 1, 1)


class UpConv(nn.ConvTranspose2d):
    """``nn.ConvTranspose2d(in, out, 4, stride=2, padding=1)``; few input positions in bf16 on the CPU: one GEMM + fold."""

    def __init__(self, in_channels: int, out_channels: int, bias: bool) -> None:
        super().__init__(in_channels, out_channels, KERNEL, stride=STRIDE, padding=PADDING, bias=bias)

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        n, _, height, width = x.shape
        if output_size is not None or not uses_gemm(x, n * height * width):
            return super().forward(x, output_size)
        dtype = compute_dtype(x)
        rows = x.to(dtype).permute(0, 2, 3, 1).reshape(n * height * width, self.in_channels)
        columns = rows @ self.weight.to(dtype).reshape(self.in_channels, -1)  # (N*positions, out*16)
        columns = columns.view(n, height * width, -1).transpose(1, 2)
        out = F.fold(columns, (height * STRIDE, width * STRIDE), KERNEL, padding=PADDING, stride=STRIDE)
        return out if self.bias is None else out + self.bias.to(dtype).view(1, -1, 1, 1)


def to_stock_layers(module: nn.Module) -> nn.Module:
    """Replace, in place, every ``DownConv`` / ``UpConv`` in ``module`` by the stock torch layer
    holding the same parameter objects; returns ``module``.  (The reference pipeline's layers.)"""
    for name, child in module.named_children():
        if isinstance(child, (DownConv, UpConv)):
            stock_class = nn.ConvTranspose2d if isinstance(child, UpConv) else nn.Conv2d
            stock = stock_class(child.in_channels, child.out_channels, KERNEL, stride=STRIDE, padding=PADDING,
                                bias=child.bias is not None, device="meta")
            stock.weight, stock.bias = child.weight, child.bias
            setattr(module, name, stock)
        else:
            to_stock_layers(child)
    return module
