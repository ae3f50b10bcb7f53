"""The optimizer a baseline trains with: Adam (the project's default) or SGD with momentum.

The choice is a per-model setting (``model_params.optimizer``), tuned on a validation split like the learning
rate: magnitude-based methods need weight magnitudes that reflect importance, which Adam's per-coordinate
step normalisation destroys (rarely active pixels grow as fast as informative ones), so gradual magnitude
pruning is much stronger with plain SGD + momentum. The masked models zero every per-weight state tensor
(Adam moments, SGD momentum buffer) at masked positions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import torch

from engine.core.model_base import make_adam

#: Optimizer names accepted by :func:`make_optimizer`.
OPTIMIZERS = ("adam", "sgd")


@dataclass(frozen=True)
class BaselineParams:
    """Parameters shared by every software baseline."""

    optimizer: str = "adam"
    """'adam' (torch Adam, default betas) or 'sgd' (SGD with momentum, no weight decay)."""
    momentum: float = 0.9
    """Momentum of the 'sgd' optimizer."""

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"model_params.optimizer must be one of {', '.join(OPTIMIZERS)} (got {self.optimizer!r})")
        if not 0.0 <= self.momentum < 1.0:
            raise ValueError(f"model_params.momentum must be in [0, 1) (got {self.momentum})")


def make_optimizer(
    params: Iterable[torch.nn.Parameter], name: str, lr: float, momentum: float = 0.9
) -> torch.optim.Optimizer:
    """``'adam'``: torch Adam with default betas; ``'sgd'``: SGD with momentum, no weight decay."""
    params = [p for p in params if p.requires_grad]
    if name == "adam":
        return make_adam(params, lr)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum)
    raise ValueError(f"unknown optimizer {name!r} (choose one of: {', '.join(OPTIMIZERS)})")
