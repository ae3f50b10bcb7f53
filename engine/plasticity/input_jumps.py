"""The exact greedy check of input-oscillator jumps (``rf-input``), vectorised over windows of candidate inputs.

The candidates are checked in order, each on the sample images where it emits: moving input i to its site t
changes those images' scores by P_si * steps[i, t]; the input jumps to the site that lowers the sample's
summed cross-entropy most, if it lowers it by more than a threshold, and the sample's scores and losses are
updated before the next input is checked (jumping many inputs on the word of one evaluation overshoots: they
all correct the same errors).

Checked one input at a time, that is about fifteen small tensor operations per input, and a log-sum-exp over
the few classes of every (site, image) pair, which torch reduces slowly along a short inner dimension. Here a
window of candidates is evaluated in one batch against the current scores, with the classes as the outer
dimension (every reduction runs along the images), and the window's decisions are then taken in order: a
decision stands as long as no earlier jump of the window changed the scores of an image the candidate emits
on; at the first candidate where one did, the next window starts. The decisions are those of the one-at-a-time
check (tests/test_plasticity_vectorised.py compares them with it on random cases); the sums are taken in
another order, so losses can differ from it in the last bits of float32.

On MNIST nearly every jump ends a window (the inputs share images), so a round evaluates a few hundred
windows and its cost is as much the number of tensor operations per window and per jump as the arithmetic:
a short window computes its new scores candidate by candidate (no gather of every emission's steps), the
decisions are read from one host copy of the window's loss changes, and which images a jump changed is kept
on the host (numpy), with no device round trip per jump.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import torch

from engine.layers import fused_weight

#: Most (site, class, emission) elements one window evaluates at once: its temporaries stay in cache.
BLOCK_ELEMENTS = 1 << 18
#: Candidate inputs in the first window; the next windows double (up to MAX_WINDOW) while they are used up to
#: the end, and shrink to twice what was used when a jump cut one short.
FIRST_WINDOW = 16
MAX_WINDOW = 512
#: Windows of at most this many candidates compute their new scores candidate by candidate (cheaper than
#: gathering every emission's steps).
LOOP_CANDIDATES = 16
#: Whether CPU float32 checks run as one compiled loop (engine.plasticity.round_loops) when numba is available;
#: the windows below are the GPU's way and the fallback.
COMPILED = True


def exp_(t: torch.Tensor) -> torch.Tensor:
    """``t.exp_()``, by numpy where it applies (a contiguous float32 CPU tensor): numpy's vectorised exp is about
    twice as fast as torch's on the CPU, and the rounds spend much of their time in it."""
    if _numpy_ok(t):
        np.exp(t.numpy(), out=t.numpy())
        return t
    return t.exp_()


def log_(t: torch.Tensor) -> torch.Tensor:
    """``t.log_()``, by numpy where it applies (as :func:`exp_`)."""
    if _numpy_ok(t):
        np.log(t.numpy(), out=t.numpy())
        return t
    return t.log_()


def _numpy_ok(t: torch.Tensor) -> bool:
    return t.device.type == "cpu" and t.dtype == torch.float32 and t.is_contiguous() and not t.requires_grad


@dataclass
class _Sample:
    """What the greedy pass reads and updates: the sample's scores with the classes outer (C, S), each image's
    top score (S,) and per-image loss (S,); every candidate's emissions in candidate order (candidate, image,
    power and the image's label); and the images changed by the jumps (``stamp`` (S,): the number of the last
    jump that changed each image, 0: none yet)."""

    scores_t: torch.Tensor
    top: torch.Tensor
    ce: torch.Tensor
    emit_in: torch.Tensor
    emit_row: torch.Tensor
    emit_p: torch.Tensor
    emit_y: torch.Tensor
    bounds: list[int]
    """Candidate i's emissions are bounds[i]:bounds[i + 1]."""
    rows_host: np.ndarray
    """``emit_row`` on the host, for the bookkeeping of which images the jumps changed."""
    stamp: np.ndarray
    jumps: int = 0


def greedy_jumps(
    logits: torch.Tensor,
    ce: torch.Tensor,
    y: torch.Tensor,
    power: torch.Tensor,
    steps: torch.Tensor,
    threshold: float,
    site_ok: Optional[torch.Tensor] = None,
    heartbeat: Optional[Callable[[], None]] = None,
    max_window: int = MAX_WINDOW,
) -> torch.Tensor:
    """Check the candidate inputs in order and return the site each jumps to (n,) (-1: it stays).

    ``logits`` (S, C) and ``ce`` (S,) are the sample's scores and per-image losses (both updated in place
    for the jumps), ``y`` (S,) its labels, ``power`` (n, S) each candidate's power on every image (0: it
    does not emit there), ``steps`` (n, T, C) the change of the scores per µW for each candidate site,
    ``site_ok`` (n, T) which sites are allowed (None: all). A candidate jumps when its best site lowers the
    summed loss by more than ``threshold``. ``heartbeat()`` is called before every window, which holds at most
    ``max_window`` candidates.
    """
    if compiled_applies(logits, ce, power, steps):
        from engine.plasticity import round_loops  # imports numba: only once it is known to be there

        return round_loops.greedy_jumps(logits, ce, y, power, steps, threshold, site_ok, heartbeat, max_window)
    n, n_sites, n_classes = steps.shape
    chosen = [-1] * n
    emit_in, emit_row, emit_p = _emissions(power)
    bounds = torch.searchsorted(emit_in, torch.arange(n + 1, device=logits.device)).tolist()
    sample = _Sample(
        logits.t().contiguous(),
        logits.amax(1),
        ce,
        emit_in,
        emit_row,
        emit_p,
        y.index_select(0, emit_row),
        bounds,
        emit_row.cpu().numpy(),
        np.zeros(len(ce), dtype=np.int64),
    )
    by_class = steps.permute(2, 1, 0).contiguous()  # (C, T, n): the classes outer, the candidates inner
    allowed = site_ok.tolist() if site_ok is not None else None
    budget = max(1, BLOCK_ELEMENTS // (n_sites * n_classes))  # emissions per window
    pos, window = 0, FIRST_WINDOW
    while pos < n:
        if heartbeat is not None:
            heartbeat()
        end = min(n, pos + min(window, max_window))
        while end > pos + 1 and bounds[end] - bounds[pos] > budget:
            end = pos + max(1, (end - pos) // 2)
        stop = _decide_window(sample, by_class, allowed, threshold, chosen, pos, end)
        window = min(MAX_WINDOW, 2 * window) if stop == end else max(1, 2 * (stop - pos))
        pos = stop
    logits.copy_(sample.scores_t.t())
    return torch.tensor(chosen, dtype=torch.long, device=logits.device)


def compiled_applies(*tensors: torch.Tensor) -> bool:
    """Whether the rounds' compiled loops (engine.plasticity.round_loops) take these tensors: :data:`COMPILED`,
    CPU float32 tensors, and numba available."""
    return COMPILED and fused_weight.applies(*tensors)


def _window_losses(sample: _Sample, by_class: torch.Tensor, pos: int, end: int) -> torch.Tensor:
    """(T, E): the loss of every emission's image (the emissions of candidates pos..end-1) after each of its
    candidate's jumps; ``by_class`` (C, T, n) holds the candidates' steps.

    The classes are the outer dimension and the emissions the inner one, so that every broadcast runs along
    whole rows and the sum over the few classes is a sum of C contiguous rows; the log-sum-exp is shifted by
    the image's present top score (a jump moves the scores by a few units; the clamp only guards exp). The
    same values as trial.logsumexp - target, to float rounding."""
    bounds = sample.bounds
    lo, hi = bounds[pos], bounds[end]
    rows, p = sample.emit_row[lo:hi], sample.emit_p[lo:hi]
    base = sample.scores_t.index_select(1, rows).sub_(sample.top.index_select(0, rows)).unsqueeze(1)  # (C, 1, E)
    if end - pos <= LOOP_CANDIDATES:  # the new scores candidate by candidate: no gather of the steps
        shifted = base.new_empty(by_class.shape[0], by_class.shape[1], hi - lo)
        for i in range(pos, end):
            a, b = bounds[i] - lo, bounds[i + 1] - lo
            if b > a:
                torch.addcmul(base[..., a:b], by_class[:, :, i : i + 1], p[a:b], out=shifted[..., a:b])
    else:
        shifted = torch.addcmul(base, by_class.index_select(2, sample.emit_in[lo:hi]), p)  # (C, T, E)
    # the label's score after the jump, shifted
    target = shifted.gather(0, sample.emit_y[lo:hi].view(1, 1, -1).expand(1, shifted.shape[1], -1))
    lse = log_(exp_(shifted.clamp_(max=80.0)).sum(0))  # (T, E)
    return lse.sub_(target.squeeze(0))


def _decide_window(
    sample: _Sample,
    by_class: torch.Tensor,
    site_ok: Optional[list[list[bool]]],
    threshold: float,
    chosen: list[int],
    pos: int,
    end: int,
) -> int:
    """Evaluate candidates pos..end-1 against the current scores, take their decisions in order (jumps applied
    to the sample and to ``chosen``) and return where the next window starts: ``end``, or the first candidate
    whose images an earlier jump of this window changed."""
    bounds = sample.bounds
    lo, hi = bounds[pos], bounds[end]
    rows = sample.emit_row[lo:hi]
    new_ce = _window_losses(sample, by_class, pos, end)  # (T, E)
    change = _summed_changes(new_ce - sample.ce.index_select(0, rows), [b - lo for b in bounds[pos : end + 1]])
    limit = end - pos  # the first candidate whose images an earlier jump of the window changed
    for j, row in enumerate(change):
        if j >= limit:
            break
        best, t = _first_min(row, site_ok[pos + j] if site_ok is not None else None)
        if not best < -threshold:
            continue
        a, b = bounds[pos + j] - lo, bounds[pos + j + 1] - lo
        jumped = rows[a:b]
        # the new scores, as the one-at-a-time check computes them (scores + power * step)
        scores = torch.addcmul(
            sample.scores_t.index_select(1, jumped),
            by_class[:, t, pos + j : pos + j + 1],
            sample.emit_p[lo + a : lo + b],
        )  # (C, E_j)
        sample.scores_t.index_copy_(1, jumped, scores)
        sample.top.index_copy_(0, jumped, scores.amax(0))
        sample.ce.index_copy_(0, jumped, new_ce[t, a:b])
        chosen[pos + j] = t
        sample.jumps += 1
        changed = sample.rows_host[lo:]  # the window's emitting images on the host
        sample.stamp[changed[a:b]] = sample.jumps
        if b < bounds[pos + limit] - lo:  # the first later candidate that emits on an image this jump changed
            later = sample.stamp[changed[b : bounds[pos + limit] - lo]] == sample.jumps
            first = int(later.argmax())
            if later[first]:
                limit = _candidate_of(sample, lo + b + first) - pos
    return pos + limit


def _summed_changes(diff: torch.Tensor, ends: list[int]) -> list[list[float]]:
    """Each candidate's change of the summed loss, [n_w][T], from its emissions' changes ``diff`` (T, E): the
    sums (float64, emission by emission) of the segments ends[i]:ends[i + 1], on the host by numpy's reduceat
    (one call for every segment; empty segments sum to 0)."""
    values = diff.cpu().numpy().astype(np.float64)
    cuts = np.asarray(ends)
    used = cuts[1:] > cuts[:-1]  # candidates with emissions: their starts increase, each sum runs to the next
    sums = np.zeros((values.shape[0], len(ends) - 1))
    if used.any():
        sums[:, used] = np.add.reduceat(values, cuts[:-1][used], axis=1)
    return sums.T.tolist()


def _emissions(power: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(candidate, image, power) of every emission (power > 0), candidate by candidate, of ``power`` (n, S); on
    the CPU by numpy, whose nonzero is several times faster there than torch's."""
    if power.device.type != "cpu":
        emit_in, emit_row = (power > 0).nonzero(as_tuple=True)
        return emit_in, emit_row, power[emit_in, emit_row]
    values = power.detach().numpy()
    emits = values > 0
    cand_np, image_np = np.nonzero(emits)
    # (numpy's index arrays are strided views of one array: made contiguous for torch's index kernels)
    return (
        torch.from_numpy(np.ascontiguousarray(cand_np)),
        torch.from_numpy(np.ascontiguousarray(image_np)),
        torch.from_numpy(values[emits]),
    )


def _candidate_of(sample: _Sample, emission: int) -> int:
    """The candidate that emission number ``emission`` belongs to."""
    return bisect.bisect_right(sample.bounds, emission) - 1


def _first_min(row: list[float], allowed: Optional[list[bool]]) -> tuple[float, int]:
    """(smallest value, its first index) of ``row`` among the ``allowed`` sites (all when None); inf, 0 when
    none is allowed (as a masked argmin)."""
    best, site = float("inf"), 0
    for t, v in enumerate(row):
        if (allowed is None or allowed[t]) and v < best:
            best, site = v, t
    return best, site
