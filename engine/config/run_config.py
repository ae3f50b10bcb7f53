"""The run configuration: every setting of a training run in one typed tree, validated, recorded with results.

The tree (``RunConfig`` at the root)::

    model, resonators_per_chain, dataset, data_dir, epochs, batch_size, lr, lr_schedule, seed, budget,
    validation_fraction
    device       DeviceParams      the physics of the RF network (engine.physics.resonators)
    plasticity   PlasticityParams  structural plasticity of the RF models (engine.plasticity.params, re-exported
                                   here)
    model_params the model's own parameters: the dataclass its registry entry names (engine.nets.registry), e.g.
                 RFParams for rf / rf-input / rf-frozen, RigLParams for rigl

It is read from TOML (:func:`load_toml`), overridden field by field with ``path.to.field=value``
(:func:`apply_overrides`), and written into every result and export as ``RunConfig.to_dict()``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Optional

import tomllib

from engine.core.compute import COMPUTE_DEVICES
from engine.core.enums import Budget, HardwareRegime, LrSchedule, set_mode, values
from engine.core.settings_tree import SettingError, field_type_at, from_mapping, parse_text, set_path, to_mapping
from engine.nets import builtin as builtin_models  # noqa: F401 - registers the built-in models, so every config knows them
from engine.nets.registry import ModelSpec, get_spec, multilayer_models
from engine.physics.resonators import DeviceParams
from engine.plasticity.params import PlasticityParams

BUDGETS = values(Budget)
#: Largest accepted learning rate (larger ones overflow inside the optimizer instead of diverging cleanly).
MAX_LR = 1e3


@dataclass(frozen=True)
class RunConfig:
    """One training run. ``resonators_per_chain`` (K) sets the budget: K*C weights for the sparse baselines."""

    model: str = "rf"
    """Registered model name (see ``rfexplorer-cli models`` or engine.config.models.list_models())."""
    resonators_per_chain: int = 10
    """K: resonators per chain, i.e. weights per class for the sparse baselines (ignored by dense)."""
    dataset: str = "mnist-mini"
    """A registered dataset name or the path of a dataset file (.npz, .csv, .h5)."""
    data_dir: Optional[str] = None
    """Folder holding datasets in torchvision's layout (None: $RFEXPLORER_DATA, then the per-user folder)."""
    epochs: int = 10
    """Training epochs."""
    batch_size: int = 100
    """Samples per optimizer step."""
    lr: Optional[float] = None
    """Learning rate; None uses the model's tuned default (its registry entry). RF: comb units per step."""
    lr_schedule: LrSchedule = LrSchedule.COSINE
    """Learning-rate schedule over the run: 'cosine' (decay to 0) or 'constant'."""
    seed: int = 0
    """Seed of the run's own random generators (initialisation, shuffling, plasticity samples, noise)."""
    budget: Budget = Budget.PER_OUTPUT
    """Sparse baselines: 'per-output' (K weights per class, like a chain) or 'global' (top K*C overall)."""
    validation_fraction: float = 0.0
    """If > 0, hold out this fraction of the training set and report accuracy on it instead of the test set."""
    compute_device: str = "cpu"
    """Where tensors live: 'cpu', 'cuda' (a GPU; exits with a message if there is none) or 'auto' (the GPU
    when torch sees one). Seeds give the same draws on every device; float sums differ between devices."""
    device: DeviceParams = field(default_factory=DeviceParams)
    """Physics of the RF network (engine.physics.resonators.DeviceParams)."""
    hardware: HardwareRegime = HardwareRegime.IN_SITU
    """How RF training meets the device spreads and noise of ``device`` (docs/physics.md, hardware realism):
    'ideal' (train the nominal device, deploy to a chip it never saw), 'aware' (a fresh chip and noise drawn
    at every batch) or 'in-situ' (train on the one chip it is evaluated on). Identical without spreads and
    noise."""
    plasticity: PlasticityParams = field(default_factory=PlasticityParams)
    """Structural plasticity of the RF models."""
    model_params: Any = None
    """The model's own parameters (the params class of its registry entry); None means its defaults."""
    hidden: tuple[int, ...] = ()
    """Sizes of the hidden layers, first to last (chains of STNO neurons for RF, ReLU units for baselines);
    empty: a single-layer network."""
    layer_resonators: tuple[int, ...] = ()
    """K of each layer after the first (one value per hidden layer); empty: every layer uses
    resonators_per_chain (capped at the layer's input count)."""

    def __post_init__(self) -> None:
        problems = []
        spec = None
        try:
            spec = get_spec(self.model)
        except ValueError as exc:
            problems.append(str(exc))
        if spec is not None:
            if self.model_params is None:
                object.__setattr__(self, "model_params", spec.params_class())
            elif not isinstance(self.model_params, spec.params_class):
                problems.append(
                    f"model_params of model {self.model!r} must be {spec.params_class.__name__} "
                    f"(got {type(self.model_params).__name__})"
                )
        if (
            isinstance(self.resonators_per_chain, bool)
            or not isinstance(self.resonators_per_chain, int)
            or self.resonators_per_chain < 1
        ):
            problems.append(f"resonators per chain must be a whole number >= 1 (got {self.resonators_per_chain})")
        if self.epochs < 1:
            problems.append(f"epochs must be >= 1 (got {self.epochs})")
        if self.batch_size < 1:
            problems.append(f"batch size must be >= 1 (got {self.batch_size})")
        if self.lr is not None and not 0 < self.lr <= MAX_LR:
            problems.append(f"learning rate must be > 0 and at most {MAX_LR:g} (got {self.lr})")
        if not set_mode(self, "lr_schedule", LrSchedule):
            problems.append(f"lr_schedule must be one of {', '.join(LrSchedule)} (got {self.lr_schedule!r})")
        if self.seed < 0:
            problems.append(f"seed must be >= 0 (got {self.seed})")
        if not set_mode(self, "budget", Budget):
            problems.append(f"budget must be one of {', '.join(Budget)} (got {self.budget!r})")
        if not set_mode(self, "hardware", HardwareRegime):
            problems.append(f"hardware must be one of {', '.join(HardwareRegime)} (got {self.hardware!r})")
        if self.compute_device not in COMPUTE_DEVICES:
            problems.append(f"compute_device must be one of {', '.join(COMPUTE_DEVICES)} (got {self.compute_device!r})")
        problems += self._layer_problems(spec)
        if not 0.0 <= self.validation_fraction < 1.0:
            problems.append(f"validation fraction must be in [0, 1) (got {self.validation_fraction})")
        if problems:
            raise ValueError("; ".join(problems))

    def _layer_problems(self, spec) -> list[str]:
        problems = []
        if any(isinstance(h, bool) or not isinstance(h, int) or h < 1 for h in self.hidden):
            problems.append(f"hidden layer sizes must be whole numbers >= 1 (got {list(self.hidden)})")
            return problems
        if self.hidden and spec is not None and not spec.supports_hidden:
            problems.append(
                f"model {self.model!r} has no multilayer version (hidden layers work with "
                f"{', '.join(multilayer_models())})"
            )
        if len(self.layer_resonators) > len(self.hidden):
            problems.append(
                f"got {len(self.layer_resonators) + 1} K values for a network of {len(self.hidden) + 1} layer(s)"
            )
        elif self.layer_resonators and len(self.layer_resonators) != len(self.hidden):
            problems.append(
                f"give one K for every layer ({len(self.hidden) + 1}) or one for all "
                f"(got {len(self.layer_resonators) + 1})"
            )
        else:
            for layer, (k, fan_in) in enumerate(zip(self.layer_resonators, self.hidden), start=2):
                if isinstance(k, bool) or not isinstance(k, int) or k < 1:
                    problems.append(f"K of layer {layer} must be a whole number >= 1 (got {k})")
                elif k > fan_in:
                    problems.append(f"K of layer {layer} is {k}, more than its {fan_in} inputs")
        return problems

    # --- tree operations ---------------------------------------------------------------------------------
    @property
    def layer_ks(self) -> tuple[int, ...]:
        """K of every layer, first to last: resonators per chain (RF) or weights per neuron (baselines)."""
        if self.layer_resonators:
            return (self.resonators_per_chain, *self.layer_resonators)
        return (self.resonators_per_chain,) + tuple(min(self.resonators_per_chain, h) for h in self.hidden)

    @property
    def is_multilayer(self) -> bool:
        return bool(self.hidden)

    @property
    def spec(self) -> ModelSpec:
        """The model's registry entry (engine.nets.registry.ModelSpec)."""
        return get_spec(self.model)

    def with_(self, **changes) -> "RunConfig":
        """A copy with fields replaced; changing ``model`` resets ``model_params`` unless it is given too."""
        if "model" in changes and "model_params" not in changes and changes["model"] != self.model:
            changes["model_params"] = None
        return replace(self, **changes)

    def resolved(self) -> "RunConfig":
        """The same run with every default made explicit (the learning rate), as recorded with results."""
        return self if self.lr is not None else replace(self, lr=self.spec.default_lr)

    @property
    def effective_lr(self) -> float:
        return self.lr if self.lr is not None else self.spec.default_lr

    def to_dict(self) -> dict:
        return to_mapping(self)

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        """A config from a nested mapping (JSON, TOML, a result file). Version-1 files (no model_params, fewer
        plasticity fields) load too: missing settings keep their defaults."""
        return from_mapping(cls, d)

    @staticmethod
    def _resolve_field(name: str, value: Any, mapping: dict, key: str) -> Any:
        """model_params is typed by the model's registry entry."""
        if name != "model_params" or value is None or not isinstance(value, dict):
            return value
        try:
            params_class = get_spec(mapping.get("model", RunConfig.model)).params_class
        except ValueError as exc:
            raise SettingError(str(exc)) from None
        return from_mapping(params_class, value, prefix=key + ".")


# ---------------------------------------------------------------------------------------------------------
# TOML files and --set overrides
# ---------------------------------------------------------------------------------------------------------


def load_toml(path: str | Path) -> dict:
    """The mapping of a TOML settings file (one sentence on a missing or malformed file)."""
    p = Path(path)
    try:
        with p.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise SettingError(f"the settings file {p} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingError(f"the settings file {p} is not valid TOML ({exc})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingError(f"the settings file {p} cannot be read ({exc})") from None


def _model_params_type(cls: type, name: str, model: str) -> Optional[type]:
    if cls is RunConfig and name == "model_params":
        return get_spec(model).params_class
    return None


def parse_override(text: str, model: str) -> tuple[str, Any]:
    """``'path.to.field=value'`` -> (path, typed value) for a run of ``model`` (SettingError naming the key)."""
    path, sep, value = text.partition("=")
    path = path.strip()
    if not sep or not path:
        raise SettingError(f"an override must look like path.to.field=value (got {text!r})")
    tp = field_type_at(RunConfig, path, resolve=lambda cls, name: _model_params_type(cls, name, model))
    return path, parse_text(value, tp, path)


def apply_overrides(base: dict, overrides: Iterable[str]) -> dict:
    """``base`` (a nested mapping) with each ``path=value`` override applied, typed from the field it names."""
    out = dict(base)
    for text in overrides:
        path, value = parse_override(text, out.get("model", RunConfig.model))
        out = set_path(out, path, value)
    return out


def build_config(
    toml_path: Optional[str | Path] = None, overrides: Iterable[str] = (), base: Optional[dict] = None
) -> RunConfig:
    """The RunConfig of a TOML file (if any), then ``base`` changes, then ``--set`` overrides, validated."""
    mapping: dict = load_toml(toml_path) if toml_path else {}
    if base:
        for key, value in base.items():
            mapping = set_path(mapping, key, value) if "." in key else {**mapping, key: value}
    mapping = apply_overrides(mapping, overrides)
    return RunConfig.from_dict(mapping)


# ---------------------------------------------------------------------------------------------------------
# Sparsity <-> K
# ---------------------------------------------------------------------------------------------------------


def remaining_synapses_pct(k: int, n_inputs: int) -> float:
    """Percentage of the dense perceptron's synapses that K resonators per chain correspond to."""
    return 100.0 * k / n_inputs


def removed_synapses_pct(k: int, n_inputs: int) -> float:
    """Percentage of synapses removed, 100 (1 - K/N), the x axis of the reference figure."""
    return 100.0 * (1.0 - k / n_inputs)


def k_from_removed_pct(pct: float, n_inputs: int) -> int:
    """The resonators-per-chain count closest to a sparsity (percentage removed), clamped to 1..N."""
    if not 0.0 <= pct <= 100.0:
        raise ValueError(f"sparsity must be a percentage between 0 and 100 (got {pct})")
    return int(min(n_inputs, max(1, round(n_inputs * (1.0 - pct / 100.0)))))
