"""Recommended training settings per dataset and model group: epochs, batch size and learning rate.

A bare ``RunConfig`` trains 10 epochs of batches of 100 with the model's registry learning rate: the MNIST
reference. That is too short for small sets: on the 702 drone spectra it makes 80 steps. The CLI's ``train`` /
``export`` and the app fill in the settings below for every field the user did not set (engine.cli, the app's
control panel); library calls and sweeps keep exactly what they are given.

Every value was chosen on validation splits of the training set, never on the test set; the comment next to
each entry says where. Groups follow the model registry (engine.config.models): ``rf`` (the RF family), ``sparse``
(software baselines that use K) and ``dense`` (baselines that use every weight). A learning rate of None
means the model's own registry default (tuned on MNIST); ``model_lr`` overrides it for single models.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterable, Optional

from engine.data import DATASET_NAMES

if TYPE_CHECKING:  # pragma: no cover
    from engine.config.run_config import RunConfig

#: The settings a recommendation fills in (RunConfig field names).
TUNED_FIELDS = ("epochs", "batch_size", "lr")
GROUPS = ("rf", "sparse", "dense")


@dataclass(frozen=True)
class Recommendation:
    """Training settings for one dataset and model group."""

    epochs: int
    """Training epochs."""
    batch_size: int
    """Samples per optimizer step."""
    lr: Optional[float] = None
    """Learning rate of the whole group; None: each model's registry default."""
    model_lr: dict = field(default_factory=dict)
    """Learning rates of single models of the group ({model name: lr}), over ``lr``."""
    source: str = ""
    """Where the values were chosen (a benchmark script or preset)."""

    def lr_for(self, model: str) -> Optional[float]:
        return self.model_lr.get(model, self.lr)


# MNIST-sized sets (60,000 training images): the reference run, RunConfig's defaults; registry learning rates
# tuned on a 10 % validation split of MNIST at K = 10, 10 epochs (benchmarks/tune_rf.py, tune_baselines.py).
_MNIST = Recommendation(
    10,
    100,
    source="RunConfig defaults: the MNIST reference (benchmarks/tune_rf.py, "
    "benchmarks/tune_baselines.py on a validation split)",
)
# Fashion-MNIST and KMNIST have MNIST's size and shape and were not tuned separately: MNIST's settings.
_MNIST_LIKE = Recommendation(10, 100, source="MNIST's settings (same size and shape; not tuned separately)")
# The embedded 6,000-image subset: 15 epochs of 100 (900 steps; also the app's first-run length). Mean
# validation accuracy on a 10 % split, K = 10, seeds 0-2, at 10 / 15 / 20 epochs: rf 82.3 / 83.6 / 85.2,
# rf-input 87.8 / 88.9 / 88.2, rigl 73.6 / 74.8 / 73.6, dense 91.1 / 91.4 / 91.5 (600 validation images: one
# image is 0.17 point). 15 is the best or within noise of it for every group. Reproduce with
# ``benchmarks/tune_rf.py --dataset mnist-mini --seeds 0,1,2 set epochs=10 set epochs=15 set epochs=20``.
_MINI = Recommendation(15, 100, source="validation split of mnist-mini (benchmarks/tune_rf.py, epochs 10/15/20)")
# Drones (702 training spectra): 120 epochs of batches of 20 (4,320 steps). RF: lr 0.1 chosen by
# benchmarks/tune_drones.py on 20 % validation splits (grid lr 0.1/0.2/0.4 x 60/120 epochs); software
# networks: benchmarks/tune_mlp.py on validation splits (dense 1e-2, pruning 0.3, RigL 3e-2), as in the
# multilayer sweep's drones preset (engine.experiments.sweep.runner.SweepSpec.multilayer). Random sparse and SET were
# not tuned
# on drones: their registry learning rates.
_DRONES_SOURCE = (
    "benchmarks/tune_drones.py (RF), benchmarks/tune_mlp.py (software) on validation splits; "
    "engine.experiments.sweep.runner.SweepSpec.multilayer('drones')"
)
_DRONES = {
    "rf": Recommendation(120, 20, lr=0.1, source=_DRONES_SOURCE),
    "sparse": Recommendation(120, 20, model_lr={"prune": 0.3, "rigl": 3e-2}, source=_DRONES_SOURCE),
    "dense": Recommendation(120, 20, lr=1e-2, source=_DRONES_SOURCE),
}

RECOMMENDED: dict[str, dict[str, Recommendation]] = {
    "mnist-mini": {g: _MINI for g in GROUPS},
    "mnist": {g: _MNIST for g in GROUPS},
    "fashion-mnist": {g: _MNIST_LIKE for g in GROUPS},
    "kmnist": {g: _MNIST_LIKE for g in GROUPS},
    "drones": _DRONES,
}
assert set(RECOMMENDED) == set(DATASET_NAMES), "every named dataset needs recommended settings"


def model_group(model: str) -> str:
    """The recommendation group of a registered model: 'rf', 'sparse' or 'dense'."""
    from engine.config.models import get_spec

    spec = get_spec(model)
    return "rf" if spec.is_rf else ("sparse" if spec.uses_k else "dense")


def recommendation(dataset: str, model: str) -> Optional[Recommendation]:
    """The recommended settings of ``model`` on a named dataset; None for a dataset file (RunConfig defaults)."""
    table = RECOMMENDED.get(dataset)
    return None if table is None else table[model_group(model)]


def recommended_values(dataset: str, model: str) -> dict:
    """{field: value} of the recommendation (the learning rate resolved to the registry's when it has none)."""
    rec = recommendation(dataset, model)
    if rec is None:
        return {}
    from engine.config.models import default_lr

    lr = rec.lr_for(model)
    return {"epochs": rec.epochs, "batch_size": rec.batch_size, "lr": default_lr(model) if lr is None else lr}


def fill_recommended(mapping: dict, explicit: Iterable[str] = ()) -> tuple[dict, dict]:
    """``mapping`` (a RunConfig tree) with each tuned field it lacks set from its dataset's recommendation.

    Fields present in ``mapping`` or named in ``explicit`` (set by the user some other way) are kept. Returns the
    new mapping and the record of what was filled in: ``{"dataset", "group", "applied": {field: value},
    "source"}``, or ``{}`` when the dataset has no recommendation.
    """
    from engine.config.run_config import RunConfig

    model, dataset = mapping.get("model", RunConfig.model), mapping.get("dataset", RunConfig.dataset)
    values = recommended_values(str(dataset), model)
    rec = recommendation(str(dataset), model)
    if not values or rec is None:  # no values exactly when no recommendation
        return dict(mapping), {}
    keep = set(explicit) | {f for f in TUNED_FIELDS if mapping.get(f) is not None}
    applied = {f: v for f, v in values.items() if f not in keep}
    return {**mapping, **applied}, {
        "dataset": dataset,
        "group": model_group(model),
        "applied": applied,
        "source": rec.source,
    }


def describe_applied(record: dict) -> str:
    """One line on the settings a recommendation filled in ('' when none)."""
    applied = record.get("applied") if record else None
    if not applied:
        return ""
    names = {"epochs": "{} epochs", "batch_size": "batches of {}", "lr": "learning rate {:g}"}
    parts = ", ".join(names[f].format(v) for f, v in applied.items())
    return f"recommended settings for {record['group']} models on {record['dataset']}: {parts}"


def plasticity_note(cfg: "RunConfig", n_train: int) -> str:
    """One line when ``cfg`` trains a rewiring RF model whose topology will never change ('' otherwise)."""
    from engine.plasticity.rounds import rewiring_rounds
    from engine.training.loop import planned_steps

    spec = cfg.spec
    if not (spec.is_rf and spec.trains_topology):
        return ""
    if cfg.plasticity.interval_steps <= 0:
        return f"note: plasticity.interval_steps is 0, so {cfg.model} never rewires (its topology stays as initialised)"
    steps = planned_steps(cfg, n_train)
    if rewiring_rounds(cfg.plasticity, steps) == 0:
        return (
            f"note: {steps} optimizer step(s) end before the first rewiring round, so {cfg.model} never "
            f"rewires; train longer or with smaller batches"
        )
    return ""
