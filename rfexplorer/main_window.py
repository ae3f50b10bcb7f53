"""The main window: layout and wiring only.

Layout (1400 x 900 at first, or the screen if smaller; minimum about 900 x 470, at most 1024 x 640):

    +------------+---------------------------------------------------------+
    | Controls   | Frequency spectrum (central): input comb / selected      |
    | (scrolls)  | chain's response / every chain's resonators              |
    |            +-------------------+-----------+--------------------------+
    +------------+ Synapse assignment| Network   | Results: Accuracy vs     |
    | Training   | (scrolls below    | (multi-   | sparsity | Robustness    |
    | history    |  its minimum)     |  layer)   |                          |
    +------------+-------------------+-----------+--------------------------+
    | progress: epoch · step · loss · accuracy · time left                  |
    | status line                                  session results · dataset |

Every panel but the spectrum is a dock: the View menu hides and shows each (the spectrum too), docks move and
float, and the layout (docks and window geometry) is saved in the app's QSettings on close and restored at the
next start; View > Reset layout puts everything back.

What happens lives elsewhere, and this module only connects it:

- :class:`~rfexplorer.controller.Controller`: the engine process (training, loading, previews, imports,
  sweeps) and its main-thread signals;
- :class:`~rfexplorer.explorer.ExplorerModel`: what the spectrum and assignment views show (state, selected
  chain, follow the live run or a pinned result); the views subscribe to it;
- :class:`~rfexplorer.datasets.DatasetPresenter`: the dataset and its shape (N inputs, C classes);
- :class:`~rfexplorer.runs.RunPresenter`: runs, their live presentation, results, previews and sweeps;
- :class:`~rfexplorer.file_actions.FileActions`: the File menu (topologies, results, PNGs);
- :class:`~rfexplorer.robustness_runs.RobustnessPresenter`: robustness studies of a trained network;
- :class:`~rfexplorer.session.Session`: the results gathered so far.
"""
from __future__ import annotations

import html
import sys
from pathlib import Path
from typing import Optional

from PySide6.QtCore import QEvent, QSettings, Qt, Signal, Slot
from PySide6.QtGui import QAction, QActionGroup, QIcon, QKeySequence
from PySide6.QtWidgets import (QDockWidget, QFrame, QHBoxLayout, QMainWindow, QProgressBar, QScrollArea,
                               QSizePolicy, QStyle, QTabWidget, QVBoxLayout, QWidget)

from engine.data import DATASET_NAMES

from . import __version__ as APP_VERSION
from . import dialogs, theme
from .controller import Controller
from .controls import DATASET_LABELS, ControlPanel
from .datasets import DatasetPresenter
from .explorer import ExplorerModel
from .fetch_action import FetchActions
from .file_actions import FileActions
from .eta import ProgressBoard
from .gcguard import GuiThreadGC
from .job_progress import RobustnessProgress, SweepProgress
from .robustness_runs import RobustnessPresenter
from .runs import RunPresenter
from .runs_browser import open_runs_browser
from .session import Session
from .store_session import StoreSession
from .views import AssignmentView, HistoryView, NetworkView, RobustnessView, SparsityView, SpectrumView
from .views.common import ElidedLabel
from .views.confusion import ConfusionView
from .views.design import DesignView

RESOURCES = Path(__file__).resolve().parent / "resources"
ICON_PATH = RESOURCES / "rfexplorer.png"
DOCK_WIDTH = 330
MIN_VIEW_WIDTH = 240  #: the narrowest a view gets before its dock scrolls
NETWORK_DOCK_WIDTH = 170  #: the network diagram's width when it appears (the assignment keeps its header)
GEOMETRY_KEY, STATE_KEY, SPECTRUM_KEY = "layout/geometry", "layout/state", "layout/spectrum"
LAYOUT_VERSION = 3  #: bump when the docks change, so an old saved layout is not applied
IDLE_PROGRESS = "Idle — release a sparsity slider or press Train to start a run"


class Fitted(QWidget):
    """Holds one view and gives it all its room. Its minimum size is the view's, without height-for-width, so
    a resizable scroll area around it scrolls only below the view's minimum size (a word-wrapped subtitle would
    otherwise make the scroll area grow the view to its preferred height)."""

    def __init__(self, child: QWidget) -> None:
        super().__init__()
        self.child = child
        child.setParent(self)

    def minimumSizeHint(self):  # noqa: N802 - Qt's method name
        return self.child.minimumSizeHint().expandedTo(self.child.minimumSize())

    def sizeHint(self):  # noqa: N802 - Qt's method name
        return self.child.sizeHint()

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt's method name
        self.child.setGeometry(self.rect())

    def event(self, event) -> bool:
        if event.type() == QEvent.LayoutRequest:  # the view's minimum changed: tell the scroll area
            self.updateGeometry()
        return super().event(event)


def scrolled(widget: QWidget, min_width: int, min_height: int = 100) -> QScrollArea:
    """``widget`` in a frameless scroll area that fills its dock and scrolls once the dock is smaller."""
    area = QScrollArea()
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.NoFrame)
    area.setWidget(Fitted(widget))
    area.setMinimumSize(min_width, min_height)
    return area

ABOUT_HTML = """
<h3>rfexplorer {app}</h3>
<p>A visual explorer and headless PyTorch engine for radio-frequency spintronic neural networks.</p>
<p><b>Physics model.</b> Input neurons are spin-torque nano-oscillators, each emitting at its own frequency
with a power proportional to its input feature (a pixel, a spectrum bin). Synapses are magnetic-tunnel-junction
resonators wired in series chains, one chain per class; through the spin-diode effect each rectifies the power
near its resonance, with a Lorentzian lineshape cos&phi;&middot;2x/(1+x&sup2;) + sin&phi;/(1+x&sup2;),
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

    from engine.io.results import software_versions as engine_versions

    v = {"rfexplorer app": APP_VERSION}
    v.update({("engine" if k == "rfexplorer" else k): val for k, val in engine_versions().items()})
    v.update({"PySide6": PySide6.__version__, "Qt": PySide6.QtCore.qVersion(), "pyqtgraph": pyqtgraph.__version__})
    return v


class MainWindow(QMainWindow):
    #: emitted after the views showed a new state (live, preview, pinned or imported)
    views_updated = Signal()

    def __init__(self, settings: Optional[QSettings] = None, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.settings = settings if settings is not None else QSettings("rfexplorer", "rfexplorer")
        self.setWindowTitle("rfexplorer — RF spintronic neural networks")
        if ICON_PATH.is_file():
            self.setWindowIcon(QIcon(str(ICON_PATH)))
        self.resize(1400, 900)

        self.gc_guard = GuiThreadGC(self)
        self.gc_guard.start()
        self.controller = Controller(self)
        self.session = Session(self)
        self.explorer = ExplorerModel(self)

        self._build_layout()
        self.datasets = DatasetPresenter(self, self.controls, self.controller, self.spectrum, self.sparsity,
                                         self.dataset_label, self.set_status)
        self.runs = RunPresenter(self, self.controls, self.controller, self.session, self.explorer, self.datasets,
                                 self.progress_board.lane("run"), self.history, self.sparsity, self.set_status,
                                 self.status_text)
        # the progress bar follows every long job: the run (above), a sweep, a robustness study, a fetch
        self.sweep_progress = SweepProgress(self, self.controller, self.progress_board.lane("sweep"), self.session,
                                            self.runs._n_inputs, self.set_status)
        self.robustness_progress = RobustnessProgress(self, self.controller, self.progress_board.lane("robustness"))
        self.files = FileActions(self, self.controller, self.session, self.explorer, self.runs, self.datasets,
                                 self.set_status)
        self.robustness_runs = RobustnessPresenter(self, self.robustness, self.controller, self.session,
                                                   self.explorer, self.files, self.runs, self.datasets,
                                                   self.set_status)
        self.store_session = StoreSession(self.session, self.settings, self.set_status, self)  # runs kept
        self._build_menus()
        self.restore_layout()
        self._connect()
        self.datasets.start()  # the dataset loads in the worker; its shape, then a preview, follow
        self.store_session.start()  # the runs of earlier sessions come back from the run store

    # --- layout -------------------------------------------------------------------------------------------
    def _build_layout(self) -> None:
        """Every view is a dock (hide, move, float, restore from the View menu); the spectrum is the central
        widget. Content that can outgrow its dock scrolls, and no view forces the window wider than a laptop."""
        self.setDockNestingEnabled(True)
        for corner in (Qt.TopLeftCorner, Qt.BottomLeftCorner):  # the controls column runs full height
            self.setCorner(corner, Qt.LeftDockWidgetArea)
        self.controls = ControlPanel(self.settings)
        self.history = HistoryView()
        self.history.setMinimumHeight(110)
        self.spectrum = SpectrumView()
        self.assignment = AssignmentView()
        self.sparsity = SparsityView()
        self.robustness = RobustnessView()
        self.network = NetworkView()  # multilayer networks only (its dock is shown for them)
        self.confusion = ConfusionView()  # the run on display: true x predicted classes
        # the session's results and robustness studies share one dock, one tab each
        self.results_tabs = QTabWidget()
        self.results_tabs.setObjectName("ResultTabs")
        self.results_tabs.setDocumentMode(True)
        self.results_tabs.setUsesScrollButtons(True)
        self.results_tabs.addTab(self.sparsity, "Accuracy vs sparsity")
        self.results_tabs.addTab(self.robustness, "Robustness")
        self.results_tabs.setTabToolTip(1, "Accuracy of a trained network on fresh chips as one device setting "
                                           "varies")
        self.spectrum.setMinimumSize(MIN_VIEW_WIDTH, 150)
        self.setCentralWidget(self.spectrum)
        # the controls scroll up and down, never sideways: as wide as their narrowest plus a scroll bar
        bar = self.style().pixelMetric(QStyle.PM_ScrollBarExtent)
        self.controls_dock = self._add_dock("Controls", "ControlsDock",
                                            scrolled(self.controls, self.controls.minimumSizeHint().width() + bar),
                                            Qt.LeftDockWidgetArea)
        self.history_dock = self._add_dock("Training history", "HistoryDock", self.history, Qt.LeftDockWidgetArea)
        self.splitDockWidget(self.controls_dock, self.history_dock, Qt.Vertical)
        self.assignment_dock = self._add_dock("Synapse assignment", "AssignmentDock",
                                              scrolled(self.assignment, MIN_VIEW_WIDTH, 140), Qt.BottomDockWidgetArea)
        self.network_dock = self._add_dock("Network", "NetworkDock", scrolled(self.network, 120, 120),
                                           Qt.BottomDockWidgetArea)
        self.results_dock = self._add_dock("Results", "ResultsDock", scrolled(self.results_tabs, MIN_VIEW_WIDTH, 140),
                                           Qt.BottomDockWidgetArea)
        self.splitDockWidget(self.assignment_dock, self.network_dock, Qt.Horizontal)
        self.splitDockWidget(self.network_dock, self.results_dock, Qt.Horizontal)
        self.confusion_dock = self._add_dock("Confusion matrix", "ConfusionDock",
                                             scrolled(self.confusion, MIN_VIEW_WIDTH, 140), Qt.BottomDockWidgetArea)
        self.tabifyDockWidget(self.results_dock, self.confusion_dock)  # a tab beside the results at first
        self.design = DesignView()  # the run store's design studies (View > Design search)
        self.design_dock = self._add_dock("Design", "DesignDock", self.design, Qt.BottomDockWidgetArea)
        self.tabifyDockWidget(self.confusion_dock, self.design_dock)
        #: a trial's network waiting for its dataset to load ("dataset"), then for that dataset's preview ("preview")
        self._design_pending: Optional[tuple[str, str]] = None
        self.results_dock.raise_()
        self.network_dock.hide()
        self.design_dock.hide()
        self._size_docks()
        self._multilayer_shown: Optional[bool] = None
        self._default_state = None
        self._build_footer()

    def _size_docks(self) -> None:
        """The docks' starting sizes (the window's size set first)."""
        # the training history (is it learning?) gets 40 % of the column; the controls scroll
        column = max(200, self.height() - 80)  # (less the menu and status bars)
        self.resizeDocks([self.controls_dock, self.history_dock], [int(0.6 * column), int(0.4 * column)],
                         Qt.Vertical)
        self.resizeDocks([self.controls_dock], [DOCK_WIDTH], Qt.Horizontal)
        self.resizeDocks([self.assignment_dock, self.results_dock], [560, 480], Qt.Horizontal)
        self.resizeDocks([self.assignment_dock], [min(300, self.height() // 3 + 60)], Qt.Vertical)

    def _add_dock(self, title: str, name: str, widget: QWidget, area) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setWidget(widget)
        dock.setFeatures(QDockWidget.DockWidgetClosable | QDockWidget.DockWidgetMovable
                         | QDockWidget.DockWidgetFloatable)
        self.addDockWidget(area, dock)
        return dock

    def _build_footer(self) -> None:
        """The progress bar above the status line, both in the status bar: always at the window's bottom."""
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        self.progress.setFormat(IDLE_PROGRESS)
        self.progress.setMinimumWidth(120)
        self.progress_board = ProgressBoard(self.progress, IDLE_PROGRESS)  #: one lane per long job
        self.status_line = ElidedLabel("Ready.")
        self.status_line.setObjectName("StatusLine")
        self.results_label = ElidedLabel("No results yet")
        self.results_label.setObjectName("Dim")
        self.dataset_label = ElidedLabel("", elide=Qt.ElideMiddle)  # (its end, the classes, stays in view)
        for label, width in ((self.results_label, 180), (self.dataset_label, 300)):
            label.setMaximumWidth(width)
            label.setSizePolicy(QSizePolicy.Preferred, QSizePolicy.Preferred)
            label.setMinimumWidth(40)
        footer = QWidget()
        footer.setObjectName("Footer")
        grid = QVBoxLayout(footer)
        grid.setContentsMargins(0, 2, 0, 0)
        grid.setSpacing(2)
        grid.addWidget(self.progress)
        row = QHBoxLayout()
        row.setSpacing(12)
        row.addWidget(self.status_line, 1)
        row.addWidget(self.results_label)
        row.addWidget(self.dataset_label)
        grid.addLayout(row)
        self.statusBar().addWidget(footer, 1)

    def view_docks(self) -> dict[str, QDockWidget]:
        """The docks by what they show, in View-menu order."""
        return {"Controls": self.controls_dock, "Training history": self.history_dock,
                "Synapse assignment": self.assignment_dock, "Network diagram": self.network_dock,
                "Results (accuracy, robustness)": self.results_dock, "Confusion matrix": self.confusion_dock,
                "Design search": self.design_dock}

    def _build_view_menu_docks(self, view_menu) -> None:
        self.act_spectrum = view_menu.addAction("Frequency &spectrum")
        self.act_spectrum.setCheckable(True)
        self.act_spectrum.setChecked(True)
        self.act_spectrum.toggled.connect(self.spectrum.setVisible)
        self.view_actions = {"Frequency spectrum": self.act_spectrum}
        for name, dock in self.view_docks().items():
            act = dock.toggleViewAction()
            act.setText(name)
            view_menu.addAction(act)
            self.view_actions[name] = act
        view_menu.addSeparator()
        reset = view_menu.addAction("&Reset layout")
        reset.triggered.connect(self.reset_layout)

    # --- layout memory ------------------------------------------------------------------------------------
    def save_layout(self) -> None:
        """Remember the window's geometry, its docks and whether the spectrum is shown (the app's QSettings)."""
        self.settings.setValue(GEOMETRY_KEY, self.saveGeometry())
        self.settings.setValue(STATE_KEY, self.saveState(LAYOUT_VERSION))
        self.settings.setValue(SPECTRUM_KEY, self.act_spectrum.isChecked())
        self.settings.sync()

    def restore_layout(self) -> None:
        geometry, state = self.settings.value(GEOMETRY_KEY), self.settings.value(STATE_KEY)
        if self._default_state is None:  # the layout built in code, for Reset layout
            self._default_state = self.saveState(LAYOUT_VERSION)
        if geometry is None or not self.restoreGeometry(geometry):  # first start: fit the screen
            room = self.screen().availableGeometry()
            self.resize(min(self.width(), room.width()), min(self.height(), room.height()))
            self._size_docks()
        if state is not None:
            self.restoreState(state, LAYOUT_VERSION)
        self.act_spectrum.setChecked(str(self.settings.value(SPECTRUM_KEY, True)).lower() != "false")

    @Slot()
    def reset_layout(self) -> None:
        """Every view back where it started (the View menu's Reset layout)."""
        self.restoreState(self._default_state, LAYOUT_VERSION)
        self.act_spectrum.setChecked(True)
        self.network_dock.setVisible(bool(self._multilayer_shown))

    def event(self, event) -> bool:  # the layout is remembered before any close handling
        if event.type() == QEvent.Close:
            self.save_layout()
        return super().event(event)

    def _build_menus(self) -> None:
        files, runs = self.files, self.runs
        mb = self.menuBar()
        file_menu = mb.addMenu("&File")
        self.act_open_dataset = QAction("Open &dataset…", self, shortcut=QKeySequence("Ctrl+Shift+O"))
        self.act_open_dataset.setToolTip("Train on your own data: a .npz, .csv or .h5 file")
        self.act_open_dataset.triggered.connect(self.datasets.open_file_dialog)
        file_menu.addAction(self.act_open_dataset)
        self.dataset_menu = file_menu.addMenu("Data&set")
        self.dataset_actions = QActionGroup(self)
        for name in DATASET_NAMES:
            act = self.dataset_menu.addAction(DATASET_LABELS.get(name, name))
            act.setData(name)
            act.setCheckable(True)
            self.dataset_actions.addAction(act)
        self.dataset_actions.triggered.connect(self._on_dataset_action)
        self.dataset_menu.aboutToShow.connect(self._sync_dataset_menu)
        self.fetches = FetchActions(self, self.controls, self.controller, self.set_status,  # Get full MNIST…
                                    self.progress_board.lane("fetch"))
        self.fetches.add_to_menu(self.dataset_menu)
        file_menu.addSeparator()
        self.act_export = QAction("&Export topology…", self, shortcut=QKeySequence("Ctrl+E"))
        self.act_import = QAction("&Import topology…", self, shortcut=QKeySequence("Ctrl+O"))
        self.act_export_sweep = QAction("Export sweep &results (CSV)…", self)
        self.act_import_sweep = QAction("Import s&weep results…", self)
        self.act_export.triggered.connect(files.export_topology_dialog)
        self.act_import.triggered.connect(files.import_topology_dialog)
        self.act_export_sweep.triggered.connect(files.export_results_dialog)
        self.act_import_sweep.triggered.connect(files.import_results_dialog)
        for act in (self.act_export, self.act_import, self.act_export_sweep, self.act_import_sweep):
            file_menu.addAction(act)
        png = file_menu.addMenu("Save view as &PNG")
        files.png_targets.update({"Main window": self, "Frequency spectrum": self.spectrum,
                                  "Synapse assignment": self.assignment, "Accuracy vs sparsity": self.sparsity,
                                  "Robustness": self.robustness, "Training history": self.history,
                                  "Confusion matrix": self.confusion, "Design search": self.design})
        for name in files.png_targets:
            act = png.addAction(name + "…")
            act.setData(name)
            act.triggered.connect(files.save_png_action)
        file_menu.addSeparator()
        quit_act = file_menu.addAction("&Quit")
        quit_act.setShortcut(QKeySequence.Quit)
        quit_act.triggered.connect(self.close)

        self._build_run_menu(mb.addMenu("&Run"))

        view_menu = mb.addMenu("&View")
        self.act_follow = view_menu.addAction("&Follow the live run")
        self.act_follow.setCheckable(True)
        self.act_follow.setChecked(True)
        self.act_follow.toggled.connect(runs.on_follow_toggled)
        self.act_maps = view_menu.addAction("Assignment as &input maps")
        self.act_maps.setCheckable(True)
        self.act_maps.toggled.connect(self._on_maps_toggled)
        self.assignment.mode_combo.currentIndexChanged.connect(self._sync_maps_action)
        view_menu.addSeparator()
        self._build_view_menu_docks(view_menu)

        help_menu = mb.addMenu("&Help")
        about = help_menu.addAction("&About rfexplorer")
        about.triggered.connect(self.show_about)

    def _build_run_menu(self, run_menu) -> None:
        """Train, Stop, Pause / Resume, Step one epoch, sweeps, robustness, and clearing the session."""
        self.act_train = run_menu.addAction("&Train")
        self.act_train.setShortcut(QKeySequence("Ctrl+Return"))
        self.act_train.triggered.connect(self.runs.start_from_controls)
        self.act_stop = run_menu.addAction("&Stop")
        self.act_stop.setShortcut(QKeySequence(Qt.Key_Escape))
        self.act_stop.triggered.connect(self.controller.stop)
        self.act_pause = run_menu.addAction("&Pause / Resume")
        self.act_pause.setShortcut(QKeySequence("Ctrl+P"))
        self.act_pause.triggered.connect(self.toggle_pause)
        self.act_step = run_menu.addAction("Step one &epoch")
        self.act_step.setShortcut(QKeySequence("Ctrl+Shift+P"))
        self.act_step.triggered.connect(self.controller.step_epoch)
        self.act_sweep = run_menu.addAction("Run s&weep…")
        self.act_sweep.triggered.connect(self.runs.sweep_button_clicked)
        self.act_robustness = run_menu.addAction("&Robustness study")
        self.act_robustness.setToolTip("Show the Robustness tab: accuracy of the trained network on fresh chips")
        self.act_robustness.triggered.connect(self.show_robustness)
        run_menu.addSeparator()
        self.act_clear = run_menu.addAction("&Clear session results")
        self.act_clear.triggered.connect(self.session.clear)
        self.act_runs_browser = run_menu.addAction("Recorded r&uns…")
        self.act_runs_browser.setToolTip("Every recorded run (app, command line, sweeps): filter, compare, load")
        self.act_runs_browser.triggered.connect(self.show_runs_browser)

    def _connect(self) -> None:
        c, runs, files, datasets, ex = self.controller, self.runs, self.files, self.datasets, self.explorer
        # the explorer model -> the views (the views first, then views_updated)
        ex.state_changed.connect(self.spectrum.show_state)
        ex.state_changed.connect(self.assignment.show_state)
        ex.state_changed.connect(self.network.show_state)
        ex.state_changed.connect(self._on_state_shown)
        ex.chain_changed.connect(self.spectrum.set_selected_chain)
        ex.chain_changed.connect(self.assignment.set_selected_chain)
        ex.follow_changed.connect(self._sync_follow_action)
        self.spectrum.chain_selected.connect(ex.select_chain)
        ex.layer_changed.connect(self.spectrum.set_layer)
        ex.layer_changed.connect(self.assignment.set_layer)
        ex.layer_changed.connect(self.network.set_layer)
        self.spectrum.layer_selected.connect(ex.select_layer)
        self.assignment.layer_selected.connect(ex.select_layer)
        self.assignment.chain_selected.connect(ex.select_chain)
        # runs
        c.run_started.connect(runs.on_started)
        c.run_started.connect(self.spectrum.reset_scale)
        c.run_started.connect(self.assignment.reset_scale)
        c.run_finished.connect(runs.on_finished)
        c.run_cancelled.connect(runs.on_cancelled)
        c.run_failed.connect(runs.on_failed)
        c.snapshot_ready.connect(runs.on_snapshot)
        c.busy_changed.connect(runs.on_busy_changed)
        c.preview_ready.connect(runs.on_preview)
        c.status.connect(self.set_status)
        c.sweep_row.connect(runs.on_sweep_row)
        c.sweep_busy_changed.connect(self.controls.set_sweep_busy)
        c.sweep_failed.connect(runs.on_sweep_failed)
        c.engine_lost.connect(runs.on_engine_lost)
        self.controls.run_requested.connect(runs.start_from_controls)
        self.controls.stop_requested.connect(c.stop)
        self.controls.pause_requested.connect(self.toggle_pause)
        self.controls.step_requested.connect(c.step_epoch)
        c.pause_changed.connect(self.controls.set_pause_state)
        self.confusion.follow(ex, self.session)  # the run on display (finished, clicked or pinned)
        self.sparsity.point_clicked.connect(self.confusion.show_point_id)
        self.controls.sweep_requested.connect(runs.sweep_button_clicked)
        self.controls.k_changed.connect(runs.schedule_preview)
        self.controls.model_combo.currentIndexChanged.connect(runs.schedule_preview)
        for w in (self.controls.alpha_spin, self.controls.phi_spin, self.controls.fmin_spin,
                  self.controls.fmax_spin, self.controls.seed_spin):
            w.valueChanged.connect(runs.schedule_preview)
        self.controls.plan_combo.currentIndexChanged.connect(runs.schedule_preview)
        for w in (self.controls.range_spin, self.controls.bits_spin):  # they set the fabricated layout and levels
            w.valueChanged.connect(runs.schedule_preview)
        for edit in (self.controls.hidden_edit, self.controls.layer_k_edit):
            edit.editingFinished.connect(runs.schedule_preview)
        self.sparsity.point_clicked.connect(runs.show_point)
        self.session.changed.connect(self._on_session_changed)
        # datasets
        c.dataset_ready.connect(datasets.on_ready)
        c.dataset_failed.connect(datasets.on_failed)
        datasets.changed.connect(runs.schedule_preview)
        self.controls.dataset_changed.connect(datasets.load)
        self.controls.data_dir_changed.connect(datasets.on_data_dir_changed)
        self.controls.open_button.clicked.connect(datasets.open_file_dialog)
        # files
        c.topology_imported.connect(files.on_imported)
        c.import_failed.connect(files.on_import_failed)
        c.evaluation_finished.connect(files.on_evaluated)
        c.evaluation_failed.connect(files.on_evaluation_failed)
        self.design.network_requested.connect(self.show_design_network)
        self.design_dock.toggleViewAction().triggered.connect(self._raise_design)  # its tab comes to the front
        datasets.changed.connect(self._on_design_dataset_ready)
        c.preview_ready.connect(self._on_design_preview)  # after runs.on_preview: the import replaces the preview

    # --- status -------------------------------------------------------------------------------------------
    @Slot(str, str)
    def set_status(self, message: str, level: str = "info") -> None:
        colour = {"busy": theme.ACCENT, "warn": theme.WARN, "error": theme.ERROR, "ok": theme.OK}.get(level, theme.FG)
        self.status_line.setStyleSheet(f"color: {colour};")
        self.status_line.setText(message)

    def status_text(self) -> str:
        return self.status_line.text()

    @Slot()
    def toggle_pause(self) -> None:
        """Pause the run in progress, or resume it if paused (the Pause button, Run ▸ Pause / Resume)."""
        if self.controller.paused:
            self.controller.resume_run()
        else:
            self.controller.pause_run()

    @Slot()
    def show_robustness(self) -> None:
        """Bring the Robustness tab to the front."""
        self.results_tabs.setCurrentWidget(self.robustness)

    # --- small wiring slots -------------------------------------------------------------------------------
    @Slot(object)
    def _on_state_shown(self, state) -> None:
        multi = bool(getattr(state, "is_multilayer", False))
        if multi != self._multilayer_shown:  # the diagram's dock comes and goes with multilayer networks
            self._multilayer_shown = multi
            self.network_dock.setVisible(multi)
            self.view_actions["Network diagram"].setEnabled(multi)
            if multi:  # room for its three columns and their titles, and for the assignment's wider header
                need = max(self.assignment_dock.width(), self.assignment.minimumSizeHint().width() + 80)
                self.resizeDocks([self.assignment_dock, self.network_dock], [need, NETWORK_DOCK_WIDTH],
                                 Qt.Horizontal)
        self.views_updated.emit()

    @Slot(bool)
    def _sync_follow_action(self, on: bool) -> None:
        if self.act_follow.isChecked() != on:
            self.act_follow.blockSignals(True)
            self.act_follow.setChecked(on)
            self.act_follow.blockSignals(False)

    @Slot(bool)
    def _on_maps_toggled(self, on: bool) -> None:
        self.assignment.set_mode(1 if on else 0)

    @Slot(int)
    def _sync_maps_action(self, mode: int) -> None:
        self.act_maps.blockSignals(True)
        self.act_maps.setChecked(mode == 1)
        self.act_maps.blockSignals(False)

    @Slot()
    def _sync_dataset_menu(self) -> None:
        current = self.controls.dataset()
        for act in self.dataset_actions.actions():
            act.setEnabled(act.data() in self.controls.available)
            act.setChecked(act.data() == current)

    @Slot(QAction)
    def _on_dataset_action(self, act: QAction) -> None:
        self.controls.select_dataset(act.data())

    @Slot()
    def _on_session_changed(self) -> None:
        self.sparsity.set_points(self.session.points)
        names = {"run": "single run", "sweep": "sweep run", "import": "imported topology",
                 "stored": "earlier run"}
        parts = [f"{v} {names.get(k, k)}{'s' if v != 1 else ''}" for k, v in self.session.counts().items() if v]
        self.results_label.setText("Session: " + ", ".join(parts) if parts else "No results yet")

    # --- about and close ----------------------------------------------------------------------------------
    def about_html(self) -> str:
        versions = ", ".join(f"{html.escape(k)} {html.escape(str(v))}" for k, v in software_versions().items())
        return ABOUT_HTML.format(app=APP_VERSION, versions=versions)

    @Slot()
    def show_runs_browser(self) -> None:
        open_runs_browser(self)

    @Slot(str, object)
    def show_design_network(self, path: str, study) -> None:
        """A design trial's network (a topology file) into the views, on the study's dataset when the controls
        list it (selected first; the import follows once it has loaded)."""
        ds = study.dataset if study is not None else None
        if ds and ds != self.controls.dataset() and self.controls.dataset_combo.findData(ds) >= 0:
            self._design_pending = (path, "dataset")
            self.controls.select_dataset(ds)
            return
        self.files.import_topology(path)

    @Slot(bool)
    def _raise_design(self, shown: bool) -> None:
        if shown:
            self.design_dock.raise_()

    @Slot(object)
    def _on_design_dataset_ready(self, _info) -> None:
        """The study's dataset loaded: its untrained preview follows, and the trial's network is imported after
        it (else the preview would replace it), at once while a run trains (no preview comes then)."""
        if self._design_pending is not None and self._design_pending[1] == "dataset":
            path = self._design_pending[0]
            self._design_pending = None if self.controller.busy else (path, "preview")
            if self.controller.busy:
                self.files.import_topology(path)

    @Slot(object)
    def _on_design_preview(self, _state) -> None:
        if self._design_pending is not None and self._design_pending[1] == "preview":
            path, self._design_pending = self._design_pending[0], None
            self.files.import_topology(path)

    @Slot()
    def show_about(self) -> None:
        dialogs.about(self, "About rfexplorer", self.about_html())

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt's method name
        self.fetches.shutdown()
        self.runs.stop()
        if self.controller.busy:
            print(f"rfexplorer: closing; cancelled the run in progress "
                  f"({self.runs.describe(self.controller.current_config)})", file=sys.stderr)
        self.controller.shutdown()
        self.store_session.shutdown()
        self.design.shutdown()
        self.gc_guard.stop()
        super().closeEvent(event)
