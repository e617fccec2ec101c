"""U-Net generator with a torchvision ResNet-18 encoder, optionally ImageNet-pretrained.

Pretrained weights are read from a local file only: nothing is ever downloaded, and a
missing file is an error, never a silent fall-back to random weights.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from bench.config import ConfigError
from bench.data.assets import asset_path
from bench.models.norm import conv_bias, norm_layer
from bench.run.checkpoint import load_problem

ENCODER_CHANNELS = (64, 64, 128, 256, 512)  # stage outputs at 1/2, 1/4, 1/8, 1/16, 1/32
DECODER_CHANNELS = (256, 128, 64, 64, 32)  # block outputs at 1/16, 1/8, 1/4, 1/2, 1/1
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def default_weights_path() -> Path:
    """Where torchvision's ResNet18_Weights.IMAGENET1K_V1 download lands: <torch hub dir>/checkpoints/resnet18-f37072fd.pth."""
    return asset_path("resnet18")


def load_imagenet_resnet18(weights_path: str | Path | None = None) -> torchvision.models.ResNet:
    """A ResNet-18 with ImageNet weights from ``weights_path``, or else from torchvision's hub-cache file.

    Raises ConfigError, naming the path looked at, if the file is missing or is not a
    ResNet-18 state dict.
    """
    path = Path(weights_path) if weights_path is not None else default_weights_path()
    if not path.is_file():
        raise ConfigError(
            f"generator.pretrained_encoder: ImageNet ResNet-18 weights not found; looked at: {path}. "
            f"Put the weights file there (on a machine with internet, torchvision's "
            f"ResNet18_Weights.IMAGENET1K_V1 download writes exactly that file, to {default_weights_path()} "
            f"under the same TORCH_HOME), or give its path with generator.pretrained_path. "
            f"Weights are never downloaded here.")
    resnet = torchvision.models.resnet18(weights=None)
    try:
        resnet.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
    except Exception as err:  # torch's messages span many lines (every missing key, the unpickler's advice)
        raise ConfigError(f"generator.pretrained_path: {path} is not a torchvision ResNet-18 state dict "
                          f"({load_problem(err)})") from None
    return resnet


class _UpBlock(nn.Module):
    """Upsample x2, concatenate the encoder feature of that scale, then two 3x3 conv-norm-ReLU."""

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int, norm: str) -> None:
        super().__init__()
        bias = conv_bias(norm)
        self.convs = nn.Sequential(
            nn.Conv2d(in_channels + skip_channels, out_channels, kernel_size=3, padding=1, bias=bias),
            norm_layer(norm, out_channels), nn.ReLU(),
            nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1, bias=bias),
            norm_layer(norm, out_channels), nn.ReLU())

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        return self.convs(torch.cat([x, skip], dim=1))


class _Decoder(nn.Module):
    """From the 1/32 features back to full resolution, then a 3x3 conv and Tanh."""

    def __init__(self, in_channels: int, out_channels: int, norm: str) -> None:
        super().__init__()
        # skips from 1/16 up to full resolution, where the skip is the generator's input
        skip_channels = (*ENCODER_CHANNELS[-2::-1], in_channels)
        block_inputs = (ENCODER_CHANNELS[-1], *DECODER_CHANNELS[:-1])
        self.blocks = nn.ModuleList(_UpBlock(i, s, o, norm)
                                    for i, s, o in zip(block_inputs, skip_channels, DECODER_CHANNELS))
        self.head = nn.Sequential(nn.Conv2d(DECODER_CHANNELS[-1], out_channels, kernel_size=3, padding=1), nn.Tanh())

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        """``features``: the input, then the encoder outputs from 1/2 to 1/32."""
        x = features[-1]
        for block, skip in zip(self.blocks, reversed(features[:-1])):
            x = block(x, skip)
        return self.head(x)


class ResNet18UNet(nn.Module):
    """U-Net whose encoder is torchvision's ResNet-18 (conv1-bn1-relu, maxpool-layer1, layer2..4).

    Inputs are in [-1, 1] (the benchmark's L/50 - 1) with 1 or 3 channels; they are mapped to
    ImageNet statistics, and a single channel is repeated to three, so ImageNet weights
    apply.  Input sides must be multiples of 32.  ``norm`` applies to the decoder; the
    encoder keeps ResNet-18's batch norm.  ``pretrained_encoder`` loads ImageNet weights
    with :func:`load_imagenet_resnet18` (never downloads).
    """

    def __init__(self, in_channels: int, out_channels: int, pretrained_encoder: bool,
                 weights_path: str | None = None, norm: str = "batch") -> None:
        super().__init__()
        if in_channels not in (1, 3):
            raise ValueError(f"ResNet18UNet in_channels: got {in_channels}; allowed: 1, 3")
        resnet = load_imagenet_resnet18(weights_path) if pretrained_encoder else torchvision.models.resnet18(weights=None)
        self.encoder = nn.ModuleList([
            nn.Sequential(resnet.conv1, resnet.bn1, resnet.relu),
            nn.Sequential(resnet.maxpool, resnet.layer1),
            resnet.layer2, resnet.layer3, resnet.layer4])
        self.decoder = _Decoder(in_channels, out_channels, norm)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map (N, in_channels, H, W) to (N, out_channels, H, W) in [-1, 1]."""
        if x.shape[-2] % 32 or x.shape[-1] % 32:
            raise ValueError(f"ResNet18UNet: input sides must be multiples of 32, got {tuple(x.shape[-2:])}")
        h = (x.expand(-1, 3, -1, -1) + 1) / 2  # [-1, 1] -> [0, 1], the range ImageNet statistics refer to
        h = (h - self.mean) / self.std
        features = [x]
        for stage in self.encoder:
            h = stage(h)
            features.append(h)
        return self.decoder(features)
