"""Model registry: builds the module for a run config, and holds each model's tuned default learning rate."""
from __future__ import annotations

from .config import RunConfig
from .model_base import PerceptronModel

#: Default learning rates. RF learning rates are in comb units (input spacings) per step (Adam). Baselines:
#: Adam for dense, random and RigL, SGD with momentum 0.9 for pruning and SET (it won on validation).
#: Tuned on a 10 % validation split of the full MNIST training set at K = 10, 10 epochs, never on the test
#: set: benchmarks/tune_baselines.py and benchmarks/tune_rf.py.
DEFAULT_LR = {
    "dense": 3e-3,
    "prune": 0.1,
    "random": 1e-2,
    "rigl": 3e-2,
    "set": 0.3,
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
