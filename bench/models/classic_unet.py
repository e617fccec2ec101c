"""The classic U-Net of Ronneberger et al. (2015), as source report 001 built it.

Pairs of 3x3 convolutions at each resolution, max-pooling on the way down, bilinear
up-sampling and a 1x1 convolution on the way up; padded convolutions, so the output has
the input's size.  Unlike pix2pix's U-Net (``bench.models.unet``) the skip is taken before
the resolution changes, and there is no dropout.
"""
from __future__ import annotations

import torch
from torch import nn

from bench.models.norm import conv_bias, norm_layer


class ConvBlock(nn.Sequential):
    """Two (3x3 convolution, padding 1 -> norm -> ReLU); keeps the resolution."""

    def __init__(self, in_channels: int, out_channels: int, norm: str) -> None:
        bias = conv_bias(norm)
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=bias), norm_layer(norm, out_channels),
            nn.ReLU(),
            nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1, bias=bias), norm_layer(norm, out_channels),
            nn.ReLU())


class DownBlock(nn.Module):
    """A ConvBlock, then 2x2 max-pooling; the ConvBlock's output, before pooling, is the skip."""

    def __init__(self, in_channels: int, out_channels: int, norm: str) -> None:
        super().__init__()
        self.convs = ConvBlock(in_channels, out_channels, norm)
        self.pool = nn.MaxPool2d(2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The pooled map, and the skip."""
        skip = self.convs(x)
        return self.pool(skip), skip


class UpBlock(nn.Module):
    """Bilinear x2 up-sampling, a 1x1 convolution to ``out_channels`` (half of ``in_channels``),
    the skip concatenated in front, then a ConvBlock; without the skip the ConvBlock takes the
    up-sampled map alone."""

    def __init__(self, in_channels: int, out_channels: int, norm: str, skip_connection: bool) -> None:
        super().__init__()
        self.skip_connection = skip_connection
        self.upsample = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        self.reduce = nn.Conv2d(in_channels, out_channels, kernel_size=1)  # no norm follows: keeps its bias
        self.convs = ConvBlock(2 * out_channels if skip_connection else out_channels, out_channels, norm)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = self.reduce(self.upsample(x))
        if self.skip_connection:
            x = torch.cat([skip, x], dim=1)  # skip first
        return self.convs(x)


class ClassicUNet(nn.Module):
    """Ronneberger et al.'s U-Net: ``depth`` DownBlocks, a bottleneck ConvBlock, ``depth`` UpBlocks,
    then a 1x1 convolution to ``out_channels`` and Tanh.

    Widths are ngf * 2**level for levels 0 to depth - 1 and ngf * 2**depth at the
    bottleneck: depth 4 and ngf 64 give the paper's 64 to 1024.  Input sides must be
    multiples of ``2**depth``.  Source report 001 does not state an output activation; Tanh
    gives the [-1, 1] outputs the benchmark's encodings expect, as pix2pix's U-Net does.
    ``norm`` applies to every ConvBlock, whose convolutions follow the reference's bias rule
    (``bench.models.norm.conv_bias``); the 1x1 convolutions have biases.
    ``skip_connections=False`` drops the concatenations (an encoder-decoder).
    """

    def __init__(self, in_channels: int, out_channels: int, depth: int = 4, ngf: int = 64, norm: str = "batch",
                 skip_connections: bool = True) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"ClassicUNet depth: got {depth}; allowed: >= 1")
        self.depth = depth
        widths = [ngf * 2 ** level for level in range(depth + 1)]  # widths[depth]: the bottleneck
        self.down = nn.ModuleList(DownBlock(c_in, c_out, norm)
                                  for c_in, c_out in zip([in_channels, *widths[:depth - 1]], widths[:depth]))
        self.bottleneck = ConvBlock(widths[depth - 1], widths[depth], norm)
        self.up = nn.ModuleList(UpBlock(widths[level + 1], widths[level], norm, skip_connections)
                                for level in reversed(range(depth)))
        self.head = nn.Sequential(nn.Conv2d(widths[0], out_channels, kernel_size=1), nn.Tanh())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map (N, in_channels, H, W) to (N, out_channels, H, W) in [-1, 1]."""
        factor = 2 ** self.depth
        if x.shape[-2] % factor or x.shape[-1] % factor:
            raise ValueError(f"ClassicUNet depth {self.depth}: input sides must be multiples of {factor}, "
                             f"got {tuple(x.shape[-2:])}")
        skips = []
        for block in self.down:
            x, skip = block(x)
            skips.append(skip)
        x = self.bottleneck(x)
        for block in self.up:
            x = block(x, skips.pop())
        return self.head(x)
