"""The pix2pix reference weight initialisation, ``init_weights(net, 'normal', 0.02)``."""
from __future__ import annotations

from torch import nn

# The reference matches class names containing "Conv" or "Linear", and "BatchNorm2d".
_WEIGHT_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d, nn.Linear)


def init_weights(module: nn.Module, gain: float = 0.02) -> None:
    """Re-initialise ``module`` and its children in place, drawing from the global torch RNG.

    Convolution and linear weights ~ N(0, gain) with zero biases; BatchNorm2d weights
    ~ N(1, gain) with zero biases.  Other layers (e.g. affine-free InstanceNorm2d) are left as they are.
    """
    for layer in module.modules():
        if isinstance(layer, _WEIGHT_LAYERS):
            nn.init.normal_(layer.weight, 0.0, gain)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        elif isinstance(layer, nn.BatchNorm2d) and layer.affine:
            nn.init.normal_(layer.weight, 1.0, gain)
            nn.init.zeros_(layer.bias)
