"""What every trainable model (RF perceptron or feed-forward baseline) offers the training loop and the views.

A model is an ordinary ``torch.nn.Module`` mapping flattened images (B, N) to class scores (B, C). The
training loop calls the hooks below around each optimizer step; the views read ``effective_weight`` and,
for RF models, the resonator and input frequencies.
"""
from __future__ import annotations

import torch
from torch import nn


def make_adam(params, lr: float) -> torch.optim.Optimizer:
    """Adam, fused into one kernel where this torch build supports it (several times less overhead per step
    for the tiny tensors of a perceptron)."""
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.Adam(params, lr=lr)


class PerceptronModel(nn.Module):
    """Base class: a single-layer classifier with an effective weight matrix W (C, N) and a bias (C,)."""

    #: True for the RF spintronic models (they have resonators and input oscillators).
    is_rf: bool = False

    def __init__(self, n_inputs: int, n_classes: int) -> None:
        super().__init__()
        self.n_inputs = n_inputs
        self.n_classes = n_classes
        #: Number of topology changes so far (resonator jumps, or mask positions regrown).
        self.rewiring_events = 0

    def heartbeat(self) -> None:
        """Called by long work inside a hook (a rewiring round) every so often. The training loop replaces it
        to report progress, and to stop a cancelled run, in the middle of that work."""

    # --- what the loop calls -------------------------------------------------------------------------
    def make_optimizer(self, lr: float) -> torch.optim.Optimizer:
        """The optimizer for this model: Adam over all trainable parameters, in one group."""
        return make_adam([p for p in self.parameters() if p.requires_grad], lr)

    def setup_training(self, total_steps: int, steps_per_epoch: int, optimizer: torch.optim.Optimizer,
                       train_x: torch.Tensor) -> None:
        """Called once before the first step (for schedules that need the run's length or the data)."""

    def attach_data(self, train_x: torch.Tensor, train_y: torch.Tensor) -> None:
        """Called once before training with the training set (for data-driven schedules); default: ignore."""

    def after_backward(self, step: int, x: torch.Tensor, y: torch.Tensor) -> None:
        """Called after loss.backward() and before optimizer.step() (gradients are available)."""

    def after_step(self, step: int, optimizer: torch.optim.Optimizer) -> None:
        """Called after optimizer.step() (masks, projections, topology moves)."""

    def after_epoch(self, epoch: int, optimizer: torch.optim.Optimizer) -> None:
        """Called at the end of every epoch."""

    # --- what the views and exports read --------------------------------------------------------------
    def effective_weight(self) -> torch.Tensor:
        """The (C, N) matrix W such that scores = x W^T (times a gain, for RF) + b."""
        raise NotImplementedError

    def snapshot_extras(self) -> dict:
        """Extra fields for :class:`engine.progress.Snapshot` (numpy copies); RF models add frequencies."""
        return {}

    def synapse_count(self) -> int:
        """Number of synapses actually in use (non-zero weights, or resonators)."""
        return int((self.effective_weight() != 0).sum())
