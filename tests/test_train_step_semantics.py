"""What train_step computes, term by term, against an independent derivation written out here.

One train_step on a fixed batch from fixed weights (no dropout, fp32, cpu).  Copies of both
networks taken before the step are run through the pix2pix objective as this file writes it
with plain torch formulas: the encoding (L / 50 - 1 in, ab / 110 out), the reconstruction
terms (mean |d|, mean d^2, their sum), the adversarial terms (BCE on logits as softplus,
LSGAN as squared distance to 1 or 0), D's halved loss, G's weighted sum lambda_rec * rec +
lambda_adv * adv, and the D input (input and output concatenated, or the output alone).
The loss values train_step returns, the tensors D sees, the gradients each optimiser steps
with, and the parameters after the step are compared with those.  Clipping and learning-rate
schedules have their own tests (test_grad_clip.py, test_schedules_losses.py).
"""
import copy
from dataclasses import dataclass, field

import pytest
import torch
import torch.nn.functional as F

from bench.config import load_config
from bench.data.colour import rgb_to_lab
from bench.models import build_networks
from bench.run import rundir
from bench.training.train import build_optimizer, train, train_step

RTOL = 1e-5  # float32 arithmetic in a different order (softplus vs binary_cross_entropy_with_logits, ...)


def _config(*overrides):
    return load_config(None, [
        "data.image_size=32", "data.batch_size=2", "generator.depth=5", "generator.ngf=4", "generator.dropout=false",
        "discriminator.ndf=4", "discriminator.n_layers=1", "precision=fp32", "device=cpu", *overrides])


def _batch() -> torch.Tensor:
    return torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))


# ---- the independent derivation -------------------------------------------------------------

def encoded(batch_rgb8):
    """pix2pix's Lab encoding: input L / 50 - 1, target ab / 110."""
    lab = rgb_to_lab(batch_rgb8.float() / 255.0)
    return lab[:, :1] / 50.0 - 1.0, lab[:, 1:] / 110.0


def rec_term(kind, output, target):
    diff = output - target
    l1, l2 = diff.abs().mean(), diff.square().mean()
    return {"l1": l1, "l2": l2, "l1+l2": l1 + l2}[kind]


def adv_term(kind, logits, real):
    if kind == "bce":  # -log sigmoid(z) = softplus(-z); -log(1 - sigmoid(z)) = softplus(z)
        return F.softplus(-logits).mean() if real else F.softplus(logits).mean()
    assert kind == "lsgan"
    return (logits - 1).square().mean() if real else logits.square().mean()


def adam_first_step(params, grads, lr, eps=1e-8):
    """Adam's first update from zero moments: p - lr * g / (|g| + eps), whatever the betas."""
    return [(p.double() - lr * g.double() / (g.double().abs() + eps)).float() for p, g in zip(params, grads)]


@dataclass
class Expected:
    inputs: torch.Tensor
    targets: torch.Tensor
    fake: torch.Tensor
    losses: dict
    d_seen: list  # what D sees, in train_step's order: detached fake, real, fake for G
    grad_d: list | None
    d_after: list | None
    grad_g: dict = field(default_factory=dict)  # "rec", "adv": each term's gradient, unweighted


def expected_step(config, g_before, d_before, batch, adversarial=True) -> Expected:
    g, d = copy.deepcopy(g_before), copy.deepcopy(d_before)
    for p in d.parameters():
        p.requires_grad_(True)
    cfg = config.loss
    x, y = encoded(batch)
    fake = g(x)  # train mode: batch norm on batch statistics, as train_step runs it

    def seen(output):
        return torch.cat([x, output], 1) if config.discriminator.conditional else output

    losses, d_seen, grad_d, d_after, grad_g = {}, [], None, None, {}
    if adversarial:
        d_seen += [seen(fake.detach()), seen(y)]
        losses["d_fake"] = adv_term(cfg.adversarial, d(d_seen[0]), real=False)
        losses["d_real"] = adv_term(cfg.adversarial, d(d_seen[1]), real=True)
        grad_d = torch.autograd.grad(0.5 * (losses["d_fake"] + losses["d_real"]), list(d.parameters()))
        d_after = adam_first_step(list(d.parameters()), grad_d, config.optim.lr)
        with torch.no_grad():  # G's adversarial term sees D after D's update
            for p, new in zip(d.parameters(), d_after):
                p.copy_(new)
        if cfg.lambda_adv > 0:
            d_seen.append(seen(fake))
            losses["g_adv"] = adv_term(cfg.adversarial, d(d_seen[2]), real=True)
            grad_g["adv"] = torch.autograd.grad(losses["g_adv"], list(g.parameters()), retain_graph=True)
    if cfg.lambda_rec > 0:
        losses["g_rec"] = rec_term(cfg.reconstruction, fake, y)
        grad_g["rec"] = torch.autograd.grad(losses["g_rec"], list(g.parameters()), retain_graph=True)
    return Expected(x, y, fake.detach(), {k: float(v.detach()) for k, v in losses.items()},
                    [s.detach() for s in d_seen], grad_d, d_after, grad_g)


def weighted(grads: dict, lambda_rec, lambda_adv):
    terms = [(lambda_rec, grads["rec"])] + ([(lambda_adv, grads["adv"])] if "adv" in grads else [])
    return [sum(w * gs[i] for w, gs in terms) for i in range(len(terms[0][1]))]


# ---- what train_step does ---------------------------------------------------------------------

@dataclass
class Actual:
    losses: dict
    g_inputs: list
    d_seen: list
    grad_g: list | None
    grad_d: list | None
    d_before: list
    d_after: list
    g_before: torch.nn.Module
    d_copy: torch.nn.Module


def actual_step(config, tmp_path, adversarial=True) -> Actual:
    torch.manual_seed(0)
    g, d = build_networks(config)
    opt_g, opt_d = build_optimizer(g, config), build_optimizer(d, config)
    g_before, d_copy = copy.deepcopy(g), copy.deepcopy(d)
    d_before = [p.detach().clone() for p in d.parameters()]
    g_inputs, d_seen, grads = [], [], {}
    g.register_forward_pre_hook(lambda m, args: g_inputs.append(args[0].detach().clone()))
    d.register_forward_pre_hook(lambda m, args: d_seen.append(args[0].detach().clone()))
    for name, opt, net in (("G", opt_g, g), ("D", opt_d, d)):
        opt.register_step_pre_hook(lambda o, a, k, name=name, net=net: grads.__setitem__(
            name, [p.grad.clone() for p in net.parameters()]))
    losses = train_step(_batch(), g, d, opt_g, opt_d, config, adversarial=adversarial, run_dir=tmp_path, step=0)
    return Actual(losses, g_inputs, d_seen, grads.get("G"), grads.get("D"), d_before,
                  [p.detach().clone() for p in d.parameters()], g_before, d_copy)


def run_both(config, tmp_path, adversarial=True):
    actual = actual_step(config, tmp_path, adversarial)
    return actual, expected_step(config, actual.g_before, actual.d_copy, _batch(), adversarial)


def global_norm(tensors) -> float:
    return float(sum(t.double().square().sum() for t in tensors).sqrt())


def close(actual, expected, rtol=RTOL) -> bool:
    """Equal up to rtol of the whole set's L2 norm (per-element relative error is meaningless near 0)."""
    assert len(actual) == len(expected)
    return global_norm([a.double() - e.double() for a, e in zip(actual, expected)]) <= rtol * global_norm(expected)


# ---- 1. loss terms ----------------------------------------------------------------------------

@pytest.mark.parametrize("adversarial", ["bce", "lsgan"])
@pytest.mark.parametrize("reconstruction", ["l1", "l2", "l1+l2"])
def test_loss_terms_are_the_formulas_of_the_configured_kinds(reconstruction, adversarial, tmp_path):
    config = _config(f"loss.reconstruction={reconstruction}", f"loss.adversarial={adversarial}")
    actual, expected = run_both(config, tmp_path)
    assert torch.allclose(actual.g_inputs[0], expected.inputs, rtol=0, atol=1e-6)  # L / 50 - 1
    assert set(actual.losses) == {"g_rec", "g_adv", "d_real", "d_fake"}
    for name, value in expected.losses.items():
        assert actual.losses[name] == pytest.approx(value, rel=RTOL), name
    # the kinds are told apart: every other formula gives another value on this batch
    others = {k: float(rec_term(k, expected.fake, expected.targets)) for k in ("l1", "l2", "l1+l2") if k != reconstruction}
    for kind, value in others.items():
        assert actual.losses["g_rec"] != pytest.approx(value, rel=1e-3), kind


def test_targets_are_ab_over_110(tmp_path):
    """The reconstruction term is measured against ab / 110: l1 of the output against it, recomputed."""
    actual, expected = run_both(_config("loss.reconstruction=l1"), tmp_path)
    lab = rgb_to_lab(_batch().float() / 255.0)
    assert float((expected.fake - lab[:, 1:] / 110.0).abs().mean()) == pytest.approx(actual.losses["g_rec"], rel=RTOL)
    assert float((expected.fake - lab[:, 1:] / 128.0).abs().mean()) != pytest.approx(actual.losses["g_rec"], rel=1e-3)


# ---- 2. weights of G's terms and D's halved loss ----------------------------------------------

@pytest.mark.parametrize("lambdas", [(100.0, 1.0), (2.0, 5.0)])
@pytest.mark.parametrize("adversarial", ["bce", "lsgan"])
def test_generator_gradient_is_the_weighted_sum_of_its_terms(lambdas, adversarial, tmp_path):
    lambda_rec, lambda_adv = lambdas
    config = _config(f"loss.lambda_rec={lambda_rec}", f"loss.lambda_adv={lambda_adv}",
                     f"loss.adversarial={adversarial}", "loss.reconstruction=l1+l2")
    actual, expected = run_both(config, tmp_path)
    want = weighted(expected.grad_g, lambda_rec, lambda_adv)
    # each weighted term moves the gradient by far more than the tolerance
    for term, weight in (("rec", lambda_rec), ("adv", lambda_adv)):
        assert weight * global_norm(expected.grad_g[term]) > 100 * RTOL * global_norm(want), term
    assert close(actual.grad_g, want)
    wrong = {"swapped": (lambda_adv, lambda_rec), "unweighted rec": (1.0, lambda_adv),
             "unweighted adv": (lambda_rec, 1.0), "rec only": (lambda_rec, 0.0), "adv only": (0.0, lambda_adv)}
    for name, (w_rec, w_adv) in wrong.items():
        if (w_rec, w_adv) != (lambda_rec, lambda_adv):
            assert not close(actual.grad_g, weighted(expected.grad_g, w_rec, w_adv)), name


@pytest.mark.parametrize("adversarial", ["bce", "lsgan"])
def test_discriminator_gradient_is_half_the_sum_of_its_terms_and_adam_steps_with_it(adversarial, tmp_path):
    config = _config(f"loss.adversarial={adversarial}")
    actual, expected = run_both(config, tmp_path)
    assert global_norm(expected.grad_d) > 0
    assert close(actual.grad_d, expected.grad_d)
    assert not close(actual.grad_d, [2 * g for g in expected.grad_d])  # the unhalved sum
    # Adam's first step is scale-invariant, so this checks the update, not the halving
    assert all(torch.allclose(a, e, rtol=1e-5, atol=1e-7) for a, e in zip(actual.d_after, expected.d_after))


# ---- 3. conditional and unconditional D -------------------------------------------------------

@pytest.mark.parametrize("conditional", [True, False])
def test_discriminator_sees_input_and_output_only_when_conditional(conditional, tmp_path):
    config = _config(f"discriminator.conditional={str(conditional).lower()}")
    actual, expected = run_both(config, tmp_path)
    channels = config.in_channels + config.out_channels if conditional else config.out_channels
    assert [s.shape[1] for s in actual.d_seen] == [channels] * 3
    assert len(expected.d_seen) == 3
    for seen, want in zip(actual.d_seen, expected.d_seen):
        assert torch.allclose(seen, want, rtol=RTOL, atol=1e-6)
    # the real pair holds the targets themselves (ab / 110), after the input when conditional
    assert torch.allclose(actual.d_seen[1][:, -2:], expected.targets, rtol=0, atol=1e-6)
    if conditional:
        for seen in actual.d_seen:
            assert torch.allclose(seen[:, :1], expected.inputs, rtol=0, atol=1e-6)
    for name, value in expected.losses.items():
        assert actual.losses[name] == pytest.approx(value, rel=RTOL), name


# ---- 4. warm-up -------------------------------------------------------------------------------

def test_warm_up_step_trains_the_generator_on_reconstruction_alone(tmp_path):
    config = _config("optim.warmup_epochs=1", "loss.lambda_rec=3", "loss.lambda_adv=2")
    actual, expected = run_both(config, tmp_path, adversarial=False)
    assert set(actual.losses) == {"g_rec"}
    assert actual.losses["g_rec"] == pytest.approx(expected.losses["g_rec"], rel=RTOL)
    assert actual.d_seen == [] and actual.grad_d is None  # D neither looked at nor stepped
    assert all(torch.equal(a, b) for a, b in zip(actual.d_after, actual.d_before))
    assert close(actual.grad_g, [3.0 * g for g in expected.grad_g["rec"]])
    assert not close(actual.grad_g, expected.grad_g["rec"])  # the weight lambda_rec still applies


def test_train_skips_the_adversarial_terms_during_the_warm_up_epochs_only(image_folder, tmp_path):
    config = load_config(None, [
        "data.dataset=folder", f"data.root={image_folder}", "data.image_size=32", "data.batch_size=4",
        "data.test_fraction=0.25", "generator.depth=5", "generator.ngf=4", "generator.dropout=false",
        "discriminator.ndf=4", "discriminator.n_layers=1", "optim.epochs=2", "optim.warmup_epochs=1",
        "optim.schedule=constant", "eval.every_epochs=0", "eval.n_sample_images=0", "eval.metrics=psnr_rgb8",
        "log_every=1", "checkpoint_every=1000", "device=cpu"])
    train(config, tmp_path / "run")
    stats = list(rundir.read_jsonl(tmp_path / "run" / "stats.jsonl"))
    assert [(r["step"], r["epoch"]) for r in stats] == [(s, (s - 1) // 4) for s in range(1, 9)]  # 15 images / 4
    adversarial = {"loss_d_real", "loss_d_fake", "loss_g_adv"}
    for record in stats:
        keys = set(record) & (adversarial | {"loss_g_rec"})
        assert keys == ({"loss_g_rec"} if record["epoch"] == 0 else adversarial | {"loss_g_rec"}), record["step"]


# ---- 5. lambda_adv 0: L1 only, D still trained --------------------------------------------------

def test_lambda_adv_zero_still_trains_the_discriminator_and_not_g_on_it(tmp_path):
    config = _config("loss.lambda_adv=0", "loss.lambda_rec=100")
    actual, expected = run_both(config, tmp_path)
    assert set(actual.losses) == {"g_rec", "d_real", "d_fake"}
    for name, value in expected.losses.items():
        assert actual.losses[name] == pytest.approx(value, rel=RTOL), name
    assert len(actual.d_seen) == 2  # fake and real for D's step; no pass for G
    assert close(actual.grad_d, expected.grad_d)
    assert not all(torch.equal(a, b) for a, b in zip(actual.d_after, actual.d_before))
    assert all(torch.allclose(a, e, rtol=1e-5, atol=1e-7) for a, e in zip(actual.d_after, expected.d_after))
    assert close(actual.grad_g, [100.0 * g for g in expected.grad_g["rec"]])


# ---- terms that are off, precision, phases and failure records (mutation testing found these untested) ----

@pytest.mark.parametrize("setting", ["loss.lambda_rec=0", "loss.reconstruction=none"])
def test_a_switched_off_reconstruction_term_is_not_computed(setting, tmp_path):
    actual = actual_step(_config(setting), tmp_path)
    assert "g_rec" not in actual.losses and "g_adv" in actual.losses


def test_a_fractional_lambda_rec_weights_the_term(tmp_path):
    config = _config("loss.lambda_rec=0.5")
    actual, expected = run_both(config, tmp_path)
    assert actual.losses["g_rec"] == pytest.approx(float(expected.losses["g_rec"]), rel=RTOL)
    assert close(actual.grad_g, weighted(expected.grad_g, 0.5, 1.0))


def test_bf16_precision_runs_both_networks_under_bfloat16_autocast(tmp_path):
    dtypes = []

    def record(module, args, output):
        dtypes.append(output.dtype)
    torch.manual_seed(0)
    config = _config("precision=bf16")
    g, d = build_networks(config)
    g.register_forward_hook(record)
    d.register_forward_hook(record)
    train_step(_batch(), g, d, build_optimizer(g, config), build_optimizer(d, config), config, adversarial=True,
               run_dir=tmp_path, step=0)
    assert dtypes and set(dtypes) == {torch.bfloat16}
    dtypes.clear()
    actual_step(_config(), tmp_path)  # fp32: no autocast
    assert not dtypes


def test_the_timer_wraps_the_phases_in_order(tmp_path):
    phases = []

    class Timer:
        def __init__(self, name):
            self.name = name

        def __enter__(self):
            phases.append(self.name)

        def __exit__(self, *exc):
            return False
    torch.manual_seed(0)
    config = _config()
    g, d = build_networks(config)
    train_step(_batch(), g, d, build_optimizer(g, config), build_optimizer(d, config), config, adversarial=True,
               run_dir=tmp_path, step=0, timer=Timer)
    assert phases == ["data", "g_forward", "d_step", "optimizer", "g_step", "optimizer"]


def test_a_non_finite_loss_writes_failed_with_the_step_and_every_term(tmp_path, monkeypatch):
    import bench.training.step
    from bench.training.step import TrainingFailed
    original = bench.training.step.adversarial_loss

    def nan_for_d(kind, logits, real):
        return original(kind, logits, real=real) * float("nan")
    monkeypatch.setattr(bench.training.step, "adversarial_loss", nan_for_d)
    torch.manual_seed(0)
    config = _config()
    g, d = build_networks(config)
    with pytest.raises(TrainingFailed, match=rf"^{tmp_path}: non-finite loss d_fake, d_real at step 7$"):
        train_step(_batch(), g, d, build_optimizer(g, config), build_optimizer(d, config), config, adversarial=True,
                   run_dir=tmp_path, step=7)
    record = rundir.read_json(tmp_path / "FAILED")
    assert record == {"step": 7, "reason": "non-finite loss d_fake, d_real at step 7",
                      "losses": {"d_fake": "nan", "d_real": "nan"}}


def test_a_non_finite_generator_loss_writes_failed_too(tmp_path, monkeypatch):
    import bench.training.step
    from bench.training.step import TrainingFailed
    original = bench.training.step.reconstruction_loss
    monkeypatch.setattr(bench.training.step, "reconstruction_loss",
                        lambda kind, output, target: original(kind, output, target) * float("inf"))
    torch.manual_seed(0)
    config = _config("discriminator.arch=none", "loss.adversarial=none")
    g, _ = build_networks(config)
    with pytest.raises(TrainingFailed, match=rf"^{tmp_path}: non-finite loss g_rec at step 3$"):
        train_step(_batch(), g, None, build_optimizer(g, config), None, config, adversarial=False,
                   run_dir=tmp_path, step=3)
    assert rundir.read_json(tmp_path / "FAILED") == {"step": 3, "reason": "non-finite loss g_rec at step 3",
                                                     "losses": {"g_rec": "inf"}}
