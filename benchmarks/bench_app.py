"""GUI responsiveness while the app trains: event-loop gaps, redraw rate, and the cost of training in the app.

    python benchmarks/bench_app.py [--dataset mnist --data-dir ../shared/data] [--model rf] [--epochs 2]

Targets (issue 4), on this 2-core machine:
- no gap between two GUI event-loop ticks exceeds 100 ms while training runs (QTimer heartbeat every 10 ms);
- the views redraw at >= 10 Hz during training;
- training in the app costs at most 20 % more wall time per epoch than the same run headless.
The window is real (offscreen platform); the run is started through the controller as the Train button does.
Gaps and redraws are counted from the first snapshot (training under way, dataset loaded) to the end.
App and headless runs alternate ``--repeats`` times. The gap is the worst over the app runs; the redraw rate
is their median, and the overhead compares the median app and headless training times (a 2-epoch run lasts
about 2 s, so one pair alone varies by several percent).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import torch  # noqa: E402

MAX_GAP_MS = 100.0
MIN_REDRAW_HZ = 10.0
MAX_OVERHEAD = 0.20


def run_in_app(cfg, data_dir: str | None) -> dict:
    from PySide6.QtCore import QElapsedTimer, QEventLoop, QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    from rfexplorer.main_window import MainWindow

    app = QApplication.instance() or QApplication([])
    settings = QSettings(os.path.join(tempfile.mkdtemp(), "bench.ini"), QSettings.Format.IniFormat)
    win = MainWindow(settings=settings)
    win.resize(1400, 900)
    win.show()
    ready = QEventLoop()  # the window loads its dataset and shows a preview first (worker thread)
    win.explorer.state_changed.connect(ready.quit)
    QTimer.singleShot(60_000, ready.quit)
    ready.exec()

    clock = QElapsedTimer()
    clock.start()
    ticks: list[float] = []
    redraws: list[float] = []
    heartbeat = QTimer()
    heartbeat.setInterval(10)
    heartbeat.timeout.connect(lambda: ticks.append(clock.nsecsElapsed() / 1e6))
    win.views_updated.connect(lambda: redraws.append(clock.nsecsElapsed() / 1e6))
    done: dict = {}
    loop = QEventLoop()

    def finished(result):
        done["result"] = result
        done["end_ms"] = clock.nsecsElapsed() / 1e6
        loop.quit()

    def failed(message):
        done["error"] = message
        loop.quit()

    started: dict = {}  # training proper starts with the first snapshot (after the dataset is loaded)
    win.controller.snapshot_ready.connect(lambda *_: started.setdefault("ms", clock.nsecsElapsed() / 1e6))
    win.controller.run_finished.connect(finished)
    win.controller.run_failed.connect(failed)
    heartbeat.start()
    win.controller.start_run(cfg, data_dir)
    loop.exec()
    heartbeat.stop()
    win.close()
    app.processEvents()
    if "error" in done:
        raise SystemExit(f"the run failed in the app: {done['error']}")
    t0, t1 = started.get("ms", 0.0), done["end_ms"]
    during = [t for t in ticks if t0 <= t <= t1]
    gaps = [b - a for a, b in zip(during, during[1:])]
    n_redraws = sum(1 for t in redraws if t0 <= t <= t1)
    return {"train_seconds": done["result"].train_seconds, "test_accuracy": done["result"].test_accuracy,
            "max_gap_ms": max(gaps) if gaps else float("nan"),
            "p99_gap_ms": sorted(gaps)[int(0.99 * (len(gaps) - 1))] if gaps else float("nan"),
            "redraw_hz": n_redraws / max((t1 - t0) / 1000.0, 1e-9), "window_seconds": (t1 - t0) / 1000.0}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="mnist")
    ap.add_argument("--data-dir", default="../shared/data")
    ap.add_argument("--model", default="rf")
    ap.add_argument("-K", "--resonators-per-chain", type=int, default=10)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3, help="app and headless runs, alternating (default 3)")
    ap.add_argument("--json", help="write the measurements to this file")
    args = ap.parse_args(argv)
    from rfexplorer.app import configure_runtime

    configure_runtime()  # what the app does at start-up (torch threads)
    from engine.config import RunConfig
    from engine.data import load_dataset
    from engine.training import run_training

    cfg = RunConfig(model=args.model, resonators_per_chain=args.resonators_per_chain, dataset=args.dataset,
                    data_dir=args.data_dir, epochs=args.epochs, seed=0)
    ds = load_dataset(args.dataset, args.data_dir)
    run_training(cfg.with_(epochs=1), ds)  # warm-up, so neither measured run pays first-run costs
    app_runs, headless_seconds = [], []
    for _ in range(max(1, args.repeats)):
        app_runs.append(run_in_app(cfg, args.data_dir))
        headless_seconds.append(run_training(cfg, ds).train_seconds)
    app_seconds = [r["train_seconds"] for r in app_runs]
    worst_gap = max(r["max_gap_ms"] for r in app_runs)
    worst_p99 = max(r["p99_gap_ms"] for r in app_runs)
    redraw_hz = statistics.median(r["redraw_hz"] for r in app_runs)
    overhead = statistics.median(app_seconds) / statistics.median(headless_seconds) - 1.0
    checks = {
        f"max event-loop gap <= {MAX_GAP_MS:g} ms": worst_gap <= MAX_GAP_MS,
        f"redraw rate >= {MIN_REDRAW_HZ:g} Hz": redraw_hz >= MIN_REDRAW_HZ,
        f"app overhead <= {MAX_OVERHEAD:.0%}": overhead <= MAX_OVERHEAD,
    }
    seconds = lambda xs: ", ".join(f"{x:.2f}" for x in xs)  # noqa: E731
    print(f"app responsiveness: {args.model} K={args.resonators_per_chain}, {args.dataset}, {args.epochs} epochs, "
          f"{len(app_runs)} app and {len(headless_seconds)} headless runs")
    print(f"  event-loop gap: max {worst_gap:.1f} ms, p99 {worst_p99:.1f} ms (worst run)")
    rates = ", ".join(f"{r['redraw_hz']:.1f}" for r in app_runs)
    print(f"  redraw rate:    {redraw_hz:.1f} Hz (median; all: {rates})")
    print(f"  training time:  app {seconds(app_seconds)} s, headless {seconds(headless_seconds)} s "
          f"(medians: {overhead:+.1%})")
    for name, ok in checks.items():
        print(f"  {'PASS' if ok else 'FAIL'}  {name}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"app_runs": app_runs, "headless_train_seconds": headless_seconds, "overhead": overhead,
                       "checks": checks}, fh, indent=2)
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
