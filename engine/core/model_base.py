"""What every trainable model (RF perceptron or feed-forward baseline) offers the training loop and the views.

A model is an ordinary ``torch.nn.Module`` mapping flattened samples (B, N) to class scores (B, C). All its
randomness comes from its own ``torch.Generator`` (``self.generator``), never from torch's global one.

Training-time machinery is attached for the length of a run and removed when it ends, in the style of
``torch.nn.utils.prune``: the loop calls :meth:`PerceptronModel.begin_training` with a
:class:`TrainingContext` (step counts, the optimizer, the training data, the run's generator, a heartbeat),
then the per-step hooks, then :meth:`PerceptronModel.finish_training`, which drops the context and whatever a
model built from it (gradient sums, samples, caches). A finished model holds only what export and display
need.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Generic, Iterator, Optional, TypeVar, overload

import torch
from torch import nn

LayerT = TypeVar("LayerT", bound=nn.Module, covariant=True)

if TYPE_CHECKING:

    class LayerList(nn.ModuleList, Generic[LayerT]):
        """What a model's ``nn.ModuleList`` of layers is to the type checker: a list of one kind of layer (torch
        types every item as a plain ``Module``). Only annotations name it; at run time the list is a ModuleList."""

        def __iter__(self) -> Iterator[LayerT]: ...

        @overload
        def __getitem__(self, idx: slice) -> LayerList[LayerT]: ...

        @overload
        def __getitem__(self, idx: int) -> LayerT: ...

        def __getitem__(self, idx): ...


def make_adam(params, lr: float) -> torch.optim.Optimizer:
    """Adam, fused into one kernel where this torch build supports it (several times less overhead per step
    for the tiny tensors of a perceptron)."""
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.Adam(params, lr=lr)


@dataclass
class TrainingContext:
    """What a model may use while it trains; dropped by :meth:`PerceptronModel.finish_training`."""

    total_steps: int
    steps_per_epoch: int
    optimizer: torch.optim.Optimizer
    train_x: torch.Tensor
    """(n, N) training inputs in [0, 1]."""
    train_y: torch.Tensor
    """(n,) training labels."""
    generator: torch.Generator
    """The run's generator for training-time randomness (the model's own generator)."""
    heartbeat: Callable[[], None] = lambda: None
    """Call every so often during long work inside a hook: reports progress, raises RunCancelled on Stop."""


class PerceptronModel(nn.Module):
    """Base class: a classifier with an effective weight matrix W (C, N) and a bias (C,)."""

    #: True for the RF spintronic models (they have resonators and input oscillators).
    is_rf: bool = False

    def __init__(self, n_inputs: int, n_classes: int, generator: Optional[torch.Generator] = None) -> None:
        super().__init__()
        self.n_inputs = n_inputs
        self.n_classes = n_classes
        #: The model's own random generator (initialisation, training-time sampling, device noise).
        self.generator = generator if generator is not None else torch.Generator().manual_seed(0)
        #: Number of topology changes so far (resonator jumps, or mask positions regrown).
        self.rewiring_events = 0
        self.context: Optional[TrainingContext] = None

    # --- the training lifecycle ---------------------------------------------------------------------------
    def begin_training(self, context: TrainingContext) -> None:
        """Attach the training context; called once before the first step."""
        self.context = context
        self.setup_training(context)

    def finish_training(self) -> None:
        """Drop everything training attached (called when a run ends, finished, cancelled or failed)."""
        self.teardown_training()
        self.context = None

    def heartbeat(self) -> None:
        """Called by long work inside a hook (a rewiring round) every so often."""
        if self.context is not None:
            self.context.heartbeat()

    # --- hooks for subclasses -------------------------------------------------------------------------------
    def make_optimizer(self, lr: float) -> torch.optim.Optimizer:
        """The optimizer for this model: Adam over all trainable parameters, in one group."""
        return make_adam([p for p in self.parameters() if p.requires_grad], lr)

    def setup_training(self, context: TrainingContext) -> None:
        """Build training-time machinery (schedules, plasticity) from the context."""

    def teardown_training(self) -> None:
        """Drop what :meth:`setup_training` built."""

    def after_backward(self, step: int, x: torch.Tensor, y: torch.Tensor) -> None:
        """Called after loss.backward() and before optimizer.step() (gradients are available)."""

    def after_step(self, step: int) -> None:
        """Called after optimizer.step() (masks, projections, topology moves); ``step`` counts steps done."""

    def after_epoch(self, epoch: int) -> None:
        """Called at the end of every epoch."""

    @property
    def optimizer(self) -> Optional[torch.optim.Optimizer]:
        return self.context.optimizer if self.context is not None else None

    # --- what the views and exports read --------------------------------------------------------------
    def effective_weight(self) -> torch.Tensor:
        """The (C, N) matrix W such that scores = x W^T (times a gain, for RF) + b."""
        raise NotImplementedError

    def snapshot_extras(self) -> dict:
        """Extra fields for :class:`engine.core.progress.Snapshot` (numpy copies); RF models add frequencies."""
        return {}

    def synapse_count(self) -> int:
        """Number of synapses actually in use (non-zero weights, or resonators)."""
        return int((self.effective_weight() != 0).sum())
