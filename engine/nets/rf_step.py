"""The training step of a plain RF perceptron, computed by hand: forward pass, cross-entropy and gradients
without autograd.

At small K a training step of ``rf`` is a few tens of microseconds of arithmetic (the fused loops' W and its
gradient, two products with the batch) under some sixty tensor operations and two autograd passes, and the
operations cost the most. In the plain case of :meth:`engine.layers.chain.RFChainLayer.plain_inputs` (the
exact formula by the fused loops, devices at their comb positions, no noise) this module computes the same
step directly:

- W (C, N) by the forward loop of engine.layers.fused_weight, then V^T = W P^T (C, B);
- in one compiled loop, the scores s = gain V + b (B, C), the mean cross-entropy and its gradients with respect
  to V, the bias and the log-gain (:func:`_head`);
- dL/dW = (dL/dV)^T P, then the gradients of the input and resonance frequencies by the backward loops, and
  through the comb map, d/du = d/df df/du, to the comb positions.

The gradients are written into the parameters' ``.grad`` (the loop has set them to None), and dL/dW is kept for
the rewiring rounds, as the autograd path's ``sink`` does. The numbers are the autograd path's to float
rounding (the head sums in float64): tests/test_rf_step.py holds scores, loss and every gradient to the
autograd step's. :meth:`engine.nets.rf_perceptron.RFPerceptron.training_step` uses it where it applies and
falls back to autograd everywhere else (hardware knobs, other builds, a GPU).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, Optional

import numpy as np
import torch

from engine.layers import fused_weight
from engine.physics import resonators as physics

if TYPE_CHECKING:  # pragma: no cover
    from engine.nets.rf_perceptron import RFPerceptron


def _head(vt, gain, bias, y, scores, dvt, d_bias):  # pragma: no cover - compiled by numba, invisible to coverage
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
    return fused_weight.compile_loops(_head)


def training_step(
    model: "RFPerceptron", x: torch.Tensor, y: torch.Tensor
) -> Optional[tuple[torch.Tensor, torch.Tensor]]:
    """One step's (scores (B, C), mean cross-entropy) of ``model`` on (x, y), with every trained parameter's
    ``.grad`` set and dL/dW left on ``model._weight_grad``; None where W is not the fused loops' exact formula
    or noise acts on the read-out (the caller then takes the autograd path)."""
    chains = model.chains
    loops = _kernels()
    if loops is None or not (model.training and torch.is_grad_enabled()) or y.dtype != torch.int64:
        return None
    power = physics.input_power(x, model.params)
    p, n = chains.params, chains.n_inputs
    u_in, u_res = chains.input_comb, chains.resonator_comb
    plain = chains.plain_inputs(power)
    if plain is not None:  # devices on their comb positions: frequencies and their slopes from the comb map
        f_in, amplitude = plain
        alpha: "torch.Tensor | float" = p.alpha
        with torch.no_grad():
            f_in = physics.comb_to_ghz(u_in.detach(), p, n) if f_in is None else f_in
            f_res = physics.comb_to_ghz(u_res.detach(), p, n)
    else:  # the hardware model between set-points and frequencies: its few operations keep their autograd
        parts = chains.exact_inputs(power)
        if parts is None:
            return None
        f_in, f_res, alpha, amplitude = parts
    with torch.no_grad():
        w, devices = fused_weight.weight_and_devices(f_in.detach(), f_res.detach(), alpha, amplitude, p.phi)
        power = power.contiguous()
        vt = torch.mm(w, power.t())  # (C, B)
        gain = np.float32(model.gain)  # as the forward pass computes it (inf for a gain that overflows)
        scores = power.new_empty(len(y), w.shape[0])
        dvt, d_bias = torch.empty_like(vt), torch.empty_like(model.bias)
        bias = fused_weight.numpy_view(model.bias)
        loss, d_log_gain = loops[0](vt.numpy(), gain, bias, y.numpy(), scores.numpy(), dvt.numpy(), d_bias.numpy())
        grad_w = torch.mm(dvt, power)  # (C, N)
        with_inputs = u_in.requires_grad if plain is not None else f_in.requires_grad
        grad_in, grad_res = fused_weight.frequency_gradients(
            devices, f_in.detach(), f_res.detach(), grad_w, with_inputs
        )
    if plain is not None:  # d/du = d/df df/du, in numpy: no tensor operation
        grad_res.numpy()[:] *= physics.comb_slope_ghz(f_res.numpy(), p, n)
        u_res.grad = grad_res
        if grad_in is not None:
            grad_in.numpy()[:] *= physics.comb_slope_ghz(f_in.numpy(), p, n)
            u_in.grad = grad_in
    else:
        ends = [(t, g) for t, g in ((f_res, grad_res), (f_in, grad_in)) if g is not None and t.requires_grad]
        if ends:
            torch.autograd.backward([t for t, _ in ends], [g for _, g in ends])
    model.bias.grad = d_bias
    model.log_gain.grad = torch.tensor(d_log_gain, dtype=model.log_gain.dtype)
    model._weight_grad = grad_w
    return scores, torch.tensor(loss, dtype=scores.dtype)


__all__ = ["training_step"]
