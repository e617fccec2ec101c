import math

import pytest
import torch

from bench.config import load_config
from bench.losses import adversarial_loss, reconstruction_loss
from bench.schedules import build_scheduler, lr_factor


def _optim(*overrides):
    return load_config(None, list(overrides)).optim


def test_linear_is_pix2pix_rule():
    cfg = _optim()  # 200 epochs, decay from epoch 100
    spe, total = 10, 2000
    assert lr_factor(cfg, 0, spe, total) == 1.0
    assert lr_factor(cfg, 99 * spe + 9, spe, total) == 1.0
    assert lr_factor(cfg, 100 * spe, spe, total) == pytest.approx(1 - 1 / 101)
    assert lr_factor(cfg, 199 * spe, spe, total) == pytest.approx(1 / 101)


def test_step_schedule_of_seed_000():
    cfg = _optim("optim.schedule=step", "optim.decay_start_epoch=20", "optim.step_every=10", "optim.step_factor=0.5")
    spe, total = 5, 250
    assert [lr_factor(cfg, e * spe, spe, total) for e in (0, 19, 20, 29, 30, 40, 49)] == \
        [1.0, 1.0, 0.5, 0.5, 0.25, 0.125, 0.125]


def test_cosine_and_constant():
    cos = _optim("optim.schedule=cosine")
    assert lr_factor(cos, 0, 10, 100) == 1.0
    assert lr_factor(cos, 50, 10, 100) == pytest.approx(0.5)
    assert lr_factor(_optim("optim.schedule=constant"), 99, 10, 100) == 1.0


def test_scheduler_sets_optimizer_lr():
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.Adam([param], lr=1.0)
    sched = build_scheduler(opt, _optim("optim.schedule=cosine"), 1, 4)
    lrs = []
    for _ in range(4):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == pytest.approx([1.0, 0.5 * (1 + math.cos(math.pi / 4)), 0.5, 0.5 * (1 + math.cos(3 * math.pi / 4))])


def test_reconstruction_losses():
    a, b = torch.zeros(2, 2), torch.full((2, 2), 0.5)
    assert reconstruction_loss("l1", a, b).item() == 0.5
    assert reconstruction_loss("l2", a, b).item() == 0.25
    assert reconstruction_loss("l1+l2", a, b).item() == 0.75


def test_adversarial_losses():
    logits = torch.tensor([0.0, 2.0])
    assert adversarial_loss("bce", logits, real=True).item() == pytest.approx(
        (math.log(2) + math.log(1 + math.exp(-2))) / 2)
    assert adversarial_loss("bce", logits, real=False).item() == pytest.approx(
        (math.log(2) + math.log(1 + math.exp(2))) / 2)
    assert adversarial_loss("lsgan", logits, real=True).item() == pytest.approx((1 + 1) / 2)
    assert adversarial_loss("lsgan", logits, real=False).item() == pytest.approx((0 + 4) / 2)
