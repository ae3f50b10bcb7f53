"""Pieces shared by the views: the card frame with a header, axes with readable ticks and titles that fit, a twin y
axis, the thumbnail of a 1-D sample."""
from __future__ import annotations

import math
from typing import Iterable, Optional

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QColor, QPainter, QPen, QPixmap, QPolygonF
from PySide6.QtWidgets import QComboBox, QFrame, QHBoxLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

from .. import theme


HEADER_MIN_WIDTH = 64  #: the narrowest a card's title or header combo box gets
LAYER_COMBO_MAX_PX = 220  #: the widest the layer selector insists on being
TITLE_MARGIN_PX = 8  #: an axis title is drawn only this much shorter than its axis (see fit_axis_titles)


class ElidedLabel(QLabel):
    """A one-line label that shrinks with its layout and ends in '…' when the text does not fit."""

    def __init__(self, text: str = "", parent: Optional[QWidget] = None, elide=Qt.ElideRight) -> None:
        super().__init__(text, parent)
        self.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Preferred)
        self.setMinimumWidth(10)
        self.elide = elide  #: where the '…' goes (Qt.ElideRight, ElideMiddle, ...)

    def shown_text(self) -> str:
        """The text as drawn (elided to the label's width)."""
        return self.fontMetrics().elidedText(self.text(), self.elide, self.width())

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt's method name
        painter = QPainter(self)
        painter.setPen(self.palette().color(self.foregroundRole()))
        text = self.shown_text()
        painter.drawText(self.rect(), int(self.alignment() | Qt.AlignVCenter), text)


class ViewCard(QFrame):
    """A framed panel: a title, a dim subtitle, widgets on the right of the title, then the body."""

    def __init__(self, title: str, subtitle: str = "", parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setObjectName("ViewCard")
        outer = QVBoxLayout(self)
        outer.setContentsMargins(8, 6, 8, 6)
        outer.setSpacing(2)
        head = QHBoxLayout()
        head.setSpacing(8)
        self.title_label = ElidedLabel(title)  # elided, never forcing the card wider than its dock
        self.title_label.setObjectName("ViewTitle")
        self.title_label.setSizePolicy(QSizePolicy.Preferred, QSizePolicy.Preferred)
        self.title_label.setMinimumWidth(HEADER_MIN_WIDTH)
        head.addWidget(self.title_label)
        self.source_label = ElidedLabel("")
        self.source_label.setObjectName("ViewSubtitle")
        head.addWidget(self.source_label, 1)
        self.header_layout = head
        outer.addLayout(head)
        self.subtitle_label = QLabel(subtitle)
        self.subtitle_label.setObjectName("ViewSubtitle")
        self.subtitle_label.setWordWrap(True)
        self.subtitle_label.setTextFormat(Qt.RichText)
        outer.addWidget(self.subtitle_label)
        if not subtitle:
            self.subtitle_label.hide()
        self.body = QVBoxLayout()
        self.body.setContentsMargins(0, 2, 0, 0)
        self.body.setSpacing(2)
        outer.addLayout(self.body, 1)

    def add_header_widget(self, widget: QWidget) -> None:
        """Add ``widget`` right of the title. Combo boxes and text labels may shrink below their text (the
        card stays narrow enough for a laptop); fixed-size widgets keep their size."""
        if widget.minimumWidth() == 0 and widget.sizePolicy().horizontalPolicy() != QSizePolicy.Fixed:
            if isinstance(widget, QComboBox):
                widget.setMinimumWidth(HEADER_MIN_WIDTH)
            elif isinstance(widget, QLabel) and not widget.wordWrap():
                widget.setMinimumWidth(min(widget.minimumSizeHint().width(), 24) or 1)
        self.header_layout.addWidget(widget)

    def set_source(self, text: str) -> None:
        """What the view is showing: 'live run', 'run #3 …', 'imported …' (full text in the tooltip)."""
        self.source_label.setText(text)
        self.source_label.setToolTip(text.lstrip("— "))


class LayerCombo(QComboBox):
    """Which layer of a multilayer network a view shows ('Layer 1 (784 inputs → 32)', …); hidden for a
    single-layer network. ``sync(state, layer)`` follows the state on display without emitting."""

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setToolTip("Layer of the network to show: its inputs (the previous layer's emitters) and its chains")
        self.setSizeAdjustPolicy(QComboBox.AdjustToContents)
        self._titles: tuple = ()
        self.hide()

    def sync(self, state, layer: int) -> None:
        titles = tuple(state.layer_title(l) for l in range(state.n_layers)) if state.is_multilayer else ()
        self.blockSignals(True)
        if titles != self._titles:
            self._titles = titles
            self.clear()
            self.addItems(titles)
            # the layer's title whole, never 'Layer 1 (784 in' (the card's title gives way)
            self.setMinimumWidth(min(LAYER_COMBO_MAX_PX, self.sizeHint().width()) if titles else 0)
        if titles:
            self.setCurrentIndex(max(0, min(len(titles) - 1, layer)))
        self.blockSignals(False)
        self.setVisible(bool(titles))


def nice_linear_ticks(lo: float, hi: float, target: int = 6) -> list[float]:
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return []
    raw = (hi - lo) / max(target, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.ceil(lo / step) * step
    return [round(v, 12) for v in np.arange(start, hi + step * 0.5, step) if lo <= v <= hi]


class FrequencyAxis(pg.AxisItem):
    """A frequency axis in GHz whose data coordinate is log10(f) (geometric plans) or f (linear plans)."""

    def __init__(self, orientation: str = "bottom", **kwargs) -> None:
        super().__init__(orientation, **kwargs)
        self.log = True
        self.enableAutoSIPrefix(False)  # the tick labels are GHz as written, never "(x0.001)" of log10 values

    def set_log(self, log: bool) -> None:
        self.log = log
        self.picture = None
        self.update()

    def tickValues(self, minVal, maxVal, size):  # noqa: N802 (Qt naming)
        if not self.log:
            return super().tickValues(minVal, maxVal, size)
        span = maxVal - minVal
        if not (span > 0 and size > 0):
            return []
        lo, hi = 10 ** minVal, 10 ** maxVal
        decades = range(math.floor(minVal) - 1, math.ceil(maxVal) + 1)

        def values(mantissas):
            return [m * 10 ** e for e in decades for m in mantissas if lo <= m * 10 ** e <= hi]

        majors: list[float] = []
        ladders = ((1, 1.5, 2, 3, 4, 5, 6, 7, 8, 9), (1, 1.5, 2, 3, 5, 7), (1, 2, 3, 5), (1, 2, 5), (1, 3), (1,))
        for mantissas in ladders:
            cand = values(mantissas)
            logs = np.log10(cand)
            if len(cand) >= 2 and np.min(np.diff(logs)) / span * size >= 34:
                majors = cand
                break
        if len(majors) < 2:  # zoomed in (or out) too far for decade ticks: plain GHz ticks
            majors = nice_linear_ticks(lo, hi, max(2, int(size / 70)))
            return [(1.0, [math.log10(v) for v in majors if v > 0])]
        minors = [math.log10(v) for v in values(range(1, 10)) if not any(abs(v - m) < 1e-9 * v for m in majors)]
        return [(1.0, [math.log10(v) for v in majors]), (0.1, minors)]

    def tickStrings(self, values, scale, spacing):  # noqa: N802 - Qt's method name
        if not self.log:
            return super().tickStrings(values, scale, spacing)
        if spacing < 1.0:
            return ["" for _ in values]
        return [f"{10 ** v:.4g}" for v in values]


class TwinAxis:
    """A second y axis on the right of a PlotItem, with its own ViewBox sharing the x axis."""

    def __init__(self, plot: pg.PlotItem, label: str, units: Optional[str] = None, color: str = theme.FG) -> None:
        self.plot = plot
        self.vb = pg.ViewBox()
        plot.showAxis("right")
        plot.scene().addItem(self.vb) if plot.scene() is not None else None
        self._attached = plot.scene() is not None
        ax = plot.getAxis("right")
        ax.linkToView(self.vb)
        ax.setLabel(label, units=units, color=color)
        ax.setTextPen(pg.mkPen(color))
        self.vb.setXLink(plot.vb)
        plot.vb.sigResized.connect(self._sync)
        self._sync()

    def attach(self) -> None:
        if not self._attached and self.plot.scene() is not None:
            self.plot.scene().addItem(self.vb)
            self._attached = True
            self._sync()

    def _sync(self, *_) -> None:
        self.vb.setGeometry(self.plot.vb.sceneBoundingRect())
        self.vb.linkedViewChanged(self.plot.vb, self.vb.XAxis)

    def add(self, item) -> None:
        self.vb.addItem(item)


def align_left_axes(plots: Iterable[pg.PlotItem], width: int = 62) -> None:
    for p in plots:
        p.getAxis("left").setWidth(width)


def fit_axis_titles(titles: dict, drawn: dict, side: str = "left") -> None:
    """Give each plot of ``titles`` ({plot: [(text, units), ...] longest first}) the longest ``side`` axis title
    its height holds: a rotated title longer than its plot runs into the plots or text above and below. None
    is drawn when even the last does not fit. ``drawn`` remembers what each plot got (redrawn when it
    changes)."""
    lab = theme.label_style()
    for plot, options in titles.items():
        axis = plot.getAxis(side)
        room = axis.geometry().height()
        key = (tuple(options), room)
        if drawn.get(plot) == key:
            continue
        drawn[plot] = key
        for text, units in options:
            plot.setLabel(side, text, units=units, **lab)
            if room <= 0 or axis.label.boundingRect().width() + TITLE_MARGIN_PX <= room:
                break
        else:
            axis.showLabel(False)


def watch_axis_titles(titles: dict, drawn: dict) -> None:
    """Fit the titles now and whenever one of their plots is resized (see :func:`fit_axis_titles`)."""
    for plot in titles:
        plot.getViewBox().sigResized.connect(lambda *_: fit_axis_titles(titles, drawn))
    fit_axis_titles(titles, drawn)


def line_thumbnail(values: np.ndarray, width: int, height: int) -> QPixmap:
    """A sample without an image shape drawn as what it is, a 1-D spectrum: its values (scaled to its own
    maximum, so that a quiet sample still shows its shape) as a line over the feature index."""
    v = np.asarray(values, dtype=np.float64).ravel()
    pm = QPixmap(width, height)
    pm.fill(QColor(theme.BG))
    if v.size == 0:
        return pm
    top = float(np.max(np.abs(v)))
    y = v / top if top > 0 else v
    xs = np.linspace(1.0, width - 2.0, v.size) if v.size > 1 else np.array([width / 2.0])
    ys = (height - 2.0) - np.clip(y, 0.0, 1.0) * (height - 4.0)
    painter = QPainter(pm)
    painter.setRenderHint(QPainter.Antialiasing)
    painter.setPen(QPen(QColor("#9fb4d0"), 1.2))
    painter.drawPolyline(QPolygonF([QPointF(float(a), float(b)) for a, b in zip(xs, ys)]))
    painter.end()
    return pm


def rich_legend(entries: Iterable[tuple[str, str]]) -> str:
    """HTML for a header legend: [(colour, text), ...] -> '■ text  ■ text'."""
    return "&nbsp;&nbsp;".join(f"<span style='color:{c}'>&#9632;</span>&nbsp;{t}" for c, t in entries)
