"""The training step of a plain RF perceptron, computed by hand: forward pass, cross-entropy and gradients
without autograd.

At small K a training step of ``rf`` is a few tens of microseconds of arithmetic (the fused loops' W and its
gradient, two products with the batch) under some sixty tensor operations and two autograd passes, and the
operations cost the most. In the plain case of :meth:`engine.layers.chain.RFChainLayer.plain_inputs` (the
exact formula by the fused loops, devices at their comb positions, no noise) this module computes the same
step directly:

- W (C, N) by the forward loop of engine.layers.fused_weight, then V^T = W P^T (C, B);
- in one compiled loop, the scores s = gain V + b (B, C), the mean cross-entropy and its gradients with respect
  to V, the bias and the log-gain (:func:`_head_loop`);
- dL/dW = (dL/dV)^T P, then the gradients of the input and resonance frequencies by the backward loops, and
  through the comb map, d/du = d/df df/du, to the comb positions.

Where a hardware model sits between the set-points and the frequencies (tuning levels, fabrication offsets,
their trim, cycle-to-cycle jitter), every effect scales a frequency (or, for the levels, passes the gradient
straight through), so on the geometric plan, f = f_min r^u, d f/d u is still f ln r at the device's true
frequency, and the step stays by hand; on the linear plan those few operations keep their autograd.

The gradients are written into the parameters' ``.grad`` (the loop has set them to None), and dL/dW is kept for
the rewiring rounds, as the autograd path's ``sink`` does. The numbers are the autograd path's to float
rounding (the head sums in float64): tests/test_rf_step.py holds scores, loss and every gradient to the
autograd step's. :meth:`engine.nets.rf_perceptron.RFPerceptron.training_step` uses it where it applies and
falls back to autograd everywhere else (read-out or power noise, the FFT builds, a GPU).

:func:`network_step` does the same for a network with hidden layers of STNOs (engine.nets.multilayer): every
layer's W as above, the STNOs' currents and powers forward, and their derivatives backward by hand (no
gradient where the current is clamped, as torch's clamp), with the hidden bias currents' and g_m's gradients.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Optional

import numpy as np
import torch

from engine.core.enums import FrequencyPlan
from engine.layers import fused_weight
from engine.physics import resonators as physics

if TYPE_CHECKING:  # pragma: no cover
    from engine.layers.chain import RFChainLayer
    from engine.nets.multilayer import RFNetwork
    from engine.nets.rf_perceptron import RFPerceptron


def _head_loop(vt, gain, bias, y, scores, dvt, d_bias):  # pragma: no cover - compiled by numba, invisible to coverage
    """Scores s[b, c] = gain vt[c, b] + bias[c] into ``scores`` (B, C); returns (mean cross-entropy over the B
    samples with labels y, its derivative by the log-gain) and writes its derivatives by vt into ``dvt`` (C, B)
    and by the bias into ``d_bias`` (C,). Sums over samples in float64."""
    n_c, n_b = vt.shape
    inv_b = np.float32(1.0) / np.float32(n_b)
    loss, d_log_gain = 0.0, 0.0
    sums = np.zeros(n_c)
    for b in range(n_b):
        top = np.float32(-np.inf)
        for c in range(n_c):
            s = gain * vt[c, b] + bias[c]
            scores[b, c] = s
            if s > top:
                top = s
        total = np.float32(0.0)
        for c in range(n_c):
            total += np.exp(scores[b, c] - top)
        lse = top + np.log(total)
        label = y[b]
        loss += lse - scores[b, label]
        for c in range(n_c):
            g = np.exp(scores[b, c] - lse)
            if c == label:
                g -= np.float32(1.0)
            g *= inv_b
            sums[c] += g
            d_log_gain += g * gain * vt[c, b]
            dvt[c, b] = g * gain
    for c in range(n_c):
        d_bias[c] = sums[c]
    return loss / n_b, d_log_gain


@functools.cache
def _kernels() -> Optional[tuple[Any, ...]]:
    """The compiled head loop, or None without numba."""
    return fused_weight.compile_loops(_head_loop)


@dataclass
class _LayerPass:
    """One chain layer's W in a step by hand and what its gradients need: whether d/du is the comb map's slope
    at the pass's frequencies (``by_slope``) or takes autograd through the hardware model."""

    chains: "RFChainLayer"
    by_slope: bool
    f_in: torch.Tensor
    f_res: torch.Tensor
    w: torch.Tensor
    devices: tuple


def _layer_pass(chains: "RFChainLayer", power: torch.Tensor) -> _LayerPass:
    """W of a layer in a pass where :meth:`RFChainLayer.fused_exact_pass` holds, drawing this pass's jitter as
    :meth:`RFChainLayer.weight` does."""
    p, n = chains.params, chains.n_inputs
    plain = chains.plain_inputs(power)
    if plain is not None:  # devices on their comb positions: frequencies and their slopes from the comb map
        f_in, amplitude = plain
        alpha: "torch.Tensor | float" = p.alpha
        with torch.no_grad():
            f_in = physics.comb_to_ghz(chains.input_comb.detach(), p, n) if f_in is None else f_in
            f_res = physics.comb_to_ghz(chains.resonator_comb.detach(), p, n)
    else:  # the hardware model between set-points and frequencies, drawn as in a training pass (its jitter)
        f_in, f_res, alpha, amplitude = chains.exact_inputs()
        if p.plan == FrequencyPlan.GEOMETRIC:  # every effect scales f (or passes straight through): d f/d u = f ln r
            f_in, f_res = f_in.detach(), f_res.detach()  # at the true f, by hand; else their autograd
    with torch.no_grad():
        w, devices = fused_weight.weight_and_devices(f_in.detach(), f_res.detach(), alpha, amplitude, p.phi)
    return _LayerPass(chains, plain is not None or p.plan == FrequencyPlan.GEOMETRIC, f_in, f_res, w, devices)


@torch.no_grad()
def _frequency_gradients(lp: _LayerPass, grad_w: torch.Tensor, ends: list) -> None:
    """The layer's positions' gradients for dL/dW ``grad_w``: set on the parameters (plain devices), or their
    frequencies' gradients added to ``ends`` for one autograd pass through the hardware model."""
    chains = lp.chains
    u_in = chains.input_comb
    with_inputs = u_in.requires_grad if lp.by_slope else lp.f_in.requires_grad
    grad_in, grad_res = fused_weight.frequency_gradients(
        lp.devices, lp.f_in.detach(), lp.f_res.detach(), grad_w, with_inputs
    )
    if lp.by_slope:  # d/du = d/df df/du, in numpy: no tensor operation
        p, n = chains.params, chains.n_inputs
        grad_res.numpy()[:] *= physics.comb_slope_ghz(lp.f_res.numpy(), p, n)
        chains.resonator_comb.grad = grad_res
        if grad_in is not None:
            grad_in.numpy()[:] *= physics.comb_slope_ghz(lp.f_in.numpy(), p, n)
            u_in.grad = grad_in
        return
    ends.extend((t, g) for t, g in ((lp.f_res, grad_res), (lp.f_in, grad_in)) if g is not None and t.requires_grad)


def _backward_ends(ends: list) -> None:
    """The autograd pass from the frequencies behind a hardware model back to the set-points."""
    if ends:
        torch.autograd.backward([t for t, _ in ends], [g for _, g in ends])


@torch.no_grad()
def _head(
    model: "RFPerceptron | RFNetwork", vt: torch.Tensor, y: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """(scores (B, C), dL/dV^T (C, B), mean cross-entropy) for the last layer's voltages V^T (C, B); sets the
    read-out bias's and log-gain's gradients."""
    loops = _kernels()
    assert loops is not None
    gain = np.float32(model.gain)  # as the forward pass computes it (inf for a gain that overflows)
    scores = vt.new_empty(vt.shape[1], vt.shape[0])
    dvt, d_bias = torch.empty_like(vt), torch.empty_like(model.bias)
    bias = fused_weight.numpy_view(model.bias)
    loss, d_log_gain = loops[0](vt.numpy(), gain, bias, y.numpy(), scores.numpy(), dvt.numpy(), d_bias.numpy())
    model.bias.grad = d_bias
    model.log_gain.grad = torch.tensor(d_log_gain, dtype=model.log_gain.dtype)
    return scores, dvt, loss


def _small_product(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a @ b for a step's small CPU float32 products, by numpy's BLAS: at (10, 784) x (784, 100) it took about
    half the time of torch's on the machines measured (16 against 30 µs), and gives the same bits whatever its
    thread count."""
    return torch.from_numpy(np.matmul(a.numpy(), b.numpy()))


def only_these_train(model: torch.nn.Module, own: Iterable[torch.Tensor]) -> bool:
    """Whether every parameter of ``model`` that trains is one of ``own`` (the parameters a step by hand
    gives gradients to)."""
    known = {id(p) for p in own}
    return all(id(p) in known for p in model.parameters() if p.requires_grad)


def _ready(model: torch.nn.Module, y: torch.Tensor) -> bool:
    return _kernels() is not None and model.training and torch.is_grad_enabled() and y.dtype == torch.int64


def training_step(
    model: "RFPerceptron", x: torch.Tensor, y: torch.Tensor
) -> Optional[tuple[torch.Tensor, torch.Tensor]]:
    """One step's (scores (B, C), mean cross-entropy) of ``model`` on (x, y), with every trained parameter's
    ``.grad`` set and dL/dW left on ``model._weight_grad``; None where W is not the fused loops' exact formula
    or noise acts on the read-out (the caller then takes the autograd path)."""
    if not _ready(model, y):
        return None
    power = physics.input_power(x, model.params)
    if not model.chains.fused_exact_pass(power):
        return None
    lp = _layer_pass(model.chains, power)
    power = power.contiguous()
    with torch.no_grad():
        scores, dvt, loss = _head(model, _small_product(lp.w, power.t()), y)
        grad_w = _small_product(dvt, power)  # (C, N)
    ends: list = []
    _frequency_gradients(lp, grad_w, ends)
    _backward_ends(ends)
    model._weight_grad = grad_w
    return scores, torch.tensor(loss, dtype=scores.dtype)


def network_step(model: "RFNetwork", x: torch.Tensor, y: torch.Tensor) -> Optional[tuple[torch.Tensor, torch.Tensor]]:
    """:func:`training_step` for a network with hidden layers of STNOs: every layer's W as there, the STNOs'
    currents and powers and their derivatives by hand (the current's clamp passes no gradient outside
    [I_th, clamp_ratio I_th], as torch's clamp), dL/dW of every layer left on ``model._weight_grads``; None
    where a layer is not the plain or hardware case of the fused loops."""
    if not _ready(model, y):
        return None
    power = physics.input_power(x, model.params)
    layers = list(model.layers)
    if not all(chains.fused_exact_pass(power) for chains in layers):
        return None
    passes = [_layer_pass(chains, power) for chains in layers]  # in the order the forward pass builds them
    stno = model.stno
    lo, hi = stno.i_th_ua, stno.clamp_ratio * stno.i_th_ua
    scale = stno.amplification * stno.r_ohm * 1e-6
    with torch.no_grad():
        powers, states = [power.contiguous()], []
        for l, lp in enumerate(passes[:-1]):  # hidden layers: chain voltages -> STNO currents -> powers
            g = 1000.0 * model.g_m(l)
            u = fused_weight.chain_product(lp.w, powers[-1]) + stno.v_bias
            current = (u * g + model.bias_current_ua(l)).clamp(lo, hi)
            xi = current / stno.i_th_ua
            powers.append(scale * (xi - 1.0) / (xi + stno.q) * current * current)
            states.append((g, u, current, xi))
        last = passes[-1]
        scores, dvt, loss = _head(model, torch.mm(last.w, powers[-1].t()), y)
        grads: list[Optional[torch.Tensor]] = [None] * len(passes)
        grads[-1] = torch.mm(dvt, powers[-1])
        d_power = torch.mm(dvt.t(), last.w)  # (B, N_last): dL/dP of the last hidden layer's STNOs
        for l in range(len(passes) - 2, -1, -1):
            g, u, current, xi = states[l]
            slope = scale * ((stno.q + 1.0) / stno.i_th_ua * current * current / (xi + stno.q) ** 2)
            slope += scale * 2.0 * current * (xi - 1.0) / (xi + stno.q)  # dP/dI
            raw = u * g + model.bias_current_ua(l)
            d_current = d_power * slope * ((raw >= lo) & (raw <= hi))
            if model.hidden_bias[l].requires_grad:
                model.hidden_bias[l].grad = d_current.sum(0) * stno.i_th_ua
            if model.log_gm[l].requires_grad:
                model.log_gm[l].grad = (d_current * u).sum() * g
            d_volts = d_current * g  # (B, H_l)
            grads[l] = torch.mm(d_volts.t(), powers[l])
            if l > 0:
                d_power = torch.mm(d_volts, passes[l].w)
    ends: list = []
    for lp, grad_w in zip(passes, grads):
        assert grad_w is not None
        _frequency_gradients(lp, grad_w, ends)
    _backward_ends(ends)
    model._weight_grads = grads
    return scores, torch.tensor(loss, dtype=scores.dtype)


__all__ = ["network_step", "only_these_train", "training_step"]
