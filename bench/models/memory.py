"""What a run's networks need in memory at least, estimated before any weight is allocated.

The networks are built on torch's ``meta`` device (shapes, no storage) and run once on a meta
batch, hooks adding up every layer's output: the parameter count and the activations one
forward pass keeps, exactly, in a fraction of a second whatever their size.  Training holds at
least the weights, their gradients and Adam's two moments (16 bytes a parameter in fp32) and the
activations of G and D for one batch; ``colorbench params`` the weights.  These are lower bounds
(the backward pass, the allocator and the data come on top), so a run refused by them could
never have fitted, and :func:`bench.run.machine.check_memory` refuses it with the estimate and
the machine's memory instead of an allocator's error minutes in.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import torch

from bench.config import RunConfig
from bench.models import build_networks
from bench.run import machine

FP32_BYTES = 4
TRAINING_BYTES_PER_PARAMETER = 4 * FP32_BYTES  # weight, gradient, Adam's first and second moments
ADVICE = "lower generator.ngf, discriminator.ndf, generator.depth, data.image_size or data.batch_size"


@dataclasses.dataclass(frozen=True)
class NetworkSize:
    """Parameters of G and D, and the values one forward pass of a batch through them produces (both exact)."""

    parameters: int
    activations: int


def network_size(config: RunConfig, batch_size: int | None = None) -> NetworkSize:
    """:class:`NetworkSize` of ``config``'s networks, built on the meta device (no memory), for one batch."""
    # Pretrained weights are not read here: they fill parameters the meta build has already counted.
    meta = dataclasses.replace(config, generator=dataclasses.replace(config.generator, pretrained_encoder=False))
    with torch.device("meta"):
        generator, discriminator = build_networks(meta)
    networks = [net for net in (generator, discriminator) if net is not None]
    parameters = sum(p.numel() for net in networks for p in net.parameters())
    produced = [0]

    def count(module: Any, inputs: Any, output: Any) -> None:
        if isinstance(output, torch.Tensor):
            produced[0] += output.numel()

    hooks = [m.register_forward_hook(count) for net in networks for m in net.modules() if not list(m.children())]
    try:
        size = config.data.image_size
        batch = torch.empty(batch_size or config.data.batch_size, config.in_channels, size, size, device="meta")
        with torch.no_grad():
            output = generator(batch)
            if discriminator is not None:
                discriminator(torch.cat([batch, output], 1) if config.discriminator.conditional else output)
    finally:
        for hook in hooks:
            hook.remove()
    return NetworkSize(parameters, produced[0])


def check_parameters_fit(config: RunConfig, device: Any = None) -> NetworkSize:
    """Refuse networks whose weights alone exceed the memory (``colorbench params``); their size otherwise."""
    size = network_size(config, batch_size=1)
    machine.check_memory("generator and discriminator", size.parameters * FP32_BYTES,
                         f"{size.parameters:,} parameters of {FP32_BYTES} bytes", ADVICE, device)
    return size


def check_training_fits(config: RunConfig, device: Any = None) -> NetworkSize:
    """Refuse a training run whose weights, gradients, Adam moments and one batch's activations exceed the memory."""
    size = network_size(config)
    activation_bytes = 2 if config.precision == "bf16" else FP32_BYTES  # autocast keeps the layers' outputs in bf16
    needed = size.parameters * TRAINING_BYTES_PER_PARAMETER + size.activations * activation_bytes
    machine.check_memory("training", needed, f"{size.parameters:,} parameters x {TRAINING_BYTES_PER_PARAMETER} bytes "
                         f"and {size.activations:,} activations of a batch of {config.data.batch_size} x "
                         f"{activation_bytes} bytes", ADVICE, device)
    return size
