"""The colour spaces the networks predict in and how each scales CIELAB, without torch.

``bench.data.colour`` (the conversions, in torch) re-exports these; ``bench.config`` reads them
from here so that loading a config does not import torch.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LabScaling:
    """How a colourisation colour space scales CIELAB for the networks.

    Input: L / l_divisor - l_offset.  Target: ab / ab_divisor, or, when ab_divisor is None,
    the RGB image scaled to [-1, 1].
    """

    l_divisor: float
    l_offset: float
    ab_divisor: float | None


LAB_SCALINGS = {
    "lab": LabScaling(l_divisor=50.0, l_offset=1.0, ab_divisor=110.0),  # pix2pix (Isola et al. 2017)
    "rgb": LabScaling(l_divisor=50.0, l_offset=1.0, ab_divisor=None),
    "lab_l100_ab128": LabScaling(l_divisor=100.0, l_offset=0.0, ab_divisor=128.0),
}
COLOUR_SPACES = tuple(LAB_SCALINGS)
AB_COLOUR_SPACES = tuple(name for name, scaling in LAB_SCALINGS.items() if scaling.ab_divisor is not None)
ENCODINGS = (*COLOUR_SPACES, "paired")
