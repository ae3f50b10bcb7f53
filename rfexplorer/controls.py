"""The control panel: dataset, model, chain length / sparsity, training and device settings, run buttons.

The two sparsity sliders are logarithmic (the interesting chains are short: K = 1…100 of N inputs) and kept
in sync both ways: K resonators per chain <-> 100 (1 - K/N) % of synapses removed. Their range follows the
loaded dataset's input count N. Releasing either slider asks for a run (``run_requested``); keyboard and
wheel moves ask too, after a short pause. Models come from the engine's registry; what a model uses (K, the
device settings) comes from its registry entry.

Epochs, batch size and learning rate follow the dataset until each is edited: the dataset's recommended
settings for the model (engine.recommended, chosen on validation splits; e.g. 15 epochs of 100 on the
embedded MNIST subset, 120 epochs of 20 at learning rate 0.1 for RF on the drone spectra). A dataset file
gets batches of 100 and about :data:`TARGET_STEPS` optimizer steps, which makes a first RF run of about 2 s
on two cores near its accuracy plateau (measured on the embedded subset, RF at K = 10, seeds 0-2, one torch
thread: 5 epochs 74.8-77.9 % in 0.5 s, 10 epochs 80.2-81.4 % in 1.0 s, 15 epochs 80.4-82.9 % in 1.5 s).
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Optional

from PySide6.QtCore import QSettings, Qt, QTimer, Signal, Slot
from PySide6.QtWidgets import (QAbstractSlider, QCheckBox, QComboBox, QDoubleSpinBox, QGridLayout,
                               QGroupBox, QHBoxLayout, QLabel, QLineEdit, QPushButton, QSizePolicy, QSlider, QSpinBox,
                               QTabWidget, QVBoxLayout, QWidget)

import torch

from engine.compute import COMPUTE_DEVICES
from engine.config import RunConfig, removed_synapses_pct
from engine.data import (DATASET_FILE_SUFFIXES, DATASET_NAMES, EMBEDDED_NAME, TORCHVISION_DATASETS,
                         available_datasets, resolve_data_root)
from engine.models import get_spec, list_models
from engine.physics import FREQUENCY_PLANS, HARDWARE_REGIMES, MAX_TUNING_BITS, DeviceParams
from engine.recommended import recommended_values

SLIDER_STEPS = 1000
KEY_DEBOUNCE_MS = 600
DEFAULT_K = 10
#: Optimizer steps of a default run (epochs = this / steps per epoch): 15 epochs of the embedded subset.
TARGET_STEPS = 900
MAX_EPOCHS = 500
DATASET_LABELS = {"mnist-mini": "MNIST subset (embedded)", "mnist": "MNIST", "fashion-mnist": "Fashion-MNIST",
                  "kmnist": "KMNIST", "drones": "Drone RF spectra (embedded)"}
DATASET_TIPS = {"mnist-mini": "6,000 train / 1,000 test MNIST images shipped with rfexplorer",
                "drones": "Radio-frequency spectra of drone remote controls and Wi-Fi emitters, shipped with "
                          "rfexplorer (inputs without an image shape)"}
SETTINGS_DATA_DIR = "data/folder"
SETTINGS_DATASET = "data/dataset"
SETTINGS_DEVICE_TAB = "controls/device_tab"
#: The Device and Hardware tabs' values (a JSON object of DEVICE_FIELDS) and the training regime.
SETTINGS_DEVICE = "controls/device"
SETTINGS_REGIME = "controls/hardware_regime"
#: The Hardware tab's device fields (the ideal device: their defaults).
HARDWARE_FIELDS = ("tuning_range", "tuning_bits", "freq_spread", "calibrated", "freq_jitter_lw", "power_noise")
#: The device fields the two tabs show, remembered between sessions.
DEVICE_FIELDS = ("alpha", "phi", "f_min_ghz", "f_max_ghz", "plan", "tuning_range", "tuning_bits", "freq_spread",
                 "calibrated", "freq_jitter_lw", "power_noise")
DEVICE_TAB, HARDWARE_TAB = 0, 1
REGIME_TIPS = {"ideal": "Train on the nominal device (no fabrication spreads, no noise); evaluate on the "
                        "network's own chip, which training never saw",
               "aware": "Train on a fresh chip (all enabled spreads) and the enabled noise at every batch",
               "in-situ": "Train on the one chip the network lives on (its offsets known only through the "
                          "forward pass), with the noise; evaluate on that chip"}


def default_epochs(n_train: int, batch_size: int) -> int:
    """Epochs that make a default run about TARGET_STEPS optimizer steps long."""
    steps = max(1, math.ceil(max(1, n_train) / max(1, batch_size)))
    return int(max(1, min(MAX_EPOCHS, round(TARGET_STEPS / steps))))


def _sizes(text: str, what: str) -> tuple[int, ...]:
    parts = [p.strip() for p in text.replace(";", ",").replace(" ", ",").split(",")]
    parts = [p for p in parts if p]
    values = []
    for p in parts:
        try:
            v = int(p)
        except ValueError:
            raise ValueError(f"{what}: '{p}' is not a whole number (write e.g. 100 or 200,100)") from None
        if v < 1:
            raise ValueError(f"{what}: every size must be at least 1 (got {v})")
        values.append(v)
    return tuple(values)


def parse_hidden(text: str) -> tuple[int, ...]:
    """Hidden layer sizes from '100' or '200, 100' (empty: a single-layer network). ValueError in plain words."""
    return _sizes(text or "", "Hidden layers")


def parse_layer_ks(text: str, hidden: tuple[int, ...]) -> tuple[int, ...]:
    """K of the layers after the first from '16' (every later layer) or '16, 8' (one per later layer); empty:
    the engine's default (the first layer's K). Each K is capped at its layer's input count."""
    ks = _sizes(text or "", "K of later layers")
    if not ks:
        return ()
    if not hidden:
        raise ValueError("K of later layers: there are no later layers (set hidden layers first)")
    if len(ks) == 1:
        ks = ks * len(hidden)
    if len(ks) != len(hidden):
        raise ValueError(f"K of later layers: give one value for all, or one per later layer ({len(hidden)}); "
                         f"got {len(ks)}")
    return tuple(min(k, h) for k, h in zip(ks, hidden))


def is_dataset_file(key: str) -> bool:
    """True for a dataset given as a file path (not one of the registered names)."""
    return key not in DATASET_NAMES


def k_to_pos(k: int, n: int) -> int:
    """Slider position (0…SLIDER_STEPS) of K on a log scale from 1 to n."""
    if n <= 1:
        return 0
    return int(round(SLIDER_STEPS * math.log(max(1, min(k, n))) / math.log(n)))


def pos_to_k(pos: int, n: int) -> int:
    if n <= 1:
        return 1
    return int(max(1, min(n, round(math.exp(pos / SLIDER_STEPS * math.log(n))))))


def _fraction(percent: float) -> float:
    """A spin box's percentage as a fraction, without binary noise (2.5 % -> 0.025, not 0.025000000000000001)."""
    return round(float(percent) / 100.0, 10)


def _spin(lo: float, hi: float, value: float, decimals: int = 0, step: float = 1.0, suffix: str = "",
          tip: str = ""):
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


class ControlPanel(QWidget):
    run_requested = Signal()        #: Train clicked, or a sparsity slider released
    stop_requested = Signal()
    sweep_requested = Signal()
    k_changed = Signal(int)
    dataset_changed = Signal(str)
    data_dir_changed = Signal(str)

    def __init__(self, settings: QSettings, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.n_inputs: Optional[int] = None  #: the loaded dataset's input count (None until it is known)
        self._k = DEFAULT_K
        self._k_wanted = DEFAULT_K  #: K as last chosen; shown clamped to 1..N
        #: training fields ('epochs', 'batch_size', 'lr') set by hand (or by a caller): they no longer follow datasets
        self._edited: set[str] = set()
        self._following = False
        self._n_train: Optional[int] = None  #: the loaded dataset's training-set size (None until it is known)
        self._syncing = False
        self.setSizePolicy(QSizePolicy.Preferred, QSizePolicy.Fixed)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(8, 4, 8, 8)
        outer.setSpacing(4)

        # --- data -----------------------------------------------------------------------------------------
        data = QGroupBox("Data")
        drow = QHBoxLayout(data)
        drow.setContentsMargins(8, 6, 8, 6)
        self.dataset_combo = QComboBox()
        self.dataset_combo.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Fixed)
        for name in DATASET_NAMES:
            self.dataset_combo.addItem(DATASET_LABELS.get(name, name), name)
        self.dataset_combo.currentIndexChanged.connect(self._on_dataset)
        self.folder_button = QPushButton("Folder…")
        self.folder_button.clicked.connect(self.choose_data_dir)
        self.open_button = QPushButton("File…")
        self.open_button.setToolTip("Open a dataset file (" + ", ".join(DATASET_FILE_SUFFIXES) + ")")
        drow.addWidget(self.dataset_combo, 1)
        drow.addWidget(self.folder_button)
        drow.addWidget(self.open_button)
        outer.addWidget(data)

        # --- model and sparsity -----------------------------------------------------------------------------
        model = QGroupBox("Model and sparsity")
        grid = QGridLayout(model)
        grid.setContentsMargins(8, 6, 8, 6)
        grid.setVerticalSpacing(4)
        self.model_combo = QComboBox()
        self.model_combo.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Fixed)
        for name in list_models():
            spec = get_spec(name)
            self.model_combo.addItem(spec.label, name)
            self.model_combo.setItemData(self.model_combo.count() - 1, spec.description, Qt.ToolTipRole)
        self.model_combo.setToolTip("RF models: resonator chains. Baselines: a sparse perceptron with the same "
                                    "budget of K weights per class.")
        self.model_combo.currentIndexChanged.connect(self._on_model)
        grid.addWidget(self.model_combo, 0, 0, 1, 3)
        grid.addWidget(QLabel("Resonators per chain K"), 1, 0, 1, 2)
        self.k_spin = QSpinBox()
        self.k_spin.setRange(1, DEFAULT_K)
        self.k_spin.setKeyboardTracking(False)
        self.k_spin.setMinimumWidth(70)
        self.k_spin.setToolTip("Chain length: resonators (synapses) per output chain")
        grid.addWidget(self.k_spin, 1, 2)
        self.k_slider = QSlider(Qt.Horizontal)
        self.k_slider.setRange(0, SLIDER_STEPS)
        self.k_slider.setPageStep(50)
        self.k_slider.setToolTip("Resonators per chain (log scale). Release to train at this setting.")
        grid.addWidget(self.k_slider, 2, 0, 1, 3)
        grid.addWidget(QLabel("Synapses removed"), 3, 0, 1, 2)
        self.removed_label = QLabel()
        self.removed_label.setAlignment(Qt.AlignRight | Qt.AlignVCenter)
        grid.addWidget(self.removed_label, 3, 2)
        self.sparsity_slider = QSlider(Qt.Horizontal)
        self.sparsity_slider.setRange(0, SLIDER_STEPS)
        self.sparsity_slider.setPageStep(50)
        self.sparsity_slider.setToolTip("Percentage of the dense perceptron's synapses removed, 100 (1 - K/N) "
                                        "(log scale of the remaining). Release to train at this setting.")
        grid.addWidget(self.sparsity_slider, 4, 0, 1, 3)
        grid.addWidget(QLabel("Hidden layers"), 5, 0)
        self.hidden_edit = QLineEdit()
        self.hidden_edit.setPlaceholderText("e.g. 100 or 200,100 (empty: one layer)")
        self.hidden_edit.setToolTip("Sizes of the hidden layers of STNO neurons, first to last, separated by "
                                    "commas. Empty: a single-layer network. The K above sets the first layer.")
        grid.addWidget(self.hidden_edit, 5, 1, 1, 2)
        self.layer_k_label = QLabel("K later layers")
        grid.addWidget(self.layer_k_label, 6, 0)
        self.layer_k_edit = QLineEdit()
        self.layer_k_edit.setPlaceholderText("empty: same as the first (capped)")
        self.layer_k_edit.setToolTip("Resonators per chain of the layers after the first: one value for all, or "
                                     "one per later layer (e.g. 16,8). Empty: the first layer's K, capped at "
                                     "each layer's input count.")
        grid.addWidget(self.layer_k_edit, 6, 1, 1, 2)
        self.hidden_edit.textChanged.connect(self._on_hidden_text)
        self._on_hidden_text(self.hidden_edit.text())
        self.k_slider.valueChanged.connect(self._on_k_slider)
        self.sparsity_slider.valueChanged.connect(self._on_sparsity_slider)
        self.k_spin.valueChanged.connect(self._on_k_spin)
        for slider in (self.k_slider, self.sparsity_slider):
            slider.sliderReleased.connect(self._on_slider_released)
            slider.actionTriggered.connect(self._on_slider_action)
        self._key_timer = QTimer(self)
        self._key_timer.setSingleShot(True)
        self._key_timer.setInterval(KEY_DEBOUNCE_MS)
        self._key_timer.timeout.connect(self.run_requested)
        outer.addWidget(model)

        # --- training -------------------------------------------------------------------------------------
        train = QGroupBox("Training")
        tg = QGridLayout(train)
        tg.setContentsMargins(8, 6, 8, 6)
        tg.setVerticalSpacing(4)
        self.epochs_spin = _spin(1, MAX_EPOCHS, 1, tip="Passes over the training set (the default follows the "
                                                     "dataset: about 2 s of training for a first RF run)")
        self.batch_spin = _spin(1, 10000, 100, tip="Images per optimizer step")
        self.lr_spin = _spin(0.0, 10.0, 0.0, decimals=4, step=0.01)
        self.lr_spin.setSpecialValueText("default")
        self.seed_spin = _spin(0, 999_999, 0, tip="Random seed (initial resonances, masks, batch order)")
        for r, (label, w, label2, w2) in enumerate((("Epochs", self.epochs_spin, "Batch", self.batch_spin),
                                                    ("Learn. rate", self.lr_spin, "Seed", self.seed_spin))):
            tg.addWidget(QLabel(label), r, 0)
            tg.addWidget(w, r, 1)
            tg.addWidget(QLabel(label2), r, 2)
            tg.addWidget(w2, r, 3)
        self.compute_combo = QComboBox()
        self.compute_combo.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Fixed)
        self.compute_combo.addItems(COMPUTE_DEVICES)
        self.compute_combo.setCurrentText("cpu")
        if torch.cuda.is_available():
            self.compute_combo.setToolTip("Where training runs: cpu, cuda (the GPU) or auto (the GPU when there "
                                          "is one). Seeds give the same draws everywhere; float sums differ.")
        else:
            self.compute_combo.setEnabled(False)
            self.compute_combo.setToolTip("Where training runs. torch sees no GPU on this machine, so only the "
                                          "CPU is offered.")
        tg.addWidget(QLabel("Compute"), 2, 0)
        tg.addWidget(self.compute_combo, 2, 1, 1, 3)
        tg.setColumnStretch(1, 1)
        tg.setColumnStretch(3, 1)
        for name, spin in self._training_spins().items():
            spin.valueChanged.connect(lambda _v, name=name: self._on_training_edited(name))
        outer.addWidget(train)

        # --- device and hardware realism: two tabs sharing one box ---------------------------------------------
        dev = QWidget()
        dg = QGridLayout(dev)
        dg.setContentsMargins(8, 6, 8, 6)
        dg.setVerticalSpacing(4)
        d = DeviceParams()
        self.alpha_spin = _spin(0.0001, 0.5, d.alpha, decimals=4, step=0.0005,
                                tip="Gilbert damping α: a resonator's linewidth is α·f")
        self.phi_spin = _spin(-180.0, 180.0, math.degrees(d.phi), decimals=1, step=5.0, suffix="°",
                              tip="Lineshape phase φ: 0° antisymmetric Lorentzian, 90° symmetric")
        self.fmin_spin = _spin(0.01, 500.0, d.f_min_ghz, decimals=2, step=0.5,
                               tip="Frequency of the first input oscillator (GHz)")
        self.fmax_spin = _spin(0.02, 1000.0, d.f_max_ghz, decimals=2, step=0.5,
                               tip="Frequency of the last input oscillator (GHz)")
        self.plan_combo = QComboBox()
        self.plan_combo.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Fixed)
        self.plan_combo.addItems(FREQUENCY_PLANS)
        self.plan_combo.setToolTip("Input frequency plan: geometric keeps the spacing constant in linewidths")
        dg.addWidget(QLabel("Damping α"), 0, 0)
        dg.addWidget(self.alpha_spin, 0, 1)
        dg.addWidget(QLabel("Phase φ"), 0, 2)
        dg.addWidget(self.phi_spin, 0, 3)
        dg.addWidget(QLabel("Band (GHz)"), 1, 0)
        dg.addWidget(self.fmin_spin, 1, 1)
        dash = QLabel("to")
        dash.setAlignment(Qt.AlignCenter)
        dg.addWidget(dash, 1, 2)
        dg.addWidget(self.fmax_spin, 1, 3)
        dg.addWidget(QLabel("Plan"), 2, 0)
        dg.addWidget(self.plan_combo, 2, 1, 1, 3)
        dg.setColumnStretch(1, 1)
        dg.setColumnStretch(3, 1)
        dg.setRowStretch(3, 1)
        self.device_tabs = QTabWidget()
        self.device_tabs.setObjectName("DeviceTabs")
        self.device_tabs.setDocumentMode(True)
        self.device_tabs.setSizePolicy(QSizePolicy.Preferred, QSizePolicy.Fixed)
        self.device_tabs.addTab(dev, "Device")
        self.device_tabs.addTab(self._build_hardware(d), "Hardware")
        self.device_tabs.setTabToolTip(HARDWARE_TAB, "Hardware realism: training regime, tuning range and "
                                                     "resolution, fabrication spread, noise")
        tab = self.settings.value(SETTINGS_DEVICE_TAB, DEVICE_TAB, type=int)
        self.device_tabs.setCurrentIndex(tab if tab in (DEVICE_TAB, HARDWARE_TAB) else DEVICE_TAB)
        self.device_tabs.currentChanged.connect(self._on_device_tab)
        self._restore_device()
        for w in (self.alpha_spin, self.phi_spin, self.fmin_spin, self.fmax_spin, self.range_spin, self.bits_spin,
                  self.spread_spin, self.jitter_spin, self.power_noise_spin):
            w.valueChanged.connect(self._save_device)
        self.plan_combo.currentIndexChanged.connect(self._save_device)
        self.regime_combo.currentIndexChanged.connect(self._save_device)
        self.calibrated_check.toggled.connect(self._save_device)
        self._sync_hardware_tab()
        outer.addWidget(self.device_tabs)

        # --- buttons --------------------------------------------------------------------------------------
        buttons = QGridLayout()
        buttons.setSpacing(6)
        self.train_button = QPushButton("Train")
        self.train_button.setObjectName("Primary")
        self.train_button.setToolTip("Train the selected model at this setting (Ctrl+Return)")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setObjectName("Danger")
        self.stop_button.setEnabled(False)
        self.stop_button.setToolTip("Stop the run before the next batch (Esc)")
        self.sweep_button = QPushButton("Run sweep…")
        self.sweep_button.setToolTip("Accuracy versus sparsity for several models, in the background")
        self.train_button.clicked.connect(self.run_requested)
        self.stop_button.clicked.connect(self.stop_requested)
        self.sweep_button.clicked.connect(self.sweep_requested)
        buttons.addWidget(self.train_button, 0, 0)
        buttons.addWidget(self.stop_button, 0, 1)
        buttons.addWidget(self.sweep_button, 0, 2)
        outer.addLayout(buttons)

        self._load_settings()
        self.set_k(DEFAULT_K)
        self._on_model(self.model_combo.currentIndex())

    def _build_hardware(self, d: DeviceParams) -> QWidget:
        """The Hardware tab: training regime and the hardware-realism device fields (docs/physics.md), at the
        engine's defaults (an ideal device, so the default configuration is unchanged)."""
        page = QWidget()
        hg = QGridLayout(page)
        hg.setContentsMargins(8, 6, 8, 6)
        hg.setVerticalSpacing(4)
        self.regime_combo = QComboBox()
        self.regime_combo.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Fixed)
        for i, regime in enumerate(HARDWARE_REGIMES):
            self.regime_combo.addItem(regime, regime)
            self.regime_combo.setItemData(i, REGIME_TIPS.get(regime, ""), Qt.ToolTipRole)
        self.regime_combo.setCurrentIndex(HARDWARE_REGIMES.index(RunConfig().hardware))
        self.regime_combo.setToolTip("Training regime: which chip and noise a training pass sees "
                                     "(ideal, aware, in-situ; hover the items)")
        self.calibrated_check = QCheckBox("calibrated")
        self.calibrated_check.setChecked(d.calibrated)
        self.calibrated_check.setToolTip("Fabrication offsets are measured and trimmed by the set-points (only "
                                         "the quantisation residual remains); unchecked, they act in full")
        self.range_spin = _spin(0.0, 100.0, 100.0 * (d.tuning_range or 0.0), decimals=2, step=1.0, suffix=" %",
                                tip="Tuning range: each device reaches ± this fraction of its fabricated "
                                    "frequency. 'unlimited': the whole band plus the margin")
        self.range_spin.setSpecialValueText("unlimited")
        self.bits_spin = _spin(0, MAX_TUNING_BITS, d.tuning_bits or 0,
                               tip="Set-point resolution: 2^bits levels across each device's tuning range. "
                                   "'continuous': no quantisation")
        self.bits_spin.setSpecialValueText("continuous")
        self.spread_spin = _spin(0.0, 50.0, 100.0 * d.freq_spread, decimals=3, step=0.1, suffix=" %",
                                 tip="Fabrication spread: relative std of each device's true frequency around "
                                     "its set-point, drawn once per chip")
        self.jitter_spin = _spin(0.0, 10.0, d.freq_jitter_lw, decimals=3, step=0.05, suffix=" lw",
                                 tip="Frequency jitter: cycle-to-cycle std of each device's frequency at every "
                                     "read-out, in its own linewidths α·f")
        self.power_noise_spin = _spin(0.0, 100.0, 100.0 * d.power_noise, decimals=2, step=0.5, suffix=" %",
                                      tip="Power noise: cycle-to-cycle relative std of each input power at every "
                                          "read-out")
        self.ideal_button = QPushButton("Ideal device")
        self.ideal_button.setToolTip("Back to the ideal device: every hardware setting at the engine's default "
                                     "(the Device tab is kept)")
        self.ideal_button.clicked.connect(self.reset_hardware)
        rows = (("Regime", self.regime_combo, None, self.calibrated_check),
                ("Range ±", self.range_spin, "Bits", self.bits_spin),
                ("Spread", self.spread_spin, "Jitter", self.jitter_spin),
                ("Power noise", self.power_noise_spin, None, self.ideal_button))
        for r, (label, w, label2, w2) in enumerate(rows):
            hg.addWidget(QLabel(label), r, 0)
            hg.addWidget(w, r, 1)
            if label2 is not None:
                hg.addWidget(QLabel(label2), r, 2)
            if w2 is not None:
                hg.addWidget(w2, r, 3 if label2 is not None else 2, 1, 1 if label2 is not None else 2)
        hg.setColumnStretch(1, 1)
        hg.setColumnStretch(3, 1)
        self.hardware_widgets = (self.regime_combo, self.calibrated_check, self.range_spin, self.bits_spin,
                                 self.spread_spin, self.jitter_spin, self.power_noise_spin, self.ideal_button)
        for w in (self.range_spin, self.bits_spin, self.spread_spin, self.jitter_spin, self.power_noise_spin):
            w.valueChanged.connect(self._sync_hardware_tab)
        self.regime_combo.currentIndexChanged.connect(self._sync_hardware_tab)
        self.calibrated_check.toggled.connect(self._sync_hardware_tab)
        return page

    @Slot()
    def _sync_hardware_tab(self, *_args) -> None:
        """The Hardware tab's title says when its settings are not the ideal device (a dot), its tooltip what
        they are, so a setting hidden behind the Device tab is never forgotten."""
        text = self.hardware_summary()
        self.device_tabs.setTabText(HARDWARE_TAB, "Hardware" if text is None else "Hardware ●")
        self.device_tabs.setTabToolTip(HARDWARE_TAB, "Hardware realism: " + (text or "ideal device (defaults)"))

    def hardware_summary(self) -> Optional[str]:
        """The hardware settings in a few words, or None when they are the engine's defaults."""
        try:
            d, regime = self.device_params(), self.regime_combo.currentData()
        except ValueError as exc:
            return str(exc)
        base = DeviceParams()
        parts = []
        if regime != RunConfig().hardware:
            parts.append(f"{regime} training")
        if d.tuning_range is not None:
            parts.append(f"range ±{100 * d.tuning_range:g} %")
        if d.tuning_bits is not None:
            parts.append(f"{d.tuning_bits} bits")
        if d.freq_spread != base.freq_spread:
            parts.append(f"spread {100 * d.freq_spread:g} %")
        if d.calibrated != base.calibrated:
            parts.append("not calibrated")
        if d.freq_jitter_lw != base.freq_jitter_lw:
            parts.append(f"jitter {d.freq_jitter_lw:g} lw")
        if d.power_noise != base.power_noise:
            parts.append(f"power noise {100 * d.power_noise:g} %")
        return ", ".join(parts) if parts else None

    @Slot(int)
    def _on_device_tab(self, index: int) -> None:
        self.settings.setValue(SETTINGS_DEVICE_TAB, int(index))

    # --- settings and data folder ------------------------------------------------------------------------
    def _load_settings(self) -> None:
        folder = self.settings.value(SETTINGS_DATA_DIR, "", type=str)
        self.data_dir = folder or str(resolve_data_root(None))
        self.refresh_datasets()
        wanted = self.settings.value(SETTINGS_DATASET, EMBEDDED_NAME, type=str)
        if wanted and is_dataset_file(wanted) and Path(wanted).is_file():
            self.add_dataset_file(wanted)
        else:
            self.select_dataset(wanted if wanted in self.available else EMBEDDED_NAME)

    def refresh_datasets(self) -> None:
        """Enable the datasets present in the data folder (the embedded subset is always there)."""
        self.available = available_datasets(self.data_dir)
        model = self.dataset_combo.model()
        for i in range(self.dataset_combo.count()):
            name = self.dataset_combo.itemData(i)
            item = model.item(i)
            if is_dataset_file(name):
                item.setEnabled(True)
                item.setToolTip(name)
                continue
            ok = name in self.available
            item.setEnabled(ok)
            if name in DATASET_TIPS:
                item.setToolTip(DATASET_TIPS[name])
            elif ok:
                item.setToolTip(f"{TORCHVISION_DATASETS[name]} in {self.data_dir}")
            else:
                item.setToolTip(f"Not found in {self.data_dir}/{TORCHVISION_DATASETS[name]}/raw — choose a folder "
                                f"that has it")
        self.folder_button.setToolTip(f"Data folder: {self.data_dir}\nChoose the folder that holds MNIST, "
                                      f"FashionMNIST or KMNIST (torchvision layout: <folder>/MNIST/raw/...).")
        if not is_dataset_file(self.dataset()) and self.dataset() not in self.available:
            self.select_dataset(EMBEDDED_NAME)

    def set_data_dir(self, folder: str) -> None:
        self.data_dir = str(folder)
        self.settings.setValue(SETTINGS_DATA_DIR, self.data_dir)
        self.refresh_datasets()
        self.data_dir_changed.emit(self.data_dir)

    @Slot()
    def choose_data_dir(self) -> None:
        from . import dialogs

        folder = dialogs.open_folder(self, "Folder with MNIST-family datasets", self.data_dir)
        if folder:
            self.set_data_dir(folder)
            found = [n for n in self.available if n in TORCHVISION_DATASETS]
            if found:
                self.select_dataset(found[0])

    def select_dataset(self, name: str) -> None:
        i = self.dataset_combo.findData(name)
        if i >= 0:
            self.dataset_combo.setCurrentIndex(i)

    def add_dataset_file(self, path: str) -> None:
        """List a dataset file (after the named datasets) and select it."""
        path = str(path)
        if self.dataset_combo.findData(path) < 0:
            self.dataset_combo.addItem(f"{Path(path).name} (file)", path)
            self.dataset_combo.setItemData(self.dataset_combo.count() - 1, path, Qt.ToolTipRole)
        self.select_dataset(path)

    def remove_dataset_file(self, path: str) -> None:
        """Drop a dataset file from the list (it could not be loaded)."""
        i = self.dataset_combo.findData(str(path))
        if i >= 0 and is_dataset_file(str(path)):
            self.dataset_combo.blockSignals(True)
            self.dataset_combo.removeItem(i)
            self.dataset_combo.blockSignals(False)

    def dataset_keys(self) -> list[str]:
        """Every dataset the combo lists: registered names, then opened files."""
        return [self.dataset_combo.itemData(i) for i in range(self.dataset_combo.count())]

    def dataset(self) -> str:
        return self.dataset_combo.currentData() or EMBEDDED_NAME

    @Slot(int)
    def _on_dataset(self, _i: int) -> None:
        self.settings.setValue(SETTINGS_DATASET, self.dataset())
        self.dataset_changed.emit(self.dataset())

    # --- model -------------------------------------------------------------------------------------------
    def model(self) -> str:
        return self.model_combo.currentData()

    def set_model(self, name: str) -> None:
        self.model_combo.setCurrentIndex(self.model_combo.findData(name))

    def spec(self):
        """The registry entry of the selected model."""
        return get_spec(self.model())

    @Slot(int)
    def _on_model(self, _i: int) -> None:
        spec = self.spec()
        unit = " input spacings per step" if spec.is_rf else ""
        self.lr_spin.setToolTip(f"Learning rate (Adam). 'default' uses the tuned value for "
                                f"{spec.label}: {spec.default_lr:g}{unit}.")
        for w in (self.k_slider, self.sparsity_slider, self.k_spin):
            w.setEnabled(spec.uses_k)
        self._follow_dataset()  # the recommended learning rate is the model's
        for w in (self.alpha_spin, self.phi_spin, self.fmin_spin, self.fmax_spin, self.plan_combo,
                  *self.hardware_widgets):
            w.setEnabled(spec.is_rf)

    @Slot(str)
    def _on_hidden_text(self, text: str) -> None:
        try:
            multi = bool(parse_hidden(text))
        except ValueError:
            multi = True
        self.layer_k_edit.setEnabled(multi)
        self.layer_k_label.setEnabled(multi)

    def hidden(self) -> tuple[int, ...]:
        """The hidden layer sizes typed (ValueError in plain words if the text is not valid)."""
        return parse_hidden(self.hidden_edit.text())

    def set_hidden(self, hidden, layer_resonators=()) -> None:
        self.hidden_edit.setText(",".join(str(int(h)) for h in hidden))
        self.layer_k_edit.setText(",".join(str(int(k)) for k in layer_resonators))

    # --- chain length <-> sparsity -----------------------------------------------------------------------
    def k(self) -> int:
        return self._k

    def _n(self) -> int:
        """The slider range's N: the dataset's input count (or, before it is known, K itself)."""
        return self.n_inputs if self.n_inputs else max(self._k_wanted, 2)

    def removed_pct(self) -> Optional[float]:
        return removed_synapses_pct(self._k, self.n_inputs) if self.n_inputs else None

    def set_k(self, k: int) -> None:
        self._k_wanted = max(1, int(k))
        self._apply_k(int(k), source=None)

    def set_n_inputs(self, n: int) -> None:
        """Follow a dataset of N inputs: K ranges over 1..N (K as last chosen, clamped to N)."""
        n = int(n)
        if n != self.n_inputs:
            self.n_inputs = n
            self.k_spin.setRange(1, n)
            self.k_spin.setToolTip(f"Chain length: resonators (synapses) per output chain, 1…{n:,}")
            self._apply_k(self._k_wanted, source=None, remember=False)

    def set_dataset_size(self, n_train: int) -> None:
        """Follow the loaded dataset: its recommended training settings, unless edited."""
        self._n_train = int(n_train)
        self._follow_dataset()

    def _training_spins(self) -> dict:
        return {"epochs": self.epochs_spin, "batch_size": self.batch_spin, "lr": self.lr_spin}

    def _follow_dataset(self) -> None:
        """Epochs, batch size and learning rate not edited by hand: the dataset's recommendation for the model
        (engine.recommended; the registry's learning rate shows as 'default'), or for a dataset file batches
        of 100, the default learning rate and about TARGET_STEPS steps."""
        if self._n_train is None or self.model() is None:
            return
        values = recommended_values(self.dataset(), self.model())
        if not values:
            batch = int(self.batch_spin.value()) if "batch_size" in self._edited else RunConfig.batch_size
            values = {"batch_size": batch, "lr": 0.0, "epochs": default_epochs(self._n_train, batch)}
        elif values["lr"] == self.spec().default_lr:
            values["lr"] = 0.0
        self._following = True
        try:
            for name, spin in self._training_spins().items():
                if name not in self._edited:
                    spin.setValue(values[name])
        finally:
            self._following = False

    def _on_training_edited(self, name: str) -> None:
        if not self._following:
            self._edited.add(name)

    def _apply_k(self, k: int, source: Optional[QWidget], remember: bool = True) -> None:
        n = self._n()
        k = max(1, min(n, k))
        if remember and source is not None:
            self._k_wanted = k
        changed = k != self._k
        self._k = k
        self._syncing = True
        try:
            if source is not self.k_slider:
                self.k_slider.setValue(k_to_pos(k, n))
            if source is not self.sparsity_slider:
                self.sparsity_slider.setValue(SLIDER_STEPS - k_to_pos(k, n))
            if source is not self.k_spin:
                self.k_spin.setValue(k)
            removed = self.removed_pct()
            self.removed_label.setText(f"{removed:.2f} %" if removed is not None else "–")
        finally:
            self._syncing = False
        if changed:
            self.k_changed.emit(k)

    @Slot(int)
    def _on_k_slider(self, pos: int) -> None:
        if not self._syncing:
            self._apply_k(pos_to_k(pos, self._n()), self.k_slider)

    @Slot(int)
    def _on_sparsity_slider(self, pos: int) -> None:
        if not self._syncing:
            self._apply_k(pos_to_k(SLIDER_STEPS - pos, self._n()), self.sparsity_slider)

    @Slot(int)
    def _on_k_spin(self, k: int) -> None:
        if not self._syncing:
            self._apply_k(k, self.k_spin)

    @Slot()
    def _on_slider_released(self) -> None:
        self._key_timer.stop()
        self._apply_k(self._k, None)  # snap both handles to the exact K
        self.run_requested.emit()

    @Slot(int)
    def _on_slider_action(self, action: int) -> None:
        slider = self.sender()
        if action == QAbstractSlider.SliderMove or (slider is not None and slider.isSliderDown()):
            return
        self._key_timer.start()  # keyboard, wheel or page click: run after a short pause

    # --- the run's configuration ---------------------------------------------------------------------------
    def device_params(self) -> DeviceParams:
        rng = self.range_spin.value()
        bits = int(self.bits_spin.value())
        return DeviceParams(alpha=self.alpha_spin.value(), phi=math.radians(self.phi_spin.value()),
                            f_min_ghz=self.fmin_spin.value(), f_max_ghz=self.fmax_spin.value(),
                            plan=self.plan_combo.currentText(),
                            tuning_range=_fraction(rng) if rng > 0 else None, tuning_bits=bits if bits > 0 else None,
                            freq_spread=_fraction(self.spread_spin.value()), calibrated=self.calibrated_check.isChecked(),
                            freq_jitter_lw=float(self.jitter_spin.value()),
                            power_noise=_fraction(self.power_noise_spin.value()))

    def hardware(self) -> str:
        """The training regime chosen (RunConfig.hardware)."""
        return self.regime_combo.currentData()

    def config(self) -> RunConfig:
        """The RunConfig these controls describe (ValueError with a readable message if invalid)."""
        lr = self.lr_spin.value()
        data_dir = self.data_dir if self.dataset() in TORCHVISION_DATASETS else None
        hidden = self.hidden()
        layer_ks = parse_layer_ks(self.layer_k_edit.text(), hidden) if hidden else ()  # disabled when empty
        return RunConfig(model=self.model(), resonators_per_chain=self._k, dataset=self.dataset(),
                         hidden=hidden, layer_resonators=layer_ks,
                         data_dir=data_dir, epochs=int(self.epochs_spin.value()),
                         batch_size=int(self.batch_spin.value()), lr=lr if lr > 0 else None,
                         seed=int(self.seed_spin.value()), device=self.device_params(),
                         hardware=self.hardware(), compute_device=self.compute_combo.currentText())

    def set_config(self, cfg: RunConfig) -> None:
        self.set_model(cfg.model)
        self.set_hidden(cfg.hidden, cfg.layer_resonators)
        self.set_k(cfg.resonators_per_chain)
        self.epochs_spin.setValue(cfg.epochs)
        self.batch_spin.setValue(cfg.batch_size)
        self.lr_spin.setValue(cfg.lr or 0.0)
        self.seed_spin.setValue(cfg.seed)
        if self.compute_combo.isEnabled():
            self.compute_combo.setCurrentText(cfg.compute_device)
        self.set_device(cfg.device, cfg.hardware)

    def set_device(self, d: DeviceParams, regime: str) -> None:
        """Show these device parameters and this training regime in the Device and Hardware tabs."""
        self.alpha_spin.setValue(d.alpha)
        self.phi_spin.setValue(math.degrees(d.phi))
        self.fmin_spin.setValue(d.f_min_ghz)
        self.fmax_spin.setValue(d.f_max_ghz)
        self.plan_combo.setCurrentText(d.plan)
        self.regime_combo.setCurrentIndex(max(0, self.regime_combo.findData(regime)))
        self.range_spin.setValue(100.0 * d.tuning_range if d.tuning_range is not None else 0.0)
        self.bits_spin.setValue(d.tuning_bits or 0)
        self.spread_spin.setValue(100.0 * d.freq_spread)
        self.calibrated_check.setChecked(bool(d.calibrated))
        self.jitter_spin.setValue(d.freq_jitter_lw)
        self.power_noise_spin.setValue(100.0 * d.power_noise)

    @Slot()
    def reset_hardware(self) -> None:
        """The Hardware tab back to the ideal device (the engine's defaults); the Device tab is kept."""
        try:
            d = self.device_params()
        except ValueError:
            d = DeviceParams()
        base = DeviceParams()
        ideal = d.with_(**{name: getattr(base, name) for name in HARDWARE_FIELDS})
        self.set_device(ideal, RunConfig().hardware)

    @Slot()
    def _save_device(self, *_args) -> None:
        """Remember the Device and Hardware tabs (only a valid device: a half-typed band is not saved)."""
        try:
            d = self.device_params().to_dict()
        except ValueError:
            return
        self.settings.setValue(SETTINGS_DEVICE, json.dumps({name: d[name] for name in DEVICE_FIELDS}))
        self.settings.setValue(SETTINGS_REGIME, self.hardware())

    def _restore_device(self) -> None:
        """The Device and Hardware tabs as last left; the defaults when nothing (or nothing valid) was saved."""
        text = self.settings.value(SETTINGS_DEVICE, "", type=str)
        regime = self.settings.value(SETTINGS_REGIME, RunConfig().hardware, type=str)
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
        self.set_device(d, regime)

    def set_busy(self, busy: bool) -> None:
        self.stop_button.setEnabled(busy)
        self.train_button.setText("Restart" if busy else "Train")

    def set_sweep_busy(self, busy: bool) -> None:
        self.sweep_button.setText("Stop sweep" if busy else "Run sweep…")
