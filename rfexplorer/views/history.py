"""A small plot of loss and accuracy versus epoch for the run in progress (or the last one).

Training loss (right axis) and training accuracy are traced live at fractional epochs; the test accuracy
is a marker at the end of each epoch.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt

from .. import theme
from .common import TwinAxis, ViewCard, rich_legend, watch_axis_titles

TRAIN_COLOUR = "#5fa8ff"
TEST_COLOUR = "#ffa54f"
LOSS_COLOUR = "#b0b6c2"
#: Runs up to this many epochs mark the test accuracy of each epoch.
MARKED_EPOCHS = 40


class HistoryView(ViewCard):
    def __init__(self, parent=None) -> None:
        super().__init__("Training history", "", parent)
        self.subtitle_label.setText(rich_legend([(TRAIN_COLOUR, "train acc."), (TEST_COLOUR, "test acc."),
                                                 (LOSS_COLOUR, "loss (right)")]))
        self.subtitle_label.show()
        self.title_label.hide()  # its dock says "Training history": the room goes to the plot
        self.glw = pg.GraphicsLayoutWidget()
        self.body.addWidget(self.glw, 1)
        self.plot = self.glw.addPlot(row=0, col=0)
        theme.style_plot(self.plot)
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        self.plot.setMouseEnabled(x=False, y=False)
        lab = theme.label_style()
        self.plot.setLabel("bottom", "epoch", **lab)
        self._titles = {self.plot: [("accuracy (%)", None), ("%", None)]}
        watch_axis_titles(self._titles, {})
        self.loss_axis = TwinAxis(self.plot, "loss", color=LOSS_COLOUR)
        self.plot.getAxis("right").setTickFont(theme.axis_font(8.5))
        self.train_curve = pg.PlotDataItem(pen=pg.mkPen(TRAIN_COLOUR, width=1.5))
        self.test_curve = pg.PlotDataItem(pen=pg.mkPen(TEST_COLOUR, width=1.5), symbol="o", symbolSize=7,
                                          symbolBrush=TEST_COLOUR, symbolPen=pg.mkPen(theme.BG))
        self.loss_curve = pg.PlotDataItem(pen=pg.mkPen(LOSS_COLOUR, width=1.2, style=Qt.DashLine))
        self.plot.addItem(self.train_curve)
        self.plot.addItem(self.test_curve)
        self.loss_axis.add(self.loss_curve)
        self.plot.setYRange(0, 100, padding=0.02)
        self.loss_axis.vb.enableAutoRange(axis=pg.ViewBox.YAxis)
        self.reset(1)

    def hasHeightForWidth(self) -> bool:  # noqa: N802 - size like a plot, not like wrapped text
        return False

    def _mark_epochs(self) -> None:
        """One marker per epoch for short runs; long runs (small datasets) get a plain line."""
        many = self._epochs > MARKED_EPOCHS
        self.test_curve.setSymbolSize(0 if many else 7)
        self.test_curve.setSymbol(None if many else "o")

    def reset(self, epochs: int) -> None:
        self._epochs = max(1, int(epochs))
        self._mark_epochs()
        self._trace: dict[float, tuple[float, float]] = {}  #: fractional epoch -> (loss, train acc. %)
        self.train_curve.setData([], [])
        self.test_curve.setData([], [])
        self.loss_curve.setData([], [])
        self.plot.setXRange(0, self._epochs, padding=0.02)

    def add_snapshot(self, snap) -> None:
        """Append a live point (fractional epoch) and redraw the per-epoch test accuracy."""
        if snap.epochs != self._epochs:
            self._epochs = snap.epochs
            self._mark_epochs()
            self.plot.setXRange(0, self._epochs, padding=0.02)
        hist = list(snap.history)
        if snap.step > 0 and not snap.final:
            x = snap.epochs * snap.step / max(snap.total_steps, 1)
            self._trace.setdefault(x, (float(snap.loss), 100 * float(snap.train_accuracy)))
        # the epoch-end values always join the trace (and are all of it for a finished run shown from its
        # history): the views draw only the latest snapshot, so on a busy machine every live point between two
        # epoch ends may have been skipped
        for e, lo, tr, _ in hist:
            self._trace[float(e)] = (float(lo), 100 * float(tr))
        if self._trace:
            t = np.asarray([(x, lo, tr) for x, (lo, tr) in sorted(self._trace.items())], dtype=float)
            self.train_curve.setData(t[:, 0], t[:, 2])
            self.loss_curve.setData(t[:, 0], t[:, 1])
        if hist:
            ep = np.array([h[0] for h in hist], dtype=float)
            te = np.array([100 * (h[3] if h[3] is not None else np.nan) for h in hist], dtype=float)
            self.test_curve.setData(ep, te)

    def data(self) -> dict:
        tx, ty = self.train_curve.getData()
        ex, ey = self.test_curve.getData()
        return {"train": None if ty is None else np.array(ty), "test": None if ey is None else np.array(ey)}
