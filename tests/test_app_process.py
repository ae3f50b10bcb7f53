"""The engine process: the app's jobs run in a separate (spawned) process that survives being killed."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

RUN_MS = 120_000
ROOT = Path(__file__).resolve().parents[1]


def test_the_engine_process_module_is_qt_free():
    code = ("import sys, rfexplorer.engine_process, rfexplorer.state, rfexplorer.labels, rfexplorer.memory; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('PySide6', 'shiboken6', 'pyqtgraph')]; "
            "print(bad); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_run_in_the_app_gives_the_headless_result(window, qtbot, set_controls, mini):
    from engine.training.loop import run_training

    set_controls(window, "rf", 4, epochs=1, seed=3)
    with qtbot.waitSignal(window.controller.run_finished, timeout=RUN_MS) as done:
        window.runs.start_from_controls()
    result = done.args[0]
    # the engine process runs torch with this process's thread count, so the numbers are the same, digit for digit
    headless = run_training(result.config, dataset=mini)
    assert result.test_accuracy == headless.test_accuracy
    assert result.history == headless.history
    for a, b in zip(result.model.state_dict().values(), headless.model.state_dict().values()):
        assert np.array_equal(a.numpy(), b.numpy())


def test_starting_runs_in_quick_succession_runs_only_the_last(window, qtbot, set_controls):
    c = window.controller
    cancelled, finished = [], []
    c.run_cancelled.connect(lambda r, why: cancelled.append(r.config.resonators_per_chain))
    c.run_finished.connect(lambda r: finished.append(r.config.resonators_per_chain))
    for k in (3, 5):
        set_controls(window, "rf", k, epochs=30)
        window.runs.start_from_controls()
    set_controls(window, "rf", 7, epochs=1)
    with qtbot.waitSignal(c.run_finished, timeout=RUN_MS) as done:
        window.runs.start_from_controls()
    # the cancel requests of the earlier runs never reach the last one (its slot's Event is cleared first)
    assert not done.args[0].cancelled and done.args[0].epochs_completed == 1
    assert finished == [7] and all(k in (3, 5) for k in cancelled)
    qtbot.waitUntil(lambda: not c.busy, timeout=5000)


def test_the_app_recovers_when_the_engine_process_is_killed_mid_run(window, qtbot, set_controls, dialogs):
    c = window.controller
    set_controls(window, "rf", 4, epochs=1)
    with qtbot.waitSignal(c.run_finished, timeout=RUN_MS):
        window.runs.start_from_controls()
    assert len(window.session.points) == 1 and window.sparsity.n_points() == 1
    old = c.engine.process
    set_controls(window, "rf", 20, epochs=30)
    with qtbot.waitSignal(c.snapshot_ready, timeout=RUN_MS):
        window.runs.start_from_controls()
    with qtbot.waitSignal(c.engine_lost, timeout=10_000) as lost:
        os.kill(old.pid, signal.SIGKILL)
    message = lost.args[0]
    assert "SIGKILL" in message and "RF K=20" in message
    assert dialogs == [("critical", "Engine process stopped", message)]  # one dialog, not modal in tests
    assert not old.is_alive()
    new = c.engine.process
    assert new.pid != old.pid and new.is_alive() and c.engine.restarts == 1
    assert not c.busy and not window.controls.stop_button.isEnabled()
    assert "engine process stopped" in window.status_text().lower()
    with qtbot.waitSignal(window.explorer.state_changed, timeout=RUN_MS) as shown:  # no stale "live" view
        pass
    assert not shown.args[0].live and "untrained" in shown.args[0].label
    # the session keeps its results
    assert len(window.session.points) == 1 and window.sparsity.n_points() == 1
    # and the next run works, in the new process
    set_controls(window, "rf", 4, epochs=1, seed=1)
    with qtbot.waitSignal(c.run_finished, timeout=RUN_MS) as done:
        window.runs.start_from_controls()
    assert not done.args[0].cancelled and done.args[0].epochs_completed == 1
    assert len(window.session.points) == 2 and window.sparsity.n_points() == 2
    assert window.status_text().startswith("Finished RF K=4")


def test_a_killed_idle_engine_is_replaced_and_previews_still_come(window, qtbot, set_controls, dialogs):
    c = window.controller
    old = c.engine.process
    with qtbot.waitSignal(c.engine_lost, timeout=10_000):
        os.kill(old.pid, signal.SIGKILL)
    assert dialogs.kinds() == ["critical"]
    set_controls(window, "rf", 6, epochs=1)
    with qtbot.waitSignal(c.preview_ready, timeout=RUN_MS) as preview:
        window.runs.show_preview()
    assert preview.args[0].resonators_per_chain == 6
    assert c.engine.process.pid != old.pid


def test_a_sweep_runs_in_the_engine_process_while_the_gui_stays_free(window, qtbot, monkeypatch):
    import engine.training.loop
    from engine.config.run_config import RunConfig
    from engine.experiments.sweep.runner import SweepSpec

    calls = []
    monkeypatch.setattr(engine.training.loop, "run_training", lambda *a, **k: calls.append(1))  # not here
    spec = SweepSpec(models=("rf", "dense"), ks=(2,), seeds=(0,), base=RunConfig(dataset="mnist-mini", epochs=1))
    rows = []
    window.controller.sweep_row.connect(rows.append)
    with qtbot.waitSignal(window.controller.sweep_finished, timeout=RUN_MS) as done:
        assert window.runs.start_sweep(spec, "local")
    assert calls == []
    assert sorted(r["model"] for r in done.args[0]) == ["dense", "rf"]
    assert len(rows) == 2 and all(isinstance(r["test_accuracy"], float) for r in rows)
    assert window.session.counts().get("sweep") == 2
    assert not window.controller.sweep_busy


def test_a_run_trains_while_a_sweep_runs_and_the_sweep_stops_on_request(window, qtbot, set_controls):
    from engine.config.run_config import RunConfig
    from engine.experiments.sweep.runner import SweepSpec

    c = window.controller
    spec = SweepSpec(models=("rf",), ks=(20,), seeds=(0, 1, 2), base=RunConfig(dataset="mnist-mini", epochs=30))
    with qtbot.waitSignal(c.sweep_started, timeout=RUN_MS):
        assert window.runs.start_sweep(spec, "local")
    set_controls(window, "rf", 4, epochs=1)
    with qtbot.waitSignal(c.run_finished, timeout=RUN_MS) as done:  # the other slot of the same process
        window.runs.start_from_controls()
    assert not done.args[0].cancelled and c.sweep_busy
    t0 = time.monotonic()
    with qtbot.waitSignal(c.sweep_finished, timeout=5000) as finished:
        c.stop_sweep()
    assert time.monotonic() - t0 < 2.0
    assert finished.args[0] == [] and not c.sweep_busy  # the run cut short is not a result
    assert window.status_text().startswith("Sweep cancelled")


def test_the_sweep_dialog_offers_ray_only_when_it_can_be_imported(app_env, monkeypatch):
    import engine.experiments.sweep.ray_backend
    from engine.config.run_config import RunConfig
    from rfexplorer.sweep_dialog import SweepDialog

    for available, offered in ((False, ["local"]), (True, ["local", "ray"])):
        monkeypatch.setattr(engine.experiments.sweep.ray_backend, "ray_available", lambda a=available: a)
        dlg = SweepDialog(RunConfig(), 64)
        assert [dlg.backend_combo.itemData(i) for i in range(dlg.backend_combo.count())] == offered
        assert dlg.backend() == "local"
        dlg.workers_spin.setValue(2)
        assert dlg.spec().workers == min(2, os.cpu_count() or 1)
        dlg.deleteLater()


@pytest.mark.skipif(not __import__("engine.experiments.sweep.ray_backend", fromlist=["ray_available"]).ray_available(),
                    reason="Ray is not installed")
def test_a_ray_sweep_from_the_app_gives_the_local_rows(window, qtbot):
    from engine.config.run_config import RunConfig
    from engine.experiments.sweep.runner import SweepSpec

    spec = SweepSpec(models=("dense",), ks=(2,), seeds=(0, 1), base=RunConfig(dataset="mnist-mini", epochs=1),
                     workers=2)  # one torch thread per run on both backends
    results = {}
    for backend in ("ray", "local"):
        with qtbot.waitSignal(window.controller.sweep_finished, timeout=RUN_MS) as done:
            assert window.runs.start_sweep(spec, backend)
        results[backend] = {r["seed"]: r["test_accuracy"] for r in done.args[0]}
    assert len(results["ray"]) == 2 and results["ray"] == results["local"]


def test_an_engine_process_that_cannot_start_is_given_up_after_three_tries(app_env, qtbot):
    import functools

    from rfexplorer.worker import MAX_FAILED_STARTS, EngineClient, Job

    # an entry point that dies at once (os._exit does not take the engine's arguments: TypeError, status 1)
    engine = EngineClient(entry=functools.partial(os._exit, 7))
    lost, failed = [], []
    engine.lost.connect(lambda item: lost.append(item[0]))
    engine.failed.connect(lambda item: failed.append(item[1]))
    try:
        qtbot.waitUntil(lambda: len(lost) == MAX_FAILED_STARTS, timeout=60_000)
        assert "exited with status 1" in lost[0] and "A new one was started" in lost[0]
        assert "cannot be started" in lost[-1] and engine.restarts == MAX_FAILED_STARTS - 1
        engine.submit(Job("load"))
        qtbot.waitUntil(lambda: len(failed) == 1, timeout=5000)
        assert "cannot be started" in failed[0]
        assert not engine.process.is_alive()
    finally:
        engine.shutdown()
    assert not engine.reader.isRunning()


def test_closing_leaves_no_engine_process_behind(make_window):
    w = make_window()
    proc = w.controller.engine.process
    t0 = time.monotonic()
    w.close()
    assert time.monotonic() - t0 < 5.0
    assert not proc.is_alive() and proc.exitcode == 0
    assert not Path(f"/proc/{proc.pid}").exists()
