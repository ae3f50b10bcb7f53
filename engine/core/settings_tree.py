"""Typed settings trees: frozen dataclasses read from and written to nested mappings, strictly.

Every setting of a run lives in a tree of frozen dataclasses (:class:`engine.config.run_config.RunConfig` at the root).
This module turns such a tree into a nested dict (for JSON and TOML), builds one back from a mapping while
checking every key and type against the dataclass fields, and applies ``path.to.field=value`` overrides typed
from the field they name. Errors are :class:`SettingError` with one sentence that names the key.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import types
import typing
from typing import Any, Mapping, TypeGuard, Union


class SettingError(ValueError):
    """A setting that does not exist or has a value of the wrong type (the message names the key)."""


_NONE_WORDS = ("none", "null")
_TRUE_WORDS = ("true", "yes", "on", "1")
_FALSE_WORDS = ("false", "no", "off", "0")


def field_types(cls: type) -> dict[str, Any]:
    """The resolved type of every field of dataclass ``cls``."""
    return typing.get_type_hints(cls)


def _is_dataclass_type(tp: Any) -> TypeGuard[type]:
    """Whether type hint ``tp`` is a dataclass (hints are classes, never instances)."""
    return dataclasses.is_dataclass(tp)


def _split_optional(tp: Any) -> tuple[Any, bool]:
    """(inner type, whether None is allowed) for ``X | None`` / ``Optional[X]``; other types pass through."""
    origin = typing.get_origin(tp)
    if origin is Union or (hasattr(types, "UnionType") and isinstance(tp, types.UnionType)):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        allows_none = len(args) < len(typing.get_args(tp))
        return (args[0] if len(args) == 1 else Union[tuple(args)]), allows_none
    return tp, False


def _is_mode(tp: Any) -> bool:
    """Whether type hint ``tp`` is a string mode (engine.core.enums): given as text, normalised by its dataclass."""
    return isinstance(tp, type) and issubclass(tp, enum.Enum) and issubclass(tp, str)


def _type_name(tp: Any) -> str:
    if _is_mode(tp):
        return "text"
    if dataclasses.is_dataclass(tp):
        return "a table of settings"
    if typing.get_origin(tp) is tuple:
        return "a list"
    return {int: "a whole number", float: "a number", str: "text", bool: "true or false"}.get(tp, str(tp))


def coerce(value: Any, tp: Any, key: str) -> Any:
    """``value`` checked (and converted where lossless, e.g. int -> float) against type ``tp``."""
    inner, allows_none = _split_optional(tp)
    if value is None:
        if allows_none:
            return None
        raise SettingError(f"setting {key} cannot be empty (expected {_type_name(inner)})")
    if inner is Any:
        return value
    if _is_dataclass_type(inner):
        if isinstance(value, inner):
            return value
        if isinstance(value, Mapping):
            return from_mapping(inner, value, prefix=key + ".")
        raise SettingError(f"setting {key} must be {_type_name(inner)} (got {value!r})")
    if typing.get_origin(inner) is tuple:
        args = typing.get_args(inner)
        if not isinstance(value, (list, tuple)):
            raise SettingError(f"setting {key} must be a list (got {value!r})")
        item_type = args[0] if args else Any
        return tuple(coerce(v, item_type, f"{key}[{i}]") for i, v in enumerate(value))
    if inner is bool:
        if isinstance(value, bool):
            return value
    elif inner is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif inner is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif inner is str or _is_mode(inner):  # a mode's text is checked and normalised by its dataclass
        if isinstance(value, str):
            return value
    elif isinstance(inner, type) and isinstance(value, inner):
        return value
    raise SettingError(f"setting {key} must be {_type_name(inner)} (got {value!r})")


def parse_text(text: str, tp: Any, key: str) -> Any:
    """The value of a ``--set key=text`` override, parsed for the field's type ``tp``."""
    inner, allows_none = _split_optional(tp)
    t = text.strip()
    if allows_none and t.lower() in _NONE_WORDS:
        return None
    try:
        if inner is bool:
            if t.lower() in _TRUE_WORDS:
                return True
            if t.lower() in _FALSE_WORDS:
                return False
            raise ValueError
        if inner is int:
            return int(t)
        if inner is float:
            v = float(t)
            if not math.isfinite(v):
                raise ValueError
            return v
        if typing.get_origin(inner) is tuple:
            args = typing.get_args(inner)
            item = args[0] if args else str
            return tuple(parse_text(p, item, key) for p in t.replace(",", " ").split())
    except ValueError:
        raise SettingError(f"setting {key} must be {_type_name(inner)} (got {text!r})") from None
    if inner is str or inner is Any or _is_mode(inner):
        return t
    raise SettingError(f"setting {key} cannot be set from the command line (it is {_type_name(inner)})")


def from_mapping(cls: type, mapping: Mapping[str, Any], prefix: str = "") -> Any:
    """An instance of dataclass ``cls`` from ``mapping``: unknown keys and wrong types raise SettingError.

    Missing keys keep their defaults. Nested dataclass fields accept nested mappings. A class may define
    ``_resolve_field(name, value, mapping)`` to type a field whose class depends on another field.
    """
    if not isinstance(mapping, Mapping):
        raise SettingError(f"setting {prefix.rstrip('.') or 'the root'} must be a table of settings")
    hints = field_types(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    unknown = [k for k in mapping if k not in names]
    if unknown:
        raise SettingError(f"unknown setting {prefix}{unknown[0]} (known here: {', '.join(names)})")
    values = {}
    resolver = getattr(cls, "_resolve_field", None)
    for name in names:
        if name not in mapping:
            continue
        value = mapping[name]
        if resolver is not None:
            value = resolver(name, value, mapping, prefix + name)
        values[name] = coerce(value, hints[name], prefix + name)
    try:
        return cls(**values)
    except SettingError:
        raise
    except (TypeError, ValueError) as exc:
        where = f" in {prefix.rstrip('.')}" if prefix and prefix.rstrip(".") not in str(exc) else ""
        raise SettingError(f"{exc}{where}") from None


def to_mapping(obj: Any) -> Any:
    """The nested dict (lists for tuples, plain strings for modes) of a dataclass tree; other values unchanged."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_mapping(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, tuple):
        return [to_mapping(v) for v in obj]
    if isinstance(obj, enum.Enum):
        return obj.value
    return obj


def set_path(mapping: dict, path: str, value: Any) -> dict:
    """A copy of the nested ``mapping`` with ``path`` (dot-separated) set to ``value``."""
    out = dict(mapping)
    head, _, rest = path.partition(".")
    if not rest:
        out[head] = value
        return out
    child = out.get(head)
    out[head] = set_path(dict(child) if isinstance(child, Mapping) else {}, rest, value)
    return out


def field_type_at(cls: type, path: str, resolve=None) -> Any:
    """The type of the field at dot-separated ``path`` below dataclass ``cls`` (SettingError if none).

    ``resolve(cls, name)`` may return the class of a dynamically typed field (e.g. model parameters).
    """
    parts = path.split(".")
    current: Any = cls
    tp: Any = cls
    for i, part in enumerate(parts):
        key = ".".join(parts[: i + 1])
        if not _is_dataclass_type(current):
            raise SettingError(f"unknown setting {key} ({'.'.join(parts[:i])} has no sub-settings)")
        hints = field_types(current)
        names = [f.name for f in dataclasses.fields(current) if f.init]
        if part not in names:
            raise SettingError(f"unknown setting {key} (known here: {', '.join(names)})")
        tp = hints[part]
        if resolve is not None:
            tp = resolve(current, part) or tp
        current, _ = _split_optional(tp)
    return tp
