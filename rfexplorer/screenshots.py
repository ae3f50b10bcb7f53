"""Capture the main window and each view as PNGs, offscreen: ``python -m rfexplorer.screenshots``.

Runs a few short trainings on the embedded MNIST subset (baselines for the accuracy-vs-sparsity plot, then
RF with K = 10 for 3 epochs), waits for them, and writes the PNGs to ``$SCREENSHOTS_DIR`` (default
``screenshots/``). It never touches the user's settings.
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

os.environ["QT_QPA_PLATFORM"] = "offscreen"  # before any Qt import

#: (model, K, epochs) run before the featured RF run, so the sparsity view has something to compare.
CONTEXT_RUNS = (("dense", 784, 3), ("random", 10, 3), ("rigl", 10, 3), ("prune", 10, 3), ("rf-input", 10, 3))
FEATURED = ("rf", 10, 3)


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
    window.start_run_from_controls()
    loop.exec()
    timer.stop()
    c.run_finished.disconnect(done)
    c.run_failed.disconnect(failed)
    return outcome["ok"]


def _settle(app, ms: int = 250) -> None:
    end = time.monotonic() + ms / 1000
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)


def main(argv=None) -> int:
    import torch

    from .app import torch_threads

    torch.set_num_threads(torch_threads())
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from engine.config import RunConfig

    from . import theme
    from .main_window import MainWindow, save_widget_png

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
        _settle(app)
        if args.sweep and not window.import_results(args.sweep):
            window.close()
            return 1
        base = RunConfig(dataset="mnist-mini")
        for model, k, epochs in CONTEXT_RUNS:
            if not _run_and_wait(app, window, base.with_(model=model, resonators_per_chain=k, epochs=epochs)):
                window.close()
                return 1
        model, k, epochs = FEATURED
        ok = _run_and_wait(app, window, base.with_(model=model, resonators_per_chain=k, epochs=epochs))
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
