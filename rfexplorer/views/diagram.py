"""A compact diagram of a multilayer network: columns of nodes (inputs summarised as one box, each hidden layer,
the outputs) and, for every chain, lines to the emitters its strongest resonators attach to (the selected
layer's bright, the others dim).

Drawn with QPainter from line segments computed once per state (a few hundred QLineF): cheap to redraw at the
views' 10-30 Hz, nothing is re-created in a scene.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
from PySide6.QtCore import QLineF, QPointF, QRectF, Qt, Slot
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from .. import theme
from ..state import DisplayState
from .common import ViewCard

MAX_NODES = 40  #: a column with more chains is drawn as a bar
STRONGEST = 3  #: attachment lines per chain (its strongest couplings)
MARGIN_TOP, MARGIN_BOTTOM, MARGIN_X = 8, 36, 28


class NetworkDiagram(QWidget):
    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setMinimumSize(110, 100)
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Expanding)
        self.sizes: tuple = ()  #: (inputs, hidden..., outputs)
        self.output_names: tuple = ()
        self.layer = 0
        self._links: list = []  #: per layer: (emitter index (M,), chain index (M,)) of the lines drawn
        self._key = None

    # --- data ---------------------------------------------------------------------------------------------
    def set_state(self, state: DisplayState) -> None:
        if not state.is_multilayer:
            self.sizes, self._links = (), []
            self.update()
            return
        links = []
        for d in state.layers:
            idx = np.asarray(d["attached_input"], dtype=np.int64)
            coup = d.get("attached_coupling")
            if coup is None:
                coup = np.ones(idx.shape, np.float32)
            coup = np.abs(np.asarray(coup, dtype=np.float32))
            m = min(STRONGEST, idx.shape[1])
            top = np.argsort(-coup, axis=1)[:, :m]  # the m strongest resonators of each chain
            emit = np.take_along_axis(idx, top, axis=1)
            links.append((emit.ravel(), np.repeat(np.arange(idx.shape[0]), m)))
        key = (state.layer_sizes, tuple(e.tobytes() for e, _ in links))
        self.sizes, self.output_names = state.layer_sizes, tuple(state.output_names)
        if key != self._key:
            self._key, self._links = key, links
            self.update()

    def set_layer(self, layer: int) -> None:
        if layer != self.layer:
            self.layer = int(layer)
            self.update()

    def drawn_nodes(self) -> list[int]:
        """Nodes drawn per column (the input column is one box; a column of more than MAX_NODES is one bar)."""
        if not self.sizes:
            return []
        return [1] + [n if n <= MAX_NODES else 1 for n in self.sizes[1:]]

    def n_lines(self, layer: int) -> int:
        return int(len(self._links[layer][0])) if layer < len(self._links) else 0

    # --- drawing ------------------------------------------------------------------------------------------
    def _geometry(self):
        w, h = self.width(), self.height()
        cols = len(self.sizes)
        xs = [MARGIN_X + i * (w - 2 * MARGIN_X) / max(cols - 1, 1) for i in range(cols)]
        top, bottom = MARGIN_TOP, h - MARGIN_BOTTOM
        return xs, top, bottom

    @staticmethod
    def _y(i, n, top, bottom):
        return top + (np.asarray(i, dtype=np.float64) + 0.5) / max(n, 1) * (bottom - top)

    def paintEvent(self, _event) -> None:  # noqa: N802 - Qt's method name
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(theme.BG))
        if not self.sizes:
            p.setPen(QColor(theme.FG_DIM))
            p.drawText(self.rect(), Qt.AlignCenter, "Single-layer network")
            return
        p.setRenderHint(QPainter.Antialiasing, True)
        xs, top, bottom = self._geometry()
        # attachment lines: dim for the other layers, bright for the selected one (drawn last, on top)
        order = [l for l in range(len(self._links)) if l != self.layer] + \
            ([self.layer] if self.layer < len(self._links) else [])
        for l in order:
            emit, chain = self._links[l]
            y0 = self._y(emit, self.sizes[l], top, bottom)
            y1 = self._y(chain, self.sizes[l + 1], top, bottom)
            x0, x1 = xs[l] + (10 if l == 0 else 4), xs[l + 1] - 4
            lines = [QLineF(x0, a, x1, b) for a, b in zip(y0, y1)]
            selected = l == self.layer
            colour = QColor(theme.ACCENT if selected else theme.FG_DIM)
            colour.setAlpha(150 if selected else 60)
            p.setPen(QPen(colour, 1.0))
            p.drawLines(lines)
        # nodes
        p.setPen(QPen(QColor(theme.FG), 1))
        p.setBrush(QColor(theme.BG))
        p.drawRoundedRect(QRectF(xs[0] - 10, top, 20, bottom - top), 4, 4)
        last = len(self.sizes) - 1
        for c in range(1, len(self.sizes)):
            n = self.sizes[c]
            if n > MAX_NODES:
                p.setBrush(QColor(theme.FG_DIM))
                p.drawRoundedRect(QRectF(xs[c] - 4, top, 8, bottom - top), 3, 3)
                continue
            r = max(2.0, min(6.0, 0.35 * (bottom - top) / n))
            for j, y in enumerate(self._y(np.arange(n), n, top, bottom)):
                p.setBrush(QColor(theme.chain_color(j) if c == last else theme.FG_DIM))
                p.drawEllipse(QPointF(xs[c], y), r, r)
        # column titles, two short lines each, within the column's share of the width
        p.setPen(QColor(theme.FG))
        font = p.font()
        font.setPointSizeF(8.0)
        p.setFont(font)
        width = (xs[-1] - xs[0]) / max(len(xs) - 1, 1)
        # the titles never run into each other: short words when the columns are close
        words = ("inputs", "hidden", "outputs") if p.fontMetrics().horizontalAdvance("outputs") + 6 <= width \
            else ("in", "hid.", "out")
        for c, n in enumerate(self.sizes):
            what = words[0] if c == 0 else (words[2] if c == last else words[1])
            rect = QRectF(xs[c] - width / 2, bottom + 4, width, 30)
            p.drawText(rect, Qt.AlignHCenter | Qt.AlignTop, f"{n:,}\n{what}")


class NetworkView(ViewCard):
    """The diagram in a card (shown by the main window for multilayer networks only)."""

    def __init__(self, parent=None) -> None:
        super().__init__("Network", f"{STRONGEST} strongest links per chain", parent)
        self.subtitle_label.setToolTip(f"Lines: each chain's {STRONGEST} strongest attachments; the selected "
                                       f"layer's bright, the others dim")
        self.setMinimumWidth(120)
        self.diagram = NetworkDiagram()
        self.body.addWidget(self.diagram, 1)

    @Slot(object)
    def show_state(self, state: DisplayState) -> None:
        self.set_source(state.label)
        self.diagram.set_state(state)

    @Slot(int)
    def set_layer(self, layer: int) -> None:
        self.diagram.set_layer(layer)
