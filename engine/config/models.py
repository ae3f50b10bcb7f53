"""Models by name, in the style of torchvision's ``list_models`` / ``get_model``: the public face of the registry.

The registry itself (:class:`ModelSpec`, ``register_model``, ``list_models``, ``get_spec``) is the leaf module
engine.nets.registry; the built-in models register from engine.nets.builtin. This module re-exports that API
and adds the builders that need a run configuration: :func:`build_model` (a model for a RunConfig) and
:func:`get_model` (a model by name and settings).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import torch

from engine.config.run_config import RunConfig
from engine.nets.registry import FAMILIES, Builder, ModelSpec, default_lr, get_spec, list_models, register_model

if TYPE_CHECKING:  # pragma: no cover
    from engine.core.model_base import PerceptronModel

__all__ = [
    "FAMILIES",
    "Builder",
    "ModelSpec",
    "build_model",
    "default_lr",
    "get_model",
    "get_spec",
    "list_models",
    "register_model",
]


def build_model(
    cfg: RunConfig, n_inputs: int, n_classes: int, generator: Optional[torch.Generator] = None
) -> "PerceptronModel":
    """A fresh model for ``cfg``; all its randomness comes from ``generator`` (default: seeded by cfg.seed)."""
    gen = generator if generator is not None else torch.Generator().manual_seed(cfg.seed)
    return cfg.spec.builder(cfg, n_inputs, n_classes, gen)


def get_model(
    name: str, n_inputs: int, n_classes: int, *, generator: Optional[torch.Generator] = None, **settings
) -> "PerceptronModel":
    """A fresh model by name, e.g. ``get_model('rigl', 784, 10, resonators_per_chain=10)``; ``settings`` are
    RunConfig fields."""
    return build_model(RunConfig(model=name, **settings), n_inputs, n_classes, generator)
