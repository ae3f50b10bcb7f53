"""Sparse feed-forward baselines for the RF spintronic perceptron (see docs/sparse-baselines.md).

Every model is a :class:`engine.model_base.PerceptronModel` on one C x N weight matrix plus a dense bias
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

Knobs (the optimizer, 'adam' or 'sgd', and the schedules) are class attributes holding the tuned defaults
(e.g. ``RigL.alpha``), overridable per instance through keyword arguments of :func:`build_baseline`.
"""
from __future__ import annotations

from ..config import RunConfig
from ..model_base import PerceptronModel
from .dense import DensePerceptron
from .masked import BUDGET_SHAPES, MaskedPerceptron
from .optim import OPTIMIZERS
from .prune import GradualMagnitudePruning
from .random_sparse import StaticRandomSparse
from .rigl import RigL
from .set import SET

#: model name (as in engine.config.BASELINE_MODELS) -> class
BASELINES: dict[str, type[PerceptronModel]] = {
    "dense": DensePerceptron,
    "prune": GradualMagnitudePruning,
    "random": StaticRandomSparse,
    "rigl": RigL,
    "set": SET,
}


def build_baseline(cfg: RunConfig, n_inputs: int, n_classes: int, **options) -> PerceptronModel:
    """A fresh baseline model for ``cfg`` (seed torch's global RNG first, as the training loop does).

    ``cfg.resonators_per_chain`` is K (the budget is K*C weights) and ``cfg.budget`` its shape. ``options`` are
    knobs passed to the model's constructor (e.g. ``alpha=0.3`` for RigL, ``optimizer='sgd'``).
    """
    try:
        cls = BASELINES[cfg.model]
    except KeyError:
        raise ValueError(f"{cfg.model!r} is not a baseline (choose one of: {', '.join(BASELINES)})") from None
    if cls is DensePerceptron:
        return DensePerceptron(n_inputs, n_classes, **options)
    return cls(n_inputs, n_classes, cfg.resonators_per_chain, cfg.budget, **options)


__all__ = ["BASELINES", "BUDGET_SHAPES", "DensePerceptron", "GradualMagnitudePruning", "MaskedPerceptron", "OPTIMIZERS",
           "RigL", "SET", "StaticRandomSparse", "build_baseline"]
