"""The pix2pix U-Net generator (reference ``UnetGenerator``), written as an explicit encoder and decoder.

The reference (junyanz/pytorch-CycleGAN-and-pix2pix, models/networks.py) nests
``UnetSkipConnectionBlock``s recursively.  Unrolled, level 0 is the outermost block and
level ``depth - 1`` the innermost; each level's down convolution halves the resolution and
its up convolution doubles it back.  The modules below are registered in the reference's
parameter order (all down convolutions outermost first, then all up convolutions
innermost first), so weights map one to one.
"""
from __future__ import annotations

import torch
from torch import nn

from bench.models.layers import DownConv, UpConv
from bench.models.norm import conv_bias, norm_layer

MIN_DEPTH = 5  # outermost, ngf*2, ngf*4 and ngf*8 blocks around the innermost one


class UNet(nn.Module):
    """pix2pix U-Net generator: ``depth`` stride-2 4x4 convolutions down, as many up, Tanh output.

    ``depth`` 8 is the reference's unet_256 and 7 its unet_128; input sides must be
    multiples of ``2**depth``.  Widths are ngf, ngf*2, ngf*4 and then ngf*8 down to the
    innermost block.  ``dropout`` adds Dropout(0.5) to the ``depth - 5`` ngf*8 decoder blocks
    between the innermost one and the ngf*4 one.  ``skip_connections=False`` gives the
    paper's encoder-decoder: the same blocks without the concatenations.  ``output_bias``
    False drops the outermost up convolution's bias (source report 002's count), and
    ``leaky_slope`` is the negative slope of the encoder's LeakyReLUs (the reference's 0.2).
    """

    def __init__(self, in_channels: int, out_channels: int, depth: int, ngf: int = 64,
                 norm: str = "batch", dropout: bool = True, skip_connections: bool = True,
                 output_bias: bool = True, leaky_slope: float = 0.2) -> None:
        super().__init__()
        if depth < MIN_DEPTH:
            raise ValueError(f"UNet depth: got {depth}; allowed: >= {MIN_DEPTH}")
        self.depth = depth
        self.skip_connections = skip_connections
        bias = conv_bias(norm)
        # widths[level]: channels between the down and the up convolution of that level
        widths = [ngf * min(2 ** level, 8) for level in range(depth)]

        # Encoder, outermost first.  Each block but the innermost ends in the LeakyReLU whose
        # output both feeds the next block and is the skip (the reference's in-place
        # LeakyReLU also rewrites the tensor it concatenates).  The outermost block has no
        # norm, the innermost neither norm nor activation.
        encoder = [nn.Sequential(DownConv(in_channels, widths[0], bias), nn.LeakyReLU(leaky_slope))]
        for level in range(1, depth - 1):
            encoder.append(nn.Sequential(DownConv(widths[level - 1], widths[level], bias),
                                         norm_layer(norm, widths[level]), nn.LeakyReLU(leaky_slope)))
        encoder.append(nn.Sequential(DownConv(widths[-2], widths[-1], bias)))
        self.encoder = nn.ModuleList(encoder)

        # Decoder, innermost first.  Every block but the innermost takes its inner block's
        # output concatenated with the skip, hence twice the channels.
        concat = 2 if skip_connections else 1
        decoder = []
        for level in range(depth - 1, 0, -1):
            up_in = widths[level] * (1 if level == depth - 1 else concat)
            block = [nn.ReLU(), UpConv(up_in, widths[level - 1], bias), norm_layer(norm, widths[level - 1])]
            if dropout and 3 < level < depth - 1:  # ngf*8 blocks between the ngf*4 one (level 3) and the innermost
                block.append(nn.Dropout(0.5))
            decoder.append(nn.Sequential(*block))
        decoder.append(nn.Sequential(nn.ReLU(), UpConv(widths[0] * concat, out_channels, bias=output_bias), nn.Tanh()))
        self.decoder = nn.ModuleList(decoder)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map (N, in_channels, H, W) to (N, out_channels, H, W) in [-1, 1]."""
        factor = 2 ** self.depth
        if x.shape[-2] % factor or x.shape[-1] % factor:
            raise ValueError(f"UNet depth {self.depth}: input sides must be multiples of {factor}, "
                             f"got {tuple(x.shape[-2:])}")
        skips = []
        for block in self.encoder[:-1]:
            x = block(x)
            skips.append(x)
        x = self.encoder[-1](x)
        for block in self.decoder[:-1]:
            x = block(x)
            if self.skip_connections:
                x = torch.cat([skips.pop(), x], dim=1)  # skip first, as in the reference
        return self.decoder[-1](x)
