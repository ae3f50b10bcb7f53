"""What a sweep runs: :class:`SweepSpec` (models x K x seeds x variants), its presets and its job list.

The presets are the reference sweep (:meth:`SweepSpec.quick`, :meth:`SweepSpec.full`) and the multilayer
comparison (:meth:`SweepSpec.multilayer`); :meth:`SweepSpec.jobs` plans the runs, longest first
(:func:`estimated_cost`), each identified by :func:`settings_key`. :func:`vary_variants` builds the variants
of ``sweep --vary``. Running them is :func:`engine.experiments.sweep.runner.run_sweep`.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field, replace
from typing import Optional, Sequence

from engine.config.models import get_spec, list_models
from engine.config.run_config import RunConfig
from engine.core.files import json_safe
from engine.core.settings_tree import set_path

#: Levels of the reference sweep: K = 1 ... 784 on a roughly logarithmic grid that includes K = 10 (98.72 %
#: removed). `make reproduce` (3 seeds, 10 epochs, 8 models) takes about 6.5 minutes on 2 cores.
DEFAULT_KS = (1, 3, 10, 30, 100, 392, 784)
DEFAULT_SEEDS = (0, 1, 2)
#: Models of the multilayer sweep (SweepSpec.multilayer).
MULTILAYER_MODELS = ("rf-input", "rf", "dense", "prune", "rigl")


@dataclass(frozen=True)
class SweepSpec:
    """What to sweep: models x K x seeds, each run configured as ``base`` with model, K and seed replaced."""

    models: tuple[str, ...] = field(default_factory=lambda: tuple(list_models()))
    ks: tuple[int, ...] = DEFAULT_KS
    seeds: tuple[int, ...] = DEFAULT_SEEDS
    base: RunConfig = field(default_factory=RunConfig)
    """Dataset, data folder, epochs, batch size, learning rate, budget, device and plasticity of every run."""
    workers: int = 1
    """Worker processes (1 = run in the calling thread)."""
    threads_per_worker: int = 1
    """torch threads in each worker process (the in-process path leaves the caller's setting alone)."""
    batch_runs: bool = True
    """Train the single-layer software baselines that differ only in seed and K together, as one batch
    (engine.training.run_batches: the same results, about a quarter of the time); the local backend only."""
    model_settings: dict = field(default_factory=dict)
    """Per model, settings changed on top of ``base`` before the variants (``{model: {dotted.path: value}}``),
    e.g. a learning rate tuned for one model on this dataset."""
    variants: tuple = ({},)
    """Settings changed on top of ``base`` (``{dotted.path: value}``), each swept with every model, K and seed.
    A variant that sets ``resonators_per_chain`` runs at that K only; one with hidden layers skips the models
    that have no multilayer version."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "models", tuple(self.models))
        object.__setattr__(self, "variants", tuple(dict(v) for v in self.variants) or ({},))
        object.__setattr__(self, "model_settings", {m: dict(v) for m, v in dict(self.model_settings).items()})
        object.__setattr__(self, "ks", tuple(sorted(set(int(k) for k in self.ks))))
        object.__setattr__(self, "seeds", tuple(dict.fromkeys(int(s) for s in self.seeds)))
        problems = []
        unknown = [m for m in self.models if m not in list_models()]
        if unknown:
            problems.append(
                f"unknown model(s) {', '.join(map(repr, unknown))} (choose from: {', '.join(list_models())})"
            )
        if len(set(self.models)) != len(self.models):
            problems.append("a model is listed twice")
        if not self.models:
            problems.append("no model to sweep")
        if not self.ks:
            problems.append("no K to sweep")
        bad = [k for k in self.ks if k < 1]
        if bad:
            problems.append(f"resonators per chain must be >= 1 (got {', '.join(map(str, bad))})")
        if not self.seeds:
            problems.append("no seed to sweep")
        if self.workers < 1:
            problems.append(f"workers must be >= 1 (got {self.workers})")
        if self.threads_per_worker < 1:
            problems.append(f"threads per worker must be >= 1 (got {self.threads_per_worker})")
        if not problems:
            for model, settings in self.model_settings.items():
                if model not in self.models:
                    problems.append(f"model_settings names {model!r}, which is not swept")
                    continue
                try:
                    self._apply(self.base.with_(model=model), settings)
                except ValueError as exc:
                    problems.append(f"settings of {model}: {exc}")
            for variant in self.variants:
                try:
                    self._apply(self.base, variant)
                except ValueError as exc:
                    problems.append(f"sweep variant {variant}: {exc}")
        if problems:
            raise ValueError("; ".join(problems))

    @staticmethod
    def _apply(cfg: RunConfig, variant: dict) -> RunConfig:
        """``cfg`` with a variant's settings changed (validated)."""
        if not variant:
            return cfg
        mapping = cfg.to_dict()
        for path, value in variant.items():
            mapping = set_path(mapping, path, value)
        return RunConfig.from_dict(mapping)

    # --- presets -----------------------------------------------------------------------------------------------
    @classmethod
    def quick(cls, **changes) -> "SweepSpec":
        """A few minutes on 2 cores: mnist-mini, K in (1, 10, 100, 784), 3 seeds, 3 epochs."""
        spec = cls(ks=(1, 10, 100, 784), seeds=DEFAULT_SEEDS, base=RunConfig(dataset="mnist-mini", epochs=3))
        return replace(spec, **changes) if changes else spec

    @classmethod
    def full(cls, **changes) -> "SweepSpec":
        """The reference sweep: full MNIST, every K of :data:`DEFAULT_KS`, 3 seeds, 10 epochs.

        About 20 minutes on 2 cores.
        """
        spec = cls(ks=DEFAULT_KS, seeds=DEFAULT_SEEDS, base=RunConfig(dataset="mnist", epochs=10))
        return replace(spec, **changes) if changes else spec

    @classmethod
    def multilayer(cls, dataset: str = "mnist", **changes) -> "SweepSpec":
        """Single-layer against multilayer networks at comparable synapse counts (``make reproduce-multilayer``):
        RF with trained inputs, RF, and the dense, pruned and RigL software networks, 3 seeds.

        MNIST (10 epochs): one layer at K = 10 and 40, and 784-50-10 (K = 20, 50) and 784-100-10 (K = 30, 100),
        i.e. 100, 400, 1,500 and 4,000 resonators. drones (120 epochs, batches of 20, learning rates tuned on
        validation splits): one layer at K = 10, and 256-32-10 (K = 20, 32), i.e. 100 and 960 resonators."""
        settings: dict = {}
        if dataset == "drones":
            base = RunConfig(dataset="drones", epochs=120, batch_size=20)
            variants: tuple[dict[str, object], ...] = (
                {"resonators_per_chain": 10},
                {"hidden": [32], "resonators_per_chain": 20, "layer_resonators": [32]},
            )
            # learning rates chosen on validation splits of the drones training set (benchmarks/tune_drones.py
            # for RF, benchmarks/tune_mlp.py for the software networks)
            settings = {
                "rf-input": {"lr": 0.1},
                "rf": {"lr": 0.1},
                "dense": {"lr": 1e-2},
                "prune": {"lr": 0.3},
                "rigl": {"lr": 3e-2},
            }
        else:
            base = RunConfig(dataset=dataset, epochs=10)
            variants = (
                {"resonators_per_chain": 10},
                {"resonators_per_chain": 40},
                {"hidden": [50], "resonators_per_chain": 20, "layer_resonators": [50]},
                {"hidden": [100], "resonators_per_chain": 30, "layer_resonators": [100]},
            )
        spec = cls(
            models=MULTILAYER_MODELS,
            ks=(10,),
            seeds=DEFAULT_SEEDS,
            base=base,
            variants=variants,
            model_settings=settings,
        )
        return replace(spec, **changes) if changes else spec

    # --- jobs --------------------------------------------------------------------------------------------------
    def jobs(self, n_inputs: Optional[int] = None) -> list[RunConfig]:
        """The run configs, longest first (RF runs cost ~ K). Models that do not use K run once per seed, at
        K = ``n_inputs`` (default: the largest K of the sweep)."""
        configs: dict[str, RunConfig] = {}
        ks: tuple[int, ...]
        for model in self.models:
            spec = get_spec(model)
            for variant in self.variants:
                if variant.get("hidden") and not spec.supports_hidden:
                    continue
                base = self._apply(
                    self._apply(self.base.with_(model=model), self.model_settings.get(model, {})), variant
                )
                if not spec.uses_k:  # one run per seed and layer shape, recorded at K = N
                    ks, extra = (n_inputs or max(self.ks),), {"layer_resonators": ()}
                elif "resonators_per_chain" in variant:
                    ks, extra = (base.resonators_per_chain,), {}
                else:
                    ks, extra = self.ks, {}
                for k in ks:
                    for seed in self.seeds:
                        cfg = base.with_(resonators_per_chain=k, seed=seed, **extra)
                        configs.setdefault(settings_key(cfg), cfg)
        order = {m: i for i, m in enumerate(list_models())}
        return sorted(
            configs.values(),
            key=lambda c: (-estimated_cost(c), order[c.model], c.resonators_per_chain, c.hidden, c.seed),
        )

    def to_dict(self) -> dict:
        return {
            "models": list(self.models),
            "ks": list(self.ks),
            "seeds": list(self.seeds),
            "base": self.base.to_dict(),
            "workers": self.workers,
            "threads_per_worker": self.threads_per_worker,
            "variants": [json_safe(v) for v in self.variants],
            "model_settings": json_safe(self.model_settings),
        }

    @classmethod
    def from_dict(cls, d: dict) -> "SweepSpec":
        d = dict(d)
        if isinstance(d.get("base"), dict):
            d["base"] = RunConfig.from_dict(d["base"])
        return cls(**d)


def estimated_cost(cfg: RunConfig) -> float:
    """Relative run time, for ordering only: an RF step builds a (C, K, N) coupling tensor, so it costs ~ K
    (summed over the layers, in units of a 10-chain layer)."""
    if not cfg.spec.is_rf:
        return (1.0 + sum(cfg.hidden) / 50.0) * cfg.epochs
    outs = (*cfg.hidden, 10)
    per_epoch = 1.0 + sum(k * c / 10.0 for k, c in zip(cfg.layer_ks, outs)) / 5.0
    return per_epoch * cfg.epochs


def canonical_text(value) -> str:
    """Settings as comparable text: JSON-safe, keys sorted (a row read back from JSON compares equal)."""
    return json.dumps(json_safe(value), sort_keys=True, separators=(",", ":"))


def settings_key(cfg: RunConfig) -> str:
    """What identifies a run's settings: its resolved settings tree, canonically serialised."""
    return canonical_text(cfg.resolved().to_dict())


def vary_variants(variants: Sequence[dict], vary: Sequence[tuple[str, Sequence]]) -> tuple[dict, ...]:
    """Every variant of ``variants`` combined with every point of the cross product of ``vary``
    ([(dotted path, values)]): the SweepSpec.variants of ``sweep --vary``."""
    combos = [dict(zip([p for p, _ in vary], point)) for point in itertools.product(*[list(v) for _, v in vary])]
    return tuple({**dict(v), **c} for v in (variants or ({},)) for c in combos)


__all__ = [
    "DEFAULT_KS",
    "DEFAULT_SEEDS",
    "MULTILAYER_MODELS",
    "SweepSpec",
    "estimated_cost",
    "settings_key",
    "vary_variants",
]
