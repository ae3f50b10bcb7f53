"""The RF perceptron's training step by hand (engine.nets.rf_step) against the autograd step it replaces:
the same scores, loss and gradients of every parameter, where it applies and nowhere else."""
from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from engine.config.models import build_model
from engine.config.run_config import RunConfig
from engine.core.model_base import TrainingContext
from engine.layers import fused_weight
from engine.nets import rf_step
from engine.nets.hardware import set_regime
from engine.physics.resonators import DeviceParams
from engine.training.loop import run_training

pytestmark = pytest.mark.skipif(not fused_weight.available(), reason="numba does not import here")

N, C, B = 120, 5, 37


def model_and_batch(name: str, k: int = 6, seed: int = 0, **device):
    """A model of ``name`` in training mode with its training machinery attached, and one batch (x, y)."""
    cfg = RunConfig(model=name, resonators_per_chain=k, device=dataclasses.replace(DeviceParams(), **device))
    gen = torch.Generator().manual_seed(seed)
    model = build_model(cfg.resolved(), N, C, gen)
    x = torch.rand(400, N, generator=gen) * (torch.rand(400, N, generator=gen) < 0.4)
    y = torch.randint(0, C, (400,), generator=gen)
    with torch.no_grad():  # move a few trained inputs off their comb slots, and the gain off its start
        model.log_gain.add_(0.7)
        model.bias.copy_(torch.randn(C, generator=gen))
        # chains that differ (a limited tuning range starts every chain on the same sites, where the inputs'
        # gradient is zero but for rounding)
        model.chains.resonator_comb.add_(0.3 * torch.randn(model.chains.resonator_comb.shape, generator=gen))
        if model.chains.input_comb.requires_grad:
            model.chains.input_comb.add_(0.3 * torch.randn(N, generator=gen))
    model.train()
    opt = model.make_optimizer(1e-2)
    model.begin_training(TrainingContext(100, 10, opt, x, y, model.generator))
    return model, x[:B], y[:B]


def autograd_step(model, x, y):
    """Scores, loss and every trained parameter's gradient (by name) from the forward pass and autograd."""
    for p in model.parameters():
        p.grad = None
    scores = model(x)
    loss = F.cross_entropy(scores, y)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    weight_grad = model._weight.grad if model._weight is not None else model._weight_grad  # None without rounds
    model._weight = model._weight_grad = None
    return scores.detach(), loss.detach(), grads, weight_grad


def close(got: torch.Tensor, ref: torch.Tensor, rtol: float = 2e-5) -> bool:
    return float((got.double() - ref.double()).abs().max()) <= rtol * max(float(ref.abs().max()), 1e-12)


KNOBS = [
    {},
    {"phi": 0.4, "p_max_uw": 2.5},
    {"plan": "linear"},
    {"tuning_range": 0.05},
    {"tuning_bits": 6},
    {"tuning_bits": 4, "plan": "linear", "tuning_range": 0.05},
    {"freq_spread": 1e-3},
    {"freq_spread": 1e-3, "calibrated": False, "tuning_bits": 8},
    {"freq_jitter_lw": 0.2},
    {"alpha_dtod": 0.05, "k_sd_dtod": 0.05},
]


@pytest.mark.parametrize("name", ["rf", "rf-input", "rf-frozen"])
@pytest.mark.parametrize("device", KNOBS)
@pytest.mark.parametrize("regime", ["in-situ", "aware"])
def test_the_step_by_hand_gives_the_autograd_step(name, device, regime):
    model, x, y = model_and_batch(name, **device)
    set_regime(model, regime)
    state = model.generator.get_state()  # the same chip and jitter draws for both steps
    ref_scores, ref_loss, ref_grads, ref_wgrad = autograd_step(model, x, y)
    model.generator.set_state(state)
    model.chains._train_chip = None
    for p in model.parameters():
        p.grad = None
    model._weight_grad = None
    out = model.training_step(x, y)
    assert out is not None, "the step should be computed by hand"
    scores, loss = out
    assert close(scores, ref_scores)
    assert abs(float(loss) - float(ref_loss)) <= 1e-6 * max(1.0, abs(float(ref_loss)))
    # the log-gain's gradient sums terms of both signs that nearly cancel: held to the size of its terms
    gain_scale = 2.0 * float((ref_scores - model.bias.detach()).abs().amax(1).mean())
    for pname, p in model.named_parameters():
        if pname == "log_gain":
            assert abs(float(p.grad) - float(ref_grads[pname])) <= 1e-6 * gain_scale
        elif p.requires_grad:
            assert p.grad is not None and close(p.grad, ref_grads[pname]), pname
        else:
            assert p.grad is None, pname
    if ref_wgrad is not None:  # the rewiring rounds' dL/dW
        assert close(model._weight_grad, ref_wgrad)
    else:
        assert model.plasticity is None


@pytest.mark.parametrize("device", [{"readout_noise_v": 1e-3}, {"power_noise": 0.01}])
def test_noise_on_the_read_out_takes_the_autograd_path(device):
    model, x, y = model_and_batch("rf", **device)
    state = model.generator.get_state()
    assert model.training_step(x, y) is None
    assert torch.equal(model.generator.get_state(), state)  # and draws nothing


def test_other_builds_and_evaluation_take_the_autograd_path():
    model, x, y = model_and_batch("rf")
    model.eval()
    assert model.training_step(x, y) is None  # evaluation
    model.train()
    with torch.no_grad():
        assert model.training_step(x, y) is None
    model.chains.weight_build = "exact"
    model.chains._exact_choice = None
    assert model.training_step(x, y) is None


def test_a_diverging_step_gives_a_loss_that_is_not_finite():
    model, x, y = model_and_batch("rf")
    with torch.no_grad():
        model.log_gain.fill_(1e4)  # an infinite gain
    _, loss = model.training_step(x, y)
    assert not torch.isfinite(loss)


def test_runs_by_hand_train_as_autograd_runs_do(monkeypatch):
    """A short run (rewiring rounds included) by hand and by autograd: the same accuracy to a few images, and
    the resonators where the same rounds put them."""
    cfg = RunConfig(model="rf", dataset="mnist-mini", epochs=2, resonators_per_chain=5, seed=1)
    by_hand = run_training(cfg)
    monkeypatch.setattr(rf_step, "training_step", lambda *a: None)
    by_autograd = run_training(cfg)
    assert abs(by_hand.test_accuracy - by_autograd.test_accuracy) <= 0.02
    moved = (by_hand.model.chains.resonator_comb - by_autograd.model.chains.resonator_comb).detach().abs()
    assert float(moved.median()) < 0.5


def network_and_batch(name: str, hidden=(9,), ks=(6, 4), seed: int = 0, **device):
    """An RF network of ``name`` in training mode with its machinery attached, and one batch (x, y)."""
    cfg = RunConfig(
        model=name,
        resonators_per_chain=ks[0],
        hidden=hidden,
        layer_resonators=ks[1:],
        device=dataclasses.replace(DeviceParams(), **device),
    )
    gen = torch.Generator().manual_seed(seed)
    model = build_model(cfg.resolved(), N, C, gen)
    x = torch.rand(400, N, generator=gen) * (torch.rand(400, N, generator=gen) < 0.4)
    y = torch.randint(0, C, (400,), generator=gen)
    model.train()
    opt = model.make_optimizer(1e-2)
    model.begin_training(TrainingContext(100, 10, opt, x, y, model.generator))  # calibrates the STNOs
    with torch.no_grad():
        model.log_gain.add_(0.5)
        model.bias.copy_(torch.randn(C, generator=gen))
        for layer in model.layers:
            layer.resonator_comb.add_(0.3 * torch.randn(layer.resonator_comb.shape, generator=gen))
    return model, x[:B], y[:B]


@pytest.mark.parametrize("name", ["rf", "rf-input"])
@pytest.mark.parametrize("hidden, ks", [((9,), (6, 4)), ((9, 7), (6, 4, 3))])
@pytest.mark.parametrize("device", [{}, {"tuning_bits": 8, "freq_spread": 1e-3}, {"freq_jitter_lw": 0.2}])
@pytest.mark.parametrize("regime", ["in-situ", "aware"])
def test_the_network_step_by_hand_gives_the_autograd_step(name, hidden, ks, device, regime):
    model, x, y = network_and_batch(name, hidden, ks, **device)
    set_regime(model, regime)
    state = model.generator.get_state()
    for p in model.parameters():
        p.grad = None
    ref_scores = model(x)
    ref_loss = F.cross_entropy(ref_scores, y)
    ref_loss.backward()
    ref_loss = ref_loss.detach()
    ref_grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    ref_wgrads = [w.grad.clone() for w in model._weights]
    model._weights = [None] * len(model.layers)
    model.generator.set_state(state)
    for layer in model.layers:
        layer._train_chip = None
    for p in model.parameters():
        p.grad = None
    out = model.training_step(x, y)
    assert out is not None, "the step should be computed by hand"
    scores, loss = out
    assert close(scores, ref_scores.detach())
    assert abs(float(loss) - float(ref_loss)) <= 1e-6 * max(1.0, abs(float(ref_loss)))
    gain_scale = 2.0 * float((ref_scores - model.bias).detach().abs().amax(1).mean())
    for pname, p in model.named_parameters():
        if not p.requires_grad:
            assert p.grad is None, pname
        elif pname == "log_gain":
            assert abs(float(p.grad) - float(ref_grads[pname])) <= 1e-6 * gain_scale
        elif p.dim() == 0:  # a hidden layer's log g_m: a sum over the batch and the chains
            assert abs(float(p.grad) - float(ref_grads[pname])) <= 1e-4 * max(abs(float(ref_grads[pname])), 1e-9) + 1e-7, pname
        else:
            assert close(p.grad, ref_grads[pname]), pname
    for got, ref in zip(model._weight_grads, ref_wgrads):
        assert close(got, ref)


def test_a_network_with_read_out_noise_takes_the_autograd_path():
    model, x, y = network_and_batch("rf", readout_noise_v=1e-3)
    assert model.training_step(x, y) is None
