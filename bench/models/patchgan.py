"""The pix2pix PatchGAN discriminator (reference ``NLayerDiscriminator`` and ``PixelDiscriminator``)."""
from __future__ import annotations

from torch import nn

from bench.config.patch_geometry import KERNEL, PADDING, min_patch_image_size, patch_map_side
from bench.models.norm import conv_bias, norm_layer

__all__ = ["KERNEL", "PADDING", "PatchGAN", "min_patch_image_size", "patch_map_side"]


class PatchGAN(nn.Sequential):
    """Fully convolutional discriminator giving one logit (no sigmoid) per overlapping patch.

    ``n_layers`` >= 1 is the reference's ``NLayerDiscriminator``: 4x4 convolutions with
    widths ndf * min(2**n, 8), stride 2 except the last two; receptive fields are 16, 34,
    70, 142 and 286 pixels for n_layers 1 to 5, and a 256x256 input gives a 126, 62, 30, 14
    or 6 pixel side map.  ``last_stride`` 2 makes the last ndf*k convolution (the one before
    the output convolution) stride 2 too, as source report 003 did: at n_layers 3 that gives
    94-pixel patches (1 + 3 * (1 + 2 + 4 + 8 + 16): each 4x4 convolution widens the field by 3
    of its input steps) and a 15x15 map on 256x256 (see :func:`patch_map_side`).  ``n_layers`` = 0 is the reference's
    ``PixelDiscriminator`` (1x1 convolutions, one logit per pixel), where only ``last_stride`` 1
    exists.  ``leaky_slope`` is the LeakyReLUs' negative slope; ``first_bias`` False drops the
    first convolution's bias (source report 002's count).
    """

    def __init__(self, in_channels: int, n_layers: int = 3, ndf: int = 64, norm: str = "batch",
                 leaky_slope: float = 0.2, first_bias: bool = True, last_stride: int = 1) -> None:
        if n_layers < 0:
            raise ValueError(f"PatchGAN n_layers: got {n_layers}; allowed: >= 0")
        if last_stride not in (1, 2) or (n_layers == 0 and last_stride != 1):
            raise ValueError(f"PatchGAN last_stride: got {last_stride}; allowed: 1, or 2 with n_layers >= 1")
        if n_layers == 0:
            layers = _pixel_layers(in_channels, ndf, norm, leaky_slope, first_bias)
        else:
            layers = _patch_layers(in_channels, n_layers, ndf, norm, leaky_slope, first_bias, last_stride)
        super().__init__(*layers)


def _patch_layers(in_channels: int, n_layers: int, ndf: int, norm: str, leaky_slope: float, first_bias: bool,
                  last_stride: int) -> list[nn.Module]:
    bias = conv_bias(norm)
    layers = [nn.Conv2d(in_channels, ndf, KERNEL, stride=2, padding=PADDING, bias=first_bias), nn.LeakyReLU(leaky_slope)]
    width = ndf
    for n in range(1, n_layers + 1):
        next_width = ndf * min(2 ** n, 8)
        # the reference keeps the resolution in the last one (-1 px) and, with the output conv, gets 70x70 patches
        stride = 2 if n < n_layers else last_stride
        layers += [nn.Conv2d(width, next_width, KERNEL, stride=stride, padding=PADDING, bias=bias),
                   norm_layer(norm, next_width), nn.LeakyReLU(leaky_slope)]
        width = next_width
    layers.append(nn.Conv2d(width, 1, KERNEL, stride=1, padding=PADDING))
    return layers


def _pixel_layers(in_channels: int, ndf: int, norm: str, leaky_slope: float, first_bias: bool) -> list[nn.Module]:
    bias = conv_bias(norm)
    return [nn.Conv2d(in_channels, ndf, kernel_size=1, bias=first_bias), nn.LeakyReLU(leaky_slope),
            nn.Conv2d(ndf, ndf * 2, kernel_size=1, bias=bias), norm_layer(norm, ndf * 2), nn.LeakyReLU(leaky_slope),
            nn.Conv2d(ndf * 2, 1, kernel_size=1, bias=bias)]  # the reference's output conv: bias only with instance norm
