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
another order, so scores and losses can differ from it in the last bits of float32.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import torch

#: Most (site, class, emission) elements one window evaluates at once: its temporaries stay in cache.
BLOCK_ELEMENTS = 1 << 18
#: Candidate inputs in the first window; the next windows double (up to MAX_WINDOW) while they are used up to
#: the end, and shrink to twice what was used when a jump cut one short.
FIRST_WINDOW = 16
MAX_WINDOW = 512


@dataclass
class _Sample:
    """What the greedy pass reads and updates: the sample's scores (S, C), each image's top score (S,), its
    per-image losses (S,) and labels (S,), and every candidate's emissions (image, power) in candidate order."""

    scores: torch.Tensor
    top: torch.Tensor
    ce: torch.Tensor
    y: torch.Tensor
    emit_in: torch.Tensor
    emit_row: torch.Tensor
    emit_p: torch.Tensor
    bounds: list[int]
    """Candidate i's emissions are bounds[i]:bounds[i + 1]."""


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
    n, n_sites, n_classes = steps.shape
    chosen = torch.full((n,), -1, dtype=torch.long, device=logits.device)
    emit_in, emit_row = (power > 0).nonzero(as_tuple=True)  # emissions, candidate by candidate
    bounds = torch.searchsorted(emit_in, torch.arange(n + 1, device=logits.device)).tolist()
    sample = _Sample(logits, logits.amax(1), ce, y, emit_in, emit_row, power[emit_in, emit_row], bounds)
    by_site = steps.transpose(0, 1).contiguous()  # (T, n, C)
    budget = max(1, BLOCK_ELEMENTS // (n_sites * n_classes))  # emissions per window
    pos, window = 0, FIRST_WINDOW
    while pos < n:
        if heartbeat is not None:
            heartbeat()
        end = min(n, pos + min(window, max_window))
        while end > pos + 1 and bounds[end] - bounds[pos] > budget:
            end = pos + max(1, (end - pos) // 2)
        stop = _decide_window(sample, steps, by_site, site_ok, threshold, chosen, pos, end)
        window = min(MAX_WINDOW, 2 * window) if stop == end else max(1, 2 * (stop - pos))
        pos = stop
    return chosen


def _window_losses(sample: _Sample, by_site: torch.Tensor, lo: int, hi: int) -> torch.Tensor:
    """(T, E): the loss of every emission's image (emissions lo..hi-1) after each of its candidate's jumps;
    ``by_site`` (T, n, C) holds the candidates' steps.

    The site is the outer dimension and the classes the inner one, so that every broadcast is along whole
    rows; the log-sum-exp is shifted by the image's present top score (a jump moves the scores by a few
    units; the clamp only guards exp) and its sum over the few classes is a matrix product (torch reduces a
    short inner dimension slowly). The same values as trial.logsumexp - target, to float rounding."""
    n_sites, n_classes = by_site.shape[0], by_site.shape[2]
    rows, seg, p = sample.emit_row[lo:hi], sample.emit_in[lo:hi], sample.emit_p[lo:hi]
    top = sample.top.index_select(0, rows)
    base = sample.scores.index_select(0, rows) - top.unsqueeze(1)  # (E, C)
    y = sample.y.index_select(0, rows)
    moved = by_site.index_select(1, seg)  # (T, E, C): the step of each emission's candidate
    shifted = torch.addcmul(base, p.view(-1, 1).expand(-1, n_classes), moved).clamp_(max=80.0).exp_()
    lse = (shifted.view(-1, n_classes) @ torch.ones(n_classes, 1, dtype=p.dtype, device=p.device)).log_()
    target = base.gather(1, y.view(-1, 1)).view(1, -1) + p * by_site.reshape(n_sites, -1).index_select(
        1, seg * n_classes + y
    )  # (T, E): the label's score after the jump, shifted
    return lse.view(n_sites, -1) - target


def _decide_window(
    sample: _Sample,
    steps: torch.Tensor,
    by_site: torch.Tensor,
    site_ok: Optional[torch.Tensor],
    threshold: float,
    chosen: torch.Tensor,
    pos: int,
    end: int,
) -> int:
    """Evaluate candidates pos..end-1 against the current scores, take their decisions in order (jumps applied
    to the sample and to ``chosen``) and return where the next window starts: ``end``, or the first candidate
    whose images an earlier jump of this window changed."""
    bounds = sample.bounds
    lo, hi = bounds[pos], bounds[end]
    rows = sample.emit_row[lo:hi]
    new_ce = _window_losses(sample, by_site, lo, hi)  # (T, E)
    # each candidate's change of the summed loss (n_w, T), as differences of running sums (float64)
    running = torch.nn.functional.pad((new_ce - sample.ce.index_select(0, rows)).double().cumsum(1), (1, 0))
    ends = torch.tensor(bounds[pos : end + 1], device=rows.device) - lo
    change = (running[:, ends[1:]] - running[:, ends[:-1]]).t()
    if site_ok is not None:
        change = change.masked_fill(~site_ok[pos:end], float("inf"))
    best, site = change.min(1)  # the first smallest, as argmin
    limit = end - pos  # the first candidate whose images an earlier jump of the window changed
    for j in (best < -threshold).nonzero().flatten().tolist():
        if j >= limit:
            break
        a, b = bounds[pos + j] - lo, bounds[pos + j + 1] - lo
        t = int(site[j])
        jumped = rows[a:b]
        # the new scores, computed as the one-at-a-time check computes them (the same bits)
        scores = torch.addcmul(sample.scores[jumped], sample.emit_p[lo + a : lo + b].view(-1, 1), steps[pos + j, t])
        sample.scores[jumped] = scores
        sample.top[jumped] = scores.amax(1)
        sample.ce[jumped] = new_ce[t, a:b].to(sample.ce.dtype)
        chosen[pos + j] = t
        changed = torch.zeros(len(sample.ce), dtype=torch.bool, device=rows.device)
        changed[jumped] = True
        first = changed[rows[b : int(ends[limit])]].nonzero()[:1].flatten().tolist()
        if first:  # the first later candidate that emits on an image this jump changed
            limit = int(sample.emit_in[lo + b + first[0]]) - pos
    return pos + limit
