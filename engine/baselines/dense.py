"""The dense perceptron: one 784 -> 10 linear layer (Adam by default). The synapse budget is ignored."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..model_base import PerceptronModel
from .optim import make_optimizer


def linear_parameters(n_inputs: int, n_classes: int) -> tuple[nn.Parameter, nn.Parameter]:
    """Weight (C, N) and bias (C,) initialised as nn.Linear does: uniform in +-1/sqrt(fan_in)."""
    bound = 1.0 / math.sqrt(n_inputs)
    weight = nn.Parameter(torch.empty(n_classes, n_inputs).uniform_(-bound, bound))
    bias = nn.Parameter(torch.empty(n_classes).uniform_(-bound, bound))
    return weight, bias


class DensePerceptron(PerceptronModel):
    """Plain softmax-linear classifier (all C*N weights in use), initialised like ``nn.Linear``."""

    #: 'adam' or 'sgd' (see :mod:`engine.baselines.optim`).
    optimizer: str = "adam"

    def __init__(self, n_inputs: int, n_classes: int, *, optimizer: str | None = None) -> None:
        super().__init__(n_inputs, n_classes)
        if optimizer is not None:
            self.optimizer = optimizer
        self.weight, self.bias = linear_parameters(n_inputs, n_classes)

    def make_optimizer(self, lr: float) -> torch.optim.Optimizer:
        return make_optimizer(self.parameters(), self.optimizer, lr)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight, self.bias)

    def effective_weight(self) -> torch.Tensor:
        return self.weight

    def extra_repr(self) -> str:
        return f"n_inputs={self.n_inputs}, n_classes={self.n_classes}, optimizer={self.optimizer!r}"
