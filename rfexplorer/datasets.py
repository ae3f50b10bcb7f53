"""The dataset the explorer works on: choosing it (the Data box, File > Open dataset…), loading it in the
training thread, and telling the views its shape (N inputs, C classes, image shape or none, class names).

Loading always happens in the worker: the GUI only receives a :class:`~rfexplorer.worker.DatasetInfo` (a few
test samples as numpy copies and the metadata). A file that cannot be read gives a dialog with the engine's
one-sentence error, and the previous dataset stays selected.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional

from PySide6.QtCore import QObject, Signal, Slot

from engine.data import DATASET_FILE_SUFFIXES, EMBEDDED_DATASETS, EMBEDDED_NAME, TORCHVISION_DATASETS

from . import dialogs
from .controls import is_dataset_file
from .worker import DatasetInfo

if TYPE_CHECKING:  # the collaborators' types, for the annotations only: no import at run time, so no cycle
    from PySide6.QtWidgets import QWidget

    from .controller import Controller
    from .controls import ControlPanel
    from .views import SparsityView, SpectrumView
    from .views.common import ElidedLabel

#: The file chooser's filter for dataset files.
FILE_FILTER = ("Datasets (" + " ".join(f"*{s}" for s in DATASET_FILE_SUFFIXES) + ");;All files (*)")


class DatasetPresenter(QObject):
    #: a dataset was loaded and the views follow it now (DatasetInfo)
    changed = Signal(object)

    def __init__(self, parent_widget: QWidget, controls: ControlPanel, controller: Controller, spectrum: SpectrumView,
                 sparsity: SparsityView, label: ElidedLabel, status: Callable[[str, str], None]) -> None:
        super().__init__(parent_widget)
        self.parent_widget = parent_widget
        self.controls = controls
        self.controller = controller
        self.spectrum = spectrum
        self.sparsity = sparsity
        self.label = label
        self.status = status
        self.info: Optional[DatasetInfo] = None
        self._last_folder = ""

    # --- choosing -----------------------------------------------------------------------------------------
    def start(self) -> None:
        """Load the dataset the controls name (at start-up)."""
        self.load(self.controls.dataset())

    def data_dir_for(self, key: str) -> Optional[str]:
        return self.controls.data_dir if key in TORCHVISION_DATASETS else None

    @Slot(str)
    def load(self, key: str) -> None:
        """Load a dataset (a registered name or a file path) in the worker, unless it is the one shown."""
        if self.info is not None and self.info.key == key:
            return
        where = f" from {self.controls.data_dir}" if key in TORCHVISION_DATASETS else ""
        self.status(f"Loading {Path(key).name if is_dataset_file(key) else key}{where}…", "busy")
        self.controller.load_dataset(key, self.data_dir_for(key))

    @Slot()
    def open_file_dialog(self) -> None:
        path = dialogs.open_file(self.parent_widget, "Open dataset", FILE_FILTER, self._last_folder)
        if path:
            self.open_file(path)

    def open_file(self, path) -> None:
        """Add a dataset file to the Data box and load it (File > Open dataset…)."""
        path = str(Path(path).expanduser().resolve())
        self._last_folder = str(Path(path).parent)
        self.controls.add_dataset_file(path)  # selecting it asks for the load (dataset_changed)

    # --- worker results -----------------------------------------------------------------------------------
    @Slot(object)
    def on_ready(self, info: DatasetInfo) -> None:
        self.info = info
        self.spectrum.set_dataset(info.sample_images, info.sample_labels, info.image_shape, info.class_names)
        self.controls.set_n_inputs(info.n_inputs)
        self.controls.set_dataset_size(info.n_train)
        self.sparsity.set_n_inputs(info.n_inputs)
        self.label.setText(self.describe(info))
        self.label.setToolTip(info.source)
        if self.controls.dataset() == info.key and not self.controller.busy:  # (a run says what it does)
            self.status(f"Loaded {info.description} ({info.n_inputs:,} inputs, {info.n_classes} classes).", "ok")
        self.changed.emit(info)

    @Slot(str, str)
    def on_failed(self, message: str, key: str) -> None:
        if is_dataset_file(key):
            self.controls.remove_dataset_file(key)
        back = self.info.key if self.info is not None else EMBEDDED_NAME
        if self.controls.dataset() != back:
            self.controls.select_dataset(back)
        dialogs.warning(self.parent_widget, "Cannot load the dataset", message)

    @Slot(str)
    def on_data_dir_changed(self, folder: str) -> None:
        if self.info is not None:
            self.label.setText(self.describe(self.info))
        found = [n for n in self.controls.available if n in TORCHVISION_DATASETS]
        self.status(f"Data folder {folder}: " + (f"found {', '.join(found)}." if found else
                                                  "no MNIST-family dataset found there."),
                    "ok" if found else "warn")

    # --- text -----------------------------------------------------------------------------------------------
    def describe(self, info: DatasetInfo) -> str:
        """The status bar's dataset text: what it is and where it came from."""
        shape = f"{info.n_classes} classes"
        if info.key == EMBEDDED_NAME:
            full = [n for n in self.controls.available if n in TORCHVISION_DATASETS]
            extra = ("embedded subset; no full dataset found" if not full else
                     f"embedded subset; also found: {', '.join(full)}")
            return f"{info.description} ({extra}) · {shape}"
        if info.key in EMBEDDED_DATASETS:
            return f"{info.description} (embedded) · {shape}"
        if info.key in TORCHVISION_DATASETS:
            return f"{info.description} (from {self.controls.data_dir}) · {shape}"
        return f"{info.description} · {shape} (file {Path(info.key).name})"
