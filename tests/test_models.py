"""Tests of bench.models: exact parameter counts of the reference pix2pix networks and of the seed
reports' variants, forward equivalence with the reference U-Net and with the classic U-Net as seed
report 001 describes it, output shapes, receptive fields, initialisation and pretrained loading."""
from __future__ import annotations

import functools
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from bench.config import ConfigError, DiscriminatorConfig, GeneratorConfig
from bench.models import (
    ClassicUNet,
    PatchGAN,
    ResNet18UNet,
    UNet,
    build_discriminator,
    build_generator,
    count_parameters,
    init_weights,
)
from bench.models.patchgan import min_patch_image_size, patch_map_side
from bench.models.resnet_unet import default_weights_path

WEIGHTS_FILE = "resnet18-f37072fd.pth"


def meta_count(cls, *args, **kwargs) -> int:
    """Parameter count of a network built on the meta device: no memory, no initialisation."""
    with torch.device("meta"):
        return count_parameters(cls(*args, **kwargs))


def n_dropout(module: nn.Module) -> int:
    return sum(isinstance(m, nn.Dropout) for m in module.modules())


def leaky_slopes(module: nn.Module) -> list[float]:
    return [m.negative_slope for m in module.modules() if isinstance(m, nn.LeakyReLU)]


class HandWrittenLeakyReLU(nn.Module):
    """The definition of a leaky ReLU, independent of nn.LeakyReLU."""

    def __init__(self, slope: float) -> None:
        super().__init__()
        self.slope = slope

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.where(x > 0, x, self.slope * x)


def replace_leaky_relus(module: nn.Module, slope: float) -> nn.Module:
    """``module`` with every nn.LeakyReLU replaced, in place, by HandWrittenLeakyReLU(slope)."""
    for name, child in module.named_children():
        if isinstance(child, nn.LeakyReLU):
            setattr(module, name, HandWrittenLeakyReLU(slope))
        else:
            replace_leaky_relus(child, slope)
    return module


# Source report 002, Table I: unet_256 and the 70x70 PatchGAN on facades (RGB -> RGB, D sees 6 channels).
# The reference implementation counts 3 more in G (the output biases) and 64 more in D (the first conv's biases).
SEED_002_G, SEED_002_D = 54_413_952, 2_768_641


# --------------------------------------------------------------------------------------
# Oracle: the reference UnetSkipConnectionBlock / UnetGenerator
# (junyanz/pytorch-CycleGAN-and-pix2pix, models/networks.py), unchanged apart from names.

class RefUnetBlock(nn.Module):
    def __init__(self, outer_nc, inner_nc, input_nc=None, submodule=None, outermost=False, innermost=False,
                 norm_layer=nn.BatchNorm2d, use_dropout=False):
        super().__init__()
        self.outermost = outermost
        if type(norm_layer) == functools.partial:
            use_bias = norm_layer.func == nn.InstanceNorm2d
        else:
            use_bias = norm_layer == nn.InstanceNorm2d
        if input_nc is None:
            input_nc = outer_nc
        downconv = nn.Conv2d(input_nc, inner_nc, kernel_size=4, stride=2, padding=1, bias=use_bias)
        downrelu = nn.LeakyReLU(0.2, True)
        downnorm = norm_layer(inner_nc)
        uprelu = nn.ReLU(True)
        upnorm = norm_layer(outer_nc)
        if outermost:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1)
            model = [downconv, submodule, uprelu, upconv, nn.Tanh()]
        elif innermost:
            upconv = nn.ConvTranspose2d(inner_nc, outer_nc, kernel_size=4, stride=2, padding=1, bias=use_bias)
            model = [downrelu, downconv, uprelu, upconv, upnorm]
        else:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1, bias=use_bias)
            model = [downrelu, downconv, downnorm, submodule, uprelu, upconv, upnorm]
            if use_dropout:
                model += [nn.Dropout(0.5)]
        self.model = nn.Sequential(*model)

    def forward(self, x):
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], 1)


def ref_unet(input_nc, output_nc, num_downs, ngf, norm_layer, use_dropout):
    block = RefUnetBlock(ngf * 8, ngf * 8, submodule=None, norm_layer=norm_layer, innermost=True)
    for _ in range(num_downs - 5):
        block = RefUnetBlock(ngf * 8, ngf * 8, submodule=block, norm_layer=norm_layer, use_dropout=use_dropout)
    block = RefUnetBlock(ngf * 4, ngf * 8, submodule=block, norm_layer=norm_layer)
    block = RefUnetBlock(ngf * 2, ngf * 4, submodule=block, norm_layer=norm_layer)
    block = RefUnetBlock(ngf, ngf * 2, submodule=block, norm_layer=norm_layer)
    return RefUnetBlock(output_nc, ngf, input_nc=input_nc, submodule=block, outermost=True, norm_layer=norm_layer)


REF_NORMS = {"batch": functools.partial(nn.BatchNorm2d, affine=True, track_running_stats=True),
             "instance": functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False)}


# --------------------------------------------------------------------------------------
# UNet

@pytest.mark.parametrize("depth, norm, in_ch, out_ch, expected", [
    (8, "batch", 3, 3, 54_413_955),
    (8, "batch", 1, 2, 54_409_858),
    (8, "instance", 3, 3, 54_409_603),
    (8, "instance", 1, 2, 54_405_506),
    (7, "batch", 3, 3, 41_828_995),
    (7, "batch", 1, 2, 41_824_898),
])
def test_unet_parameter_counts_match_reference(depth, norm, in_ch, out_ch, expected):
    assert meta_count(UNet, in_ch, out_ch, depth, ngf=64, norm=norm) == expected


@pytest.mark.parametrize("norm", ["batch", "instance"])
@pytest.mark.parametrize("depth", [5, 6])
def test_unet_forward_equals_reference(depth, norm):
    torch.manual_seed(0)
    reference = ref_unet(1, 2, depth, ngf=8, norm_layer=REF_NORMS[norm], use_dropout=True)
    unet = UNet(1, 2, depth, ngf=8, norm=norm, dropout=True)
    ref_params, params = list(reference.parameters()), list(unet.parameters())
    assert [p.shape for p in params] == [p.shape for p in ref_params]  # same parameters, in the same order
    with torch.no_grad():
        for p, ref_p in zip(params, ref_params):
            p.copy_(ref_p)
    x = torch.randn(2, 1, 64, 64)
    for train in (True, False):  # batch statistics and dropout, then running statistics
        reference.train(train)
        unet.train(train)
        torch.manual_seed(1)
        expected = reference(x.clone())  # clone: the reference's in-place LeakyReLU must not touch x
        torch.manual_seed(1)
        torch.testing.assert_close(unet(x), expected)


def test_unet_output_has_input_size_and_lies_in_unit_range():
    torch.manual_seed(0)
    unet = UNet(1, 2, depth=5, ngf=8)
    y = unet(100 * torch.randn(2, 1, 32, 64))  # large inputs push pre-Tanh values far beyond +-1
    assert y.shape == (2, 2, 32, 64)
    assert y.abs().max() <= 1
    assert y.min() < -0.9 and y.max() > 0.9


def test_unet_rejects_sides_not_divisible_by_two_to_the_depth():
    with pytest.raises(ValueError, match="multiples of 64"):
        UNet(1, 2, depth=6, ngf=8)(torch.zeros(1, 1, 64, 96))


def test_unet_rejects_depth_below_five():
    with pytest.raises(ValueError, match="depth"):
        UNet(1, 2, depth=4)


def test_unet_without_skips_is_the_encoder_decoder():
    # every up-convolution but the innermost loses inner_nc * outer_nc * 4 * 4 weights
    # (widths 512, 512, 512, 512, 256, 128, 64 -> 3 going outwards)
    lost = 16 * (3 * 512 * 512 + 512 * 256 + 256 * 128 + 128 * 64 + 64 * 3)
    assert meta_count(UNet, 3, 3, 8, skip_connections=False) == 54_413_955 - lost

    x = torch.randn(2, 1, 32, 32)
    outputs = []
    for skips in (True, False):
        torch.manual_seed(0)
        unet = UNet(1, 2, depth=5, ngf=8, skip_connections=skips).eval()
        outputs.append(unet(x))
    assert outputs[1].shape == outputs[0].shape == (2, 2, 32, 32)
    assert not torch.allclose(outputs[0], outputs[1])


@pytest.mark.parametrize("depth, dropout, expected", [(8, True, 3), (7, True, 2), (5, True, 0), (8, False, 0)])
def test_unet_dropout_layers(depth, dropout, expected):
    assert n_dropout(UNet(1, 2, depth, ngf=4, dropout=dropout)) == expected


def test_unet_without_output_bias_has_seed_002_count():
    assert meta_count(UNet, 3, 3, 8, output_bias=False) == SEED_002_G
    unet = UNet(1, 2, depth=5, ngf=4, output_bias=False)
    outermost_up = unet.decoder[-1][1]
    assert outermost_up.out_channels == 2 and outermost_up.bias is None
    assert all(m.bias is not None for m in UNet(1, 2, depth=5, ngf=4).decoder[-1] if isinstance(m, nn.ConvTranspose2d))


def test_unet_leaky_slope_sets_every_encoder_leaky_relu():
    assert leaky_slopes(UNet(1, 2, depth=6, ngf=4)) == [0.2] * 5  # every encoder block but the innermost
    assert leaky_slopes(UNet(1, 2, depth=6, ngf=4, leaky_slope=0.01)) == [0.01] * 5


# --------------------------------------------------------------------------------------
# ClassicUNet

class RefClassicUNet(nn.Module):
    """Oracle: source report 001's U-Net at depth 2, written out flat from its description
    (two 3x3 conv-BN-ReLU per block, max-pool, skip before pooling; bilinear x2 up-sampling,
    1x1 conv halving the channels, skip concatenated first; 1x1 output conv, Tanh)."""

    def __init__(self, in_channels, out_channels, ngf):
        super().__init__()

        def double_conv(c_in, c_out):
            return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
                                 nn.ReLU(inplace=True), nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
                                 nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))

        self.enc1, self.enc2 = double_conv(in_channels, ngf), double_conv(ngf, 2 * ngf)
        self.bottom = double_conv(2 * ngf, 4 * ngf)
        self.up2, self.dec2 = nn.Conv2d(4 * ngf, 2 * ngf, 1), double_conv(4 * ngf, 2 * ngf)
        self.up1, self.dec1 = nn.Conv2d(2 * ngf, ngf, 1), double_conv(2 * ngf, ngf)
        self.out = nn.Conv2d(ngf, out_channels, 1)

    def forward(self, x):
        def up(t):
            return F.interpolate(t, scale_factor=2, mode="bilinear", align_corners=False)

        e1 = self.enc1(x)
        e2 = self.enc2(F.max_pool2d(e1, 2))
        b = self.bottom(F.max_pool2d(e2, 2))
        d2 = self.dec2(torch.cat([e2, self.up2(up(b))], 1))
        d1 = self.dec1(torch.cat([e1, self.up1(up(d2))], 1))
        return torch.tanh(self.out(d1))


@pytest.mark.parametrize("norm", ["batch", "instance"])
def test_classic_unet_parameter_count_from_layer_shapes(norm):
    # Source report 001 / Ronneberger et al.: widths 64, 128, 256, 512, bottleneck 1024; L in, ab out.
    def conv(c_in, c_out, kernel, bias):
        return c_in * c_out * kernel * kernel + (c_out if bias else 0)

    def conv_block(c_in, c_out):  # two 3x3 convs, each followed by a norm: bias only with instance norm
        norm_params = 2 * c_out if norm == "batch" else 0
        bias = norm == "instance"
        return conv(c_in, c_out, 3, bias) + norm_params + conv(c_out, c_out, 3, bias) + norm_params

    encoder = conv_block(1, 64) + conv_block(64, 128) + conv_block(128, 256) + conv_block(256, 512)
    bottleneck = conv_block(512, 1024)
    # each up block: 1x1 conv 2c -> c, then a conv block on the skip (c) + the up-sampled map (c)
    decoder = sum(conv(2 * c, c, 1, True) + conv_block(2 * c, c) for c in (512, 256, 128, 64))
    head = conv(64, 2, 1, True)
    expected = encoder + bottleneck + decoder + head
    if norm == "batch":
        assert expected == 28_947_586
    assert meta_count(ClassicUNet, 1, 2, depth=4, ngf=64, norm=norm) == expected

    # without skips each up block's first 3x3 conv sees c instead of 2c channels
    lost = 9 * (512 * 512 + 256 * 256 + 128 * 128 + 64 * 64)
    assert meta_count(ClassicUNet, 1, 2, depth=4, ngf=64, norm=norm, skip_connections=False) == expected - lost


def test_classic_unet_forward_equals_seed_description():
    torch.manual_seed(0)
    reference = RefClassicUNet(1, 2, ngf=4)
    unet = ClassicUNet(1, 2, depth=2, ngf=4)
    ref_params, params = list(reference.parameters()), list(unet.parameters())
    assert [p.shape for p in params] == [p.shape for p in ref_params]  # same parameters, in the same order
    with torch.no_grad():
        for p, ref_p in zip(params, ref_params):
            p.copy_(ref_p + 0.1 * torch.randn_like(ref_p))  # random biases too, so each one is checked
            ref_p.copy_(p)
    x = torch.randn(2, 1, 16, 24)
    for train in (True, False):  # batch statistics, then running statistics
        reference.train(train)
        unet.train(train)
        torch.testing.assert_close(unet(x), reference(x))


def test_classic_unet_output_shape_range_and_skips():
    x = torch.randn(2, 1, 32, 48)
    outputs = []
    for skips in (True, False):
        torch.manual_seed(0)
        unet = ClassicUNet(1, 2, depth=3, ngf=4, skip_connections=skips)
        with torch.no_grad():
            unet.head[0].weight.mul_(100)  # pre-Tanh values far beyond +-1
        outputs.append(unet(x))
    assert outputs[0].shape == outputs[1].shape == (2, 2, 32, 48)
    assert outputs[0].abs().max() <= 1 and outputs[0].min() < -0.9 and outputs[0].max() > 0.9
    assert not torch.allclose(outputs[0], outputs[1])


def test_classic_unet_has_no_dropout_and_paper_widths():
    unet = ClassicUNet(1, 2, depth=4, ngf=64, norm="instance")
    assert n_dropout(unet) == 0
    widths = [m.out_channels for m in unet.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]
    assert widths[:10] == [64, 64, 128, 128, 256, 256, 512, 512, 1024, 1024]


def test_classic_unet_rejects_bad_depth_and_sides():
    with pytest.raises(ValueError, match="multiples of 16"):
        ClassicUNet(1, 2, depth=4, ngf=4)(torch.zeros(1, 1, 32, 40))
    with pytest.raises(ValueError, match="depth"):
        ClassicUNet(1, 2, depth=0)


# --------------------------------------------------------------------------------------
# PatchGAN

@pytest.mark.parametrize("n_layers, in_ch, expected", [
    (3, 6, 2_768_705), (3, 3, 2_765_633), (1, 6, 139_585), (1, 3, 136_513), (5, 6, 11_159_361),
    (0, 6, 9_024), (0, 3, 8_832),
])
def test_patchgan_parameter_counts_match_reference(n_layers, in_ch, expected):
    assert meta_count(PatchGAN, in_ch, n_layers=n_layers) == expected


@pytest.mark.parametrize("n_layers, side", [(0, 256), (1, 126), (3, 30), (5, 6)])
def test_patchgan_output_map_size_on_256_input(n_layers, side):
    torch.manual_seed(0)
    out = PatchGAN(6, n_layers=n_layers, ndf=8)(torch.randn(1, 6, 256, 256))
    assert out.shape == (1, 1, side, side)
    assert (out < 0).any()  # raw logits, no sigmoid


@pytest.mark.parametrize("n_layers, in_ch, expected", [(3, 6, SEED_002_D), (0, 6, 9_024 - 64)])
def test_patchgan_without_first_bias_drops_ndf_parameters(n_layers, in_ch, expected):
    assert meta_count(PatchGAN, in_ch, n_layers=n_layers, first_bias=False) == expected
    first_conv = PatchGAN(in_ch, n_layers=n_layers, ndf=4, first_bias=False)[0]
    assert first_conv.in_channels == in_ch and first_conv.bias is None


@pytest.mark.parametrize("n_layers, last_stride, side", [(3, 1, 30), (3, 2, 15)])
def test_patchgan_last_stride_output_map_on_256_input(n_layers, last_stride, side):
    # 30x30: pix2pix's 70x70 PatchGAN; 15x15: source report 003's
    torch.manual_seed(0)
    out = PatchGAN(6, n_layers=n_layers, ndf=4, last_stride=last_stride)(torch.randn(1, 6, 256, 256))
    assert out.shape == (1, 1, side, side)
    assert patch_map_side(256, n_layers, last_stride) == side
    assert meta_count(PatchGAN, 6, n_layers=3, last_stride=last_stride) == 2_768_705  # strides hold no parameters


@pytest.mark.parametrize("n_layers, side", [(0, 256), (1, 126), (2, 62), (3, 30), (4, 14), (5, 6)])
def test_patch_map_side_gives_the_reference_maps_on_256(n_layers, side):
    assert patch_map_side(256, n_layers) == side


@pytest.mark.parametrize("n_layers, last_stride", [(1, 1), (1, 2), (3, 1), (3, 2), (5, 1), (5, 2)])
def test_min_patch_image_size_is_the_smallest_non_empty_map(n_layers, last_stride):
    smallest = min_patch_image_size(n_layers, last_stride)
    assert smallest == (3 if last_stride == 1 else 4) * 2 ** n_layers  # >= 3 px before two -1 px convs, or 2 before one
    with torch.no_grad():
        net = PatchGAN(1, n_layers=n_layers, ndf=2, norm="instance", last_stride=last_stride)
        assert net(torch.zeros(1, 1, smallest, smallest)).shape[-1] == 1 == patch_map_side(smallest, n_layers, last_stride)
    assert patch_map_side(smallest - 1, n_layers, last_stride) == 0


def test_patchgan_refuses_last_stride_two_without_layers():
    with pytest.raises(ValueError, match="last_stride"):
        PatchGAN(3, n_layers=0, last_stride=2)
    with pytest.raises(ValueError, match="last_stride"):
        PatchGAN(3, n_layers=3, last_stride=3)


def receptive_field_side(net: nn.Module, in_channels: int, size: int) -> int:
    """Side of the input region one logit (a quarter in from the map's corner) depends on.

    With every parameter a positive constant, in eval mode, every path from an input pixel to
    the logit carries a positive gradient, so the gradient's support is the receptive field.
    """
    with torch.no_grad():
        for p in net.parameters():
            p.fill_(0.05)
    net.eval()
    x = torch.ones(1, in_channels, size, size, requires_grad=True)
    out = net(x)
    i = out.shape[-1] // 4
    out[0, 0, i, i].backward()
    rows = x.grad[0].abs().sum(dim=(0, 2)).nonzero().flatten()
    cols = x.grad[0].abs().sum(dim=(0, 1)).nonzero().flatten()
    assert 0 < rows.min() and rows.max() < size - 1  # the field lies inside the image: not clipped
    assert (rows.max() - rows.min()).item() == (cols.max() - cols.min()).item()
    assert len(rows) == rows.max() - rows.min() + 1  # contiguous
    return (rows.max() - rows.min() + 1).item()


@pytest.mark.parametrize("n_layers, last_stride, expected", [
    (1, 1, 16), (3, 1, 70),  # pix2pix's published patch sizes
    (3, 2, 94),  # source report 003: 1 + 3 * (1 + 2 + 4 + 8 + 16), kernel 4 times the input step of each conv
])
def test_patchgan_receptive_field(n_layers, last_stride, expected):
    net = PatchGAN(3, n_layers=n_layers, ndf=2, last_stride=last_stride)
    assert receptive_field_side(net, 3, 256) == expected


@pytest.mark.parametrize("n_layers", [0, 3])
def test_patchgan_leaky_slope(n_layers):
    assert leaky_slopes(PatchGAN(3, n_layers=n_layers, ndf=4)) == [0.2] * (2 if n_layers == 0 else n_layers + 1)
    assert set(leaky_slopes(PatchGAN(3, n_layers=n_layers, ndf=4, leaky_slope=0.01))) == {0.01}


# --------------------------------------------------------------------------------------
# Leaky slope: a network built with slope s computes what it computes with the definition of a
# leaky ReLU of slope s in place of its LeakyReLUs

@pytest.mark.parametrize("make, in_channels", [
    (lambda slope: UNet(1, 2, depth=5, ngf=4, leaky_slope=slope), 1),
    (lambda slope: PatchGAN(3, n_layers=3, ndf=4, leaky_slope=slope), 3),
    (lambda slope: PatchGAN(3, n_layers=0, ndf=4, leaky_slope=slope), 3),
], ids=["unet", "patchgan", "pixelgan"])
def test_leaky_slope_equals_hand_written_leaky_relu(make, in_channels):
    slope = 0.01
    x = torch.randn(2, in_channels, 32, 32)
    torch.manual_seed(0)
    built = make(slope).eval()
    torch.manual_seed(0)
    default = make(0.2).eval()  # the same weights: the slope draws no random numbers
    with torch.no_grad():
        default_out = default(x)
        expected = replace_leaky_relus(default, slope)(x)
        torch.testing.assert_close(built(x), expected, rtol=0, atol=0)
    assert not torch.allclose(default_out, expected)  # the slope matters here


@pytest.mark.parametrize("n_layers, norm, expected", [
    (3, "batch", [True, False, False, False, True]),  # first and output conv only
    (3, "instance", [True] * 5),
    (0, "batch", [True, False, False]),  # the pixel discriminator's output conv follows the norm rule
    (0, "instance", [True] * 3),
])
def test_patchgan_conv_biases_follow_reference(n_layers, norm, expected):
    convs = [m for m in PatchGAN(3, n_layers=n_layers, ndf=4, norm=norm) if isinstance(m, nn.Conv2d)]
    assert [c.bias is not None for c in convs] == expected


# --------------------------------------------------------------------------------------
# ResNet18UNet and pretrained weights

@pytest.fixture
def torch_home(tmp_path, monkeypatch) -> Path:
    """An empty TORCH_HOME; downloading anything fails the test."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def no_download(*args, **kwargs):
        raise AssertionError("attempted a download")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_download)
    return tmp_path


def fake_weights() -> dict[str, torch.Tensor]:
    torch.manual_seed(1234)
    return torchvision.models.resnet18(weights=None).state_dict()


def save_weights(path: Path) -> dict[str, torch.Tensor]:
    state = fake_weights()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return state


def assert_encoder_holds(model: ResNet18UNet, state: dict[str, torch.Tensor]) -> None:
    stem, _, _, _, layer4 = model.encoder
    torch.testing.assert_close(stem[0].weight, state["conv1.weight"], rtol=0, atol=0)
    torch.testing.assert_close(stem[1].running_mean, state["bn1.running_mean"], rtol=0, atol=0)
    torch.testing.assert_close(layer4[1].conv2.weight, state["layer4.1.conv2.weight"], rtol=0, atol=0)


def test_default_weights_path_is_torchvision_hub_file(torch_home):
    assert default_weights_path() == torch_home / "hub" / "checkpoints" / WEIGHTS_FILE


def test_pretrained_encoder_loads_torchvision_hub_file(torch_home):
    state = save_weights(torch_home / "hub" / "checkpoints" / WEIGHTS_FILE)
    assert_encoder_holds(ResNet18UNet(1, 2, pretrained_encoder=True), state)


def test_pretrained_encoder_loads_given_weights_path(torch_home):
    state = save_weights(torch_home / "elsewhere" / "r18.pth")
    assert_encoder_holds(ResNet18UNet(1, 2, pretrained_encoder=True, weights_path=str(torch_home / "elsewhere" / "r18.pth")),
                         state)


def test_missing_pretrained_weights_raise_naming_the_path(torch_home):
    with pytest.raises(ConfigError) as err:
        ResNet18UNet(1, 2, pretrained_encoder=True)
    assert str(torch_home / "hub" / "checkpoints" / WEIGHTS_FILE) in str(err.value)
    assert "generator.pretrained_path" in str(err.value)


def test_missing_given_weights_path_raises_naming_it(torch_home):
    save_weights(torch_home / "hub" / "checkpoints" / WEIGHTS_FILE)  # present, but not what was asked for
    missing = torch_home / "nope.pth"
    with pytest.raises(ConfigError, match="nope.pth"):
        ResNet18UNet(1, 2, pretrained_encoder=True, weights_path=str(missing))


def test_weights_file_of_another_network_raises(torch_home):
    path = torch_home / "other.pth"
    torch.save(nn.Linear(2, 2).state_dict(), path)
    with pytest.raises(ConfigError, match="not a torchvision ResNet-18"):
        ResNet18UNet(1, 2, pretrained_encoder=True, weights_path=str(path))


def test_resnet_unet_output_shape_and_range(torch_home):
    torch.manual_seed(0)
    model = ResNet18UNet(1, 2, pretrained_encoder=False)  # needs no weights file
    y = model(torch.rand(2, 1, 64, 64) * 2 - 1)
    assert y.shape == (2, 2, 64, 64)
    assert y.abs().max() <= 1


def test_resnet_unet_rejects_sides_not_multiple_of_32():
    with pytest.raises(ValueError, match="multiples of 32"):
        ResNet18UNet(1, 2, pretrained_encoder=False)(torch.zeros(1, 1, 64, 48))


# --------------------------------------------------------------------------------------
# Initialisation

def test_init_weights_draws_reference_normals():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(256, 256, 4), nn.ConvTranspose2d(256, 128, 4), nn.BatchNorm2d(20_000),
                        nn.Linear(1000, 100), nn.InstanceNorm2d(8))
    init_weights(net)
    for layer in (net[0], net[1], net[3]):
        assert layer.weight.std().item() == pytest.approx(0.02, rel=0.02)
        assert layer.weight.mean().abs().item() < 1e-3
        assert torch.all(layer.bias == 0)
    assert net[2].weight.mean().item() == pytest.approx(1.0, abs=1e-3)
    assert net[2].weight.std().item() == pytest.approx(0.02, rel=0.05)
    assert torch.all(net[2].bias == 0)


def test_init_weights_gain():
    conv = nn.Conv2d(128, 128, 4)
    init_weights(conv, gain=0.1)
    assert conv.weight.std().item() == pytest.approx(0.1, rel=0.02)


# --------------------------------------------------------------------------------------
# Builders

def conv_weight_std(module: nn.Module) -> float:
    weights = [m.weight.flatten() for m in module.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    return torch.cat(weights).std().item()


def test_build_generator_unet_follows_config_and_is_initialised():
    generator = build_generator(GeneratorConfig(depth=7, ngf=8, norm="instance"), 1, 2)
    assert isinstance(generator, UNet)
    assert count_parameters(generator) == count_parameters(UNet(1, 2, 7, ngf=8, norm="instance"))
    assert n_dropout(generator) == 2
    assert conv_weight_std(generator) == pytest.approx(0.02, rel=0.05)
    assert n_dropout(build_generator(GeneratorConfig(ngf=8, dropout=False), 1, 2)) == 0


def test_build_generator_passes_unet_output_bias_and_leaky_slope():
    generator = build_generator(GeneratorConfig(depth=5, ngf=4, output_bias=False, leaky_slope=0.01), 1, 2)
    assert generator.decoder[-1][1].bias is None
    assert set(leaky_slopes(generator)) == {0.01}


def test_build_generator_classic_unet_follows_config_and_is_initialised():
    cfg = GeneratorConfig(arch="classic_unet", depth=3, ngf=8, norm="instance", dropout=False, skip_connections=False)
    generator = build_generator(cfg, 1, 2)
    assert isinstance(generator, ClassicUNet)
    expected = ClassicUNet(1, 2, depth=3, ngf=8, norm="instance", skip_connections=False)
    assert [p.shape for p in generator.parameters()] == [p.shape for p in expected.parameters()]
    assert conv_weight_std(generator) == pytest.approx(0.02, rel=0.05)


def test_build_generator_resnet_initialises_the_decoder_only(torch_home):
    state = save_weights(torch_home / "hub" / "checkpoints" / WEIGHTS_FILE)
    generator = build_generator(GeneratorConfig(arch="resnet18_unet", pretrained_encoder=True), 1, 3)
    assert isinstance(generator, ResNet18UNet)
    assert_encoder_holds(generator, state)
    assert conv_weight_std(generator.decoder) == pytest.approx(0.02, rel=0.05)


def test_build_generator_resnet_refuses_to_ignore_skip_connections_off():
    with pytest.raises(ConfigError, match="skip_connections"):
        build_generator(GeneratorConfig(arch="resnet18_unet", skip_connections=False), 1, 2)


def test_build_discriminator():
    assert build_discriminator(DiscriminatorConfig(arch="none"), 3) is None
    discriminator = build_discriminator(DiscriminatorConfig(n_layers=1, ndf=16), 3)
    assert isinstance(discriminator, PatchGAN)
    assert count_parameters(discriminator) == count_parameters(PatchGAN(3, n_layers=1, ndf=16))
    assert discriminator[0].in_channels == 3  # as given by the caller
    assert conv_weight_std(discriminator) == pytest.approx(0.02, rel=0.05)


def test_build_discriminator_passes_seed_knobs():
    cfg = DiscriminatorConfig(ndf=4, leaky_slope=0.01, first_bias=False, last_stride=2)
    discriminator = build_discriminator(cfg, 6)
    assert discriminator[0].bias is None and set(leaky_slopes(discriminator)) == {0.01}
    assert discriminator(torch.zeros(1, 6, 256, 256)).shape == (1, 1, 15, 15)


def test_count_parameters_counts_frozen_parameters_too():
    layer = nn.Linear(3, 2)
    layer.bias.requires_grad_(False)
    assert count_parameters(layer) == 8
