"""View 1: the frequency spectrum.

Three stacked plots share the frequency axis (GHz; logarithmic for a geometric frequency plan, where the
input comb is evenly spaced):
  1. the input comb: each input oscillator at its frequency, with the power it emits for the test image on
     display (P_i = P_max x_i);
  2. the selected chain's response (sum of its resonators' Lorentzians, from engine.physics.resonators), with its
     resonators marked on the zero line;
  3. every chain's resonators, one row per chain in the chain's colour (▲ s = +1, ▼ s = −1); every n-th row
     is labelled, as many as fit the plot's height (:func:`chain_tick_step`).
Resonators slide (weight tuning) and jump (structural plasticity) as the run trains; trained input
frequencies move the comb. For baselines (no resonators) only the comb is drawn, with a note. On a deeper layer
of a multilayer network the comb is the previous layer's STNOs, each at the power it emits for the test sample
(engine.nets.multilayer.emitted_powers_uw, from the operating points the snapshot carries).

Pointing at a plot reads it out in the line under the plots (frequency, and the emitter, response or resonator
there); the line is cleared when the pointer leaves.

Hardware realism (docs/physics.md): with a limited tuning range each resonator's reachable band is shaded
behind it in its chain's row (and behind the selected chain's response); with a finite tuning resolution its
set-point levels are drawn as ticks once the view is zoomed in far enough to tell them apart (fewer than
:data:`GRID_MAX_VISIBLE` levels across the visible range). Both are one item each, updated in place: the
bands when the network's bounds change, the ticks when the visible range does (debounced).
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QColor, QFontMetricsF, QIcon, QImage, QPixmap
from PySide6.QtWidgets import QComboBox, QLabel, QSpinBox

from engine.physics import resonators as physics

from .. import spectra, theme
from ..labels import model_label
from ..state import DisplayState
from .common import (ElidedLabel, FrequencyAxis, LayerCombo, ViewCard, align_left_axes, fit_axis_titles,
                     line_thumbnail)

INPUT_COMB = "Input comb (power per oscillator for the test sample)"
PLOTS_BELOW = "selected chain's response · every chain's resonators (▲ s = +1, ▼ s = −1)"
SUBTITLE = f"{INPUT_COMB} · {PLOTS_BELOW}"
#: The comb's caption on a deeper layer of a multilayer network (its inputs are the previous layer's STNOs).
HIDDEN_COMB = "Hidden STNO comb (power each STNO emits for the test sample)"
#: ... when the state carries no operating points of the STNOs (the powers cannot be computed).
HIDDEN_COMB_UNKNOWN = "Hidden STNO comb (positions only: drawn at full power, the STNOs' operating points are unknown)"
READOUT_HINT = "Point at a plot to read its values"
HARDWARE_NOTE = " · shaded: tuning ranges · ticks: set-point levels (zoom in)"
#: Set-point levels are drawn when the visible range holds fewer than this many levels of one device.
GRID_MAX_VISIBLE = 200
#: ... and at most this many ticks in all (every device's visible levels together).
GRID_MAX_TICKS = 40_000
#: Half-height of a band and of a level tick in the resonator plot (rows are 1 apart).
BAND_HALF = 0.36
GRID_DEBOUNCE_MS = 40
#: The resonator plot labels at most this many chains (every n-th row), fewer when its height holds fewer.
CHAIN_TICKS_MAX = 16
CHAIN_TICK_GAP = 2.0  #: ... and keeps at least this many pixels between two labels' digits
IMAGE_THUMB = (30, 30)  #: size of the test-image thumbnail (pixels)
LINE_THUMB = (72, 30)  #: size of the thumbnail of a sample without an image shape (its values as a line)
COMBO_CHROME_PX = 52  #: a combo box's width beyond its text: the colour swatch, margins and the arrow
ROW_NAME_CHARS = 7  #: class names longer than this are cut (with '…') in the resonator plot's row labels
WAITING = "Loading the dataset…"  #: shown in place of the plots until the first network arrives


def chain_tick_step(n_chains: int, height_px: float, label_px: float) -> int:
    """Every how many rows the resonator plot labels a chain: at most :data:`CHAIN_TICKS_MAX` labels, and labels
    at least ``label_px`` apart (a label's height and a gap) in a plot ``height_px`` high (its rows span
    ``n_chains`` units), a round step when the height is what thins them; with an unknown height (not laid out
    yet) the first rule alone."""
    every = max(1, -(-n_chains // CHAIN_TICKS_MAX))
    need = math.ceil(n_chains * label_px / height_px) if height_px > 0 and label_px > 0 else 0
    if need > every:  # thinned for the height: a round step (1, 2, 5, 10, 20, 25, 50, ...)
        mag = 10 ** int(math.floor(math.log10(need)))
        every = next(int(m * mag) for m in (1, 2, 2.5, 5, 10) if m * mag >= need and float(m * mag).is_integer())
    return min(every, max(1, n_chains))


def _swatch(colour: str, size: int = 12) -> QIcon:
    pm = QPixmap(size, size)
    pm.fill(QColor(colour))
    return QIcon(pm)


class SpectrumView(ViewCard):
    chain_selected = Signal(int)
    layer_selected = Signal(int)

    def __init__(self, parent=None) -> None:
        super().__init__("Frequency spectrum", SUBTITLE, parent)
        self.setObjectName("ViewCard")
        self.n_chains = 0
        self.class_names: tuple = ()
        self.selected_chain = 0
        self._state: Optional[DisplayState] = None  #: the state drawn (of the selected layer)
        self._full: Optional[DisplayState] = None  #: the whole network's state as received
        self.layer = 0
        self._images: Optional[np.ndarray] = None
        self._labels: Optional[np.ndarray] = None
        self._image_shape: Optional[tuple] = None  #: (rows, columns) of the samples, None: a 1 x N strip
        self._sample_names: tuple = ()  #: class names of the samples' labels
        self._params_key = None
        self._probe = None
        self._comb_drawn: Optional[tuple] = None  # what the comb shows: (full scale, powers µW, input freqs)
        self._probe_x = None
        self._probe_k = -1
        self._resp_max = 0.0
        self._log = True
        self._comb_power_uw: Optional[np.ndarray] = None  #: power (µW) of each emitter of the comb on display
        self._comb_caption = INPUT_COMB  #: the first part of the subtitle (what the comb shows)
        self._hw_note = ""  #: the subtitle's hardware part
        self._chain_brushes: list = []
        self._res_style: Optional[tuple] = None  # (shape key, rows, brushes, symbols) of the last frame
        self._chain_tick_every = 0  #: every how many chains the resonator plot's rows are labelled
        self._hw_key = None  #: what the bands were drawn for
        self._hw_comb: Optional[tuple] = None  #: (lo, hi) comb bounds (C, K) of the resonators, bits; or None
        self._grid_drawn = None  #: (hardware key, visible range) the ticks were drawn for

        self._build_header()
        self._build_plots()
        self._build_comb_plot()
        self._build_response_plot()
        self._build_resonator_plot()
        self._build_hardware_items()
        self._build_notes()
        self._connect_signals()
        self.configure(1, ())  # laid out for the real number of chains by the first state shown
        self._set_chain_colour(0)
        self.comb_plot.setYRange(0, 1.05e-6, padding=0)
        self.resp_plot.setYRange(-1, 1)

    # --- building the card (called once, by __init__) ----------------------------------------------------------
    def _build_header(self) -> None:
        """The header's selectors: layer (multilayer networks), test image on display, selected chain."""
        self.layer_combo = LayerCombo()
        self.add_header_widget(self.layer_combo)
        self.sample_title = QLabel("Test image")
        self.add_header_widget(self.sample_title)
        self.sample_spin = QSpinBox()
        self.sample_spin.setRange(0, 0)
        self.sample_spin.setToolTip("Which test sample drives the input comb")
        self.add_header_widget(self.sample_spin)
        self.thumb = QLabel()
        self.thumb.setFixedSize(*IMAGE_THUMB)
        self.thumb.setScaledContents(True)
        self.add_header_widget(self.thumb)
        self.sample_caption = QLabel("")
        self.sample_caption.setObjectName("Dim")
        self.add_header_widget(self.sample_caption)
        self.add_header_widget(QLabel("  Chain"))
        self.chain_combo = QComboBox()
        self.chain_combo.setMaximumWidth(190)
        self.chain_combo.setToolTip("Chain whose response is drawn (click a row of the bottom plot, too)")
        self.add_header_widget(self.chain_combo)

    def _build_plots(self) -> None:
        """The three stacked plots (comb, response, resonators) sharing the frequency axis, and the read-out
        line under them."""
        self.glw = pg.GraphicsLayoutWidget()
        self.glw.ci.setSpacing(0)
        self.body.addWidget(self.glw, 1)
        self.waiting_label = QLabel(WAITING)  # the plots appear with the first network (no empty axes before)
        self.waiting_label.setObjectName("Dim")
        self.waiting_label.setAlignment(Qt.AlignCenter)
        self.body.addWidget(self.waiting_label, 1)
        self.glw.hide()
        self._add_readout()
        self.axes = [FrequencyAxis("bottom") for _ in range(3)]
        self.comb_plot = self.glw.addPlot(row=0, col=0, axisItems={"bottom": self.axes[0]})
        self.resp_plot = self.glw.addPlot(row=1, col=0, axisItems={"bottom": self.axes[1]})
        self.res_plot = self.glw.addPlot(row=2, col=0, axisItems={"bottom": self.axes[2]})
        self.plots = (self.comb_plot, self.resp_plot, self.res_plot)
        for stretch, row in zip((2, 3, 4), range(3)):
            self.glw.ci.layout.setRowStretchFactor(row, stretch)
        for p in self.plots:
            theme.style_plot(p)
            p.setMouseEnabled(x=True, y=False)
            p.hideButtons()
            p.setMenuEnabled(False)
            p.getViewBox().setDefaultPadding(0.0)
        for p in (self.resp_plot, self.res_plot):
            p.setXLink(self.comb_plot)
        for p in (self.comb_plot, self.resp_plot):
            p.getAxis("bottom").setStyle(showValues=False)
        align_left_axes(self.plots)
        lab = theme.label_style()
        #: each plot's y-axis titles, longest first: a plot too short for one gets the next, then none
        self._titles = {self.comb_plot: [("P", "W")], self.resp_plot: [("chain 0", "V/µW"), ("", "V/µW")],
                        self.res_plot: [("chain", None)]}
        self._titles_drawn: dict = {}
        self.res_plot.getAxis("left").enableAutoSIPrefix(False)  # chain numbers, never "(x0.001)"
        self._fit_axis_titles()
        self.res_plot.setLabel("bottom", "frequency (GHz)", **lab)

    def _build_comb_plot(self) -> None:
        """1. The input comb: one stem (x, x), (0, P) per emitter."""
        self.comb_item = pg.PlotDataItem(connect="pairs", pen=pg.mkPen("#9fb4d0", width=1), antialias=False)
        self.comb_plot.addItem(self.comb_item)

    def _build_response_plot(self) -> None:
        """2. The selected chain's response and its resonators on the zero line."""
        self.resp_zero = pg.InfiniteLine(pos=0, angle=0, pen=pg.mkPen(theme.FG_DIM, width=1))
        self.resp_plot.addItem(self.resp_zero)
        # thin, non-antialiased pen: this curve has thousands of points and is redrawn at every frame
        self.resp_curve = pg.PlotDataItem(pen=pg.mkPen(theme.chain_color(0), width=1), antialias=False,
                                          skipFiniteCheck=True)
        self.resp_plot.addItem(self.resp_curve)
        self.resp_markers = pg.ScatterPlotItem(size=8, pen=pg.mkPen(None))
        self.resp_plot.addItem(self.resp_markers)

    def _build_resonator_plot(self) -> None:
        """3. Every chain's resonators, one row per chain (chain 0 on top), the selected row highlighted."""
        self.sel_band = pg.LinearRegionItem(values=(-0.45, 0.45), orientation="horizontal", movable=False,
                                            brush=pg.mkBrush(255, 255, 255, 22), pen=pg.mkPen(None))
        self.res_plot.addItem(self.sel_band)
        # one scatter for every chain's resonators (coloured per chain): one setData per frame, not C
        self.res_item = pg.ScatterPlotItem(size=7, pen=pg.mkPen(None))
        self.res_plot.addItem(self.res_item)
        self.res_plot.invertY(True)

    def _build_hardware_items(self) -> None:
        """Hardware realism: tuning ranges (bands) and set-point levels (ticks), one item each, behind the rest
        and hidden until a state with a limited device asks for them."""
        self.band_item = pg.BarGraphItem(x0=[0.0], x1=[0.0], y0=[0.0], y1=[0.0], pen=pg.mkPen(None),
                                         brush=pg.mkBrush(255, 255, 255, 30))
        self.band_item.setZValue(-5)
        self.res_plot.addItem(self.band_item, ignoreBounds=True)
        self.resp_band_item = pg.BarGraphItem(x0=[0.0], x1=[0.0], y0=[-1.0], y1=[1.0], pen=pg.mkPen(None),
                                              brush=pg.mkBrush(255, 255, 255, 22))
        self.resp_band_item.setZValue(-5)
        self.resp_plot.addItem(self.resp_band_item, ignoreBounds=True)
        self.grid_item = pg.PlotDataItem(connect="pairs", pen=pg.mkPen(200, 205, 215, 120, width=1), antialias=False,
                                         skipFiniteCheck=True)
        self.grid_item.setZValue(-4)
        self.res_plot.addItem(self.grid_item, ignoreBounds=True)
        for item in (self.band_item, self.resp_band_item, self.grid_item):
            item.hide()
        self._grid_timer = QTimer(self)
        self._grid_timer.setSingleShot(True)
        self._grid_timer.setInterval(GRID_DEBOUNCE_MS)

    def _build_notes(self) -> None:
        """The notes drawn in place of the response and the resonator rows for a model without resonators."""
        note_html = f"<span style='color:{theme.FG_DIM}; font-size:10pt'></span>"
        self.resp_note = pg.TextItem(html=note_html, anchor=(0.5, 0.5))
        self.res_note = pg.TextItem(html=note_html, anchor=(0.5, 0.5))
        self.resp_plot.addItem(self.resp_note, ignoreBounds=True)
        self.res_plot.addItem(self.res_note, ignoreBounds=True)
        self.resp_note.hide()
        self.res_note.hide()

    def _connect_signals(self) -> None:
        """The header's selectors, a click on a resonator row, the zoom (level ticks), the resonator plot's
        height (row labels). (The pointer's read-out is wired by :meth:`_add_readout`.)"""
        self.layer_combo.currentIndexChanged.connect(self._on_layer_combo)
        self.sample_spin.valueChanged.connect(self._on_sample_changed)
        self.chain_combo.currentIndexChanged.connect(self._on_chain_combo)
        self.res_plot.scene().sigMouseClicked.connect(self._on_scene_click)
        self._grid_timer.timeout.connect(self._update_grid)
        self.comb_plot.getViewBox().sigXRangeChanged.connect(self._on_x_range)
        self.res_plot.getViewBox().sigResized.connect(self._update_chain_ticks)
        for p in self.plots:
            p.getViewBox().sigResized.connect(self._fit_axis_titles)

    # --- public API -----------------------------------------------------------------------------------------
    def configure(self, n_chains: int, class_names=()) -> None:
        """Lay the view out for C chains (the chain selector, the rows of the resonator plot)."""
        names = tuple(class_names) if class_names and len(class_names) == n_chains else \
            tuple(str(j) for j in range(n_chains))
        if n_chains == self.n_chains and names == self.class_names:
            return
        self.n_chains, self.class_names = n_chains, names
        self._chain_brushes = [pg.mkBrush(theme.chain_color(j)) for j in range(n_chains)]
        self._res_style = None
        self.chain_combo.blockSignals(True)
        self.chain_combo.clear()
        for j, name in enumerate(names):
            text = f"{j}: {name}" if name != str(j) else f"{j}"
            self.chain_combo.addItem(_swatch(theme.chain_color(j)), text)
            self.chain_combo.setItemData(j, f"chain {j}" + (f" (class {name})" if name != str(j) else ""),
                                         Qt.ToolTipRole)
        # wide enough for the longest name (the header gives way elsewhere), up to the combo's maximum
        widest = max((self.chain_combo.fontMetrics().horizontalAdvance(self.chain_combo.itemText(j))
                      for j in range(n_chains)), default=0)
        self.chain_combo.setMinimumWidth(min(self.chain_combo.maximumWidth(), widest + COMBO_CHROME_PX))
        self.selected_chain = min(self.selected_chain, n_chains - 1)
        self.chain_combo.setCurrentIndex(self.selected_chain)
        self.chain_combo.blockSignals(False)
        self.res_plot.setYRange(-0.6, n_chains - 0.4, padding=0)
        self._chain_tick_every = 0
        self._update_chain_ticks()
        self._set_chain_colour(self.selected_chain)

    def set_dataset(self, images: np.ndarray, labels: np.ndarray, image_shape=None, class_names=()) -> None:
        """Test samples (S, N) in [0, 1] that can drive the comb; image_shape None: inputs without a 2-D
        shape (the thumbnail is the sample's values as a line, a 1-D spectrum)."""
        self._images = np.asarray(images, dtype=np.float32)
        self._labels = np.asarray(labels)
        self._image_shape = tuple(image_shape) if image_shape is not None else None
        self._sample_names = tuple(class_names or ())
        strip = self._image_shape is None
        self.sample_title.setText("Test sample" if strip else "Test image")
        self.thumb.setFixedSize(*(LINE_THUMB if strip else IMAGE_THUMB))
        self.thumb.setScaledContents(not strip)
        self.sample_spin.blockSignals(True)
        self.sample_spin.setRange(0, max(0, len(self._images) - 1))
        self.sample_spin.blockSignals(False)
        self._update_thumb()
        self._update_comb()

    @Slot(object)
    def show_state(self, state: DisplayState) -> None:
        if not self.glw.isVisible():
            self.waiting_label.hide()
            self.glw.show()
        self._full = state
        self.layer_combo.sync(state, self.layer)
        state = state.for_layer(self.layer)
        self._state = state
        self.set_source(state.label)
        self.configure(state.n_chains, state.class_names)
        key = (state.params, state.n_inputs)
        if key != self._params_key:
            self._params_key = key
            self._log = state.params.plan == "geometric"
            for ax in self.axes:
                ax.set_log(self._log)
            self._probe = None
            lo = spectra.probe_frequencies_ghz(state.params, state.n_inputs, 1)
            self.comb_plot.setXRange(self._x(lo[0]), self._x(lo[-1]), padding=0.01)
        if not state.live:
            self._resp_max = 0.0
        self._update_comb()
        self._update_resonators()
        self._update_hardware()
        self._refresh_readout()

    def reset_scale(self) -> None:
        """Forget the response plot's y range (a new run starts)."""
        self._resp_max = 0.0

    @Slot(int)
    def set_layer(self, layer: int) -> None:
        """Show layer ``layer`` of a multilayer network (its emitters as the comb, its chains)."""
        layer = max(0, int(layer))
        if layer == self.layer:
            return
        self.layer = layer
        self._resp_max = 0.0
        if self._full is not None:
            self.show_state(self._full)

    @Slot(int)
    def set_selected_chain(self, j: int) -> None:
        j = int(max(0, min(self.n_chains - 1, j)))
        if j == self.selected_chain and self.chain_combo.currentIndex() == j:
            return
        self.selected_chain = j
        self.chain_combo.blockSignals(True)
        self.chain_combo.setCurrentIndex(j)
        self.chain_combo.blockSignals(False)
        self._set_chain_colour(j)
        self._update_resonators()
        self._update_selected_band()
        self._refresh_readout()

    # --- drawing ----------------------------------------------------------------------------------------------
    def _x(self, f):
        f = np.asarray(f, dtype=np.float64)
        return np.log10(f) if self._log else f

    def _update_chain_ticks(self, *_args) -> None:
        """Label every n-th row of the resonator plot: as many rows as fit the plot's height (see
        :func:`chain_tick_step`), relabelled when the height or the number of chains changes."""
        if self.n_chains <= 0:
            return
        axis = self.res_plot.getAxis("left")
        digits = QFontMetricsF(axis.style.get("tickFont") or axis.font()).tightBoundingRect("0123456789")
        every = chain_tick_step(self.n_chains, self.res_plot.getViewBox().height(), digits.height() + CHAIN_TICK_GAP)
        if every != self._chain_tick_every:
            self._chain_tick_every = every
            axis.setTicks([[(j, self._row_name(j)) for j in range(0, self.n_chains, every)]])

    def _row_name(self, j: int) -> str:
        """A resonator row's label: the class name (short) when the chains have names, else the number."""
        name = self.class_names[j] if j < len(self.class_names) else str(j)
        return name if len(name) <= ROW_NAME_CHARS else name[:ROW_NAME_CHARS - 1] + "…"

    def _set_chain_colour(self, j: int) -> None:
        self.resp_curve.setPen(pg.mkPen(theme.chain_color(j), width=1))
        self.sel_band.setRegion((j - 0.45, j + 0.45))
        self._titles[self.resp_plot][0] = (f"chain {j}", "V/µW")
        self._fit_axis_titles()

    @Slot()
    def _fit_axis_titles(self, *_args) -> None:
        """Each plot gets the longest y-axis title its height holds (common.fit_axis_titles)."""
        fit_axis_titles(self._titles, self._titles_drawn)

    def axis_titles(self) -> list:
        """(text drawn or '' for none, its length, its axis' height) of each plot's y-axis title, top plot first
        (for tests)."""
        out = []
        for p in self.plots:
            axis = p.getAxis("left")
            shown = axis.label.isVisible()
            out.append((axis.label.toPlainText() if shown else "", axis.label.boundingRect().width() if shown else 0.0,
                        axis.geometry().height()))
        return out

    def _current_sample(self) -> Optional[np.ndarray]:
        if self._images is None or not len(self._images):
            return None
        return self._images[min(self.sample_spin.value(), len(self._images) - 1)]

    def _update_thumb(self) -> None:
        x = self._current_sample()
        if x is None:
            return
        if self._image_shape is not None:
            h, w = self._image_shape
            img = np.ascontiguousarray((np.clip(x.reshape(h, w), 0, 1) * 255).astype(np.uint8))
            self.thumb.setPixmap(QPixmap.fromImage(QImage(img.data, w, h, w, QImage.Format_Grayscale8).copy()))
        else:
            self.thumb.setPixmap(line_thumbnail(x, *LINE_THUMB))
        label = int(self._labels[self.sample_spin.value()]) if self._labels is not None else None
        if label is not None and 0 <= label < len(self._sample_names) and self._sample_names[label] != str(label):
            self.sample_caption.setText(f"label {label} ({self._sample_names[label][:16]})")
        else:
            self.sample_caption.setText(f"label {label}" if label is not None else "")

    def _comb_powers(self, st: DisplayState) -> Optional[tuple]:
        """(power in µW of each emitter of the comb, full-scale power in µW, caption) for the test sample on
        display, or None when there is nothing to draw. The first layer's emitters are the input oscillators
        (P = P_max x); a deeper layer's are the previous layer's STNOs, at the power each emits for the sample
        (the network's noise-free forward pass on the state's weights and operating points)."""
        x, full = self._current_sample(), self._full
        if x is None or full is None or len(x) != full.n_inputs:
            return None  # (test samples of another dataset: the comb waits for this one's)
        if st.layer_index == 0:
            return st.params.p_max_uw * x.astype(np.float64), st.params.p_max_uw, INPUT_COMB
        from engine.nets.multilayer import emitted_powers_uw  # (on first use: the app starts without the training code)

        stno = st.params.stno
        full_scale = float(physics.stno_power_uw(stno.clamp_ratio * stno.i_th_ua, stno))
        try:
            p = emitted_powers_uw(full.weight, full.layers, st.params, x, st.layer_index)
            if p.shape != (st.n_inputs,):
                raise KeyError("emitter count")
        except KeyError:  # a state without the STNOs' operating points: positions only, said in the caption
            return np.full(st.n_inputs, full_scale), full_scale, HIDDEN_COMB_UNKNOWN
        return p, full_scale, HIDDEN_COMB

    def _update_comb(self) -> None:
        st = self._state
        if st is None:
            return
        got = self._comb_powers(st)
        if got is None:
            return
        p_uw, full_scale, caption = got
        if caption != self._comb_caption:
            self._comb_caption = caption
            self._set_subtitle()
        f_in = st.input_freqs_ghz if st.input_freqs_ghz is not None else \
            spectra.nominal_input_frequencies_ghz(st.params, st.n_inputs)
        drawn = self._comb_drawn
        if (drawn is not None and drawn[0] == full_scale and np.array_equal(drawn[1], p_uw)
                and np.array_equal(drawn[2], f_in)):
            return  # unchanged (the same sample and emitters): skip the repaint of the comb plot
        self._comb_drawn = (full_scale, np.array(p_uw, copy=True), np.array(f_in, copy=True))
        self._comb_power_uw = self._comb_drawn[1]
        xs = np.repeat(self._x(f_in), 2)
        ys = np.zeros_like(xs)
        ys[1::2] = p_uw * 1e-6  # µW -> W (the axis shows SI units)
        self.comb_item.setData(xs, ys)
        self.comb_plot.setYRange(0, 1.05e-6 * full_scale, padding=0)

    def _set_subtitle(self) -> None:
        self.subtitle_label.setText(f"{self._comb_caption} · {PLOTS_BELOW}{self._hw_note}")

    def _update_resonators(self) -> None:
        st = self._state
        if st is None:
            return
        if not st.is_rf:
            self.resp_curve.setData([], [])
            self.resp_markers.setData([], [])
            self.res_item.setData([], [])
            self.sel_band.hide()
            label = model_label(st.model)
            html = (f"<div style='color:{theme.FG_DIM}; font-size:10pt; text-align:center'>{label}: no "
                    f"resonators.<br>Only the input comb is drawn.</div>")
            xr = self.comb_plot.getViewBox().viewRange()[0]
            xc = 0.5 * (xr[0] + xr[1])
            self.resp_note.setHtml(html)
            self.resp_note.setPos(xc, 0.0)
            self.resp_note.show()
            self.res_note.setHtml(f"<div style='color:{theme.FG_DIM}; font-size:10pt'>No resonator chains for "
                                  f"{label.lower()}.</div>")
            self.res_note.setPos(xc, (self.n_chains - 1) / 2)
            self.res_note.show()
            self.resp_plot.setYRange(-1, 1, padding=0)
            return
        self.resp_note.hide()
        self.res_note.hide()
        self.sel_band.show()
        f_res = np.asarray(st.resonator_freqs_ghz)
        signs = st.resonator_signs if st.resonator_signs is not None else np.ones(f_res.shape[1], np.float32)
        up = np.asarray(signs) > 0
        symbols = np.where(up, "t1", "t")
        n_ch, k = f_res.shape[0], f_res.shape[1]
        key = (n_ch, k, up.tobytes())
        if self._res_style is None or self._res_style[0] != key:
            chain_of = np.repeat(np.arange(n_ch), k)
            brushes = [self._chain_brushes[j % len(self._chain_brushes)] for j in chain_of]
            self._res_style = (key, chain_of.astype(float), brushes, list(symbols) * n_ch)
        _, rows, brushes, all_symbols = self._res_style
        self.res_item.setData(self._x(f_res).ravel(), rows, symbol=all_symbols, brush=brushes)
        j = min(self.selected_chain, f_res.shape[0] - 1)
        if self._probe is None or len(self._probe) == 0 or self._probe_k != f_res.shape[1]:
            self._probe = spectra.probe_frequencies_ghz(st.params, st.n_inputs, f_res.shape[1])
            self._probe_x = self._x(self._probe)
            self._probe_k = f_res.shape[1]
        resp = spectra.chain_response(f_res[j], signs, st.params, self._probe)[0]
        self.resp_curve.setData(self._probe_x, resp)
        colour = theme.chain_color(j)
        self.resp_markers.setData(self._x(f_res[j]), np.zeros(f_res.shape[1]), symbol=list(symbols),
                                  brush=pg.mkBrush(colour), pen=pg.mkPen(theme.BG, width=0.5))
        peak = float(np.max(np.abs(resp))) if resp.size else 0.0
        peak = max(peak, st.params.k_sd)
        if peak > self._resp_max or peak < 0.3 * self._resp_max:
            self._resp_max = peak
            self.resp_plot.setYRange(-1.1 * peak, 1.1 * peak, padding=0)

    # --- hardware realism: tuning ranges and set-point levels -------------------------------------------------
    def _update_hardware(self) -> None:
        """Bands (tuning ranges) and the level grid of the state on display, redrawn only when they change."""
        st = self._state
        p = st.params if st is not None else None
        limited = st is not None and st.is_rf and st.resonator_bounds_ghz is not None
        bits = p.tuning_bits if (st is not None and st.is_rf) else None
        if not limited and bits is None:
            if self._hw_key is not None:
                self._hw_key, self._hw_comb, self._grid_drawn = None, None, None
                for item in (self.band_item, self.resp_band_item, self.grid_item):
                    item.hide()
                self._hw_note = ""
                self._set_subtitle()
            return
        bounds = np.asarray(st.resonator_bounds_ghz) if limited else None
        key = (p, st.n_inputs, st.n_chains, st.resonators_per_chain, None if bounds is None else bounds.tobytes())
        if key == self._hw_key:
            return
        self._hw_key = key
        self._hw_note = HARDWARE_NOTE
        self._set_subtitle()
        shape = np.shape(st.resonator_freqs_ghz)
        lo, hi = spectra.tuning_bounds_comb(bounds, p, st.n_inputs, shape)
        self._hw_comb = (lo, hi, bits, limited)
        if limited:
            n_ch, k = shape
            rows = np.repeat(np.arange(n_ch, dtype=float), k)
            brushes = [pg.mkBrush(*pg.mkColor(theme.chain_color(int(j))).getRgb()[:3], 34) for j in range(n_ch)]
            self.band_item.setOpts(x0=self._x(bounds[..., 0]).ravel(), x1=self._x(bounds[..., 1]).ravel(),
                                   y0=rows - BAND_HALF, y1=rows + BAND_HALF,
                                   brushes=[brushes[int(j)] for j in rows])
            self.band_item.show()
        else:
            self.band_item.hide()
        self._update_selected_band()
        self._grid_drawn = None
        self._update_grid()

    def _update_selected_band(self) -> None:
        """The selected chain's tuning ranges behind its response."""
        st, hw = self._state, self._hw_comb
        if st is None or hw is None or not hw[3] or st.resonator_bounds_ghz is None:
            self.resp_band_item.hide()
            return
        b = np.asarray(st.resonator_bounds_ghz)
        j = min(self.selected_chain, b.shape[0] - 1)
        k = b.shape[1]
        self.resp_band_item.setOpts(x0=self._x(b[j, :, 0]), x1=self._x(b[j, :, 1]), y0=np.full(k, -1.0),
                                    y1=np.full(k, 1.0))
        self.resp_band_item.show()

    @Slot(object, object)
    def _on_x_range(self, *_args) -> None:
        if self._hw_comb is not None and self._hw_comb[2] is not None:
            self._grid_timer.start()  # once the zoom or pan settles

    @Slot()
    def _update_grid(self) -> None:
        """Ticks at the set-point levels in the visible range, when they are few enough to tell apart."""
        st, hw = self._state, self._hw_comb
        if st is None or hw is None or hw[2] is None:
            self.grid_item.hide()
            return
        lo, hi, bits, limited = hw
        xr = self.comb_plot.getViewBox().viewRange()[0]
        drawn = (self._hw_key, tuple(xr))
        if drawn == self._grid_drawn:
            return
        self._grid_drawn = drawn
        f = 10.0 ** np.asarray(xr, dtype=np.float64) if self._log else np.asarray(xr, dtype=np.float64)
        if f[0] <= 0:
            f[0] = min(float(st.params.f_min_ghz) * 0.5, f[1] * 0.5)
        u_lo, u_hi = spectra.ghz_to_comb(f, st.params, st.n_inputs)
        step = float(np.min((hi - lo) / (2 ** bits - 1)))
        levels = None
        if step > 0 and (u_hi - u_lo) / step < GRID_MAX_VISIBLE:
            if limited:
                levels = spectra.set_point_levels(lo, hi, bits, u_lo, u_hi, GRID_MAX_TICKS)
            else:  # one grid shared by every resonator: lines across all the rows
                levels = spectra.set_point_levels(lo.ravel()[:1], hi.ravel()[:1], bits, u_lo, u_hi, GRID_MAX_TICKS)
        if levels is None or not len(levels[1]):
            self.grid_item.setData([], [])
            self.grid_item.hide()
            return
        device, u = levels
        xs = np.repeat(self._x(spectra.comb_to_ghz(u, st.params, st.n_inputs)), 2)
        if limited:
            row = (device // np.shape(lo)[1]).astype(float)
            ys = np.empty_like(xs)
            ys[0::2], ys[1::2] = row - BAND_HALF, row + BAND_HALF
        else:
            ys = np.tile([-0.6, self.n_chains - 0.4], len(u)).astype(float)
        self.grid_item.setData(xs, ys)
        self.grid_item.show()

    def hardware_summary(self) -> dict:
        """What the hardware items draw (for tests): band count, tick count, whether each is visible."""
        x0 = self.band_item.opts.get("x0")
        gx, _ = self.grid_item.getData()
        return {"bands": 0 if x0 is None or not self.band_item.isVisible() else len(x0),
                "bands_visible": self.band_item.isVisible(),
                "selected_bands_visible": self.resp_band_item.isVisible(),
                "ticks": 0 if gx is None or not self.grid_item.isVisible() else len(gx) // 2,
                "ticks_visible": self.grid_item.isVisible()}

    # --- slots ------------------------------------------------------------------------------------------------
    @Slot(int)
    def _on_sample_changed(self, _value: int) -> None:
        self._update_thumb()
        self._update_comb()
        self._refresh_readout()

    @Slot(int)
    def _on_layer_combo(self, layer: int) -> None:
        if layer >= 0:
            self.set_layer(layer)
            self.layer_selected.emit(layer)

    @Slot(int)
    def _on_chain_combo(self, j: int) -> None:
        self.set_selected_chain(j)
        self.chain_selected.emit(j)

    def _on_scene_click(self, ev) -> None:
        vb = self.res_plot.getViewBox()
        if not vb.sceneBoundingRect().contains(ev.scenePos()):
            return
        y = vb.mapSceneToView(ev.scenePos()).y()
        j = int(round(y))
        if 0 <= j < self.n_chains:
            self.set_selected_chain(j)
            self.chain_selected.emit(j)

    # --- hover read-out ---------------------------------------------------------------------------------------
    def _add_readout(self) -> None:
        """One line under the plots, rewritten in place as the pointer moves, cleared when it leaves."""
        self.readout_label = ElidedLabel(READOUT_HINT)  # (never widens the card)
        self.readout_label.setObjectName("Dim")
        self.body.addWidget(self.readout_label)
        self._readout = ""
        self._hover_pos = None  #: scene position of the pointer over a plot, read out again for a new state
        self.glw.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self.glw.installEventFilter(self)
        self.glw.viewport().installEventFilter(self)

    def readout_text(self) -> str:
        """The read-out of the point under the pointer ('' when the pointer is not over a plot)."""
        return self._readout

    def _set_readout(self, text: str) -> None:
        if not text:
            self._hover_pos = None
        if text != self._readout:
            self._readout = text
            self.readout_label.setText(text or READOUT_HINT)

    def _refresh_readout(self) -> None:
        """Read out the point under a resting pointer again (the state or the test sample changed)."""
        if self._hover_pos is not None:
            self._on_mouse_moved(self._hover_pos)

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 (Qt naming)
        if event.type() == QEvent.Leave and obj in (self.glw, self.glw.viewport()):
            self._set_readout("")
        return super().eventFilter(obj, event)

    def _on_mouse_moved(self, pos) -> None:
        """Read out what lies under the pointer (scene position ``pos``) in the plot it is over."""
        st = self._state
        plot = next((p for p in self.plots if p.getViewBox().sceneBoundingRect().contains(pos)), None)
        if st is None or plot is None:
            self._set_readout("")
            return
        self._hover_pos = pos
        pt = plot.getViewBox().mapSceneToView(pos)
        f = float(10.0 ** pt.x()) if self._log else float(pt.x())
        text = f"f = {f:.4g} GHz"
        if plot is self.comb_plot:
            more = self._comb_readout(st, pt.x())
        elif plot is self.resp_plot:
            more = self._response_readout(st, pt.x())
        else:
            more = self._resonator_readout(st, pt.x(), pt.y())
        self._set_readout(f"{text} · {more}" if more else text)

    def _comb_readout(self, st: DisplayState, x: float) -> str:
        p = self._comb_power_uw
        f_in = st.input_freqs_ghz if st.input_freqs_ghz is not None else \
            spectra.nominal_input_frequencies_ghz(st.params, st.n_inputs)
        if p is None or len(p) != len(f_in) or not len(f_in):
            return ""
        i = int(np.argmin(np.abs(self._x(f_in) - x)))
        what = f"input oscillator {i}" if st.layer_index == 0 else f"hidden STNO {i} (layer {st.layer_index})"
        return f"nearest {what} at {float(f_in[i]):.5g} GHz: P = {float(p[i]):.3g} µW"

    def _response_readout(self, st: DisplayState, x: float) -> str:
        xs, ys = self.resp_curve.getData()
        if not st.is_rf or xs is None or not len(xs) or not xs[0] <= x <= xs[-1]:
            return ""
        j = min(self.selected_chain, st.n_chains - 1)
        v = float(np.interp(x, xs, ys)) * 1e3  # V/µW -> mV/µW
        return f"{self._chain_name(st, j)} response {v:+.3g} mV/µW"

    def _resonator_readout(self, st: DisplayState, x: float, y: float) -> str:
        j = int(round(y))
        if not st.is_rf or not 0 <= j < st.n_chains:
            return ""
        f_res = np.asarray(st.resonator_freqs_ghz)[j]
        k = int(np.argmin(np.abs(self._x(f_res) - x)))
        signs = st.resonator_signs
        s = "" if signs is None else f", s = {'+1' if float(np.asarray(signs)[k]) > 0 else '−1'}"
        return f"{self._chain_name(st, j)} · nearest resonator {k} at {float(f_res[k]):.5g} GHz{s}"

    def _chain_name(self, st: DisplayState, j: int) -> str:
        """'chain 3', 'chain 3 (class cat)', 'hidden chain 3' (a hidden layer of a multilayer network)."""
        if st.layer_index < st.n_layers - 1:
            return f"hidden chain {j}"
        name = self.class_names[j] if j < len(self.class_names) else str(j)
        return f"chain {j} (class {name})" if name != str(j) else f"chain {j}"

    # --- test / export helpers -------------------------------------------------------------------------------
    def data_summary(self) -> dict:
        """Arrays currently drawn (for tests): comb stems, response curve, resonator x positions."""
        comb = self.comb_item.getData()
        resp = self.resp_curve.getData()
        xs, rows = self.res_item.getData()
        res = [None if xs is None else np.asarray(xs)[np.asarray(rows) == j] for j in range(self.n_chains)]
        return {"comb_y": None if comb[1] is None else np.array(comb[1]),
                "comb_x": None if comb[0] is None else np.array(comb[0]),
                "response": None if resp[1] is None else np.array(resp[1]),
                "resonators_x": [None if r is None else np.array(r) for r in res]}
