"""The built-in models: one ``register_model(ModelSpec(...))`` call per model, with the builder that makes it.

Importing this module registers them (in this order: the RF family, then the baselines) into the leaf
registry, engine.nets.registry; engine.config.run_config imports it, so every run configuration knows them. Adding a
model
means writing one module (the model and its params dataclass) and one registration, here or in a module of
its own that engine.config.run_config imports.

Default learning rates were tuned on a 10 % validation split of the full MNIST training set at K = 10,
10 epochs, never on the test set (benchmarks/tune_baselines.py, benchmarks/tune_rf.py). RF learning rates are
in comb units (input spacings) per step (Adam).
"""

from __future__ import annotations

from typing import Optional

from engine.nets.baselines.dense import DenseParams, DensePerceptron
from engine.nets.baselines.mlp import DenseMLP, PrunedMLP, RigLMLP
from engine.nets.baselines.prune import GradualMagnitudePruning, PruneParams
from engine.nets.baselines.random_sparse import RandomSparseParams, StaticRandomSparse
from engine.nets.baselines.rigl import RigL, RigLParams
from engine.nets.baselines.set import SET, SETParams
from engine.nets.multilayer import RFNetwork
from engine.nets.registry import Builder, ModelSpec, register_model
from engine.nets.rf_perceptron import RFParams, RFPerceptron


def _rf_builder(train_inputs: bool, plastic: bool) -> Builder:
    def build(cfg, n_inputs, n_classes, generator):
        if cfg.hidden:
            return RFNetwork(
                n_inputs,
                n_classes,
                cfg.hidden,
                cfg.layer_ks,
                device=cfg.device,
                params=cfg.model_params,
                plasticity=cfg.plasticity if plastic else None,
                train_inputs=train_inputs,
                generator=generator,
            )
        return RFPerceptron(
            n_inputs,
            n_classes,
            cfg.resonators_per_chain,
            device=cfg.device,
            params=cfg.model_params,
            plasticity=cfg.plasticity if plastic else None,
            train_inputs=train_inputs,
            generator=generator,
        )

    return build


def _masked_builder(cls, mlp_class: Optional[type] = None) -> Builder:
    """Builder of a sparse baseline; ``mlp_class``: its multilayer version (None: it has none)."""

    def build(cfg, n_inputs, n_classes, generator):
        if cfg.hidden:
            return mlp_class(
                n_inputs, n_classes, cfg.hidden, cfg.layer_ks, cfg.budget, params=cfg.model_params, generator=generator
            )
        return cls(
            n_inputs, n_classes, cfg.resonators_per_chain, cfg.budget, params=cfg.model_params, generator=generator
        )

    return build


def _dense_builder(cfg, n_inputs, n_classes, generator):
    if cfg.hidden:
        return DenseMLP(n_inputs, n_classes, cfg.hidden, params=cfg.model_params, generator=generator)
    return DensePerceptron(n_inputs, n_classes, params=cfg.model_params, generator=generator)


register_model(
    ModelSpec(
        "rf",
        "RF (trained topology)",
        "RF",
        "rf",
        uses_k=True,
        trains_topology=True,
        params_class=RFParams,
        default_lr=0.2,
        builder=_rf_builder(train_inputs=False, plastic=True),
        supports_hidden=True,
        description="RF network: resonance frequencies trained by gradient, topology by structural plasticity.",
    )
)
register_model(
    ModelSpec(
        "rf-input",
        "RF + trained input frequencies",
        "RF + input freq.",
        "rf",
        uses_k=True,
        trains_topology=True,
        params_class=RFParams,
        default_lr=0.2,
        builder=_rf_builder(train_inputs=True, plastic=True),
        supports_hidden=True,
        description="RF network whose input-oscillator frequencies are trained too, by gradient and by jumps.",
    )
)
register_model(
    ModelSpec(
        "rf-frozen",
        "RF, frozen topology (ablation)",
        "RF frozen topology",
        "rf",
        uses_k=True,
        trains_topology=False,
        params_class=RFParams,
        default_lr=0.2,
        builder=_rf_builder(train_inputs=False, plastic=False),
        supports_hidden=True,
        description="RF network trained by gradient only: resonators never jump (the ablation).",
    )
)
register_model(
    ModelSpec(
        "dense",
        "Dense perceptron",
        "Dense",
        "baseline",
        uses_k=False,
        trains_topology=False,
        params_class=DenseParams,
        default_lr=3e-3,
        builder=_dense_builder,
        supports_hidden=True,
        description="Softmax-linear classifier with every weight.",
    )
)
register_model(
    ModelSpec(
        "prune",
        "Gradual magnitude pruning",
        "Magnitude pruning",
        "baseline",
        uses_k=True,
        trains_topology=True,
        params_class=PruneParams,
        default_lr=0.1,
        builder=_masked_builder(GradualMagnitudePruning, PrunedMLP),
        supports_hidden=True,
        description="Dense start, pruned by magnitude down to the budget (Zhu & Gupta).",
    )
)
register_model(
    ModelSpec(
        "random",
        "Static random sparse",
        "Random sparse",
        "baseline",
        uses_k=True,
        trains_topology=False,
        params_class=RandomSparseParams,
        default_lr=1e-2,
        builder=_masked_builder(StaticRandomSparse),
        description="A random mask with the budget, fixed at initialisation (the floor).",
    )
)
register_model(
    ModelSpec(
        "rigl",
        "RigL",
        "RigL",
        "baseline",
        uses_k=True,
        trains_topology=True,
        params_class=RigLParams,
        default_lr=3e-2,
        builder=_masked_builder(RigL, RigLMLP),
        supports_hidden=True,
        description="Drop by magnitude, grow by gradient (Evci et al.), constant fan-in.",
    )
)
register_model(
    ModelSpec(
        "set",
        "SET",
        "SET",
        "baseline",
        uses_k=True,
        trains_topology=True,
        params_class=SETParams,
        default_lr=0.3,
        builder=_masked_builder(SET),
        description="Sparse evolutionary training: drop the weakest, regrow at random (Mocanu et al.).",
    )
)
