"""The dense perceptron: one N -> C linear layer (Adam by default). The synapse budget is ignored."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from engine.core.model_base import PerceptronModel
from engine.nets.baselines.optim import BaselineParams, make_optimizer


def linear_parameters(n_inputs: int, n_classes: int, generator: torch.Generator) -> tuple[nn.Parameter, nn.Parameter]:
    """Weight (C, N) and bias (C,) initialised as nn.Linear does: uniform in +-1/sqrt(fan_in)."""
    bound = 1.0 / math.sqrt(n_inputs)
    weight = nn.Parameter(torch.empty(n_classes, n_inputs).uniform_(-bound, bound, generator=generator))
    bias = nn.Parameter(torch.empty(n_classes).uniform_(-bound, bound, generator=generator))
    return weight, bias


@dataclass(frozen=True)
class DenseParams(BaselineParams):
    """Parameters of the dense perceptron (Adam by default)."""


class DensePerceptron(PerceptronModel):
    """Plain softmax-linear classifier (all C*N weights in use), initialised like ``nn.Linear``."""

    def __init__(
        self,
        n_inputs: int,
        n_classes: int,
        *,
        params: DenseParams | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(n_inputs, n_classes, generator)
        self.params = params if params is not None else DenseParams()
        self.weight, self.bias = linear_parameters(n_inputs, n_classes, self.generator)

    def make_optimizer(self, lr: float) -> torch.optim.Optimizer:
        return make_optimizer(self.parameters(), self.params.optimizer, lr, self.params.momentum)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight, self.bias)

    def effective_weight(self) -> torch.Tensor:
        return self.weight

    def extra_repr(self) -> str:
        return f"n_inputs={self.n_inputs}, n_classes={self.n_classes}, params={self.params!r}"

    @classmethod
    def from_state(cls, weight, bias, *, params: DenseParams | None = None) -> "DensePerceptron":
        """A dense perceptron in eval mode with exactly this weight (C, N) and bias (C,), as float32.

        Consumes no random state: the throw-away initial weights come from the model's private generator, and
        the global RNG is forked around the construction in case a subclass draws from it."""
        weight = torch.as_tensor(weight, dtype=torch.float32)
        bias = torch.as_tensor(bias, dtype=torch.float32)
        n_classes, n_inputs = weight.shape
        if bias.shape != (n_classes,):
            raise ValueError(f"bias must have {n_classes} entries (got shape {tuple(bias.shape)})")
        with torch.random.fork_rng(devices=[]):
            model = cls(int(n_inputs), int(n_classes), params=params)
        with torch.no_grad():
            model.weight.copy_(weight)
            model.bias.copy_(bias)
        return model.eval()
