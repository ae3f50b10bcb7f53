"""The arithmetic pieces of a rewiring round (engine.plasticity.rounds), as functions of tensors: the inputs'
power variance (which resonators may leave), the couplings of grid sites to the inputs and the search for
distinct candidate sites, and the terms of the swap losses (the candidates' factors, the log-sum-exp over the
other classes, the candidates picked for each leaving resonator's slot)."""

from __future__ import annotations

import math
from typing import Optional

import torch

from engine.physics import resonators as physics
from engine.plasticity import input_jumps

#: Training samples summed at a time by :func:`input_variance` (its squares stay in cache).
VARIANCE_ROWS = 2048


def input_variance(train_x: torch.Tensor) -> torch.Tensor:
    """The variance of every input over the training samples (N,): sums over blocks of rows, which is four
    times faster than squaring the whole training set at once (no copy of it is made)."""
    total = train_x.new_zeros(train_x.shape[1:])
    squares = train_x.new_zeros(train_x.shape[1:])
    for i in range(0, len(train_x), VARIANCE_ROWS):
        block = train_x[i : i + VARIANCE_ROWS]
        total += block.sum(dim=0)
        squares += block.square().sum(dim=0)
    mean = total / max(len(train_x), 1)
    return (squares / max(len(train_x), 1) - mean.square()).clamp_min(0.0)


def for_slots(cand: torch.Tensor, slot: torch.Tensor, out: Optional[torch.Tensor] = None) -> torch.Tensor:
    """The candidates' values (S, C, D, T) for the slots ``slot`` (C, D) of every chain's leaving resonators,
    picked from ``cand`` (S, C, 2, T) (an index_select of whole (T,) rows: several times faster than a gather);
    written into ``out`` (S, C, D, T) if given."""
    s, c, n_slots, t = cand.shape
    rows = (torch.arange(c, device=cand.device).view(-1, 1) * n_slots + slot).view(-1)
    flat = None if out is None else out.view(s, c * slot.shape[1], t)
    return torch.index_select(cand.reshape(s, c * n_slots, t), 1, rows, out=flat).view(s, c, slot.shape[1], t)


#: Largest exponent of either factor of a swap's exp(base - lse_others) exp(cand) (scores stay O(10); their
#: product then stays below exp(80), where the exponent of the sum was clamped before).
EXP_CLAMP = 40.0
#: A scalar 1 for torch.addcmul (the swap losses' 1 + e^a e^b, written in place).
ONE = torch.ones(())


def candidate_factors(cand_for: torch.Tensor, out: Optional[torch.Tensor] = None) -> torch.Tensor:
    """exp(cand_for), its exponent clamped at :data:`EXP_CLAMP`: the candidates' factors of a round's swap
    losses (:meth:`StructuralPlasticity.swap_losses`), computed once per round; written into ``out`` if given."""
    return input_jumps.exp_(torch.clamp(cand_for, max=EXP_CLAMP, out=out))


def others_logsumexp(logits: torch.Tensor) -> torch.Tensor:
    """(S, C): for every class j, the log-sum-exp of the scores of the other classes (equal, to float rounding,
    to a log-sum-exp over the C - 1 others, and three times faster than one over an (S, C, C) masked copy).

    Shifted by the top score, the others of class j sum to the total less j's own term, which is at most the
    top class's 1; the top class itself gets its others shifted by the second score, so no sum underflows."""
    if logits.shape[1] < 2:  # a single class has no others
        return torch.full_like(logits, -float("inf"))
    top2, arg = logits.topk(2, dim=1)  # (S, 2)
    top, second, first = top2[:, :1], top2[:, 1:], arg[:, :1]
    e = (logits - top).exp_()
    lse = (e.sum(1, keepdim=True) - e).log_().add_(top)
    e_second = (logits - second).exp_().scatter_(1, first, 0.0)
    return lse.scatter_(1, first, e_second.sum(1, keepdim=True).log_().add_(second))


#: Grid sites whose couplings :func:`site_couplings` computes at a time (their temporaries stay in cache).
SITE_ROWS = 128


def site_couplings(
    f_in: torch.Tensor, f_sites: torch.Tensor, params: physics.DeviceParams, out: Optional[torch.Tensor] = None
) -> torch.Tensor:
    """The couplings K_SD L(x) of a +1 resonator at each site (M,) to every input (N,): (M, N), the same values
    (bit for bit) as ``physics.coupling_tensor(f_in, f_sites.view(1, -1), params, signs=1)[0]``, computed with
    the same operations in the same order, but in place and a block of sites at a time (four times fewer
    passes over memory: the rf-input rounds recompute them, since the inputs' frequencies are trained). Written
    into ``out`` when it has the shape, dtype and device."""
    shape = (len(f_sites), len(f_in))
    if out is None or out.shape != shape or out.dtype != f_in.dtype or out.device != f_in.device:
        out = torch.empty(shape, dtype=f_in.dtype, device=f_in.device)
    cos2, sin = 2.0 * math.cos(params.phi), math.sin(params.phi)
    for i in range(0, len(f_sites), SITE_ROWS):
        f_r = f_sites[i : i + SITE_ROWS].view(-1, 1)
        x = torch.sub(f_in.view(1, -1), f_r, out=out[i : i + SITE_ROWS]).div_(params.alpha * f_r)
        inv = torch.mul(x, x).add_(1.0).reciprocal_()  # physics.lineshape: 1 / (1 + x^2)
        line = x.mul_(2.0) if params.phi == 0.0 else x.mul_(cos2).add_(sin)
        line.mul_(inv).mul_(params.k_sd)
    return out


def suppress_around(benefit: torch.Tensor, best: torch.Tensor, sep: int) -> torch.Tensor:
    """Set ``benefit`` (..., M) to -inf in place at the sites less than ``sep`` from each row's ``best`` (...):
    the window's 2 sep - 1 sites scattered, rather than every site's distance compared."""
    offsets = torch.arange(1 - sep, sep, device=best.device)
    window = (best.unsqueeze(-1) + offsets).clamp_(0, benefit.shape[-1] - 1)
    return benefit.scatter_(-1, window, -float("inf"))
