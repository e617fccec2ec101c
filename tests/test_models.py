"""Tests of bench.models: exact parameter counts of the reference pix2pix networks, forward
equivalence with the reference U-Net, output shapes, initialisation and pretrained loading."""
from __future__ import annotations

import functools
from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn

from bench.config import ConfigError, DiscriminatorConfig, GeneratorConfig
from bench.models import (PatchGAN, ResNet18UNet, UNet, build_discriminator, build_generator, count_parameters,
                          init_weights)
from bench.models.resnet_unet import default_weights_path

WEIGHTS_FILE = "resnet18-f37072fd.pth"


def meta_count(cls, *args, **kwargs) -> int:
    """Parameter count of a network built on the meta device: no memory, no initialisation."""
    with torch.device("meta"):
        return count_parameters(cls(*args, **kwargs))


def n_dropout(module: nn.Module) -> int:
    return sum(isinstance(m, nn.Dropout) for m in module.modules())


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


def test_count_parameters_counts_frozen_parameters_too():
    layer = nn.Linear(3, 2)
    layer.bias.requires_grad_(False)
    assert count_parameters(layer) == 8
