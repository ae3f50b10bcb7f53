"""RigL, "Rigging the Lottery" (Evci et al. 2020); with the per-output budget it is constant fan-in RigL (SRigL).

Starts from a uniformly random mask with the budget. Every dT = 100 steps until T_end = 75 % of training, a
fraction f_t = (alpha/2)(1 + cos(pi t / T_end)), alpha = 0.3, of the active connections is updated: the
smallest-|w| active weights are dropped, and as many connections are grown where the dense gradient
|X^T (softmax(z) - onehot(y)) / B| of the current batch is largest, among the positions that were inactive
before the drop (never the just-dropped ones). Grown weights start at 0 with zeroed optimizer state
(Adam moments or SGD momentum).

The per-row update count f_t * K is rounded stochastically (unbiased), so small budgets (K = 1, 2) still get
rewired at the expected rate; for K = 10 at the start it is exactly 3.

The dense gradient is computed explicitly in ``after_backward`` (one extra 100x784x10 product every dT steps,
with the same pre-step weights the loss was computed with); the mask update itself happens in ``after_step``,
on the weights after that step's optimizer update.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from engine.core.enums import Budget
from engine.nets.baselines.masked import (
    MaskedPerceptron,
    cosine_fraction,
    schedule_interval,
    select_largest,
    select_smallest,
    stochastic_round,
)
from engine.nets.baselines.optim import BaselineParams


@dataclass(frozen=True)
class RigLParams(BaselineParams):
    """RigL's schedule (Adam by default)."""

    interval: int = 100
    """Nominal optimizer steps between two mask updates (dT)."""
    alpha: float = 0.3
    """Initial fraction of the active connections updated at a round, cosine-decayed to 0 at T_end."""
    end_fraction: float = 0.75
    """T_end as a fraction of the total steps."""
    min_updates: int = 10
    """Short runs update at least this often (see engine.nets.baselines.masked.schedule_interval)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 <= self.alpha <= 1.0 or not 0.0 <= self.end_fraction <= 1.0:
            raise ValueError(
                f"model_params.alpha and model_params.end_fraction must be in [0, 1] "
                f"(got {self.alpha}, {self.end_fraction})"
            )
        if self.interval < 1 or self.min_updates < 1:
            raise ValueError("model_params.interval and model_params.min_updates must be >= 1")


class RigL(MaskedPerceptron):
    """Random sparse start; periodic drop-by-magnitude / grow-by-gradient mask updates."""

    params_class = RigLParams
    params: RigLParams

    def __init__(
        self,
        n_inputs: int,
        n_classes: int,
        k: int,
        budget: Budget = Budget.PER_OUTPUT,
        *,
        params: RigLParams | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(n_inputs, n_classes, k, budget, params=params, generator=generator)
        self.interval = self.params.interval
        self.alpha = self.params.alpha
        self.end_fraction = self.params.end_fraction
        self.min_updates = self.params.min_updates
        self.t_end = 0
        self.dt = self.interval
        self._dense_grad: torch.Tensor | None = None

    def setup_training(self, context) -> None:
        self.t_end = int(round(self.end_fraction * context.total_steps))
        self.dt = schedule_interval(self.interval, self.t_end, self.min_updates)
        self._dense_grad = None

    def is_update_step(self, t: int) -> bool:
        """Whether the mask is updated after optimizer step ``t`` (1-based)."""
        return 0 < t < self.t_end and t % self.dt == 0

    def after_backward(self, step: int, x: torch.Tensor, y: torch.Tensor) -> None:
        # ``step`` counts the steps already taken; this is optimizer step step + 1.
        if self.is_update_step(step + 1):
            self._dense_grad = self.dense_gradient(x, y)

    def teardown_training(self) -> None:
        self._dense_grad = None

    def update_topology(self, step: int) -> None:
        if self._dense_grad is not None:
            grad, self._dense_grad = self._dense_grad, None
            self.update_mask(step, grad, self.optimizer)

    @torch.no_grad()
    def update_mask(self, t: int, dense_grad: torch.Tensor, optimizer: torch.optim.Optimizer | None = None) -> int:
        """One RigL round at step ``t`` with the dense gradient ``dense_grad`` (C, N); returns the number grown."""
        fraction = cosine_fraction(self.alpha, t, self.t_end)
        active = self.rows(self.active())
        n_rows, row_size = active.shape
        n_active = active.sum(1)
        counts = stochastic_round(fraction * n_active.to(torch.float32), self.generator)
        counts = torch.minimum(counts, torch.minimum(n_active, row_size - n_active))
        if int(counts.sum()) == 0:
            return 0
        inf = torch.tensor(float("inf"), device=self.weight.device)
        magnitude = self.rows(self.weight.abs())
        drop = select_smallest(torch.where(active, magnitude, inf), counts)
        grow_scores = torch.where(active, -inf, self.rows(dense_grad.abs()))  # inactive before the drop
        grow = select_largest(grow_scores, counts)
        return self.set_mask(self.unrows((active & ~drop) | grow), optimizer)
