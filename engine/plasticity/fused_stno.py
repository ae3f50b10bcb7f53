"""The hidden-layer round's hot loop as one numba loop: the change of every STNO's power for every candidate
swap (engine.plasticity.hidden).

A round of a hidden layer evaluates, for each sample s, chain j, leaving resonator d and candidate site t, the
STNO power after the swap: the chain voltage v - contrib + cand, through the STNO's current and power
(physics.stno_current_ua, physics.stno_power_uw). In torch that is about twelve passes over an (S, H, D, T)
block of millions of elements; here it is one. The operations are those of the physics functions, in the
same order and in float32 with IEEE arithmetic (no fast-math), so the values are the same bits
(tests/test_fused_stno.py checks this against the torch path).
"""

from __future__ import annotations

import functools
from typing import Any, Optional

import numpy as np
import torch

from engine.layers.fused_weight import compile_loops
from engine.physics.resonators import STNOParams


def _power_changes(
    v, contrib, cand, h, bias_ua, chains, gm1000, v_bias, i_lo, i_hi, i_th, coef, q, out
):  # pragma: no cover
    """out[s, j, d, t] = P(v[s, j] - contrib[s, j, d] + cand[s, j, d, t]) - h[s, j] for the chains j in
    ``chains`` (numba-compiled; the order of operations of the torch path)."""
    n_samples, _, n_drop, n_cand = cand.shape
    one = np.float32(1.0)
    for s in range(n_samples):
        for j in chains:
            vs, b, hs = v[s, j], bias_ua[j], h[s, j]
            for d in range(n_drop):
                base = vs - contrib[s, j, d]
                for t in range(n_cand):
                    i = ((base + cand[s, j, d, t]) + v_bias) * gm1000 + b
                    i = min(max(i, i_lo), i_hi)
                    xi = i / i_th
                    out[s, j, d, t] = coef * (xi - one) / (xi + q) * i * i - hs


def _powers(v, bias_ua, gm1000, v_bias, i_lo, i_hi, i_th, coef, q, out):  # pragma: no cover - numba-compiled
    """out[b, j, m] = P(v[b, j, m]): the STNO power for chain voltages v (B, H, M), chain j's bias current
    bias_ua[j] (the order of operations of the torch path)."""
    n_b, n_h, n_m = v.shape
    one = np.float32(1.0)
    for b in range(n_b):
        for j in range(n_h):
            bj = bias_ua[j]
            for m in range(n_m):
                i = (v[b, j, m] + v_bias) * gm1000 + bj
                i = min(max(i, i_lo), i_hi)
                xi = i / i_th
                out[b, j, m] = coef * (xi - one) / (xi + q) * i * i


@functools.cache
def _loops() -> Optional[tuple[Any, ...]]:
    return compile_loops(_power_changes, _powers)


def available() -> bool:
    """Whether the fused loops can be used here (numba imports)."""
    return _loops() is not None


def _constants(g_m: torch.Tensor, stno: STNOParams) -> tuple[np.float32, ...]:
    """(1000 g_m, V_bias, I_th, clamp_ratio I_th, I_th, A R 1e-6, Q) as the torch path rounds them (float32)."""
    f32 = np.float32
    gm1000 = (1000.0 * g_m.detach()).to(torch.float32).item()
    coef = stno.amplification * stno.r_ohm * 1e-6
    i_th = f32(stno.i_th_ua)
    return f32(gm1000), f32(stno.v_bias), i_th, f32(stno.clamp_ratio * stno.i_th_ua), i_th, f32(coef), f32(stno.q)


def powers(v: torch.Tensor, bias_ua: torch.Tensor, g_m: torch.Tensor, stno: STNOParams) -> torch.Tensor:
    """The STNO powers (µW) for chain voltages v (B, H, ...) (chains on dimension 1) without gradients:
    physics.stno_power_uw of physics.stno_current_ua, as one loop. Float32 CPU tensors; :func:`available`."""
    loops = _loops()
    assert loops is not None, "powers() needs numba (check available() first)"
    v3 = v.detach().contiguous().reshape(v.shape[0], v.shape[1], -1)
    out = torch.empty_like(v3)
    loops[1](v3.numpy(), bias_ua.detach().contiguous().numpy(), *_constants(g_m, stno), out.numpy())
    return out.view(v.shape)


def power_changes(
    v: torch.Tensor,
    contrib: torch.Tensor,
    cand: torch.Tensor,
    h: torch.Tensor,
    bias_ua: torch.Tensor,
    g_m: torch.Tensor,
    stno: STNOParams,
    out: torch.Tensor,
    chains: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """Write into ``out`` (S, H, D, T) each swap's change of the STNO power (µW): chain voltages v (S, H),
    the leaving resonators' voltages contrib (S, H, D), the candidates' cand (S, H, D, T), the present powers
    h (S, H), the bias currents bias_ua (H,) (µA), the conversion g_m (µA/mV, a 0-d tensor); only the
    chains ``chains`` (indices) when given. Float32 CPU tensors; :func:`available` must be true."""
    loops = _loops()
    assert loops is not None, "power_changes() needs numba (check available() first)"
    arrays = [t.detach().contiguous().numpy() for t in (v, contrib, cand, h, bias_ua)]
    idx = np.arange(v.shape[1]) if chains is None else chains.detach().cpu().numpy().astype(np.int64)
    loops[0](*arrays, idx, *_constants(g_m, stno), out.numpy())
    return out
