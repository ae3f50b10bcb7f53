"""The control panel: dataset, model, chain length / sparsity, training and device settings, run buttons.

The two sparsity sliders are logarithmic (the interesting chains are short: K = 1…100 of N inputs) and kept
in sync both ways: K resonators per chain <-> 100 (1 - K/N) % of synapses removed. Their range follows the
loaded dataset's input count N. Releasing either slider asks for a run (``run_requested``); keyboard and
wheel moves ask too, after a short pause. Models come from the engine's registry; what a model uses (K, the
device settings) comes from its registry entry. The panel composes one group box per concern, each built in
rfexplorer.control_groups; the Device and Hardware tabs are generated from the engine's DeviceParams fields
(rfexplorer.device_controls), which also remember them between sessions.

Epochs, batch size and learning rate follow the dataset until each is edited: the dataset's recommended
settings for the model (engine.experiments.recommended, chosen on validation splits; e.g. 15 epochs of 100 on the
embedded MNIST subset, 120 epochs of 20 at learning rate 0.1 for RF on the drone spectra). A dataset file
gets batches of 100 and about :data:`TARGET_STEPS` optimizer steps, which makes a first RF run of about 2 s
on two cores near its accuracy plateau (measured on the embedded subset, RF at K = 10, seeds 0-2, one torch
thread: 5 epochs 74.8-77.9 % in 0.5 s, 10 epochs 80.2-81.4 % in 1.0 s, 15 epochs 80.4-82.9 % in 1.5 s).
Once a field is edited (and differs from the recommendation) a note under them says so, with the dataset's value
and a link that makes them follow the dataset again.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

from PySide6.QtCore import QSettings, Qt, Signal, Slot
from PySide6.QtWidgets import QAbstractSlider, QSizePolicy, QVBoxLayout, QWidget

from engine.config.run_config import RunConfig, removed_synapses_pct
from engine.data import DATASET_LABELS  # noqa: F401 (re-exported for the modules that read it here)
from engine.data import DATASET_NAMES, EMBEDDED_NAME, TORCHVISION_DATASETS, available_datasets, resolve_data_root
from engine.config.models import get_spec
from engine.physics.resonators import DeviceParams
from engine.experiments.recommended import recommended_values
from engine.core.sizes import parse_sizes

from . import dialogs
from .control_groups import (DEFAULT_K, MAX_EPOCHS, SLIDER_STEPS, build_buttons, build_data_group,
                             build_device_tabs, build_model_group, build_training_group)
from .device_controls import DEVICE_TAB, SETTINGS_DEVICE  # noqa: F401 (re-exported: the tests read them here)
from .device_controls import (HARDWARE_TAB, SETTINGS_DEVICE_TAB, hardware_summary, ideal_hardware, restore_device,
                              save_device)

#: Optimizer steps of a default run (epochs = this / steps per epoch): 15 epochs of the embedded subset.
TARGET_STEPS = 900
DATASET_TIPS = {"mnist-mini": "6,000 train / 1,000 test MNIST images shipped with rfexplorer",
                "drones": "Radio-frequency spectra of drone remote controls and Wi-Fi emitters, shipped with "
                          "rfexplorer (inputs without an image shape)"}
SETTINGS_DATA_DIR = "data/folder"
SETTINGS_DATASET = "data/dataset"


def default_epochs(n_train: int, batch_size: int) -> int:
    """Epochs that make a default run about TARGET_STEPS optimizer steps long."""
    steps = max(1, math.ceil(max(1, n_train) / max(1, batch_size)))
    return int(max(1, min(MAX_EPOCHS, round(TARGET_STEPS / steps))))


def parse_hidden(text: str) -> tuple[int, ...]:
    """Hidden layer sizes from '100' or '200, 100' (empty: a single-layer network). ValueError in plain words."""
    return parse_sizes(text or "", "Hidden layers")


def parse_layer_ks(text: str, hidden: tuple[int, ...]) -> tuple[int, ...]:
    """K of the layers after the first from '16' (every later layer) or '16, 8' (one per later layer); empty:
    the engine's default (the first layer's K). Each K is capped at its layer's input count."""
    ks = parse_sizes(text or "", "K of later layers")
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


class ControlPanel(QWidget):
    run_requested = Signal()        #: Train clicked, or a sparsity slider released
    stop_requested = Signal()
    pause_requested = Signal()      #: Pause / Resume clicked (the controller knows which)
    step_requested = Signal()       #: Step epoch clicked
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
        outer.addWidget(build_data_group(self))
        outer.addWidget(build_model_group(self))
        outer.addWidget(build_training_group(self))
        outer.addWidget(build_device_tabs(self))
        outer.addLayout(build_buttons(self))
        self._load_settings()
        self.set_k(DEFAULT_K)
        self._on_model(self.model_combo.currentIndex())

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
            return hardware_summary(self.device_params(), self.hardware())
        except ValueError as exc:
            return str(exc)

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
        for w in (*self.device_form.tab_widgets("device"), *self.hardware_widgets):
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
        (engine.experiments.recommended; the registry's learning rate shows as 'default'), or for a dataset file batches
        of 100, the default learning rate and about TARGET_STEPS steps."""
        if self._n_train is None or self.model() is None:
            return
        values = recommended_values(self.dataset(), self.model())
        if not values:
            batch = int(self.batch_spin.value()) if "batch_size" in self._edited else RunConfig.batch_size
            values = {"batch_size": batch, "lr": 0.0, "epochs": default_epochs(self._n_train, batch)}
        elif values["lr"] == self.spec().default_lr:
            values["lr"] = 0.0
        self._recommended = values
        self._following = True
        try:
            for name, spin in self._training_spins().items():
                if name not in self._edited:
                    spin.setValue(values[name])
        finally:
            self._following = False
        self._sync_training_note()

    def _on_training_edited(self, name: str) -> None:
        if not self._following:
            self._edited.add(name)
            self._sync_training_note()

    def _sync_training_note(self) -> None:
        """Under the training fields, which ones no longer follow the dataset (edited, and not its default),
        with the default and a link back to it."""
        rec = getattr(self, "_recommended", None) or {}
        words = {"epochs": "epochs", "batch_size": "batch", "lr": "learning rate"}
        mine = []
        for name, spin in self._training_spins().items():
            if name in self._edited and name in rec and abs(float(spin.value()) - float(rec[name])) > 1e-12:
                default = "the model's" if name == "lr" and not rec[name] else f"{rec[name]:g}"
                mine.append(f"{words[name]} {spin.textFromValue(spin.value())} (dataset default {default})")
        back = "<a href='defaults'>Use the dataset's settings</a>"
        self.training_note.setText("Your values: " + ", ".join(mine) + ". " + back if mine else "")
        self.training_note.setToolTip("These fields no longer follow the dataset's recommended settings "
                                      "(engine.experiments.recommended); the link puts them back" if mine else "")
        self.training_note.setVisible(bool(mine))

    @Slot()
    def use_dataset_defaults(self, *_args) -> None:
        """Epochs, batch size and learning rate follow the dataset again (its recommended settings)."""
        self._edited.difference_update(self._training_spins())
        self._follow_dataset()

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
        """The device the Device and Hardware tabs show (ValueError in plain words if it is not valid)."""
        return self.device_form.params()

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
        self.device_form.show(d)
        self.regime_combo.setCurrentIndex(max(0, self.regime_combo.findData(regime)))

    @Slot()
    def reset_hardware(self) -> None:
        """The Hardware tab back to the ideal device (the engine's defaults); the Device tab is kept."""
        try:
            d = self.device_params()
        except ValueError:
            d = DeviceParams()
        self.set_device(ideal_hardware(d), RunConfig().hardware)

    @Slot()
    def _save_device(self, *_args) -> None:
        """Remember the Device and Hardware tabs (only a valid device: a half-typed band is not saved)."""
        try:
            d = self.device_params()
        except ValueError:
            return
        save_device(self.settings, d, self.hardware())

    def _restore_device(self) -> None:
        """The Device and Hardware tabs as last left; the defaults when nothing (or nothing valid) was saved."""
        self.set_device(*restore_device(self.settings))

    def set_busy(self, busy: bool) -> None:
        self.stop_button.setEnabled(busy)
        self.pause_button.setEnabled(busy)
        self.step_button.setEnabled(busy)
        self.train_button.setText("Restart" if busy else "Train")
        if not busy:
            self.set_pause_state("running")

    def set_pause_state(self, state: str) -> None:
        """The run's pause state ('running', 'paused' or 'stepping'): Pause becomes Resume while paused."""
        self.pause_button.setText("Resume" if state == "paused" else "Pause")

    def set_sweep_busy(self, busy: bool) -> None:
        self.sweep_button.setText("Stop sweep" if busy else "Run sweep…")
