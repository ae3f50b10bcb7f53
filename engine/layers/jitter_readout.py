"""Evaluation under frequency jitter: every sample read out at its own frequencies.

Cycle-to-cycle jitter (device.freq_jitter_lw) moves every input and resonator at every read-out, so in an
evaluation pass each sample sees its own W. The draws of a block of samples are made together, in the order
the layer's generator gives them (physics.jittered), and each sample's voltages are computed exactly: by the
fused loops (engine.layers.fused_weight.sample_voltages) where they apply, else a chunk of samples at a time
so that the temporaries stay in cache (the arithmetic of every sample is the same whatever the split).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from engine.layers import fused_weight
from engine.physics import resonators as physics

if TYPE_CHECKING:  # pragma: no cover
    from engine.layers.chain import RFChainLayer

#: Elements of the (samples, chains, resonators, inputs) block of one per-sample jitter evaluation (the draws of
#: a block are made together).
JITTER_BLOCK = 1 << 22
#: Elements computed at a time within a block, so that the temporaries stay in cache.
JITTER_CHUNK = 1 << 17


def jittered_voltages(layer: "RFChainLayer", power_uw: torch.Tensor) -> torch.Tensor:
    """Chain voltages (B, C) of ``layer`` with each sample read out under its own draw of every device's
    frequency jitter (physics.jittered), evaluated exactly, a block of samples at a time."""
    chip = layer._chip()
    f_in, f_res = layer.device_freqs(chip)
    p = layer.params
    c, k, n = layer.n_chains, layer.n_resonators, layer.n_inputs
    alpha = chip.alpha if chip.alpha is not None else p.alpha
    k_sd = chip.k_sd if chip.k_sd is not None else p.k_sd
    amp = (layer.signs.view(1, -1) * k_sd).expand(c, k).unsqueeze(-1)  # (C, K, 1)
    a_res = alpha.unsqueeze(-1) if isinstance(alpha, torch.Tensor) else alpha
    b_total = power_uw.shape[0]
    per_sample = max(1, c * k * n)
    per = max(1, JITTER_BLOCK // per_sample)
    chunk = max(1, JITTER_CHUNK // per_sample)
    out = []
    for b0 in range(0, b_total, per):
        b = min(per, b_total - b0)
        xi_in = torch.randn(b, n, generator=layer.generator).to(f_in.device)
        xi_r = torch.randn(b, c, k, generator=layer.generator).to(f_res.device)
        fi = physics.jittered(f_in.unsqueeze(0), xi_in, p.alpha, p)  # (b, N)
        fr = physics.jittered(f_res.unsqueeze(0), xi_r, alpha, p)  # (b, C, K)
        if layer._fused_without_gradients(fi, fr, power_uw):
            amplitude = layer.signs.view(1, -1) * k_sd  # one pass over the block, none of it kept
            out.append(fused_weight.sample_voltages(fi, fr, alpha, amplitude, p.phi, power_uw[b0 : b0 + b]))
            continue
        for c0 in range(0, b, chunk):
            c1 = min(b, c0 + chunk)
            x = physics.detuning(fi[c0:c1].view(c1 - c0, 1, 1, -1), fr[c0:c1].unsqueeze(-1), a_res)
            w = (amp * physics.lineshape(x, p.phi)).sum(dim=2)  # (samples, C, N)
            out.append(torch.einsum("bcn,bn->bc", w, power_uw[b0 + c0 : b0 + c1]))
    return torch.cat(out) if out else power_uw.new_zeros(0, c)
