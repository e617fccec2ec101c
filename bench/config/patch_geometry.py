"""The PatchGAN's logit-map arithmetic, without torch.

``bench.models.patchgan`` builds its convolutions with these sizes and re-exports the
functions; ``bench.config`` checks ``data.image_size`` with them without importing torch.
"""
from __future__ import annotations

import itertools

KERNEL, PADDING = 4, 1  # every convolution of the n_layers >= 1 PatchGAN


def patch_map_side(image_size: int, n_layers: int, last_stride: int = 1) -> int:
    """Side of the logit map a PatchGAN gives on an ``image_size`` square input; 0 when the map is empty.

    Follows the convolutions' arithmetic, out = floor((in + 2*PADDING - KERNEL) / stride) + 1:
    ``n_layers`` stride-2 convolutions, one of stride ``last_stride``, then the stride-1 output one.
    The n_layers 0 PixelGAN keeps the input's side.
    """
    if n_layers == 0:
        return image_size
    side = image_size
    for stride in (2,) * n_layers + (last_stride, 1):
        side = (side + 2 * PADDING - KERNEL) // stride + 1
        if side < 1:
            return 0
    return side


def min_patch_image_size(n_layers: int, last_stride: int = 1) -> int:
    """Smallest input side for which a PatchGAN's logit map is not empty (3 * 2**n_layers with last_stride 1)."""
    return next(size for size in itertools.count(1) if patch_map_side(size, n_layers, last_stride) > 0)
