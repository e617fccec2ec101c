"""The pix2pix PatchGAN discriminator (reference ``NLayerDiscriminator`` and ``PixelDiscriminator``)."""
from __future__ import annotations

from torch import nn

from bench.models.norm import conv_bias, norm_layer


class PatchGAN(nn.Sequential):
    """Fully convolutional discriminator giving one logit (no sigmoid) per overlapping patch.

    ``n_layers`` >= 1 is the reference's ``NLayerDiscriminator``: 4x4 convolutions with
    widths ndf * min(2**n, 8), stride 2 except the last two; receptive fields are 16, 34,
    70, 142 and 286 pixels for n_layers 1 to 5, and a 256x256 input gives a 126, 62, 30, 14
    or 6 pixel side map.  ``n_layers`` = 0 is the reference's ``PixelDiscriminator``
    (1x1 convolutions, one logit per pixel).
    """

    def __init__(self, in_channels: int, n_layers: int = 3, ndf: int = 64, norm: str = "batch") -> None:
        if n_layers < 0:
            raise ValueError(f"PatchGAN n_layers: got {n_layers}; allowed: >= 0")
        layers = _pixel_layers(in_channels, ndf, norm) if n_layers == 0 else _patch_layers(in_channels, n_layers, ndf, norm)
        super().__init__(*layers)


def _patch_layers(in_channels: int, n_layers: int, ndf: int, norm: str) -> list[nn.Module]:
    bias = conv_bias(norm)
    layers = [nn.Conv2d(in_channels, ndf, kernel_size=4, stride=2, padding=1), nn.LeakyReLU(0.2)]
    width = ndf
    for n in range(1, n_layers + 1):
        next_width = ndf * min(2 ** n, 8)
        stride = 2 if n < n_layers else 1  # with the output conv, the last two keep the resolution (-1 px each)
        layers += [nn.Conv2d(width, next_width, kernel_size=4, stride=stride, padding=1, bias=bias),
                   norm_layer(norm, next_width), nn.LeakyReLU(0.2)]
        width = next_width
    layers.append(nn.Conv2d(width, 1, kernel_size=4, stride=1, padding=1))
    return layers


def _pixel_layers(in_channels: int, ndf: int, norm: str) -> list[nn.Module]:
    bias = conv_bias(norm)
    return [nn.Conv2d(in_channels, ndf, kernel_size=1), nn.LeakyReLU(0.2),
            nn.Conv2d(ndf, ndf * 2, kernel_size=1, bias=bias), norm_layer(norm, ndf * 2), nn.LeakyReLU(0.2),
            nn.Conv2d(ndf * 2, 1, kernel_size=1, bias=bias)]  # the reference's output conv: bias only with instance norm
