"""optim.grad_clip_norm and optim.grad_clip_scope: what train_step clips, checked against clipping and Adam by hand.

One train_step on a fixed batch from fixed weights.  The gradients each network's backward
leaves (before any clipping) are recorded, as are those its optimiser steps with; the
expected ones are the former scaled by min(1, clip / global L2 norm), written out here.
"""
from dataclasses import dataclass

import pytest
import torch

from bench.config import ConfigError, load_config
from bench.models import build_networks
from bench.run.identity import config_hash
from bench.training.train import build_optimizer, train_step

CLIP = 1e-3  # far below both networks' gradient norms, so clipping always acts
CLIPPED = {"both": {"G", "D"}, "generator": {"G"}}


def _config(*overrides):
    return load_config(None, [
        "data.image_size=32", "data.batch_size=2", "generator.depth=5", "generator.ngf=8", "generator.dropout=false",
        "discriminator.ndf=8", "discriminator.n_layers=1", "device=cpu", *overrides])


@dataclass
class Step:
    """Per network ("G", "D"), one tensor per parameter."""
    before: dict[str, list[torch.Tensor]]  # parameters before the step
    raw: dict[str, list[torch.Tensor]]  # gradients as backward left them
    seen: dict[str, list[torch.Tensor]]  # gradients when the optimiser stepped
    after: dict[str, list[torch.Tensor]]  # parameters after the step


def one_step(config, tmp_path) -> Step:
    torch.manual_seed(0)
    networks = dict(zip(("G", "D"), build_networks(config)))
    optimisers = {name: build_optimizer(network, config) for name, network in networks.items()}
    before = {name: [p.detach().clone() for p in network.parameters()] for name, network in networks.items()}
    raw = {name: {} for name in networks}
    seen = {}
    for name, network in networks.items():
        for index, param in enumerate(network.parameters()):
            param.register_post_accumulate_grad_hook(
                lambda p, name=name, index=index: raw[name].__setitem__(index, p.grad.clone()))
        optimisers[name].register_step_pre_hook(
            lambda optimiser, args, kwargs, name=name: seen.__setitem__(
                name, [p.grad.clone() for p in networks[name].parameters()]))
    batch = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    train_step(batch, networks["G"], networks["D"], optimisers["G"], optimisers["D"], config, adversarial=True,
               run_dir=tmp_path, step=0)
    after = {name: [p.detach().clone() for p in network.parameters()] for name, network in networks.items()}
    raw = {name: [grads[index] for index in range(len(before[name]))] for name, grads in raw.items()}
    return Step(before, raw, seen, after)


def global_norm(tensors) -> float:
    return float(sum(t.double().square().sum() for t in tensors).sqrt())


def clipped(grads, max_norm: float) -> list[torch.Tensor]:
    """The gradients scaled by min(1, max_norm / their global L2 norm), in float64."""
    scale = min(1.0, max_norm / global_norm(grads))
    return [g.double() * scale for g in grads]


def adam_first_step(params, grads, lr: float, eps: float = 1e-8) -> list[torch.Tensor]:
    """Adam's first update from zero moments: bias correction leaves p - lr * g / (|g| + eps), in float64."""
    return [p.double() - lr * g.double() / (g.double().abs() + eps) for p, g in zip(params, grads)]


def close(actual, expected, rtol: float, atol: float) -> bool:
    return all(torch.allclose(a.double(), e.double(), rtol=rtol, atol=atol) for a, e in zip(actual, expected))


@pytest.mark.parametrize("scope", ["both", "generator"])
def test_the_optimisers_see_clipped_gradients_exactly_for_the_networks_in_scope(scope, tmp_path):
    step = one_step(_config(f"optim.grad_clip_norm={CLIP}", f"optim.grad_clip_scope={scope}"), tmp_path)
    for name in ("G", "D"):
        assert global_norm(step.raw[name]) > 10 * CLIP, name  # clipping has something to do
        if name in CLIPPED[scope]:
            assert global_norm(step.seen[name]) <= CLIP * (1 + 1e-6), name
            # torch divides by norm + 1e-6: a relative difference of 1e-6 / norm, here below 1e-5
            assert close(step.seen[name], clipped(step.raw[name], CLIP), rtol=1e-4, atol=1e-15), name
        else:
            assert all(torch.equal(s, r) for s, r in zip(step.seen[name], step.raw[name])), name


@pytest.mark.parametrize("scope", ["both", "generator"])
def test_each_parameter_update_is_adams_step_on_the_gradient_its_scope_gives(scope, tmp_path):
    config = _config(f"optim.grad_clip_norm={CLIP}", f"optim.grad_clip_scope={scope}")
    step = one_step(config, tmp_path)
    for name in ("G", "D"):
        with_clipping = adam_first_step(step.before[name], clipped(step.raw[name], CLIP), config.optim.lr)
        without = adam_first_step(step.before[name], step.raw[name], config.optim.lr)
        expected, other = (with_clipping, without) if name in CLIPPED[scope] else (without, with_clipping)
        # about 16 float32 steps of the parameter's size; with |g| clipped to ~1e-6 and eps = 1e-8, clipping
        # changes lr * g / (|g| + eps) by ~1 % of lr, some 1e5 times more
        assert close(step.after[name], expected, rtol=2e-6, atol=1e-10), name
        assert not close(step.after[name], other, rtol=2e-6, atol=1e-10), name


def test_generator_scope_steps_the_discriminator_as_no_clipping_does(tmp_path):
    unclipped = one_step(_config(), tmp_path).after["D"]
    generator_only = one_step(_config(f"optim.grad_clip_norm={CLIP}", "optim.grad_clip_scope=generator"),
                              tmp_path).after["D"]
    both = one_step(_config(f"optim.grad_clip_norm={CLIP}"), tmp_path).after["D"]
    assert all(torch.equal(a, b) for a, b in zip(generator_only, unclipped))
    assert not all(torch.equal(a, b) for a, b in zip(both, unclipped))  # so the equality above says something


def test_generator_scope_needs_a_clip_norm_and_is_part_of_the_run_identity():
    with pytest.raises(ConfigError, match="optim.grad_clip_scope: got generator with optim.grad_clip_norm null"):
        _config("optim.grad_clip_scope=generator")
    with pytest.raises(ConfigError, match="optim.grad_clip_scope: got 'discriminator'; allowed: both, generator"):
        _config("optim.grad_clip_norm=1", "optim.grad_clip_scope=discriminator")
    assert config_hash(_config("optim.grad_clip_norm=1", "optim.grad_clip_scope=generator")) != \
        config_hash(_config("optim.grad_clip_norm=1"))
