"""What a design search varies and what it scores: ``--space`` dimensions and ``--maximize``/``--minimize``
objectives, parsed and checked against the settings tree (engine.config.run_config.RunConfig).

A dimension is ``PATH=SPEC`` where PATH is a settings path (``resonators_per_chain``, ``device.tuning_bits``)
and SPEC is a range ``LOW:HIGH`` with optional flags ``:int`` (whole numbers) and ``:log`` (sampled on a log
scale), or a list of choices ``A,B,C`` (for a list setting such as ``hidden``, ``0`` means an empty list and
``200+100`` two items). An objective is a metric of the run (:data:`METRICS`) or any numeric settings path,
whose value in the trial's settings is the objective. Every problem is a :class:`DesignSpecError` of one
sentence that names the dimension or objective.
"""

from __future__ import annotations

import math
import re
import types
import typing
from dataclasses import dataclass
from typing import Any, Optional

from engine.config.run_config import RunConfig, parse_override
from engine.core.settings_tree import SettingError, field_type_at
from engine.nets.registry import get_spec

#: Metrics a run reports, by objective name: (description, how a finished run gives it).
METRICS = {
    "val_accuracy": "accuracy on the validation split (fraction)",
    "train_accuracy": "training accuracy of the last epoch (fraction)",
    "resonators": "resonators (RF) or non-zero weights (baselines) in the trained network",
    "train_seconds": "training time (s)",
}
#: The objectives when none are given.
DEFAULT_OBJECTIVES = (("maximize", "val_accuracy"), ("minimize", "resonators"))
#: Words that make a list setting empty in a list of choices.
_EMPTY_WORDS = ("0", "none", "[]", "()")


class DesignSpecError(ValueError):
    """A ``--space`` dimension or an objective that cannot be used (one sentence naming it)."""


@dataclass(frozen=True)
class Dimension:
    """One searched setting: a range (``low``..``high``, ``integer``, ``log``) or ``choices`` (their texts)."""

    path: str
    text: str  #: as the user wrote it, for messages and records
    low: Optional[float] = None
    high: Optional[float] = None
    integer: bool = False
    log: bool = False
    choices: tuple[str, ...] = ()  #: the choices' texts (Optuna keeps these); :meth:`value` types them

    @property
    def categorical(self) -> bool:
        return bool(self.choices)

    def value(self, sampled: Any, model: str) -> Any:
        """The typed settings value of a sampled one (a choice's text is parsed for the setting's type)."""
        if not self.categorical:
            return int(sampled) if self.integer else float(sampled)
        return _choice_value(self.path, str(sampled), model, self.text)

    def extremes(self) -> list:
        """The values whose settings are checked before the search: both ends, or every choice."""
        return list(self.choices) if self.categorical else [self.low, self.high]


@dataclass(frozen=True)
class Objective:
    direction: str  #: 'maximize' or 'minimize'
    name: str  #: a metric of METRICS or a settings path

    @property
    def is_metric(self) -> bool:
        return self.name in METRICS

    def describe(self) -> str:
        return f"{self.direction} {self.name}"


@dataclass(frozen=True)
class Requirement:
    """A bound an objective must meet for a trial to count as feasible (``--require val_accuracy>=0.9``): the
    search then looks for the cheapest trials that meet it, and the front holds only those."""

    name: str  #: one of the objectives
    at_least: bool  #: '>=' (True) or '<='
    bound: float  #: in the objective's own units (accuracies as fractions)

    def describe(self) -> str:
        return f"{self.name}{'>=' if self.at_least else '<='}{self.bound:g}"

    def violation(self, value: float) -> float:
        """How far ``value`` misses the bound (0 or less: met), as Optuna's constraints take it."""
        return self.bound - value if self.at_least else value - self.bound


def parse_requirements(texts, objectives) -> list[Requirement]:
    """``NAME>=VALUE`` or ``NAME<=VALUE`` for objectives ``NAME``; an accuracy may be given in percent (90)."""
    names = [o.name for o in objectives]
    out = []
    for text in texts or ():
        m = re.fullmatch(r"\s*([\w.]+)\s*(>=|<=)\s*(\S+?)\s*%?\s*", text)
        if not m:
            raise DesignSpecError(
                f"--require {text}: write NAME>=VALUE or NAME<=VALUE, quoted for the shell (its > is a redirection), "
                "e.g. --require 'val_accuracy>=0.9'"
            )
        name, op, value = m.groups()
        if name not in names:
            raise DesignSpecError(f"--require {text}: {name} is not an objective ({', '.join(names)})")
        bound = _number(value, f"--require {text}")
        if name.endswith("accuracy") and bound > 1:
            bound /= 100.0  # given in percent
        out.append(Requirement(name, op == ">=", bound))
    return out


def _field_type(path: str, model: str, what: str) -> Any:
    """The declared type of settings path ``path`` (DesignSpecError naming ``what`` if there is none)."""

    def resolve(cls: type, name: str) -> Optional[type]:  # model_params is typed by the model
        return get_spec(model).params_class if cls is RunConfig and name == "model_params" else None

    try:
        return field_type_at(RunConfig, path, resolve=resolve)
    except ValueError as exc:  # SettingError, or an unknown model
        raise DesignSpecError(f"{what}: {exc}") from None


def _inner(tp: Any) -> Any:
    """``X`` of ``X | None``; other types as they are."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def _choice_value(path: str, text: str, model: str, what: str) -> Any:
    """A choice's text typed for the setting at ``path`` (a list setting: ``0`` empty, ``A+B`` two items)."""
    tp = _inner(_field_type(path, model, what))
    if typing.get_origin(tp) is tuple:
        text = "" if text.strip().lower() in _EMPTY_WORDS else text.replace("+", " ")
    try:
        return parse_override(f"{path}={text}", model)[1]
    except SettingError as exc:
        raise DesignSpecError(f"--space {what}: {exc}") from None


def _number(text: str, what: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise DesignSpecError(f"--space {what}: {text!r} is not a number") from None
    if not math.isfinite(v):
        raise DesignSpecError(f"--space {what}: {text!r} is not a finite number")
    return v


def _range(path: str, spec: str, text: str, model: str) -> Dimension:
    parts = [p.strip() for p in spec.split(":")]
    flags = [p.lower() for p in parts[2:]]
    unknown = [f for f in flags if f not in ("int", "log")]
    if len(parts) < 2 or unknown:
        bad = f"the flag {unknown[0]!r} is not int or log" if unknown else "a range needs LOW:HIGH"
        raise DesignSpecError(f"--space {text}: {bad} (write LOW:HIGH[:int][:log] or A,B,C)")
    tp = _inner(_field_type(path, model, f"--space {text}"))
    integer = "int" in flags
    if tp not in (int, float):
        raise DesignSpecError(f"--space {text}: {path} is not a number, so give it a list of choices (A,B,C)")
    if tp is int and not integer:
        integer = True  # a whole-number setting is always sampled as one
    low, high = _number(parts[0], text), _number(parts[1], text)
    if integer and (low != int(low) or high != int(high)):
        raise DesignSpecError(f"--space {text}: an :int range needs whole-number ends")
    if not low < high:
        raise DesignSpecError(f"--space {text}: the range is empty (LOW must be below HIGH)")
    log = "log" in flags
    if log and low <= 0:
        raise DesignSpecError(f"--space {text}: a :log range must start above 0")
    return Dimension(path, text, low=low, high=high, integer=integer, log=log)


def parse_dimension(text: str, model: str = RunConfig.model) -> Dimension:
    """One ``--space PATH=SPEC`` for runs of ``model`` (DesignSpecError naming it)."""
    path, sep, spec = text.partition("=")
    path, spec = path.strip(), spec.strip()
    if not sep or not path or not spec:
        raise DesignSpecError(f"--space {text!r} must look like PATH=LOW:HIGH[:int][:log] or PATH=A,B,C")
    if ":" in spec:
        return _range(path, spec, text, model)
    choices = tuple(c.strip() for c in spec.split(","))
    if any(not c for c in choices):
        raise DesignSpecError(f"--space {text}: a list of choices has an empty item")
    if len(set(choices)) < len(choices):
        raise DesignSpecError(f"--space {text}: a choice is given twice")
    for choice in choices:
        _choice_value(path, choice, model, text)
    return Dimension(path, text, choices=choices)


def parse_space(texts, model: str = RunConfig.model) -> list[Dimension]:
    """Every ``--space``; a path given twice is refused."""
    dims = [parse_dimension(t, model) for t in texts]
    seen: set = set()
    for d in dims:
        if d.path in seen:
            raise DesignSpecError(f"--space {d.path} is given twice")
        seen.add(d.path)
    if not dims:
        raise DesignSpecError("give at least one --space PATH=SPEC to search")
    return dims


def parse_objectives(pairs, model: str = RunConfig.model) -> list[Objective]:
    """``[(direction, name), ...]`` in the order given (the defaults when empty); a name must be a metric or a
    numeric settings path, and may be given once."""
    objectives = [Objective(d, n.strip()) for d, n in (pairs or DEFAULT_OBJECTIVES)]
    names: set = set()
    for o in objectives:
        if o.name in names:
            raise DesignSpecError(f"the objective {o.name} is given twice")
        names.add(o.name)
        if o.is_metric:
            continue
        if not o.name:
            raise DesignSpecError(f"--{o.direction} needs a metric ({', '.join(METRICS)}) or a settings path")
        try:
            tp = _inner(_field_type(o.name, model, f"--{o.direction} {o.name}"))
        except DesignSpecError:
            raise DesignSpecError(
                f"--{o.direction} {o.name}: not a metric ({', '.join(METRICS)}) nor a settings path"
            ) from None
        item = typing.get_args(tp)[0] if typing.get_origin(tp) is tuple and typing.get_args(tp) else tp
        if item not in (int, float, bool):
            raise DesignSpecError(f"--{o.direction} {o.name}: the setting is not a number")
    return objectives


def setting_number(value: Any) -> float:
    """A setting's value as an objective: numbers as they are, a list as its sum (hidden units), unset
    (None: unlimited) as infinity."""
    if value is None:
        return math.inf
    if isinstance(value, (list, tuple)):
        return float(sum(value))
    return float(value)


def dotted_get(tree: dict, path: str) -> Any:
    """The value at ``path`` of a nested settings mapping (None where absent)."""
    node: Any = tree
    for part in path.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


__all__ = [
    "DEFAULT_OBJECTIVES",
    "METRICS",
    "DesignSpecError",
    "Dimension",
    "Objective",
    "dotted_get",
    "parse_dimension",
    "parse_objectives",
    "parse_space",
    "setting_number",
]
