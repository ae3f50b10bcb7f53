"""Structural plasticity of an RF chain layer: resonators jump to other input frequencies when that helps.

Between two rounds, the loss gradient with respect to the effective weight, G = dL/dW (C, N), is accumulated
over the training batches. At a round (every ``interval_steps`` optimizer steps until ``end_fraction`` of
training; a short run rewires more often, so that it still gets ``min_rounds`` rounds: :func:`rewiring_interval`):

1. *Propose* landing sites. For every comb position u on a fine grid, the first-order change of the loss if
   a resonator of sign s landed there is s * sum_i G_ji K_SD L(x_i(u)): the gradient correlated with the
   resonator's own lineshape, long tails included. The best few sites per chain and per sign are proposed;
   the side of the resonance a site lies on gives the weight sign the chain needs.
2. *Evaluate* swaps exactly on a fresh sample of training images. The candidates to leave are the
   ``drop_candidates`` resonators of each chain whose voltage varies least over the training images. For
   every (resonator, site) pair the chain's score is recomputed without the resonator and with a resonator
   at the new site, and so is the cross-entropy. The first-order guess only chooses candidates; a swap
   happens only when it lowers the sampled loss.
3. *Jump*: in every chain, the best improving swap is applied, and the evaluation repeats with the scores
   updated, up to a cosine-decayed number of jumps per chain and round (each resonator and each site at
   most once). Jumped resonators get fresh optimizer state, as regrown weights do in RigL.

When input frequencies are trained (``rf-input``), input oscillators jump too. Input i's weight vector is the
chains' response at its frequency, W[:, i] = w(f_i): a point on one curve in R^C. Gradient descent only slides
it along that curve; a jump can take it to any point. For every input and every grid site, a Gauss-Newton
model of the loss (gradient plus the softmax curvature, estimated on the sample) predicts the change of
moving there. The inputs with the largest predicted gains are then checked one at a time, exactly: each
tries its few best sites on the sample (only the images where it emits change), jumps to the best one if
that lowers the sampled loss, and the sample's scores are updated before the next input is checked. (Jumping
many inputs at once on the model's word alone overshoots: they all correct the same errors.) That greedy
check is vectorised over windows of inputs, with the same decisions: engine.plasticity.input_jumps.

The hidden layers of a multilayer network rewire through the rest of the network: engine.plasticity.hidden.
The settings are :class:`~engine.plasticity.params.PlasticityParams`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterator, Optional, Sequence, cast

import torch

from engine.layers import fused_weight
from engine.physics import resonators as physics
from engine.plasticity import input_jumps
from engine.plasticity.params import PlasticityParams
from engine.plasticity.round_terms import (
    EXP_CLAMP,
    ONE,
    candidate_factors,
    for_slots,
    input_variance,
    others_logsumexp,
    site_couplings,
    suppress_around,
)

if TYPE_CHECKING:  # pragma: no cover
    from engine.core.model_base import TrainingContext
    from engine.layers.chain import RFChainLayer
    from engine.nets.multilayer import RFNetwork
    from engine.nets.rf_perceptron import RFPerceptron


@dataclass
class LayerTarget:
    """The chain layer whose resonators jump, and how its inputs and the class scores are computed."""

    chains: "RFChainLayer"
    gain: Callable[[], torch.Tensor]
    """Read-out gain of the output layer (scores per volt)."""
    bias: Callable[[], torch.Tensor]
    """Read-out bias (C,)."""
    inputs: Callable[[torch.Tensor], torch.Tensor]
    """Training inputs (S, N) in [0, 1] -> the powers (S, N_l) that reach this layer's chains (µW)."""

    @classmethod
    def of_perceptron(cls, model: "RFPerceptron") -> "LayerTarget":
        params = model.params
        return cls(model.chains, lambda: model.gain, lambda: model.bias, lambda x: physics.input_power(x, params))


def _class_pairs(c: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The pairs of classes c <= d as two index vectors (P,), and for every (c, d) of a C x C matrix the number
    of its pair (C * C,): a symmetric matrix stored as its P entries is ``pairs[:, full].view(-1, C, C)``."""
    first, second = torch.triu_indices(c, c, device=device)
    number = torch.empty(c, c, dtype=torch.long, device=device)
    number[first, second] = torch.arange(len(first), device=device)
    number[second, first] = number[first, second]
    return first, second, number.view(-1)


def _round_loops() -> Any:
    """engine.plasticity.round_loops, imported when first used (it imports numba): callers check
    input_jumps.compiled_applies first."""
    from engine.plasticity import round_loops

    return round_loops


def rewiring_interval(params: PlasticityParams, total_steps: int) -> int:
    """Optimizer steps between two rounds in a run of ``total_steps`` steps (0: rewiring is off).

    ``interval_steps``, shortened when that would give fewer than ``min_rounds`` rounds before ``end_fraction``
    of the run (rounds fall on the multiples of the interval below the end step). Runs long enough for
    ``min_rounds`` rounds at the nominal interval keep it exactly, e.g. every reference run.
    """
    if params.interval_steps <= 0:
        return 0
    if params.min_rounds <= 0:
        return params.interval_steps
    end_step = int(params.end_fraction * total_steps)
    return max(1, min(params.interval_steps, (end_step - 1) // params.min_rounds))


def rewiring_rounds(params: PlasticityParams, total_steps: int) -> int:
    """How many rewiring rounds a run of ``total_steps`` optimizer steps gets (0: its topology never changes)."""
    interval = rewiring_interval(params, total_steps)
    end_step = int(params.end_fraction * total_steps)
    return (end_step - 1) // interval if interval > 0 and end_step > 1 else 0


class StructuralPlasticity:
    """Gradient-proposed, exactly-evaluated resonator jumps for an :class:`RFPerceptron`.

    Built from a training context when a run starts and dropped when it ends (RFPerceptron.finish_training):
    it holds the training data, the gradient sum and cached lineshapes only for the length of the run.
    """

    def __init__(
        self,
        model: "RFPerceptron | RFNetwork",
        params: PlasticityParams,
        context: "TrainingContext",
        target: Optional[LayerTarget] = None,
        input_jumps: bool = True,
    ) -> None:
        self.model = model
        self.params = params
        # without a target, a perceptron: a network (RFNetwork) always passes the target of one of its layers
        self.target = target if target is not None else LayerTarget.of_perceptron(cast("RFPerceptron", model))
        self.chains = self.target.chains
        #: whether input oscillators jump too (when their frequencies are trained): single-layer networks only
        self.input_jumps = input_jumps
        self.optimizer = context.optimizer
        self.generator = context.generator
        self.end_step = int(params.end_fraction * context.total_steps)
        #: steps between two rounds (0: never), the same schedule for every layer of a network
        self.interval = rewiring_interval(params, context.total_steps)
        self.grad_sum: torch.Tensor | None = None
        self.train_x, self.train_y = context.train_x, context.train_y
        self.device = self.train_x.device
        # (N,) µW^2: the variance of each input's power over the training set, computed once per run (for the
        # first layer; deeper layers estimate it on each round's sample)
        self.input_var = None
        if target is None:
            p = model.params.p_max_uw
            self.input_var = input_variance(self.train_x) * p * p
        self._lines: tuple[torch.Tensor, torch.Tensor] | None = None
        #: large temporaries of the rounds (the sample, the candidates' voltages, swap_losses' blocks), reused
        #: from round to round (:meth:`_buffer`)
        self._buffers: dict[str, torch.Tensor] = {}
        #: whether the rounds' sample products skip zero powers (:meth:`_voltages`; None: not decided yet)
        self._sparse: Optional[bool] = None

    def accumulate(self, weight_grad: torch.Tensor) -> None:
        g = weight_grad.detach()
        self.grad_sum = g.clone() if self.grad_sum is None else self.grad_sum.add_(g)

    def moves_at(self, step: int) -> int:
        """Most jumps per chain at a round at this step (cosine decay of ``fraction`` to 0)."""
        if step >= self.end_step or self.end_step <= 0:
            return 0
        frac = 0.5 * self.params.fraction * (1.0 + math.cos(math.pi * step / self.end_step))
        return max(1, int(round(frac * self.chains.n_resonators)))

    def _gradients(self) -> torch.Tensor:
        """The gradient sum of this round; a round runs only when there is one (:meth:`maybe_rewire` checks)."""
        if self.grad_sum is None:
            raise RuntimeError("a rewiring round needs the gradients of at least one step")
        return self.grad_sum

    def maybe_rewire(self, step: int) -> int:
        """Run a rewiring round if one is due; return the number of resonators that jumped."""
        if self.interval <= 0 or step % self.interval or self.grad_sum is None:
            return 0
        n = self.moves_at(step)
        moved = self.rewire(n) if n > 0 else 0
        self.model.heartbeat()
        if n > 0 and self.input_jumps and self.chains.input_comb.requires_grad:
            moved += self.rewire_inputs(self.params.input_fraction * n / max(1, self.moves_at(0)))
        self.grad_sum = None
        return moved

    # --- the three stages ---------------------------------------------------------------------------------
    @torch.no_grad()
    def propose(self, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Candidate sites: comb positions (C, 2, T) for chain sign +1 (index 0) and -1 (index 1), and the
        couplings to every input (C, 2, T, N) of a resonator of that sign there."""
        P = self.params
        chains = self.chains
        grid, lines = self._grid_lines()
        first_order = grad @ lines.t()  # (C, M): loss change per unit of a +1 resonator at u
        site_idx = torch.empty(chains.n_chains, 2, P.candidates, dtype=torch.long, device=grad.device)
        sep = max(1, int(round(P.candidate_separation / P.grid_step)))
        for p, sign in enumerate((1.0, -1.0)):
            benefit = -sign * first_order  # (C, M), larger is better
            for t in range(P.candidates):
                best = benefit.argmax(dim=1)  # (C,)
                site_idx[:, p, t] = best
                suppress_around(benefit, best, sep)  # so that the next candidate is a different site
        # couplings of a resonator of the slot's own sign: slot 1 holds sites for s_k = -1 resonators, whose
        # coupling is the negative of a +1 resonator's there
        slot_sign = torch.tensor([1.0, -1.0], device=lines.device).view(1, 2, 1, 1)
        return grid[site_idx], lines[site_idx] * slot_sign  # (C, 2, T), (C, 2, T, N)

    @torch.no_grad()
    def propose_reachable(
        self, grad: torch.Tensor, drop: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Candidate sites per leaving resonator when tuning ranges are limited (device.tuning_range): for
        resonator ``drop[j, d]``, the ``candidates`` best grid sites within its own reach. Returns sites
        (C, D, T), the couplings of a resonator of its sign there (C, D, T, N) and which candidates exist
        (C, D, T) (a narrow range may hold fewer grid sites than candidates)."""
        P = self.params
        chains = self.chains
        grid, lines = self._grid_lines()
        first_order = grad @ lines.t()  # (C, M)
        sign = chains.signs[drop]  # (C, D)
        benefit = -sign.unsqueeze(-1) * first_order.unsqueeze(1)  # (C, D, M), larger is better
        lo, hi = chains.res_lo.gather(1, drop), chains.res_hi.gather(1, drop)
        reach = (grid.view(1, 1, -1) >= lo.unsqueeze(-1) - 1e-6) & (grid.view(1, 1, -1) <= hi.unsqueeze(-1) + 1e-6)
        benefit = benefit.masked_fill(~reach, -float("inf"))
        sep = max(1, int(round(P.candidate_separation / P.grid_step)))
        c, d = drop.shape
        site_idx = torch.zeros(c, d, P.candidates, dtype=torch.long, device=grad.device)
        valid = torch.zeros(c, d, P.candidates, dtype=torch.bool, device=grad.device)
        for t in range(P.candidates):
            best_val, best = benefit.max(dim=-1)  # (C, D)
            site_idx[:, :, t] = best
            valid[:, :, t] = torch.isfinite(best_val)
            suppress_around(benefit, best, sep)
        return grid[site_idx], lines[site_idx] * sign.view(c, d, 1, 1), valid

    def _reachable(self, sites: torch.Tensor, drop: torch.Tensor, slot: torch.Tensor) -> torch.Tensor:
        """(C, D, T): whether resonator ``drop[j, d]`` can be tuned to candidate site ``sites[j, slot[j, d], t]``
        (all True when ranges are unlimited)."""
        chains = self.chains
        c, d = drop.shape
        cand = sites.gather(1, slot.view(c, d, 1).expand(c, d, sites.shape[2]))  # (C, D, T)
        if chains.resonator_home is None:
            return torch.ones_like(cand, dtype=torch.bool)
        lo, hi = chains.res_lo.gather(1, drop).unsqueeze(-1), chains.res_hi.gather(1, drop).unsqueeze(-1)
        return (cand >= lo - 1e-6) & (cand <= hi + 1e-6)

    def _input_reach(self, grid: torch.Tensor) -> Optional[torch.Tensor]:
        """(N, M): whether each input oscillator can be tuned to each grid site (None: unlimited)."""
        chains = self.chains
        if chains.input_home is None:
            return None
        return (grid.view(1, -1) >= chains.in_lo.view(-1, 1) - 1e-6) & (
            grid.view(1, -1) <= chains.in_hi.view(-1, 1) + 1e-6
        )

    def _grid_lines(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Landing grid (M,) and the couplings of a +1 resonator at each grid site to every input (M, N);
        cached while the input frequencies cannot change."""
        P = self.params
        chains = self.chains
        if self._lines is not None and not chains.input_comb.requires_grad:
            return self._lines
        lo, hi = chains.comb_range
        grid = torch.arange(lo, hi + 1e-9, P.grid_step, dtype=torch.float32, device=self.device)
        old = self._lines[1] if self._lines is not None else None  # recomputed in place (rf-input)
        lines = site_couplings(chains.input_freqs_ghz(), chains.comb_to_ghz(grid), chains.params, out=old)
        self._lines = (grid, lines)
        return self._lines

    @torch.no_grad()
    def rewire(self, max_moves: int) -> int:
        P = self.params
        chains = self.chains
        limited = chains.resonator_home is not None  # tuning ranges: candidates per resonator, within reach
        if not limited:
            sites, site_lines = self.propose(self._gradients())
        x, y = self._sample(P.sample_size)
        p_in = self.target.inputs(x)  # (S, N)
        n_chains, k_res, s = chains.n_chains, chains.n_resonators, len(y)
        gain = self.target.gain().expand(n_chains)
        var_in = self.input_var if self.input_var is not None else p_in.var(dim=0)  # (N,): power variance
        n_drop = min(k_res, P.drop_candidates)
        coupling = chains.coupling()  # (C, K, N), device spreads included
        # drop candidates: the resonators whose voltage varies least over images (independent-input estimate)
        drop = (coupling.square() @ var_in).argsort(dim=1)[:, :n_drop]  # (C, D)
        picked = coupling.gather(1, drop.unsqueeze(-1).expand(-1, -1, coupling.shape[2]))  # (C, D, N)
        if limited:
            own_sites, own_lines, valid = self.propose_reachable(self._gradients(), drop)
            cand_lines, cand_name = own_lines, "cand_for"
        else:  # candidate voltages (S, C, 2, T), evaluated with the nominal damping and K_SD
            cand_lines, cand_name = site_lines, "cand"
        # (S, C, D): voltage of each drop candidate, as a score; and the candidates'
        contrib, cand = self._voltages(p_in, (picked, cand_lines), gain, ("contrib", cand_name))
        contrib = contrib.view(s, n_chains, n_drop)
        if n_drop == k_res:  # every resonator is a drop candidate: the scores are their sums (no product)
            logits = contrib.sum(dim=2) + self.target.bias()  # (S, C)
        else:
            logits = fused_weight.chain_product(coupling.sum(dim=1), p_in) * gain + self.target.bias()
        slot = (chains.signs < 0).long()[drop]  # (C, D): which candidate sites fit each resonator's chain sign
        open_ = torch.ones(n_chains, n_drop, P.candidates, dtype=torch.bool, device=self.device)  # still allowed
        block = (s, n_chains, n_drop, P.candidates)
        if limited:
            cand_for = cand.view(block)
            cand_exp = candidate_factors(cand_for, out=self._buffer("swap_exp", block, cand_for))
            open_ &= valid
        else:
            cand = cand.view(s, n_chains, 2, -1)
            cand_for = for_slots(cand, slot, out=self._buffer("cand_for", block, cand))  # (S, C, D, T)
            # the candidates' factors of the swap losses, of the (S, C, 2, T) candidates, then picked as cand_for
            cand_exp = for_slots(candidate_factors(cand), slot, out=self._buffer("swap_exp", block, cand))
        moved = 0
        for js, d, t in self._best_swaps(logits, y, contrib, cand_for, cand_exp, open_, max_moves):
            k = drop[js, d]
            chains.resonator_comb[js, k] = own_sites[js, d, t] if limited else sites[js, slot[js, d], t]
            self._reset_optimizer_state(chains.resonator_comb, (js, k))
            open_[js, d, :] = False  # a resonator jumps at most once per round
            if not limited:  # and a site takes one resonator
                jj, dd = (slot[js] == slot[js, d].unsqueeze(1)).nonzero(as_tuple=True)
                open_[js[jj], dd, t[jj]] = False
            moved += len(js)
        return moved

    def _best_swaps(
        self,
        logits: torch.Tensor,
        y: torch.Tensor,
        contrib: torch.Tensor,
        cand_for: torch.Tensor,
        cand_exp: torch.Tensor,
        open_: torch.Tensor,
        max_moves: int,
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Yield the swaps of every move of a round, (chains, resonator slots, sites), up to ``max_moves``: in
        every chain whose best open swap lowers the sampled loss enough, that one. The sample's scores
        ``logits`` (S, C) and the swapped resonators' voltages ``contrib`` (S, C, D) are updated after each
        move; the caller closes swaps in ``open_`` (C, D, T) between two moves. ``cand_exp`` is
        :func:`candidate_factors` of ``cand_for``."""
        P = self.params
        s, n_chains = logits.shape
        n_drop = contrib.shape[2]
        cand_own = torch.einsum(
            "sc,scdt->cdt",
            (y.view(-1, 1) == torch.arange(n_chains, device=self.device).view(1, -1)).to(cand_for.dtype),
            cand_for,
        )  # (C, D, T)
        work = self._buffer("swap_work", cand_for.shape, cand_for)
        flat_cand, flat_contrib = cand_for.view(s, -1), contrib.view(s, -1)
        for _ in range(max_moves):
            base = torch.nn.functional.cross_entropy(logits, y)
            # loss if chain j's resonator drop[j, d] jumps to candidate t: (C, D, T)
            loss = self.swap_losses(logits, y, contrib, cand_for, cand_own, work, cand_exp)
            improvement = (base - loss).masked_fill(~open_, -float("inf"))
            best = improvement.reshape(n_chains, -1).max(dim=1)
            # every chain whose best swap improves enough takes it (the chains' updates touch only their own
            # column of the scores, so they are made together)
            js = (~(best.values <= P.min_improvement)).nonzero().flatten()
            if len(js) == 0:
                return
            d, t = best.indices[js] // P.candidates, best.indices[js] % P.candidates
            # exact bookkeeping of the sample's scores, instead of recomputing them (whole columns picked)
            col = js * n_drop + d
            new = flat_cand.index_select(1, col * P.candidates + t)  # (S, J)
            logits.index_copy_(1, js, logits.index_select(1, js) + (new - flat_contrib.index_select(1, col)))
            flat_contrib.index_copy_(1, col, new)
            yield js, d, t

    @torch.no_grad()
    def rewire_inputs(self, fraction: float) -> int:
        """Let up to ``fraction`` of the input oscillators jump to better frequencies; return how many did."""
        P = self.params
        model, chains = self.model, self.chains
        x, y = self._sample(P.input_sample_size)
        p_in = physics.input_power(x, model.params)  # (S, N)
        # (N, S): the powers input by input (the products below give the same sums from it as from the
        # transpose of p_in, and sooner); sparse powers are summed from p_in itself
        p_t = None if self._sparse_powers(p_in) else self._buffer("sample_t", p_in.shape[::-1], p_in).copy_(p_in.t())
        w = chains.weight()  # (C, N)
        gain = model.gain.expand(w.shape[0])  # (C,)
        logits = fused_weight.chain_product(w, p_in) * gain + model.bias
        s, wt = len(y), w.t()  # wt (N, C)
        lo, hi = chains.comb_range
        grid = torch.arange(lo, hi + 1e-9, P.input_grid_step, dtype=torch.float32, device=self.device)
        curve = chains.response(chains.comb_to_ghz(grid))  # (C, M): weight vector of an input at each site
        predicted = self._predicted_changes(p_in, p_t, logits, y, wt, gain, curve)  # (N, M)
        reach = self._input_reach(grid)
        if reach is not None:  # limited tuning ranges: only sites within each input's reach
            predicted = predicted.masked_fill(~reach, float("inf"))
        n_max = int(fraction * chains.n_inputs)
        top_change, top_site = predicted.topk(P.input_sites, dim=1, largest=False)  # (N, T)
        site_ok = torch.isfinite(top_change) if reach is not None else None
        order = top_change[:, 0].argsort()[:n_max]
        order = order[top_change[order, 0] < 0]
        ce = torch.nn.functional.cross_entropy(logits, y, reduction="none")  # (S,): per-image loss
        steps = (curve.t()[top_site[order]] - wt[order].unsqueeze(1)) * gain  # (n, T, C): score change per µW
        site = input_jumps.greedy_jumps(
            logits,
            ce,
            y,
            p_in.index_select(1, order).t().contiguous() if p_t is None else p_t.index_select(0, order),  # (n, S)
            steps,
            P.input_min_improvement * s,
            site_ok=site_ok[order] if site_ok is not None else None,
            heartbeat=self.model.heartbeat,  # the app redraws, or stops the run, during a round
            max_window=P.heartbeat_every,
        )
        jumped = (site >= 0).nonzero().flatten()
        moved_inputs = order[jumped]
        chains.input_comb[moved_inputs] = grid[top_site[moved_inputs, site[jumped]]]
        self._reset_optimizer_state(chains.input_comb, moved_inputs)
        return len(moved_inputs)

    def _predicted_changes(
        self,
        p_in: torch.Tensor,
        p_t: Optional[torch.Tensor],
        logits: torch.Tensor,
        y: torch.Tensor,
        wt: torch.Tensor,
        gain: torch.Tensor,
        curve: torch.Tensor,
    ) -> torch.Tensor:
        """The Gauss-Newton model's change of the sampled loss (N, M) for moving input n to grid site m, whose
        weight vector is ``curve[:, m]`` (C, M), from the sample's powers ``p_in`` (S, N) (``p_t``, their transpose,
        or None where they are summed sparse), scores ``logits``
        (S, C) and labels ``y``, the inputs' present weight vectors ``wt`` (N, C) and the read-out gain (C,)."""
        prob = logits.softmax(dim=1)
        resid = prob - torch.nn.functional.one_hot(y, prob.shape[1]).to(prob.dtype)
        s, c = prob.shape
        # Gauss-Newton curvature of the loss in W[:, i]: E[P_i^2 (diag(p) - p p^T)] gain_c gain_d; H is symmetric,
        # so only its pairs c <= d are computed (P = C (C + 1) / 2), with diag(p) and p p^T in one product
        first, second, full = _class_pairs(c, prob.device)
        weights = torch.cat((prob, prob[:, first] * prob[:, second]), dim=1)  # (S, C + P)
        if p_t is None:
            grad, moments = _round_loops().input_moments(p_in, resid, weights)
        else:
            grad = p_t @ resid
            p2 = torch.mul(p_t, p_t, out=self._buffer("sample_sq", p_t.shape, p_t)).div_(s)  # (N, S)
            moments = p2 @ weights  # (N, C + P)
        grad = grad * gain / s  # (N, C): dL/dW[:, i]
        pairs = moments[:, c:].neg_()
        pairs[:, first == second] += moments[:, :c]
        pairs.mul_(gain[first] * gain[second])  # (N, P): H's entries c <= d
        hess = pairs[:, full].view(-1, c, c)  # (N, C, C)
        # predicted change for moving input n to site m, with d = curve_m - w_n:
        #   g_n.d + 1/2 d^T H_n d = g_n.curve_m - g_n.w_n + 1/2 (curve_m^T H_n curve_m - 2 w_n^T H_n curve_m
        #                                                       + w_n^T H_n w_n)
        h_w = torch.einsum("ncd,nd->nc", hess, wt)  # (N, C)
        twice = torch.where(first == second, 0.5, 1.0).to(pairs.dtype)  # off-diagonal pairs count twice, halved
        quad_half = (pairs * twice) @ (curve[first] * curve[second])  # 1/2 curve_m^T H_n curve_m, (N, M)
        return (grad - h_w) @ curve + quad_half + (0.5 * (h_w * wt).sum(1) - (grad * wt).sum(1)).unsqueeze(1)

    @staticmethod
    def swap_losses(
        logits: torch.Tensor,
        y: torch.Tensor,
        contrib: torch.Tensor,
        cand_for: torch.Tensor,
        cand_own: torch.Tensor,
        work: Optional[torch.Tensor] = None,
        cand_exp: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        """Mean cross-entropy on the sample for every swap (C, D, T): in chain j, resonator d's score
        contribution ``contrib[:, j, d]`` is replaced by candidate t's ``cand_for[:, j, d, t]``.

        ``cand_own[j, d, t]`` is the sum of ``cand_for[s, j, d, t]`` over the samples of class j, and
        ``cand_exp`` is :func:`candidate_factors` of ``cand_for`` (both constant over a round: a caller that
        evaluates many swaps computes them once; without ``cand_exp`` it is computed here). Only the terms that
        depend on the candidate touch the (S, C, D, T) block; ``work``, a tensor like ``cand_for`` (shape,
        dtype, device), holds it (writing a freshly allocated block of megabytes costs more than the arithmetic
        done on it).
        """
        s, c = logits.shape
        onehot = (y.view(-1, 1) == torch.arange(c, device=logits.device).view(1, -1)).to(logits.dtype)  # (S, C)
        lse_others = others_logsumexp(logits)  # (S, C): log-sum-exp over the classes other than j
        base_col = logits.unsqueeze(-1) - contrib  # (S, C, D): chain j's score without resonator d
        if cand_exp is None:
            cand_exp = candidate_factors(cand_for)
        if work is None:
            work = torch.empty_like(cand_for)
        # log(exp(lse_others) + exp(base + cand)) = lse_others + log(1 + exp(base - lse_others) exp(cand)): one
        # product and one log per element of the block (the exponentials of the candidates are the round's)
        shift = input_jumps.exp_((base_col - lse_others.unsqueeze(-1)).clamp_(max=EXP_CLAMP))  # (S, C, D)
        # (log(1 + e) rather than log1p: log1p has no vectorised CPU kernel in torch and is ~15x slower here;
        # the terms lost to rounding are below 1e-7 of a loss that is O(1))
        if input_jumps.compiled_applies(cand_exp, shift):  # one loop, without the (S, C, D, T) block
            logs = _round_loops().log_sums(cand_exp, shift)
        else:
            block = torch.addcmul(ONE, cand_exp, shift.unsqueeze(-1), out=work)  # (S, C, D, T)
            logs = input_jumps.log_(block).sum(0)
        lse_sum = logs + lse_others.sum(0).view(c, 1, 1)
        # minus the target's score: the new column for samples of class j, the unchanged logit otherwise
        logit_y = (logits * onehot).sum(1)  # (S,)
        others_y = logit_y.sum() - (onehot * logit_y.unsqueeze(1)).sum(0)  # (C,)
        own = (onehot.unsqueeze(-1) * base_col).sum(0)  # (C, D)
        picked = own.unsqueeze(-1) + cand_own + others_y.view(c, 1, 1)
        return (lse_sum - picked) / s

    def _buffer(self, name: str, shape: Sequence[int], like: torch.Tensor) -> torch.Tensor:
        """The run's tensor ``name`` of this shape and of ``like``'s dtype and device, (re)allocated when they
        change: a round writes its large temporaries into the same memory each time (touching a freshly
        allocated block of megabytes costs more than the arithmetic done on it)."""
        b = self._buffers.get(name)
        if b is None or b.shape != tuple(shape) or b.dtype != like.dtype or b.device != like.device:
            b = self._buffers[name] = torch.empty(tuple(shape), dtype=like.dtype, device=like.device)
        return b

    def _sample(self, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """A fresh sample of ``size`` training images (S, ...) (in a buffer of the run) and their labels (S,)."""
        idx = torch.randint(0, len(self.train_x), (size,), generator=self.generator).to(self.device)
        x = self._buffer(f"sample{size}", (size, *self.train_x.shape[1:]), self.train_x)
        return torch.index_select(self.train_x, 0, idx, out=x), torch.index_select(self.train_y, 0, idx)

    def _voltages(
        self, p_in: torch.Tensor, lines: Sequence[torch.Tensor], gain: torch.Tensor, names: Sequence[str]
    ) -> list[torch.Tensor]:
        """Scores (S, C, R_j / C) of the R_j resonators with couplings ``lines[j]`` (C, ..., N), chain by chain
        (the chain's read-out gain applied), for the powers ``p_in`` (S, N); in the run's buffers ``names``.
        Sparse powers (MNIST's dark pixels) are summed by round_loops.sample_products, the gain folded into the
        couplings, and dense ones by matrix products."""
        s, n, c = len(p_in), p_in.shape[1], len(gain)
        outs = [self._buffer(name, (s, t.numel() // n), p_in) for name, t in zip(names, lines)]
        if self._sparse_powers(p_in):
            scaled = [(t.reshape(c, -1, n) * gain.view(-1, 1, 1)).view(-1, n) for t in lines]
            _round_loops().sample_products(p_in, scaled, outs)
            return [o.view(s, c, -1) for o in outs]
        return [
            torch.mm(p_in, t.reshape(-1, n).t(), out=o).view(s, c, -1).mul_(gain.view(1, -1, 1))
            for t, o in zip(lines, outs)
        ]

    def _sparse_powers(self, p_in: torch.Tensor) -> bool:
        """Whether the rounds sum the sample's powers ``p_in`` (S, N) sparse (round_loops), decided on the first
        round's sample (the kind of a layer's inputs does not change during a run)."""
        if self._sparse is None:
            self._sparse = input_jumps.compiled_applies(p_in) and _round_loops().sparse_enough(p_in)
        return self._sparse

    def _reset_optimizer_state(self, param: torch.Tensor, index) -> None:
        """Fresh Adam moments for the jumped entries of ``param``."""
        state = self.optimizer.state.get(param) if self.optimizer is not None else None
        for key in ("exp_avg", "exp_avg_sq"):
            if state and key in state:
                state[key][index] = 0.0
