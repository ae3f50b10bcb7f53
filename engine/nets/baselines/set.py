"""SET, Sparse Evolutionary Training (Mocanu et al. 2018).

Starts from a uniformly random mask with the budget. After each epoch (except the last, as in the reference
implementation, so the evaluated network has no untrained connections), the fraction zeta = 0.3 of the
smallest positive weights and of the smallest-magnitude negative weights is dropped, and as many connections
are regrown at uniformly random positions among those inactive before the drop. Regrown weights start at 0
with zeroed optimizer state (the shared rule of the masked loop). With the per-output budget the drop counts
are taken, and the regrowth happens, within every class row; with the global budget over the whole matrix.
Counts zeta * n are rounded stochastically (unbiased) so small budgets still evolve.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from engine.core.enums import Budget
from engine.nets.baselines.masked import MaskedPerceptron, select_largest, select_smallest, stochastic_round
from engine.nets.baselines.optim import BaselineParams


@dataclass(frozen=True)
class SETParams(BaselineParams):
    """SET. SGD by default: tuned on validation (benchmarks/tune_baselines.py), SGD + momentum beats Adam by
    about 10 points."""

    optimizer: str = "sgd"
    """'adam' or 'sgd'."""
    zeta: float = 0.3
    """Fraction of the positive and of the negative weights replaced after each epoch."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 <= self.zeta <= 1.0:
            raise ValueError(f"model_params.zeta must be in [0, 1] (got {self.zeta})")


class SET(MaskedPerceptron):
    """Random sparse start; after each epoch, drop the weakest positive/negative weights and regrow randomly."""

    params_class = SETParams
    params: SETParams

    def __init__(
        self,
        n_inputs: int,
        n_classes: int,
        k: int,
        budget: Budget = Budget.PER_OUTPUT,
        *,
        params: SETParams | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(n_inputs, n_classes, k, budget, params=params, generator=generator)
        self.zeta = self.params.zeta
        self.total_epochs: int | None = None

    def setup_training(self, context) -> None:
        self.total_epochs = math.ceil(context.total_steps / max(context.steps_per_epoch, 1))

    def after_epoch(self, epoch: int) -> None:
        if self.total_epochs is None or epoch < self.total_epochs:
            self.evolve(self.optimizer)

    @torch.no_grad()
    def evolve(self, optimizer: torch.optim.Optimizer | None = None) -> int:
        """One SET round; returns the number of connections regrown."""
        active = self.rows(self.active())
        w = self.rows(self.weight)
        inf = torch.tensor(float("inf"), device=w.device)
        positive = active & (w >= 0)
        negative = active & (w < 0)
        n_pos = stochastic_round(self.zeta * positive.sum(1).to(torch.float32), self.generator)
        n_neg = stochastic_round(self.zeta * negative.sum(1).to(torch.float32), self.generator)
        drop = select_smallest(torch.where(positive, w, inf), n_pos) | select_smallest(
            torch.where(negative, -w, inf), n_neg
        )
        counts = torch.minimum(drop.sum(1), (~active).sum(1))
        if int(counts.sum()) == 0:
            return 0
        grow = select_largest(
            torch.where(active, -inf, torch.rand(w.shape, generator=self.generator).to(w.device)), counts
        )
        # If fewer inactive positions than drops (budget close to dense), keep the surplus dropped ones.
        deficit = drop.sum(1) - counts
        if int(deficit.sum()) > 0:
            drop &= ~select_largest(torch.where(drop, w.abs(), -inf), deficit)
        return self.set_mask(self.unrows((active & ~drop) | grow), optimizer)
