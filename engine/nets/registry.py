"""The model registry, in the style of torchvision's ``models/_api.py``: :class:`ModelSpec`, ``register_model``,
``list_models``, ``get_spec``.

A leaf module: it imports no model. The built-in models register themselves from engine.nets.builtin (one
``register_model(ModelSpec(...))`` call per model); engine.config.run_config imports that module, so any run
configuration sees every built-in model, and engine.config.models re-exports this API with ``build_model`` and
``get_model``. Look (plot colours, markers) is the app's business: rfexplorer.theme.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Optional

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from engine.core.model_base import PerceptronModel

FAMILIES = ("rf", "baseline")
#: ``builder(cfg, n_inputs, n_classes, generator)``, cfg an engine.config.run_config.RunConfig (not imported: this
#: module stays below the configuration, which imports it).
Builder = Callable[[Any, int, int, "torch.Generator"], "PerceptronModel"]


@dataclass(frozen=True)
class ModelSpec:
    """What the rest of rfexplorer knows about one model."""

    name: str
    """Name used by the CLI, the app, settings files and result rows."""
    label: str
    """Descriptive label (menus, tooltips)."""
    short_label: str
    """Short label (legends, tables)."""
    family: str
    """'rf' (RF spintronic network: resonators, input oscillators) or 'baseline' (software perceptron)."""
    uses_k: bool
    """Whether K (resonators per chain / weights per class) applies; False: the model uses every input."""
    trains_topology: bool
    """Whether training changes which inputs each output is connected to."""
    params_class: type
    """Dataclass of the model's own parameters (``RunConfig.model_params``)."""
    default_lr: float
    """Tuned default learning rate."""
    builder: Builder
    """``builder(cfg, n_inputs, n_classes, generator)`` -> a fresh model drawing randomness from generator."""
    description: str = ""
    """One sentence on what the model is."""
    supports_hidden: bool = False
    """Whether the model has a multilayer version (``RunConfig.hidden``)."""

    @property
    def is_rf(self) -> bool:
        return self.family == "rf"


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(spec: ModelSpec) -> ModelSpec:
    """Add a model to the registry (ValueError for an unknown family or a name already taken)."""
    if spec.family not in FAMILIES:
        raise ValueError(f"model family must be one of {FAMILIES} (got {spec.family!r})")
    if spec.name in _REGISTRY:
        raise ValueError(f"model {spec.name!r} is registered twice")
    _REGISTRY[spec.name] = spec
    return spec


def list_models(family: Optional[str] = None) -> list[str]:
    """Registered model names, in registration order (optionally one family)."""
    return [n for n, s in _REGISTRY.items() if family is None or s.family == family]


def get_spec(name: str) -> ModelSpec:
    """The registry entry of a model (ValueError naming the registered models for an unknown name)."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r} (choose one of: {', '.join(_REGISTRY)})") from None


def default_lr(model: str) -> float:
    """The tuned default learning rate of a model."""
    return get_spec(model).default_lr


def multilayer_models() -> list[str]:
    """Registered models that have a multilayer version."""
    return [m for m in list_models() if get_spec(m).supports_hidden]
