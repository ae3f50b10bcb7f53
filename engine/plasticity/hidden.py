"""Structural plasticity of the hidden layers of a multilayer RF network (engine.nets.multilayer.RFNetwork).

:class:`HiddenLayerPlasticity` extends the output layer's :class:`~engine.plasticity.rounds.StructuralPlasticity`:
sites are proposed from the layer's accumulated gradient in the same way, but a swap is judged through the
hidden chain's STNO and the rest of the network (its Jacobian), and the first layer's input oscillators jump
through the network too (``rf-input``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import torch

from engine.plasticity import fused_stno
from engine.plasticity.params import PlasticityParams
from engine.plasticity.round_terms import for_slots
from engine.plasticity.rounds import LayerTarget, StructuralPlasticity

if TYPE_CHECKING:  # pragma: no cover
    from engine.core.model_base import TrainingContext
    from engine.nets.multilayer import RFNetwork


class HiddenLayerPlasticity(StructuralPlasticity):
    """Structural plasticity of a hidden layer of an :class:`~engine.nets.multilayer.RFNetwork`.

    Candidate sites are proposed from the accumulated gradient dL/dW of the layer, as for the output layer.
    A swap in hidden chain j changes that chain's voltage, hence its STNO's power h_j, hence every class
    score, through the column J_j = d(scores)/d(h_j) of the rest of the network. On a fresh sample, every
    (resonator, site) pair of every chain gets its exact change of h_j (through the STNO's response), and the
    first-order change of the loss, sum_s dL/dh_j dh_j, picks each chain's most promising swap. That swap's
    sampled loss is then computed with the scores moved along J_j; J is exact when the next layer is the
    output layer (the scores are linear in its input powers), a linearisation (computed by autograd, frozen
    for the round) deeper in the network. Each chain's swap is applied when it lowers the sampled loss, then
    the sample's scores are recomputed exactly; if the true sampled loss went up, that pass's jumps are undone
    and the round ends.
    """

    model: "RFNetwork"

    def __init__(
        self,
        model: "RFNetwork",
        params: PlasticityParams,
        context: "TrainingContext",
        *,
        layer: int,
        target: LayerTarget,
        input_jumps: bool = False,
    ) -> None:
        super().__init__(model, params, context, target=target, input_jumps=input_jumps and layer == 0)
        self.layer = layer

    def _jacobian(self, h: torch.Tensor) -> torch.Tensor:
        """d(scores)/d(h) per sample (S, H, C) for this layer's STNO powers h (S, H)."""
        model = self.model
        nxt = self.layer + 1
        if nxt == model.n_layers - 1:  # the output layer: scores = gain (h W^T) + b, the same J for all
            w = model.layers[nxt].weight()  # (C, H)
            return (model.gain * w).t().unsqueeze(0).expand(h.shape[0], -1, -1)
        with torch.enable_grad():
            h_req = h.detach().requires_grad_(True)
            scores = model.scores_from(nxt, h_req)
            cols = [
                torch.autograd.grad(scores[:, c].sum(), h_req, retain_graph=c < scores.shape[1] - 1)[0]
                for c in range(scores.shape[1])
            ]
        return torch.stack(cols, dim=-1)

    @torch.no_grad()
    def rewire(self, max_moves: int) -> int:
        P = self.params
        model, chains, layer = self.model, self.chains, self.layer
        sites, site_lines = self.propose(self._gradients())
        idx = torch.randint(0, len(self.train_x), (P.hidden_sample_size,), generator=self.generator).to(self.device)
        x = torch.index_select(self.train_x, 0, idx)
        y = torch.index_select(self.train_y, 0, idx)
        p_in = self.target.inputs(x)  # (S, N_l)
        n_chains, k_res, n_cand = chains.n_chains, chains.n_resonators, P.candidates
        s = len(y)
        coupling = chains.coupling()  # (H, K, N_l)
        v = p_in @ coupling.sum(dim=1).t()  # (S, H) chain voltages
        h = model.activation(layer, v)
        jac = self._jacobian(h)  # (S, H, C)
        scores = model.scores_from(layer + 1, h)
        n_drop = min(k_res, P.hidden_drop_candidates)
        drop = (coupling.square() @ p_in.var(dim=0)).argsort(dim=1)[:, :n_drop]  # (H, D): least varying
        picked = coupling.gather(1, drop.unsqueeze(-1).expand(-1, -1, coupling.shape[2]))  # (H, D, N_l)
        contrib = (p_in @ picked.reshape(n_chains * n_drop, -1).t()).view(s, n_chains, n_drop)  # (S, H, D) V
        slot = (chains.signs < 0).long()[drop]  # (H, D)
        cand = (p_in @ site_lines.reshape(-1, p_in.shape[1]).t()).view(s, n_chains, 2, n_cand)
        cand_for = for_slots(cand, slot)  # (S, H, D, T)
        open_ = self._reachable(sites, drop, slot)  # (H, D, T): limited tuning ranges allow fewer sites
        # each swap's exact change of the STNO power (S, H, D, T); after a pass, only the moved chains' change
        dh = self._power_changes(v, h, contrib, cand_for, out=torch.empty_like(cand_for))
        moved = 0
        for _ in range(max_moves):
            base = torch.nn.functional.cross_entropy(scores, y)
            # first order: dLoss/dh_j per sample, times each swap's exact change of the STNO power
            resid = scores.softmax(dim=1)
            resid[torch.arange(s, device=self.device), y] -= 1.0
            dl_dh = torch.einsum("shc,sc->sh", jac, resid) / s  # (S, H)
            guess = torch.einsum("sh,shdt->hdt", dl_dh, dh).masked_fill(~open_, float("inf"))
            pick = guess.reshape(n_chains, -1).argmin(dim=1)  # (H,): each chain's most promising swap
            # the exact sampled loss of that swap, chain by chain: (S, H, C)
            dh_pick = dh.reshape(s, n_chains, -1).gather(2, pick.view(1, -1, 1).expand(s, -1, 1)).squeeze(2)
            trial = scores.unsqueeze(1) + dh_pick.unsqueeze(-1) * jac
            ce = trial.logsumexp(-1) - trial.gather(-1, y.view(s, 1, 1).expand(s, n_chains, 1)).squeeze(-1)
            loss = torch.full((n_chains, n_drop * n_cand), float("inf"), device=self.device)
            loss.scatter_(1, pick.view(-1, 1), ce.mean(0).view(-1, 1))
            loss = loss.view(n_chains, n_drop, n_cand)
            improvement = (base - loss).masked_fill(~open_, -float("inf"))
            best = improvement.reshape(n_chains, -1).max(dim=1)
            # every chain whose best swap improves enough takes it, all together (each touches its own column)
            js = (best.values > P.min_improvement).nonzero().flatten()
            if len(js) == 0:
                break
            d, t = best.indices[js] // n_cand, best.indices[js] % n_cand
            k = drop[js, d]
            old = chains.resonator_comb[js, k].clone()
            chains.resonator_comb[js, k] = sites[js, slot[js, d], t]
            v[:, js] += cand_for[:, js, d, t] - contrib[:, js, d]
            contrib[:, js, d] = cand_for[:, js, d, t]
            open_[js, d, :] = False
            jj, dd = (slot[js] == slot[js, d].unsqueeze(1)).nonzero(as_tuple=True)
            open_[js[jj], dd, t[jj]] = False
            h = model.activation(layer, v)
            new_scores = model.scores_from(layer + 1, h)
            if float(torch.nn.functional.cross_entropy(new_scores, y)) >= float(base):
                chains.resonator_comb[js, k] = old  # the jumps together made the sample worse: take them back
                break
            scores = new_scores
            self._reset_optimizer_state(chains.resonator_comb, (js, k))
            moved += len(js)
            self._power_changes(v, h, contrib, cand_for, js, out=dh)
        return moved

    def _power_changes(
        self,
        v: torch.Tensor,
        h: torch.Tensor,
        contrib: torch.Tensor,
        cand_for: torch.Tensor,
        js: Optional[torch.Tensor] = None,
        *,
        out: torch.Tensor,
    ) -> torch.Tensor:
        """Write into ``out`` the change of each chain's STNO power (S, H, D, T) when resonator d's voltage
        ``contrib[:, j, d]`` is replaced by candidate t's ``cand_for[:, j, d, t]``, for the chains ``js`` only
        when given (the others' voltages have not changed). Elementwise, so the same values for any subset:
        one numba loop where it applies (engine.plasticity.fused_stno, the same bits), else torch."""
        model = self.model
        if fused_stno.available() and all(t.device.type == "cpu" and t.dtype == torch.float32 for t in (v, out)):
            bias_ua = model.bias_current_ua(self.layer).detach()
            return fused_stno.power_changes(
                v, contrib, cand_for, h, bias_ua, model.g_m(self.layer), model.stno, out, js
            )
        if js is not None:
            v, h, contrib, cand_for = v[:, js], h[:, js], contrib[:, js], cand_for[:, js]
        v_new = (v.unsqueeze(-1) - contrib).unsqueeze(-1) + cand_for  # (S, H, D, T)
        changes = model.activation(self.layer, v_new, js) - h.view(*h.shape, 1, 1)
        if js is None:
            return out.copy_(changes)
        out[:, js] = changes
        return out

    @torch.no_grad()
    def rewire_inputs(self, fraction: float) -> int:
        """Input-oscillator jumps of the first layer of a multilayer network (``rf-input``).

        Moving input i to grid site m changes every hidden voltage by P_i (w(u_m) - W[:, i]). The first-order
        change of the loss, G_i . (w(u_m) - W[:, i]) with G_i = sum over the sample of P_i dL/dV, ranks the
        inputs and their best sites; each candidate input is then checked exactly, its few best sites
        evaluated through the STNOs and the rest of the network on the images where it emits, and it jumps to
        the best one if that lowers the sampled loss (the sample's voltages and losses are updated before the
        next input is checked)."""
        P = self.params
        model, chains = self.model, self.chains
        idx = torch.randint(0, len(self.train_x), (P.hidden_sample_size,), generator=self.generator).to(self.device)
        p_in = self.target.inputs(torch.index_select(self.train_x, 0, idx))  # (S, N)
        y = torch.index_select(self.train_y, 0, idx)
        s = len(y)
        w = chains.weight()  # (H, N)
        rest = [layer.weight() for layer in model.layers[1:]]
        v = p_in @ w.t()  # (S, H)

        def losses(volts: torch.Tensor) -> torch.Tensor:
            scores = model.scores_from(1, model.activation(0, volts), rest)
            return torch.nn.functional.cross_entropy(scores, y_rows, reduction="none")

        with torch.enable_grad():
            v_req = v.clone().requires_grad_(True)
            scores = model.scores_from(1, model.activation(0, v_req), rest)
            (delta,) = torch.autograd.grad(torch.nn.functional.cross_entropy(scores, y, reduction="sum"), v_req)
        g = p_in.t() @ delta  # (N, H): dLoss/dW[:, i]
        lo, hi = chains.comb_range
        grid = torch.arange(lo, hi + 1e-9, P.input_grid_step, dtype=torch.float32, device=self.device)
        curve = chains.response(chains.comb_to_ghz(grid))  # (H, M)
        predicted = g @ curve - (g * w.t()).sum(1, keepdim=True)  # (N, M)
        reach = self._input_reach(grid)
        if reach is not None:  # limited tuning ranges: only sites within each input's reach
            predicted = predicted.masked_fill(~reach, float("inf"))
        n_max = int(fraction * P.network_input_fraction / max(P.input_fraction, 1e-9) * chains.n_inputs)
        top_change, top_site = predicted.topk(P.input_sites, dim=1, largest=False)
        site_ok = torch.isfinite(top_change) if reach is not None else None
        order = top_change[:, 0].argsort()[:n_max]
        order = order[top_change[order, 0] < 0]
        y_rows = y
        ce = losses(v)
        p_rows = p_in.t().contiguous()  # (N, S)
        n_sites, n_hidden = top_site.shape[1], v.shape[1]
        moved = 0
        for pos, i in enumerate(order.tolist()):
            if pos % P.heartbeat_every == P.heartbeat_every - 1:
                model.heartbeat()
            rows = (p_rows[i] > 0).nonzero().flatten()
            if len(rows) == 0:
                continue
            steps = curve.t()[top_site[i]] - w[:, i]  # (T, H)
            trial = v[rows].unsqueeze(0) + p_rows[i][rows].view(1, -1, 1) * steps.unsqueeze(1)  # (T, R, H)
            y_rows = y[rows].repeat(n_sites)
            new_ce = losses(trial.reshape(-1, n_hidden)).view(n_sites, -1)
            change = (new_ce - ce[rows]).sum(1)
            if site_ok is not None:
                change = change.masked_fill(~site_ok[i], float("inf"))
            best_change, t_min = change.min(0)  # the first smallest, as argmin
            t = int(t_min)
            if float(best_change) < -P.input_min_improvement * s:
                v[rows] = trial[t]
                ce[rows] = new_ce[t]
                site = int(top_site[i, t])
                w[:, i] = curve[:, site]
                chains.input_comb[i] = grid[site]
                self._reset_optimizer_state(chains.input_comb, i)
                moved += 1
        return moved
