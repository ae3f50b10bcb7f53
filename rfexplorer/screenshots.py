"""Capture the main window and each view as PNGs, offscreen: ``python -m rfexplorer.screenshots``.

Runs a few short trainings on the embedded MNIST subset (baselines for the accuracy-vs-sparsity plot, then
RF with K = 10 and the app's default epochs), waits for them, then a robustness study of the RF network
(frequency jitter, the view's default values, 3 chips each), and writes the PNGs to ``$SCREENSHOTS_DIR``
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


def _start_and_wait(start, finished, failed, what: str, timeout_s: float = 300.0, ok=lambda *_: True) -> bool:
    """Call ``start()`` (False: nothing started) and run the event loop until the ``finished`` or ``failed``
    signal (or the timeout); True when ``finished`` came and ``ok`` accepts its arguments."""
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    outcome = {"ok": False}

    def done(*args):
        outcome["ok"] = bool(ok(*args))
        loop.quit()

    def fail(msg):
        print(f"{what} failed: {msg}", file=sys.stderr)
        loop.quit()

    finished.connect(done)
    failed.connect(fail)
    timer = QTimer()
    timer.setSingleShot(True)
    timer.timeout.connect(loop.quit)
    timer.start(int(timeout_s * 1000))
    if start() is not False:
        loop.exec()
    else:
        print(f"{what} did not start", file=sys.stderr)
    timer.stop()
    finished.disconnect(done)
    failed.disconnect(fail)
    return outcome["ok"]


def _run_and_wait(app, window, cfg, timeout_s: float = 300.0) -> bool:
    c = window.controller

    def start():
        window.controls.set_config(cfg)
        return window.runs.start_from_controls()

    return _start_and_wait(start, c.run_finished, c.run_failed, "run", timeout_s)


def _robustness_and_wait(window, knob: str = "freq_jitter_lw", timeout_s: float = 300.0) -> bool:
    """A robustness study of the last trained network, started from the Robustness tab's Run button."""
    c = window.controller
    window.robustness.set_knob(knob)
    return _start_and_wait(window.robustness_runs.run, c.robustness_finished, c.robustness_failed,
                           "robustness study", timeout_s, ok=lambda out: not out.get("cancelled"))


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

    from engine.config.run_config import RunConfig

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
        window.show_robustness()
        ok = _robustness_and_wait(window) and ok
        _settle(app, 300)
        save_widget_png(window.robustness, out / "robustness.png")
        window.results_tabs.setCurrentWidget(window.sparsity)
        window.close()
        _settle(app, 50)
    print(f"wrote {len(shots) + 2} screenshots to {out}/")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
