import math

import pytest
import torch

from bench.config import ConfigError, load_config
from bench.training.losses import adversarial_loss, reconstruction_loss
from bench.training.schedules import build_scheduler, lr_factor


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


def _lrs_per_epoch(cfg, steps_per_epoch, total_steps):
    """The learning rate the optimiser holds at the first and last step of every epoch, through build_scheduler."""
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.Adam([param], lr=cfg.lr)
    sched = build_scheduler(opt, cfg, steps_per_epoch, total_steps)
    lrs = []
    for _ in range(total_steps):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return lrs[::steps_per_epoch], lrs[steps_per_epoch - 1::steps_per_epoch]


def test_exponential_decay_of_seed_001():
    """"decay LR from 1e-3 to 1/20 over 30 epochs": 1e-3 in epoch 0, 5e-5 in epoch 29, a constant ratio between."""
    cfg = _optim("optim.schedule=exponential", "optim.decay_start_epoch=0", "optim.final_lr_fraction=0.05",
                 "optim.lr=1e-3", "optim.epochs=30")
    firsts, lasts = _lrs_per_epoch(cfg, 3, 90)
    assert firsts == lasts  # constant within an epoch
    assert firsts[0] == pytest.approx(1e-3, rel=1e-12)
    assert firsts[29] == pytest.approx(5e-5, rel=1e-12)
    assert firsts[15] == pytest.approx(1e-3 * 0.05 ** (15 / 29), rel=1e-12)
    ratios = [b / a for a, b in zip(firsts, firsts[1:])]
    assert ratios == pytest.approx([0.05 ** (1 / 29)] * 29, rel=1e-12)


def test_exponential_decay_starts_at_decay_start_epoch():
    cfg = _optim("optim.schedule=exponential", "optim.decay_start_epoch=10", "optim.final_lr_fraction=0.1",
                 "optim.lr=1.0", "optim.epochs=30")
    firsts, _ = _lrs_per_epoch(cfg, 2, 60)
    assert firsts[:11] == [1.0] * 11  # epoch 10 is the first of decay, at 0.1 ** 0
    assert firsts[11] == pytest.approx(0.1 ** (1 / 19), rel=1e-12)
    assert firsts[29] == pytest.approx(0.1, rel=1e-12)  # 19 epochs from 1 to 0.1


def test_linear_decay_towards_final_lr_fraction():
    cfg = _optim("optim.final_lr_fraction=0.2", "optim.lr=1.0", "optim.epochs=20", "optim.decay_start_epoch=10")
    firsts, lasts = _lrs_per_epoch(cfg, 2, 40)
    assert firsts == lasts
    assert firsts[:10] == [1.0] * 10
    # eleven equal steps of 0.8 / 11 from 1, of which the last epoch takes ten
    assert firsts[10:] == pytest.approx([1 - 0.8 * k / 11 for k in range(1, 11)], rel=1e-12)
    assert firsts[19] == pytest.approx(0.2 + 0.8 / 11, rel=1e-12)


def test_cosine_decay_towards_final_lr_fraction():
    cfg = _optim("optim.schedule=cosine", "optim.final_lr_fraction=0.1", "optim.lr=2.0", "optim.epochs=4")
    firsts, lasts = _lrs_per_epoch(cfg, 2, 8)
    lrs = [lr for pair in zip(firsts, lasts) for lr in pair]
    assert lrs[0] == 2.0 and lrs[4] == pytest.approx(2.0 * (0.1 + 0.9 * 0.5), rel=1e-12)  # half way: mean of ends
    assert lrs == pytest.approx([2.0 * (0.1 + 0.45 * (1 + math.cos(math.pi * s / 8))) for s in range(8)], rel=1e-12)


def test_zero_final_lr_fraction_keeps_the_old_schedules():
    linear = _optim("optim.lr=1.0", "optim.epochs=20", "optim.decay_start_epoch=10")
    assert linear.final_lr_fraction == 0.0
    firsts, _ = _lrs_per_epoch(linear, 2, 40)
    assert firsts == pytest.approx([1 - max(0, e + 1 - 10) / 11 for e in range(20)], rel=1e-12, abs=0)
    cosine = _optim("optim.schedule=cosine", "optim.lr=1.0", "optim.epochs=4")
    firsts, lasts = _lrs_per_epoch(cosine, 2, 8)
    lrs = [lr for pair in zip(firsts, lasts) for lr in pair]
    assert lrs == pytest.approx([0.5 * (1 + math.cos(math.pi * s / 8)) for s in range(8)], rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("overrides, fragment", [
    (["optim.final_lr_fraction=1"], "optim.final_lr_fraction: got 1.0; allowed: 0 <= value < 1"),
    (["optim.final_lr_fraction=-0.1"], "optim.final_lr_fraction: got -0.1; allowed: 0 <= value < 1"),
    (["optim.schedule=exponential"], "optim.final_lr_fraction: got 0.0 with optim.schedule=exponential"),
    (["optim.schedule=constant", "optim.final_lr_fraction=0.1"],
     "optim.final_lr_fraction: got 0.1, which optim.schedule=constant does not use"),
    (["optim.schedule=step", "optim.final_lr_fraction=0.1"],
     "optim.final_lr_fraction: got 0.1, which optim.schedule=step does not use"),
    (["optim.schedule=cosine2"], "allowed: constant, linear, step, cosine, exponential"),
])
def test_final_lr_fraction_is_validated(overrides, fragment):
    with pytest.raises(ConfigError) as err:
        load_config(None, overrides)
    assert fragment in str(err.value)


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


def test_exponential_decay_over_a_single_epoch_reaches_the_final_fraction():
    cfg = _optim("optim.schedule=exponential", "optim.decay_start_epoch=3", "optim.final_lr_fraction=0.1",
                 "optim.epochs=5")
    # decay starts at epoch 3 (factor 0.1 ** 0) and ends one epoch later at 0.1 ** 1
    assert [lr_factor(cfg, e * 4, 4, 20) for e in range(5)] == pytest.approx([1, 1, 1, 1, 0.1], rel=1e-12)


def test_unknown_kinds_are_named_in_the_error():
    import types
    with pytest.raises(ValueError, match="unknown schedule 'bogus'"):
        lr_factor(types.SimpleNamespace(schedule="bogus", final_lr_fraction=0.0), 0, 1, 1)
    a = torch.zeros(1)
    with pytest.raises(ValueError, match="unknown reconstruction loss 'l3'"):
        reconstruction_loss("l3", a, a)
    with pytest.raises(ValueError, match="unknown adversarial loss 'wgan'"):
        adversarial_loss("wgan", a, real=True)
