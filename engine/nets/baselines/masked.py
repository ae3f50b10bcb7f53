"""The masked linear perceptron shared by every sparse baseline, and the budget-aware selection helpers.

The model holds a weight ``W`` (C, N), a dense bias ``b`` (C,) and a 0/1 mask ``M`` (C, N); the effective
weight is ``W * M`` and the scores are ``x (W*M)^T + b``, so masked positions get no gradient. After every
optimizer step the mask is re-applied to ``W`` and the optimizer's per-weight state (Adam moments, SGD
momentum) is zeroed at masked positions, so pruned weights cannot creep back. Topology changes go through
:meth:`MaskedPerceptron.set_mask`, which starts newly grown positions at weight 0 with zeroed optimizer state
and counts them in ``rewiring_events``.

Budget shapes (``budget``): ``'per-output'`` keeps exactly K active weights in every class row (a chain has K
resonators); ``'global'`` keeps K*C active weights anywhere in the matrix. All selections work on a "rows" view
of a (C, N) tensor: the tensor itself for per-output, one row of C*N entries for global, so a single
vectorised code path serves both.

All randomness comes from the model's own generator (seeded from the run's seed), so runs are reproducible
per seed.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from engine.core.enums import Budget, values
from engine.core.model_base import PerceptronModel
from engine.nets.baselines.dense import linear_parameters
from engine.nets.baselines.optim import BaselineParams, make_optimizer

#: Budget shapes (engine.core.enums.Budget), as in :data:`engine.config.run_config.BUDGETS`.
BUDGET_SHAPES = values(Budget)


# --- selection helpers (vectorised over rows) ------------------------------------------------------------
def ascending_ranks(scores: torch.Tensor) -> torch.Tensor:
    """The rank (0 = smallest) of every entry within its row; ties are broken by position (stable)."""
    order = scores.argsort(dim=1, stable=True)
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(scores.shape[1], device=scores.device).expand_as(order).contiguous())
    return ranks


def select_smallest(scores: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """Boolean mask of the ``counts[r]`` smallest entries of every row ``r`` of ``scores`` (R, M).

    Give ineligible entries ``+inf`` and keep ``counts[r]`` at most the number of eligible entries in row r.
    """
    return ascending_ranks(scores) < counts.to(torch.long).unsqueeze(1)


def select_largest(scores: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """Boolean mask of the ``counts[r]`` largest entries of every row (give ineligible entries ``-inf``)."""
    return select_smallest(-scores, counts)


def topk_mask(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Boolean mask with exactly the ``k`` largest entries of every row of ``scores`` (R, M) set."""
    idx = scores.topk(k, dim=1, sorted=False).indices
    return torch.zeros_like(scores, dtype=torch.bool).scatter_(1, idx, True)


def stochastic_round(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Round to an integer, up with probability frac(x) (unbiased; exact for integers)."""
    return torch.floor(x + torch.rand(x.shape, dtype=x.dtype, generator=generator).to(x.device)).to(torch.long)


def cosine_fraction(alpha: float, t: int, t_end: int) -> float:
    """RigL's update fraction f_t = (alpha / 2) (1 + cos(pi t / T_end))."""
    return 0.5 * alpha * (1.0 + math.cos(math.pi * min(t, t_end) / max(t_end, 1)))


def schedule_interval(interval: int, span: int, min_updates: int) -> int:
    """The update interval: ``interval`` steps, shortened so that a short run still gets ``min_updates`` updates.

    For full MNIST at 10 epochs (6000 steps) the nominal interval is used unchanged; only runs whose schedule
    span is shorter than ``interval * min_updates`` steps (e.g. the embedded mnist-mini set) update more often.
    """
    return max(1, min(interval, span // max(min_updates, 1)))


# --- the model -----------------------------------------------------------------------------------------------
class MaskedPerceptron(PerceptronModel):
    """A single linear layer whose weight is multiplied by a fixed-shape 0/1 mask.

    Subclasses choose the initial mask (:meth:`initial_mask`) and change it through :meth:`set_mask`; their
    settings are a params dataclass (``params_class``), the tuned defaults.
    """

    params_class: type = BaselineParams
    #: The 0/1 mask, a buffer made by register_buffer in __init__ (declared for the type checker).
    mask: torch.Tensor

    def __init__(
        self,
        n_inputs: int,
        n_classes: int,
        k: int,
        budget: Budget = Budget.PER_OUTPUT,
        *,
        params: BaselineParams | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(n_inputs, n_classes, generator)
        self.params = params if params is not None else self.params_class()
        if budget not in BUDGET_SHAPES:
            raise ValueError(f"budget must be one of {BUDGET_SHAPES} (got {budget!r})")
        if not 1 <= k <= n_inputs:
            raise ValueError(f"k (weights per output) must be between 1 and {n_inputs} (got {k})")
        self.k = int(k)
        self.budget = Budget(budget)
        self.weight, self.bias = linear_parameters(n_inputs, n_classes, self.generator)  # as nn.Linear
        self.register_buffer("mask", torch.ones(n_classes, n_inputs))
        with torch.no_grad():
            self.mask.copy_(self.initial_mask().to(self.mask.dtype))
            self.weight.mul_(self.mask)

    def make_optimizer(self, lr: float) -> torch.optim.Optimizer:
        return make_optimizer(self.parameters(), self.params.optimizer, lr, self.params.momentum)

    # --- budget ---------------------------------------------------------------------------------------------
    @property
    def per_row_budget(self) -> int:
        """Active weights per row of the rows view: K (per-output) or K*C (global)."""
        return self.k if self.budget == Budget.PER_OUTPUT else self.k * self.n_classes

    def rows(self, t: torch.Tensor) -> torch.Tensor:
        """The rows view of a (C, N) tensor: itself (per-output) or a single row (global)."""
        return t if self.budget == Budget.PER_OUTPUT else t.reshape(1, -1)

    def unrows(self, t: torch.Tensor) -> torch.Tensor:
        """Back from the rows view to (C, N)."""
        return t.reshape(self.n_classes, self.n_inputs)

    def budget_mask(self, scores: torch.Tensor, per_row: int | None = None) -> torch.Tensor:
        """Boolean (C, N) mask of the largest ``scores``: ``per_row`` (default: the budget) in every row of the
        rows view, i.e. per class row (per-output) or over the whole matrix (global)."""
        k = self.per_row_budget if per_row is None else per_row
        return self.unrows(topk_mask(self.rows(scores), k))

    def random_budget_mask(self) -> torch.Tensor:
        """A uniformly random mask with exactly the budget (the model's generator)."""
        return self.budget_mask(torch.rand(self.n_classes, self.n_inputs, generator=self.generator))

    def initial_mask(self) -> torch.Tensor:
        """The mask at initialisation (default: uniformly random with the budget)."""
        return self.random_budget_mask()

    # --- forward and views ------------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.mask, self.bias)

    def effective_weight(self) -> torch.Tensor:
        return self.weight * self.mask

    def synapse_count(self) -> int:
        return int(self.mask.sum())

    def active(self) -> torch.Tensor:
        """Boolean (C, N) mask of the active positions."""
        return self.mask > 0

    @torch.no_grad()
    def dense_gradient(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """d(mean cross-entropy)/d(W*M) on a batch, at every position (masked ones included): X^T(p - onehot)/B."""
        p = torch.softmax(F.linear(x, self.weight * self.mask, self.bias), dim=1)
        p[torch.arange(len(y), device=y.device), y] -= 1.0
        return p.t().mm(x).div_(len(y))

    # --- masking the optimizer ----------------------------------------------------------------------------------
    @torch.no_grad()
    def apply_mask(self, optimizer: torch.optim.Optimizer | None = None) -> None:
        """Zero the weight and its optimizer state (Adam moments, SGD momentum) at masked positions."""
        self.weight.mul_(self.mask)
        if optimizer is not None:
            for value in optimizer.state.get(self.weight, {}).values():
                if torch.is_tensor(value) and value.shape == self.weight.shape:
                    value.mul_(self.mask)

    @torch.no_grad()
    def set_mask(self, new_mask: torch.Tensor, optimizer: torch.optim.Optimizer | None = None) -> int:
        """Switch to ``new_mask`` (bool or 0/1, (C, N)); grown positions start at 0 with fresh optimizer state.

        Returns the number of positions grown (added to ``rewiring_events``).
        """
        new = new_mask.to(torch.bool)
        old = self.active()
        changed = new ^ old  # dropped or grown: both get zero weight and zero moments
        grown = int((new & ~old).sum())
        keep = (~changed).to(self.weight.dtype)
        self.weight.mul_(keep)
        if optimizer is not None:
            for value in optimizer.state.get(self.weight, {}).values():
                if torch.is_tensor(value) and value.shape == self.weight.shape:
                    value.mul_(keep)
        self.mask.copy_(new.to(self.mask.dtype))
        self.apply_mask(optimizer)
        self.rewiring_events += grown
        return grown

    # --- training-loop hooks ---------------------------------------------------------------------------------
    def after_step(self, step: int) -> None:
        self.apply_mask(self.optimizer)
        self.update_topology(step)

    def update_topology(self, step: int) -> None:
        """The mask changes due after optimizer step ``step`` (none here; RigL and pruning override it). Runs
        after :meth:`apply_mask`, which a batch of runs (engine.training.run_batches) does for all at once."""

    def extra_repr(self) -> str:
        return (
            f"n_inputs={self.n_inputs}, n_classes={self.n_classes}, k={self.k}, budget={self.budget.value!r}, "
            f"params={self.params!r}"
        )

    @classmethod
    def from_state(
        cls,
        weight,
        mask,
        bias,
        *,
        k: int | None = None,
        budget: Budget = Budget.PER_OUTPUT,
        params: BaselineParams | None = None,
    ) -> "MaskedPerceptron":
        """A masked perceptron in eval mode with exactly this weight (C, N), 0/1 mask (C, N) and bias (C,).

        The stored weight is ``weight * mask``. ``k`` defaults to the largest number of active weights in a
        class row (at least 1). Consumes no random state: the throw-away initial mask and weights come from the
        model's private generator, and the global RNG is forked around the construction."""
        weight = torch.as_tensor(weight, dtype=torch.float32)
        mask = torch.as_tensor(mask).to(torch.float32)
        bias = torch.as_tensor(bias, dtype=torch.float32)
        n_classes, n_inputs = weight.shape
        if mask.shape != weight.shape or bias.shape != (n_classes,):
            raise ValueError(
                f"mask must have the weight's shape {tuple(weight.shape)} and bias {n_classes} "
                f"entries (got {tuple(mask.shape)} and {tuple(bias.shape)})"
            )
        if k is None:
            k = max(1, int((mask != 0).sum(dim=1).max())) if n_classes else 1
        with torch.random.fork_rng(devices=[]):
            model = cls(int(n_inputs), int(n_classes), int(k), budget, params=params)
        with torch.no_grad():
            model.mask.copy_((mask != 0).to(model.mask.dtype))
            model.weight.copy_(weight * model.mask)
            model.bias.copy_(bias)
        return model.eval()
