"""The File menu's actions: export and import topologies, export and import results, save views as PNG.

Topology files are written by :func:`engine.io.topology.export_result` and read (and their network rebuilt) by
:func:`engine.io.topology.load_topology` in the training thread, which also evaluates an imported network on
the current dataset. Result tables are written with the engine's one CSV writer
(:func:`engine.experiments.sweep.runner.rows_csv_text`) and the sweep JSON
(:func:`engine.experiments.sweep.runner.sweep_document`, averaged by
:func:`engine.io.results.aggregate`). Every error becomes a dialog and a status line, never a crash.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional

from PySide6.QtCore import QObject, Slot

from engine.io.results import ResultRow

from . import dialogs
from .images import save_widget_png

if TYPE_CHECKING:  # the collaborators' types, for the annotations only: no import at run time, so no cycle
    from PySide6.QtWidgets import QWidget

    from .controller import Controller
    from .datasets import DatasetPresenter
    from .explorer import ExplorerModel
    from .runs import RunPresenter
    from .session import Session


@dataclass
class _Import:
    """What the session row of an imported topology needs (its metadata), and its network (robustness
    studies send a copy of it to the engine process)."""

    path: str
    state: object
    recorded_accuracy: Optional[float]
    recorded_dataset: str
    row: dict
    network: object = None
    config: object = None


class FileActions(QObject):
    def __init__(self, parent_widget: QWidget, controller: Controller, session: Session, explorer: ExplorerModel,
                 runs: RunPresenter, datasets: DatasetPresenter, status: Callable[[str, str], None]) -> None:
        super().__init__(parent_widget)
        self.parent_widget = parent_widget
        self.controller = controller
        self.session = session
        self.explorer = explorer
        self.runs = runs
        self.datasets = datasets
        self.status = status
        self.png_targets: dict = {}  #: menu name -> widget (filled by the main window)
        self.imported: Optional[_Import] = None  #: the last topology file read
        self.last_import_accuracy: Optional[float] = None
        #: (import, state, pinned point, follow live) before the last import was shown, until it is evaluated
        self._before: Optional[tuple] = None

    # --- topology export ----------------------------------------------------------------------------------
    @Slot()
    def export_topology_dialog(self) -> None:
        point = self.runs.export_target()
        if point is None:
            dialogs.information(self.parent_widget, "Nothing to export",
                                "Train a model first: the topology of the last finished run (or of the run "
                                "clicked in the accuracy plot) is exported.")
            return
        r = point.row
        default = f"{r.model}-K{r.resonators_per_chain}-seed{r.seed}.json"
        path = dialogs.save_file(self.parent_widget, "Export topology", default, "Topology (*.json)")
        if path:
            self.export_topology(path, point)

    def export_topology(self, path: str | os.PathLike, point=None) -> Optional[tuple]:
        """Write the topology JSON (and its CSV sibling) of a session run (default: the export target).
        Errors become a dialog; returns the paths written or None."""
        from engine.io.topology import export_result

        point = point if point is not None else self.runs.export_target()
        if point is None:
            return None
        path = Path(path)
        if path.suffix.lower() != ".json":
            csv = path.suffix.lower() == ".csv"
            path = path.with_suffix(".json") if csv else path.with_suffix(path.suffix + ".json")
        result = point.run_result()
        try:
            paths = export_result(result, path)
        except Exception as exc:  # noqa: BLE001 - reported, never a crash
            dialogs.critical(self.parent_widget, "Export failed",
                             f"The topology could not be written to {path}:\n\n{exc}")
            self.status(f"Export failed: {exc}", "error")
            return None
        paths = tuple(p for p in paths if p)
        names = " and ".join(Path(p).name for p in paths)
        self.status(f"Exported {self.runs.describe(result.config)} to {names}.", "ok")
        return paths

    # --- topology import ----------------------------------------------------------------------------------
    @Slot()
    def import_topology_dialog(self) -> None:
        path = dialogs.open_file(self.parent_widget, "Import topology", "Topology (*.json);;All files (*)")
        if path:
            self.import_topology(path)

    def import_topology(self, path: str | os.PathLike) -> bool:
        """Read a topology file in the worker, show its network and evaluate it on the current dataset.
        topology_imported then evaluation_finished (or import_failed / evaluation_failed) follow."""
        ds = self.runs.controls.dataset()
        self.controller.import_topology(str(path), ds, self.datasets.data_dir_for(ds))
        return True

    @Slot(object, object)
    def on_imported(self, topo, state) -> None:
        """A topology file was read and its network rebuilt (in the worker): show it, keep its metadata. A network
        of another shape than the dataset's is not shown (its evaluation fails with a dialog, and the views keep
        the network they showed, never its resonators over this dataset's comb)."""
        info = self.datasets.info
        if info is not None and (int(topo.n_inputs), int(topo.n_classes)) != (info.n_inputs, info.n_classes):
            self._before = None
            return
        self._before = (self.imported, self.explorer.state, self.explorer.pinned, self.explorer.follow_live)
        cfg = topo.config
        self.imported = _Import(path=str(topo.source), state=state, recorded_accuracy=topo.recorded_accuracy,
                                recorded_dataset=topo.dataset, row=dict(
                                    topo.metrics, model=topo.model_name, resonators_per_chain=cfg.resonators_per_chain,
                                    n_inputs=topo.n_inputs, n_classes=topo.n_classes, seed=cfg.seed,
                                    budget=cfg.budget, epochs=cfg.epochs, config=cfg.to_dict(),
                                    versions=dict(topo.versions), history=[list(h) for h in topo.history]),
                                network=topo.model, config=cfg)
        self.explorer.pin(state)

    @Slot(str, str)
    def on_import_failed(self, message: str, path: str) -> None:
        name = Path(path).name
        text = message if name in message else f"{name}: {message}"
        dialogs.warning(self.parent_widget, "Cannot import topology", text)
        self.status(f"Import failed: {message}", "error")

    @Slot(object, float)
    def on_evaluated(self, path, accuracy: float) -> None:
        """The imported network's accuracy on the current dataset becomes a point of the session."""
        from engine.config.run_config import remaining_synapses_pct, removed_synapses_pct

        imp = self.imported
        if imp is None or Path(imp.path) != Path(path):
            return
        self._before = None
        ds = self.runs.controls.dataset()
        row = dict(imp.row)
        k, n = int(row["resonators_per_chain"]), int(row["n_inputs"])
        row.update(test_accuracy=float(accuracy), dataset=ds, error=None, cancelled=False,
                   removed_synapses_pct=round(removed_synapses_pct(min(k, n), n), 4),
                   remaining_synapses_pct=round(remaining_synapses_pct(min(k, n), n), 4))
        self.session.add(ResultRow.from_dict(row), "import", state=imp.state)
        note = (f" (recorded at export: {100 * imp.recorded_accuracy:.2f} % on {imp.recorded_dataset})"
                if imp.recorded_accuracy is not None else "")
        self.status(f"Imported {Path(path).name}: {100 * accuracy:.2f} % on {Path(ds).name}{note}.", "ok")
        self.last_import_accuracy = accuracy

    @Slot(str)
    def on_evaluation_failed(self, message: str) -> None:
        """The imported network cannot run on this dataset: the views go back to what they showed before it."""
        before, self._before = self._before, None
        if before is not None and self.imported is not None and self.explorer.state is self.imported.state:
            self.imported, state, pinned, follow = before
            if state is not None and follow:
                self.explorer.show_preview(state)
            elif state is not None:
                self.explorer.pin(state, pinned)
        dialogs.warning(self.parent_widget, "Cannot evaluate the topology", message)
        self.status(f"Import failed: {message} The views keep the network shown before.", "error")

    # --- results tables -----------------------------------------------------------------------------------
    @Slot()
    def export_results_dialog(self) -> None:
        if not self.session.points:
            dialogs.information(self.parent_widget, "Nothing to export",
                                "No results yet: run a sweep or train a model.")
            return
        path = dialogs.save_file(self.parent_widget, "Export sweep results", "sweep-results.csv", "CSV (*.csv)")
        if path:
            self.export_results(path)

    def export_results(self, path: str | os.PathLike) -> bool:
        """Write every session result as CSV (the engine's writer, atomically) and the sweep JSON next to it
        (same name, .json), which ``python -m rfexplorer.figures`` renders."""
        from engine.core.files import dumps_json
        from engine.core.outputs import atomic_write_files
        from engine.experiments.sweep.runner import rows_csv_text, sweep_document

        path = Path(path)
        if path.suffix.lower() != ".csv":
            path = path.with_suffix(".csv")
        rows = self.session.rows()
        json_path = path.with_suffix(".json")
        try:
            csv_text = rows_csv_text(rows)
            json_text = dumps_json(sweep_document(rows))
            # both or neither; the JSON, which figures read, is replaced last
            atomic_write_files([(path, csv_text.encode("utf-8")), (json_path, json_text.encode("utf-8"))])
        except Exception as exc:  # noqa: BLE001 - reported in a dialog, never a crash
            dialogs.critical(self.parent_widget, "Export failed",
                             f"The results could not be written to {path}:\n\n{exc}")
            self.status(f"Export failed: {exc}", "error")
            return False
        self.status(f"Wrote {len(rows)} result(s) to {path.name} and {json_path.name}.", "ok")
        return True

    @Slot()
    def import_results_dialog(self) -> None:
        path = dialogs.open_file(self.parent_widget, "Import sweep results",
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
            dialogs.warning(self.parent_widget, "Cannot import sweep results", str(exc))
            self.status(f"Import failed: {exc}", "error")
            return False
        added = 0
        for row in rows:
            try:
                r = ResultRow.from_dict(row)
            except (ValueError, TypeError):
                continue
            if not r.ok or not isinstance(r.resonators_per_chain, int):
                continue
            self.session.add(r, "sweep")
            added += 1
        self.status(f"Imported {added} run(s) from {Path(path).name}.", "ok" if added else "warn")
        return added > 0

    # --- pictures -----------------------------------------------------------------------------------------
    @Slot()
    def save_png_action(self) -> None:
        name = self.sender().data()
        default = name.lower().replace(" ", "-") + ".png"
        path = dialogs.save_file(self.parent_widget, f"Save {name} as PNG", default, "PNG image (*.png)")
        if path:
            self.save_png(self.png_targets[name], path)

    def save_png(self, widget, path: str | os.PathLike) -> bool:
        path = Path(path)
        if path.suffix.lower() != ".png":
            path = path.with_suffix(".png")
        try:
            save_widget_png(widget, path)
        except Exception as exc:  # noqa: BLE001 - reported in a dialog, never a crash
            dialogs.critical(self.parent_widget, "Save failed", f"The image could not be written to {path}:\n\n{exc}")
            return False
        self.status(f"Saved {path.name}.", "ok")
        return True
