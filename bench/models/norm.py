"""Normalisation layers and the conv-bias rule of the pix2pix reference code."""
from __future__ import annotations

from torch import nn

NORMS = ("batch", "instance")


def norm_layer(kind: str, channels: int) -> nn.Module:
    """The reference's norm layers: affine BatchNorm2d, or InstanceNorm2d without affine or running stats."""
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    raise ValueError(f"norm: got {kind!r}; allowed: {', '.join(NORMS)}")


def conv_bias(kind: str) -> bool:
    """Whether a convolution feeding a ``kind`` norm layer gets a bias.

    Batch norm's affine shift makes a bias redundant; the reference keeps it for instance
    norm, which has no affine parameters here.
    """
    if kind not in NORMS:
        raise ValueError(f"norm: got {kind!r}; allowed: {', '.join(NORMS)}")
    return kind == "instance"
