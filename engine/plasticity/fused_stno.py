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


@functools.cache
def _loop() -> Optional[Any]:
    loops = compile_loops(_power_changes)
    return None if loops is None else loops[0]


def available() -> bool:
    """Whether the fused loop can be used here (numba imports)."""
    return _loop() is not None


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
    loop = _loop()
    assert loop is not None, "power_changes() needs numba (check available() first)"
    f32 = np.float32
    arrays = [t.detach().contiguous().numpy() for t in (v, contrib, cand, h, bias_ua)]
    idx = np.arange(v.shape[1]) if chains is None else chains.detach().cpu().numpy().astype(np.int64)
    gm1000 = (1000.0 * g_m.detach()).to(torch.float32).item()
    coef = stno.amplification * stno.r_ohm * 1e-6
    loop(
        *arrays,
        idx,
        f32(gm1000),
        f32(stno.v_bias),
        f32(stno.i_th_ua),
        f32(stno.clamp_ratio * stno.i_th_ua),
        f32(stno.i_th_ua),
        f32(coef),
        f32(stno.q),
        out.numpy(),
    )
    return out
