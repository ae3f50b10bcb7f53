"""Sparse feed-forward baselines for the RF spintronic perceptron (see docs/sparse-baselines.md).

Every model is a :class:`engine.core.model_base.PerceptronModel` on one C x N weight matrix plus a dense bias
(biases are never counted as synapses). The sparse ones share :class:`MaskedPerceptron` and keep K*C active
weights, shaped by ``cfg.budget``: K per class row ('per-output', the default, the RF hardware's constraint)
or K*C anywhere ('global').

=========  ===========================  ===================================================================
name       class                        what it does
=========  ===========================  ===================================================================
dense      :class:`DensePerceptron`     all N*C weights (budget ignored)
prune      :class:`GradualMagnitudePruning`  dense start, Zhu & Gupta cubic schedule down to the budget
random     :class:`StaticRandomSparse`  uniformly random mask fixed at initialisation (the floor)
rigl       :class:`RigL`                drop smallest |w|, grow largest dense gradient (SRigL per-output)
set        :class:`SET`                 after each epoch drop weakest +/- weights, regrow at random
=========  ===========================  ===================================================================

Each model's settings are a frozen params dataclass (``DenseParams``, ``PruneParams``, ``RandomSparseParams``,
``RigLParams``, ``SETParams``) holding the tuned defaults; a run carries its own as ``RunConfig.model_params``
and the registry (engine.config.models) builds the model. See docs/sparse-baselines.md.
"""

from __future__ import annotations

from engine.nets.baselines.dense import DenseParams, DensePerceptron
from engine.nets.baselines.masked import BUDGET_SHAPES, MaskedPerceptron
from engine.nets.baselines.optim import OPTIMIZERS, BaselineParams
from engine.nets.baselines.prune import GradualMagnitudePruning, PruneParams
from engine.nets.baselines.random_sparse import RandomSparseParams, StaticRandomSparse
from engine.nets.baselines.rigl import RigL, RigLParams
from engine.nets.baselines.set import SET, SETParams

__all__ = [
    "BUDGET_SHAPES",
    "BaselineParams",
    "DenseParams",
    "DensePerceptron",
    "GradualMagnitudePruning",
    "MaskedPerceptron",
    "OPTIMIZERS",
    "PruneParams",
    "RandomSparseParams",
    "RigL",
    "RigLParams",
    "SET",
    "SETParams",
    "StaticRandomSparse",
]
