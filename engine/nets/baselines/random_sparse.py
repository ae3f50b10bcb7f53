"""Static random sparse perceptron: a uniformly random mask with the budget, fixed at initialisation.

With a single layer, Erdos-Renyi initialisation reduces to a uniform mask. This is the floor of the sparse
baselines. The mask is drawn from the model's own generator, so it is reproducible per seed.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.nets.baselines.masked import MaskedPerceptron
from engine.nets.baselines.optim import BaselineParams


@dataclass(frozen=True)
class RandomSparseParams(BaselineParams):
    """Static random sparse perceptron (Adam by default)."""


class StaticRandomSparse(MaskedPerceptron):
    """Masked perceptron whose random initial mask (K per class row, or K*C overall) never changes."""

    params_class = RandomSparseParams
