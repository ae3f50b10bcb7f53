"""The "Recorded runs" browser: the runs of the run store (engine.io.store; every source: the app, train, sweeps,
studies, design) in a table, filtered by any settings path (``model=rf-input device.tuning_bits=8``), two of them
compared (the settings that differ, the metrics side by side), and one loaded into the views (its trained network,
imported as a topology file and evaluated on the current dataset).

The dialog opens at once: the list is read on the run store's worker thread (rfexplorer.store_session) and the
table, a model over the records, fills when it arrives.
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Optional

from PySide6.QtCore import QAbstractTableModel, Qt, Slot
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (QAbstractItemView, QDialog, QHBoxLayout, QHeaderView, QLabel, QLineEdit,
                               QPlainTextEdit, QPushButton, QSplitter, QTableView, QVBoxLayout, QWidget)

from engine.core.files import atomic_write_text
from engine.io.store import RunRecord, RunStore, differing_settings, topology_of

from .labels import model_label

COLUMNS = ("Id", "Created (UTC)", "Source", "Model", "Dataset", "K", "Accuracy %", "Seconds", "Status")
#: Metrics shown first when two runs are compared.
MAIN_METRICS = ("test_accuracy", "evaluated_on", "train_loss", "resonators_per_chain", "removed_synapses_pct",
                "synapses", "train_seconds", "epochs_completed")


def parse_filter(text: str) -> list[str]:
    """``PATH=VALUE`` clauses separated by spaces or semicolons (ValueError names a malformed one)."""
    clauses = [c for c in text.replace(";", " ").split() if c]
    bad = [c for c in clauses if "=" not in c or c.startswith("=")]
    if bad:
        raise ValueError(f"{bad[0]!r} is not PATH=VALUE (for example model=rf-input device.tuning_bits=8)")
    return clauses


def _cell(rec: RunRecord, column: int) -> str:
    if column == 0:
        return str(rec.id)
    if column == 1:
        return rec.created[:19].replace("T", " ")
    if column == 2:
        return rec.source
    if column == 3:
        return model_label(rec.model, short=True)
    if column == 4:
        return Path(rec.dataset).name
    if column == 5:
        ks = rec.metrics.get("layer_ks") or []
        return ",".join(map(str, ks)) if ks else str(rec.metrics.get("resonators_per_chain", ""))
    if column == 6:
        return f"{100 * rec.test_accuracy:.2f}" if isinstance(rec.test_accuracy, (int, float)) else "–"
    if column == 7:
        return f"{rec.train_seconds:.1f}" if isinstance(rec.train_seconds, (int, float)) else "–"
    return rec.status


class RunsModel(QAbstractTableModel):
    """The listed records as a table (cells made on demand: 10,000 rows cost nothing until shown)."""

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.records: list[RunRecord] = []

    def set_records(self, records: list) -> None:
        self.beginResetModel()
        self.records = list(records)
        self.endResetModel()

    def rowCount(self, parent=None) -> int:  # noqa: N802 - Qt's method name
        return 0 if parent is not None and parent.isValid() else len(self.records)

    def columnCount(self, parent=None) -> int:  # noqa: N802 - Qt's method name
        return 0 if parent is not None and parent.isValid() else len(COLUMNS)

    def data(self, index, role=Qt.DisplayRole) -> Any:
        if not index.isValid():
            return None
        if role == Qt.DisplayRole:
            return _cell(self.records[index.row()], index.column())
        if role == Qt.TextAlignmentRole and index.column() in (0, 5, 6, 7):
            return int(Qt.AlignRight | Qt.AlignVCenter)
        return None

    def headerData(self, section, orientation, role=Qt.DisplayRole) -> Any:  # noqa: N802 - Qt's method name
        if role == Qt.DisplayRole and orientation == Qt.Horizontal:
            return COLUMNS[section]
        return None


def comparison_text(records: list) -> str:
    """The settings that differ and the metrics of two or more full records, side by side."""
    width = 16
    head = f"{'':<34}" + "".join(f"{'run ' + str(r.id):>{width}}" for r in records)
    lines = [head]
    differing = differing_settings(records)
    lines.append("Settings that differ:" if differing else "Settings: all the same")
    for path, values in differing.items():
        lines.append(f"  {path:<32}" + "".join(f"{_short(v, width):>{width}}" for v in values))
    lines.append("Metrics:")
    names = [m for m in MAIN_METRICS if any(m in r.metrics for r in records)]
    for m in names:
        lines.append(f"  {m:<32}" + "".join(f"{_short(r.metrics.get(m), width):>{width}}" for r in records))
    return "\n".join(lines)


def _short(value: Any, width: int) -> str:
    if isinstance(value, float):
        text = f"{value:.6g}"
    elif isinstance(value, (list, tuple)):
        text = ",".join(map(str, value)) or "[]"
    else:
        text = "null" if value is None else str(value)
    return text if len(text) < width else text[: width - 2] + "…"


class RunsBrowser(QDialog):
    """Browse, filter, compare and load the recorded runs (non-modal; one per window)."""

    def __init__(self, store_session, files, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Recorded runs")
        self.resize(1000, 640)
        self.store_session, self.files = store_session, files
        self._tmp = tempfile.TemporaryDirectory(prefix="rfexplorer-runs-")
        self.loaded_path: Optional[Path] = None
        self._build()
        self.refresh()

    def _build(self) -> None:
        self.filter_edit = QLineEdit()
        self.filter_edit.setPlaceholderText("Filter by settings: model=rf-input device.tuning_bits=8 source=app")
        self.filter_edit.returnPressed.connect(self.refresh)
        apply_btn = QPushButton("Filter")
        apply_btn.clicked.connect(self.refresh)
        top = QHBoxLayout()
        top.addWidget(QLabel("Where"))
        top.addWidget(self.filter_edit, 1)
        top.addWidget(apply_btn)
        self.model = RunsModel(self)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.ExtendedSelection)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(22)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.Interactive)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.selectionModel().selectionChanged.connect(self._on_selection)
        self.table.doubleClicked.connect(self.load_selected)
        self.compare_text = QPlainTextEdit()
        self.compare_text.setReadOnly(True)
        self.compare_text.setFont(QFontDatabase.systemFont(QFontDatabase.FixedFont))  # the columns line up
        self.compare_text.setPlaceholderText("Select two runs and press Compare.")
        split = QSplitter(Qt.Vertical)
        split.addWidget(self.table)
        split.addWidget(self.compare_text)
        split.setSizes([420, 200])
        self.count_label = QLabel("Reading the run store…")
        self.compare_btn = QPushButton("Compare")
        self.compare_btn.clicked.connect(self.compare_selected)
        self.load_btn = QPushButton("Load into the views")
        self.load_btn.clicked.connect(self.load_selected)
        close_btn = QPushButton("Close")
        close_btn.clicked.connect(self.close)
        bottom = QHBoxLayout()
        bottom.addWidget(self.count_label, 1)
        for b in (self.compare_btn, self.load_btn, close_btn):
            bottom.addWidget(b)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(split, 1)
        layout.addLayout(bottom)
        self._on_selection()

    # --- listing --------------------------------------------------------------------------------------------
    @Slot()
    def refresh(self) -> None:
        """List the runs matching the filter (on the store's worker; the table fills when they arrive)."""
        try:
            where = parse_filter(self.filter_edit.text())
        except ValueError as exc:
            self.count_label.setText(str(exc))
            return
        self.count_label.setText("Reading the run store…")
        started = self.store_session.call(lambda store: store.list(where), self._on_listed, self._on_error)
        if not started:
            self.count_label.setText("The run store is off (RFEXPLORER_STORE=off) or cannot be used.")

    def _on_listed(self, records: list) -> None:
        self.model.set_records(records)
        self.table.resizeColumnsToContents()
        self.count_label.setText(f"{len(records):,} run(s)")
        self._on_selection()

    def _on_error(self, message: str) -> None:
        self.count_label.setText(message)

    def selected_ids(self) -> list[int]:
        rows = sorted({i.row() for i in self.table.selectionModel().selectedRows()})
        return [self.model.records[r].id for r in rows if r < len(self.model.records)]

    @Slot()
    def _on_selection(self, *_args) -> None:
        n = len(self.selected_ids())
        self.compare_btn.setEnabled(n >= 2)
        self.load_btn.setEnabled(n == 1)

    # --- compare and load -------------------------------------------------------------------------------------
    @Slot()
    def compare_selected(self) -> None:
        ids = self.selected_ids()
        if len(ids) < 2:
            return
        self.store_session.call(lambda store: [store.get(i) for i in ids], self._on_compared, self._on_error)

    def _on_compared(self, records: list) -> None:
        self.compare_text.setPlainText(comparison_text(records))

    @Slot()
    def load_selected(self, *_args) -> None:
        ids = self.selected_ids()
        if len(ids) != 1:
            return
        folder = Path(self._tmp.name)

        def export(store: RunStore) -> Optional[Path]:
            rec = store.get(ids[0])
            if rec.topology_json is None:
                return None
            topology_of(rec.topology_json, f"run {rec.id} of the run store")  # the topology-file reader's checks
            return atomic_write_text(folder / f"run-{rec.id}.json", rec.topology_json)

        self.count_label.setText(f"Loading run {ids[0]}…")
        self.store_session.call(export, self._on_exported, self._on_error)

    def _on_exported(self, path: Optional[Path]) -> None:
        if path is None:
            self.count_label.setText("This run holds no trained network (only its results), so it cannot be shown.")
            return
        self.loaded_path = path
        self.count_label.setText(f"Loaded {path.stem} into the views (evaluated on the current dataset).")
        self.files.import_topology(path)

def open_runs_browser(window) -> RunsBrowser:
    """Show the window's runs browser (made on first use), listing afresh."""
    browser = getattr(window, "runs_browser", None)
    if browser is None:
        browser = window.runs_browser = RunsBrowser(window.store_session, window.files, window)
    else:
        browser.refresh()
    browser.show()
    browser.raise_()
    return browser
