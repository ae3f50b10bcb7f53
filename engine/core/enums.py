"""Every string mode of the engine as a string enum, in one place.

A mode is a setting with a few named values (the training regime, the weight build, the lr schedule, ...).
Each is a :class:`enum.StrEnum`: a member *is* its plain string (``HardwareRegime.IN_SITU == "in-situ"``,
``str(HardwareRegime.IN_SITU) == "in-situ"``, JSON and CSV write ``in-situ``), so settings files, ``--set``
overrides and the app keep giving plain strings; the typed settings normalise them to members in their
``__post_init__`` (:func:`set_mode`) and write them back as plain strings
(:func:`engine.core.settings_tree.to_mapping`). Code compares against members, never against string literals.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, TypeVar

ModeT = TypeVar("ModeT", bound=StrEnum)


class HardwareRegime(StrEnum):
    """How RF training meets the device spreads and noise (``RunConfig.hardware``, docs/physics.md)."""

    IDEAL = "ideal"
    """Train the nominal device (no spreads, no noise); deploy to a chip training never saw."""
    AWARE = "aware"
    """Draw a fresh chip and noise at every training batch."""
    IN_SITU = "in-situ"
    """Train on the one chip the network is evaluated on (offsets known only through the forward pass)."""


class WeightBuild(StrEnum):
    """How an RF chain layer builds its weight matrix (``model_params.weight_build``)."""

    AUTO = "auto"
    """The fastest build that applies, by a cost model: the comb FFT build, the log-frequency grid build, or the
    exact one."""
    EXACT = "exact"
    """Every input-resonator pair (C·N·K work)."""
    FFT = "fft"
    """FFT builds: the comb expansion of engine.layers.fast_weight where inputs sit on their slots, else the
    log-frequency grid of engine.layers.grid_weight (refused only for a damping spread)."""
    COMPILED = "compiled"
    """The exact formula as torch.compile kernels (engine.layers.compiled_weight)."""
    FUSED = "fused"
    """The exact formula as fused CPU loops compiled by numba (engine.layers.fused_weight); 'auto' uses it on
    CPU float32 tensors wherever the exact formula is the cheapest build."""


class InitLayout(StrEnum):
    """Initial resonator layout of an RF chain layer (``model_params.init_layout``)."""

    ALIGNED = "aligned"
    """The chains share K random sites, each resonator jittered around its site."""
    RANDOM = "random"
    """Uniform over the band, independently per chain."""


class LrSchedule(StrEnum):
    """Learning-rate schedule over a run (``RunConfig.lr_schedule``)."""

    COSINE = "cosine"
    """Cosine decay to 0 over the run."""
    CONSTANT = "constant"
    """The same learning rate at every step."""


class Budget(StrEnum):
    """Shape of the sparse baselines' weight budget (``RunConfig.budget``)."""

    PER_OUTPUT = "per-output"
    """K weights per class (per output neuron), like a chain of K resonators."""
    GLOBAL = "global"
    """The K·C largest weights anywhere."""


class FrequencyPlan(StrEnum):
    """Spacing of the input oscillators' frequencies (``DeviceParams.plan``)."""

    GEOMETRIC = "geometric"
    """Constant spacing in linewidths (a constant frequency ratio)."""
    LINEAR = "linear"
    """Constant spacing in GHz."""


class Parity(StrEnum):
    """Sign convention of a series chain of resonators (``DeviceParams.parity``)."""

    EVEN = "even"
    """s_k = (-1)^k."""
    ODD = "odd"
    """s_k = (-1)^(k+1)."""


def values(mode: type[StrEnum]) -> tuple[str, ...]:
    """The plain-string values of ``mode``, in declaration order (e.g. argparse choices, messages)."""
    return tuple(member.value for member in mode)


def member_of(mode: type[ModeT], value: Any) -> ModeT | None:
    """The member of ``mode`` that ``value`` (a member or its plain string) names; None when it names none."""
    if not isinstance(value, str):
        return None
    try:
        return mode(value)
    except ValueError:
        return None


def set_mode(settings: Any, name: str, mode: type[StrEnum]) -> bool:
    """Replace field ``name`` of the (frozen) dataclass ``settings`` by the member of ``mode`` its value names,
    for use in ``__post_init__``. False (the field left as it was) when the value names no member."""
    found = member_of(mode, getattr(settings, name))
    if found is None:
        return False
    object.__setattr__(settings, name, found)
    return True


__all__ = [
    "Budget",
    "FrequencyPlan",
    "HardwareRegime",
    "InitLayout",
    "LrSchedule",
    "Parity",
    "WeightBuild",
    "member_of",
    "set_mode",
    "values",
]
