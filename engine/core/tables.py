"""CSV tables: the one CSV writer of the engine (topology CSVs, results and sweep tables).

    write_csv("results.csv", ["model", "k", "accuracy"], [{"model": "rf", "k": 10, "accuracy": 0.91}, ...])

Cells are written so that a spreadsheet, pandas or the ``csv`` module reads back what was meant:

- ``None`` is an empty cell;
- floats keep their shortest round-trip form (``repr``: ``0.1`` stays ``0.1``, a float32 value read back with
  ``float()`` is bit-identical); non-finite floats are written ``nan``, ``inf``, ``-inf``;
- ints and strings as they are, booleans as ``True``/``False``;
- lists, tuples and dicts as compact JSON (``[28, 28]``), so a cell never silently holds a Python repr.

Lines end in ``\\n``; fields are quoted only where needed (commas, quotes, newlines). The file is written
atomically (:func:`engine.core.files.atomic_write_text`), as UTF-8 without a byte-order mark.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Iterable, Sequence

from engine.core.files import PathLike, atomic_write_text, json_safe


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(float(value))  # float(): numpy's float64 subclass has a different repr
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(json_safe(value), ensure_ascii=False, separators=(", ", ": "))
    if hasattr(value, "item") and hasattr(value, "dtype"):  # numpy / torch scalars
        return _cell(value.item())
    return value


def _row(columns: Sequence[str], row: Any, n: int) -> list:
    if isinstance(row, Mapping):
        extra = [k for k in row if k not in columns]
        if extra:
            raise ValueError(
                f"row {n} has values for unknown column(s) {', '.join(map(repr, extra))} "
                f"(columns: {', '.join(columns)})"
            )
        return [_cell(row.get(c)) for c in columns]
    values = list(row)
    if len(values) != len(columns):
        raise ValueError(f"row {n} has {len(values)} values for {len(columns)} columns")
    return [_cell(v) for v in values]


def csv_text(columns: Sequence[str], rows: Iterable[Any]) -> str:
    """The CSV text of a table: a header line with ``columns``, then one line per row.

    Each row is either a mapping (column name -> value; a missing column is an empty cell, a key that is not
    a column is a ValueError) or a sequence with exactly one value per column (else ValueError). Cell
    formatting is described in the module docstring.
    """
    columns = [str(c) for c in columns]
    if len(set(columns)) != len(columns):
        raise ValueError(f"the column names are not unique: {', '.join(columns)}")
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for n, row in enumerate(rows):
        writer.writerow(_row(columns, row, n))
    return buf.getvalue()


def write_csv(path: PathLike, columns: Sequence[str], rows: Iterable[Any]) -> Path:
    """Write a table as CSV at ``path``, atomically; returns the path.

    ``columns``: the header, in order. ``rows``: mappings (column -> value; missing columns are blank, unknown
    keys raise ValueError) or sequences of exactly ``len(columns)`` values. ``None`` is written as an empty
    cell, floats in their exact shortest form, lists/dicts as compact JSON (see the module docstring). The
    whole text is built before anything is written, so a bad row leaves an existing file untouched.
    """
    return atomic_write_text(path, csv_text(columns, rows))


__all__ = ["csv_text", "write_csv"]
