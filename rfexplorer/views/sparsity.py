"""View 3: test accuracy versus the percentage of synapses removed.

The x axis is labelled in % of synapses removed, on a log scale of the synapses that remain (so 90 %, 99 %
and 99.9 % removed are evenly spaced: that is where the RF models live). A multilayer network counts the
synapses of all its layers (resonators for RF, active weights for software models) against the dense network
of the same shape (rfexplorer.series.network_removed_pct).

One dataset is shown at a time (the combo box in the header; it follows the newest run). Each *series* -- the
runs of one settings tree except the seed and the sparsity (rfexplorer.series) -- is a line through its mean
accuracy per sparsity with ± std error bars, plus its individual runs as markers; a model that uses every input
(the dense perceptron) is a horizontal level. Two series of one model share its colour and differ in line
style; the legend names each by the settings in which it differs from the others ("RF · 3 ep"). Results from
sweeps and single runs accumulate over the session. The run in progress is the hollow ring that moves live.
Hovering a run shows its details; clicking it shows its topology in the spectrum and assignment views.
"""
from __future__ import annotations

import html
import math
from typing import Optional

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QLabel

from engine.io.results import aggregate

from .. import series as series_mod
from .. import theme
from ..labels import model_label, model_order, uses_k
from ..session import SessionPoint
from .common import ViewCard, watch_axis_titles

#: Models drawn with a dashed line: the floor every sparse method should beat.
DASHED = ("random",)
SYMBOL_GLYPHS = {"o": "●", "s": "■", "t": "▼", "t1": "▲", "d": "◆", "star": "★", "x": "✕", "+": "+"}
REMOVED_TICKS = (0, 50, 80, 90, 95, 98, 99, 99.5, 99.8, 99.9, 99.95, 99.98, 99.99)
X_MARGIN = 0.08
DETAILS_HINT = "Hover a point for its run's details."
#: Below this height (px) the card leaves out its subtitle (in the title's tooltip then), so the plot keeps room.
SUBTITLE_MIN_CARD_HEIGHT = 340
#: Line styles of a model's first, second, ... series (and their legend glyphs).
#: (Box-drawing glyphs: no line break opportunity inside them, unlike dashes.)
LINE_STYLES = ((Qt.SolidLine, "──"), (Qt.DashLine, "╌╌"), (Qt.DotLine, "┈┈"), (Qt.DashDotLine, "─·─"))


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

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.enableAutoSIPrefix(False)  # the ticks are percentages as written, never "(x0.001)" of log values

    def tickValues(self, minVal, maxVal, size):  # noqa: N802 - Qt's method name
        vals = [(r, float(removed_to_x(r))) for r in REMOVED_TICKS]
        vals = [(r, x) for r, x in vals if minVal <= x <= maxVal]
        if not vals or size <= 0:
            return []
        span = maxVal - minVal
        keep, last = [], -1e9
        for _r, x in vals:
            if (x - last) / span * size >= 36:
                keep.append(x)
                last = x
        return [(1.0, keep)]

    def tickStrings(self, values, scale, spacing):  # noqa: N802 - Qt's method name
        return [f"{x_to_removed(v):.4g}" for v in values]


def _line_style(model: str, variant: int) -> tuple:
    """(Qt pen style, legend glyph) of a model's series number ``variant``: dashed first for the random floor
    and for levels (models that use every input)."""
    dashed_first = model in DASHED or not uses_k(model)
    return LINE_STYLES[(variant + (1 if dashed_first else 0)) % len(LINE_STYLES)]


class _Series:
    """The pyqtgraph items of one series (one model, one settings tree), updated with setData."""

    def __init__(self, view: "SparsityView", model: str, variant: int) -> None:
        colour, symbol = theme.model_style(model)
        self.model, self.variant, self.label = model, variant, model_label(model, short=True)
        style, self.glyph = _line_style(model, variant)
        hollow = variant > 0  # later series of a model: hollow markers as well as another line style
        self.line = pg.PlotDataItem(pen=pg.mkPen(colour, width=2, style=style), symbol=symbol,
                                    symbolSize=14 if symbol == "star" else 9,
                                    symbolBrush=pg.mkBrush(theme.BG) if hollow else colour,
                                    symbolPen=pg.mkPen(colour if hollow else theme.BG, width=1.5))
        self.errors = pg.ErrorBarItem(x=np.zeros(0), y=np.zeros(0), height=np.zeros(0),
                                      pen=pg.mkPen(colour, width=1.2), beam=0.035)
        c = pg.mkColor(colour)
        self.runs = pg.ScatterPlotItem(size=6, symbol="o", pen=pg.mkPen(colour, width=1),
                                       brush=pg.mkBrush(c.red(), c.green(), c.blue(), 70),
                                       hoverable=True, hoverSize=11, hoverPen=pg.mkPen("#ffffff", width=1.5),
                                       tip=view._tip)
        self.runs.sigHovered.connect(view._on_hover)
        self.runs.sigClicked.connect(view._on_click)
        self.level: Optional[pg.InfiniteLine] = None
        if not uses_k(model):  # a model that uses every input: a level across the plot
            # labels at the right: the first level's above its line, the second's below, further ones to the left
            below = variant % 2 == 1
            self.level = pg.InfiniteLine(angle=0, pen=pg.mkPen(colour, width=1, style=style),
                                         label="{value:.1f} %",
                                         labelOpts={"position": max(0.2, 0.97 - 0.3 * (variant // 2)),
                                                    "color": theme.FG,
                                                    "anchors": [(1, 0), (1, 0)] if below else [(1, 1), (1, 1)]})
            self.level.hide()
            view.plot.addItem(self.level, ignoreBounds=True)
        self.items = [self.errors, self.line, self.runs]
        for item in self.items:
            view.plot.addItem(item)

    def remove(self, plot) -> None:
        for item in self.items + ([self.level] if self.level is not None else []):
            plot.removeItem(item)

    def set_label(self, label: str) -> None:
        self.label = label
        if self.level is not None:
            self.level.label.format = label.replace("{", "(").replace("}", ")") + " {value:.1f} %"
            self.level.label.valueChanged()

    def legend_html(self) -> str:
        colour, symbol = theme.model_style(self.model)
        glyph = SYMBOL_GLYPHS.get(symbol, "●")
        if self.variant > 0:
            glyph = {"●": "○", "■": "□", "▼": "▽", "▲": "△", "◆": "◇", "★": "☆"}.get(glyph, glyph)
        if self.level is not None:
            mark, text = self.glyph, f"{self.label} level"
        else:
            mark, text = self.glyph + glyph, self.label
        # one entry is never broken inside (no-break spaces): the legend wraps between entries
        return (f"<span style='color:{colour}'>{html.escape(mark)}</span>&nbsp;"
                + html.escape(text).replace(" ", "&nbsp;"))

    def set_data(self, pts: list[SessionPoint], x_of: dict) -> list[float]:
        """Draw the runs and the mean ± std per sparsity (engine.io.results.aggregate over this series' rows,
        which differ only in seed and sparsity). Returns the y values drawn (for the y range)."""
        xs = removed_to_x([x_of[p.id] for p in pts]) if pts else np.zeros(0)
        ys = np.array([100 * p.accuracy for p in pts], dtype=float)
        self.runs.setData(x=xs, y=ys, data=[p.id for p in pts])
        where = {(int(p.row.resonators_per_chain), tuple(p.row.layer_ks)): x_of[p.id] for p in pts}
        groups = [a for a in aggregate([p.row for p in pts]) if a.mean is not None]
        groups.sort(key=lambda a: where[(int(a.resonators_per_chain), tuple(a.layer_ks))])
        drawn = list(ys)
        if groups:
            sx = removed_to_x([where[(int(a.resonators_per_chain), tuple(a.layer_ks))] for a in groups])
            sy = np.array([100 * a.mean for a in groups])
            sd = np.array([100 * (a.std or 0.0) for a in groups])
            self.line.setData(sx, sy)
            self.errors.setData(x=sx, y=sy, height=2 * sd)
            drawn += list(sy - sd)
        else:
            self.line.setData([], [])
            self.errors.setData(x=np.zeros(0), y=np.zeros(0), height=np.zeros(0))
        if self.level is not None:
            if groups:
                self.level.show()  # (the label only follows the value while visible)
                self.level.setValue(100 * float(max(groups, key=lambda a: a.n).mean))
                self.level.label.valueChanged()  # (its text may have changed while it was hidden)
            else:
                self.level.hide()
        return drawn


class SparsityView(ViewCard):
    point_clicked = Signal(int)  #: SessionPoint.id

    def __init__(self, parent=None) -> None:
        super().__init__("Accuracy vs sparsity", "", parent)
        self.subtitle_label.setText("Lines: mean ± std over seeds · dots: single runs (hover: details, click: "
                                    "its topology) · ring: the run in progress")
        self.subtitle_label.setToolTip("Lines join the mean ± std over seeds of runs with the same settings; "
                                       "dots are single runs")
        self.subtitle_label.show()
        self.dataset_combo = QComboBox()
        self.dataset_combo.setSizeAdjustPolicy(QComboBox.AdjustToContents)
        self.dataset_combo.setToolTip("Dataset whose results are shown: accuracies on different datasets are "
                                      "never compared on one plot (follows the newest run)")
        self.dataset_combo.hide()
        self.dataset_combo.currentIndexChanged.connect(self._on_dataset_chosen)
        self.add_header_widget(self.dataset_combo)
        self._points: dict[int, SessionPoint] = {}
        self._keys: dict[int, tuple] = {}  #: SessionPoint.id -> its series key (cached: points never change)
        self._series: dict[tuple, _Series] = {}
        self._dataset: Optional[str] = None
        self._newest_id = 0
        self._details_id: Optional[int] = None  #: the run whose details are on display
        self.title_label.setToolTip(self.subtitle_label.text())
        self.glw = pg.GraphicsLayoutWidget()
        self.body.addWidget(self.glw, 1)
        self.axis = RemovedAxis("bottom")
        self.plot = self.glw.addPlot(row=0, col=0, axisItems={"bottom": self.axis})
        theme.style_plot(self.plot)
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        lab = theme.label_style()
        self.plot.setLabel("bottom", "synapses removed (%, log scale of those kept)", **lab)  # fits narrow docks
        self._titles = {self.plot: [("test accuracy (%)", None), ("accuracy (%)", None), ("%", None)]}
        watch_axis_titles(self._titles, {})
        self.plot.setYRange(0, 100, padding=0)
        # the legend is a line of text under the plot: it never covers data and wraps in narrow windows
        self.legend = QLabel("")
        self.legend.setWordWrap(True)
        self.legend.setTextFormat(Qt.RichText)
        self.body.addWidget(self.legend)

        self.live = pg.ScatterPlotItem(size=16, symbol="o", pen=pg.mkPen("#ffffff", width=2),
                                       brush=pg.mkBrush(None))
        self.live_label = pg.TextItem("", color=theme.FG, anchor=(0.5, 1.35))
        self.plot.addItem(self.live)
        self.plot.addItem(self.live_label)

        self.empty_note = pg.TextItem(html=f"<div style='color:{theme.FG_DIM}; font-size:10pt; text-align:center'>"
                                           "Results gather here: release a sparsity slider, press Train, "
                                           "or run a sweep (Run ▸ Run sweep…).</div>", anchor=(0.5, 0.5))
        self.plot.addItem(self.empty_note, ignoreBounds=True)
        self.plot.getViewBox().sigResized.connect(self._place_note)
        self.plot.getViewBox().sigRangeChanged.connect(self._place_note)
        self.n_inputs = 0
        self._x_max = 0.0
        self.set_n_inputs(2)  # the dataset's input count arrives with the dataset

        self.details = QLabel(DETAILS_HINT)
        self.details.setObjectName("Dim")
        self.details.setWordWrap(True)
        self.body.addWidget(self.details)

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt's method name
        self.subtitle_label.setVisible(self.height() >= SUBTITLE_MIN_CARD_HEIGHT)
        super().resizeEvent(event)

    def set_n_inputs(self, n_inputs: int) -> None:
        """Span the x axis from dense to K = 1 of N inputs (and to the sparsest result shown)."""
        n = max(int(n_inputs), 2)
        shown = self._shown_points()
        right = max([x_max(n)] + [x_max(p.row.n_inputs) for p in shown]
                    + [float(removed_to_x(self._x_of(p))) + X_MARGIN for p in shown])
        if n == self.n_inputs and right == self._x_max:
            return
        self.n_inputs, self._x_max = n, right
        self.plot.setLimits(xMin=-0.3, xMax=self._x_max + 0.3, yMin=-5, yMax=105)
        self.plot.setXRange(-0.05, self._x_max, padding=0)
        self._place_note()

    def _place_note(self, *_args) -> None:
        """The empty note wraps to the plot's width (never clipped) and sits in its middle."""
        vb = self.plot.getViewBox()
        self.empty_note.setTextWidth(max(80.0, vb.width() - 16.0))
        xr, yr = vb.viewRange()
        self.empty_note.setPos(0.5 * (xr[0] + xr[1]), 0.5 * (yr[0] + yr[1]))

    # --- data ---------------------------------------------------------------------------------------------
    @property
    def level_lines(self) -> dict[str, pg.InfiniteLine]:
        """Per model that uses every input, the level of its series on display with the most runs."""
        out: dict[str, tuple] = {}
        for s in self._series.values():
            if s.level is not None:
                n = len(s.runs.data)
                if s.model not in out or n > out[s.model][0]:
                    out[s.model] = (n, s.level)
        return {m: line for m, (n, line) in out.items()}

    @property
    def dataset(self) -> Optional[str]:
        """The dataset on display (None: no results)."""
        return self._dataset

    def datasets(self) -> list[str]:
        """The datasets of the session's results, in the selector's order."""
        return [self.dataset_combo.itemData(i) for i in range(self.dataset_combo.count())]

    def set_dataset(self, dataset: str) -> None:
        """Show the results of one dataset (one of :meth:`datasets`)."""
        i = self.dataset_combo.findData(dataset)
        if i < 0:
            raise ValueError(f"no results on dataset {dataset!r} in this session")
        self.dataset_combo.setCurrentIndex(i)  # -> _on_dataset_chosen

    def series_labels(self) -> list[str]:
        """Labels of the series on display, in legend order."""
        return [s.label for s in self._series.values()]

    def series_of(self, point_id: int) -> Optional[str]:
        """The label of the series a point on display belongs to."""
        key = self._keys.get(point_id)
        return self._series[key].label if key in self._series else None

    def _x_of(self, p: SessionPoint) -> float:
        return series_mod.network_removed_pct(p.row)

    def _shown_points(self) -> list[SessionPoint]:
        return [p for p in self._points.values() if str(p.row.dataset or "") == self._dataset]

    def set_points(self, points: list[SessionPoint]) -> None:
        """Redraw from every session point (called when the session changes). A new result switches the view
        to its dataset; series come from rfexplorer.series, means and stds from engine.io.results.aggregate."""
        points = [p for p in points if math.isfinite(p.accuracy)]
        self._points = {p.id: p for p in points}
        self._keys = {p.id: self._keys.get(p.id) or series_mod.series_key(p.row) for p in points}
        if self._details_id not in self._points:
            self.details.setText(DETAILS_HINT)
        fresh = [p for p in points if p.id > self._newest_id]
        if fresh:
            self._newest_id = max(p.id for p in fresh)
            self._dataset = str(max(fresh, key=lambda p: p.id).row.dataset or "")
        counts: dict[str, int] = {}
        for p in points:
            counts[str(p.row.dataset or "")] = counts.get(str(p.row.dataset or ""), 0) + 1
        if self._dataset not in counts:
            self._dataset = str(points[-1].row.dataset or "") if points else None
        self._fill_combo(counts)
        self._redraw()

    def _fill_combo(self, counts: dict[str, int]) -> None:
        combo = self.dataset_combo
        combo.blockSignals(True)
        combo.clear()
        for name, n in counts.items():
            combo.addItem(f"{series_mod.dataset_text(name)} ({n} run{'s' if n != 1 else ''})", name)
            combo.setItemData(combo.count() - 1, name or "(no dataset recorded)", Qt.ToolTipRole)
        combo.setCurrentIndex(max(0, combo.findData(self._dataset)))
        combo.blockSignals(False)
        combo.setVisible(bool(counts))
        combo.setEnabled(len(counts) > 1)

    def _on_dataset_chosen(self, index: int) -> None:
        if index >= 0 and self.dataset_combo.itemData(index) != self._dataset:
            self._dataset = self.dataset_combo.itemData(index)
            self._redraw()

    def _sync_series(self, by_key: dict[tuple, list[SessionPoint]]) -> None:
        """Create and remove series items so that there is one per key, styled by its rank within its model."""
        rank = {m: i for i, m in enumerate(model_order(v[0].model for v in by_key.values()))}
        order = sorted(by_key, key=lambda k: (rank[by_key[k][0].model], min(p.id for p in by_key[k])))
        variants: dict[tuple, int] = {}
        per_model: dict[str, int] = {}
        for key in order:
            model = by_key[key][0].model
            variants[key] = per_model.get(model, 0)
            per_model[model] = variants[key] + 1
        for key in list(self._series):
            s = self._series[key]
            if key not in by_key or variants[key] != s.variant:
                s.remove(self.plot)
                del self._series[key]
        for key in order:  # (re)inserted in legend order
            s = self._series.pop(key, None) or _Series(self, by_key[key][0].model, variants[key])
            self._series[key] = s

    def _redraw(self) -> None:
        shown = self._shown_points()
        self.empty_note.setVisible(not self._points and self.live_position() is None)
        by_key: dict[tuple, list[SessionPoint]] = {}
        for p in shown:
            by_key.setdefault(self._keys[p.id], []).append(p)
        self._sync_series(by_key)
        settings = {k: series_mod.series_settings(v[0].row) for k, v in by_key.items()}
        labels = series_mod.series_labels(settings, {k: v[0].row for k, v in by_key.items()},
                                          lambda m: model_label(m, short=True))
        x_of = {p.id: self._x_of(p) for p in shown}
        lowest = 100.0
        for key, s in self._series.items():
            s.set_label(labels[key])
            lowest = min([lowest] + s.set_data(by_key[key], x_of))
        self.legend.setText("&nbsp;&nbsp; ".join(s.legend_html() for s in self._series.values()))
        self.set_n_inputs(self.n_inputs)
        lo = max(0.0, 10 * math.floor((lowest - 5) / 10)) if shown else 0.0
        self.plot.setYRange(min(lo, 80.0), 100, padding=0.02)

    def set_live(self, removed_pct: Optional[float], accuracy: Optional[float], label: str = "") -> None:
        """Move the ring of the run in progress (None hides it)."""
        if removed_pct is None or accuracy is None or not math.isfinite(accuracy):
            self.live.setData([], [])
            self.live_label.setText("")
            self.empty_note.setVisible(not self._points)
            return
        self.empty_note.hide()  # the ring of the first run is drawn where the note was
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
        """Runs drawn (those of the dataset on display)."""
        return sum(len(s.runs.data) for s in self._series.values())

    # --- hover / click --------------------------------------------------------------------------------------
    def _describe(self, point_id: int) -> str:
        p = self._points.get(point_id)
        if p is None:
            return ""
        label = self.series_of(point_id)
        return f"{label}: {p.describe()}" if label else p.describe()

    def _tip(self, x, y, data) -> str:
        return self._describe(data)

    def _on_hover(self, item, points, ev) -> None:
        if len(points):
            self.show_details(points[0].data())

    def show_details(self, point_id: int) -> None:
        p = self._points.get(point_id)
        if p is not None:
            self._details_id = point_id
            hint = "" if p.state is not None else " (no topology kept for sweep runs)"
            self.details.setText(self._describe(point_id) + hint)

    def _on_click(self, item, points, ev) -> None:
        if len(points):
            self.point_clicked.emit(int(points[0].data()))
