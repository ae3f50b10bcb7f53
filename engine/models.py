"""The model registry, in the style of torchvision's ``list_models`` / ``get_model``.

One :class:`ModelSpec` per model holds everything the engine, the CLI and the app need to know about it: its
name, labels, family, whether it uses K, its parameter dataclass, its tuned default learning rate, its colours
and its builder. Adding a model means writing one module (the model and its params dataclass) and adding one
``register_model(ModelSpec(...))`` call below.

Default learning rates were tuned on a 10 % validation split of the full MNIST training set at K = 10,
10 epochs, never on the test set (benchmarks/tune_baselines.py, benchmarks/tune_rf.py). RF learning rates are
in comb units (input spacings) per step (Adam).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Optional

import torch

from .baselines.dense import DenseParams, DensePerceptron
from .baselines.prune import GradualMagnitudePruning, PruneParams
from .baselines.random_sparse import RandomSparseParams, StaticRandomSparse
from .baselines.rigl import RigL, RigLParams
from .baselines.set import SET, SETParams
from .rf_perceptron import RFParams, RFPerceptron

if TYPE_CHECKING:  # pragma: no cover
    from .config import RunConfig
    from .model_base import PerceptronModel

FAMILIES = ("rf", "baseline")
Builder = Callable[["RunConfig", int, int, torch.Generator], "PerceptronModel"]


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
    color: str
    """Plot colour on the app's dark background (hex)."""
    color_light: str
    """Plot colour on white figures (hex)."""
    symbol: str
    """pyqtgraph marker symbol."""
    description: str = ""
    """One sentence on what the model is."""
    supports_hidden: bool = False
    """Whether the model has a multilayer version (``RunConfig.hidden``)."""

    @property
    def is_rf(self) -> bool:
        return self.family == "rf"


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(spec: ModelSpec) -> ModelSpec:
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
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r} (choose one of: {', '.join(_REGISTRY)})") from None


def default_lr(model: str) -> float:
    return get_spec(model).default_lr


def build_model(cfg: "RunConfig", n_inputs: int, n_classes: int,
                generator: Optional[torch.Generator] = None) -> "PerceptronModel":
    """A fresh model for ``cfg``; all its randomness comes from ``generator`` (default: seeded by cfg.seed)."""
    gen = generator if generator is not None else torch.Generator().manual_seed(cfg.seed)
    return cfg.spec.builder(cfg, n_inputs, n_classes, gen)


def get_model(name: str, n_inputs: int, n_classes: int, *, generator: Optional[torch.Generator] = None,
              **settings) -> "PerceptronModel":
    """A fresh model by name, e.g. ``get_model('rigl', 784, 10, resonators_per_chain=10)``; ``settings`` are
    RunConfig fields."""
    from .config import RunConfig

    return build_model(RunConfig(model=name, **settings), n_inputs, n_classes, generator)


# ---------------------------------------------------------------------------------------------------------
# Builders
# ---------------------------------------------------------------------------------------------------------

def _rf_builder(train_inputs: bool, plastic: bool) -> Builder:
    def build(cfg, n_inputs, n_classes, generator):
        if cfg.hidden:
            from .multilayer import RFNetwork

            return RFNetwork(n_inputs, n_classes, cfg.hidden, cfg.layer_ks, device=cfg.device,
                             params=cfg.model_params, plasticity=cfg.plasticity if plastic else None,
                             train_inputs=train_inputs, generator=generator)
        return RFPerceptron(n_inputs, n_classes, cfg.resonators_per_chain, device=cfg.device,
                            params=cfg.model_params, plasticity=cfg.plasticity if plastic else None,
                            train_inputs=train_inputs, generator=generator)
    return build


def _masked_builder(cls, mlp_class: str = "") -> Builder:
    def build(cfg, n_inputs, n_classes, generator):
        if cfg.hidden:
            from .baselines import mlp

            return getattr(mlp, mlp_class)(n_inputs, n_classes, cfg.hidden, cfg.layer_ks, cfg.budget,
                                           params=cfg.model_params, generator=generator)
        return cls(n_inputs, n_classes, cfg.resonators_per_chain, cfg.budget, params=cfg.model_params,
                   generator=generator)
    return build


def _dense_builder(cfg, n_inputs, n_classes, generator):
    if cfg.hidden:
        from .baselines.mlp import DenseMLP

        return DenseMLP(n_inputs, n_classes, cfg.hidden, params=cfg.model_params, generator=generator)
    return DensePerceptron(n_inputs, n_classes, params=cfg.model_params, generator=generator)


# ---------------------------------------------------------------------------------------------------------
# The built-in models
# ---------------------------------------------------------------------------------------------------------

register_model(ModelSpec(
    "rf", "RF (trained topology)", "RF", "rf", uses_k=True, trains_topology=True, params_class=RFParams,
    default_lr=0.2, builder=_rf_builder(train_inputs=False, plastic=True), color="#ff8c42", supports_hidden=True,
    color_light="#e4572e", symbol="star",
    description="RF network: resonance frequencies trained by gradient, topology by structural plasticity."))
register_model(ModelSpec(
    "rf-input", "RF + trained input frequencies", "RF + input freq.", "rf", uses_k=True, trains_topology=True,
    params_class=RFParams, default_lr=0.2, builder=_rf_builder(train_inputs=True, plastic=True), supports_hidden=True,
    color="#ff4f6d", color_light="#b5179e", symbol="star",
    description="RF network whose input-oscillator frequencies are trained too, by gradient and by jumps."))
register_model(ModelSpec(
    "rf-frozen", "RF, frozen topology (ablation)", "RF frozen topology", "rf", uses_k=True,
    trains_topology=False, params_class=RFParams, default_lr=0.2,
    builder=_rf_builder(train_inputs=False, plastic=False), color="#f6d55c", supports_hidden=True, color_light="#c9a227", symbol="d",
    description="RF network trained by gradient only: resonators never jump (the ablation)."))
register_model(ModelSpec(
    "dense", "Dense perceptron", "Dense", "baseline", uses_k=False, trains_topology=False,
    params_class=DenseParams, default_lr=3e-3, builder=_dense_builder, color="#e6e6e6", supports_hidden=True, color_light="#222222",
    symbol="o", description="Softmax-linear classifier with every weight."))
register_model(ModelSpec(
    "prune", "Gradual magnitude pruning", "Magnitude pruning", "baseline", uses_k=True, trains_topology=True,
    params_class=PruneParams, default_lr=0.1, builder=_masked_builder(GradualMagnitudePruning, "PrunedMLP"), supports_hidden=True,
    color="#5fa8ff", color_light="#1f77b4", symbol="s",
    description="Dense start, pruned by magnitude down to the budget (Zhu & Gupta)."))
register_model(ModelSpec(
    "random", "Static random sparse", "Random sparse", "baseline", uses_k=True, trains_topology=False,
    params_class=RandomSparseParams, default_lr=1e-2, builder=_masked_builder(StaticRandomSparse),
    color="#9aa0ab", color_light="#7f7f7f", symbol="x",
    description="A random mask with the budget, fixed at initialisation (the floor)."))
register_model(ModelSpec(
    "rigl", "RigL", "RigL", "baseline", uses_k=True, trains_topology=True, params_class=RigLParams,
    default_lr=3e-2, builder=_masked_builder(RigL, "RigLMLP"), color="#5cd17a", supports_hidden=True, color_light="#2ca02c", symbol="t1",
    description="Drop by magnitude, grow by gradient (Evci et al.), constant fan-in."))
register_model(ModelSpec(
    "set", "SET", "SET", "baseline", uses_k=True, trains_topology=True, params_class=SETParams, default_lr=0.3,
    builder=_masked_builder(SET), color="#b99cff", color_light="#9467bd", symbol="t",
    description="Sparse evolutionary training: drop the weakest, regrow at random (Mocanu et al.)."))
