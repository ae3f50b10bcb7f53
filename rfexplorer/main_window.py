"""The main window: controls on the left, the four live views on the right, menus, progress and status.

Layout (about 1400 x 900):

    +------------+---------------------------------------------------------+
    | Controls   | Frequency spectrum: input comb / selected chain's        |
    |  data      | response / every chain's resonators (shared GHz axis)    |
    |  model, K  +------------------------------+--------------------------+
    |  training  | Synapse-to-neuron assignment  | Accuracy vs sparsity     |
    |  device    | (heatmap or 28x28 pixel maps) | (session results, live)  |
    |  buttons   |                               |                          |
    | History    +------------------------------+--------------------------+
    | (loss/acc) | progress: epoch · step · loss · accuracy · time left    |
    +------------+---------------------------------------------------------+
    | status line                                  session results · dataset |

The dock and the splitters can be rearranged; every plot is a pyqtgraph item updated in place.
"""
from __future__ import annotations

import html
import math
import os
import sys
import time
from pathlib import Path
from typing import Optional

import numpy as np
from PySide6.QtCore import QSettings, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QAction, QIcon, QKeySequence
from PySide6.QtWidgets import (QDockWidget, QFileDialog, QLabel, QMainWindow, QMessageBox, QProgressBar,
                               QSizePolicy, QSplitter, QVBoxLayout, QWidget)

from engine.config import RunConfig, removed_synapses_pct
from engine.data import EMBEDDED_NAME

from . import __version__ as APP_VERSION
from . import engine_extras, theme
from .controller import Controller, describe_config
from .controls import ControlPanel
from .gcguard import GuiThreadGC
from .session import Session, write_rows_csv
from .state import DisplayState
from .views import AssignmentView, HistoryView, SparsityView, SpectrumView
from .worker import DatasetInfo

RESOURCES = Path(__file__).resolve().parent / "resources"
ICON_PATH = RESOURCES / "rfexplorer.png"
PREVIEW_DELAY_MS = 120
#: How often the progress bar, training-history and accuracy-vs-sparsity views follow a live run (s).
SUMMARY_INTERVAL_S = 0.4
DOCK_WIDTH = 330

ABOUT_HTML = """
<h3>rfexplorer {app}</h3>
<p>A visual explorer and headless PyTorch engine for radio-frequency spintronic neural networks.</p>
<p><b>Physics model.</b> Input neurons are spin-torque nano-oscillators, each emitting at its own frequency
with a power proportional to its pixel. Synapses are magnetic-tunnel-junction resonators wired in series
chains, one chain per class; through the spin-diode effect each rectifies the power near its resonance, with
a Lorentzian lineshape cos&phi;&middot;2x/(1+x&sup2;) + sin&phi;/(1+x&sup2;),
x = (f &minus; f<sub>r</sub>)/(&alpha; f<sub>r</sub>) (antisymmetric and symmetric parts, lineshape phase &phi;,
damping &alpha;).
A chain's voltage is the class score. Training tunes the resonance frequencies (the weights), and large
shifts make resonators jump to other inputs (the topology, by structural plasticity).</p>
<p><b>Reference.</b> Rageau, Grollier, Sanz-Hernandez, Mizrahi: <i>RF spintronic perceptron with trained
topology</i>.<br>
See also: Leroux et al., <i>Phys. Rev. Applied</i> <b>15</b>, 034067 (2021);
Ross et al., <i>Nat. Nanotechnol.</i> <b>18</b>, 1273 (2023).</p>
<p><b>Versions.</b> {versions}</p>
"""


def software_versions() -> dict[str, str]:
    import PySide6
    import pyqtgraph

    from engine.results import software_versions as engine_versions

    v = {"rfexplorer app": APP_VERSION}
    v.update({("engine" if k == "rfexplorer" else k): val for k, val in engine_versions().items()})
    v.update({"PySide6": PySide6.__version__, "Qt": PySide6.QtCore.qVersion(), "pyqtgraph": pyqtgraph.__version__})
    return v


def save_pixmap_png(pixmap, path: str | os.PathLike) -> Path:
    """Encode a QPixmap as PNG and write it atomically (engine.export.atomic_write_bytes)."""
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice

    from engine.export import atomic_write_bytes

    data = QByteArray()
    buf = QBuffer(data)
    buf.open(QIODevice.OpenModeFlag.WriteOnly)
    if not pixmap.save(buf, "PNG"):
        raise OSError(f"could not encode a PNG for {path}")
    buf.close()
    return atomic_write_bytes(path, bytes(data.data()))


def save_widget_png(widget: QWidget, path: str | os.PathLike) -> Path:
    """Grab a widget (works offscreen) and write it as PNG atomically."""
    return save_pixmap_png(widget.grab(), path)


class MainWindow(QMainWindow):
    #: emitted after the views showed a new state (live or pinned); handy for tests and scripting
    views_updated = Signal()
    _summary_drawn = 0.0  #: when the history and sparsity views last followed a snapshot (time.monotonic)
    _summary_epochs = -1  #: finished epochs in that snapshot

    def __init__(self, settings: Optional[QSettings] = None, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.settings = settings if settings is not None else QSettings("rfexplorer", "rfexplorer")
        self.setWindowTitle("rfexplorer — RF spintronic neural networks")
        if ICON_PATH.is_file():
            self.setWindowIcon(QIcon(str(ICON_PATH)))
        self.resize(1400, 900)
        self.follow_live = True
        self.pinned_point = None
        self.current_state: Optional[DisplayState] = None  #: what views 1 and 2 show now
        self.imported = None  #: (Topology, DisplayState, file name) of the last import
        self.last_import_accuracy: Optional[float] = None
        self.dataset_info: Optional[DatasetInfo] = None
        self._closing = False

        self.gc_guard = GuiThreadGC(self)
        self.gc_guard.start()
        self.controller = Controller(self)
        self.session = Session(self)

        # --- controls and the small history plot (left dock) --------------------------------------------------
        self.controls = ControlPanel(self.settings)
        self.history = HistoryView()
        self.history.setMinimumHeight(150)
        self.history.setSizePolicy(QSizePolicy.Preferred, QSizePolicy.Ignored)  # takes what the controls leave
        self.controls.setSizePolicy(QSizePolicy.Preferred, QSizePolicy.Minimum)
        left = QWidget()
        left_lay = QVBoxLayout(left)
        left_lay.setContentsMargins(0, 0, 0, 6)
        left_lay.setSpacing(6)
        left_lay.addWidget(self.controls)
        hist_wrap = QWidget()
        hl = QVBoxLayout(hist_wrap)
        hl.setContentsMargins(8, 0, 8, 0)
        hl.addWidget(self.history)
        left_lay.addWidget(hist_wrap, 1)
        left.setMinimumWidth(DOCK_WIDTH)
        self.controls_dock = QDockWidget("Controls", self)
        self.controls_dock.setObjectName("ControlsDock")
        self.controls_dock.setWidget(left)
        self.controls_dock.setFeatures(QDockWidget.DockWidgetMovable | QDockWidget.DockWidgetFloatable)
        self.addDockWidget(Qt.LeftDockWidgetArea, self.controls_dock)
        self.resizeDocks([self.controls_dock], [DOCK_WIDTH], Qt.Horizontal)

        # --- views --------------------------------------------------------------------------------------------
        self.spectrum = SpectrumView()
        self.assignment = AssignmentView()
        self.sparsity = SparsityView()
        bottom = QSplitter(Qt.Horizontal)
        bottom.addWidget(self.assignment)
        bottom.addWidget(self.sparsity)
        bottom.setSizes([560, 520])
        main = QSplitter(Qt.Vertical)
        main.addWidget(self.spectrum)
        main.addWidget(bottom)
        main.setSizes([455, 355])
        for s in (bottom, main):
            s.setChildrenCollapsible(False)
            s.setHandleWidth(6)
        self.splitters = (main, bottom)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        self.progress.setFormat("Idle — release a sparsity slider or press Train to start a run")
        central = QWidget()
        lay = QVBoxLayout(central)
        lay.setContentsMargins(6, 6, 6, 4)
        lay.setSpacing(6)
        lay.addWidget(main, 1)
        lay.addWidget(self.progress)
        self.setCentralWidget(central)

        # --- status bar ---------------------------------------------------------------------------------------
        self.status_line = QLabel("Ready.")
        self.status_line.setObjectName("StatusLine")
        self.statusBar().addWidget(self.status_line, 1)
        self.results_label = QLabel("No results yet")
        self.results_label.setObjectName("Dim")
        self.dataset_label = QLabel("")
        self.statusBar().addPermanentWidget(self.results_label)
        self.statusBar().addPermanentWidget(self.dataset_label)

        self._build_menus()
        self._connect()

        self._preview_timer = QTimer(self)
        self._preview_timer.setSingleShot(True)
        self._preview_timer.setInterval(PREVIEW_DELAY_MS)
        self._preview_timer.timeout.connect(self.show_preview)

        self._load_display_dataset()
        self.spectrum.set_selected_chain(0)
        self.assignment.set_selected_chain(0)
        self.show_preview()

    # --- construction helpers -----------------------------------------------------------------------------
    def _build_menus(self) -> None:
        mb = self.menuBar()
        file_menu = mb.addMenu("&File")
        self.act_export = QAction("&Export topology…", self, shortcut=QKeySequence("Ctrl+E"))
        self.act_import = QAction("&Import topology…", self, shortcut=QKeySequence("Ctrl+O"))
        self.act_export_sweep = QAction("Export sweep &results (CSV)…", self)
        self.act_import_sweep = QAction("Import s&weep results…", self)
        self.act_export.triggered.connect(self.export_topology_dialog)
        self.act_import.triggered.connect(self.import_topology_dialog)
        self.act_export_sweep.triggered.connect(self.export_results_dialog)
        self.act_import_sweep.triggered.connect(self.import_results_dialog)
        for act in (self.act_export, self.act_import, self.act_export_sweep, self.act_import_sweep):
            file_menu.addAction(act)
        png = file_menu.addMenu("Save view as &PNG")
        self.png_targets = {"Main window": self, "Frequency spectrum": self.spectrum,
                            "Synapse assignment": self.assignment, "Accuracy vs sparsity": self.sparsity,
                            "Training history": self.history}
        for name in self.png_targets:
            act = png.addAction(name + "…")
            act.setData(name)
            act.triggered.connect(self._on_save_png_action)
        file_menu.addSeparator()
        quit_act = file_menu.addAction("&Quit")
        quit_act.setShortcut(QKeySequence.Quit)
        quit_act.triggered.connect(self.close)
        if not engine_extras.has_export():
            for act in (self.act_export, self.act_import):
                act.setEnabled(False)
                act.setToolTip("engine.export is not available in this installation")

        run_menu = mb.addMenu("&Run")
        self.act_train = run_menu.addAction("&Train")
        self.act_train.setShortcut(QKeySequence("Ctrl+Return"))
        self.act_train.triggered.connect(self.start_run_from_controls)
        self.act_stop = run_menu.addAction("&Stop")
        self.act_stop.setShortcut(QKeySequence(Qt.Key_Escape))
        self.act_stop.triggered.connect(self.controller.stop)
        self.act_sweep = run_menu.addAction("Run s&weep…")
        self.act_sweep.triggered.connect(self.sweep_button_clicked)
        run_menu.addSeparator()
        self.act_clear = run_menu.addAction("&Clear session results")
        self.act_clear.triggered.connect(self.session.clear)

        view_menu = mb.addMenu("&View")
        self.act_follow = view_menu.addAction("&Follow the live run")
        self.act_follow.setCheckable(True)
        self.act_follow.setChecked(True)
        self.act_follow.toggled.connect(self.set_follow_live)
        self.act_maps = view_menu.addAction("Assignment as &pixel maps")
        self.act_maps.setCheckable(True)
        self.act_maps.toggled.connect(self._on_maps_toggled)
        self.assignment.mode_combo.currentIndexChanged.connect(self._sync_maps_action)
        view_menu.addAction(self.controls_dock.toggleViewAction())

        help_menu = mb.addMenu("&Help")
        about = help_menu.addAction("&About rfexplorer")
        about.triggered.connect(self.show_about)

    def _connect(self) -> None:
        c = self.controller
        c.run_started.connect(self._on_run_started)
        c.run_finished.connect(self._on_run_finished)
        c.run_cancelled.connect(self._on_run_cancelled)
        c.run_failed.connect(self._on_run_failed)
        c.snapshot_ready.connect(self._on_snapshot)
        c.busy_changed.connect(self._on_busy_changed)
        c.status.connect(self.set_status)
        c.dataset_ready.connect(self._on_dataset_ready)
        c.dataset_failed.connect(self._on_dataset_failed)
        c.evaluation_finished.connect(self._on_evaluated)
        c.evaluation_failed.connect(self._on_evaluation_failed)
        c.sweep_row.connect(self._on_sweep_row)
        c.sweep_busy_changed.connect(self.controls.set_sweep_busy)
        c.sweep_failed.connect(self._on_sweep_failed)
        self.controls.run_requested.connect(self.start_run_from_controls)
        self.controls.stop_requested.connect(c.stop)
        self.controls.sweep_requested.connect(self.sweep_button_clicked)
        self.controls.k_changed.connect(self._schedule_preview)
        self.controls.model_combo.currentIndexChanged.connect(self._schedule_preview)
        for w in (self.controls.alpha_spin, self.controls.phi_spin, self.controls.fmin_spin,
                  self.controls.fmax_spin, self.controls.seed_spin):
            w.valueChanged.connect(self._schedule_preview)
        self.controls.plan_combo.currentIndexChanged.connect(self._schedule_preview)
        self.controls.dataset_changed.connect(self._on_dataset_selected)
        self.controls.data_dir_changed.connect(self._on_data_dir_changed)
        self.spectrum.chain_selected.connect(self._select_chain)
        self.assignment.chain_selected.connect(self._select_chain)
        self.sparsity.point_clicked.connect(self.show_point)
        self.session.changed.connect(self._on_session_changed)

    # --- status -------------------------------------------------------------------------------------------
    @Slot(str, str)
    def set_status(self, message: str, level: str = "info") -> None:
        colour = {"busy": theme.ACCENT, "warn": theme.WARN, "error": theme.ERROR, "ok": theme.OK}.get(level, theme.FG)
        self.status_line.setStyleSheet(f"color: {colour};")
        self.status_line.setText(message)

    def status_text(self) -> str:
        return self.status_line.text()

    def _dataset_text(self, info: DatasetInfo) -> str:
        if info.name == EMBEDDED_NAME:
            full = [n for n in self.controls.available if n != EMBEDDED_NAME]
            extra = ("embedded subset; no full dataset found" if not full else
                     f"embedded subset; also found: {', '.join(full)}")
            return f"{info.description} ({extra})"
        return f"{info.description} (from {self.controls.data_dir})"

    # --- dataset ------------------------------------------------------------------------------------------
    def _load_display_dataset(self) -> None:
        from engine.data import load_embedded

        try:
            ds = load_embedded()
        except Exception as exc:  # noqa: BLE001 - a broken install must still open the window
            self.set_status(f"The embedded dataset cannot be read: {exc}", "error")
            return
        self._on_dataset_ready(DatasetInfo.from_dataset(ds))
        if self.controls.dataset() != EMBEDDED_NAME:
            self._on_dataset_selected(self.controls.dataset())

    @Slot(object)
    def _on_dataset_ready(self, info: DatasetInfo) -> None:
        self.dataset_info = info
        self.spectrum.set_dataset(info.sample_images, info.sample_labels, info.image_shape)
        self.controls.set_n_inputs(info.n_inputs)
        self.dataset_label.setText(self._dataset_text(info))

    @Slot(str)
    def _on_dataset_failed(self, message: str) -> None:
        self.controls.select_dataset(EMBEDDED_NAME)
        QMessageBox.warning(self, "Cannot load the dataset", message)

    @Slot(str)
    def _on_dataset_selected(self, name: str) -> None:
        if name == EMBEDDED_NAME:
            if self.dataset_info is None or self.dataset_info.name != EMBEDDED_NAME:
                self.controller.load_dataset(EMBEDDED_NAME)
            return
        self.set_status(f"Loading {name} from {self.controls.data_dir}…", "busy")
        self.controller.load_dataset(name, self.controls.data_dir)

    @Slot(str)
    def _on_data_dir_changed(self, folder: str) -> None:
        if self.dataset_info is not None:
            self.dataset_label.setText(self._dataset_text(self.dataset_info))
        found = [n for n in self.controls.available if n != EMBEDDED_NAME]
        self.set_status(f"Data folder {folder}: " + (f"found {', '.join(found)}." if found else
                                                      "no MNIST-family dataset found there."),
                        "ok" if found else "warn")

    # --- runs ---------------------------------------------------------------------------------------------
    def current_config(self) -> Optional[RunConfig]:
        try:
            return self.controls.config()
        except ValueError as exc:
            self.set_status(f"Invalid settings: {exc}", "error")
            return None

    @Slot()
    def start_run_from_controls(self) -> bool:
        """Start a run with the controls' settings (cancelling any run in progress). False if invalid."""
        cfg = self.current_config()
        if cfg is None:
            return False
        self._preview_timer.stop()
        data_dir = self.controls.data_dir if cfg.dataset != EMBEDDED_NAME else None
        self.controller.start_run(cfg, data_dir)
        if self.controller.sweep_busy:
            self.set_status(self.status_text() + " (a sweep is running too: both share the CPU and torch's "
                            "global random generator, so neither is bit-reproducible)", "warn")
        return True

    @Slot(object)
    def _on_run_started(self, cfg: RunConfig) -> None:
        self.set_follow_live(True)
        self.spectrum.reset_scale()
        self.assignment.reset_scale()
        self.history.reset(cfg.epochs)
        self.progress.setValue(0)
        self.progress.setFormat(f"{describe_config(cfg)}: starting…")

    @Slot(object, object)
    def _on_snapshot(self, snap, cfg) -> None:
        # the progress bar and the two small plots follow at a few Hz (and at every epoch end): each repaint
        # costs the training thread time (measured: ~15 % each at 11 Hz), and they barely move between frames
        now = time.monotonic()
        epoch_done = len(snap.history) != self._summary_epochs
        if snap.final or epoch_done or now - self._summary_drawn >= SUMMARY_INTERVAL_S:
            self._summary_drawn, self._summary_epochs = now, len(snap.history)
            self.history.add_snapshot(snap)
            acc = snap.test_accuracy if snap.test_accuracy is not None else snap.train_accuracy
            if not snap.final:
                self.sparsity.set_live(removed_synapses_pct(cfg.resonators_per_chain, snap.weight.shape[1]), acc,
                                       "live" if snap.test_accuracy is not None else "live (train)")
            self._update_progress(snap)
        if self.follow_live:
            state = DisplayState.from_snapshot(snap, cfg, label=f"— live: {describe_config(cfg)}", live=True)
            self._show_state(state)

    def _update_progress(self, snap) -> None:
        self.progress.setValue(int(1000 * snap.progress))
        parts = [f"Epoch {snap.epoch}/{snap.epochs}", f"step {snap.step:,}/{snap.total_steps:,}"]
        if math.isfinite(snap.loss):
            parts.append(f"loss {snap.loss:.3f}")
        if math.isfinite(snap.train_accuracy):
            parts.append(f"train acc. {100 * snap.train_accuracy:.1f} %")
        if snap.test_accuracy is not None:
            parts.append(f"test acc. {100 * snap.test_accuracy:.1f} %")
        if snap.final:
            parts.append(f"done in {snap.elapsed_s:.1f} s")
        elif math.isfinite(snap.eta_s):
            parts.append(f"{snap.eta_s:.0f} s left" if snap.eta_s < 120 else f"{snap.eta_s / 60:.1f} min left")
        self.progress.setFormat("  ·  ".join(parts))

    @Slot(object)
    def _on_run_finished(self, result) -> None:
        self.sparsity.set_live(None, None)
        snap = self.controller.latest_snapshot
        state = None
        if snap is not None:
            state = DisplayState.from_snapshot(snap, result.config)
        point = self.session.add(result.summary(), "run", state=state, result=result)
        if state is not None:
            state.label = f"— run #{point.id}: {describe_config(result.config)}"
        self.progress.setValue(1000)

    @Slot(object, str)
    def _on_run_cancelled(self, result, reason: str) -> None:
        if not self.controller.busy:
            self.sparsity.set_live(None, None)
            self.progress.setFormat(f"Cancelled ({reason}) — {describe_config(result.config)} after "
                                    f"{result.epochs_completed} epoch(s)")

    @Slot(str)
    def _on_run_failed(self, message: str) -> None:
        self.sparsity.set_live(None, None)
        self.progress.setValue(0)
        self.progress.setFormat("Failed — see the status line")
        QMessageBox.warning(self, "Training failed", message)

    @Slot(bool)
    def _on_busy_changed(self, busy: bool) -> None:
        self.controls.set_busy(busy)

    # --- preview (idle): the untrained network for the current settings -----------------------------------
    @Slot()
    def _schedule_preview(self, *_args) -> None:
        if not self.controller.busy and not self.controller.sweep_busy:
            self._preview_timer.start()

    @Slot()
    def show_preview(self) -> None:
        """Show the initial (untrained) network of the controls' settings while nothing is training."""
        if self.controller.busy or self.controller.sweep_busy or self._closing:
            return
        try:
            cfg = self.controls.config()
        except ValueError as exc:
            self.set_status(f"Invalid settings: {exc}", "error")
            return
        import torch

        from engine.models import build_model

        n = self.dataset_info.n_inputs if self.dataset_info else 784
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            model = build_model(cfg, n, 10)
            state = state_from_model(model, cfg, f"— initial state: {describe_config(cfg)} (untrained)")
        self.set_follow_live(True)
        self._show_state(state)

    # --- showing states -----------------------------------------------------------------------------------
    def _show_state(self, state: DisplayState) -> None:
        self.spectrum.show_state(state)
        self.assignment.show_state(state)
        self.current_state = state
        self.views_updated.emit()

    @Slot(bool)
    def set_follow_live(self, on: bool) -> None:
        self.follow_live = bool(on)
        if on:
            self.pinned_point = None
        if self.act_follow.isChecked() != self.follow_live:
            self.act_follow.blockSignals(True)
            self.act_follow.setChecked(self.follow_live)
            self.act_follow.blockSignals(False)
        if on and self.controller.latest_snapshot is not None and self.controller.busy:
            self._on_snapshot(self.controller.latest_snapshot, self.controller.current_config)

    @Slot(int)
    def show_point(self, point_id: int) -> None:
        """Show a session point's topology in the spectrum and assignment views (clicked in view 3)."""
        p = self.session.get(point_id)
        if p is None:
            return
        self.sparsity.show_details(point_id)
        if p.state is None:
            self.set_status(f"Run #{p.id} ({p.describe()}) came from a sweep: its topology was not kept. "
                            f"Train that setting to see it.", "warn")
            return
        self.set_follow_live(False)
        self.pinned_point = p
        if p.state.label == "":
            p.state.label = f"— run #{p.id}"
        self._show_state(p.state)
        extra = " View ▸ Follow the live run returns to the training." if self.controller.busy else ""
        self.set_status(f"Showing run #{p.id}: {p.describe()}.{extra}", "info")

    @Slot(int)
    def _select_chain(self, j: int) -> None:
        self.spectrum.set_selected_chain(j)
        self.assignment.set_selected_chain(j)

    @Slot(bool)
    def _on_maps_toggled(self, on: bool) -> None:
        self.assignment.set_mode(1 if on else 0)

    @Slot(int)
    def _sync_maps_action(self, mode: int) -> None:
        self.act_maps.blockSignals(True)
        self.act_maps.setChecked(mode == 1)
        self.act_maps.blockSignals(False)

    @Slot()
    def _on_session_changed(self) -> None:
        self.sparsity.set_points(self.session.points)
        counts = {"run": 0, "sweep": 0, "import": 0}
        for p in self.session.points:
            counts[p.source] = counts.get(p.source, 0) + 1
        names = {"run": "single run", "sweep": "sweep run", "import": "imported topology"}
        parts = [f"{v} {names.get(k, k)}{'s' if v != 1 else ''}" for k, v in counts.items() if v]
        self.results_label.setText("Session: " + ", ".join(parts) if parts else "No results yet")

    # --- sweeps -------------------------------------------------------------------------------------------
    @Slot()
    def sweep_button_clicked(self) -> None:
        if self.controller.sweep_busy:
            self.controller.stop_sweep()
            return
        if not engine_extras.has_sweep():
            QMessageBox.information(self, "Sweep unavailable",
                                    "engine.sweep is not available in this installation, so sweeps cannot run.")
            return
        from .sweep_dialog import SweepDialog

        cfg = self.current_config()
        if cfg is None:
            return
        dlg = SweepDialog(cfg, self, self.dataset_info.n_inputs if self.dataset_info else 784)
        if dlg.exec() != SweepDialog.Accepted:
            return
        self.start_sweep(dlg.spec())

    def start_sweep(self, spec) -> bool:
        data_dir = self.controls.data_dir if self.controls.dataset() != EMBEDDED_NAME else None
        return self.controller.start_sweep(spec, self.controls.dataset(), data_dir)

    @Slot(dict)
    def _on_sweep_row(self, row: dict) -> None:
        acc = row.get("test_accuracy")
        if row.get("error") or not isinstance(acc, (int, float)):
            self.set_status(f"Sweep run {row.get('model')} K={row.get('resonators_per_chain')} seed "
                            f"{row.get('seed')} failed: {row.get('error') or 'no accuracy'}", "warn")
            return
        self.session.add({k: v for k, v in row.items() if k != "config"}, "sweep")

    @Slot(str)
    def _on_sweep_failed(self, message: str) -> None:
        QMessageBox.warning(self, "Sweep failed", message)

    # --- files --------------------------------------------------------------------------------------------
    def _export_target(self):
        if self.pinned_point is not None and self.pinned_point.result is not None:
            return self.pinned_point.result
        return self.controller.last_result

    @Slot()
    def export_topology_dialog(self) -> None:
        result = self._export_target()
        if result is None:
            QMessageBox.information(self, "Nothing to export", "Train a model first: the topology of the last "
                                    "finished run (or of the run clicked in the accuracy plot) is exported.")
            return
        default = f"{result.config.model}-K{result.config.resonators_per_chain}-seed{result.config.seed}.json"
        path, _ = QFileDialog.getSaveFileName(self, "Export topology", default, "Topology (*.json)")
        if path:
            self.export_topology(path, result)

    def export_topology(self, path: str | os.PathLike, result=None) -> Optional[tuple]:
        """Write the topology JSON (and its CSV sibling). Errors become a dialog; returns the paths or None."""
        result = result if result is not None else self._export_target()
        if result is None:
            return None
        path = Path(path)
        if path.suffix.lower() != ".json":
            path = path.with_suffix(path.suffix + ".json") if path.suffix.lower() != ".csv" else path.with_suffix(".json")
        try:
            paths = engine_extras.export_run(result, path)
        except Exception as exc:  # noqa: BLE001 - reported, never a crash
            QMessageBox.critical(self, "Export failed", f"The topology could not be written to {path}:\n\n{exc}")
            self.set_status(f"Export failed: {exc}", "error")
            return None
        names = " and ".join(str(Path(p).name) for p in paths if p)
        self.set_status(f"Exported {describe_config(result.config)} to {names}.", "ok")
        return paths

    @Slot()
    def import_topology_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import topology", "", "Topology (*.json);;All files (*)")
        if path:
            self.import_topology(path)

    def import_topology(self, path: str | os.PathLike) -> bool:
        """Load a topology file, show it in the views and evaluate it on the current dataset."""
        try:
            topo = engine_extras.load_topology(path)
        except engine_extras.topology_error_types() as exc:
            QMessageBox.warning(self, "Cannot import topology", str(exc) or type(exc).__name__)
            self.set_status(f"Import failed: {exc}", "error")
            return False
        except engine_extras.FeatureUnavailable as exc:
            QMessageBox.warning(self, "Cannot import topology", str(exc))
            return False
        except Exception as exc:  # noqa: BLE001 - a foreign file must never crash the app
            QMessageBox.warning(self, "Cannot import topology",
                                f"{Path(path).name} is not a topology file rfexplorer can read ({exc}).")
            self.set_status(f"Import failed: {exc}", "error")
            return False
        name = Path(path).name
        try:
            state = state_from_model(topo.model, topo.config, f"— imported {name}",
                                     int(topo.metrics.get("rewiring_events", 0) or 0))
        except Exception as exc:  # noqa: BLE001
            QMessageBox.warning(self, "Cannot import topology", f"{name} could not be displayed ({exc}).")
            return False
        self.imported = (topo, state, name)
        self.set_follow_live(False)
        self._show_state(state)
        ds = self.controls.dataset()
        self.controller.evaluate(topo, ds, self.controls.data_dir if ds != EMBEDDED_NAME else None)
        return True

    @Slot(object, float)
    def _on_evaluated(self, topo, accuracy: float) -> None:
        name, state = "", None
        if self.imported is not None and self.imported[0] is topo:
            _, state, name = self.imported
        cfg = topo.config
        row = dict(topo.metrics)
        row.update(model=topo.model_name, resonators_per_chain=cfg.resonators_per_chain,
                   removed_synapses_pct=round(removed_synapses_pct(cfg.resonators_per_chain, topo.n_inputs), 4),
                   test_accuracy=accuracy, dataset=self.controls.dataset(), file=name)
        recorded = topo.recorded_accuracy
        self.session.add(row, "import", state=state)
        note = f" (recorded at export: {100 * recorded:.2f} % on {topo.dataset})" if recorded is not None else ""
        self.set_status(f"Imported {name}: {100 * accuracy:.2f} % on {self.controls.dataset()}{note}.", "ok")
        self.last_import_accuracy = accuracy

    @Slot(str)
    def _on_evaluation_failed(self, message: str) -> None:
        QMessageBox.warning(self, "Cannot evaluate the topology", message)

    @Slot()
    def export_results_dialog(self) -> None:
        if not self.session.points:
            QMessageBox.information(self, "Nothing to export", "No results yet: run a sweep or train a model.")
            return
        path, _ = QFileDialog.getSaveFileName(self, "Export sweep results", "sweep-results.csv", "CSV (*.csv)")
        if path:
            self.export_results(path)

    def export_results(self, path: str | os.PathLike) -> bool:
        """Write every session result as CSV (atomically); with engine.sweep available, also the sweep JSON
        next to it (same name, .json), which ``python -m rfexplorer.figures`` renders."""
        path = Path(path)
        if path.suffix.lower() != ".csv":
            path = path.with_suffix(".csv")
        rows = self.session.rows()
        written = [path.name]
        try:
            if engine_extras.has_sweep():
                from engine.export import atomic_write_text, dumps_json
                from engine.sweep import rows_csv_text, sweep_document

                atomic_write_text(path, rows_csv_text(rows))
                json_path = path.with_suffix(".json")
                # engine.sweep.aggregate averages train_seconds: rows that lack it (imports) get NaN (-> null)
                doc_rows = [dict(r, train_seconds=r["train_seconds"] if isinstance(r.get("train_seconds"),
                                                                                  (int, float)) else float("nan"))
                            for r in rows]
                atomic_write_text(json_path, dumps_json(sweep_document(doc_rows)))
                written.append(json_path.name)
            else:
                write_rows_csv(rows, path)
        except Exception as exc:  # noqa: BLE001
            QMessageBox.critical(self, "Export failed", f"The results could not be written to {path}:\n\n{exc}")
            self.set_status(f"Export failed: {exc}", "error")
            return False
        self.set_status(f"Wrote {len(rows)} result(s) to {' and '.join(written)}.", "ok")
        return True

    @Slot()
    def import_results_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import sweep results", "",
                                              "Sweep results (sweep.json *.json);;All files (*)")
        if path:
            self.import_results(path)

    def import_results(self, path: str | os.PathLike) -> bool:
        """Add the runs of a sweep.json (from `rfexplorer-cli sweep`, `make reproduce` or Export sweep results)
        to the accuracy-versus-sparsity view, so new runs can be compared with them."""
        from .figures import FigureError, load_sweep

        try:
            _agg, rows = load_sweep(path)
        except FigureError as exc:
            QMessageBox.warning(self, "Cannot import sweep results", str(exc))
            self.set_status(f"Import failed: {exc}", "error")
            return False
        added = 0
        for row in rows:
            acc = row.get("test_accuracy") if isinstance(row, dict) else None
            if (row.get("error") if isinstance(row, dict) else True) or not isinstance(acc, (int, float)) \
                    or not isinstance(row.get("resonators_per_chain"), int) or "model" not in row:
                continue
            self.session.add({k: v for k, v in row.items() if k != "config"}, "sweep")
            added += 1
        self.set_status(f"Imported {added} run(s) from {Path(path).name}.", "ok" if added else "warn")
        return added > 0

    @Slot()
    def _on_save_png_action(self) -> None:
        name = self.sender().data()
        default = name.lower().replace(" ", "-") + ".png"
        path, _ = QFileDialog.getSaveFileName(self, f"Save {name} as PNG", default, "PNG image (*.png)")
        if path:
            self.save_png(self.png_targets[name], path)

    def save_png(self, widget: QWidget, path: str | os.PathLike) -> bool:
        path = Path(path)
        if path.suffix.lower() != ".png":
            path = path.with_suffix(".png")
        try:
            save_widget_png(widget, path)
        except Exception as exc:  # noqa: BLE001
            QMessageBox.critical(self, "Save failed", f"The image could not be written to {path}:\n\n{exc}")
            return False
        self.set_status(f"Saved {path.name}.", "ok")
        return True

    # --- about and close ----------------------------------------------------------------------------------
    def about_html(self) -> str:
        versions = ", ".join(f"{html.escape(k)} {html.escape(str(v))}" for k, v in software_versions().items())
        return ABOUT_HTML.format(app=APP_VERSION, versions=versions)

    @Slot()
    def show_about(self) -> None:
        QMessageBox.about(self, "About rfexplorer", self.about_html())

    def closeEvent(self, event) -> None:  # noqa: N802
        self._closing = True
        self._preview_timer.stop()
        if self.controller.busy:
            print(f"rfexplorer: closing; cancelled the run in progress "
                  f"({describe_config(self.controller.current_config)})", file=sys.stderr)
        self.controller.shutdown()
        self.gc_guard.stop()
        super().closeEvent(event)


def state_from_model(model, cfg: RunConfig, label: str, rewiring_events: int = 0) -> DisplayState:
    """A DisplayState for a built (untrained, loaded or trained) model."""
    import torch

    with torch.no_grad():
        w = model.effective_weight().detach().cpu().numpy().astype(np.float32, copy=True)
    extras = model.snapshot_extras() if hasattr(model, "snapshot_extras") else {}
    params = getattr(model, "params", None) or cfg.device
    return DisplayState(model=cfg.model, weight=w, params=params, resonators_per_chain=cfg.resonators_per_chain,
                        label=label, rewiring_events=rewiring_events,
                        input_freqs_ghz=extras.get("input_freqs_ghz"),
                        resonator_freqs_ghz=extras.get("resonator_freqs_ghz"),
                        resonator_signs=extras.get("resonator_signs"),
                        attached_input=extras.get("attached_input"))
