"""How runs are presented: starting them from the controls, following a live run (progress bar, training
history, the live ring of the accuracy view, the explorer's live state), recording finished runs in the
session, showing a clicked result, the untrained preview while idle, and background sweeps.

It drives widgets it is given; the main window only creates it and connects signals to it.
"""
from __future__ import annotations

import math
import time
from types import SimpleNamespace
from typing import TYPE_CHECKING, Callable, Optional

from PySide6.QtCore import QObject, QTimer, Slot

from engine.config.run_config import RunConfig, removed_synapses_pct
from engine.data import TORCHVISION_DATASETS
from engine.experiments.recommended import plasticity_note

from . import dialogs
from .eta import EtaEstimator, format_duration, time_left
from .job_progress import session_times
from .labels import describe_config, uses_k
from .memory import release_free_memory
from .series import network_removed_pct
from .state import DisplayState

if TYPE_CHECKING:  # the collaborators' types, for the annotations only: no import at run time, so no cycle
    from PySide6.QtWidgets import QWidget

    from .controller import Controller
    from .controls import ControlPanel
    from .datasets import DatasetPresenter
    from .eta import ProgressLane
    from .explorer import ExplorerModel
    from .session import Session
    from .views import HistoryView, SparsityView

PREVIEW_DELAY_MS = 120
#: How often the progress bar, training-history and accuracy-vs-sparsity views follow a live run (s).
SUMMARY_INTERVAL_S = 0.4
#: Delay between the end of a run and handing freed memory back to the OS (after the final redraw).
RELEASE_DELAY_MS = 300


class RunPresenter(QObject):
    def __init__(self, parent_widget: QWidget, controls: ControlPanel, controller: Controller, session: Session,
                 explorer: ExplorerModel, datasets: DatasetPresenter, progress: ProgressLane, history: HistoryView,
                 sparsity: SparsityView, status: Callable[[str, str], None], status_text: Callable[[], str]) -> None:
        super().__init__(parent_widget)
        self.parent_widget = parent_widget
        self.controls = controls
        self.controller = controller
        self.session = session
        self.explorer = explorer
        self.datasets = datasets
        self.progress = progress
        self.history = history
        self.sparsity = sparsity
        self.status = status
        self.status_text = status_text
        self.closing = False
        self._summary_drawn = 0.0  #: when the history and sparsity views last followed a snapshot
        self._summary_epochs = -1  #: finished epochs in that snapshot
        self._summary_paused = False  #: whether that snapshot was of a paused run
        self._eta: Optional[EtaEstimator] = None  #: the live run's time left (rfexplorer.eta)
        self._preview_timer = QTimer(self)
        self._preview_timer.setSingleShot(True)
        self._preview_timer.setInterval(PREVIEW_DELAY_MS)
        self._preview_timer.timeout.connect(self.show_preview)

    # --- helpers ------------------------------------------------------------------------------------------
    def _n_inputs(self) -> Optional[int]:
        return self.datasets.info.n_inputs if self.datasets.info is not None else None

    def describe(self, cfg) -> str:
        return describe_config(cfg, self._n_inputs())

    def _dataset_extras(self, n_chains: int, n_inputs: int) -> dict:
        """Class names and image shape of the loaded dataset, if they fit a state of this shape."""
        info = self.datasets.info
        if info is None or info.n_inputs != n_inputs:
            return {}
        # a multilayer network's first layer has hidden chains: DisplayState keeps the names for its outputs
        return {"class_names": info.class_names, "image_shape": info.image_shape}

    def current_config(self) -> Optional[RunConfig]:
        try:
            return self.controls.config()
        except ValueError as exc:
            self.status(f"Invalid settings: {exc}", "error")
            return None

    def _data_dir(self, dataset: str) -> Optional[str]:
        return self.controls.data_dir if dataset in TORCHVISION_DATASETS else None

    # --- starting -----------------------------------------------------------------------------------------
    @Slot()
    def start_from_controls(self) -> bool:
        """Start a run with the controls' settings (cancelling any run in progress). False if invalid."""
        cfg = self.current_config()
        if cfg is None:
            return False
        self._preview_timer.stop()
        self.controller.start_run(cfg, self._data_dir(cfg.dataset))
        info = self.datasets.info
        note = plasticity_note(cfg, info.n_train) if info is not None and info.key == cfg.dataset else ""
        if note:  # a rewiring model whose topology will not change: say so
            self.status(f"{self.status_text()} ({note[0].upper()}{note[1:]}.)", "warn")
        if self.controller.sweep_busy:
            self.status(self.status_text() + " (a sweep is running too: both share the CPU, so both run slower)",
                        "warn")
        return True

    # --- a live run ---------------------------------------------------------------------------------------
    @Slot(object)
    def on_started(self, cfg: RunConfig) -> None:
        self.explorer.set_follow_live(True)
        self.history.reset(cfg.epochs)
        self._eta = None
        self.progress.begin()  # the bar's run lane (rfexplorer.eta.ProgressBoard)
        self.progress.setValue(0)
        self.progress.setFormat(f"{self.describe(cfg)}: starting…")

    @Slot(object, object)
    def on_snapshot(self, snap, cfg) -> None:
        # the progress bar and the two small plots follow at a few Hz (and at every epoch end): each repaint
        # costs the training thread time (measured: ~15 % each at 11 Hz), and they barely move between frames
        now = time.monotonic()
        epoch_done = len(snap.history) != self._summary_epochs
        paused_changed = getattr(snap, "paused", False) != self._summary_paused  # no snapshot follows a pause
        n_chains, n_inputs = snap.weight.shape
        if snap.final or epoch_done or paused_changed or now - self._summary_drawn >= SUMMARY_INTERVAL_S:
            self._summary_drawn, self._summary_epochs = now, len(snap.history)
            self._summary_paused = getattr(snap, "paused", False)
            self.history.add_snapshot(snap)
            acc = snap.test_accuracy if snap.test_accuracy is not None else snap.train_accuracy
            if not snap.final:
                self.sparsity.set_live(self._live_removed_pct(snap, cfg), acc,
                                       "live" if snap.test_accuracy is not None else "live (train)")
            self._update_progress(snap)
        if self.explorer.follow_live:
            state = DisplayState.from_snapshot(snap, cfg, label=f"— live: {self.describe(cfg)}", live=True,
                                               **self._dataset_extras(n_chains, n_inputs))
            self.explorer.show_live(state)

    def _live_removed_pct(self, snap, cfg: RunConfig) -> float:
        """% of synapses removed by the live run's network, counted as its finished point will be: over every
        layer of a multilayer network (series.network_removed_pct), K/N of a single layer."""
        n_chains, n_inputs = snap.weight.shape
        if not cfg.hidden:
            k = min(cfg.resonators_per_chain, n_inputs) if uses_k(cfg.model) else n_inputs
            return removed_synapses_pct(k, n_inputs)
        layers = getattr(snap, "layers", None) or ()
        info = self.datasets.info
        n_classes = (len(layers[-1]["resonator_freqs_ghz"]) if layers else info.n_classes if info is not None
                     else n_chains)
        row = SimpleNamespace(model=cfg.model, n_inputs=n_inputs, hidden=tuple(cfg.hidden), n_classes=n_classes,
                              layer_ks=tuple(cfg.layer_ks), resonators_per_chain=cfg.resonators_per_chain,
                              removed_synapses_pct=None)
        return network_removed_pct(row)

    def _update_progress(self, snap) -> None:
        self.progress.setValue(int(1000 * snap.progress))
        parts = [f"Epoch {snap.epoch}/{snap.epochs}", f"step {snap.step:,}/{snap.total_steps:,}"]
        if getattr(snap, "paused", False):  # the engine waits (Pause, or the end of a Step epoch)
            parts[0] = f"Paused at epoch {snap.epoch}/{snap.epochs}"
        if math.isfinite(snap.loss):
            parts.append(f"loss {snap.loss:.3f}")
        if math.isfinite(snap.train_accuracy):
            parts.append(f"train acc. {100 * snap.train_accuracy:.1f} %")
        if snap.test_accuracy is not None:
            parts.append(f"test acc. {100 * snap.test_accuracy:.1f} %")
        if snap.final:
            parts.append(f"done in {format_duration(snap.elapsed_s)}")
        else:  # the engine's own ETA is linear from the start, warm-up included: far off at first
            if self._eta is None or self._eta.total != snap.total_steps:
                self._eta = EtaEstimator(max(1, snap.total_steps))
                self._eta.start(0.0)
            self._eta.update(snap.step, snap.elapsed_s)
            left = time_left(self._eta.remaining())
            parts.append(f"{format_duration(snap.elapsed_s)} elapsed" + (f", {left}" if left else ""))
        self.progress.setFormat("  ·  ".join(parts))

    @Slot(object)
    def on_finished(self, result) -> None:
        """Record a finished run: its row, the final display state and the finished model (for export)."""
        self.sparsity.set_live(None, None)
        snap = self.controller.latest_snapshot
        state = None
        if snap is not None and snap.final:
            n_chains, n_inputs = snap.weight.shape
            state = DisplayState.from_snapshot(snap, result.config, **self._dataset_extras(n_chains, n_inputs))
        point = self.session.add(result.row(), "run", state=state, network=result.model,
                                 exact_accuracy=float(result.test_accuracy))
        if state is not None:
            state.label = f"— run #{point.id}: {self.describe(result.config)}"
            if self.explorer.follow_live:
                self.explorer.show(state)
        self.progress.setValue(1000)
        self.progress.end()
        self._release_memory_soon()

    def _release_memory_soon(self) -> None:
        """Once the views have drawn the end of a run, hand what it freed back to the OS (rfexplorer.memory)."""
        QTimer.singleShot(RELEASE_DELAY_MS, self, release_free_memory)

    @Slot(object, str)
    def on_cancelled(self, result, reason: str) -> None:
        if not self.controller.busy:
            self.sparsity.set_live(None, None)
            self.progress.setFormat(f"Cancelled ({reason}) — {self.describe(result.config)} after "
                                    f"{result.epochs_completed} epoch(s)")
            self.progress.end()
            self._release_memory_soon()

    @Slot(str)
    def on_failed(self, message: str) -> None:
        self.sparsity.set_live(None, None)
        self.progress.setValue(0)
        self.progress.setFormat("Failed — see the status line")
        self.progress.end()
        dialogs.warning(self.parent_widget, "Training failed", message)

    @Slot(str)
    def on_engine_lost(self, message: str) -> None:
        """The engine process died (a new one has started): the live run, if any, is gone; say so once."""
        if not self.controller.busy:
            self.sparsity.set_live(None, None)
            self.progress.setValue(0)
            self.progress.setFormat("The engine process stopped — see the status line")
            self.progress.end()
            self.schedule_preview()  # the views leave the lost run for the new process's untrained network
        dialogs.critical(self.parent_widget, "Engine process stopped", message)

    @Slot(bool)
    def on_busy_changed(self, busy: bool) -> None:
        self.controls.set_busy(busy)

    @Slot(bool)
    def on_follow_toggled(self, on: bool) -> None:
        """View > Follow the live run: back to the run in progress (its latest snapshot at once)."""
        self.explorer.set_follow_live(on)
        if on and self.controller.latest_snapshot is not None and self.controller.busy:
            self.on_snapshot(self.controller.latest_snapshot, self.controller.current_config)

    # --- session results ----------------------------------------------------------------------------------
    @Slot(int)
    def show_point(self, point_id: int) -> None:
        """Show a session point's topology in the spectrum and assignment views (clicked in view 3)."""
        p = self.session.get(point_id)
        if p is None:
            return
        self.sparsity.show_details(point_id)
        if p.state is None:
            self.status(f"Run #{p.id} ({p.describe()}) came from a sweep: its topology was not kept. "
                        f"Train that setting to see it.", "warn")
            return
        if p.state.label == "":
            p.state.label = f"— run #{p.id}"
        self.explorer.pin(p.state, p)
        extra = " View ▸ Follow the live run returns to the training." if self.controller.busy else ""
        self.status(f"Showing run #{p.id}: {p.describe()}.{extra}", "info")

    def export_target(self):
        """The session point whose topology File > Export writes: the one on display, else the last run."""
        pinned = self.explorer.pinned
        if pinned is not None and getattr(pinned, "exportable", False):
            return pinned
        return next((p for p in reversed(self.session.points) if p.exportable), None)

    # --- preview (idle): the untrained network for the current settings -----------------------------------
    @Slot()
    def schedule_preview(self, *_args) -> None:
        if not self.controller.busy and not self.controller.sweep_busy and not self.closing:
            self._preview_timer.start()

    @Slot()
    def show_preview(self) -> None:
        """Ask the worker for the initial (untrained) network of the controls' settings (shown when it comes,
        if nothing trains by then)."""
        if self.controller.busy or self.controller.sweep_busy or self.closing:
            return
        cfg = self.current_config()
        if cfg is None:
            return
        self.controller.preview(cfg, self._data_dir(cfg.dataset))

    @Slot(object)
    def on_preview(self, state: DisplayState) -> None:
        if self.controller.busy or self.closing:
            return
        self.explorer.show_preview(state)

    def stop(self) -> None:
        self.closing = True
        self._preview_timer.stop()

    # --- sweeps -------------------------------------------------------------------------------------------
    @Slot()
    def sweep_button_clicked(self) -> None:
        if self.controller.sweep_busy:
            self.controller.stop_sweep()
            return
        from .sweep_dialog import SweepDialog

        cfg = self.current_config()
        if cfg is None:
            return
        n = self._n_inputs()
        if n is None:
            self.status("The dataset is still loading; try again in a moment.", "warn")
            return
        dlg = SweepDialog(cfg, n, self.parent_widget, times=session_times(self.session))
        if dlg.exec() != SweepDialog.Accepted:
            return
        self.start_sweep(dlg.spec(), dlg.backend())

    def start_sweep(self, spec, backend: str = "local") -> bool:
        """Run a sweep in the engine process, on ``backend`` ('local' or 'ray', as the CLI's --backend)."""
        return self.controller.start_sweep(spec, spec.base.dataset, self._data_dir(spec.base.dataset), backend)

    @Slot(dict)
    def on_sweep_row(self, row: dict) -> None:
        acc = row.get("test_accuracy")
        if row.get("error") or not isinstance(acc, (int, float)):
            self.status(f"Sweep run {row.get('model')} K={row.get('resonators_per_chain')} seed "
                        f"{row.get('seed')} failed: {row.get('error') or 'no accuracy'}", "warn")
            return
        self.session.add(row, "sweep")

    @Slot(str)
    def on_sweep_failed(self, message: str) -> None:
        dialogs.warning(self.parent_widget, "Sweep failed", message)
