"""Hardware realism around the RF chain layers: training regimes and robustness of trained networks.

The physics of each knob (tuning range and resolution, fabrication spread and calibration, cycle-to-cycle
noise) lives in engine.physics.resonators and is applied by engine.layers.chain.RFChainLayer; this module only reaches
every chain layer of a model:

- :func:`set_regime` tells every layer which training regime (``RunConfig.hardware``) the run uses;
- :func:`robustness` evaluates a trained network on fresh chips and noise draws while one device setting
  (a *knob*) takes several values, with the same seeds at every value (common random numbers).

See docs/physics.md, "Hardware realism".
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence, cast

import torch

from engine.core.enums import HardwareRegime, member_of
from engine.core.metrics import accuracy
from engine.core.settings_tree import field_types, parse_text
from engine.core.stats import mean_std
from engine.layers.chain import RFChainLayer
from engine.physics.resonators import DeviceParams

if TYPE_CHECKING:
    from engine.nets.multilayer import RFNetwork
    from engine.nets.rf_perceptron import RFPerceptron

#: Device settings a robustness study may vary on a trained network (the band, plan, parity, tuning range and
#: lineshape define the network itself and stay as trained).
ROBUSTNESS_KNOBS = (
    "freq_spread",
    "calibrated",
    "tuning_bits",
    "freq_jitter_lw",
    "power_noise",
    "readout_noise_v",
    "alpha_dtod",
    "k_sd_dtod",
)


def chain_layers(model: torch.nn.Module) -> list[RFChainLayer]:
    """Every RF chain layer of ``model``, first to last (empty for a software baseline)."""
    return [m for m in model.modules() if isinstance(m, RFChainLayer)]


def set_regime(model: torch.nn.Module, regime: HardwareRegime | str) -> None:
    """Use training regime ``regime`` (a HardwareRegime or its name) in every chain layer of ``model``."""
    found = member_of(HardwareRegime, regime)
    if found is None:
        raise ValueError(f"hardware must be one of {', '.join(HardwareRegime)} (got {regime!r})")
    for layer in chain_layers(model):
        layer.regime = found
        layer._train_chip = None


def knob_type(knob: str) -> Any:
    """The declared type of a robustness knob (a DeviceParams field); ValueError for an unknown knob."""
    if knob.startswith("device."):
        knob = knob[len("device.") :]
    if knob not in ROBUSTNESS_KNOBS:
        raise ValueError(f"unknown robustness knob {knob!r} (choose from {', '.join(ROBUSTNESS_KNOBS)})")
    return field_types(DeviceParams)[knob]


def parse_knob_values(knob: str, text: str) -> list:
    """``'v1,v2,...'`` -> typed values of ``knob`` (each checked by DeviceParams; ValueError in one sentence)."""
    name = knob[len("device.") :] if knob.startswith("device.") else knob
    tp = knob_type(name)
    values = [parse_text(part, tp, f"device.{name}") for part in text.replace(",", " ").split()]
    if not values:
        raise ValueError(f"--values needs at least one value of device.{name}")
    for v in values:
        dataclasses.replace(DeviceParams(), **{name: v})  # raises ValueError for a bad value
    return values


def _set_device(model: RFPerceptron | RFNetwork, params: DeviceParams, generator: torch.Generator) -> None:
    """Give every chain layer ``params`` and a fresh chip drawn from ``generator`` (layer by layer)."""
    model.params = params
    for layer in chain_layers(model):
        layer.set_device(params, generator)


def robustness(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    knob: str,
    values: Sequence[Any],
    repeats: int,
    *,
    seed: int = 0,
    on_eval: Optional[Callable[[Any, int, float], None]] = None,
    fixed: Optional[dict] = None,
) -> list[dict]:
    """Accuracy of a trained RF ``model`` on (x, y) for each value of device setting ``knob``: ``repeats``
    evaluations per value, evaluation r on a fresh chip and noise drawn from a generator seeded with
    ``seed + r`` (the same draws at every value). Returns one row per value: knob, value, mean, std (sample
    std, 0 for one repeat), n, accuracies. ``fixed`` ({DeviceParams field: value}) changes other device settings
    at every value, e.g. ``{"calibrated": False}`` for a spread study of uncalibrated chips. The model is left as
    it was (device settings and chip)."""
    layers = chain_layers(model)
    if not layers:
        raise ValueError("a robustness study needs an RF network (this model has no resonator chains)")
    name = knob[len("device.") :] if knob.startswith("device.") else knob
    knob_type(name)
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1 (got {repeats})")
    rf = cast("RFPerceptron | RFNetwork", model)  # only RF models have chain layers (checked above)
    base: DeviceParams = rf.params
    nominal = dataclasses.replace(base, **dict(fixed)) if fixed else base
    saved = [(layer.params, layer.own_chip) for layer in layers]
    saved_state = rf.generator.get_state()
    was_training = model.training
    model.eval()
    rows = []
    try:
        for value in values:
            params = dataclasses.replace(nominal, **{name: value})
            accs = []
            for r in range(repeats):
                rf.generator.manual_seed(int(seed) + r)  # chips first, then the read-out noise
                _set_device(rf, params, rf.generator)
                acc = accuracy(model, x, y)
                accs.append(acc)
                if on_eval is not None:
                    on_eval(value, r, acc)
            mean, std = mean_std(accs)
            rows.append({"knob": name, "value": value, "mean": mean, "std": std, "n": len(accs), "accuracies": accs})
    finally:
        rf.params = base
        for layer, (params, chip) in zip(layers, saved):
            layer.params = params
            layer.set_chip(chip)
        rf.generator.set_state(saved_state)
        model.train(was_training)
    return rows


__all__ = ["ROBUSTNESS_KNOBS", "chain_layers", "knob_type", "parse_knob_values", "robustness", "set_regime"]
