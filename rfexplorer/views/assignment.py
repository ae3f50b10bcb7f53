"""View 2: which input neuron each synapse serves.

Mode "Chains × inputs": a heatmap of the signed effective coupling W (chains × input neurons), on a fixed
symmetric colour scale (blue negative, black zero, red positive) with a colour-bar legend; the chain colour
strip on the left matches the other views. Mode "Pixel maps": each chain's row of W as a 28×28 image (ten
small maps), with the pixels its resonators are attached to circled. A counter shows the rewiring events.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Signal, Slot
from PySide6.QtWidgets import QComboBox, QGraphicsRectItem, QLabel, QStackedWidget

from .. import theme
from ..state import DisplayState
from .common import ViewCard

MODES = ("Chains × inputs", "Pixel maps (28×28)")
MAX_MARKED = 64  # circle attached pixels only for chains this short (beyond, the maps speak for themselves)


def _nice_ceil(v: float) -> float:
    if not v > 0:
        return 1.0
    mag = 10 ** np.floor(np.log10(v))
    for m in (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        if m * mag >= v:
            return float(m * mag)
    return float(10 * mag)


class AssignmentView(ViewCard):
    chain_selected = Signal(int)

    def __init__(self, n_chains: int = 10, n_inputs: int = 784, image_shape=(28, 28), parent=None) -> None:
        super().__init__("Synapse-to-neuron assignment", "", parent)
        self.n_chains, self.n_inputs, self.image_shape = n_chains, n_inputs, tuple(image_shape)
        self.selected_chain = 0
        self._state: Optional[DisplayState] = None
        self._level = 0.0
        self._units_rf: Optional[bool] = None
        self._shown: Optional[np.ndarray] = None  #: the matrix on display (mV/µW for RF, raw for baselines)
        self._bar_level: Optional[float] = None

        self.rewiring_label = QLabel("Rewiring events: 0")
        self.rewiring_label.setToolTip("Topology changes so far: resonator jumps (RF) or regrown mask positions")
        self.add_header_widget(self.rewiring_label)
        self.mode_combo = QComboBox()
        self.mode_combo.addItems(MODES)
        self.mode_combo.currentIndexChanged.connect(self._on_mode)
        self.add_header_widget(self.mode_combo)

        cmap = theme.diverging_colormap()
        self.stack = QStackedWidget()
        self.body.addWidget(self.stack, 1)

        # --- mode 1: heatmap chains x inputs ---------------------------------------------------------------
        self.glw = pg.GraphicsLayoutWidget()
        self.plot = self.glw.addPlot(row=0, col=0)
        theme.style_plot(self.plot, grid=False)
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        self.plot.setMouseEnabled(x=True, y=False)
        self.image = pg.ImageItem(np.zeros((n_chains, n_inputs), np.float32), autoLevels=False)
        self.image.setRect(QRectF(0, 0, n_inputs, n_chains))
        self.plot.addItem(self.image)
        strip = np.array([[pg.mkColor(theme.chain_color(j)).getRgb()[:3]] for j in range(n_chains)], np.uint8)
        self.strip = pg.ImageItem(strip)
        self.strip.setRect(QRectF(-0.035 * n_inputs, 0, 0.025 * n_inputs, n_chains))
        self.plot.addItem(self.strip)
        self.plot.invertY(True)
        self.plot.getViewBox().setDefaultPadding(0.0)
        self.plot.setXRange(-0.04 * n_inputs, n_inputs, padding=0)
        self.plot.setYRange(0, n_chains, padding=0)
        self.plot.getAxis("left").setTicks([[(j + 0.5, str(j)) for j in range(n_chains)]])
        lab = theme.label_style()
        self.plot.setLabel("left", "chain (class)", **lab)
        self.plot.setLabel("bottom", "input neuron (pixel index)", **lab)
        self.sel_rect = QGraphicsRectItem(0, 0, n_inputs, 1)
        self.sel_rect.setPen(pg.mkPen(theme.chain_color(0), width=2, cosmetic=True))
        self.plot.addItem(self.sel_rect)
        self.cbar = pg.ColorBarItem(values=(-1, 1), colorMap=cmap, interactive=False, width=12,
                                    colorMapMenu=False)
        self.cbar.setImageItem(self.image, insert_in=self.plot)
        self.stack.addWidget(self.glw)
        self.plot.scene().sigMouseClicked.connect(self._on_heatmap_click)

        # --- mode 2: ten 28x28 pixel maps ----------------------------------------------------------------
        self.glw_maps = pg.GraphicsLayoutWidget()
        self.glw_maps.ci.setSpacing(2)
        self.map_boxes, self.map_images, self.map_titles, self.map_marks = [], [], [], []
        h, w = self.image_shape
        cols = 5
        for j in range(n_chains):
            r, c = divmod(j, cols)
            title = pg.LabelItem(f"chain {j}", color=theme.chain_color(j), size="9pt")
            self.glw_maps.addItem(title, row=2 * r, col=c)
            vb = self.glw_maps.addViewBox(row=2 * r + 1, col=c, lockAspect=True, enableMouse=False,
                                          invertY=True, defaultPadding=0.02)
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
        for r in range(0, 2 * ((n_chains + cols - 1) // cols), 2):
            self.glw_maps.ci.layout.setRowMaximumHeight(r, 20)
        self.cbar_maps = pg.ColorBarItem(values=(-1, 1), colorMap=cmap, interactive=False, width=12,
                                         colorMapMenu=False)
        self.cbar_maps.setImageItem(self.map_images)
        rows = 2 * ((n_chains + cols - 1) // cols)
        self.glw_maps.addItem(self.cbar_maps, row=0, col=cols, rowspan=rows)
        self.glw_maps.scene().sigMouseClicked.connect(self._on_maps_click)
        self.stack.addWidget(self.glw_maps)
        for cb in (self.cbar, self.cbar_maps):
            cb.axis.enableAutoSIPrefix(False)
            cb.axis.setWidth(58)
            theme.cache_item(cb.axis)
            cb.axis.setTickFont(theme.axis_font(8.5))
            cb.axis.setTextPen(pg.mkPen(theme.FG))
        self._set_units(True, 1.0)

    # --- public API ---------------------------------------------------------------------------------------
    @property
    def mode(self) -> int:
        return self.mode_combo.currentIndex()

    def set_mode(self, mode: int) -> None:
        self.mode_combo.setCurrentIndex(mode)

    def reset_scale(self) -> None:
        self._level = 0.0

    def show_state(self, state: DisplayState) -> None:
        self._state = state
        self.set_source(state.label)
        w = np.asarray(state.weight, dtype=np.float32)
        rf = state.is_rf or state.model.startswith("rf")
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
        h, wd = self.image_shape
        marks_ok = state.is_rf and state.attached_input is not None and state.resonators_per_chain <= MAX_MARKED
        for j in range(self.n_chains):
            if j < n_chains and n_inputs == h * wd:
                self.map_images[j].setImage(np.ascontiguousarray(shown[j].reshape(h, wd)), autoLevels=False,
                                            levels=(-level, level))
            if marks_ok and j < n_chains:
                idx = np.asarray(state.attached_input[j], dtype=np.int64)
                self.map_marks[j].setData(idx % wd + 0.5, idx // wd + 0.5)
            else:
                self.map_marks[j].setData([], [])

    def set_selected_chain(self, j: int) -> None:
        j = int(max(0, min(self.n_chains - 1, j)))
        self.selected_chain = j
        self.sel_rect.setRect(0, j, self.n_inputs, 1)
        self.sel_rect.setPen(pg.mkPen(theme.chain_color(j), width=2, cosmetic=True))
        for k, t in enumerate(self.map_titles):
            text = f"chain {k}" + (" ◀" if k == j else "")
            t.setText(text, color=theme.chain_color(k), size="9pt", bold=(k == j))

    def current_image(self) -> np.ndarray:
        """The chains × inputs matrix on display (as drawn in the heatmap mode)."""
        shown = self._shown
        return np.array(shown) if shown is not None else np.zeros(0)

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

    def _on_maps_click(self, ev) -> None:
        for j, vb in enumerate(self.map_boxes):
            if vb.sceneBoundingRect().contains(ev.scenePos()):
                self.set_selected_chain(j)
                self.chain_selected.emit(j)
                return
