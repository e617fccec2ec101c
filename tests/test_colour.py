"""bench.data.colour against scikit-image's rgb2lab / lab2rgb, and the encode / decode round trip."""
import re
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis.extra.numpy import arrays
from skimage import color, data

from bench.config import load_config
from bench.data.colour import decode, encode, grey_rgb8, input_rgb8, lab_to_rgb, rgb_to_lab


def to_batch(image_hwc: np.ndarray) -> torch.Tensor:
    """(H, W, 3) numpy -> (1, 3, H, W) torch."""
    return torch.from_numpy(np.ascontiguousarray(image_hwc)).permute(2, 0, 1)[None]


def to_hwc(batch: torch.Tensor) -> np.ndarray:
    """(1, 3, H, W) torch -> (H, W, 3) numpy."""
    return batch[0].permute(1, 2, 0).cpu().numpy()


def rgb_cube(step: int) -> torch.Tensor:
    """uint8 image (1, 3, 1, N) of every colour on a grid of the RGB cube, corners included."""
    levels = torch.tensor(sorted(set(range(0, 256, step)) | {255}), dtype=torch.uint8)
    grid = torch.stack(torch.meshgrid(levels, levels, levels, indexing="ij")).reshape(3, -1)
    return grid[None, :, None, :]


def random_rgb(seed: int) -> np.ndarray:
    """Random float64 sRGB image with exact 0 and 1 and values either side of the sRGB linear segment."""
    rng = np.random.default_rng(seed)
    image = rng.uniform(0.0, 1.0, (32, 32, 3))
    image[0, :6] = [[0, 0, 0], [1, 1, 1], [0.04045, 0.04, 0.041], [0.001, 0.5, 1], [1, 0, 0], [0, 0, 1]]
    return image


PHOTOS = {"astronaut": data.astronaut()[::4, ::4], "coffee": data.coffee()[::4, ::4]}
RGB_IMAGES = {"random": random_rgb(0), **{name: photo / 255.0 for name, photo in PHOTOS.items()}}


@pytest.mark.parametrize("name", RGB_IMAGES)
def test_rgb_to_lab_matches_skimage(name):
    rgb = RGB_IMAGES[name]
    lab = rgb_to_lab(to_batch(rgb))
    assert lab.dtype == torch.float64
    np.testing.assert_allclose(to_hwc(lab), color.rgb2lab(rgb), rtol=0, atol=1e-6)


def test_rgb_to_lab_converts_each_image_of_a_batch():
    photos = [photo[:64, :64] / 255.0 for photo in PHOTOS.values()]
    lab = rgb_to_lab(torch.cat([to_batch(photo) for photo in photos]))
    for index, photo in enumerate(photos):
        np.testing.assert_allclose(to_hwc(lab[index:index + 1]), color.rgb2lab(photo), rtol=0, atol=1e-6)


def random_lab(seed: int) -> np.ndarray:
    """Random Lab image over L in [0, 100], ab in [-110, 110]: many colours out of the sRGB gamut."""
    return np.random.default_rng(seed).uniform([0, -110, -110], [100, 110, 110], (32, 32, 3))


LAB_IMAGES = {"random": random_lab(1), **{name: color.rgb2lab(photo) for name, photo in PHOTOS.items()}}


@pytest.mark.parametrize("name", LAB_IMAGES)
def test_lab_to_rgb_matches_skimage(name):
    lab = LAB_IMAGES[name]
    with warnings.catch_warnings():
        # skimage warns when it sets negative Z to 0, which the random Lab image is built to provoke
        warnings.simplefilter("ignore", UserWarning)
        expected = color.lab2rgb(lab)
    rgb = lab_to_rgb(to_batch(lab))
    assert rgb.dtype == torch.float64
    np.testing.assert_allclose(to_hwc(rgb), expected, rtol=0, atol=1e-6)
    assert rgb.min() >= 0 and rgb.max() <= 1


def test_float32_conversions_stay_float32_and_close_to_skimage():
    rgb = RGB_IMAGES["astronaut"]
    lab = rgb_to_lab(to_batch(rgb).float())
    assert lab.dtype == torch.float32
    np.testing.assert_allclose(to_hwc(lab), color.rgb2lab(rgb), rtol=0, atol=1e-3)
    back = lab_to_rgb(lab)
    assert back.dtype == torch.float32
    np.testing.assert_allclose(to_hwc(back), rgb, rtol=0, atol=1e-4)


@pytest.mark.parametrize("colour_space, channels", [("lab", 2), ("rgb", 3)])
def test_encode_shapes_dtypes_and_targets(colour_space, channels):
    rgb8 = to_batch(PHOTOS["coffee"])
    inputs, targets = encode(rgb8, colour_space)
    assert inputs.shape == (1, 1, *rgb8.shape[2:]) and inputs.dtype == torch.float32
    assert targets.shape == (1, channels, *rgb8.shape[2:]) and targets.dtype == torch.float32
    lab = color.rgb2lab(PHOTOS["coffee"])
    np.testing.assert_allclose(inputs[0, 0].numpy(), lab[..., 0] / 50 - 1, atol=1e-5)
    expected = lab[..., 1:] / 110 if colour_space == "lab" else PHOTOS["coffee"] / 255 * 2 - 1
    np.testing.assert_allclose(to_hwc(targets), expected, atol=1e-5)


def test_lab_l100_ab128_sees_l_over_100_and_predicts_ab_over_128():
    photo = PHOTOS["coffee"]
    inputs, targets = encode(to_batch(photo), "lab_l100_ab128")
    assert inputs.shape == (1, 1, *photo.shape[:2]) and targets.shape == (1, 2, *photo.shape[:2])
    assert inputs.dtype == targets.dtype == torch.float32
    lab = color.rgb2lab(photo)
    np.testing.assert_allclose(inputs[0, 0].numpy(), lab[..., 0] / 100, atol=1e-6)
    np.testing.assert_allclose(to_hwc(targets), lab[..., 1:] / 128, atol=1e-6)


def test_lab_l100_ab128_ranges():
    inputs, targets = encode(rgb_cube(step=5), "lab_l100_ab128")
    assert inputs.min() == 0.0 and inputs.max() == pytest.approx(1.0, abs=1e-6)  # black and white
    # sRGB's most extreme ab: b of pure blue, about -107.9, and a of magenta, about 98.2 (skimage)
    extremes = color.rgb2lab(np.array([[[0, 0, 255], [255, 0, 255]]], np.uint8))
    assert targets.min().item() == pytest.approx(extremes[0, 0, 2] / 128, abs=1e-6)
    assert targets.abs().max() < 1


def test_lab_l100_ab128_needs_two_output_channels():
    assert load_config(None, ["colour_space=lab_l100_ab128"]).out_channels == 2
    assert load_config(None, ["colour_space=lab"]).out_channels == 2
    assert load_config(None, ["colour_space=rgb"]).out_channels == 3


def test_l_input_spans_exactly_minus_one_to_one():
    inputs, _ = encode(rgb_cube(step=5), "lab")
    assert inputs.min() == -1.0 and inputs.max() == 1.0  # black and white
    black_and_white = torch.tensor([0, 255], dtype=torch.uint8).expand(1, 3, 1, 2)
    assert encode(black_and_white, "lab")[0].flatten().tolist() == [-1.0, 1.0]


@pytest.mark.parametrize("rgb8", [rgb_cube(step=5), *map(to_batch, PHOTOS.values())],
                         ids=["rgb_cube", *PHOTOS])
def test_decode_inverts_encode(rgb8):
    for colour_space in ("lab", "lab_l100_ab128"):
        lab_round_trip = decode(*encode(rgb8, colour_space), colour_space)
        assert lab_round_trip.dtype == torch.uint8
        assert (lab_round_trip.int() - rgb8.int()).abs().max() <= 1, colour_space
    assert torch.equal(decode(*encode(rgb8, "rgb"), "rgb"), rgb8)


@settings(max_examples=50, deadline=None)
@given(arrays(np.uint8, (2, 3, 3, 4)))
def test_decode_inverts_encode_for_any_image(image):
    rgb8 = torch.from_numpy(image)
    for colour_space in ("lab", "lab_l100_ab128"):
        assert (decode(*encode(rgb8, colour_space), colour_space).int() - rgb8.int()).abs().max() <= 1
    assert torch.equal(decode(*encode(rgb8, "rgb"), "rgb"), rgb8)


def test_lab_l100_ab128_decodes_its_own_scaling():
    """Outputs decoded as L * 100 and ab * 128, independently of encode: a known Lab colour comes back."""
    lab = np.array([[[60.0, 40.0, -30.0], [30.0, -20.0, 50.0]]])
    expected = np.round(color.lab2rgb(lab) * 255)
    inputs = torch.from_numpy(lab[..., :1] / 100).float().permute(2, 0, 1)[None]
    outputs = torch.from_numpy(lab[..., 1:] / 128).float().permute(2, 0, 1)[None]
    decoded = to_hwc(decode(inputs, outputs, "lab_l100_ab128")).astype(int)
    assert np.abs(decoded - expected).max() <= 1
    pix2pix = to_hwc(decode(inputs, outputs, "lab")).astype(int)  # the other scaling gives other colours
    assert np.abs(pix2pix - expected).max() > 10


def test_decode_rounds_to_nearest_level():
    # 100.7 / 255 must decode to 101 (truncation gives 100) and 100.3 / 255 to 100
    levels = torch.tensor([100.7, 100.3], dtype=torch.float64) / 255
    rgb_outputs = (levels * 2 - 1).float().expand(1, 3, 1, 2)
    assert decode(torch.zeros(1, 1, 1, 2), rgb_outputs, "rgb").flatten().tolist() == [101, 100] * 3

    grey_lightness = color.rgb2lab(levels.numpy()[:, None].repeat(3, axis=1))[:, 0]
    inputs = torch.from_numpy(grey_lightness / 50 - 1).float().reshape(1, 1, 1, 2)
    assert decode(inputs, torch.zeros(1, 2, 1, 2), "lab").flatten().tolist() == [101, 100] * 3


def test_grey_rgb8_renders_lightness_as_neutral_grey():
    inputs, _ = encode(to_batch(PHOTOS["astronaut"]), "lab")
    grey = grey_rgb8(inputs)
    lab = np.stack([(inputs[0, 0].double().numpy() + 1) * 50, *[np.zeros(inputs.shape[2:])] * 2], axis=-1)
    expected = np.round(color.lab2rgb(lab) * 255)
    assert grey.dtype == torch.uint8 and grey.shape == (1, 3, *inputs.shape[2:])
    assert np.abs(to_hwc(grey).astype(int) - expected).max() <= 1


def test_grey_rgb8_returns_grey_images_unchanged():
    grey_levels = torch.arange(256, dtype=torch.uint8).expand(1, 3, 1, 256)
    assert torch.equal(grey_rgb8(encode(grey_levels, "lab")[0]), grey_levels)
    assert torch.equal(grey_rgb8(encode(grey_levels, "lab_l100_ab128")[0], "lab_l100_ab128"), grey_levels)


@pytest.mark.parametrize("colour_space", ["lab", "rgb", "lab_l100_ab128"])
def test_input_rgb8_is_the_greyscale_of_the_photo(colour_space):
    """skimage: lightness of the photo with a = b = 0, back to 8-bit; the same whatever the scaling."""
    photo = PHOTOS["astronaut"]
    lab = color.rgb2lab(photo)
    lab[..., 1:] = 0
    expected = np.round(color.lab2rgb(lab) * 255)
    shown = to_hwc(input_rgb8(to_batch(photo), colour_space)).astype(int)
    assert np.abs(shown - expected).max() <= 1


def test_unknown_colour_space_is_rejected():
    with pytest.raises(ValueError, match="colour_space"):
        encode(to_batch(PHOTOS["coffee"]), "hsv")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    rgb8 = to_batch(PHOTOS["astronaut"])
    inputs, targets = encode(rgb8.cuda(), "lab")
    cpu_inputs, cpu_targets = encode(rgb8, "lab")
    torch.testing.assert_close(inputs.cpu(), cpu_inputs, rtol=0, atol=1e-5)
    torch.testing.assert_close(targets.cpu(), cpu_targets, rtol=0, atol=1e-5)
    assert (decode(inputs, targets, "lab").cpu().int() - rgb8.int()).abs().max() <= 1


# ---- the paired encoding and the argument checks (mutation testing found these untested) ----

def test_paired_encoding_scales_each_half_to_minus_one_one_and_returns_input_then_photo():
    photo = torch.tensor([0, 51, 255], dtype=torch.uint8).view(1, 3, 1, 1).expand(1, 3, 2, 2)
    label = torch.tensor([255, 102, 0], dtype=torch.uint8).view(1, 3, 1, 1).expand(1, 3, 2, 2)
    pair = torch.cat([photo, label], dim=1).contiguous()
    inputs, targets = encode(pair, "paired")
    assert torch.allclose(inputs[0, :, 0, 0], torch.tensor([1.0, 102 / 127.5 - 1, -1.0]))
    assert torch.allclose(targets[0, :, 0, 0], torch.tensor([-1.0, 51 / 127.5 - 1, 1.0]))
    assert torch.equal(input_rgb8(pair, "paired"), label)
    assert torch.equal(decode(inputs, targets, "paired"), photo)


def test_decoding_rgb_clips_outputs_beyond_minus_one_one():
    outputs = torch.tensor([-3.0, 0.0, 3.0]).view(1, 3, 1, 1)
    assert decode(outputs[:, :1], outputs, "rgb").flatten().tolist() == [0, 128, 255]


@pytest.mark.parametrize("call, name, shape", [
    (lambda: encode(torch.zeros(1, 3, 2, 2, dtype=torch.uint8), "paired"), "rgb8", "(B, 6, H, W)"),
    (lambda: input_rgb8(torch.zeros(1, 5, 2, 2, dtype=torch.uint8), "paired"), "images8", "(B, 6, H, W)"),
    (lambda: encode(torch.zeros(1, 3, 2, 2), "lab"), "rgb8", "(B, 3, H, W)"),
    (lambda: rgb_to_lab(torch.zeros(1, 3, 2, 2, dtype=torch.uint8)), "rgb", "(B, 3, H, W)"),
    (lambda: lab_to_rgb(torch.zeros(1, 2, 2, 2)), "lab", "(B, 3, H, W)"),
])
def test_a_wrong_tensor_is_refused_naming_the_argument(call, name, shape):
    with pytest.raises(ValueError, match=re.escape(f"{name}: expected a ") + ".*" + re.escape(shape)):
        call()


def test_the_grey_rendering_refuses_the_paired_encoding():
    from bench.data.colour import COLOUR_SPACES
    with pytest.raises(ValueError, match=re.escape(f"colour_space: got 'paired'; allowed: {', '.join(COLOUR_SPACES)}")):
        grey_rgb8(torch.zeros(1, 1, 2, 2), "paired")
