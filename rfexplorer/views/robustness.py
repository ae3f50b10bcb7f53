"""View 4: robustness of a trained network: accuracy against one device setting (a *knob*), on fresh chips.

The study runs in the engine process (engine.nets.hardware.robustness, job kind 'robustness'); each evaluation
comes back as it is done and the controller hands them over at its redraw rate, so the curve grows in place:
one line through the mean accuracy at each value with ± std error bars over the chips evaluated so far. A
few studies of the same knob stay side by side (up to :data:`MAX_CURVES`, each in its own colour, named in
the legend under the plot); a study of another knob starts a new plot. Each curve's items are created once,
when its study starts, and updated with setData.

The title line holds the chips per value, Run (it becomes Stop while a study runs) and CSV… (the rows); the
line below chooses the knob, its values (prefilled with a sensible range for each knob) and, for the
fabrication spread, whether the chips are calibrated. Relative spreads and noises are typed and drawn in
percent, as the Hardware tab shows them (the engine gets fractions: 1 % is 0.01).

Until the user picks a knob, the view suggests one for the network studied (:func:`suggested_knob`): the
spread or noise it was trained against (its device settings), with the chips calibrated as they were in
training; for a network trained on an ideal device, frequency jitter. Jitter is the one imperfection every chip
has even after calibration, so it says how robust the network is without a guess at how a chip is trimmed;
the view's old default, uncalibrated fabrication spread, is a chip no real set-up uses untrimmed, and it takes
an ideal network to chance at a fraction of a percent, so its curve says little about the network.
"""
from __future__ import annotations

import math
import statistics
from typing import Any, Optional, Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import QCheckBox, QComboBox, QHBoxLayout, QLabel, QLineEdit, QPushButton, QSizePolicy, QSpinBox

from engine.nets.hardware import ROBUSTNESS_KNOBS

from .. import theme
from .common import ViewCard, watch_axis_titles
from .sparsity import SUBTITLE_MIN_CARD_HEIGHT

#: Studies kept on the plot at once (the oldest is dropped first).
MAX_CURVES = 6
CURVE_COLORS = ("#ff8a5c", "#5fa8ff", "#5cd17a", "#ffd166", "#b99cff", "#4fd6e6")
#: What each knob is called on the axis and in the selector.
KNOB_LABELS = {"freq_spread": "fabrication spread (% relative std)", "calibrated": "calibration",
               "tuning_bits": "tuning resolution (bits)", "freq_jitter_lw": "frequency jitter (linewidths)",
               "power_noise": "input power noise (% relative std)", "readout_noise_v": "read-out noise (V)",
               "alpha_dtod": "damping spread (% relative std)", "k_sd_dtod": "K_SD spread (% relative std)"}
#: Knobs that are relative stds: typed and drawn in percent (the engine's value is the fraction).
PERCENT_KNOBS = frozenset({"freq_spread", "power_noise", "alpha_dtod", "k_sd_dtod"})
#: The knobs a network may have been trained against, in the order :func:`suggested_knob` looks at them.
TRAINED_KNOBS = ("freq_spread", "freq_jitter_lw", "power_noise", "readout_noise_v", "alpha_dtod", "k_sd_dtod",
                 "tuning_bits")
#: The knob suggested for a network trained on an ideal device (see the module's docstring).
IDEAL_KNOB = "freq_jitter_lw"
#: Short names for the selector.
KNOB_NAMES = {"freq_spread": "fab. spread", "calibrated": "calibration", "tuning_bits": "tuning bits",
              "freq_jitter_lw": "freq. jitter", "power_noise": "power noise", "readout_noise_v": "read-out noise",
              "alpha_dtod": "α spread", "k_sd_dtod": "K_SD spread"}
#: The values field is prefilled with these when a knob is chosen (none: continuous set-points).
#: (in the units the field shows: percent for PERCENT_KNOBS)
DEFAULT_VALUES = {"freq_spread": "0, 0.1, 0.2, 0.5, 1, 2",
                  "calibrated": "true, false",
                  "tuning_bits": "none, 12, 10, 8, 6, 5, 4",
                  "freq_jitter_lw": "0, 0.05, 0.1, 0.2, 0.3, 0.5",
                  "power_noise": "0, 2, 5, 10, 20, 30",
                  "readout_noise_v": "0, 0.0005, 0.001, 0.002, 0.005, 0.01",
                  "alpha_dtod": "0, 2, 5, 10, 20, 30",
                  "k_sd_dtod": "0, 5, 10, 20, 30, 50"}
DEFAULT_REPEATS = 3
LABEL_PAD = 0.2  #: x padding (of the span) of a study with worded ticks, so the outer labels are drawn whole
EMPTY_NOTE = ("Accuracy of the trained network on fresh chips as one device setting varies.<br>"
              "Train an RF network (or import one), choose a setting and press Run.")


def suggested_knob(device) -> tuple[str, bool, Any]:
    """(knob, calibrated, trained value) a study of a network trained with DeviceParams ``device`` starts from:
    the first spread or noise of TRAINED_KNOBS it was trained against (its chips calibrated as in training),
    else IDEAL_KNOB on calibrated chips, with no trained value (see the module's docstring)."""
    for knob in TRAINED_KNOBS:
        value = getattr(device, knob, None)
        if (knob == "tuning_bits" and value is not None) or (knob != "tuning_bits" and value):
            return knob, bool(getattr(device, "calibrated", True)), value
    return IDEAL_KNOB, True, None


def shown_value(knob: str, value: Any) -> Any:
    """A knob's engine value as the view shows it (percent for PERCENT_KNOBS)."""
    if knob in PERCENT_KNOBS and isinstance(value, (int, float)) and not isinstance(value, bool):
        return round(100.0 * float(value), 10)
    return value


def engine_text(knob: str, text: str) -> str:
    """The values field's text in the engine's units (percent -> fraction for PERCENT_KNOBS)."""
    if knob not in PERCENT_KNOBS:
        return text
    parts = []
    for part in text.replace(",", " ").split():
        try:
            parts.append(repr(round(float(part) / 100.0, 12)))
        except ValueError:
            parts.append(part)  # (the engine's parser says what is wrong with it)
    return ", ".join(parts)


def values_with(text: str, value: Any) -> str:
    """The default values ``text`` with ``value`` (a number, as shown) among them, in their order."""
    if value is None or isinstance(value, bool):
        return text
    parts = [p.strip() for p in text.split(",") if p.strip()]
    try:
        nums = [float(p) for p in parts if p.lower() != "none"]
    except ValueError:
        return text
    if any(math.isclose(n, float(value)) for n in nums):
        return text
    v = f"{float(value):g}"
    descending = len(nums) > 1 and nums[-1] < nums[0]
    i = next((k for k, p in enumerate(parts) if p.lower() != "none" and
              (float(p) < value if descending else float(p) > value)), len(parts))
    return ", ".join(parts[:i] + [v] + parts[i:])


def value_label(value: Any) -> str:
    if value is None:
        return "continuous"
    if isinstance(value, bool):
        return "calibrated" if value else "not calibrated"
    return f"{value:g}" if isinstance(value, float) else str(value)


def value_positions(values: Sequence[Any]) -> tuple[np.ndarray, Optional[list]]:
    """x positions of a study's values, and explicit ticks [(x, label), ...] when they are not all numbers
    (booleans at 0 and 1; None, e.g. continuous set-points, one step right of the largest number), else None."""
    numeric = [float(v) for v in values if v is not None and not isinstance(v, bool)]
    if len(numeric) == len(values) and not any(isinstance(v, bool) for v in values):
        return np.array(numeric, dtype=float), None
    # (a gap wide enough for the 'continuous' label beside the largest number's)
    right = (max(numeric) + (1.0 if len(numeric) < 2 else max(1.0, (max(numeric) - min(numeric)) / 3))
             if numeric else 1.0)
    xs = [right if v is None else float(v) for v in values]
    return np.array(xs, dtype=float), sorted({(x, value_label(v)) for x, v in zip(xs, values)})


class _Curve:
    """One study on the plot: its line with markers and its error bars, created once, updated in place."""

    def __init__(self, plot: pg.PlotItem, colour: str, knob: str, values: Sequence[Any], repeats: int,
                 label: str) -> None:
        self.knob, self.values, self.repeats, self.label, self.colour = knob, list(values), int(repeats), label, colour
        self.x, self.ticks = value_positions([shown_value(knob, v) for v in self.values])
        self.accs: dict[int, list[float]] = {i: [] for i in range(len(self.values))}
        self.errors = pg.ErrorBarItem(x=np.zeros(0), y=np.zeros(0), height=np.zeros(0),
                                      pen=pg.mkPen(colour, width=1.2), beam=0.0)
        self.line = pg.PlotDataItem(pen=pg.mkPen(colour, width=2), symbol="o", symbolSize=8, symbolBrush=colour,
                                    symbolPen=pg.mkPen(theme.BG))
        plot.addItem(self.errors)
        plot.addItem(self.line)
        self.n_evals = 0

    def index_of(self, value: Any) -> Optional[int]:
        for i, v in enumerate(self.values):
            if v is value or (type(v) is type(value) and v == value):
                return i
        return None

    def set_evals(self, evals: Sequence[dict]) -> None:
        """Every evaluation of the study so far (the controller hands the whole list at each redraw)."""
        self.accs = {i: [] for i in range(len(self.values))}
        for ev in evals:
            i = self.index_of(ev.get("value"))
            if i is not None:
                self.accs[i].append(float(ev["accuracy"]))
        self.n_evals = len(evals)

    def rows(self) -> list[dict]:
        """One row per value evaluated so far: value, mean, std (sample std, 0 for one chip), n, accuracies."""
        out = []
        for i, v in enumerate(self.values):
            a = self.accs[i]
            if a:
                out.append({"value": v, "mean": statistics.fmean(a), "std": statistics.stdev(a) if len(a) > 1 else 0.0,
                            "n": len(a), "accuracies": list(a)})
        return out

    def redraw(self) -> None:
        done = [i for i in range(len(self.values)) if self.accs[i]]
        order = sorted(done, key=lambda i: self.x[i])
        x = np.array([self.x[i] for i in order], dtype=float)
        acc = [self.accs[i] for i in order]
        y = np.array([100.0 * statistics.fmean(a) for a in acc], dtype=float)
        sd = np.array([100.0 * statistics.stdev(a) if len(a) > 1 else 0.0 for a in acc], dtype=float)
        self.line.setData(x, y)
        self.errors.setData(x=x, y=y, height=2.0 * sd)

    def remove(self, plot: pg.PlotItem) -> None:
        plot.removeItem(self.line)
        plot.removeItem(self.errors)


class RobustnessView(ViewCard):
    run_clicked = Signal()      #: Run pressed while no study runs
    stop_clicked = Signal()     #: Stop pressed while a study runs
    export_clicked = Signal()   #: CSV… pressed

    def __init__(self, parent=None) -> None:
        super().__init__("Robustness", "", parent)
        self.subtitle_label.setText("Accuracy on fresh chips (mean ± std) as one device setting varies")
        self.subtitle_label.setToolTip("The network's other device settings stay as trained; chip r draws the "
                                       "same random numbers at every value")
        self.subtitle_label.show()
        self.title_label.setToolTip(self.subtitle_label.text())
        self.curves: list[_Curve] = []
        self._running: Optional[_Curve] = None
        self._colour_index = 0

        row = QHBoxLayout()
        row.setSpacing(6)
        self.knob_combo = QComboBox()
        for knob in ROBUSTNESS_KNOBS:
            self.knob_combo.addItem(KNOB_NAMES.get(knob, knob), knob)
            self.knob_combo.setItemData(self.knob_combo.count() - 1,
                                        f"{KNOB_LABELS.get(knob, knob)}: device.{knob}", Qt.ToolTipRole)
        self.knob_combo.setToolTip("The device setting that varies (a DeviceParams field)")
        self.knob_combo.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Fixed)
        self.knob_combo.setMinimumWidth(90)
        self.values_edit = QLineEdit()
        self.values_edit.setToolTip("The values, separated by commas ('none' for continuous set-points; true / "
                                    "false for calibration)")
        self.values_edit.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Fixed)
        self.values_edit.setMinimumWidth(48)
        self.unit_label = QLabel("%")
        self.unit_label.setToolTip("The values are percent (relative std), as on the Hardware tab")
        self.repeats_spin = QSpinBox()
        self.repeats_spin.setRange(1, 100)
        self.repeats_spin.setValue(DEFAULT_REPEATS)
        self.repeats_spin.setSuffix(" chips")
        self.repeats_spin.setFixedWidth(78)
        self.repeats_spin.setToolTip("Fresh chips (and noise draws) per value: chip r uses the same random draws "
                                     "at every value")
        self.calibrated_check = QCheckBox("calibrated")
        self.calibrated_check.setToolTip("Fabrication spread: whether the chips' offsets are measured and trimmed "
                                         "(calibrated chips keep only the quantisation residual, so without "
                                         "tuning bits the spread has no effect)")
        self.run_button = QPushButton("Run")
        self.run_button.setObjectName("Primary")
        self.run_button.setToolTip("Evaluate the network on display (or the last trained one) in the background")
        self.run_button.clicked.connect(self._on_run_button)
        self.export_button = QPushButton("CSV…")
        self.export_button.setToolTip("Export the rows of the curves (mean, std, n and every accuracy) to CSV")
        self.export_button.clicked.connect(self.export_clicked)
        self.export_button.setEnabled(False)
        # the chips and the buttons on the title line, what varies on the line below
        for w in (self.repeats_spin, self.run_button, self.export_button):
            self.add_header_widget(w)
        for w, stretch in ((self.knob_combo, 2), (self.values_edit, 5), (self.unit_label, 0),
                           (self.calibrated_check, 0)):
            row.addWidget(w, stretch)
        self.body.addLayout(row)
        self.knob_combo.currentIndexChanged.connect(self._on_knob)
        self.knob_chosen = False  #: the user picked a knob: suggest() leaves it alone
        self.knob_combo.activated.connect(self._on_knob_activated)
        self.values_edit.textEdited.connect(self._on_knob_activated)  # typed values are a choice too

        self.glw = pg.GraphicsLayoutWidget()
        self.body.addWidget(self.glw, 1)
        self.plot = self.glw.addPlot(row=0, col=0)
        theme.style_plot(self.plot)
        self.plot.getAxis("bottom").enableAutoSIPrefix(False)  # values as typed, never "(x0.001)"
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        lab = theme.label_style()
        self._titles = {self.plot: [("test accuracy (%)", None), ("accuracy (%)", None), ("%", None)]}
        watch_axis_titles(self._titles, {})
        self.plot.setLabel("bottom", KNOB_LABELS[ROBUSTNESS_KNOBS[0]], **lab)
        self.plot.setYRange(0, 100, padding=0)
        self.note = pg.TextItem(html="", anchor=(0.5, 0.5))
        self.plot.addItem(self.note, ignoreBounds=True)
        self.plot.getViewBox().sigResized.connect(self._place_note)
        self.legend = QLabel("")
        self.legend.setWordWrap(True)
        self.legend.setTextFormat(Qt.RichText)
        self.body.addWidget(self.legend)
        self.set_note(EMPTY_NOTE)
        self._on_knob(self.knob_combo.currentIndex())

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt's method name
        # a short card leaves out its subtitle (kept in the title's tooltip), so the plot keeps room
        self.subtitle_label.setVisible(self.height() >= SUBTITLE_MIN_CARD_HEIGHT)
        super().resizeEvent(event)

    # --- the form -------------------------------------------------------------------------------------------
    def knob(self) -> str:
        return self.knob_combo.currentData()

    def set_knob(self, knob: str) -> None:
        i = self.knob_combo.findData(knob)
        if i >= 0:
            self.knob_combo.setCurrentIndex(i)

    def values_text(self) -> str:
        """The values as typed (percent for PERCENT_KNOBS)."""
        return self.values_edit.text()

    def engine_values_text(self) -> str:
        """The values in the engine's units (fractions for PERCENT_KNOBS): what parse_knob_values reads."""
        return engine_text(self.knob(), self.values_edit.text())

    def suggest(self, device) -> None:
        """Choose the knob, calibration and values for a network trained with DeviceParams ``device``
        (:func:`suggested_knob`), unless the user picked a knob or a study runs."""
        if self.knob_chosen or self._running is not None:
            return
        knob, calibrated, value = suggested_knob(device)
        self.set_knob(knob)
        self.calibrated_check.setChecked(calibrated)
        self.values_edit.setText(values_with(DEFAULT_VALUES.get(knob, ""), shown_value(knob, value)))
        self.values_edit.setCursorPosition(0)

    @Slot()
    def _on_knob_activated(self, *_args) -> None:
        self.knob_chosen = True

    def repeats(self) -> int:
        return int(self.repeats_spin.value())

    def fixed(self) -> dict:
        """Other device settings the study holds fixed: calibration, for a spread study."""
        return {"calibrated": self.calibrated_check.isChecked()} if self.knob() == "freq_spread" else {}

    @Slot(int)
    def _on_knob(self, _i: int) -> None:
        knob = self.knob()
        self.values_edit.setText(DEFAULT_VALUES.get(knob, ""))
        self.values_edit.setCursorPosition(0)
        self.calibrated_check.setVisible(knob == "freq_spread")
        self.unit_label.setVisible(knob in PERCENT_KNOBS)

    @Slot()
    def _on_run_button(self) -> None:
        (self.stop_clicked if self._running is not None else self.run_clicked).emit()

    def set_busy(self, busy: bool) -> None:
        self.run_button.setText("Stop" if busy else "Run")
        self.run_button.setObjectName("Danger" if busy else "Primary")
        self.run_button.style().unpolish(self.run_button)
        self.run_button.style().polish(self.run_button)
        for w in (self.knob_combo, self.values_edit, self.repeats_spin, self.calibrated_check):
            w.setEnabled(not busy)
        if not busy:
            self._running = None

    # --- curves ---------------------------------------------------------------------------------------------
    def begin(self, knob: str, values: Sequence[Any], repeats: int, label: str) -> None:
        """A study starts: a new curve (the plot is cleared first when it showed another knob)."""
        if self.curves and self.curves[0].knob != knob:
            self.clear()
        while len(self.curves) >= MAX_CURVES:
            self.curves.pop(0).remove(self.plot)
        colour = CURVE_COLORS[self._colour_index % len(CURVE_COLORS)]
        self._colour_index += 1
        curve = _Curve(self.plot, colour, knob, values, repeats, label)
        self.curves.append(curve)
        self._running = curve
        self.plot.setLabel("bottom", KNOB_LABELS.get(knob, knob), **theme.label_style())
        bottom = self.plot.getAxis("bottom")
        bottom.setTicks([curve.ticks] if curve.ticks else None)
        xs = [x for c in self.curves for x in c.x]
        lo, hi = min(xs), max(xs)
        # worded ticks ('continuous', 'not calibrated') get room: the axis leaves out any label that would
        # stick out of the plot
        pad = (LABEL_PAD if curve.ticks else 0.06) * (hi - lo) if hi > lo else 0.5
        self.plot.setXRange(lo - pad, hi + pad, padding=0)
        self.plot.setYRange(0, 100, padding=0)
        self.set_note("")
        self.set_source(f"— {label}")
        self._update_legend()
        self.export_button.setEnabled(True)

    @Slot(list)
    def show_evals(self, evals: list) -> None:
        """The running study's evaluations so far (from the controller's redraw timer): redraw its curve."""
        curve = self._running
        if curve is None:
            return
        curve.set_evals(evals)
        curve.redraw()
        self._fit_y()
        self._update_legend()

    def finish(self, evals: list, cancelled: bool = False) -> None:
        """The study ended (finished or cancelled): draw its last evaluations."""
        curve = self._running
        if curve is not None:
            curve.set_evals(evals)
            curve.redraw()
            if cancelled:
                curve.label += " (stopped)"
            self._fit_y()
            self._update_legend()
        self.set_busy(False)

    def clear(self) -> None:
        for c in self.curves:
            c.remove(self.plot)
        self.curves.clear()
        self._running = None
        self._colour_index = 0
        self._update_legend()
        self.export_button.setEnabled(False)

    def _fit_y(self) -> None:
        ys = [100.0 * r["mean"] + s * 100.0 * r["std"] for c in self.curves for r in c.rows() for s in (-1, 1)]
        if not ys:
            return
        lo = max(0.0, math.floor((min(ys) - 4.0) / 5.0) * 5.0)
        hi = min(100.0, math.ceil((max(ys) + 3.0) / 5.0) * 5.0)
        self.plot.setYRange(lo, max(hi, lo + 5.0), padding=0)

    def _update_legend(self) -> None:
        parts = []
        for c in self.curves:
            total = len(c.values) * c.repeats
            progress = f" ({c.n_evals}/{total})" if c is self._running else ""
            parts.append(f"<span style='color:{c.colour}'>&#9679;</span>&nbsp;{c.label}{progress}")
        self.legend.setText("<br>".join(parts))

    def set_note(self, html: str) -> None:
        """A message in the middle of the plot (empty: none)."""
        if not html:
            self.note.hide()
            return
        self.note.setHtml(f"<div style='color:{theme.FG_DIM}; font-size:10pt; text-align:center'>{html}</div>")
        self.note.show()
        self._place_note()

    @Slot()
    def _place_note(self, *_args) -> None:
        """The note wraps to the plot's width and sits in its middle (it is never clipped by a narrow plot)."""
        vb = self.plot.getViewBox()
        self.note.setTextWidth(max(80.0, vb.width() - 16.0))
        xr, yr = vb.viewRange()
        self.note.setPos(0.5 * (xr[0] + xr[1]), 0.5 * (yr[0] + yr[1]))

    # --- export and tests -----------------------------------------------------------------------------------
    def rows(self) -> list[dict]:
        """Every curve's rows (study label, knob, value, mean, std, n, accuracies), oldest study first."""
        return [dict(study=c.label, knob=c.knob, **r) for c in self.curves for r in c.rows()]

    def data_summary(self) -> list[dict]:
        """What each curve draws (for tests): x, y (%) and error-bar heights."""
        out = []
        for c in self.curves:
            x, y = c.line.getData()
            out.append({"label": c.label, "x": None if x is None else np.array(x), "y": None if y is None else
                        np.array(y), "height": np.array(c.errors.opts.get("height") if c.errors.opts.get("height")
                                                         is not None else [])})
        return out
