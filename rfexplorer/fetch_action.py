"""File > Dataset > Get full MNIST… (and Fashion-MNIST, KMNIST): fetch a missing dataset into the data folder.

The actions are shown only for the datasets missing from the Data box's folder. The fetch
(:func:`engine.data.fetch.fetch_dataset`) runs in a background thread, never in the GUI thread; a progress dialog
follows it and its Cancel button sets the flag the fetch checks between chunks (the file in progress is
discarded, the files already verified are kept, and a later fetch resumes from them); the window's progress bar
follows it too (file n/N, elapsed time, time left: rfexplorer.eta). When the dataset is
complete the Data box lists it as available and selects it (unless a run is in progress); a failure shows
the engine's one-sentence reason. Mirrors: $RFEXPLORER_MIRRORS, else the ones torchvision lists.
"""
from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Callable, Optional

from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QProgressDialog

from engine.data.fetch import FETCHABLE, FetchCancelled, FetchError, FetchProgress, fetch_dataset
from engine.core.progress import CancelToken

from . import dialogs
from .controls import DATASET_LABELS
from .eta import BAR_STEPS, EtaEstimator, format_duration, time_left

if TYPE_CHECKING:  # the collaborators' types, for the annotations only: no import at run time, so no cycle
    from PySide6.QtWidgets import QWidget

    from .controller import Controller
    from .controls import ControlPanel
    from .eta import ProgressLane

#: Seconds between progress updates sent to the GUI thread.
PROGRESS_INTERVAL_S = 0.1
STEPS = 1000


class FetchActions(QObject):
    """The "Get full …" actions of the Dataset menu and the fetch they start."""

    #: a fetch ended: (dataset name, "ok" | "cancelled" | "failed"); emitted in the GUI thread
    finished = Signal(str, str)
    _progress = Signal(object)  # FetchProgress, from the fetch thread
    _ended = Signal(str, str, str)  # name, outcome, message, from the fetch thread

    def __init__(self, parent_widget: QWidget, controls: ControlPanel, controller: Controller,
                 status: Callable[[str, str], None], lane: Optional[ProgressLane] = None) -> None:
        """``lane``: the window's progress-bar lane for fetches (rfexplorer.eta.ProgressLane), if any."""
        super().__init__(parent_widget)
        self.lane = lane
        self.eta: Optional[EtaEstimator] = None  #: the fetch's time left, over the fraction fetched
        self._label = ""
        self.parent_widget = parent_widget
        self.controls = controls
        self.controller = controller
        self.status = status
        self.actions: dict[str, QAction] = {}
        self.dialog: Optional[QProgressDialog] = None
        self._thread: Optional[threading.Thread] = None
        self._cancel: Optional[CancelToken] = None
        self._last_sent = 0.0
        self._progress.connect(self._on_progress)
        self._ended.connect(self._on_ended)

    # --- the menu -------------------------------------------------------------------------------------------
    def add_to_menu(self, menu) -> None:
        menu.addSeparator()
        for name in FETCHABLE:
            act = menu.addAction(f"Get full {DATASET_LABELS.get(name, name)}…")
            act.setData(name)
            act.setToolTip(f"Download {DATASET_LABELS.get(name, name)} into the data folder")
            act.triggered.connect(self._on_triggered)
            self.actions[name] = act
        menu.aboutToShow.connect(self.sync)
        self.sync()

    @property
    def busy(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @Slot()
    def sync(self) -> None:
        """Show the actions of the datasets missing from the data folder; none can start while one runs."""
        for name, act in self.actions.items():
            act.setVisible(name not in self.controls.available)
            act.setEnabled(not self.busy)

    @Slot()
    def _on_triggered(self) -> None:
        act = self.sender()
        if isinstance(act, QAction):
            self.fetch(str(act.data()))

    # --- fetching -------------------------------------------------------------------------------------------
    def fetch(self, name: str) -> bool:
        """Start fetching ``name`` into the Data box's folder; False if a fetch is already running."""
        if self.busy:
            return False
        label, folder = DATASET_LABELS.get(name, name), self.controls.data_dir
        self._cancel = CancelToken()
        self.dialog = QProgressDialog(f"Getting {label} into {folder}…", "Cancel", 0, STEPS, self.parent_widget)
        self.dialog.setWindowTitle(f"Get full {label}")
        self.dialog.setWindowModality(Qt.NonModal)
        self.dialog.setMinimumDuration(0)
        self.dialog.setAutoClose(False)
        self.dialog.setAutoReset(False)
        self.dialog.setValue(0)
        self.dialog.canceled.connect(self.cancel)
        self.dialog.show()
        self.status(f"Getting {label} into {folder}…", "busy")
        self._label = label
        self.eta = EtaEstimator(1.0, min_fraction=0.02, min_span_s=1.0, smoothing=0.3)
        self.eta.start(time.monotonic())
        if self.lane is not None:
            self.lane.begin()
            self.lane.set(value=0, text=f"Getting {label}: starting…", brief=f"getting {label}")
        self._thread = threading.Thread(target=self._run, args=(name, folder, self._cancel), name=f"fetch-{name}",
                                        daemon=True)
        self._thread.start()
        self.sync()
        return True

    def _run(self, name: str, folder: str, cancel: CancelToken) -> None:
        """The fetch thread: only signals leave it (queued to the GUI thread)."""
        def progress(p: FetchProgress) -> None:
            now = time.monotonic()
            if p.stage != "download" or now - self._last_sent >= PROGRESS_INTERVAL_S:
                self._last_sent = now
                self._progress.emit(p)

        try:
            fetch_dataset(name, folder, progress=progress, cancel=cancel)
            outcome, message = "ok", ""
        except FetchCancelled:
            outcome, message = "cancelled", ""
        except FetchError as exc:
            outcome, message = "failed", str(exc)
        except Exception as exc:  # noqa: BLE001 - a fetch thread must never die silently: reported as failed
            outcome, message = "failed", f"{type(exc).__name__}: {exc}"
        try:
            self._ended.emit(name, outcome, message)
        except RuntimeError:  # the window is gone
            pass

    @Slot()
    def cancel(self) -> None:
        if self._cancel is not None and self.busy:
            self._cancel.set()
            self.status("Cancelling the download…", "busy")

    def shutdown(self, timeout_s: float = 10.0) -> None:
        """Cancel a running fetch and wait for its thread (the window is closing)."""
        if self.busy:
            self._cancel.set()
            self._thread.join(timeout_s)

    # --- in the GUI thread ----------------------------------------------------------------------------------
    @Slot(object)
    def _on_progress(self, p: FetchProgress) -> None:
        if self.dialog is None:
            return
        self.dialog.setValue(int(round(STEPS * p.fraction)))
        what = f"{p.file} ({p.index + 1} of {p.n_files})"
        if p.stage == "download" and p.total:
            what += f": {p.done / 1e6:.1f} of {p.total / 1e6:.1f} MB"
        elif p.stage in ("verify", "done"):
            what += ": verifying" if p.stage == "verify" else ": verified"
        elif p.stage == "failed":
            what += f": {p.url} {p.note}"
        self._show_progress(p, what)

    def _show_progress(self, p: FetchProgress, what: str) -> None:
        """The fetch in the progress bar: file n/N and its bytes, elapsed time, time left."""
        if self.eta is None:
            self.dialog.setLabelText(what)
            return
        now = time.monotonic()
        self.eta.update(min(1.0, max(0.0, p.fraction)), now)
        left = time_left(self.eta.remaining(now))
        text = f"Getting {self._label}: {what} · {format_duration(self.eta.elapsed(now))} elapsed"
        if left:
            text += f" · {left}"
        self.dialog.setLabelText(what + (f"\n{left}" if left else ""))
        if self.lane is not None:
            self.lane.set(value=int(BAR_STEPS * p.fraction), text=text,
                          brief=f"getting {self._label} {100 * p.fraction:.0f} %" + (f", {left}" if left else ""))

    @Slot(str, str, str)
    def _on_ended(self, name: str, outcome: str, message: str) -> None:
        if self._thread is not None:
            self._thread.join(1.0)  # it has sent its last signal
        if self.dialog is not None:
            self.dialog.canceled.disconnect(self.cancel)
            self.dialog.close()
            self.dialog.deleteLater()
            self.dialog = None
        label = DATASET_LABELS.get(name, name)
        took = format_duration(self.eta.elapsed(time.monotonic())) if self.eta is not None else "?"
        self.eta = None
        if self.lane is not None:
            done = {"ok": f"Got {label} in {took}", "cancelled": f"Download of {label} cancelled after {took}"}
            self.lane.set(value=BAR_STEPS if outcome == "ok" else None,
                          text=done.get(outcome, f"Could not get {label} — see the status line"))
            self.lane.end()
        self.controls.refresh_datasets()
        if outcome == "ok":
            ready = name in self.controls.available
            self.status(f"Got {label} in {self.controls.data_dir}." if ready else
                        f"{label} was fetched but the Data box does not find it in {self.controls.data_dir}.",
                        "ok" if ready else "warn")
            if ready and not self.controller.busy:
                self.controls.select_dataset(name)  # (its loading reports in the status line)
        elif outcome == "cancelled":
            self.status(f"Download of {label} cancelled; files already verified are kept for the next try.", "warn")
        else:
            self.status(f"Could not get {label}.", "error")
            dialogs.warning(self.parent_widget, f"Cannot get {label}", message)
        self.sync()
        self.finished.emit(name, outcome)
