"""The group boxes of the control panel (rfexplorer.controls.ControlPanel), one builder each.

Each builder makes one box's widgets, keeps them on the panel under the names the rest of the app uses
(``panel.k_slider``, ``panel.epochs_spin``, ...), connects them to the panel's slots and returns the box; the
panel composes the boxes and holds the logic. The Device and Hardware tabs are generated from the engine's
device description in rfexplorer.device_controls.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (QComboBox, QGridLayout, QGroupBox, QLabel, QLineEdit, QPushButton,
                               QSizePolicy, QSlider, QSpinBox, QWidget)

from engine.core.compute import COMPUTE_DEVICES
from engine.data import DATASET_FILE_SUFFIXES, DATASET_LABELS, DATASET_NAMES
from engine.config.models import get_spec, list_models

from .device_controls import (DEVICE_TAB, HARDWARE_TAB, SETTINGS_DEVICE_TAB, WIDGET_NAMES, DeviceForm,
                              device_tab_widget, regime_combo, spin_box)

if TYPE_CHECKING:
    from .controls import ControlPanel

SLIDER_STEPS = 1000
KEY_DEBOUNCE_MS = 600
DEFAULT_K = 10
MAX_EPOCHS = 500


def _grid(box: QWidget) -> QGridLayout:
    grid = QGridLayout(box)
    grid.setContentsMargins(8, 6, 8, 6)
    grid.setVerticalSpacing(4)
    return grid


def build_data_group(panel: "ControlPanel") -> QGroupBox:
    """Data: the dataset combo (the registered datasets by their labels), the data folder and a dataset file."""
    box = QGroupBox("Data")
    grid = QGridLayout(box)  # the combo on a line of its own: dataset names are never cut short
    grid.setContentsMargins(8, 6, 8, 6)
    panel.dataset_combo = QComboBox()
    panel.dataset_combo.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Fixed)
    for name in DATASET_NAMES:
        panel.dataset_combo.addItem(DATASET_LABELS.get(name, name), name)
    panel.dataset_combo.currentIndexChanged.connect(panel._on_dataset)
    panel.folder_button = QPushButton("Folder…")
    panel.folder_button.clicked.connect(panel.choose_data_dir)
    panel.open_button = QPushButton("File…")
    panel.open_button.setToolTip("Open a dataset file (" + ", ".join(DATASET_FILE_SUFFIXES) + ")")
    grid.addWidget(panel.dataset_combo, 0, 0, 1, 2)
    grid.addWidget(panel.folder_button, 1, 0)
    grid.addWidget(panel.open_button, 1, 1)
    return box


def _model_combo(panel: "ControlPanel") -> QComboBox:
    combo = QComboBox()
    combo.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Fixed)
    for name in list_models():
        spec = get_spec(name)
        combo.addItem(spec.label, name)
        combo.setItemData(combo.count() - 1, spec.description, Qt.ToolTipRole)
    combo.setToolTip("RF models: resonator chains. Baselines: a sparse perceptron with the same budget of K "
                     "weights per class.")
    combo.currentIndexChanged.connect(panel._on_model)
    return combo


def _log_slider(tip: str) -> QSlider:
    slider = QSlider(Qt.Horizontal)
    slider.setRange(0, SLIDER_STEPS)
    slider.setPageStep(50)
    slider.setToolTip(tip)
    return slider


def _layers_rows(panel: "ControlPanel", grid: QGridLayout, row: int) -> None:
    """Hidden layer sizes and the K of the later layers (enabled only with hidden layers)."""
    grid.addWidget(QLabel("Hidden layers"), row, 0)
    panel.hidden_edit = QLineEdit()
    panel.hidden_edit.setPlaceholderText("e.g. 100 or 200,100 (empty: one layer)")
    panel.hidden_edit.setToolTip("Sizes of the hidden layers of STNO neurons, first to last, separated by commas. "
                                 "Empty: a single-layer network. The K above sets the first layer.")
    grid.addWidget(panel.hidden_edit, row, 1, 1, 2)
    panel.layer_k_label = QLabel("K later layers")
    grid.addWidget(panel.layer_k_label, row + 1, 0)
    panel.layer_k_edit = QLineEdit()
    panel.layer_k_edit.setPlaceholderText("empty: same as the first (capped)")
    panel.layer_k_edit.setToolTip("Resonators per chain of the layers after the first: one value for all, or one "
                                  "per later layer (e.g. 16,8). Empty: the first layer's K, capped at each "
                                  "layer's input count.")
    grid.addWidget(panel.layer_k_edit, row + 1, 1, 1, 2)
    panel.hidden_edit.textChanged.connect(panel._on_hidden_text)
    panel._on_hidden_text(panel.hidden_edit.text())


def build_model_group(panel: "ControlPanel") -> QGroupBox:
    """Model and sparsity: the model, K as a spin box and two synced log sliders, and the hidden layers."""
    box = QGroupBox("Model and sparsity")
    grid = _grid(box)
    panel.model_combo = _model_combo(panel)
    grid.addWidget(panel.model_combo, 0, 0, 1, 3)
    grid.addWidget(QLabel("Resonators per chain K"), 1, 0, 1, 2)
    panel.k_spin = QSpinBox()
    panel.k_spin.setRange(1, DEFAULT_K)
    panel.k_spin.setKeyboardTracking(False)
    panel.k_spin.setMinimumWidth(70)
    panel.k_spin.setToolTip("Chain length: resonators (synapses) per output chain")
    grid.addWidget(panel.k_spin, 1, 2)
    panel.k_slider = _log_slider("Resonators per chain (log scale). Release to train at this setting.")
    grid.addWidget(panel.k_slider, 2, 0, 1, 3)
    grid.addWidget(QLabel("Synapses removed"), 3, 0, 1, 2)
    panel.removed_label = QLabel()
    panel.removed_label.setAlignment(Qt.AlignRight | Qt.AlignVCenter)
    grid.addWidget(panel.removed_label, 3, 2)
    panel.sparsity_slider = _log_slider("Percentage of the dense perceptron's synapses removed, 100 (1 - K/N) "
                                        "(log scale of the remaining). Release to train at this setting.")
    grid.addWidget(panel.sparsity_slider, 4, 0, 1, 3)
    _layers_rows(panel, grid, 5)
    panel.k_slider.valueChanged.connect(panel._on_k_slider)
    panel.sparsity_slider.valueChanged.connect(panel._on_sparsity_slider)
    panel.k_spin.valueChanged.connect(panel._on_k_spin)
    for slider in (panel.k_slider, panel.sparsity_slider):
        slider.sliderReleased.connect(panel._on_slider_released)
        slider.actionTriggered.connect(panel._on_slider_action)
    panel._key_timer = QTimer(panel)
    panel._key_timer.setSingleShot(True)
    panel._key_timer.setInterval(KEY_DEBOUNCE_MS)
    panel._key_timer.timeout.connect(panel.run_requested)
    return box


def _compute_combo() -> QComboBox:
    combo = QComboBox()
    combo.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Fixed)
    combo.addItems(COMPUTE_DEVICES)
    combo.setCurrentText("cpu")
    if torch.cuda.is_available():
        combo.setToolTip("Where training runs: cpu, cuda (the GPU) or auto (the GPU when there is one). Seeds "
                         "give the same draws everywhere; float sums differ.")
    else:
        combo.setEnabled(False)
        combo.setToolTip("Where training runs. torch sees no GPU on this machine, so only the CPU is offered.")
    return combo


def build_training_group(panel: "ControlPanel") -> QGroupBox:
    """Training: epochs, batch size, learning rate ('default': the model's), seed and compute device."""
    box = QGroupBox("Training")
    grid = _grid(box)
    panel.epochs_spin = spin_box(1, MAX_EPOCHS, 1, tip="Passes over the training set (the default follows the "
                                                      "dataset: about 2 s of training for a first RF run)")
    panel.batch_spin = spin_box(1, 10000, 100, tip="Images per optimizer step")
    panel.lr_spin = spin_box(0.0, 10.0, 0.0, decimals=4, step=0.01)
    panel.lr_spin.setSpecialValueText("default")
    panel.seed_spin = spin_box(0, 999_999, 0, tip="Random seed (initial resonances, masks, batch order)")
    for r, (label, w, label2, w2) in enumerate((("Epochs", panel.epochs_spin, "Batch", panel.batch_spin),
                                                ("Learn. rate", panel.lr_spin, "Seed", panel.seed_spin))):
        grid.addWidget(QLabel(label), r, 0)
        grid.addWidget(w, r, 1)
        grid.addWidget(QLabel(label2), r, 2)
        grid.addWidget(w2, r, 3)
    panel.compute_combo = _compute_combo()
    grid.addWidget(QLabel("Compute"), 2, 0)
    grid.addWidget(panel.compute_combo, 2, 1, 1, 3)
    grid.setColumnStretch(1, 1)
    grid.setColumnStretch(3, 1)
    # which fields no longer follow the dataset, with a link back (ControlPanel._sync_training_note)
    panel.training_note = QLabel("")
    panel.training_note.setObjectName("Dim")
    panel.training_note.setWordWrap(True)
    panel.training_note.setTextFormat(Qt.RichText)
    panel.training_note.linkActivated.connect(panel.use_dataset_defaults)
    panel.training_note.hide()
    grid.addWidget(panel.training_note, 3, 0, 1, 4)
    for name, spin in panel._training_spins().items():
        spin.valueChanged.connect(lambda _v, name=name: panel._on_training_edited(name))
    return box


def build_device_tabs(panel: "ControlPanel") -> QWidget:
    """The Device and Hardware tabs (generated from DeviceParams), as last left, remembered on every change."""
    panel.device_form = form = DeviceForm()
    for name, widget in form.widgets.items():
        setattr(panel, WIDGET_NAMES[name], widget)
    panel.regime_combo = regime_combo()
    panel.ideal_button = QPushButton("Ideal device")
    panel.ideal_button.setToolTip("Back to the ideal device: every hardware setting at the engine's default (the "
                                  "Device tab is kept)")
    panel.ideal_button.clicked.connect(panel.reset_hardware)
    panel.hardware_widgets = (panel.regime_combo, *form.tab_widgets("hardware"), panel.ideal_button)
    panel.device_tabs = tabs = device_tab_widget(form, panel.regime_combo, panel.ideal_button)
    form.connect(panel._sync_hardware_tab, "hardware")
    panel.regime_combo.currentIndexChanged.connect(panel._sync_hardware_tab)
    tab = panel.settings.value(SETTINGS_DEVICE_TAB, DEVICE_TAB, type=int)
    tabs.setCurrentIndex(tab if tab in (DEVICE_TAB, HARDWARE_TAB) else DEVICE_TAB)
    tabs.currentChanged.connect(panel._on_device_tab)
    panel._restore_device()
    form.connect(panel._save_device)
    panel.regime_combo.currentIndexChanged.connect(panel._save_device)
    panel._sync_hardware_tab()
    return tabs


def build_buttons(panel: "ControlPanel") -> QGridLayout:
    """Train, Stop and Run sweep…; below them Pause (Resume while paused) and Step epoch."""
    buttons = QGridLayout()
    buttons.setSpacing(6)
    panel.train_button = QPushButton("Train")
    panel.train_button.setObjectName("Primary")
    panel.train_button.setToolTip("Train the selected model at this setting (Ctrl+Return)")
    panel.stop_button = QPushButton("Stop")
    panel.stop_button.setObjectName("Danger")
    panel.stop_button.setEnabled(False)
    panel.stop_button.setToolTip("Stop the run before the next batch (Esc)")
    panel.sweep_button = QPushButton("Run sweep…")
    panel.sweep_button.setToolTip("Accuracy versus sparsity for several models, in the background")
    panel.train_button.clicked.connect(panel.run_requested)
    panel.stop_button.clicked.connect(panel.stop_requested)
    panel.sweep_button.clicked.connect(panel.sweep_requested)
    for col, button in enumerate((panel.train_button, panel.stop_button, panel.sweep_button)):
        buttons.addWidget(button, 0, col)
    panel.pause_button = QPushButton("Pause")
    panel.pause_button.setEnabled(False)
    panel.pause_button.setToolTip("Pause the run before its next batch; Resume goes on from there (Ctrl+P)")
    panel.step_button = QPushButton("Step epoch")
    panel.step_button.setEnabled(False)
    panel.step_button.setToolTip("Run to the end of the current epoch, then pause (Ctrl+Shift+P)")
    panel.pause_button.clicked.connect(panel.pause_requested)
    panel.step_button.clicked.connect(panel.step_requested)
    buttons.addWidget(panel.pause_button, 1, 0, 1, 2)  # under Train and Stop: the panel gets no wider
    buttons.addWidget(panel.step_button, 1, 2)
    return buttons
