"""The Design view: the design studies of the run store (``rfexplorer-cli design``), one study's finished trials
on two chosen objectives, its Pareto front as a line, new trials as they finish, and a click that loads a
trial's trained network into the other views.

The store is read on one worker thread every :data:`POLL_MS` while the view is shown (rfexplorer.design_watch);
the latest result comes back through a queued signal and is drawn from a short timer in the GUI thread. A click
fetches the trial's network (topology JSON) from the store on the same worker, writes it to a temporary file and
emits :attr:`DesignView.network_requested`; the window imports it through the File menu's topology import (the
engine process rebuilds and evaluates it).
"""
from __future__ import annotations

import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QTimer, Signal, Slot
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel

from engine.core.files import atomic_write_text
from engine.io.store import STORE_ENV, open_store, store_url

from .. import theme
from ..design_watch import DesignWatch, StudyInfo, StudySnapshot, TrialPoint, pareto_front, trial_text
from .common import ViewCard, fit_axis_titles, watch_axis_titles

#: How often the store is read while the view is shown (ms).
POLL_MS = 2000
#: The redraw follows a result after this long (ms), so bursts draw once.
REDRAW_MS = 30
NO_STUDY = "No design study yet — run `rfexplorer-cli design …` (its trials appear here as they finish)."
FRONT_COLOUR = theme.ACCENT
POINT_COLOUR = "#8b919e"
SELECTED_COLOUR = theme.WARN


def _scaled(name: str, values: np.ndarray) -> np.ndarray:
    """Accuracies in %, other objectives as they are."""
    return 100 * values if name.endswith("accuracy") else values


def _axis_titles(name: str, direction: str) -> list[tuple[str, None]]:
    """An objective's axis titles, longest first (the shortest when the plot is small)."""
    arrow = "↑" if direction == "maximize" else "↓"
    short = name.rsplit(".", 1)[-1]
    if name.endswith("accuracy"):
        return [(f"{name} (%) {arrow}", None), (f"{short} % {arrow}", None), (f"% {arrow}", None)]
    return [(f"{name} {arrow}", None), (f"{short} {arrow}", None)]


class DesignView(ViewCard):
    """Design studies: trials on two objectives, the Pareto front, click a point to see its network."""

    #: (topology file, StudyInfo): a trial's network to show in the views
    network_requested = Signal(str, object)
    #: a snapshot of the chosen study was drawn
    drawn = Signal()
    _done = Signal(object, object)  #: (callback, result) from the worker, delivered in the GUI thread

    def __init__(self, parent=None) -> None:
        super().__init__("Study", "", parent)
        self.study_combo = QComboBox()
        self.study_combo.setToolTip("The design studies of the run store (newest first)")
        self.x_combo, self.y_combo = QComboBox(), QComboBox()
        self.x_combo.setToolTip("The objective along x")
        self.y_combo.setToolTip("The objective along y")
        self.source_label.hide()  # the study combo takes the header's room
        self.add_header_widget(self.study_combo)
        self.header_layout.setStretchFactor(self.study_combo, 1)
        axes = QHBoxLayout()  # the objectives on a row of their own: a narrow dock still reads them
        axes.setSpacing(6)
        for label, combo in (("x", self.x_combo), ("y", self.y_combo)):
            tag = QLabel(label)
            tag.setObjectName("ViewSubtitle")
            axes.addWidget(tag)
            axes.addWidget(combo, 1)
        self.body.addLayout(axes)
        self.study_combo.currentIndexChanged.connect(self._on_study_chosen)
        self.x_combo.currentIndexChanged.connect(self._on_axes_chosen)
        self.y_combo.currentIndexChanged.connect(self._on_axes_chosen)
        self.message_label = QLabel(NO_STUDY)
        self.message_label.setObjectName("ViewSubtitle")
        self.message_label.setWordWrap(True)
        self.body.addWidget(self.message_label)
        self._build_plot()
        self.info_label = QLabel("")
        self.info_label.setObjectName("ViewSubtitle")
        self.info_label.setWordWrap(True)
        self.body.addWidget(self.info_label)

        self.snapshot: Optional[StudySnapshot] = None  #: the latest snapshot of the chosen study
        self.studies: list[StudyInfo] = []
        self.status_text = ""  #: counts of the chosen study's trials, or why nothing can be read
        self.front_numbers: list[int] = []  #: the trials on the drawn front, in x order
        self.selected: Optional[int] = None  #: the trial whose network was loaded last
        self.loaded_path: Optional[Path] = None
        self._tmp = tempfile.TemporaryDirectory(prefix="rfexplorer-design-")
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="design-watch")
        self._watch: Optional[DesignWatch] = None  # used on the worker only
        self._polling = False
        self.reads = 0  #: reads of the store answered so far
        self._closed = False
        self._done.connect(self._deliver)
        self.poll_timer = QTimer(self)
        self.poll_timer.setInterval(POLL_MS)
        self.poll_timer.timeout.connect(self.poll)
        self.poll_timer.start()
        self.redraw_timer = QTimer(self)
        self.redraw_timer.setSingleShot(True)
        self.redraw_timer.setInterval(REDRAW_MS)
        self.redraw_timer.timeout.connect(self.redraw)
        self._show_message(NO_STUDY)

    def _build_plot(self) -> None:
        self.plot_widget = pg.PlotWidget()
        self.plot = self.plot_widget.getPlotItem()
        theme.style_plot(self.plot)
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        self.front_line = pg.PlotDataItem(pen=pg.mkPen(FRONT_COLOUR, width=1.5))
        self.scatter = pg.ScatterPlotItem(size=9, hoverable=True, tip=self._tip, hoverSize=12,
                                          hoverPen=pg.mkPen(theme.FG, width=1.5))
        self.marker = pg.ScatterPlotItem(size=16, symbol="o", pen=pg.mkPen(SELECTED_COLOUR, width=2), brush=None)
        self.plot.addItem(self.front_line)
        self.plot.addItem(self.scatter)
        self.plot.addItem(self.marker)
        self.scatter.sigClicked.connect(self._on_clicked)
        self.scatter.sigHovered.connect(self._on_hovered)
        self.body.addWidget(self.plot_widget, 1)
        self._titles: dict = {self.plot: [("", None)]}  # the y title that fits the plot's height
        self._drawn_titles: dict = {}
        watch_axis_titles(self._titles, self._drawn_titles)

    def hasHeightForWidth(self) -> bool:  # noqa: N802 - size like a plot, not like wrapped text
        return False

    # --- the worker ----------------------------------------------------------------------------------------
    def _submit(self, fn: Callable[[], Any], on_done: Callable[[Any], None]) -> None:
        def work() -> None:
            try:
                result: Any = fn()
            except Exception as exc:  # noqa: BLE001 - a store or study that cannot be read is shown, never a crash
                self._done.emit(self._on_error, f"{exc}".splitlines()[0] if str(exc) else type(exc).__name__)
                return
            self._done.emit(on_done, result)

        self._pool.submit(work)

    def _read(self, chosen: Optional[str]) -> tuple[list[StudyInfo], Optional[StudySnapshot]]:
        """(worker) The store's studies and a snapshot of ``chosen`` (else the newest study)."""
        url = store_url(None)
        if self._watch is None or self._watch.url != url:
            if self._watch is not None:
                self._watch.close()
            self._watch = DesignWatch(url)
        studies = self._watch.studies()
        names = [s.name for s in studies]
        name = chosen if chosen in names else (names[0] if names else None)
        return studies, (self._watch.snapshot(name) if name is not None else None)

    @Slot(object, object)
    def _deliver(self, callback, result) -> None:
        if not self._closed:
            callback(result)

    def _on_error(self, message: str) -> None:
        self._polling = False
        self.status_text = f"The run store cannot be read: {message}"
        self.info_label.setText(self.status_text)

    # --- polling -------------------------------------------------------------------------------------------
    @Slot()
    def poll(self) -> None:
        """Read the store once more (on the worker), unless a read is under way or the view is hidden."""
        if self._polling or self._closed or not self.isVisible():
            return
        if os.environ.get(STORE_ENV, "").strip().lower() == "off":
            self._show_message(f"The run store is off ({STORE_ENV}=off), so no design study can be shown.")
            return
        self._polling = True
        chosen = self.study_combo.currentData()
        self._submit(lambda: self._read(chosen), self._on_read)

    def showEvent(self, event) -> None:  # noqa: N802 - Qt's method name
        super().showEvent(event)
        QTimer.singleShot(0, self.poll)  # at once, not a poll interval later

    def _on_read(self, result: tuple) -> None:
        self._polling = False
        self.reads += 1
        studies, snapshot = result
        if snapshot is not None and snapshot is self.snapshot and studies == self.studies:
            return  # nothing new
        self.studies, self.snapshot = studies, snapshot
        self.redraw_timer.start()

    # --- drawing -------------------------------------------------------------------------------------------
    def _show_message(self, text: str) -> None:
        self.message_label.setText(text)
        self.message_label.show()
        self.plot_widget.setVisible(False)

    def _sync_combo(self, combo: QComboBox, names: list[str], chosen: Optional[str]) -> None:
        if [combo.itemData(i) for i in range(combo.count())] == names:
            return
        combo.blockSignals(True)
        combo.clear()
        for name in names:
            combo.addItem(name, name)
        i = combo.findData(chosen)
        combo.setCurrentIndex(i if i >= 0 else 0)
        combo.blockSignals(False)

    @Slot()
    def redraw(self) -> None:
        """Draw the latest snapshot (GUI thread)."""
        self._sync_combo(self.study_combo, [s.name for s in self.studies],
                         self.snapshot.study.name if self.snapshot else None)
        snap = self.snapshot
        if snap is None:
            self._show_message(NO_STUDY)
            return
        objectives = list(snap.study.objectives)
        if [self.x_combo.itemData(i) for i in range(self.x_combo.count())] != objectives:
            self._sync_combo(self.x_combo, objectives, objectives[min(1, len(objectives) - 1)])
            self._sync_combo(self.y_combo, objectives, objectives[0])
        self.message_label.hide()
        self.plot_widget.setVisible(True)
        self._draw_points(snap)
        self.drawn.emit()

    def axes(self) -> tuple[int, int]:
        """The objectives (indices) along x and y."""
        return max(0, self.x_combo.currentIndex()), max(0, self.y_combo.currentIndex())

    def _draw_points(self, snap: StudySnapshot) -> None:
        study, (ix, iy) = snap.study, self.axes()
        names, dirs = study.objectives, study.directions
        ix, iy = min(ix, len(names) - 1), min(iy, len(names) - 1)
        values = np.array([t.values for t in snap.trials], dtype=float).reshape(len(snap.trials), len(names))
        x, y = _scaled(names[ix], values[:, ix]), _scaled(names[iy], values[:, iy])
        numbers = [t.number for t in snap.trials]
        front = pareto_front(x, y, (dirs[ix] == "maximize", dirs[iy] == "maximize"))
        on_front = np.zeros(len(numbers), dtype=bool)
        on_front[front] = True
        brushes = [pg.mkBrush(FRONT_COLOUR if f else POINT_COLOUR) for f in on_front]
        self.scatter.setData(x=x, y=y, data=numbers, brush=brushes, pen=pg.mkPen(theme.BG))
        self.front_line.setData(x[front], y[front])
        self.front_numbers = [numbers[i] for i in front]
        sel = [i for i, n in enumerate(numbers) if n == self.selected]
        self.marker.setData(x=x[sel], y=y[sel])
        self.plot.setLabel("bottom", _axis_titles(names[ix], dirs[ix])[0][0], **theme.label_style())
        self._titles[self.plot] = _axis_titles(names[iy], dirs[iy])
        fit_axis_titles(self._titles, self._drawn_titles)
        extra = [f"{n} {what}" for n, what in ((snap.running, "running"), (snap.pruned, "pruned"),
                                              (snap.failed, "failed")) if n]
        self.status_text = (f"{study.name}: {len(numbers)} finished trial(s), {len(front)} on the front"
                            + (f" ({', '.join(extra)})" if extra else "") + " — click a point to see its network")
        if not self.info_label.text() or self.info_label.text().startswith(study.name + ":"):
            self.info_label.setText(self.status_text)

    @Slot(int)
    def _on_study_chosen(self, _i: int) -> None:
        self.snapshot = None
        self.selected = None
        self.info_label.setText("")
        self.poll()

    @Slot(int)
    def _on_axes_chosen(self, _i: int) -> None:
        if self.snapshot is not None:
            self._draw_points(self.snapshot)

    # --- hover and click -----------------------------------------------------------------------------------
    def trial(self, number: int) -> Optional[TrialPoint]:
        snap = self.snapshot
        return next((t for t in snap.trials if t.number == number), None) if snap else None

    def _tip(self, x=None, y=None, data=None) -> str:
        point = self.trial(int(data)) if data is not None and self.snapshot else None
        return trial_text(point, self.snapshot.study) if point is not None and self.snapshot else ""

    def _on_hovered(self, _item, points, _ev) -> None:
        if len(points):
            self.info_label.setText(self._tip(data=points[0].data()).replace("\n", " · "))

    def _on_clicked(self, _item, points, _ev=None) -> None:
        if len(points):
            self.load_trial(int(points[0].data()))

    def load_trial(self, number: int) -> bool:
        """Fetch trial ``number``'s network from the store (worker), then emit network_requested."""
        point, snap = self.trial(number), self.snapshot
        if point is None or snap is None:
            return False
        if point.run_id is None:
            self.info_label.setText(f"Trial #{number} has no run in the run store, so its network cannot be shown.")
            return False
        folder, study, run_id = Path(self._tmp.name), snap.study, point.run_id

        def export() -> tuple[int, Optional[Path]]:
            with open_store(None) as store:
                rec = store.get(run_id)
            if rec.topology_json is None:
                return number, None
            name = f"{study.name}-trial-{number:04d}.json".replace("/", "_")
            return number, atomic_write_text(folder / name, rec.topology_json)

        self.info_label.setText(f"Loading trial #{number} (run {run_id})…")
        self._submit(export, self._on_exported)
        return True

    def _on_exported(self, result: tuple) -> None:
        number, path = result
        if path is None:
            self.info_label.setText(f"Trial #{number}'s run holds no trained network, so it cannot be shown.")
            return
        self.selected, self.loaded_path = number, Path(path)
        if self.snapshot is not None:
            self._draw_points(self.snapshot)
            self.info_label.setText(f"Showing trial #{number} in the views (evaluated on the current dataset) · "
                                    + self._tip(data=number).replace("\n", " · ").split(" · ", 1)[-1])
            self.network_requested.emit(str(path), self.snapshot.study)

    def shutdown(self) -> None:
        """On close: stop polling, let the worker finish its read, close the storage."""
        self._closed = True
        self.poll_timer.stop()
        self.redraw_timer.stop()
        self._pool.shutdown(wait=True)
        if self._watch is not None:
            self._watch.close()
            self._watch = None
        self._tmp.cleanup()


__all__ = ["DesignView", "NO_STUDY", "POLL_MS"]
