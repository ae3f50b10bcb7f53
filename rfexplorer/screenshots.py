"""Capture the main window and each view as PNGs, offscreen: ``python -m rfexplorer.screenshots``.

Runs a few short trainings on the embedded MNIST subset (baselines for the accuracy-vs-sparsity plot, then
RF with K = 10 and the app's default epochs), waits for them, and writes the PNGs to ``$SCREENSHOTS_DIR``
(default ``screenshots/``). It never touches the user's settings.
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

os.environ["QT_QPA_PLATFORM"] = "offscreen"  # before any Qt import

#: (model, K, epochs) run before the featured RF run, so the sparsity view has something to compare (K is
#: ignored by models that use every input).
CONTEXT_RUNS = (("dense", 10, 3), ("random", 10, 3), ("rigl", 10, 3), ("prune", 10, 3), ("rf-input", 10, 3))
#: (model, K, epochs): None = the app's default for the dataset
FEATURED = ("rf", 10, None)


def _run_and_wait(app, window, cfg, timeout_s: float = 300.0) -> bool:
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    outcome = {"ok": False}

    def done(*_):
        outcome["ok"] = True
        loop.quit()

    def failed(msg):
        print(f"run failed: {msg}", file=sys.stderr)
        loop.quit()

    c = window.controller
    c.run_finished.connect(done)
    c.run_failed.connect(failed)
    timer = QTimer()
    timer.setSingleShot(True)
    timer.timeout.connect(loop.quit)
    timer.start(int(timeout_s * 1000))
    window.controls.set_config(cfg)
    window.runs.start_from_controls()
    loop.exec()
    timer.stop()
    c.run_finished.disconnect(done)
    c.run_failed.disconnect(failed)
    return outcome["ok"]


def _settle(app, ms: int = 250) -> None:
    """Run the event loop for ``ms`` (never QTest.qWait, which keeps the interpreter lock)."""
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()


def _wait_ready(app, window, timeout_s: float = 60.0) -> bool:
    """Wait until the dataset is loaded and the first network is on display."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if window.datasets.info is not None and window.explorer.state is not None:
            return True
        _settle(app, 50)
    return False


def main(argv=None) -> int:
    import torch

    from .app import torch_threads

    torch.set_num_threads(torch_threads())
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from engine.config import RunConfig

    from . import theme
    from .images import save_widget_png
    from .main_window import MainWindow

    import argparse

    ap = argparse.ArgumentParser(prog="python -m rfexplorer.screenshots",
                                 description="Render the main window after short training runs to PNGs.")
    ap.add_argument("--sweep", help="a sweep.json to import first (File > Import sweep results), so the accuracy "
                                    "view shows it behind the new runs")
    args = ap.parse_args(argv)
    out = Path(os.environ.get("SCREENSHOTS_DIR", "screenshots"))
    out.mkdir(parents=True, exist_ok=True)
    app = QApplication.instance() or QApplication([])
    theme.apply_theme(app)
    with tempfile.TemporaryDirectory() as tmp:
        settings = QSettings(str(Path(tmp) / "settings.ini"), QSettings.IniFormat)
        window = MainWindow(settings)
        window.resize(1400, 900)
        window.show()
        if not _wait_ready(app, window):
            print("the dataset did not load", file=sys.stderr)
            window.close()
            return 1
        _settle(app)
        app_default_epochs = window.controls.epochs_spin.value()  # before the runs below set their own
        if args.sweep and not window.files.import_results(args.sweep):
            window.close()
            return 1
        base = RunConfig(dataset="mnist-mini")
        for model, k, epochs in CONTEXT_RUNS:
            if not _run_and_wait(app, window, base.with_(model=model, resonators_per_chain=k, epochs=epochs)):
                window.close()
                return 1
        model, k, epochs = FEATURED
        ok = _run_and_wait(app, window, base.with_(model=model, resonators_per_chain=k,
                                                   epochs=app_default_epochs if epochs is None else epochs))
        _settle(app, 400)
        shots = {"main_window.png": window, "spectrum.png": window.spectrum, "assignment.png": window.assignment,
                 "sparsity.png": window.sparsity, "history.png": window.history}
        for name, widget in shots.items():
            save_widget_png(widget, out / name)
        window.assignment.set_mode(1)
        _settle(app, 200)
        save_widget_png(window.assignment, out / "assignment_maps.png")
        window.assignment.set_mode(0)
        window.close()
        _settle(app, 50)
    print(f"wrote {len(shots) + 1} screenshots to {out}/")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
