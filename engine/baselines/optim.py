"""The optimizer a baseline trains with: Adam (the project's default) or SGD with momentum.

The choice is a per-model knob (class attribute ``optimizer``), tuned on a validation split like the learning
rate: magnitude-based methods need weight magnitudes that reflect importance, which Adam's per-coordinate
step normalisation destroys (rarely active pixels grow as fast as informative ones), so gradual magnitude
pruning is much stronger with plain SGD + momentum. The masked models zero every per-weight state tensor
(Adam moments, SGD momentum buffer) at masked positions.
"""
from __future__ import annotations

from typing import Iterable

import torch

from ..model_base import make_adam

#: Optimizer names accepted by :func:`make_optimizer`.
OPTIMIZERS = ("adam", "sgd")
#: Momentum of the SGD variant.
SGD_MOMENTUM = 0.9


def make_optimizer(params: Iterable[torch.nn.Parameter], name: str, lr: float) -> torch.optim.Optimizer:
    """``'adam'``: torch Adam with default betas; ``'sgd'``: SGD with momentum 0.9, no weight decay."""
    params = [p for p in params if p.requires_grad]
    if name == "adam":
        return make_adam(params, lr)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=SGD_MOMENTUM)
    raise ValueError(f"unknown optimizer {name!r} (choose one of: {', '.join(OPTIMIZERS)})")
