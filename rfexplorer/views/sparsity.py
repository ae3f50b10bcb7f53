"""View 3: test accuracy versus the percentage of synapses removed.

The x axis is labelled in % of synapses removed, on a log scale of the synapses that remain (so 90 %, 99 %
and 99.9 % removed are evenly spaced: that is where the RF models live). Each model is a line through its
mean accuracy per sparsity with ± std error bars, plus its individual runs as markers; the dense perceptron is
a horizontal level. Results from sweeps and single runs accumulate over the session. The run in progress is
the hollow ring that moves live. Hovering a run shows its details; clicking it shows its topology in the
spectrum and assignment views.
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QLabel

from engine.results import aggregate

from .. import theme
from ..labels import model_label, model_order, uses_k
from ..session import SessionPoint
from .common import ViewCard

#: Models drawn with a dashed line: the floor every sparse method should beat.
DASHED = ("random",)
SYMBOL_GLYPHS = {"o": "●", "s": "■", "t": "▼", "t1": "▲", "d": "◆", "star": "★", "x": "✕", "+": "+"}
REMOVED_TICKS = (0, 50, 80, 90, 95, 98, 99, 99.5, 99.8, 99.9, 99.95, 99.98, 99.99)
X_MARGIN = 0.08


def x_max(n_inputs: int) -> float:
    """Right end of the x axis for N inputs: K = 1 (the sparsest network), plus a margin."""
    return math.log10(max(int(n_inputs), 2)) + X_MARGIN


def removed_to_x(removed_pct) -> np.ndarray:
    """Plot coordinate of a sparsity: log10(100 / remaining %)."""
    r = np.clip(100.0 - np.asarray(removed_pct, dtype=float), 1e-6, 100.0)
    return np.log10(100.0 / r)


def x_to_removed(x: float) -> float:
    return 100.0 - 100.0 / 10 ** x


class RemovedAxis(pg.AxisItem):
    """Ticks at round percentages of removed synapses on the log-of-remaining scale."""

    def tickValues(self, minVal, maxVal, size):  # noqa: N802
        vals = [(r, float(removed_to_x(r))) for r in REMOVED_TICKS]
        vals = [(r, x) for r, x in vals if minVal <= x <= maxVal]
        if not vals or size <= 0:
            return []
        span = maxVal - minVal
        keep, last = [], -1e9
        for r, x in vals:
            if (x - last) / span * size >= 36:
                keep.append(x)
                last = x
        return [(1.0, keep)]

    def tickStrings(self, values, scale, spacing):  # noqa: N802
        return [f"{x_to_removed(v):.4g}" for v in values]


class _ModelSeries:
    """The pyqtgraph items of one model, created once and updated with setData."""

    def __init__(self, view: "SparsityView", model: str) -> None:
        colour, symbol = theme.model_style(model)
        self.model = model
        dashed = model in DASHED
        self.line = pg.PlotDataItem(pen=pg.mkPen(colour, width=2, style=Qt.DashLine if dashed else Qt.SolidLine),
                                    symbol=symbol, symbolSize=14 if symbol == "star" else 9, symbolBrush=colour, symbolPen=pg.mkPen(theme.BG),
                                    name=model_label(model))
        self.errors = pg.ErrorBarItem(x=np.zeros(0), y=np.zeros(0), height=np.zeros(0),
                                      pen=pg.mkPen(colour, width=1.2), beam=0.035)
        self.runs = pg.ScatterPlotItem(size=6, symbol="o", pen=pg.mkPen(colour, width=1),
                                       brush=pg.mkBrush(pg.mkColor(colour).red(), pg.mkColor(colour).green(),
                                                        pg.mkColor(colour).blue(), 70),
                                       hoverable=True, hoverSize=11, hoverPen=pg.mkPen("#ffffff", width=1.5),
                                       tip=view._tip)
        self.runs.sigHovered.connect(view._on_hover)
        self.runs.sigClicked.connect(view._on_click)
        view.plot.addItem(self.errors)
        view.plot.addItem(self.line)
        view.plot.addItem(self.runs)


class SparsityView(ViewCard):
    point_clicked = Signal(int)  #: SessionPoint.id

    def __init__(self, parent=None) -> None:
        super().__init__("Accuracy vs sparsity", "", parent)
        self.subtitle_label.setText("Lines: mean ± std over seeds · dots: single runs (hover for details, click "
                                    "to show the topology) · ring: the run in progress")
        self.subtitle_label.show()
        self._points: dict[int, SessionPoint] = {}
        self._series: dict[str, _ModelSeries] = {}
        self.glw = pg.GraphicsLayoutWidget()
        self.body.addWidget(self.glw, 1)
        self.axis = RemovedAxis("bottom")
        self.plot = self.glw.addPlot(row=0, col=0, axisItems={"bottom": self.axis})
        theme.style_plot(self.plot)
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        lab = theme.label_style()
        self.plot.setLabel("bottom", "synapses removed (%, log scale of those kept)", **lab)
        self.plot.setLabel("left", "test accuracy (%)", **lab)
        self.plot.setYRange(0, 100, padding=0)
        # the legend is a line of text under the plot: it never covers data and wraps in narrow windows
        self.legend = QLabel("")
        self.legend.setWordWrap(True)
        self.legend.setTextFormat(Qt.RichText)
        self.body.addWidget(self.legend)

        #: one horizontal level per model that uses every input (no K), e.g. the dense perceptron
        self.level_lines: dict[str, pg.InfiniteLine] = {}

        self.live = pg.ScatterPlotItem(size=16, symbol="o", pen=pg.mkPen("#ffffff", width=2),
                                       brush=pg.mkBrush(None))
        self.live_label = pg.TextItem("", color=theme.FG, anchor=(0.5, 1.35))
        self.plot.addItem(self.live)
        self.plot.addItem(self.live_label)

        self.empty_note = pg.TextItem(html=f"<div style='color:{theme.FG_DIM}; font-size:10pt; text-align:center'>"
                                           "Results gather here: release a sparsity slider, press Train,<br>"
                                           "or run a sweep (Run ▸ Run sweep…).</div>", anchor=(0.5, 0.5))
        self.plot.addItem(self.empty_note, ignoreBounds=True)
        self.n_inputs = 0
        self._x_max = 0.0
        self.set_n_inputs(2)  # the dataset's input count arrives with the dataset

        self.details = QLabel("Hover a point for its run's details.")
        self.details.setObjectName("Dim")
        self.details.setWordWrap(True)
        self.body.addWidget(self.details)

    def set_n_inputs(self, n_inputs: int) -> None:
        """Span the x axis from dense to K = 1 of N inputs (and of the largest N among the results shown)."""
        n = max(int(n_inputs), 2, *(int(p.row.n_inputs or 0) for p in self._points.values()))
        if n == self.n_inputs:
            return
        self.n_inputs = n
        self._x_max = x_max(n)
        self.plot.setLimits(xMin=-0.3, xMax=self._x_max + 0.3, yMin=-5, yMax=105)
        self.plot.setXRange(-0.05, self._x_max, padding=0)
        self.empty_note.setPos(self._x_max / 2, 50)

    # --- data ---------------------------------------------------------------------------------------------
    def _level_line(self, model: str) -> pg.InfiniteLine:
        if model not in self.level_lines:
            line = pg.InfiniteLine(angle=0, pen=pg.mkPen(theme.model_color(model), width=1, style=Qt.DashLine),
                                   label=model_label(model, short=True).lower() + " {value:.1f} %",
                                   labelOpts={"position": 0.97, "color": theme.FG, "anchors": [(1, 1), (1, 1)]})
            line.hide()
            self.plot.addItem(line, ignoreBounds=True)
            self.level_lines[model] = line
        return self.level_lines[model]

    def _series_for(self, model: str) -> _ModelSeries:
        if model not in self._series:
            self._series[model] = _ModelSeries(self, model)
            entries = []
            for m in model_order(self._series):
                colour, symbol = theme.model_style(m)
                glyph = SYMBOL_GLYPHS.get(symbol, "●")
                entries.append(f"<span style='color:{colour}'>{'– –' if m in DASHED else '—'}{glyph}</span>"
                               f"&nbsp;{model_label(m, short=True)}")
            for m in model_order(self._series):
                if not uses_k(m):
                    entries.append(f"<span style='color:{theme.model_color(m)}'>- - -</span>&nbsp;"
                                   f"{model_label(m, short=True).lower()} level")
            self.legend.setText("&nbsp;&nbsp; ".join(entries))
        return self._series[model]

    def set_points(self, points: list[SessionPoint]) -> None:
        """Redraw from every session point (called when the session changes). Means and stds come from
        engine.results.aggregate: one per (dataset, model, K, budget), and a model's line joins the points of
        one dataset only."""
        points = [p for p in points if math.isfinite(p.accuracy)]
        self._points = {p.id: p for p in points}
        self.set_n_inputs(self.n_inputs)
        self.empty_note.setVisible(not points)
        by_model: dict[str, list[SessionPoint]] = {}
        for p in points:
            by_model.setdefault(p.model, []).append(p)
        stats: dict[str, list] = {}
        for a in aggregate([p.row for p in points]):
            if a.mean is not None:
                stats.setdefault(a.model, []).append(a)
        lowest = 100.0
        for model in list(by_model) + [m for m in self._series if m not in by_model]:
            series = self._series_for(model)
            pts = by_model.get(model, [])
            xs = removed_to_x([p.removed_pct for p in pts]) if pts else np.zeros(0)
            ys = np.array([100 * p.accuracy for p in pts], dtype=float)
            series.runs.setData(x=xs, y=ys, data=[p.id for p in pts])
            groups = sorted(stats.get(model, []), key=lambda a: (str(a.dataset), a.removed_synapses_pct))
            if groups:
                sx = removed_to_x([a.removed_synapses_pct for a in groups])
                sy = np.array([100 * a.mean for a in groups])
                sd = np.array([100 * (a.std or 0.0) for a in groups])
                same = np.array([a.dataset == b.dataset for a, b in zip(groups, groups[1:])] + [False])
                series.line.setData(sx, sy, connect=same)
                series.errors.setData(x=sx, y=sy, height=2 * sd)
                lowest = min(lowest, float(np.min(sy - sd)))
            else:
                series.line.setData([], [])
                series.errors.setData(x=np.zeros(0), y=np.zeros(0), height=np.zeros(0))
            if len(ys):
                lowest = min(lowest, float(np.min(ys)))
            if not uses_k(model):
                line = self._level_line(model)
                if groups:
                    line.show()  # (the label only follows the value while visible)
                    # one dataset's level, never an average over datasets: the one with the most runs
                    main = max(groups, key=lambda a: (a.n, a.dataset == groups[-1].dataset))
                    line.setValue(100 * float(main.mean))
                else:
                    line.hide()
        lo = max(0.0, 10 * math.floor((lowest - 5) / 10)) if points else 0.0
        self.plot.setYRange(min(lo, 80.0), 100, padding=0.02)

    def set_live(self, removed_pct: Optional[float], accuracy: Optional[float], label: str = "") -> None:
        """Move the ring of the run in progress (None hides it)."""
        if removed_pct is None or accuracy is None or not math.isfinite(accuracy):
            self.live.setData([], [])
            self.live_label.setText("")
            return
        x = float(removed_to_x(removed_pct))
        y = 100 * accuracy
        self.live.setData([x], [y])
        self.live_label.setText(label)
        self.live_label.setPos(x, y)
        lo = self.plot.getViewBox().viewRange()[1][0]
        if y < lo:
            self.plot.setYRange(max(0.0, 10 * math.floor((y - 5) / 10)), 100, padding=0.02)

    def live_position(self) -> Optional[tuple[float, float]]:
        x, y = self.live.getData()
        return (float(x[0]), float(y[0])) if x is not None and len(x) else None

    def n_points(self) -> int:
        return sum(len(s.runs.data) for s in self._series.values())

    # --- hover / click --------------------------------------------------------------------------------------
    def _tip(self, x, y, data) -> str:
        p = self._points.get(data)
        return p.describe() if p is not None else ""

    def _on_hover(self, item, points, ev) -> None:
        if len(points):
            self.show_details(points[0].data())

    def show_details(self, point_id: int) -> None:
        p = self._points.get(point_id)
        if p is not None:
            hint = "" if p.state is not None else " (no topology kept for sweep runs)"
            self.details.setText(p.describe() + hint)

    def _on_click(self, item, points, ev) -> None:
        if len(points):
            self.point_clicked.emit(int(points[0].data()))
