"""The app's two latencies of issue 21 (item 12): closing the window, and the wait before a first run's first step.

    QT_QPA_PLATFORM=offscreen python benchmarks/bench_app_latency.py [--repeats 3] [--pause 5]
                                        [--dataset mnist-mini] [--model rf] [-K 10] [--json FILE]
    QT_QPA_PLATFORM=offscreen python benchmarks/bench_app_latency.py --cold 3 [...]

``--cold N`` launches the app's start-up N times in fresh processes, as ``rfexplorer`` does it, side by side
with the start-up before issue 21's fixes (alternating, so both see the same machine): **as the app now** (the
engine process started first, rfexplorer.app.start_engine_early; the window's start-up objects frozen out of
the garbage collector once it is up, rfexplorer.app.freeze_startup_objects) and **as before** (the engine process
started by the window, the window's objects not frozen; the garbage-collector guard's own freeze of what existed
before the window, rfexplorer.gcguard, is in both).
Each process starts a run the moment its window is ready and reports the wait before the run's first step, then
closes the window mid-run; the launch (process start -> window ready) is timed too.

Each repeat opens two real main windows (offscreen), each with a fresh engine process, as a user would:

- window A: the moment it is ready (dataset loaded, untrained network shown), a long run is started from the
  controls (``runs.start_from_controls()``, as the Train button does): **first run, at once** = from that call
  to the first snapshot with step >= 1 arriving in the GUI. A second run then supersedes it (**next run**: the
  floor, the engine process is warm), and the window is closed while that run trains: **close mid-run**.
- window B: ``--pause`` seconds after it is ready (a user looking at the window and choosing settings), the
  first run is started: **first run, after a pause**; it is stopped, and the idle window is closed:
  **close idle**.

A close is timed from ``window.close()`` to its return, and to the moment the engine process is gone (no
``/proc/<pid>`` entry: exited and reaped) and the pipe-reader thread has stopped.
Targets (issue 21, item 12): close <= 0.5 s, idle and mid-run (until everything is gone); the first run's wait
before its first step <= 0.5 s. Judged on the median over the repeats; the worst repeat is printed too.

The engine process warms torch's optimizer up in the background from its start (rfexplorer.engine_process.
warm_up, 2.5-4 s of CPU on 2 cores), so a first run started at once waits for what is left of it: that line is
printed, with when the warm-up was over (s after the window was ready), but the target is judged after the pause.
``ready`` (window constructed -> network shown) is printed too: the warm-up must not delay it much.
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
os.environ["RFEXPLORER_STORE"] = "off"  # benchmarks record no runs in the run store (engine.io.store)

MAX_CLOSE_S = 0.5
MAX_FIRST_RUN_WAIT_S = 0.5
TIMEOUT_S = 120.0


def wait_until(predicate, timeout_s: float = TIMEOUT_S) -> bool:
    """Run the Qt event loop (the interpreter lock is released while it waits) until ``predicate()``."""
    from PySide6.QtCore import QEventLoop, QTimer

    deadline = time.monotonic() + timeout_s
    loop = QEventLoop()
    poll = QTimer()
    poll.setInterval(2)
    poll.timeout.connect(lambda: (predicate() or time.monotonic() > deadline) and loop.quit())
    if not predicate():
        poll.start()
        loop.exec()
        poll.stop()
    return bool(predicate())


def open_window(args):
    """A main window, shown, once its dataset is loaded and a network is on display; (window, ready seconds)."""
    from PySide6.QtCore import QSettings

    from rfexplorer.main_window import MainWindow

    settings = QSettings(os.path.join(tempfile.mkdtemp(), "bench.ini"), QSettings.Format.IniFormat)
    t0 = time.perf_counter()
    win = MainWindow(settings=settings)
    win.resize(1400, 900)
    win.show()
    if not wait_until(lambda: win.datasets.info is not None and win.explorer.state is not None):
        raise SystemExit("the window did not become ready")
    ready_s = time.perf_counter() - t0
    c = win.controls
    if c.dataset_combo.findData(args.dataset) < 0:
        c.add_dataset_file(args.dataset)
    c.select_dataset(args.dataset)
    c.set_model(args.model)
    c.set_k(args.resonators_per_chain)
    c.epochs_spin.setValue(50)  # long enough to be mid-run when closed
    if not wait_until(lambda: win.datasets.info is not None and win.datasets.info.key == args.dataset):
        raise SystemExit(f"dataset {args.dataset} did not load")
    return win, ready_s


def time_to_first_step(win) -> float:
    """Seconds from starting a run from the controls to the GUI receiving its first snapshot with step >= 1."""
    engine = win.controller.engine
    out: dict = {}

    def on_snapshot(item):
        job, snap = item
        if snap.step >= 1 and "t" not in out and job.id > out.get("after", 0):
            out["t"] = time.perf_counter()

    out["after"] = max([0, *engine._jobs])  # only a job started from here on counts
    engine.snapshot.connect(on_snapshot)
    t0 = time.perf_counter()
    if not win.runs.start_from_controls():
        raise SystemExit("the controls do not describe a valid run")
    ok = wait_until(lambda: "t" in out)
    engine.snapshot.disconnect(on_snapshot)
    if not ok:
        raise SystemExit(f"no snapshot with step >= 1 within {TIMEOUT_S:g} s: {win.status_text()}")
    return out["t"] - t0


def _timed(obj, name: str, out: dict) -> None:
    """Time the calls of ``obj.name`` (an instance attribute that shadows the method) into ``out[name]``."""
    method = getattr(obj, name)

    def timed(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            out[name] = out.get(name, 0.0) + time.perf_counter() - t0

    setattr(obj, name, timed)


def time_close(win) -> dict:
    """Close the window: seconds until close() returns, and until the engine process and reader thread are gone;
    and the two parts of close that take time: the controller's shutdown (the engine process's exit) and the
    GUI-thread garbage collection when the window gives collection back (rfexplorer.gcguard)."""
    engine = win.controller.engine
    pid, reader = engine.pid, engine.reader
    parts: dict = {}
    _timed(win.controller, "shutdown", parts)
    _timed(win.gc_guard, "stop", parts)
    t0 = time.perf_counter()
    win.close()
    returned = time.perf_counter() - t0
    wait_until(lambda: not os.path.exists(f"/proc/{pid}") and not reader.isRunning(), 30.0)
    gone = time.perf_counter() - t0
    if os.path.exists(f"/proc/{pid}"):
        raise SystemExit(f"engine process {pid} still exists 30 s after the window closed")
    win.deleteLater()
    return {"close_return_s": returned, "close_gone_s": gone, "engine_shutdown_s": parts.get("shutdown", 0.0),
            "gui_gc_s": parts.get("stop", 0.0)}


def settle(seconds: float) -> None:
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    QTimer.singleShot(int(seconds * 1000), loop.quit)
    loop.exec()


def pause(win, seconds: float) -> float:
    """Let the window sit idle for ``seconds``; returns when (s into the pause) the engine process reported its
    warm-up over (nan if it did not, or cannot: an engine without a warm-up)."""
    engine = win.controller.engine
    t0 = time.perf_counter()
    out = {}

    def warmed() -> bool:
        if "t" not in out and getattr(engine, "warm_up", None) is not None:
            out["t"] = time.perf_counter() - t0
        return time.perf_counter() - t0 >= seconds

    wait_until(warmed, seconds + 1.0)
    return out.get("t", float("nan"))


def one_repeat(args) -> dict:
    win, ready_s = open_window(args)
    at_once = time_to_first_step(win)
    settle(0.3)
    nxt = time_to_first_step(win)  # supersedes the first run; the engine process is warm
    settle(0.3)
    mid = time_close(win)
    win_b, ready_b = open_window(args)
    warm_after_s = pause(win_b, args.pause)
    after_pause = time_to_first_step(win_b)
    win_b.controller.stop()
    if not wait_until(lambda: not win_b.controller.busy, 30.0):
        raise SystemExit("the run did not stop")
    settle(0.3)
    idle = time_close(win_b)
    return {"ready_s": [ready_s, ready_b], "first_run_at_once_s": at_once, "first_run_after_pause_s": after_pause,
            "warm_up_over_after_ready_s": warm_after_s, "next_run_s": nxt, "close_mid_run": mid,
            "close_idle": idle}


def report(runs: list, args) -> bool:
    def med(f):
        return statistics.median(f(r) for r in runs)

    def worst(f):
        return max(f(r) for r in runs)

    rows = [("first run, at once: wait before its first step", lambda r: r["first_run_at_once_s"], None),
            ("  (engine warm-up over, s after window ready)", lambda r: r["warm_up_over_after_ready_s"], None),
            (f"first run, after {args.pause:g} s: wait before 1st step", lambda r: r["first_run_after_pause_s"],
             MAX_FIRST_RUN_WAIT_S),
            ("next run: wait before its first step", lambda r: r["next_run_s"], None),
            ("close idle: close() returns", lambda r: r["close_idle"]["close_return_s"], None),
            ("close idle: engine process gone", lambda r: r["close_idle"]["close_gone_s"], MAX_CLOSE_S),
            ("  of which the engine's shutdown", lambda r: r["close_idle"]["engine_shutdown_s"], None),
            ("  of which the GUI's garbage collection", lambda r: r["close_idle"]["gui_gc_s"], None),
            ("close mid-run: close() returns", lambda r: r["close_mid_run"]["close_return_s"], None),
            ("close mid-run: engine process gone", lambda r: r["close_mid_run"]["close_gone_s"], MAX_CLOSE_S),
            ("  of which the engine's shutdown", lambda r: r["close_mid_run"]["engine_shutdown_s"], None),
            ("  of which the GUI's garbage collection", lambda r: r["close_mid_run"]["gui_gc_s"], None),
            ("window ready (constructed -> network shown)", lambda r: max(r["ready_s"]), None)]
    print(f"app latency: {args.model} K={args.resonators_per_chain}, {args.dataset}, {len(runs)} repeats "
          f"(median; worst in brackets), {os.cpu_count()} CPUs")
    ok = True
    for label, f, target in rows:
        line = f"  {label:<52} {med(f):6.2f} s  [{worst(f):.2f}]"
        if target is not None:
            passed = med(f) <= target
            ok &= passed
            line += f"  {'PASS' if passed else 'FAIL'} (<= {target:g} s)"
        print(line)
    return ok


def cold_child(args) -> dict:
    """One launch in this fresh process: the app's start-up as now (``args.cold_child == "now"``: engine first,
    start-up objects frozen) or as before; a run started the moment the window is ready; closed mid-run."""
    launched = time.time()
    now = args.cold_child == "now"
    from rfexplorer import app as rfapp

    if now:
        rfapp.start_engine_early()
    rfapp.configure_runtime()
    from PySide6.QtWidgets import QApplication

    qapp = QApplication.instance() or QApplication(["bench_app_latency"])
    qapp.setOrganizationName("rfexplorer-bench")
    win, _ready_s = open_window(args)
    ready_after_launch = time.time() - launched
    if now:
        rfapp.freeze_startup_objects()  # the app does it from the event loop once the window is up
    first = time_to_first_step(win)
    settle(0.3)
    close = time_close(win)
    return {"variant": args.cold_child, "ready_after_launch_s": ready_after_launch, "first_run_at_once_s": first,
            "close_mid_run": close}


def cold(args) -> bool:
    """``--cold N``: N launches as now and N as before, alternating, each in a fresh process; the medians."""
    import subprocess

    base = [sys.executable, os.path.abspath(__file__), "--dataset", args.dataset, "--model", args.model,
            "-K", str(args.resonators_per_chain)]
    variants = args.variants.split(",")
    runs: dict = {v: [] for v in variants}
    for _ in range(args.cold):
        for variant in variants:
            out = subprocess.run(base + ["--cold-child", variant], capture_output=True, text=True, timeout=600)
            lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
            if out.returncode != 0 or not lines:
                raise SystemExit(f"the {variant} launch failed:\n{out.stderr[-2000:]}")
            runs[variant].append(json.loads(lines[-1]))
    rows = [("launch -> window ready", lambda r: r["ready_after_launch_s"], None),
            ("first run, at once: wait before its first step", lambda r: r["first_run_at_once_s"],
             MAX_FIRST_RUN_WAIT_S),
            ("close mid-run: close() returns", lambda r: r["close_mid_run"]["close_return_s"], None),
            ("close mid-run: engine process gone", lambda r: r["close_mid_run"]["close_gone_s"], MAX_CLOSE_S),
            ("  of which the GUI's garbage collection", lambda r: r["close_mid_run"]["gui_gc_s"], None)]
    print(f"app start-up, {args.model} K={args.resonators_per_chain}, {args.dataset}: {args.cold} launches each "
          f"(median; worst in brackets), {os.cpu_count()} CPUs")
    print(f"  {'':<52}" + "".join(f"{v:>17}" for v in variants))
    ok = True
    for label, f, target in rows:
        cells = []
        for variant in variants:
            values = [f(r) for r in runs[variant]]
            cells.append(f"{statistics.median(values):6.2f} s [{max(values):.2f}]")
        line = f"  {label:<52}" + "".join(f"{c:>17}" for c in cells)
        if target is not None and "now" in runs:
            passed = statistics.median(f(r) for r in runs["now"]) <= target
            ok &= passed
            line += f"  {'PASS' if passed else 'FAIL'} (now <= {target:g} s)"
        print(line)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"cold": runs, "ok": ok}, fh, indent=2)
    return ok


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="mnist-mini",
                    help="a dataset the app offers (default mnist-mini, embedded; others where the app finds them)")
    ap.add_argument("--model", default="rf")
    ap.add_argument("-K", "--resonators-per-chain", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--pause", type=float, default=5.0,
                    help="seconds between window B being ready and its first run (default 5)")
    ap.add_argument("--json", help="write the measurements to this file")
    ap.add_argument("--cold", type=int, default=0, metavar="N",
                    help="instead: N fresh launches as the app starts now and N as before, side by side")
    ap.add_argument("--variants", default="before,now", help="with --cold: which start-ups, in this order")
    ap.add_argument("--cold-child", choices=("now", "before"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.cold_child:
        print(json.dumps(cold_child(args)), flush=True)
        return 0
    if args.cold:
        return 0 if cold(args) else 1
    if args.repeats < 1:
        ap.error("--repeats must be at least 1")
    if not 0 <= args.pause <= 600:
        ap.error("--pause must be between 0 and 600 seconds")
    from PySide6.QtWidgets import QApplication

    from rfexplorer.app import configure_runtime

    configure_runtime()  # as the app does at start-up (torch threads; the engine process inherits them)
    app = QApplication.instance() or QApplication(["bench_app_latency"])
    app.setOrganizationName("rfexplorer-bench")
    runs = [one_repeat(args) for _ in range(args.repeats)]
    ok = report(runs, args)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"runs": runs, "ok": ok}, fh, indent=2)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
