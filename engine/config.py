"""The run configuration: everything that determines a training run, validated, and serialisable to JSON."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace

from .physics import DeviceParams

#: Model names, as used by the CLI, the app and the result files.
RF_MODELS = ("rf", "rf-input", "rf-frozen")
BASELINE_MODELS = ("dense", "prune", "random", "rigl", "set")
MODELS = (*RF_MODELS, *BASELINE_MODELS)
MODEL_LABELS = {
    "rf": "RF (trained topology)",
    "rf-input": "RF + trained input frequencies",
    "rf-frozen": "RF, frozen topology (ablation)",
    "dense": "Dense perceptron",
    "prune": "Gradual magnitude pruning",
    "random": "Static random sparse",
    "rigl": "RigL",
    "set": "SET",
}
BUDGETS = ("per-output", "global")
#: Largest accepted learning rate (larger ones overflow inside the optimizer instead of diverging cleanly).
MAX_LR = 1e3


@dataclass(frozen=True)
class PlasticityParams:
    """Schedule of structural plasticity (resonator jumps) for the RF models."""

    interval_steps: int = 100
    """Optimizer steps between two rewiring rounds."""
    fraction: float = 0.3
    """Initial fraction of each chain's resonators considered for a jump at a round (cosine-decayed)."""
    end_fraction: float = 0.75
    """Rewiring stops after this fraction of the total training steps."""


@dataclass(frozen=True)
class RunConfig:
    """One training run. ``resonators_per_chain`` (K) sets the budget: K*C weights for the sparse baselines."""

    model: str = "rf"
    resonators_per_chain: int = 10
    dataset: str = "mnist-mini"
    data_dir: str | None = None
    epochs: int = 10
    batch_size: int = 100
    lr: float | None = None
    """Learning rate; None uses the model's tuned default (see engine.models.default_lr)."""
    seed: int = 0
    budget: str = "per-output"
    """Sparse baselines: 'per-output' (K weights per class, like a chain) or 'global' (top K*C overall)."""
    validation_fraction: float = 0.0
    """If > 0, hold out this fraction of the training set and report accuracy on it instead of the test set."""
    device: DeviceParams = field(default_factory=DeviceParams)
    plasticity: PlasticityParams = field(default_factory=PlasticityParams)

    def __post_init__(self) -> None:
        problems = []
        if self.model not in MODELS:
            problems.append(f"unknown model {self.model!r} (choose one of: {', '.join(MODELS)})")
        if not isinstance(self.resonators_per_chain, int) or self.resonators_per_chain < 1:
            problems.append(f"resonators per chain must be a whole number >= 1 (got {self.resonators_per_chain})")
        if self.epochs < 1:
            problems.append(f"epochs must be >= 1 (got {self.epochs})")
        if self.batch_size < 1:
            problems.append(f"batch size must be >= 1 (got {self.batch_size})")
        if self.lr is not None and not 0 < self.lr <= MAX_LR:
            problems.append(f"learning rate must be > 0 and at most {MAX_LR:g} (got {self.lr})")
        if self.budget not in BUDGETS:
            problems.append(f"budget must be one of {BUDGETS} (got {self.budget!r})")
        if not 0.0 <= self.validation_fraction < 1.0:
            problems.append(f"validation fraction must be in [0, 1) (got {self.validation_fraction})")
        if problems:
            raise ValueError("; ".join(problems))

    def with_(self, **changes) -> "RunConfig":
        return replace(self, **changes)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        d = dict(d)
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown run setting(s): {', '.join(sorted(unknown))}")
        if isinstance(d.get("device"), dict):
            d["device"] = DeviceParams.from_dict(d["device"])
        if isinstance(d.get("plasticity"), dict):
            d["plasticity"] = PlasticityParams(**d["plasticity"])
        return cls(**d)


def remaining_synapses_pct(k: int, n_inputs: int = 784) -> float:
    """Percentage of the dense perceptron's synapses that K resonators per chain correspond to."""
    return 100.0 * k / n_inputs


def removed_synapses_pct(k: int, n_inputs: int = 784) -> float:
    """Percentage of synapses removed, 100 (1 - K/N), the x axis of the reference figure."""
    return 100.0 * (1.0 - k / n_inputs)


def k_from_removed_pct(pct: float, n_inputs: int = 784) -> int:
    """The resonators-per-chain count closest to a sparsity (percentage removed), clamped to 1..N."""
    if not 0.0 <= pct <= 100.0:
        raise ValueError(f"sparsity must be a percentage between 0 and 100 (got {pct})")
    return int(min(n_inputs, max(1, round(n_inputs * (1.0 - pct / 100.0)))))
