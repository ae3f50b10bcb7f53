"""Multilayer software baselines: N -> H1 -> ... -> C feed-forward networks with ReLU between layers.

The same shapes and per-layer synapse budgets as the multilayer RF network (issue #10): ``hidden`` lists the
hidden widths and ``ks`` one fan-in budget per layer (``len(hidden) + 1`` entries), e.g. hidden (100,) with ks
(30, 100) keeps 30 weights per hidden neuron and 100 per class (100*30 + 10*100 = 4,000 weights).

=================  ==========================================================================================
class              what it does
=================  ==========================================================================================
:class:`DenseMLP`  every weight of every layer in use (``layer_ks`` are the fan-ins)
:class:`PrunedMLP` dense start, Zhu & Gupta cubic schedule down to the budget, in every layer at the same steps
:class:`RigLMLP`   random sparse start; drop smallest |w|, grow largest dense gradient, in every layer
=================  ==========================================================================================

Every layer is one of the single-layer models of this package (:class:`DensePerceptron`,
:class:`GradualMagnitudePruning`, :class:`RigL`) with the layer's fan-in as ``n_inputs`` and its width as
``n_classes``, so the masking, budgets, schedules and selection rules are exactly theirs: budget ``'per-output'``
keeps ks[l] weights per neuron of layer l, ``'global'`` ks[l] * width anywhere in the layer. One optimizer
(Adam or SGD, per the params) covers all layers; each masked layer zeroes its weights and optimizer state at
masked positions after every step. The only multilayer-specific piece is RigL's dense gradient, which for a
hidden layer is back-propagated through the network (:meth:`MaskedMLP.dense_gradients`).

Layers are initialised in order from the model's generator (layer 1's weight, bias, then mask, then layer 2's,
...), so a :class:`PrunedMLP` starts from the same weights as a :class:`DenseMLP` of the same seed, and
``hidden=()`` gives exactly the single-layer model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import torch
import torch.nn.functional as F
from torch import nn

from engine.core.enums import Budget
from engine.core.model_base import PerceptronModel
from engine.nets.baselines.dense import DenseParams, DensePerceptron
from engine.nets.baselines.masked import BUDGET_SHAPES, MaskedPerceptron
from engine.nets.baselines.optim import BaselineParams, make_optimizer
from engine.nets.baselines.prune import GradualMagnitudePruning, PruneParams
from engine.nets.baselines.rigl import RigL, RigLParams

if TYPE_CHECKING:
    from engine.core.model_base import LayerList


# --- validation --------------------------------------------------------------------------------------------
def layer_sizes_of(n_inputs: int, n_classes: int, hidden) -> tuple[int, ...]:
    """The widths (N, H1, ..., C) of a network (``hidden``: a tuple of widths, or one width); raises ValueError
    unless every hidden width is a whole number >= 1."""
    hidden = (hidden,) if isinstance(hidden, (int, float)) else tuple(hidden)
    if any(int(h) != h or h < 1 for h in hidden):
        raise ValueError(f"hidden layer sizes must be whole numbers >= 1 (got {hidden})")
    return (int(n_inputs), *(int(h) for h in hidden), int(n_classes))


def check_ks(ks, layer_sizes: tuple[int, ...]) -> tuple[int, ...]:
    """``ks`` as a tuple, checked: one budget per layer, each between 1 and that layer's fan-in (ValueError)."""
    ks = tuple(ks)
    fan_ins = layer_sizes[:-1]
    if len(ks) != len(fan_ins):
        raise ValueError(
            f"ks needs one fan-in budget per layer, {len(fan_ins)} for layer sizes {layer_sizes} (got {len(ks)}: {ks})"
        )
    for layer, (k, fan_in) in enumerate(zip(ks, fan_ins), start=1):
        if int(k) != k or not 1 <= k <= fan_in:
            raise ValueError(
                f"ks[{layer - 1}] (weights per neuron of layer {layer}) must be a whole number "
                f"between 1 and its fan-in {fan_in} (got {k})"
            )
    return tuple(int(k) for k in ks)


# --- the models ---------------------------------------------------------------------------------------------
class MLPBase(PerceptronModel):
    """A stack of single-layer models (``self.layers``) with ReLU between them. The training context,
    ``after_step`` and ``after_epoch`` reach every layer; ``after_backward`` does not (a layer's own would treat
    the network's input as its own)."""

    def __init__(
        self, n_inputs: int, n_classes: int, hidden, params: BaselineParams, generator: torch.Generator | None
    ) -> None:
        super().__init__(n_inputs, n_classes, generator)
        self.params = params
        #: Widths (N, H1, ..., C).
        self.layer_sizes: tuple[int, ...] = layer_sizes_of(n_inputs, n_classes, hidden)
        #: The layers, first to last; each maps (B, fan-in) to (B, width).
        self.layers = cast("LayerList[DensePerceptron | MaskedPerceptron]", nn.ModuleList())

    @property
    def hidden(self) -> tuple[int, ...]:
        """The hidden widths (H1, ...)."""
        return self.layer_sizes[1:-1]

    def make_optimizer(self, lr: float) -> torch.optim.Optimizer:
        return make_optimizer(self.parameters(), self.params.optimizer, lr, self.params.momentum)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < last:
                x = F.relu(x)
        return x

    # --- views ----------------------------------------------------------------------------------------------
    def layer_weights(self) -> list[torch.Tensor]:
        """The effective (out, in) weight of every layer (mask applied), first to last."""
        return [layer.effective_weight() for layer in self.layers]

    def layer_biases(self) -> list[torch.Tensor]:
        """The (out,) bias of every layer, first to last."""
        return [layer.bias for layer in self.layers]

    def effective_weight(self) -> torch.Tensor:
        """The first layer's effective weight (H1, N): what a single-matrix view can show."""
        return self.layers[0].effective_weight()

    @property
    def bias(self) -> torch.Tensor:
        """The first layer's bias (H1,), matching :meth:`effective_weight`."""
        return self.layers[0].bias

    def synapse_count(self) -> int:
        """Active weights over all layers (biases not counted)."""
        return sum(layer.synapse_count() for layer in self.layers)

    # --- the training lifecycle -------------------------------------------------------------------------------
    def setup_training(self, context) -> None:
        for layer in self.layers:
            layer.begin_training(context)

    def teardown_training(self) -> None:
        for layer in self.layers:
            layer.finish_training()

    def after_step(self, step: int) -> None:
        for layer in self.layers:
            layer.after_step(step)
        self.count_rewiring()

    def after_epoch(self, epoch: int) -> None:
        for layer in self.layers:
            layer.after_epoch(epoch)
        self.count_rewiring()

    def count_rewiring(self) -> None:
        """Set ``rewiring_events`` to the positions regrown so far in all layers."""
        self.rewiring_events = sum(layer.rewiring_events for layer in self.layers)

    def extra_repr(self) -> str:
        return f"layer_sizes={self.layer_sizes}, params={self.params!r}"


class DenseMLP(MLPBase):
    """Fully connected ReLU network, every layer initialised like ``nn.Linear`` (Adam by default)."""

    params: DenseParams
    layers: LayerList[DensePerceptron]

    def __init__(
        self,
        n_inputs: int,
        n_classes: int,
        hidden: tuple[int, ...] = (),
        *,
        params: DenseParams | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(n_inputs, n_classes, hidden, params if params is not None else DenseParams(), generator)
        sizes = self.layer_sizes
        for fan_in, width in zip(sizes[:-1], sizes[1:]):
            self.layers.append(DensePerceptron(fan_in, width, params=self.params, generator=self.generator))

    @property
    def layer_ks(self) -> tuple[int, ...]:
        """Weights per neuron of every layer: all of them (the fan-ins)."""
        return self.layer_sizes[:-1]


class MaskedMLP(MLPBase):
    """A ReLU network of masked layers (``layer_class``, a :class:`MaskedPerceptron`) with fan-in budgets ``ks``."""

    layer_class: type[MaskedPerceptron] = MaskedPerceptron
    layers: LayerList[MaskedPerceptron]  # of layer_class

    def __init__(
        self,
        n_inputs: int,
        n_classes: int,
        hidden: tuple[int, ...],
        ks: tuple[int, ...],
        budget: Budget = Budget.PER_OUTPUT,
        *,
        params: BaselineParams | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        params = params if params is not None else self.layer_class.params_class()
        super().__init__(n_inputs, n_classes, hidden, params, generator)
        if budget not in BUDGET_SHAPES:
            raise ValueError(f"budget must be one of {BUDGET_SHAPES} (got {budget!r})")
        #: Weights per neuron of every layer (per-output), or per neuron on average (global).
        self.layer_ks: tuple[int, ...] = check_ks(ks, self.layer_sizes)
        self.budget = Budget(budget)
        sizes = self.layer_sizes
        for fan_in, width, k in zip(sizes[:-1], sizes[1:], self.layer_ks):
            self.layers.append(self.layer_class(fan_in, width, k, budget, params=self.params, generator=self.generator))

    def masks(self) -> list[torch.Tensor]:
        """The 0/1 (out, in) mask of every layer, first to last."""
        return [layer.mask for layer in self.layers]

    @torch.no_grad()
    def apply_mask(self, optimizer: torch.optim.Optimizer | None = None) -> None:
        """Zero every layer's weight and optimizer state at its masked positions."""
        for layer in self.layers:
            layer.apply_mask(optimizer)

    @torch.enable_grad()
    def dense_gradients(self, x: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
        """d(mean cross-entropy)/d(W_l*M_l) on a batch for every layer l, at every position (masked ones too).

        Back-propagated through the current network (one extra forward and backward pass); for a single layer
        it equals :meth:`MaskedPerceptron.dense_gradient`. Touches no parameter's ``.grad``."""
        weights = [w.detach().requires_grad_() for w in self.layer_weights()]
        h = x
        for i, (layer, w) in enumerate(zip(self.layers, weights)):
            h = F.linear(h, w, layer.bias.detach())
            if i < len(weights) - 1:
                h = F.relu(h)
        return list(torch.autograd.grad(F.cross_entropy(h, y), weights))

    def extra_repr(self) -> str:
        return (
            f"layer_sizes={self.layer_sizes}, layer_ks={self.layer_ks}, budget={self.budget.value!r}, "
            f"params={self.params!r}"
        )


class PrunedMLP(MaskedMLP):
    """Gradual magnitude pruning (:class:`GradualMagnitudePruning`, SGD by default) in every layer: dense start,
    every layer reaches its budget at the same steps of one cubic schedule."""

    layer_class = GradualMagnitudePruning
    layers: LayerList[GradualMagnitudePruning]

    def __init__(
        self,
        n_inputs: int,
        n_classes: int,
        hidden: tuple[int, ...],
        ks: tuple[int, ...],
        budget: Budget = Budget.PER_OUTPUT,
        *,
        params: PruneParams | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(n_inputs, n_classes, hidden, ks, budget, params=params, generator=generator)


class RigLMLP(MaskedMLP):
    """RigL (:class:`RigL`, Adam by default) in every layer, all on one schedule; grows where the gradient
    back-propagated to that layer is largest. Constant fan-in per neuron with the per-output budget."""

    layer_class = RigL
    layers: LayerList[RigL]

    def __init__(
        self,
        n_inputs: int,
        n_classes: int,
        hidden: tuple[int, ...],
        ks: tuple[int, ...],
        budget: Budget = Budget.PER_OUTPUT,
        *,
        params: RigLParams | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(n_inputs, n_classes, hidden, ks, budget, params=params, generator=generator)
        self._dense_grads: list[torch.Tensor] | None = None

    def setup_training(self, context) -> None:
        super().setup_training(context)
        self._dense_grads = None

    def teardown_training(self) -> None:
        super().teardown_training()
        self._dense_grads = None

    def after_backward(self, step: int, x: torch.Tensor, y: torch.Tensor) -> None:
        # ``step`` counts the steps already taken; this is optimizer step step + 1 (all layers share a schedule).
        if self.layers[0].is_update_step(step + 1):
            self._dense_grads = self.dense_gradients(x, y)

    def after_step(self, step: int) -> None:
        grads, self._dense_grads = self._dense_grads, None
        for i, layer in enumerate(self.layers):
            layer.apply_mask(self.optimizer)
            if grads is not None:
                layer.update_mask(step, grads[i], self.optimizer)
        self.count_rewiring()
