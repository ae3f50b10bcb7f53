"""Memory of a long session: does the app's resident memory grow with the number of finished runs?

    python benchmarks/bench_app_memory.py [--runs 50] [--epochs N] [--json out.json]

Runs ``--runs`` consecutive trainings in the real window (offscreen), each started with the Train button on
the embedded MNIST subset, model rf, K = 10 (epochs: the app's default for the subset unless ``--epochs``),
waiting for each with an event loop (never QTest.qWait). The session keeps every run (its result row, its
display state and its finished model, for export), so some growth is expected; the training state must not
be kept. Reported: resident memory (VmRSS) after run 1 and after the last run, and the growth between them, of
the GUI process and of the window's engine process (rfexplorer/engine_process.py, where the runs train) and of
both together. Target: growth of both together <= 50 MB over 50 runs. Exit status 1 if the target is missed.

The allocator keeps freed memory unless asked to give it back; the app asks after every run
(rfexplorer.memory.release_free_memory). Without that, 50 runs measured +91 MB of memory held by the allocator
although the session itself grows by well under 0.2 MB per run.

Each figure is the app's settled memory once a run has finished: the smallest of ten readings over one second
of idle event loop (after a garbage collection in the GUI thread, as the app's own collector does). A single
reading right after a run sometimes lands on a transient peak, 50-90 MB of freed buffers the allocator has
not handed back yet, which is gone a moment later; the peaks are reported too.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["RFEXPLORER_STORE"] = "off"  # benchmarks record no runs in the run store (engine.io.store)

MAX_GROWTH_MB = 50.0
SETTLE_MS = 1000  #: idle time after each run over which memory is read
SETTLE_READINGS = 10


def rss_mb(pid="self") -> float:
    """Resident set size of a process (MB; this one by default), from /proc/PID/status."""
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError(f"VmRSS not found in /proc/{pid}/status")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--epochs", type=int, default=None, help="epochs per run (default: the app's default)")
    ap.add_argument("--json", help="write the measurements to this file")
    args = ap.parse_args(argv)

    from rfexplorer.app import configure_runtime

    configure_runtime()
    from PySide6.QtCore import QEventLoop, QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    from rfexplorer import theme
    from rfexplorer.main_window import MainWindow

    app = QApplication.instance() or QApplication([])
    theme.apply_theme(app)
    settings = QSettings(os.path.join(tempfile.mkdtemp(), "bench.ini"), QSettings.Format.IniFormat)
    win = MainWindow(settings=settings)
    win.resize(1400, 900)
    win.show()

    def wait_for(signal, timeout_s: float) -> list:
        """Run an event loop until ``signal`` fires (its arguments) or the timeout (None)."""
        got: list = []
        loop = QEventLoop()

        def fired(*a):
            got.append(a)
            loop.quit()

        signal.connect(fired)
        QTimer.singleShot(int(timeout_s * 1000), loop.quit)
        loop.exec()
        signal.disconnect(fired)
        return got[0] if got else None

    def settle(ms: int) -> None:
        loop = QEventLoop()
        QTimer.singleShot(ms, loop.quit)
        loop.exec()

    if win.explorer.state is None and wait_for(win.explorer.state_changed, 60) is None:
        print("the window did not show its first network", file=sys.stderr)
        return 2
    c = win.controls
    c.select_dataset("mnist-mini")
    c.set_model("rf")
    c.set_k(10)
    if args.epochs is not None:
        c.epochs_spin.setValue(args.epochs)
    epochs = c.epochs_spin.value()

    samples, peaks, seconds, accs = [], [], [], []
    gui_samples, engine_samples = [], []
    engine_pid = win.controller.engine.pid
    failures: list = []
    win.controller.run_failed.connect(failures.append)
    t_start = time.monotonic()
    for i in range(args.runs):
        c.train_button.click()  # what a person does
        got = wait_for(win.controller.run_finished, 300)
        if got is None:
            print(f"run {i + 1} did not finish: {failures[-1] if failures else 'timeout'}", file=sys.stderr)
            win.close()
            return 2
        result = got[0]
        seconds.append(result.train_seconds)
        accs.append(result.test_accuracy)
        del got, result
        settle(150)  # let the views draw the final state
        gc.collect()  # in the GUI thread, as the app's own collector does
        if win.controller.engine.pid != engine_pid:
            print("the engine process was restarted: its memory cannot be followed", file=sys.stderr)
            return 2
        readings = []
        for _ in range(SETTLE_READINGS):
            readings.append((rss_mb(), rss_mb(engine_pid)))
            settle(SETTLE_MS // SETTLE_READINGS)
        totals = [g + e for g, e in readings]
        best = readings[totals.index(min(totals))]
        gui_samples.append(best[0])
        engine_samples.append(best[1])
        samples.append(min(totals))
        peaks.append(max(totals))
        print(f"run {i + 1:3d}: {accs[-1] * 100:5.2f} % in {seconds[-1]:.2f} s, RSS {samples[-1]:7.1f} MB "
              f"(GUI {best[0]:.1f} + engine {best[1]:.1f}; peak {peaks[-1]:.1f})", flush=True)
    wall = time.monotonic() - t_start
    points = len(win.session.points)
    win.close()
    settle(50)
    growth = samples[-1] - samples[0]
    per_run = growth / max(1, len(samples) - 1)
    ok = growth <= MAX_GROWTH_MB
    print(f"app memory: {args.runs} finished runs (mnist-mini, rf, K = 10, {epochs} epochs), {wall:.0f} s, "
          f"{points} session points")
    print(f"  resident memory after run 1: {samples[0]:.1f} MB; after run {args.runs}: {samples[-1]:.1f} MB "
          f"(GUI process {gui_samples[-1] - gui_samples[0]:+.1f} MB, engine process "
          f"{engine_samples[-1] - engine_samples[0]:+.1f} MB)")
    print(f"  growth: {growth:+.1f} MB ({per_run * 1024:+.0f} kB per run); largest transient peak "
          f"{max(peaks) - samples[0]:+.1f} MB above run 1")
    print(f"  {'PASS' if ok else 'FAIL'}  growth <= {MAX_GROWTH_MB:g} MB")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"runs": args.runs, "epochs": epochs, "rss_mb": samples, "rss_peak_mb": peaks,
                       "gui_rss_mb": gui_samples, "engine_rss_mb": engine_samples,
                       "train_seconds": seconds,
                       "test_accuracy": accs, "growth_mb": growth, "ok": ok}, fh, indent=2)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
