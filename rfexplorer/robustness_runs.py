"""Robustness studies from the app: which network is studied, the request to the engine process, the view.

The network studied is the one on display when it is a finished run or an imported topology (a result
clicked in the accuracy view, File ▸ Import), else the last finished run of the session, else the last imported
topology. The GUI keeps those networks (a run's finished model comes back with its result; an import's with
its topology), so the study sends a copy of the network with its job to the engine process
(rfexplorer.engine_process, job kind 'robustness'), where engine.nets.hardware.robustness evaluates it on fresh
chips; the evaluations stream back and :class:`~rfexplorer.views.robustness.RobustnessView` draws them from the
controller's redraw timer. Mistakes in the form and a missing network are one sentence on the status line and
in the view, never a dialog; CSV export goes through the engine's CSV writer.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional

from PySide6.QtCore import QObject, Slot

from . import dialogs
from .engine_process import RobustnessRequest
from .labels import model_label

if TYPE_CHECKING:  # the collaborators' types, for the annotations only: no import at run time, so no cycle
    from PySide6.QtWidgets import QWidget

    from .controller import Controller
    from .datasets import DatasetPresenter
    from .explorer import ExplorerModel
    from .file_actions import FileActions
    from .runs import RunPresenter
    from .session import Session
    from .views import RobustnessView

NO_NETWORK = ("Robustness needs a trained RF network: train one (Train) or import a topology (File ▸ Import "
              "topology…) first.")


@dataclass
class RobustnessTarget:
    """The network a study evaluates, and where."""

    network: Any
    config: Any  #: its RunConfig
    label: str  #: 'run #3: RF K=10 (98.72 % removed)'
    dataset: str
    data_dir: Optional[str]


class RobustnessPresenter(QObject):
    def __init__(self, parent_widget: QWidget, view: RobustnessView, controller: Controller, session: Session,
                 explorer: ExplorerModel, files: FileActions, runs: RunPresenter, datasets: DatasetPresenter,
                 status: Callable[[str, str], None]) -> None:
        super().__init__(parent_widget)
        self.parent_widget = parent_widget
        self.view = view
        self.controller = controller
        self.session = session
        self.explorer = explorer
        self.files = files
        self.runs = runs
        self.datasets = datasets
        self.status = status
        self.last_error: Optional[str] = None
        self._started = 0.0
        view.run_clicked.connect(self.run)
        view.stop_clicked.connect(controller.stop_robustness)
        view.export_clicked.connect(self.export_dialog)
        controller.robustness_progress.connect(view.show_evals)
        controller.robustness_finished.connect(self.on_finished)
        controller.robustness_failed.connect(self.on_failed)
        explorer.state_changed.connect(self.suggest_knob)

    @Slot(object)
    def suggest_knob(self, state=None) -> None:
        """The view's knob follows the network a study would evaluate (what it was trained against), until the
        user picks one (a new finished, clicked or imported network; live frames are skipped)."""
        if state is not None and getattr(state, "live", False):
            return
        try:
            target = self.target()
        except ValueError:
            return
        if target.config is not None:
            self.view.suggest(target.config.device)

    # --- which network --------------------------------------------------------------------------------------
    def _from_point(self, point) -> RobustnessTarget:
        from engine.config.run_config import RunConfig

        cfg = RunConfig.from_dict(point.row.config)
        data_dir = cfg.data_dir or self.datasets.data_dir_for(cfg.dataset)
        return RobustnessTarget(point.network, cfg, f"run #{point.id}: {self.runs.describe(cfg)}", cfg.dataset,
                                data_dir)

    def _from_import(self, imp) -> RobustnessTarget:
        ds = self.runs.controls.dataset()  # as the import was evaluated: on the current dataset
        return RobustnessTarget(imp.network, imp.config, f"imported {Path(imp.path).name}", ds,
                                self.datasets.data_dir_for(ds))

    def target(self) -> RobustnessTarget:
        """The network to study (see the module's docstring); ValueError in one sentence when there is none."""
        pinned = self.explorer.pinned
        imp = self.files.imported
        has_import = imp is not None and getattr(imp, "network", None) is not None
        if pinned is not None and pinned.network is not None:
            target = self._from_point(pinned)
        elif has_import and not self.explorer.follow_live and self.explorer.state is imp.state:
            target = self._from_import(imp)  # an imported file on display (pinned as itself or as its point)
        elif has_import and pinned is not None and pinned.source == "import" and pinned.state is imp.state:
            target = self._from_import(imp)
        else:
            last = next((p for p in reversed(self.session.points) if p.network is not None), None)
            if last is not None:
                target = self._from_point(last)
            elif has_import:
                target = self._from_import(imp)
            else:
                raise ValueError(NO_NETWORK)
        if not getattr(target.network, "is_rf", False):
            name = model_label(target.config.model) if target.config is not None else "this network"
            raise ValueError(f"Robustness needs a trained RF network; {target.label.split(':')[0]} is a {name} "
                             f"network without resonator chains.")
        return target

    # --- running ----------------------------------------------------------------------------------------------
    def _error(self, message: str) -> bool:
        self.last_error = message
        self.status(message, "error")
        if not self.view.curves:
            self.view.set_note(message)
        return False

    @Slot()
    def run(self) -> bool:
        """Start a study with the view's knob, values and chips on the network to study. False (and one sentence
        on the status line) when it cannot start."""
        from engine.nets.hardware import parse_knob_values

        if self.controller.robustness_busy:
            return self._error("A robustness study is running already; stop it first.")
        try:
            target = self.target()
        except ValueError as exc:
            return self._error(str(exc))
        knob = self.view.knob()
        try:
            values = parse_knob_values(knob, self.view.engine_values_text())
        except ValueError as exc:
            text = str(exc)
            if text.startswith("--values "):
                text = "the field " + text[len("--values "):]
            return self._error(f"Invalid robustness values: {text}.")
        fixed = self.view.fixed()
        request = RobustnessRequest(model=target.network, knob=knob, values=tuple(values),
                                    repeats=self.view.repeats(), seed=0, config=target.config, fixed=fixed)
        if not self.controller.start_robustness(request, target.dataset, target.data_dir):
            return self._error("The robustness study could not be started (the window is closing).")
        self.last_error = None
        label = target.label
        if fixed:
            label += ", " + ("calibrated" if fixed.get("calibrated") else "uncalibrated") + " chips"
        self.view.begin(knob, values, request.repeats, label)
        self.view.set_busy(True)
        self._started = time.monotonic()
        self.status(f"Robustness of {target.label}: {len(values)} value(s) × {request.repeats} chip(s) in the "
                    f"background…", "busy")
        return True

    @Slot(object)
    def on_finished(self, out: dict) -> None:
        self.view.finish(out.get("evals", []), cancelled=bool(out.get("cancelled")))
        if not out.get("cancelled"):
            self.status(f"Robustness study finished: {len(out.get('evals', []))} evaluation(s) in "
                        f"{time.monotonic() - self._started:.1f} s.", "ok")

    @Slot(str)
    def on_failed(self, message: str) -> None:
        self.view.finish(self.controller.robustness_evals, cancelled=True)
        self.last_error = message
        if not any(c.n_evals for c in self.view.curves):
            self.view.set_note(f"Robustness study failed: {message}")

    # --- export -----------------------------------------------------------------------------------------------
    @Slot()
    def export_dialog(self) -> None:
        if not self.view.rows():
            self.status("No robustness results to export yet.", "warn")
            return
        path = dialogs.save_file(self.parent_widget, "Export robustness results", "robustness.csv", "CSV (*.csv)")
        if path:
            self.export_csv(path)

    def export_csv(self, path) -> Optional[Path]:
        """Write the view's rows (study, knob, value, mean, std, n, accuracies) to a CSV file."""
        from engine.core.tables import write_csv

        try:
            out = write_csv(path, ["study", "knob", "value", "mean", "std", "n", "accuracies"], self.view.rows())
        except OSError as exc:
            dialogs.critical(self.parent_widget, "Export failed", f"The robustness rows could not be written to "
                                                                  f"{path}:\n\n{exc}")
            self.status(f"Export failed: {exc}", "error")
            return None
        self.status(f"Exported the robustness rows to {Path(out).name}.", "ok")
        return Path(out)
