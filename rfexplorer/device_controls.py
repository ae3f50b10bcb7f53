"""The Device and Hardware tabs of the control panel, generated from :class:`engine.physics.resonators.DeviceParams`.

Every DeviceParams field whose metadata names a ``tab`` gets a control there, the way pyqtgraph's parameter
trees build a form from a description: its label, the unit it shows (``%`` shows a fraction in percent,
``°`` radians in degrees), its range, step and decimals, the text that stands for None at the control's
lowest value (0), the choices of a text field, and the field's docstring as the tooltip. The same list of
fields reads the controls into a DeviceParams, shows one, summarises the non-default hardware settings and
remembers the tabs between sessions (one JSON object of field values, as earlier versions saved it).
"""
from __future__ import annotations

import ast
import functools
import inspect
import json
import math
import textwrap
from dataclasses import dataclass, fields
from typing import Any, Callable, Optional

from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QGridLayout, QLabel, QPushButton,
                               QSizePolicy, QSpinBox, QTabWidget, QWidget)

from engine.config.run_config import RunConfig
from engine.physics.resonators import HARDWARE_REGIMES, DeviceParams

SETTINGS_DEVICE_TAB = "controls/device_tab"
#: The Device and Hardware tabs' values (a JSON object of the shown fields) and the training regime.
SETTINGS_DEVICE = "controls/device"
SETTINGS_REGIME = "controls/hardware_regime"
DEVICE_TAB, HARDWARE_TAB = 0, 1
TABS = ("device", "hardware")
REGIME_TIPS = {"ideal": "Train on the nominal device (no fabrication spreads, no noise); evaluate on the "
                        "network's own chip, which training never saw",
               "aware": "Train on a fresh chip (all enabled spreads) and the enabled noise at every batch",
               "in-situ": "Train on the one chip the network lives on (its offsets known only through the "
                          "forward pass), with the noise; evaluate on that chip"}
#: The panel attribute of each field's control (other modules and the tests use these names).
WIDGET_NAMES = {"alpha": "alpha_spin", "phi": "phi_spin", "f_min_ghz": "fmin_spin", "f_max_ghz": "fmax_spin",
                "plan": "plan_combo", "tuning_range": "range_spin", "tuning_bits": "bits_spin",
                "freq_spread": "spread_spin", "calibrated": "calibrated_check", "freq_jitter_lw": "jitter_spin",
                "power_noise": "power_noise_spin"}


def _fraction(percent: float) -> float:
    """A spin box's percentage as a fraction, without binary noise (2.5 % -> 0.025, not 0.025000000000000001)."""
    return round(float(percent) / 100.0, 10)


#: Units a control shows in place of the field's own: (field value -> shown, shown -> field value).
SHOWN_UNITS: dict[str, tuple[Callable[[float], float], Callable[[float], float]]] = {
    "%": (lambda v: 100.0 * v, _fraction), "°": (math.degrees, math.radians)}


#: Width a spin box needs beyond its text: the arrows and the frame's padding (px).
SPIN_CHROME_PX = 34


def spin_box(lo: float, hi: float, value: float, decimals: int = 0, step: float = 1.0, suffix: str = "",
             tip: str = ""):
    """A compact spin box (QDoubleSpinBox with decimals, else QSpinBox) that reports only finished edits."""
    if decimals:
        box = QDoubleSpinBox()
        box.setDecimals(decimals)
        box.setRange(lo, hi)
        box.setSingleStep(step)
        box.setValue(value)
    else:
        box = QSpinBox()
        box.setRange(int(lo), int(hi))
        box.setSingleStep(int(step))
        box.setValue(int(value))
    box.setMinimumWidth(40)
    box.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Fixed)
    if suffix:
        box.setSuffix(suffix)
    if tip:
        box.setToolTip(tip)
    box.setKeyboardTracking(False)
    return box


@functools.lru_cache(maxsize=None)
def field_docs(cls: type) -> dict[str, str]:
    """The one-paragraph docstrings under a dataclass's fields, read from its source (empty if there is none)."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError, SyntaxError):  # no source (a frozen build): the tooltips are the labels
        return {}
    docs, body = {}, tree.body[0].body
    for node, after in zip(body, body[1:]):
        if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant) and isinstance(after.value.value, str)):
            docs[node.target.id] = " ".join(inspect.cleandoc(after.value.value).split())
    return docs


@dataclass(frozen=True)
class FieldControl:
    """How one DeviceParams field shows in the tabs (from its metadata), and its control's value both ways."""

    name: str
    meta: dict
    default: Any
    tip: str

    @property
    def label(self) -> str:
        """The short label, with a long unit (e.g. GHz) in brackets: a spin box shows the short ones."""
        label = self.meta.get("label", self.name)
        return f"{label} ({self.unit})" if len(self.unit) > 2 else label

    @property
    def suffix(self) -> str:
        """What a spin box shows after the value: a short unit (°, %, lw)."""
        if not self.unit or len(self.unit) > 2:
            return ""
        return self.unit if self.unit == "°" else " " + self.unit

    @property
    def unit(self) -> str:
        return self.meta.get("unit", "")

    def make(self) -> QWidget:
        """A new control at the field's default: a check box, a combo box of the choices, or a spin box."""
        if isinstance(self.default, bool):
            widget = QCheckBox(self.label)
        elif "choices" in self.meta:
            widget = QComboBox()
            widget.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Fixed)
            widget.addItems(list(self.meta["choices"]))
        else:
            m, none = self.meta, self.meta.get("none")
            widget = spin_box(0 if none else m["min"], m["max"], 0, m.get("decimals", 0), m.get("step", 1),
                              self.suffix)
            if none:
                widget.setSpecialValueText(none)
                # room for the whole word ("continuous") beside the arrows: the layout may squeeze a spin box
                # down to its minimum width, and Qt then cuts the word's first letters
                widget.setMinimumWidth(widget.fontMetrics().horizontalAdvance(none) + SPIN_CHROME_PX)
        widget.setObjectName(f"device.{self.name}")
        widget.setToolTip(self.tip)
        self.show(widget, self.default)
        return widget

    def shown(self, value: Any) -> Any:
        """The value as its control shows it (0 for None)."""
        if value is None:
            return 0
        to_shown = SHOWN_UNITS.get(self.unit, (None,))[0]
        return to_shown(value) if to_shown else value

    def show(self, widget: QWidget, value: Any) -> None:
        if isinstance(widget, QCheckBox):
            widget.setChecked(bool(value))
        elif isinstance(widget, QComboBox):
            widget.setCurrentText(value)
        else:
            widget.setValue(self.shown(value))

    def read(self, widget: QWidget) -> Any:
        """The field value the control shows."""
        if isinstance(widget, QCheckBox):
            return widget.isChecked()
        if isinstance(widget, QComboBox):
            return widget.currentText()
        value = widget.value()
        if "none" in self.meta and value <= 0:
            return None
        if isinstance(widget, QSpinBox):
            return int(value)
        return SHOWN_UNITS.get(self.unit, (None, float))[1](value)

    def changed(self, widget: QWidget):
        """The control's signal for a changed value."""
        if isinstance(widget, QCheckBox):
            return widget.toggled
        if isinstance(widget, QComboBox):
            return widget.currentIndexChanged
        return widget.valueChanged

    def summary(self, value: Any) -> Optional[str]:
        """A few words for a value other than the default (None at the default)."""
        if value == self.default:
            return None
        shown = self.shown(value)
        template = self.meta.get("summary", self.meta.get("label", self.name) + " {}")
        return template.format(f"{shown:g}" if isinstance(shown, float) else shown)


@functools.lru_cache(maxsize=None)
def device_controls(tab: Optional[str] = None) -> tuple[FieldControl, ...]:
    """The DeviceParams fields shown in a tab (every tab: None), in declaration order."""
    base, docs = DeviceParams(), field_docs(DeviceParams)
    return tuple(FieldControl(f.name, dict(f.metadata), getattr(base, f.name),
                              _tip(docs.get(f.name, f.name), f.metadata))
                 for f in fields(DeviceParams)
                 if f.metadata.get("tab") in TABS and (tab is None or f.metadata["tab"] == tab))


def _tip(doc: str, meta) -> str:
    """A field's tooltip: its docstring (and the unit the control shows it in), wrapped."""
    unit = meta.get("unit", "")
    text = doc + (f" Shown in {unit}." if unit in SHOWN_UNITS else "")
    return textwrap.fill(text, 80)


#: The device fields the two tabs show, remembered between sessions, and the Hardware tab's fields.
DEVICE_FIELDS = tuple(c.name for c in device_controls())
HARDWARE_FIELDS = tuple(c.name for c in device_controls("hardware"))


class DeviceForm:
    """The generated controls of the shown DeviceParams fields: read, shown, summarised and remembered."""

    def __init__(self) -> None:
        self.widgets = {c.name: c.make() for c in device_controls()}

    def params(self) -> DeviceParams:
        """The device the controls show (ValueError in plain words if it is not valid, e.g. a reversed band)."""
        return DeviceParams(**{c.name: c.read(self.widgets[c.name]) for c in device_controls()})

    def show(self, d: DeviceParams) -> None:
        for c in device_controls():
            c.show(self.widgets[c.name], getattr(d, c.name))

    def tab_widgets(self, tab: str) -> list[QWidget]:
        return [self.widgets[c.name] for c in device_controls(tab)]

    def connect(self, slot: Callable, tab: Optional[str] = None) -> None:
        """Call ``slot`` whenever a control (of one tab, or of both) changes."""
        for c in device_controls(tab):
            c.changed(self.widgets[c.name]).connect(slot)

    def grid(self, tab: str, first_row: int = 0, grid: Optional[QGridLayout] = None) -> QGridLayout:
        """Lay a tab's controls out two to a row, label then control, check boxes after the others."""
        grid = grid if grid is not None else QGridLayout()
        shown = sorted(device_controls(tab), key=lambda c: isinstance(c.default, bool))
        for i, c in enumerate(shown):
            row, col = first_row + i // 2, 2 * (i % 2)
            widget = self.widgets[c.name]
            if isinstance(widget, QCheckBox):
                grid.addWidget(widget, row, col, 1, 2)
                continue
            label = QLabel(c.label)
            label.setToolTip(c.tip)
            label.setBuddy(widget)
            grid.addWidget(label, row, col)
            alone = i == len(shown) - 1 and col == 0
            grid.addWidget(widget, row, col + 1, 1, 3 if alone else 1)
        grid.setColumnStretch(1, 1)
        grid.setColumnStretch(3, 1)
        return grid


def hardware_summary(d: DeviceParams, regime: str) -> Optional[str]:
    """The hardware settings in a few words, or None when they are the engine's defaults."""
    parts = [f"{regime} training"] if regime != RunConfig().hardware else []
    parts += [text for c in device_controls("hardware") if (text := c.summary(getattr(d, c.name)))]
    return ", ".join(parts) if parts else None


def ideal_hardware(d: DeviceParams) -> DeviceParams:
    """The device with every Hardware-tab field at the engine's default (the Device tab's fields kept)."""
    return d.with_(**{c.name: c.default for c in device_controls("hardware")})


def save_device(settings: QSettings, d: DeviceParams, regime: str) -> None:
    """Remember the shown fields of a device and the training regime."""
    values = d.to_dict()
    settings.setValue(SETTINGS_DEVICE, json.dumps({name: values[name] for name in DEVICE_FIELDS}))
    settings.setValue(SETTINGS_REGIME, regime)


def restore_device(settings: QSettings) -> tuple[DeviceParams, str]:
    """The device and regime last remembered; the defaults for what is missing, damaged or from elsewhere."""
    text = settings.value(SETTINGS_DEVICE, "", type=str)
    regime = settings.value(SETTINGS_REGIME, RunConfig().hardware, type=str)
    if regime not in HARDWARE_REGIMES:
        regime = RunConfig().hardware
    d = DeviceParams()
    if text:
        try:
            saved = json.loads(text)
            if not isinstance(saved, dict) or set(saved) - set(DEVICE_FIELDS):
                raise ValueError("not a device")
            d = DeviceParams.from_dict({**d.to_dict(), **saved})
        except (ValueError, TypeError):  # a damaged or older settings file: keep the defaults
            pass
    return d, regime


def regime_combo() -> QComboBox:
    """The training regimes (RunConfig.hardware), each item explained in its tooltip."""
    combo = QComboBox()
    combo.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Fixed)
    for i, regime in enumerate(HARDWARE_REGIMES):
        combo.addItem(regime, regime)
        combo.setItemData(i, REGIME_TIPS.get(regime, ""), Qt.ToolTipRole)
    combo.setCurrentIndex(HARDWARE_REGIMES.index(RunConfig().hardware))
    combo.setToolTip("Training regime: which chip and noise a training pass sees (ideal, aware, in-situ; hover "
                     "the items)")
    return combo


def device_tab_widget(form: DeviceForm, regime: QComboBox, ideal_button: QPushButton) -> QTabWidget:
    """The Device and Hardware tabs sharing one box: the Hardware tab starts with the regime and a reset."""
    tabs = QTabWidget()
    tabs.setObjectName("DeviceTabs")
    tabs.setDocumentMode(True)
    tabs.setSizePolicy(QSizePolicy.Preferred, QSizePolicy.Fixed)
    for title, tab in (("Device", "device"), ("Hardware", "hardware")):
        page = QWidget()
        grid = QGridLayout(page)
        grid.setContentsMargins(8, 6, 8, 6)
        grid.setVerticalSpacing(4)
        first_row = 0
        if tab == "hardware":
            grid.addWidget(QLabel("Regime"), 0, 0)
            grid.addWidget(regime, 0, 1)
            grid.addWidget(ideal_button, 0, 2, 1, 2)
            first_row = 1
        form.grid(tab, first_row, grid)
        grid.setRowStretch(grid.rowCount(), 1)
        tabs.addTab(page, title)
    return tabs
