"""The confusion matrix of the run on display, as the group's public simulator draws it: rows are the true classes,
columns the predicted ones, every cell shows its count and is coloured by the fraction of its true class (the
row normalised to 1), and both axes carry the class names.

The counts are recorded with every finished run (``ResultRow.confusion``, computed in the engine process by
engine.core.metrics.confusion_matrix from the same forward passes as the run's accuracy), so the view draws
any run of the session, single or from a sweep, without a model in this process. It follows the explorer
(:meth:`ConfusionView.follow`): the run shown by the other views (a finished run, a clicked result), and says
what it waits for otherwise (a run in progress, an untrained preview, an imported file).
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Slot
from PySide6.QtWidgets import QLabel, QStackedWidget

from engine.experiments.confusion_figure import MAX_ANNOTATED_CLASSES, as_matrix, class_labels, row_normalised

from .. import theme
from .common import ElidedLabel, ViewCard

#: Colour of a row fraction of 0, 0.5 and 1 (dark to bright, readable on the dark theme).
COLOUR_STOPS = ("#20262f", "#2f6db5", "#a8d6ff")
#: Fraction above which a count is written in dark text (on the bright end of the map).
BRIGHT_CELL = 0.6
#: Counts are not written in a font smaller than this (pt): the colours alone show the matrix then.
MIN_FONT_PT = 5.5
#: Class names longer than this are cut on the axes (the tooltip-free view has no room for more).
NAME_CHARS = 12

MESSAGES = {
    "none": "Train a network to see its confusion matrix on the test set.",
    "live": "Training… the confusion matrix of this run comes when it ends (View ▸ Follow the live run).",
    "preview": "Untrained network: press Train to see its confusion matrix.",
    "imported": "An imported topology has no recorded confusion matrix: train it here, or draw one with "
                "rfexplorer-cli evaluate FILE --confusion cm.png.",
    "unrecorded": "This result has no recorded confusion matrix (it failed, or was written by an older version).",
}


def _short(name: str) -> str:
    return name if len(name) <= NAME_CHARS else name[: NAME_CHARS - 1] + "…"


class ConfusionView(ViewCard):
    def __init__(self, parent=None) -> None:
        super().__init__("Confusion matrix", "", parent)
        self.subtitle_label.setText("rows: true class · columns: predicted · colour: fraction of the row")
        self.subtitle_label.show()
        self.stack = QStackedWidget()
        self.body.addWidget(self.stack, 1)
        self.message_label = QLabel(MESSAGES["none"])
        self.message_label.setObjectName("Dim")
        self.message_label.setWordWrap(True)
        self.message_label.setAlignment(Qt.AlignCenter)
        self.stack.addWidget(self.message_label)
        self.glw = pg.GraphicsLayoutWidget()
        self.plot = self.glw.addPlot(row=0, col=0)
        theme.style_plot(self.plot, grid=False)
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.invertY(True)
        self.plot.getViewBox().setDefaultPadding(0.0)
        self.plot.getViewBox().sigResized.connect(self._fit_texts)
        lab = theme.label_style()
        self.plot.setLabel("bottom", "predicted class", **lab)
        self.plot.setLabel("left", "true class", **lab)
        self.image = pg.ImageItem(np.zeros((1, 1), np.float32), autoLevels=False)
        self.plot.addItem(self.image)
        cmap = pg.ColorMap([0.0, 0.5, 1.0], list(COLOUR_STOPS))
        self.image.setLookupTable(cmap.getLookupTable(nPts=256))
        self.image.setLevels((0.0, 1.0))
        self.cbar = pg.ColorBarItem(values=(0, 1), colorMap=cmap, interactive=False, width=12, colorMapMenu=False,
                                    label="row fraction")
        self.cbar.setImageItem(self.image, insert_in=self.plot)
        self.stack.addWidget(self.glw)
        self.summary_label = ElidedLabel("")
        self.summary_label.setObjectName("Dim")
        self.body.addWidget(self.summary_label)
        self._texts: list = []
        self._counts: Optional[np.ndarray] = None
        self._names: list[str] = []
        self._shown: Any = None  #: what is on display: a session point id, or a message key
        self._explorer = self._session = None

    def hasHeightForWidth(self) -> bool:  # noqa: N802 - size like a plot, not like wrapped text
        return False

    # --- following the explorer --------------------------------------------------------------------------------
    def follow(self, explorer, session) -> None:
        """Show the run the explorer shows (a finished or clicked run: its session point) from now on."""
        self._explorer, self._session = explorer, session
        explorer.state_changed.connect(self.on_state)
        session.changed.connect(self.on_session_changed)

    @Slot(object)
    def on_state(self, state) -> None:
        point = self._point_of(state)
        if point is not None:
            self.show_point(point)
        elif getattr(state, "live", False):
            self.show_message("live")
        elif "imported" in getattr(state, "label", ""):
            self.show_message("imported")
        else:
            self.show_message("preview")

    def _point_of(self, state):
        """The session point whose run ``state`` shows: the pinned one, or the one holding this very state."""
        pinned = getattr(self._explorer, "pinned", None)
        if pinned is not None:
            return pinned
        points = self._session.points if self._session is not None else []
        return next((p for p in reversed(points) if p.state is state and state is not None), None)

    @Slot()
    def on_session_changed(self) -> None:
        """A run just finished while the views follow the live run: show its matrix (even with no final state)."""
        points = self._session.points if self._session is not None else []
        if points and points[-1].source == "run" and getattr(self._explorer, "follow_live", True):
            self.show_point(points[-1])

    @Slot(int)
    def show_point_id(self, point_id: int) -> None:
        """A result clicked in the accuracy view (sweep runs too: their rows record the matrix)."""
        point = self._session.get(point_id) if self._session is not None else None
        if point is not None:
            self.show_point(point)

    def show_point(self, point) -> None:
        row = point.row
        if not row.confusion:
            self.show_message("imported" if point.source == "import" else "unrecorded")
            return
        where = "validation split" if row.evaluated_on == "validation" else "test set"
        names = (row.dataset_info or {}).get("class_names")
        self.show_matrix(row.confusion, names, source=f"— run #{point.id}: {point.describe()}", where=where)
        self._shown = point.id

    # --- drawing -----------------------------------------------------------------------------------------------
    def show_message(self, key: str) -> None:
        if self._shown == key:
            return  # (live states come at 11 Hz: nothing to redo)
        self._shown = key
        self.message_label.setText(MESSAGES.get(key, key))
        self.stack.setCurrentWidget(self.message_label)
        self.summary_label.setText("")
        self.set_source("")

    def show_matrix(self, counts, class_names: Optional[Sequence] = None, *, source: str = "",
                    where: str = "test set") -> None:
        """Draw ``counts`` ([true][predicted]) with ``class_names`` on both axes."""
        m = as_matrix(counts)
        n = m.shape[0]
        names = class_labels(class_names, n)
        frac = row_normalised(m)
        self._counts, self._names, self._shown = m, names, None
        self.image.setImage(np.ascontiguousarray(frac, dtype=np.float32), autoLevels=False, levels=(0.0, 1.0))
        self.image.setRect(0, 0, n, n)
        self.plot.setRange(xRange=(0, n), yRange=(0, n), padding=0)
        every = max(1, int(np.ceil(n / 20)))  # at most ~20 names per axis
        ticks = [[(i + 0.5, _short(names[i])) for i in range(0, n, every)]]
        self.plot.getAxis("bottom").setTicks(ticks)
        self.plot.getAxis("left").setTicks(ticks)
        self._draw_counts(m, frac)
        total = int(m.sum())
        self.summary_label.setText(f"{where}: {total:,} samples, accuracy {100 * np.trace(m) / max(total, 1):.2f} %"
                                   f"{'' if n <= MAX_ANNOTATED_CLASSES else ' (too many classes to write counts)'}")
        self.set_source(source)
        self.stack.setCurrentWidget(self.glw)

    def _draw_counts(self, m: np.ndarray, frac: np.ndarray) -> None:
        n = m.shape[0]
        cells = n * n if n <= MAX_ANNOTATED_CLASSES else 0
        while len(self._texts) < cells:  # text items are kept and reused: only their text changes
            item = pg.TextItem("", anchor=(0.5, 0.5))
            self.plot.addItem(item)
            self._texts.append(item)
        for k, item in enumerate(self._texts):
            if k >= cells:
                item.hide()
                continue
            i, j = divmod(k, n)
            item.setText(f"{m[i, j]:d}")
            item.setColor("#10141a" if frac[i, j] > BRIGHT_CELL else theme.FG)
            item.setPos(j + 0.5, i + 0.5)
            item.show()
        self._fit_texts()

    @Slot()
    def _fit_texts(self, *_args) -> None:
        """Counts in a font that fits their cells (hidden when the cells are too small to read them)."""
        if self._counts is None or not self._texts:
            return
        n = self._counts.shape[0]
        vb = self.plot.getViewBox()
        cell_w, cell_h = vb.width() / max(n, 1), vb.height() / max(n, 1)  # the cells fill the dock (not square)
        digits = max(len(str(int(self._counts.max()))), 1)
        size = min(10.0, cell_w / (0.75 * digits + 0.6), 0.55 * cell_h)  # pt; a digit is about 0.6-0.75 em wide
        visible = size >= MIN_FONT_PT and n <= MAX_ANNOTATED_CLASSES
        font = theme.axis_font(max(size, MIN_FONT_PT))
        for k, item in enumerate(self._texts):
            if k < n * n:
                item.setFont(font)
                item.setVisible(visible)

    def data(self) -> dict:
        """What is drawn (for tests and exports): counts, class names, the cell texts, or the message."""
        shown = self.stack.currentWidget() is self.glw and self._counts is not None
        cells = self._counts.size if shown and self._counts.shape[0] <= MAX_ANNOTATED_CLASSES else 0
        texts = [t.toPlainText() for t in self._texts[:cells]]  # (hidden while the cells are too small)
        return {"counts": self._counts if shown else None, "names": list(self._names) if shown else [],
                "texts": texts, "message": None if shown else self.message_label.text(),
                "image": np.array(self.image.image) if shown else None}
