"""Capture the main window and each view as PNGs, offscreen: ``python -m rfexplorer.screenshots``.

The window is 1280 x 720 (a laptop screen). In order: the first paint (before the dataset has loaded); a few
short trainings on the embedded MNIST subset (baselines for the accuracy-vs-sparsity plot, then RF with K = 10
and the app's default epochs) and every view of it, with a robustness study (the view's default knob for that
network, 3 chips each); the embedded drone set (non-image inputs, named classes); a short multilayer run on it
(256-32-10) and every view of each layer, the network diagram and its robustness study; and the untrained
preview of a network with 100 hidden chains (the input maps of a large layer). The PNGs go to
``$SCREENSHOTS_DIR`` (default ``screenshots/``). It never touches the user's settings or run store (its runs go to
a throwaway store).
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
SIZE = (1280, 720)  #: the window's size (a laptop's screen)
#: the multilayer run: hidden sizes and epochs on the drone set (256-32-10)
MULTILAYER = ((32,), 15)
LARGE_HIDDEN = 100  #: hidden chains of the preview whose input maps are shot


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


def _robustness_and_wait(window, timeout_s: float = 300.0) -> bool:
    """A robustness study of the last trained network (the view's default knob and values for it), started
    from the Robustness tab's Run button."""
    c = window.controller
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


def _shoot(app, out: Path, shots: dict) -> list:
    """Save each widget of ``shots`` (file name -> widget, or (widget, callable run first)) as a PNG."""
    from .images import save_widget_png

    written = []
    for name, what in shots.items():
        widget, before = what if isinstance(what, tuple) else (what, None)
        if before is not None:
            before()
            _settle(app, 250)
        save_widget_png(widget, out / name)
        written.append(name)
    return written


def _single_layer(app, window, out: Path, base) -> tuple[bool, list]:
    """Baselines and the featured RF run on the MNIST subset; every view of it and its robustness study."""
    app_default_epochs = window.controls.epochs_spin.value()  # before the runs below set their own
    for model, k, epochs in CONTEXT_RUNS:
        if not _run_and_wait(app, window, base.with_(model=model, resonators_per_chain=k, epochs=epochs)):
            return False, []
    model, k, epochs = FEATURED
    ok = _run_and_wait(app, window, base.with_(model=model, resonators_per_chain=k,
                                               epochs=app_default_epochs if epochs is None else epochs))
    _settle(app, 400)
    a = window.assignment
    written = _shoot(app, out, {"main_window.png": window, "spectrum.png": window.spectrum, "assignment.png": a,
                                "sparsity.png": window.sparsity, "history.png": window.history,
                                "assignment_maps.png": (a, lambda: a.set_mode(1))})
    a.set_mode(0)
    window.show_robustness()
    ok = _robustness_and_wait(window) and ok
    _settle(app, 300)
    written += _shoot(app, out, {"robustness.png": window.robustness})
    return ok, written


def _drones(app, window, out: Path, base) -> tuple[bool, list]:
    """The drone set (non-image inputs, named classes): a single-layer run, then a multilayer one (256-32-10)."""
    window.controls.select_dataset("drones")
    if not _wait_ready(app, window) or not _wait_for(app, lambda: window.datasets.info.name == "drones"):
        return False, []
    epochs = window.controls.epochs_spin.value()
    ok = _run_and_wait(app, window, base.with_(dataset="drones", model="rf", resonators_per_chain=10, epochs=epochs))
    _settle(app, 300)
    a, sp = window.assignment, window.spectrum
    written = _shoot(app, out, {"drones_spectrum.png": sp, "drones_assignment.png": a,
                                "drones_assignment_maps.png": (a, lambda: a.set_mode(1))})
    a.set_mode(0)
    hidden, ml_epochs = MULTILAYER
    ok = _run_and_wait(app, window, base.with_(dataset="drones", model="rf", resonators_per_chain=10, hidden=hidden,
                                               layer_resonators=(10,), epochs=ml_epochs)) and ok
    _settle(app, 400)
    ex = window.explorer
    written += _shoot(app, out, {
        "multilayer_main_window.png": window, "multilayer_network.png": window.network,
        "multilayer_history.png": window.history, "multilayer_sparsity.png": window.sparsity,
        "multilayer_spectrum_layer1.png": sp, "multilayer_assignment_layer1.png": a,
        "multilayer_assignment_maps_layer1.png": (a, lambda: a.set_mode(1)),
        "multilayer_assignment_maps_layer2.png": (a, lambda: ex.select_layer(1)),
        "multilayer_assignment_layer2.png": (a, lambda: a.set_mode(0)),
        "multilayer_spectrum_layer2.png": sp})
    ex.select_layer(0)
    window.show_robustness()
    ok = _robustness_and_wait(window) and ok
    _settle(app, 300)
    written += _shoot(app, out, {"multilayer_robustness.png": window.robustness})
    return ok, written


def _large_layer(app, window, out: Path) -> tuple[bool, list]:
    """The untrained preview of a network with LARGE_HIDDEN hidden chains on the MNIST subset: its input maps."""
    c = window.controls
    c.select_dataset("mnist-mini")
    if not _wait_for(app, lambda: window.datasets.info.name == "mnist-mini"):
        return False, []
    c.hidden_edit.setText(str(LARGE_HIDDEN))
    c.layer_k_edit.setText("")
    c.hidden_edit.editingFinished.emit()
    if not _wait_for(app, lambda: window.explorer.state is not None and window.explorer.state.n_chains == LARGE_HIDDEN
                     and not window.controller.busy):
        return False, []
    window.explorer.select_layer(0)
    a = window.assignment
    written = _shoot(app, out, {"large_layer_assignment.png": a,
                                "large_layer_assignment_maps.png": (a, lambda: a.set_mode(1))})
    a.set_mode(0)
    c.hidden_edit.setText("")
    return True, written


def _wait_for(app, condition, timeout_s: float = 120.0) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if condition():
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
    written: list = []
    with tempfile.TemporaryDirectory() as tmp:
        settings = QSettings(str(Path(tmp) / "settings.ini"), QSettings.IniFormat)
        os.environ["RFEXPLORER_STORE"] = str(Path(tmp) / "runs.sqlite")  # a fresh run store, never the user's
        window = MainWindow(settings)
        window.resize(*SIZE)
        window.show()
        app.processEvents()
        save_widget_png(window, out / "first_paint.png")  # before the dataset has loaded
        written.append("first_paint.png")
        if not _wait_ready(app, window):
            print("the dataset did not load", file=sys.stderr)
            window.close()
            return 1
        _settle(app)
        ok = not args.sweep or window.files.import_results(args.sweep)
        base = RunConfig(dataset="mnist-mini")
        for part in (lambda: _single_layer(app, window, out, base), lambda: _drones(app, window, out, base),
                     lambda: _large_layer(app, window, out)):
            if not ok:
                break
            ok, more = part()
            written += more
        window.results_tabs.setCurrentWidget(window.sparsity)
        window.close()
        _settle(app, 50)
    print(f"wrote {len(written)} screenshots to {out}/: {', '.join(written)}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
