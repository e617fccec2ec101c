"""Generator and discriminator networks, built from the run configuration."""
from __future__ import annotations

from torch import nn

from bench.config import DiscriminatorConfig, GeneratorConfig, RunConfig
from bench.models.classic_unet import ClassicUNet
from bench.models.init import init_weights
from bench.models.patchgan import PatchGAN
from bench.models.resnet_unet import ResNet18UNet
from bench.models.unet import UNet

__all__ = ["ClassicUNet", "PatchGAN", "ResNet18UNet", "UNet", "build_discriminator", "build_generator",
           "build_networks", "count_parameters", "init_weights"]


def build_generator(cfg: GeneratorConfig, in_channels: int, out_channels: int) -> nn.Module:
    """The generator ``cfg`` describes, with pix2pix's N(0, 0.02) initialisation.

    For resnet18_unet only the decoder is initialised that way; the encoder keeps
    torchvision's initialisation or the pretrained weights.
    """
    if cfg.arch == "resnet18_unet":
        generator = ResNet18UNet(in_channels, out_channels, cfg.pretrained_encoder, cfg.pretrained_path, cfg.norm)
        init_weights(generator.decoder)
        return generator
    if cfg.arch == "unet":
        generator = UNet(in_channels, out_channels, cfg.depth, cfg.ngf, cfg.norm, cfg.dropout, cfg.skip_connections,
                         output_bias=cfg.output_bias, leaky_slope=cfg.leaky_slope)
    else:  # classic_unet; its config refuses dropout, which it does not have
        generator = ClassicUNet(in_channels, out_channels, cfg.depth, cfg.ngf, cfg.norm, cfg.skip_connections)
    init_weights(generator)
    return generator


def build_discriminator(cfg: DiscriminatorConfig, in_channels: int) -> nn.Module | None:
    """The PatchGAN ``cfg`` describes, initialised N(0, 0.02); None when ``cfg.arch`` is none.

    ``in_channels`` is the caller's choice: input + output channels when conditional,
    output channels alone otherwise.
    """
    if cfg.arch == "none":
        return None
    discriminator = PatchGAN(in_channels, cfg.n_layers, cfg.ndf, cfg.norm, leaky_slope=cfg.leaky_slope,
                             first_bias=cfg.first_bias, last_stride=cfg.last_stride)
    init_weights(discriminator)
    return discriminator


def build_networks(config: RunConfig) -> tuple[nn.Module, nn.Module | None]:
    """Generator and discriminator of a run; D sees input and output when conditional, else the output."""
    generator = build_generator(config.generator, config.in_channels, config.out_channels)
    d_in = config.in_channels + config.out_channels if config.discriminator.conditional else config.out_channels
    return generator, build_discriminator(config.discriminator, d_in)


def count_parameters(module: nn.Module) -> int:
    """Number of scalar parameters of ``module``, trainable or not."""
    return sum(p.numel() for p in module.parameters())
