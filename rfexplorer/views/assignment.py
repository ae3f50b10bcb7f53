"""View 2: which input neuron each synapse serves.

Mode "Chains × inputs": a heatmap of the signed effective coupling W (C chains × N input neurons), on a fixed
symmetric colour scale (blue negative, black zero, red positive) with a colour-bar legend; the chain colour
strip on the left matches the other views and the rows are labelled with the class names. Mode "Input maps":
each chain's row of W drawn where its inputs are, as an image when the inputs have a 2-D shape (28×28 for
MNIST), else as a 1×N strip, with the inputs its resonators are attached to circled. A counter shows the
rewiring events. The view adapts to any N and C: it is laid out again whenever the shape changes.

Pointing at a cell (either mode) reads it out in the line under the plots: the chain (and its class), the input
(its pixel row and column for image inputs; the emitter on a deeper layer of a multilayer network) and the
value drawn there with its unit; the line is cleared when the pointer leaves.
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QRectF, Qt, Signal, Slot
from PySide6.QtWidgets import (QComboBox, QFrame, QGraphicsRectItem, QHBoxLayout, QLabel, QScrollArea,
                               QStackedWidget, QWidget)

from .. import theme
from ..state import DisplayState
from .common import ElidedLabel, LayerCombo, ViewCard

MODES = ("Chains × inputs", "Input maps")
MAX_MARKED = 64  # circle attached inputs only for chains this short (beyond, the maps speak for themselves)
MAX_ROW_TICKS = 24  # label every row up to this many chains, every n-th beyond
STRIP_ROW_HEIGHT = 34  # pixels per chain in the strip layout of the input maps
MAP_MIN_PX = 76  # the smallest an image map is drawn (pixels across): more chains than fit scroll
MAP_TITLE_PX = 18  # the height of a map's title row
MANY_MAPS = 20  # beyond this many maps the titles are a size smaller
READOUT_HINT = "Point at a cell to read its value"
WAITING = "Loading the dataset…"  #: shown in place of the plots until the first network arrives


def _nice_ceil(v: float) -> float:
    if not v > 0:
        return 1.0
    mag = 10 ** np.floor(np.log10(v))
    for m in (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        if m * mag >= v:
            return float(m * mag)
    return float(10 * mag)


def _short(name: str, limit: int = 12) -> str:
    return name if len(name) <= limit else name[:limit - 1] + "…"


def map_grid_columns(n_chains: int, image_shape: Optional[tuple], width_px: float = 0.0) -> int:
    """Columns of the input-map grid: strips stack in one column; images fill a near-square grid (5 for 10),
    with no more columns than ``width_px`` holds maps of MAP_MIN_PX (0: any width); the rest scrolls."""
    if image_shape is None:
        return 1
    cols = max(1, min(n_chains, math.ceil(math.sqrt(n_chains * 2.5))))
    if width_px > 0:
        cols = min(cols, max(1, int(width_px // MAP_MIN_PX)))
    return cols


class AssignmentView(ViewCard):
    chain_selected = Signal(int)
    layer_selected = Signal(int)

    def __init__(self, parent=None) -> None:
        super().__init__("Synapse-to-neuron assignment", "", parent)
        self.n_chains, self.n_inputs, self.image_shape, self.class_names = 0, 0, None, ()
        self.selected_chain = 0
        self._state: Optional[DisplayState] = None  #: the state drawn (of the selected layer)
        self._full: Optional[DisplayState] = None  #: the whole network's state as received
        self.layer = 0
        self._axis_key = None
        self._level = 0.0
        self._units_rf: Optional[bool] = None
        self._shown: Optional[np.ndarray] = None  #: the matrix on display (mV/µW for RF, raw for baselines)
        self._bar_level: Optional[float] = None
        self._maps_key = None  #: layout the input maps were built for (they are built when first shown)
        self._readout = ""
        self._hover: Optional[tuple] = None  #: (chain, input) under the pointer, read out again for a new state

        self.layer_combo = LayerCombo()
        self.layer_combo.currentIndexChanged.connect(self._on_layer_combo)
        self.add_header_widget(self.layer_combo)
        self.rewiring_label = QLabel("Rewiring events: 0")  # (on the read-out's line: the header is full)
        self.rewiring_label.setToolTip("Topology changes so far: resonator jumps (RF) or regrown mask positions")
        self.mode_combo = QComboBox()
        self.mode_combo.addItems(MODES)
        self.mode_combo.setSizeAdjustPolicy(QComboBox.AdjustToContents)
        self.mode_combo.currentIndexChanged.connect(self._on_mode)
        self.add_header_widget(self.mode_combo)

        self._cmap = theme.diverging_colormap()
        self.stack = QStackedWidget()
        self.body.addWidget(self.stack, 1)
        self._make_heatmap_page()
        self._make_maps_page()
        self._make_readout()
        self._set_units(True, 1.0)
        self.configure(1, 1, None)  # laid out for the real shape by the first state shown
        self.stack.setCurrentWidget(self.waiting_label)

    def _make_heatmap_page(self) -> None:
        """Mode 1: the heatmap, chains by inputs, with its colour bar."""
        self.glw = pg.GraphicsLayoutWidget()
        self.plot = self.glw.addPlot(row=0, col=0)
        theme.style_plot(self.plot, grid=False)
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        self.plot.setMouseEnabled(x=True, y=False)
        self.image = pg.ImageItem(np.zeros((1, 1), np.float32), autoLevels=False)
        self.plot.addItem(self.image)
        self.strip = pg.ImageItem(np.zeros((1, 1, 3), np.uint8))
        self.plot.addItem(self.strip)
        self.plot.invertY(True)
        self.plot.getViewBox().setDefaultPadding(0.0)
        lab = theme.label_style()
        self.plot.setLabel("left", "chain (class)", **lab)
        self.sel_rect = QGraphicsRectItem(0, 0, 1, 1)
        self.plot.addItem(self.sel_rect)
        self.cbar = pg.ColorBarItem(values=(-1, 1), colorMap=self._cmap, interactive=False, width=12,
                                    colorMapMenu=False)
        self.cbar.setImageItem(self.image, insert_in=self.plot)
        self.stack.addWidget(self.glw)
        self.plot.scene().sigMouseClicked.connect(self._on_heatmap_click)

    def _make_maps_page(self) -> None:
        """Mode 2: one input map per chain (built for the current shape when first shown)."""
        # the maps scroll (never smaller than MAP_MIN_PX, or a strip's row); the colour bar stays beside them
        self.glw_maps = pg.GraphicsLayoutWidget()
        self.glw_maps.ci.setSpacing(2)
        self.map_boxes, self.map_images, self.map_titles, self.map_marks = [], [], [], []
        self.cbar_maps = pg.ColorBarItem(values=(-1, 1), colorMap=self._cmap, interactive=False, width=12,
                                         colorMapMenu=False)
        self.glw_maps.scene().sigMouseClicked.connect(self._on_maps_click)
        self.maps_scroll = QScrollArea()
        self.maps_scroll.setWidgetResizable(True)
        self.maps_scroll.setFrameShape(QFrame.NoFrame)
        self.maps_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.maps_scroll.setWidget(self.glw_maps)
        self.maps_scroll.viewport().installEventFilter(self)
        self.glw_maps_bar = pg.GraphicsLayoutWidget()
        self.glw_maps_bar.addItem(self.cbar_maps, row=0, col=0)
        self.glw_maps_bar.setFixedWidth(96)
        maps_page = QWidget()
        maps_row = QHBoxLayout(maps_page)
        maps_row.setContentsMargins(0, 0, 0, 0)
        maps_row.setSpacing(0)
        maps_row.addWidget(self.maps_scroll, 1)
        maps_row.addWidget(self.glw_maps_bar)
        self.stack.addWidget(maps_page)
        self.waiting_label = QLabel(WAITING)  # the plots appear with the first network (no empty axes before)
        self.waiting_label.setObjectName("Dim")
        self.waiting_label.setAlignment(Qt.AlignCenter)
        self.stack.addWidget(self.waiting_label)

    def _make_readout(self) -> None:
        """The hover read-out: one line under the plots, rewritten in place, cleared when the pointer leaves;
        and the colour bars' axes."""
        self.readout_label = ElidedLabel(READOUT_HINT)  # (never widens the card)
        self.readout_label.setObjectName("Dim")
        bottom = QHBoxLayout()
        bottom.setSpacing(12)
        bottom.addWidget(self.readout_label, 1)
        bottom.addWidget(self.rewiring_label)
        self.body.addLayout(bottom)
        self.glw.scene().sigMouseMoved.connect(self._on_heatmap_moved)
        self.glw_maps.scene().sigMouseMoved.connect(self._on_maps_moved)
        for w in (self.glw, self.glw_maps):
            w.installEventFilter(self)
            w.viewport().installEventFilter(self)
        for cb in (self.cbar, self.cbar_maps):
            cb.axis.enableAutoSIPrefix(False)
            cb.axis.setWidth(58)
            theme.cache_item(cb.axis)
            cb.axis.setTickFont(theme.axis_font(8.5))
            cb.axis.setTextPen(pg.mkPen(theme.FG))

    # --- layout for a shape -----------------------------------------------------------------------------
    def configure(self, n_chains: int, n_inputs: int, image_shape: Optional[tuple], class_names=()) -> None:
        """Lay the view out for C chains of N inputs (image_shape None: inputs without a 2-D shape)."""
        names = tuple(class_names) if class_names and len(class_names) == n_chains else \
            tuple(str(j) for j in range(n_chains))
        shape = tuple(image_shape) if image_shape is not None else None
        if (n_chains, n_inputs, shape, names) == (self.n_chains, self.n_inputs, self.image_shape,
                                                  self.class_names):
            return
        self.n_chains, self.n_inputs, self.image_shape, self.class_names = n_chains, n_inputs, shape, names
        self._axis_key = None  # the axis titles are set again for the state shown (see _label_axes)
        c, n = n_chains, n_inputs
        self.image.setImage(np.zeros((c, n), np.float32), autoLevels=False)
        self.image.setRect(QRectF(0, 0, n, c))
        strip = np.array([[pg.mkColor(theme.chain_color(j)).getRgb()[:3]] for j in range(c)], np.uint8)
        self.strip.setImage(strip)
        self.strip.setRect(QRectF(-0.035 * n, 0, 0.025 * n, c))
        self.plot.setXRange(-0.04 * n, n, padding=0)
        self.plot.setYRange(0, c, padding=0)
        every = max(1, math.ceil(c / MAX_ROW_TICKS))
        self.plot.getAxis("left").setTicks([[(j + 0.5, _short(names[j])) for j in range(0, c, every)]])
        what = "pixel index" if shape is not None else "feature index"
        self.plot.setLabel("bottom", f"input neuron ({what}, N = {n:,})", **theme.label_style())
        maps = f"Pixel maps ({shape[0]}×{shape[1]})" if shape is not None else f"Input strips (1×{n:,})"
        self.mode_combo.setItemText(1, maps)
        self._fit_mode_combo()
        self.selected_chain = min(self.selected_chain, c - 1)
        self._maps_key = None
        if self.mode == 1:
            self._build_maps()
        self.set_selected_chain(self.selected_chain)

    def _maps_columns(self) -> int:
        return map_grid_columns(self.n_chains, self.image_shape, self.maps_scroll.viewport().width())

    def _build_maps(self) -> None:
        """(Re)build the grid of input maps for the current shape and the room there is (see MAP_MIN_PX)."""
        cols = self._maps_columns()
        key = (self.n_chains, self.n_inputs, self.image_shape, self.class_names, cols)
        if key == self._maps_key:
            return
        self._maps_key = key
        self.glw_maps.clear()
        self.map_boxes, self.map_images, self.map_titles, self.map_marks = [], [], [], []
        strips = self.image_shape is None
        h, w = self.image_shape if not strips else (1, self.n_inputs)
        for j in range(self.n_chains):
            r, c = divmod(j, cols)
            title = pg.LabelItem("", color=theme.chain_color(j), size="9pt")
            vb = pg.ViewBox(lockAspect=not strips, enableMouse=False, invertY=True, defaultPadding=0.02)
            if strips:  # title on the left of its strip, one chain per row
                self.glw_maps.addItem(title, row=r, col=0)
                self.glw_maps.addItem(vb, row=r, col=1)
            else:
                self.glw_maps.addItem(title, row=2 * r, col=c)
                self.glw_maps.addItem(vb, row=2 * r + 1, col=c)
            img = pg.ImageItem(np.zeros((h, w), np.float32), autoLevels=False)
            vb.addItem(img)
            marks = pg.ScatterPlotItem(size=6, pen=pg.mkPen("#ffffff", width=1), brush=pg.mkBrush(None),
                                       symbol="o")
            vb.addItem(marks)
            vb.setRange(QRectF(0, 0, w, h), padding=0.02)
            self.map_boxes.append(vb)
            self.map_images.append(img)
            self.map_titles.append(title)
            self.map_marks.append(marks)
        layout = self.glw_maps.ci.layout
        if strips:
            layout.setColumnMaximumWidth(0, 110)
            for r in range(self.n_chains):
                layout.setRowMaximumHeight(r, STRIP_ROW_HEIGHT)
            need = self.n_chains * (STRIP_ROW_HEIGHT - 8)
        else:
            rows = 2 * ((self.n_chains + cols - 1) // cols)
            for r in range(0, rows, 2):
                layout.setRowFixedHeight(r, MAP_TITLE_PX)
            need = (rows // 2) * (MAP_MIN_PX * h / max(w, 1) + MAP_TITLE_PX + 4)
        self.glw_maps.setMinimumHeight(int(need))  # taller than the page: it scrolls
        self.cbar_maps.setImageItem(self.map_images)
        self._title_maps()

    def _title_maps(self) -> None:
        size = "9pt" if len(self.map_titles) <= MANY_MAPS else "7.5pt"  # (a title never outgrows its map)
        for k, t in enumerate(self.map_titles):
            name = self.class_names[k] if k < len(self.class_names) else str(k)
            text = (f"{k}: {_short(name, 14)}" if name != str(k) else f"chain {k}") + \
                (" ◀" if k == self.selected_chain else "")
            t.setText(text, color=theme.chain_color(k), size=size, bold=(k == self.selected_chain))

    def _fit_mode_combo(self) -> None:
        """The mode selector is as wide as its longest item (never 'Pixel maps (28×2'); the title gives way."""
        self.mode_combo.setMinimumWidth(self.mode_combo.sizeHint().width())

    # --- public API ---------------------------------------------------------------------------------------
    @property
    def mode(self) -> int:
        return self.mode_combo.currentIndex()

    def set_mode(self, mode: int) -> None:
        self.mode_combo.setCurrentIndex(mode)

    def reset_scale(self) -> None:
        self._level = 0.0

    @Slot(object)
    def show_state(self, state: DisplayState) -> None:
        if self.stack.currentWidget() is self.waiting_label:
            self.stack.setCurrentIndex(self.mode)
        self._full = state
        self.layer_combo.sync(state, self.layer)
        state = state.for_layer(self.layer)
        self._state = state
        self.set_source(state.label)
        w = np.asarray(state.weight, dtype=np.float32)
        self.configure(state.n_chains, state.n_inputs, state.image_shape, state.class_names)
        self._label_axes(state)
        rf = state.is_rf
        if rf:  # fixed scale: one resonator at its peak coupling, K_SD, in mV/µW
            shown = np.ascontiguousarray(w * 1e3, dtype=np.float32)
            level = state.params.k_sd * 1e3
        else:  # baselines: symmetric, only ever grows during a run (no flicker)
            shown = np.ascontiguousarray(w, dtype=np.float32)
            m = float(np.max(np.abs(shown))) if shown.size else 1.0
            keep = self._level if (self._units_rf is False and state.live) else 0.0
            level = max(keep, _nice_ceil(m))
        self._set_units(rf, level)
        self._level = level
        self._shown = shown
        self.rewiring_label.setText(f"Rewiring events: {state.rewiring_events:,}")
        self._draw()
        if self._hover is not None:  # the pointer rests on a cell: read out its new value
            self._set_readout(self.cell_text(*self._hover), self._hover)

    def _draw(self) -> None:
        """Draw the stored state into the visible mode only (the other is drawn when it is shown)."""
        state, shown, level = self._state, self._shown, self._level
        if state is None or shown is None:
            return
        n_chains, n_inputs = shown.shape
        if self.mode == 0:
            self.image.setImage(shown, autoLevels=False, levels=(-level, level))
            self.image.setRect(QRectF(0, 0, n_inputs, n_chains))
            return
        self._build_maps()
        shape = self.image_shape
        h, wd = shape if shape is not None else (1, n_inputs)
        marks_ok = state.is_rf and state.attached_input is not None and state.resonators_per_chain <= MAX_MARKED
        for j in range(min(n_chains, len(self.map_images))):
            self.map_images[j].setImage(np.ascontiguousarray(shown[j].reshape(h, wd)), autoLevels=False,
                                        levels=(-level, level))
            if marks_ok:
                idx = np.asarray(state.attached_input[j], dtype=np.int64)
                self.map_marks[j].setData(idx % wd + 0.5, idx // wd + 0.5)
            else:
                self.map_marks[j].setData([], [])

    @Slot(int)
    def set_layer(self, layer: int) -> None:
        """Show layer ``layer`` of a multilayer network: its chains x its emitters (the previous layer's)."""
        layer = max(0, int(layer))
        if layer == self.layer:
            return
        self.layer = layer
        self._level = 0.0
        if self._full is not None:
            self.show_state(self._full)

    def _label_axes(self, state: DisplayState) -> None:
        """Row and column titles: classes and input neurons, or a multilayer network's hidden chains/emitters."""
        last = state.layer_index == state.n_layers - 1
        key = (state.layer_index, state.n_layers, state.n_inputs, state.image_shape is not None)
        if key == self._axis_key:
            return
        self._axis_key = key
        lab = theme.label_style()
        self.plot.setLabel("left", "chain (class)" if last else f"hidden chain (layer {state.layer_index + 1})",
                           **lab)
        if state.layer_index > 0:
            self.plot.setLabel("bottom", f"emitter (hidden STNO of layer {state.layer_index}, "
                                         f"N = {state.n_inputs:,})", **lab)
            self.mode_combo.setItemText(1, f"Emitter strips (1×{state.n_inputs:,})")
            self._fit_mode_combo()
        else:
            what = "pixel index" if state.image_shape is not None else "feature index"
            self.plot.setLabel("bottom", f"input neuron ({what}, N = {state.n_inputs:,})", **lab)

    @Slot(int)
    def _on_layer_combo(self, layer: int) -> None:
        if layer >= 0:
            self.set_layer(layer)
            self.layer_selected.emit(layer)

    @Slot(int)
    def set_selected_chain(self, j: int) -> None:
        j = int(max(0, min(self.n_chains - 1, j)))
        self.selected_chain = j
        self.sel_rect.setRect(0, j, self.n_inputs, 1)
        self.sel_rect.setPen(pg.mkPen(theme.chain_color(j), width=2, cosmetic=True))
        self._title_maps()

    def current_image(self) -> np.ndarray:
        """The chains × inputs matrix on display (as drawn in the heatmap mode)."""
        shown = self._shown
        return np.array(shown) if shown is not None else np.zeros(0)

    def map_shape(self) -> Optional[tuple]:
        """(rows, columns) of one input map as drawn: the image shape, or (1, N) for a strip."""
        if not self.map_images or self.map_images[0].image is None:
            return None
        return tuple(self.map_images[0].image.shape[:2])

    # --- internals ----------------------------------------------------------------------------------------
    def _set_units(self, rf: bool, level: float) -> None:
        if rf == self._units_rf and level == self._bar_level:
            return
        self._bar_level = level
        if rf != self._units_rf:
            self._units_rf = rf
            text = "coupling W (mV/µW)" if rf else "weight (a.u.)"
            for cb in (self.cbar, self.cbar_maps):
                cb.setLabel("right", text)
            self.subtitle_label.setText(
                "Signed coupling of each chain to each input neuron; fixed scale ±K<sub>SD</sub>"
                if rf else "Signed weight of each output to each input neuron; 0 = removed synapse")
            self.subtitle_label.show()
        for cb in (self.cbar, self.cbar_maps):
            cb.setLevels((-level, level))

    @Slot(int)
    def _on_mode(self, mode: int) -> None:
        if self._state is not None:
            self.stack.setCurrentIndex(mode)
        self._draw()

    def _on_heatmap_click(self, ev) -> None:
        vb = self.plot.getViewBox()
        if not vb.sceneBoundingRect().contains(ev.scenePos()):
            return
        y = vb.mapSceneToView(ev.scenePos()).y()
        j = int(np.floor(y))
        if 0 <= j < self.n_chains:
            self.set_selected_chain(j)
            self.chain_selected.emit(j)

    # --- hover read-out -----------------------------------------------------------------------------------
    def readout_text(self) -> str:
        """The read-out of the cell under the pointer ('' when the pointer is not over one)."""
        return self._readout

    def _set_readout(self, text: str, cell: Optional[tuple] = None) -> None:
        self._hover = cell if text else None
        if text != self._readout:
            self._readout = text
            self.readout_label.setText(text or READOUT_HINT)

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 (Qt naming)
        if (event.type() == QEvent.Resize and obj is self.maps_scroll.viewport() and self.mode == 1
                and self._maps_key is not None and self._maps_key[-1] != self._maps_columns()):
            self._draw()  # another number of columns fits: the maps are laid out again
        if event.type() == QEvent.Leave and obj in (self.glw, self.glw.viewport(), self.glw_maps,
                                                    self.glw_maps.viewport()):
            self._set_readout("")
        return super().eventFilter(obj, event)

    def _on_heatmap_moved(self, pos) -> None:
        vb = self.plot.getViewBox()
        if not vb.sceneBoundingRect().contains(pos):
            self._set_readout("")
            return
        pt = vb.mapSceneToView(pos)
        cell = (int(np.floor(pt.y())), int(np.floor(pt.x())))
        self._set_readout(self.cell_text(*cell), cell)

    def _on_maps_moved(self, pos) -> None:
        shown = self._shown
        for j, vb in enumerate(self.map_boxes):
            if vb.sceneBoundingRect().contains(pos):
                pt = vb.mapSceneToView(pos)
                h, w = self.image_shape if self.image_shape is not None else (1, self.n_inputs)
                r, c = int(np.floor(pt.y())), int(np.floor(pt.x()))
                cell = (j, r * w + c if shown is not None and 0 <= r < h and 0 <= c < w else -1)
                self._set_readout(self.cell_text(*cell), cell)
                return
        self._set_readout("")

    def cell_text(self, j: int, i: int) -> str:
        """'chain 3 (class 3) · input 412 (pixel row 14, column 20) · W = +1.23 mV/µW' for chain j and input
        i of the matrix on display; the chain alone when i is outside it; '' when j is."""
        st, shown = self._state, self._shown
        if st is None or shown is None or not 0 <= j < shown.shape[0]:
            return ""
        hidden = st.layer_index < st.n_layers - 1
        name = st.names[j] if j < len(st.names) else str(j)
        what = "chain" if st.is_rf else "output"
        chain = f"hidden {what} {j}" if hidden else (f"{what} {j} (class {name})" if name != str(j) else f"{what} {j}")
        if not 0 <= i < shown.shape[1]:
            return chain
        if st.layer_index > 0:
            source = f"emitter {i} (hidden STNO {i} of layer {st.layer_index})"
        elif self.image_shape is not None:
            source = f"input {i} (pixel row {i // self.image_shape[1]}, column {i % self.image_shape[1]})"
        else:
            source = f"input {i}"
        v = float(shown[j, i])
        value = f"W = {v:+.3g} mV/µW" if self._units_rf else f"weight = {v:+.3g} (a.u.)"
        return f"{chain} · {source} · {value}"

    def _on_maps_click(self, ev) -> None:
        for j, vb in enumerate(self.map_boxes):
            if vb.sceneBoundingRect().contains(ev.scenePos()):
                self.set_selected_chain(j)
                self.chain_selected.emit(j)
                return
