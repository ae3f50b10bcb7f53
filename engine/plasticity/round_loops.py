"""The rewiring rounds' hot loops as numba loops for the CPU: the greedy check of input-oscillator jumps
(engine.plasticity.input_jumps), and the resonator round's swap-loss sums (engine.plasticity.rounds).

The candidates are checked one after another, as the rule says, with nothing wasted: the torch version
evaluates windows of candidates at once and throws away what follows the first jump of a window (on MNIST
nearly every jump ends one), and pays a few dozen tensor operations per window. Here each candidate's images
are found by a scan of its powers, their new scores for every site are written into a block, exponentiated
and summed class by class, and the log-sum-exp less the label's score is the image's new loss; the block's
exp and log are the vectorised ones of engine.layers.vector_math. The arithmetic is the torch version's, in
float32 (the sum of a candidate's loss changes in float64, image by image), so the decisions are the same
except where two sites tie to the last bits (tests/test_plasticity_vectorised.py checks them against the
one-at-a-time check on random cases).

Importing this module imports numba (through vector_math): callers import it only when
input_jumps.compiled_applies says numba is available.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch

from engine.layers.fused_weight import compile_loops, numpy_view
from engine.layers.vector_math import vexp, vlog

#: Largest exponent of the block (as the torch version's clamp).
EXP_MAX = 80.0


def _check(scores, top, ce, y, power, steps, allowed, threshold, chosen, start, stop):  # pragma: no cover
    """Check candidates start..stop-1 (numba-compiled): ``scores`` (C, S) (the classes outer), ``top`` (S,) and
    ``ce`` (S,) are the sample's scores, top scores and losses (updated for every jump), ``y`` (S,) its labels,
    ``power`` (n, S), ``steps`` (n, T, C), ``allowed`` (n, T), and ``chosen`` (n,) receives each jump's site.
    Every loop over a candidate's images runs along a row of a 2-D buffer (the images inner), which LLVM
    vectorises (written with flat offsets instead, the sum over classes ran nine times slower)."""
    n_classes, n_samples = scores.shape
    n_sites = steps.shape[1]
    rows = np.empty(n_samples, dtype=np.int64)
    watts = np.empty(n_samples, dtype=np.float32)
    labels = np.empty(n_samples, dtype=np.int64)
    losses = np.empty(n_samples, dtype=np.float32)
    base = np.empty((n_classes, n_samples), dtype=np.float32)
    block = np.empty((n_classes, n_samples), dtype=np.float32)
    total = np.empty(n_samples, dtype=np.float32)
    target = np.empty(n_samples, dtype=np.float32)
    after = np.empty((n_sites, n_samples), dtype=np.float32)  # each image's loss after each site's jump
    change = np.empty(n_sites, dtype=np.float64)
    cap = np.float32(EXP_MAX)
    for i in range(start, stop):
        m = 0
        for s in range(n_samples):  # the images it emits on, without a branch (a fifth of MNIST's pixels)
            p = power[i, s]
            rows[m] = s
            watts[m] = p
            m += p > 0
        if m == 0:
            continue
        for e in range(m):
            labels[e] = y[rows[e]]
            losses[e] = ce[rows[e]]
        for c in range(n_classes):  # the images' scores less their top score
            for e in range(m):
                base[c, e] = scores[c, rows[e]] - top[rows[e]]
        for t in range(n_sites):
            for c in range(n_classes):  # the shifted scores after the jump, clamped for exp
                step = steps[i, t, c]
                for e in range(m):
                    block[c, e] = min(base[c, e] + step * watts[e], cap)
            for e in range(m):  # the label's score (not clamped)
                lab = labels[e]
                target[e] = base[lab, e] + steps[i, t, lab] * watts[e]
            for c in range(n_classes):
                for e in range(m):
                    block[c, e] = vexp(block[c, e])
            for e in range(m):
                total[e] = block[0, e]
            for c in range(1, n_classes):
                for e in range(m):
                    total[e] += block[c, e]
            for e in range(m):
                after[t, e] = vlog(total[e]) - target[e]
            acc = 0.0  # (a float64 sum in order: kept apart from the loop above, which then vectorises)
            for e in range(m):
                acc += np.float64(after[t, e] - losses[e])
            change[t] = acc
        best, site = np.inf, 0
        for t in range(n_sites):
            if allowed[i, t] and change[t] < best:
                best, site = change[t], t
        if not best < -threshold:
            continue
        chosen[i] = site
        for e in range(m):
            top[rows[e]] = -np.inf
        for c in range(n_classes):
            step = steps[i, site, c]
            for e in range(m):
                r = rows[e]
                v = scores[c, r] + step * watts[e]
                scores[c, r] = v
                top[r] = max(top[r], v)
        for e in range(m):
            ce[rows[e]] = after[site, e]


#: Samples whose terms :func:`_log_sums` adds in float32 before it carries them into its float64 sums.
SUM_BLOCK = 64


def _log_sums(factors, shift, out):  # pragma: no cover - compiled by numba
    """out[k] = sum_s log(1 + factors[s, k] shift[s, k // T]) for factors (S, D * T) and shift (S, D)
    (numba-compiled): the swap losses' block, summed over the sample without being stored."""
    n_samples, width = factors.shape
    n_cols = shift.shape[1]
    n_sites = width // n_cols
    part = np.empty(width, dtype=np.float32)
    total = np.zeros(width, dtype=np.float64)
    wide = np.empty(width, dtype=np.float32)
    one = np.float32(1.0)
    for start in range(0, n_samples, SUM_BLOCK):
        for k in range(width):
            part[k] = 0.0
        for s in range(start, min(n_samples, start + SUM_BLOCK)):
            for j in range(n_cols):  # the shift of each column, spread over its sites (the loop below vectorises)
                v = shift[s, j]
                for t in range(n_sites):
                    wide[j * n_sites + t] = v
            for k in range(width):
                part[k] += vlog(one + factors[s, k] * wide[k])
        for k in range(width):
            total[k] += part[k]
    for k in range(width):
        out[k] = total[k]


#: Largest fraction of non-zero powers at which :func:`sample_products` skips the zeros (above it, a dense
#: matrix product is faster).
SPARSE_DENSITY = 0.3


def _sample_products(power, lines_t, outs):  # pragma: no cover - compiled by numba
    """outs[j][s, r] = sum_n power[s, n] lines_t[j][n, r] over the inputs n where power[s, n] is not 0
    (numba-compiled): each image's lit inputs are listed once, then every output row is a sum of rows of
    ``lines_t[j]`` (N, R_j), eight at a time (a load and a store of the row per eight rows read)."""
    n_samples, n_in = power.shape
    lit = np.empty(n_in, dtype=np.int64)
    watts = np.empty(n_in, dtype=np.float32)
    for s in range(n_samples):
        m = 0
        for n in range(n_in):  # without a branch, as in _check
            p = power[s, n]
            lit[m] = n
            watts[m] = p
            m += p != 0.0
        for j in range(len(lines_t)):
            lt = lines_t[j]
            o = outs[j][s]
            for r in range(lt.shape[1]):
                o[r] = 0.0
            e = 0
            while e + 8 <= m:
                w0, w1, w2, w3 = watts[e], watts[e + 1], watts[e + 2], watts[e + 3]
                w4, w5, w6, w7 = watts[e + 4], watts[e + 5], watts[e + 6], watts[e + 7]
                a0, a1, a2, a3 = lt[lit[e]], lt[lit[e + 1]], lt[lit[e + 2]], lt[lit[e + 3]]
                a4, a5, a6, a7 = lt[lit[e + 4]], lt[lit[e + 5]], lt[lit[e + 6]], lt[lit[e + 7]]
                for r in range(lt.shape[1]):
                    o[r] += ((w0 * a0[r] + w1 * a1[r]) + (w2 * a2[r] + w3 * a3[r])) + (
                        (w4 * a4[r] + w5 * a5[r]) + (w6 * a6[r] + w7 * a7[r])
                    )
                e += 8
            while e < m:
                w0, a0 = watts[e], lt[lit[e]]
                for r in range(lt.shape[1]):
                    o[r] += w0 * a0[r]
                e += 1


def _input_moments(power, resid, weights, grad, moments):  # pragma: no cover - compiled by numba
    """grad[n] += sum_s power[s, n] resid[s] and moments[n] += sum_s power[s, n]^2 / S weights[s] over the
    non-zero powers (numba-compiled; the caller passes them zeroed): every lit (image, input) pair adds the
    image's rows to its input's."""
    n_samples, n_in = power.shape
    n_c, n_q = resid.shape[1], weights.shape[1]
    scale = np.float32(n_samples)
    lit = np.empty(n_in, dtype=np.int64)
    watts = np.empty(n_in, dtype=np.float32)
    for s in range(n_samples):
        m = 0
        for n in range(n_in):  # the image's lit inputs, without a branch
            p = power[s, n]
            lit[m] = n
            watts[m] = p
            m += p != 0.0
        for e in range(m):
            n, v = lit[e], watts[e]
            w = v * v / scale
            for c in range(n_c):
                grad[n, c] += v * resid[s, c]
            for q in range(n_q):
                moments[n, q] += w * weights[s, q]


@functools.cache
def _loops() -> Optional[tuple[Any, ...]]:
    return compile_loops(_check, _log_sums, _sample_products, _input_moments, fastmath={"contract"})


def sample_products(power: torch.Tensor, lines: Sequence[torch.Tensor], outs: Sequence[torch.Tensor]) -> None:
    """outs[j] = power @ lines[j].T for the powers (S, N) of a round's sample and couplings ``lines[j]`` (R_j, N),
    written into ``outs[j]`` (S, R_j) (contiguous), summing only the terms of the non-zero powers (CPU float32;
    the caller checks :func:`sparse_enough` first). On MNIST about a fifth of the pixels are lit, and this is
    about twice as fast as the dense product; the sums are taken in another order, so they differ from it in
    the last bits."""
    loops = _loops()
    assert loops is not None, "sample_products needs numba (check input_jumps.compiled_applies first)"
    lines_t = tuple(numpy_view(t.t()) for t in lines)
    loops[2](numpy_view(power), lines_t, tuple(o.numpy() for o in outs))


def input_moments(power: torch.Tensor, resid: torch.Tensor, weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(power^T resid (N, C), (power^2 / S)^T weights (N, Q)) for a round's sample powers (S, N), residuals
    (S, C) and weights (S, Q), summing only the terms of the non-zero powers (CPU float32; the caller checks
    :func:`sparse_enough` first): the input round's gradient and curvature moments without the transposed and
    squared copies of the sample."""
    loops = _loops()
    assert loops is not None, "input_moments needs numba (check input_jumps.compiled_applies first)"
    grad = power.new_zeros(power.shape[1], resid.shape[1])
    moments = power.new_zeros(power.shape[1], weights.shape[1])
    loops[3](numpy_view(power), numpy_view(resid), numpy_view(weights), grad.numpy(), moments.numpy())
    return grad, moments


def sparse_enough(power: torch.Tensor) -> bool:
    """Whether :func:`sample_products` is the faster way for these powers (S, N): at most
    :data:`SPARSE_DENSITY` of them non-zero."""
    return torch.count_nonzero(power).item() <= SPARSE_DENSITY * power.numel()


def log_sums(factors: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """sum over the sample of log(1 + factors * shift[..., None]) for factors (S, C, D, T) and shift (S, C, D),
    as (C, D, T), without the (S, C, D, T) block (CPU float32; the terms of 64 samples are added in float32,
    the blocks in float64)."""
    loops = _loops()
    assert loops is not None, "log_sums needs numba (check input_jumps.compiled_applies first)"
    s, c, d, t = factors.shape
    out = factors.new_empty(c, d, t)
    loops[1](numpy_view(factors).reshape(s, c * d * t), numpy_view(shift).reshape(s, c * d), out.numpy().reshape(-1))
    return out


def greedy_jumps(
    logits: torch.Tensor,
    ce: torch.Tensor,
    y: torch.Tensor,
    power: torch.Tensor,
    steps: torch.Tensor,
    threshold: float,
    site_ok: Optional[torch.Tensor],
    heartbeat: Optional[Callable[[], None]],
    every: int,
) -> torch.Tensor:
    """engine.plasticity.input_jumps.greedy_jumps on CPU float32 tensors (its arguments; ``heartbeat()`` is
    called before every ``every`` candidates)."""
    check = _loops()
    assert check is not None, "the compiled check needs numba (check input_jumps.compiled_applies first)"
    n, n_sites, _ = steps.shape
    scores = logits.detach().t().contiguous().numpy()  # (C, S): a copy, the classes outer
    top = scores.max(axis=0) if scores.shape[1] else np.zeros(0, dtype=np.float32)
    losses = ce.detach().contiguous().numpy().copy()
    labels = y.detach().to(torch.int64).contiguous().numpy()
    powers = power.detach().contiguous().numpy()
    moves = steps.detach().contiguous().numpy()
    allowed = np.ones((n, n_sites), dtype=np.bool_) if site_ok is None else site_ok.detach().contiguous().numpy()
    chosen = np.full(n, -1, dtype=np.int64)
    arrays = (scores, top, losses, labels, powers, moves, allowed, float(threshold), chosen)
    every = max(1, every)
    for start in range(0, n, every):
        if heartbeat is not None:
            heartbeat()
        check[0](*arrays, start, min(n, start + every))
    logits.copy_(torch.from_numpy(scores).t())
    ce.copy_(torch.from_numpy(losses))
    return torch.from_numpy(chosen)
