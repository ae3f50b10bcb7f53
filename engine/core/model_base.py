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
from torch.optim import optimizer as _step_hooks

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
    for the tiny tensors of a perceptron), and stepped by :class:`LeanAdam`."""
    try:
        return LeanAdam(params, lr=lr, fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.Adam(params, lr=lr)


class LeanAdam(torch.optim.Adam):
    """torch's fused Adam, with the per-step bookkeeping of its Python front end left out: once every parameter
    has its state, a step is the fused kernel's two calls (count the step, update), with the same numbers as
    ``torch.optim.Adam(fused=True)`` bit for bit (tests/test_lean_adam.py). Anything else (the first step, AMSGrad,
    a tensor learning rate, mixed dtypes, a torch without the kernel) takes Adam's own step. At small K, Adam's
    front end cost about as much as the rest of an RF model's training step."""

    def step(self, closure=None):
        if closure is None and not self._watched() and self._lean_step():
            return None
        return _hooked_adam_step(self, closure)

    #: torch wraps an optimizer's step() in its profiler's annotation and step hooks (about 30 µs a step); this
    #: step takes that wrapper only where it is watched (:meth:`_watched`), on Adam's own path
    step.hooked = True  # type: ignore[attr-defined]

    def _watched(self) -> bool:
        """Whether step hooks are registered or torch's profiler is recording (then a step takes torch's
        wrapper, with its hooks and annotation)."""
        return bool(
            self._optimizer_step_pre_hooks
            or self._optimizer_step_post_hooks
            or _step_hooks._global_optimizer_pre_hooks
            or _step_hooks._global_optimizer_post_hooks
            or torch.autograd._profiler_enabled()
        )

    def _lean_step(self) -> bool:
        """One step by the fused kernel directly; False (nothing changed) where Adam's own step is needed."""
        calls = []
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            if group["amsgrad"] or group["maximize"] or group["capturable"] or group["differentiable"]:
                return False
            if not group["fused"] or isinstance(group["lr"], torch.Tensor):
                return False
            states: list[dict] = [self.state.get(p) or {} for p in params]
            if any(not st for st in states) or any(p.dtype != params[0].dtype or p.grad.is_sparse for p in params):
                return False
            calls.append((group, params, states))
        for group, params, states in calls:
            steps = [st["step"] for st in states]
            torch._foreach_add_(steps, 1)
            beta1, beta2 = group["betas"]
            try:
                torch._fused_adam_(
                    params,
                    [p.grad for p in params],
                    [st["exp_avg"] for st in states],
                    [st["exp_avg_sq"] for st in states],
                    [],
                    steps,
                    lr=group["lr"],
                    beta1=beta1,
                    beta2=beta2,
                    weight_decay=group["weight_decay"],
                    eps=group["eps"],
                    amsgrad=False,
                    maximize=False,
                    grad_scale=None,
                    found_inf=None,
                )
            except (RuntimeError, TypeError, AttributeError):  # another torch's kernel: Adam's own step from now on
                torch._foreach_sub_(steps, 1)
                if calls[0][0] is not group:
                    raise
                self._lean_step = lambda: False  # type: ignore[method-assign]
                return False
        return True

    def zero_grad(self, set_to_none: bool = True) -> None:
        if not set_to_none:
            super().zero_grad(set_to_none)
            return
        for group in self.param_groups:
            for p in group["params"]:
                p.grad = None


@torch.optim.Optimizer.profile_hook_step
def _hooked_adam_step(optimizer: torch.optim.Adam, closure=None):
    """Adam's own step (unwrapped) in torch's wrapper: its profiler annotation and step hooks."""
    adam_step = getattr(torch.optim.Adam.step, "__wrapped__", torch.optim.Adam.step)
    return adam_step(optimizer, closure)


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

    def training_step(self, x: torch.Tensor, y: torch.Tensor) -> Optional[tuple[torch.Tensor, torch.Tensor]]:
        """A training step's (scores, mean cross-entropy) on (x, y) with every trained parameter's ``.grad``
        set, for a model that computes its step by hand; None (the default): the loop takes the forward pass,
        the loss and autograd's backward pass."""
        return None

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
