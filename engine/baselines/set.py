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

import torch

from .masked import MaskedPerceptron, select_largest, select_smallest, stochastic_round


class SET(MaskedPerceptron):
    """Random sparse start; after each epoch, drop the weakest positive/negative weights and regrow randomly."""

    #: Tuned on validation (benchmarks/tune_baselines.py): SGD + momentum beats Adam by about 10 points.
    optimizer: str = "sgd"

    #: Fraction of the positive and of the negative weights replaced after each epoch.
    zeta: float = 0.3

    def __init__(self, n_inputs: int, n_classes: int, k: int, budget: str = "per-output", *,
                 optimizer: str | None = None,
                 zeta: float | None = None) -> None:
        super().__init__(n_inputs, n_classes, k, budget, optimizer=optimizer)
        if zeta is not None:
            self.zeta = float(zeta)
        self.total_epochs: int | None = None

    def setup_training(self, total_steps: int, steps_per_epoch: int, optimizer: torch.optim.Optimizer,
                       train_x: torch.Tensor) -> None:
        self.total_epochs = math.ceil(total_steps / max(steps_per_epoch, 1))

    def after_epoch(self, epoch: int, optimizer: torch.optim.Optimizer) -> None:
        if self.total_epochs is None or epoch < self.total_epochs:
            self.evolve(optimizer)

    @torch.no_grad()
    def evolve(self, optimizer: torch.optim.Optimizer | None = None) -> int:
        """One SET round; returns the number of connections regrown."""
        active = self.rows(self.active())
        w = self.rows(self.weight)
        inf = torch.tensor(float("inf"))
        positive = active & (w >= 0)
        negative = active & (w < 0)
        n_pos = stochastic_round(self.zeta * positive.sum(1).to(torch.float32))
        n_neg = stochastic_round(self.zeta * negative.sum(1).to(torch.float32))
        drop = select_smallest(torch.where(positive, w, inf), n_pos) \
            | select_smallest(torch.where(negative, -w, inf), n_neg)
        counts = torch.minimum(drop.sum(1), (~active).sum(1))
        if int(counts.sum()) == 0:
            return 0
        grow = select_largest(torch.where(active, -inf, torch.rand(w.shape)), counts)
        # If fewer inactive positions than drops (budget close to dense), keep the surplus dropped ones.
        deficit = drop.sum(1) - counts
        if int(deficit.sum()) > 0:
            drop &= ~select_largest(torch.where(drop, w.abs(), -inf), deficit)
        return self.set_mask(self.unrows((active & ~drop) | grow), optimizer)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", zeta={self.zeta}"
