"""Gradual magnitude pruning (Zhu & Gupta 2017, "To prune, or not to prune").

Training starts dense. From step t0 (after a warm-up) the sparsity follows the cubic schedule

    s_t = s_f + (s_i - s_f) (1 - (t - t0) / (n dt))^3,    t = t0 + dt, t0 + 2 dt, ..., t0 + n dt,

with s_i = 0 and s_f the budget's sparsity (K of N weights kept per class row, or K*C of C*N overall). At each
of those steps the smallest-|w| active weights are pruned down to the current target; pruning ends at
t_end = t0 + n dt, well before the end of training, and the survivors keep training. Pruned positions never
come back (so ``rewiring_events`` stays 0).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from engine.core.enums import Budget
from engine.nets.baselines.masked import MaskedPerceptron, schedule_interval
from engine.nets.baselines.optim import BaselineParams


@dataclass(frozen=True)
class PruneParams(BaselineParams):
    """Gradual magnitude pruning. SGD by default: tuned on validation (benchmarks/tune_baselines.py), with Adam
    |w| does not track importance."""

    optimizer: str = "sgd"
    """'adam' or 'sgd'."""
    interval: int = 100
    """Nominal optimizer steps between two pruning rounds (dt)."""
    begin_fraction: float = 0.1
    """t0 as a fraction of the total steps (dense warm-up before pruning starts)."""
    end_fraction: float = 0.5
    """t_end as a fraction of the total steps (the budget is reached here; the rest fine-tunes)."""
    min_updates: int = 10
    """Short runs prune at least this often (see engine.nets.baselines.masked.schedule_interval)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 <= self.begin_fraction < self.end_fraction <= 1.0:
            raise ValueError(
                f"need 0 <= model_params.begin_fraction < model_params.end_fraction <= 1 "
                f"(got {self.begin_fraction}, {self.end_fraction})"
            )
        if self.interval < 1 or self.min_updates < 1:
            raise ValueError("model_params.interval and model_params.min_updates must be >= 1")


class GradualMagnitudePruning(MaskedPerceptron):
    """Dense start, cubic sparsity schedule, magnitude pruning every ``interval`` steps from t0 to t_end."""

    params_class = PruneParams
    params: PruneParams

    def __init__(
        self,
        n_inputs: int,
        n_classes: int,
        k: int,
        budget: Budget = Budget.PER_OUTPUT,
        *,
        params: PruneParams | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(n_inputs, n_classes, k, budget, params=params, generator=generator)
        self.interval = self.params.interval
        self.begin_fraction = self.params.begin_fraction
        self.end_fraction = self.params.end_fraction
        self.min_updates = self.params.min_updates
        #: step (1-based, as passed to after_step) -> active weights to keep per row of the rows view.
        self.schedule: dict[int, int] = {}

    def initial_mask(self) -> torch.Tensor:
        return torch.ones(self.n_classes, self.n_inputs)

    def setup_training(self, context) -> None:
        total_steps = context.total_steps
        t0 = min(int(round(self.begin_fraction * total_steps)), max(total_steps - 1, 0))
        t_end = max(t0 + 1, min(total_steps, int(round(self.end_fraction * total_steps))))
        span = t_end - t0
        dt = schedule_interval(self.interval, span, self.min_updates)
        n = max(1, round(span / dt))
        row_size = self.rows(self.mask).shape[1]  # N (per-output) or C*N (global)
        budget = self.per_row_budget
        self.schedule = {}
        for i in range(1, n + 1):
            step = t0 + round(i * span / n)
            keep = budget + (row_size - budget) * (1.0 - i / n) ** 3
            self.schedule[max(step, 1)] = int(round(keep)) if i < n else budget

    @torch.no_grad()
    def prune_to(self, keep_per_row: int, optimizer: torch.optim.Optimizer | None = None) -> None:
        """Keep the ``keep_per_row`` largest-|w| active weights in each row of the rows view."""
        scores = torch.where(self.active(), self.weight.abs(), torch.full_like(self.weight, -1.0))
        self.set_mask(self.budget_mask(scores, keep_per_row), optimizer)

    def update_topology(self, step: int) -> None:
        # after apply_mask: the masked weights and their optimizer state are zero after every step anyway (no
        # gradient reaches them), so pruning after it rather than before changes nothing
        keep = self.schedule.get(step)
        if keep is not None and keep < int(self.rows(self.mask).sum(1).max()):
            self.prune_to(keep, self.optimizer)
