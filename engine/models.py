"""Model registry: builds the module for a run config, and holds each model's tuned default learning rate."""
from __future__ import annotations

from .config import RunConfig
from .model_base import PerceptronModel

#: Default learning rates (Adam). RF learning rates are in comb units (input spacings) per step.
#: Tuned on a validation split of the training set (see benchmarks/tune.py), never on the test set.
DEFAULT_LR = {
    "dense": 1e-3,
    "prune": 1e-3,
    "random": 1e-3,
    "rigl": 1e-3,
    "set": 1e-3,
    "rf": 0.2,
    "rf-input": 0.2,
    "rf-frozen": 0.2,
}


def default_lr(model: str) -> float:
    return DEFAULT_LR[model]


def build_model(cfg: RunConfig, n_inputs: int, n_classes: int) -> PerceptronModel:
    """A fresh, seeded model for ``cfg`` (call torch.manual_seed(cfg.seed) first)."""
    if cfg.model in ("rf", "rf-input", "rf-frozen"):
        from .rf_perceptron import RFPerceptron

        return RFPerceptron(cfg, n_inputs, n_classes)
    from .baselines import build_baseline

    return build_baseline(cfg, n_inputs, n_classes)
