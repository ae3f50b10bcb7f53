"""Structural plasticity of an RF chain layer: resonators that carry little signal jump to where they help most.

Between two rounds the loss gradient with respect to the effective weight, G = dL/dW (C, N), is accumulated
over the training batches. At a round (every ``interval_steps`` optimizer steps until ``end_fraction`` of
training), in every chain:

1. *Drop*: the resonators whose contribution to the chain voltage varies least over a sample of training
   images (std over images of sum_i P_i c_jki) are the candidates; a cosine-decayed fraction of them moves.
2. *Grow*: for every comb position u on a fine grid, the first-order change of the loss if a resonator of
   sign s landed there is s * sum_i G_ji K_SD L(x_i(u)), i.e. the gradient correlated with the resonator's
   own lineshape (its long tails included). Each moved resonator lands where that change is most negative
   for its own chain sign: the side of the resonance it lands on gives the needed weight sign.
3. Moved resonators get fresh optimizer state, like regrown weights in RigL.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch

from .config import PlasticityParams

if TYPE_CHECKING:  # pragma: no cover
    from .rf_perceptron import RFPerceptron

#: Landing grid resolution (comb units, i.e. input spacings).
GRID_STEP = 0.25
#: Training images used to estimate how much signal each resonator carries.
SALIENCY_SAMPLES = 1024
#: Minimum distance (comb units) between two resonators landing in the same chain at the same round.
LANDING_EXCLUSION = 1.0


class StructuralPlasticity:
    """Gradient-guided resonator jumps for an :class:`RFPerceptron` (see the module docstring)."""

    def __init__(self, model: "RFPerceptron", params: PlasticityParams) -> None:
        self.model = model
        self.params = params
        self.total_steps = 0
        self.end_step = 0
        self.optimizer: torch.optim.Optimizer | None = None
        self.grad_sum: torch.Tensor | None = None
        self.sample: torch.Tensor | None = None

    def setup(self, total_steps: int, optimizer: torch.optim.Optimizer, train_x: torch.Tensor) -> None:
        self.total_steps = total_steps
        self.end_step = int(self.params.end_fraction * total_steps)
        self.optimizer = optimizer
        idx = torch.randperm(len(train_x))[:SALIENCY_SAMPLES]
        self.sample = train_x[idx] * self.model.params.p_max_uw

    def accumulate(self, weight_grad: torch.Tensor) -> None:
        g = weight_grad.detach()
        self.grad_sum = g.clone() if self.grad_sum is None else self.grad_sum.add_(g)

    def fraction_at(self, step: int) -> float:
        """Fraction of each chain's resonators moved at a round at this step (cosine decay to 0)."""
        if step >= self.end_step or self.end_step <= 0:
            return 0.0
        return 0.5 * self.params.fraction * (1.0 + math.cos(math.pi * step / self.end_step))

    def maybe_rewire(self, step: int) -> int:
        """Run a rewiring round if one is due; return the number of resonators moved."""
        if self.params.interval_steps <= 0 or step % self.params.interval_steps or self.grad_sum is None:
            return 0
        n_move = int(round(self.fraction_at(step) * self.model.n_resonators))
        moved = self.rewire(n_move) if n_move > 0 else 0
        self.grad_sum = None
        return moved

    @torch.no_grad()
    def saliency(self, coupling: torch.Tensor) -> torch.Tensor:
        """Std over sample images of each resonator's voltage contribution (C, K)."""
        c, k, n = coupling.shape
        contrib = self.sample @ coupling.reshape(c * k, n).t()  # (S, C*K)
        return contrib.std(dim=0).reshape(c, k)

    @torch.no_grad()
    def landing_scores(self, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """First-order loss change per unit of a resonator of sign +1 landing at each grid position.

        Returns (grid positions (M,), scores (C, M)); a resonator of sign s wants the most negative s*score.
        """
        chains = self.model.chains
        lo, hi = chains.comb_range
        grid = torch.arange(lo, hi + 1e-9, GRID_STEP, dtype=torch.float32)
        # Response of a +1 resonator at each grid frequency to every input: reuse the chain physics with the
        # grid as resonances of a single pseudo-chain and the inputs as probes.
        from . import physics

        lines = physics.coupling_tensor(chains.input_freqs_ghz(), chains.comb_to_ghz(grid).view(1, -1),
                                        chains.params, signs=torch.ones(len(grid)))[0]  # (M, N)
        return grid, grad @ lines.t()

    @torch.no_grad()
    def rewire(self, n_move: int) -> int:
        chains = self.model.chains
        coupling = chains.coupling()
        sal = self.saliency(coupling)  # (C, K)
        drop = sal.argsort(dim=1)[:, :n_move]  # weakest resonators of each chain
        grid, scores = self.landing_scores(self.grad_sum)
        signs = chains.signs
        moved = 0
        for j in range(chains.n_chains):
            taken = []
            for k in drop[j].tolist():
                s = float(signs[k])
                gain = -s * scores[j]  # first-order loss decrease per unit landing there
                for u in taken:  # keep this round's landings apart
                    gain = torch.where((grid - u).abs() < LANDING_EXCLUSION, torch.full_like(gain, -1e30), gain)
                best = int(gain.argmax())
                if gain[best] <= 0:
                    continue
                u_new = float(grid[best])
                chains.resonator_comb[j, k] = u_new
                taken.append(u_new)
                self._reset_optimizer_state(j, k)
                moved += 1
        return moved

    def _reset_optimizer_state(self, j: int, k: int) -> None:
        if self.optimizer is None:
            return
        state = self.optimizer.state.get(self.model.chains.resonator_comb)
        if not state:
            return
        for key in ("exp_avg", "exp_avg_sq"):
            if key in state:
                state[key][j, k] = 0.0
