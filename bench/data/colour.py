"""Colour conversions between sRGB and CIELAB in torch, and the encoding of 8-bit images for the networks.

The conversions reproduce scikit-image's ``rgb2lab`` / ``lab2rgb`` (sRGB, illuminant D65,
observer 2°), constant for constant and branch for branch, on batched tensors shaped
(B, 3, H, W) of any floating dtype and device.

For colourisation the networks see the L channel and predict either the ab channels or the
RGB image, scaled as the colour space says (``LAB_SCALINGS``): ``"lab"`` is pix2pix's L / 50 - 1
(in [-1, 1]) and ab / 110; ``"rgb"`` takes the same L and predicts RGB scaled to [-1, 1];
``"lab_l100_ab128"`` is L / 100 (in [0, 1]) and ab / 128 (in [-1, 1]).  For a paired dataset
(``"paired"``, e.g. facades' label map -> photo) a batch holds the target photo in channels 0-2
and its paired input image in channels 3-5; the networks see the input image and predict the
photo, both RGB in [-1, 1].
"""
from __future__ import annotations

import torch

# defined without torch for bench.config; re-exported here
from bench.config.colour_spaces import AB_COLOUR_SPACES, COLOUR_SPACES, ENCODINGS, LAB_SCALINGS, LabScaling  # noqa: F401

# scikit-image's sRGB -> XYZ matrix and D65 / 2° white point; XYZ -> sRGB is its inverse,
# computed in float64 as scikit-image does.
_XYZ_FROM_RGB = torch.tensor([[0.412453, 0.357580, 0.180423],
                              [0.212671, 0.715160, 0.072169],
                              [0.019334, 0.119193, 0.950227]], dtype=torch.float64)
_RGB_FROM_XYZ = torch.linalg.inv(_XYZ_FROM_RGB)
_WHITE_D65 = torch.tensor([0.95047, 1.0, 1.08883], dtype=torch.float64)


def _mix_channels(matrix: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """``matrix @ pixel`` for every pixel of a (B, 3, H, W) image.

    Written as an elementwise sum rather than a matmul so that TF32 matmul settings on CUDA
    cannot silently lower the precision of the conversion.
    """
    weights = matrix.to(image)[:, :, None, None]  # (3 out, 3 in, 1, 1)
    return (weights * image.unsqueeze(1)).sum(dim=2)


def _white_point(image: torch.Tensor) -> torch.Tensor:
    return _WHITE_D65.to(image)[:, None, None]


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """CIELAB (D65, 2°) of an sRGB image in [0, 1], shaped (B, 3, H, W); matches ``skimage.color.rgb2lab``.

    L lies in [0, 100], a and b roughly in [-110, 110].
    """
    _check_three_channels("rgb", rgb)
    # clamp_min keeps the untaken branch of each torch.where finite, so gradients stay finite
    linear = torch.where(rgb > 0.04045, ((rgb.clamp_min(0.04045) + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    xyz = _mix_channels(_XYZ_FROM_RGB, linear) / _white_point(rgb)
    f = torch.where(xyz > 0.008856, xyz.clamp_min(0.008856) ** (1.0 / 3.0), 7.787 * xyz + 16.0 / 116.0)
    fx, fy, fz = f.unbind(dim=1)
    return torch.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], dim=1)


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """sRGB in [0, 1] of a CIELAB (D65, 2°) image shaped (B, 3, H, W); matches ``skimage.color.lab2rgb``.

    As in scikit-image, negative Z is set to 0 and the result is clipped to [0, 1].
    """
    _check_three_channels("lab", lab)
    lightness, a, b = lab.unbind(dim=1)
    fy = (lightness + 16.0) / 116.0
    f = torch.stack([fy + a / 500.0, fy, (fy - b / 200.0).clamp_min(0.0)], dim=1)
    xyz = torch.where(f > 0.2068966, f ** 3, (f - 16.0 / 116.0) / 7.787) * _white_point(lab)
    linear = _mix_channels(_RGB_FROM_XYZ, xyz)
    srgb = torch.where(linear > 0.0031308, 1.055 * linear.clamp_min(0.0031308) ** (1 / 2.4) - 0.055,
                       linear * 12.92)
    return srgb.clamp(0.0, 1.0)


def encode(rgb8: torch.Tensor, colour_space: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Network inputs and targets, float32, of a uint8 sRGB batch shaped (B, 3, H, W).

    inputs: scaled L (``LAB_SCALINGS``; L / 50 - 1 in [-1, 1] for ``"lab"`` and ``"rgb"``), shaped (B, 1, H, W).
    targets: Lab colour spaces: scaled ab, shaped (B, 2, H, W) (``"lab"``: ab / 110);
    ``"rgb"``: rgb8 / 255 * 2 - 1, shaped (B, 3, H, W).
    ``"paired"`` takes (B, 6, H, W) pairs, target photo then input image, and returns
    (input image, photo), each rgb8 / 255 * 2 - 1 shaped (B, 3, H, W).
    """
    _check_colour_space(colour_space)
    if colour_space == "paired":
        _check_uint8_channels("rgb8", rgb8, 6)
        scaled = rgb8.float() / 255.0 * 2.0 - 1.0
        return scaled[:, 3:], scaled[:, :3]
    check_rgb8("rgb8", rgb8)
    lab = rgb_to_lab(rgb8.float() / 255.0)
    scaling = LAB_SCALINGS[colour_space]
    inputs = lab[:, :1] / scaling.l_divisor - scaling.l_offset
    if scaling.ab_divisor is not None:
        return inputs, lab[:, 1:] / scaling.ab_divisor
    return inputs, rgb8.float() / 255.0 * 2.0 - 1.0


def decode(inputs: torch.Tensor, outputs: torch.Tensor, colour_space: str) -> torch.Tensor:
    """uint8 sRGB image (B, 3, H, W) from network inputs (scaled L) and outputs; inverse of ``encode``.

    Lab colour spaces: L and ab, unscaled from ``inputs`` and ``outputs`` (``"lab"``: L = (inputs + 1) * 50,
    ab = outputs * 110), are converted with ``lab_to_rgb``; ``"rgb"`` and ``"paired"``: the outputs are
    the image in [-1, 1] and ``inputs`` is not used.  Values are clipped to [0, 1] and rounded to the
    nearest 8-bit level.
    """
    _check_colour_space(colour_space)
    if colour_space in AB_COLOUR_SPACES:
        return _rgb8_of_lab(inputs, outputs * LAB_SCALINGS[colour_space].ab_divisor, colour_space)
    return _to_rgb8(((outputs + 1.0) / 2.0).clamp(0.0, 1.0))


def grey_rgb8(inputs: torch.Tensor, colour_space: str = "lab") -> torch.Tensor:
    """The greyscale network input (L as ``encode`` scales it for ``colour_space``, (B, 1, H, W)) as a uint8
    sRGB image (B, 3, H, W), with a = b = 0."""
    _check_colour_space(colour_space, COLOUR_SPACES)
    return _rgb8_of_lab(inputs, inputs.new_zeros(inputs.shape[0], 2, *inputs.shape[2:]), colour_space)


def input_rgb8(images8: torch.Tensor, colour_space: str) -> torch.Tensor:
    """What the generator is shown for each of ``images8`` (as passed to ``encode``), as uint8 sRGB (B, 3, H, W).

    Colourisation: the greyscale rendering of the L input; ``"paired"``: the paired input image.
    """
    if colour_space == "paired":
        _check_uint8_channels("images8", images8, 6)
        return images8[:, 3:]
    return grey_rgb8(encode(images8, colour_space)[0], colour_space)


def lab_to_rgb8(lab: torch.Tensor) -> torch.Tensor:
    """uint8 sRGB (B, 3, H, W) of a CIELAB image, as ``lab_to_rgb`` clips it, rounded to the nearest 8-bit level."""
    return _to_rgb8(lab_to_rgb(lab))


def _rgb8_of_lab(inputs: torch.Tensor, ab: torch.Tensor, colour_space: str) -> torch.Tensor:
    """uint8 sRGB of the CIELAB image with the L of the network inputs of ``colour_space`` and the given ab."""
    scaling = LAB_SCALINGS[colour_space]
    lightness = (inputs + scaling.l_offset) * scaling.l_divisor  # undoes encode's scaling
    return lab_to_rgb8(torch.cat([lightness, ab], dim=1))


def _to_rgb8(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB in [0, 1] rounded to the nearest 8-bit level."""
    return (rgb * 255.0).round().to(torch.uint8)


def _check_three_channels(name: str, image: torch.Tensor) -> None:
    if image.ndim != 4 or image.shape[1] != 3 or not image.is_floating_point():
        raise ValueError(f"{name}: expected a float tensor shaped (B, 3, H, W); "
                         f"got {image.dtype} {tuple(image.shape)}")


def check_rgb8(name: str, rgb8: torch.Tensor) -> None:
    """Raise ValueError, naming ``name``, unless ``rgb8`` is a uint8 tensor shaped (B, 3, H, W)."""
    _check_uint8_channels(name, rgb8, 3)


def _check_uint8_channels(name: str, images8: torch.Tensor, channels: int) -> None:
    if images8.dtype != torch.uint8 or images8.ndim != 4 or images8.shape[1] != channels:
        raise ValueError(f"{name}: expected a uint8 tensor shaped (B, {channels}, H, W); "
                         f"got {images8.dtype} {tuple(images8.shape)}")


def _check_colour_space(colour_space: str, allowed: tuple[str, ...] = ENCODINGS) -> None:
    if colour_space not in allowed:
        raise ValueError(f"colour_space: got {colour_space!r}; allowed: {', '.join(allowed)}")
