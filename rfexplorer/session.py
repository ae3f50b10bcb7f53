"""Results gathered during a session: single runs, sweep rows and imported topologies.

Every point is one :class:`engine.io.results.ResultRow` plus, when known, what the app needs to show and export
it again: the display state (numpy arrays) and, for a single run, the finished model, which holds no
training state (the engine drops data, optimizer and sums when a run ends). Averaging is
:func:`engine.io.results.aggregate`'s job, CSV writing :func:`engine.experiments.sweep.runner.rows_csv_text`'s.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any, Optional

from PySide6.QtCore import QObject, Signal

from engine.config.run_config import RunConfig
from engine.io.results import ResultRow, RunResult

from .series import dense_synapses, network_removed_pct, network_synapses, shape_text
from .state import DisplayState

_ids = itertools.count(1)
SOURCES = {"run": "single run", "sweep": "sweep", "import": "imported", "stored": "recorded earlier"}


@dataclass
class SessionPoint:
    row: ResultRow
    source: str  #: 'run', 'sweep' or 'import'
    state: Optional[DisplayState] = None
    network: Any = None  #: the finished model of a single run (no training state), for export
    exact_accuracy: Optional[float] = None  #: the run's accuracy unrounded (the row keeps 6 digits)
    id: int = field(default_factory=lambda: next(_ids))

    @property
    def model(self) -> str:
        return self.row.model

    @property
    def removed_pct(self) -> float:
        """% of synapses removed: of the whole network against the dense one of the same shape (multilayer)."""
        return network_removed_pct(self.row)

    @property
    def accuracy(self) -> float:
        acc = self.row.test_accuracy
        return float(acc) if isinstance(acc, (int, float)) else float("nan")

    @property
    def exportable(self) -> bool:
        return self.network is not None

    def run_result(self) -> RunResult:
        """The RunResult the topology exporter takes, rebuilt from the row and the finished model."""
        r = self.row
        return RunResult(config=RunConfig.from_dict(r.config),
                         test_accuracy=float(self.exact_accuracy if self.exact_accuracy is not None
                                             else r.test_accuracy),
                         train_seconds=float(r.train_seconds or 0.0), epochs_completed=int(r.epochs_completed or 0),
                         history=[tuple(h) for h in r.history], rewiring_events=int(r.rewiring_events or 0),
                         synapses=int(r.synapses or 0), cancelled=r.cancelled, n_inputs=r.n_inputs,
                         n_classes=r.n_classes, evaluated_on=r.evaluated_on, dataset_info=dict(r.dataset_info),
                         versions=dict(r.versions), created=r.created, model=self.network)

    def describe(self) -> str:
        from .labels import model_label

        r = self.row
        parts = [model_label(self.model), f"K = {r.resonators_per_chain}",
                 f"{self.removed_pct:.2f} % removed"]
        if r.hidden:  # a multilayer network: its shape, every layer's K and its synapses of all layers
            parts[1:2] = [shape_text(r), "K = " + " / ".join(str(k) for k in r.layer_ks),
                          f"{network_synapses(r):,} of {dense_synapses(r):,} synapses"]
        if math.isfinite(self.accuracy):
            parts.append(f"accuracy {100 * self.accuracy:.2f} %")
        parts.append(f"seed {r.seed}")
        if r.epochs_completed is not None:
            parts.append(f"{r.epochs_completed} epochs")
        if r.train_seconds is not None:
            parts.append(f"{r.train_seconds:.1f} s")
        if r.dataset:
            parts.append(str(r.dataset))
        parts.append(SOURCES.get(self.source, self.source))
        return " · ".join(parts)


class Session(QObject):
    """The accumulating list of results (main thread only)."""

    changed = Signal()
    added = Signal(object)  #: a SessionPoint just added (rfexplorer.store_session records finished runs)
    cleared = Signal()

    def __init__(self, parent: Optional[QObject] = None) -> None:
        super().__init__(parent)
        self.points: list[SessionPoint] = []

    def add(self, row: ResultRow | dict, source: str, state: Optional[DisplayState] = None,
            network: Any = None, exact_accuracy: Optional[float] = None) -> SessionPoint:
        if not isinstance(row, ResultRow):
            row = ResultRow.from_dict(row)
        point = SessionPoint(row, source, state, network, exact_accuracy)
        self.points.append(point)
        self.changed.emit()
        self.added.emit(point)
        return point

    def add_rows(self, rows: list, source: str) -> list[SessionPoint]:
        """Several rows at once (one ``changed``; no ``added``): the runs reloaded from the run store."""
        points = [SessionPoint(r if isinstance(r, ResultRow) else ResultRow.from_dict(r), source) for r in rows]
        self.points.extend(points)
        self.changed.emit()
        return points

    def get(self, point_id: int) -> Optional[SessionPoint]:
        return next((p for p in self.points if p.id == point_id), None)

    def rows(self, sources: Optional[tuple] = None) -> list[dict]:
        """Every point as a dict row (ResultRow.to_dict() plus its source), for the results files."""
        return [dict(p.row.to_dict(), source=p.source) for p in self.points
                if sources is None or p.source in sources]

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for p in self.points:
            out[p.source] = out.get(p.source, 0) + 1
        return out

    def clear(self) -> None:
        self.points.clear()
        self.changed.emit()
        self.cleared.emit()
