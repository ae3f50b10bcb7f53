"""Settings as rows and filters as SQL for the run store: the settings tree flattened to ``(path, text, num)``
leaves, a filter value written the same way, and the ``WHERE`` clause of ``--where path=value`` filters.

Values are matched by their canonical text: strings as they are, ``true``/``false``, ``null``, numbers as Python
writes them, lists as their items joined by commas (``hidden=200,100``; an empty list is the empty text). A
filter value that reads as a number also matches numerically (``device.alpha=5e-3`` finds ``0.005``).
"""

from __future__ import annotations

import math
from typing import Any, Iterator, Mapping, Sequence

from sqlalchemy import ColumnElement, and_, or_, select

from engine.io.store_schema import MAX_SETTING_TEXT, run_settings, runs

#: Filter keys that name a column of the record rather than a settings path.
RECORD_KEYS = ("source", "status")


class StoreError(ValueError):
    """The run store cannot do what was asked (bad URL, unreadable store, unknown id or path); one sentence."""


def canonical(value: Any) -> str:
    """The text a setting's value is stored and matched as."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(canonical(v) for v in value)
    return str(value)


def number(value: Any) -> float | None:
    """The value as a finite float, for numbers only (not bools or strings)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    v = float(value)
    return v if math.isfinite(v) else None


def flatten(tree: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted path, leaf value) of every leaf of a nested settings mapping; lists are leaves."""
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            if value:
                yield from flatten(value, path + ".")
            else:
                yield path, None
        else:
            yield path, value


def setting_rows(run_id: int, config: Mapping[str, Any]) -> list[dict]:
    """The ``run_settings`` rows of one run."""
    return [
        {"run_id": run_id, "path": path[:200], "text": canonical(v)[:MAX_SETTING_TEXT], "num": number(v)}
        for path, v in flatten(config)
    ]


def filter_value(text: str) -> tuple[str, float | None]:
    """A filter's value as (canonical text, number or None): ``True``/``None`` are written as stored."""
    t = text.strip()
    low = t.lower()
    if low in ("true", "false"):
        return low, None
    if low in ("null", "none"):
        return "null", None
    if "," in t:
        return ",".join(part.strip() for part in t.split(",")), None
    try:
        v = float(t)
    except ValueError:
        return t, None
    return t, (v if math.isfinite(v) else None)


def parse_where(items: Mapping[str, Any] | Sequence[str] | None) -> dict[str, str]:
    """``{path: value}`` from a mapping or from ``PATH=VALUE`` texts (StoreError names a malformed one)."""
    if not items:
        return {}
    if isinstance(items, str):
        items = [items]
    if isinstance(items, Mapping):
        return {str(k): v if isinstance(v, str) else canonical(v) for k, v in items.items()}
    out: dict[str, str] = {}
    for item in items:
        path, sep, value = str(item).partition("=")
        if not sep or not path.strip():
            raise StoreError(f"a filter must read PATH=VALUE (e.g. model=rf-input), got {item!r}")
        out[path.strip()] = value
    return out


def where_clause(where: Mapping[str, str]) -> ColumnElement[bool] | None:
    """The condition on ``runs`` of every filter together (None: no filter)."""
    terms: list[ColumnElement[bool]] = []
    for path, value in where.items():
        if path in RECORD_KEYS:
            terms.append(runs.c[path] == value.strip())
            continue
        text_value, num_value = filter_value(value)
        match = run_settings.c.text == text_value[:MAX_SETTING_TEXT]
        if num_value is not None:
            match = or_(match, run_settings.c.num == num_value)
        ids = select(run_settings.c.run_id).where(and_(run_settings.c.path == path, match))
        terms.append(runs.c.id.in_(ids))
    return and_(*terms) if terms else None
