"""Results gathered during a session: single runs, sweep rows and imported topologies.

Every point is a RunResult.summary()-style row (model, resonators_per_chain, removed_synapses_pct,
test_accuracy, seed, ...) plus, when known, what the topology views need to show it again.
"""
from __future__ import annotations

import csv
import itertools
import math
import os
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional

import numpy as np
from PySide6.QtCore import QObject, Signal

from .state import DisplayState

_ids = itertools.count(1)


@dataclass
class SessionPoint:
    row: dict
    source: str  #: 'run', 'sweep' or 'import'
    state: Optional[DisplayState] = None
    result: Any = None  #: the RunResult of a single run (it holds the trained model, for export)
    id: int = field(default_factory=lambda: next(_ids))

    @property
    def model(self) -> str:
        return str(self.row.get("model", "?"))

    @property
    def removed_pct(self) -> float:
        return float(self.row.get("removed_synapses_pct", float("nan")))

    @property
    def accuracy(self) -> float:
        return float(self.row.get("test_accuracy", float("nan")))

    def describe(self) -> str:
        from engine.config import MODEL_LABELS

        r = self.row
        parts = [MODEL_LABELS.get(self.model, self.model)]
        if "resonators_per_chain" in r:
            parts.append(f"K = {r['resonators_per_chain']}")
        parts.append(f"{self.removed_pct:.2f} % removed")
        parts.append(f"accuracy {100 * self.accuracy:.2f} %")
        for key, fmt in (("seed", "seed {}"), ("epochs_completed", "{} epochs"), ("train_seconds", "{:.1f} s"),
                         ("dataset", "{}")):
            if key in r and r[key] is not None:
                parts.append(fmt.format(r[key]))
        parts.append({"run": "single run", "sweep": "sweep", "import": "imported"}.get(self.source, self.source))
        return " · ".join(parts)


def aggregate_rows(rows: Iterable[dict]) -> dict[str, list[dict]]:
    """model -> [{'k', 'removed', 'mean', 'std', 'n'}, ...] sorted by sparsity (mean ± std over seeds)."""
    groups: dict[tuple, list[float]] = {}
    removed: dict[tuple, float] = {}
    for r in rows:
        try:
            key = (str(r["model"]), int(r["resonators_per_chain"]))
            acc = float(r["test_accuracy"])
        except (KeyError, TypeError, ValueError):
            continue
        if not math.isfinite(acc):
            continue
        groups.setdefault(key, []).append(acc)
        removed[key] = float(r.get("removed_synapses_pct", 100.0 * (1 - key[1] / 784)))
    out: dict[str, list[dict]] = {}
    for (model, k), accs in groups.items():
        a = np.asarray(accs, dtype=float)
        out.setdefault(model, []).append({"k": k, "removed": removed[(model, k)], "mean": float(a.mean()),
                                          "std": float(a.std(ddof=1)) if len(a) > 1 else 0.0, "n": len(a)})
    for model in out:
        out[model].sort(key=lambda d: d["removed"])
    return out


CSV_COLUMNS = ("model", "dataset", "resonators_per_chain", "remaining_synapses_pct", "removed_synapses_pct",
               "test_accuracy", "evaluated_on", "seed", "epochs", "epochs_completed", "train_seconds",
               "rewiring_events", "synapses", "budget", "cancelled", "source")


def write_rows_csv(rows: list[dict], path: str | os.PathLike) -> None:
    """Write rows to CSV atomically (a temporary file in the same folder, then a rename)."""
    path = Path(path)
    extra = sorted({k for r in rows for k in r} - set(CSV_COLUMNS))
    columns = [c for c in CSV_COLUMNS if any(c in r for r in rows)] + extra
    from engine.export import atomic_write_text

    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    for r in rows:
        writer.writerow({c: r.get(c, "") for c in columns})
    atomic_write_text(path, text.getvalue())


class Session(QObject):
    """The accumulating list of results (main thread only)."""

    changed = Signal()

    def __init__(self, parent: Optional[QObject] = None) -> None:
        super().__init__(parent)
        self.points: list[SessionPoint] = []

    def add(self, row: dict, source: str, state: Optional[DisplayState] = None, result: Any = None) -> SessionPoint:
        point = SessionPoint(dict(row), source, state, result)
        self.points.append(point)
        self.changed.emit()
        return point

    def get(self, point_id: int) -> Optional[SessionPoint]:
        return next((p for p in self.points if p.id == point_id), None)

    def rows(self, sources: Optional[tuple] = None) -> list[dict]:
        return [dict(p.row, source=p.source) for p in self.points if sources is None or p.source in sources]

    def clear(self) -> None:
        self.points.clear()
        self.changed.emit()
