"""Training driven through the real main window, offscreen: live views, stop, restart on release, close."""
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from rfexplorer.controls import k_to_pos

RUN_MS = 120_000
ROOT = Path(__file__).resolve().parents[1]


def _resonators(window):
    return [None if r is None else r.copy() for r in window.spectrum.data_summary()["resonators_x"]]


def test_short_run_updates_all_views_live(window, qtbot, set_controls):
    set_controls(window, "rf", 10, epochs=2)
    with qtbot.waitSignal(window.controller.preview_ready, timeout=RUN_MS):
        window.runs.show_preview()  # the untrained network for these settings, built in the worker
    before_res = _resonators(window)
    before_img = window.assignment.current_image().copy()
    assert all(r is not None and len(r) == 10 for r in before_res)
    live_points = []
    window.controller.snapshot_ready.connect(lambda *_: live_points.append(window.sparsity.live_position()))
    with qtbot.waitSignal(window.controller.run_finished, timeout=RUN_MS) as done:
        assert window.runs.start_from_controls()
    result = done.args[0]
    assert not result.cancelled and result.epochs_completed == 2

    # 1. spectrum: resonators moved, the comb and the selected chain's response are drawn
    after = window.spectrum.data_summary()
    assert any(not np.array_equal(a, b) for a, b in zip(before_res, after["resonators_x"]))
    assert after["comb_y"] is not None and after["comb_y"].max() > 0
    assert after["response"] is not None and np.abs(after["response"]).max() > 0
    # 2. assignment: the coupling heatmap changed, rewiring events are counted
    assert not np.array_equal(before_img, window.assignment.current_image())
    assert window.assignment.rewiring_label.text() == f"Rewiring events: {result.rewiring_events:,}"
    # 3. accuracy vs sparsity: a live ring during the run, then one accumulated point
    assert any(p is not None for p in live_points)
    assert window.sparsity.live_position() is None
    assert window.sparsity.n_points() == 1
    # history: the live trace and one test-accuracy marker per epoch. The views redraw the latest snapshot from
    # a timer, so the run's last snapshot is drawn at the next tick after run_finished, not necessarily before.
    qtbot.waitUntil(lambda: len(window.history.data()["test"]) == len(result.history), timeout=5_000)
    hist = window.history.data()
    assert len(hist["train"]) >= 2 and np.allclose(hist["test"], [100 * h[3] for h in result.history])
    assert window.progress.value() == 1000 and "Epoch 2/2" in window.progress.format()
    assert window.status_text().startswith("Finished RF K=10")


def test_stop_takes_effect_within_a_second(window, qtbot, set_controls):
    set_controls(window, "rf", 20, epochs=30)
    with qtbot.waitSignal(window.controller.snapshot_ready, timeout=RUN_MS):
        window.runs.start_from_controls()
    t0 = time.monotonic()
    with qtbot.waitSignal(window.controller.run_cancelled, timeout=1000) as cancelled:
        window.controls.stop_button.click()
    assert time.monotonic() - t0 < 1.0
    result, reason = cancelled.args
    assert result.cancelled and reason == "stopped by user"
    assert "Cancelled" in window.status_text()
    qtbot.waitUntil(lambda: not window.controller.busy, timeout=1000)
    assert window.controls.stop_button.isEnabled() is False


def test_releasing_a_slider_cancels_the_running_run_first(window, qtbot, set_controls):
    set_controls(window, "rf", 10, epochs=30)
    with qtbot.waitSignal(window.controller.snapshot_ready, timeout=RUN_MS):
        window.runs.start_from_controls()
    window.controls.k_slider.setValue(k_to_pos(5, 784))
    with qtbot.waitSignals([window.controller.run_cancelled, window.controller.run_started], timeout=RUN_MS,
                           check_params_cbs=[lambda r, why: r.config.resonators_per_chain == 10,
                                             lambda cfg: cfg.resonators_per_chain == 5]):
        window.controls.k_slider.sliderReleased.emit()
        assert window.status_text().startswith("Cancelling RF K=10")  # said at once, before the run stops
        assert "to start RF K=5" in window.status_text()
    assert window.controller.busy
    with qtbot.waitSignal(window.controller.run_cancelled, timeout=5000):
        window.controller.stop()


def test_baseline_run_shows_the_comb_and_a_note(window, qtbot, set_controls):
    set_controls(window, "rigl", 10, epochs=1)
    with qtbot.waitSignal(window.controller.run_finished, timeout=RUN_MS) as done:
        window.runs.start_from_controls()
    assert done.args[0].config.model == "rigl"
    data = window.spectrum.data_summary()
    assert data["comb_y"].max() > 0
    assert all(r is None or len(r) == 0 for r in data["resonators_x"])
    assert window.spectrum.resp_note.isVisible() and "no resonators" in window.spectrum.resp_note.toPlainText()
    assert window.assignment.current_image().shape == (10, 784)


def test_clicking_a_result_shows_its_topology(window, qtbot, set_controls):
    set_controls(window, "rf", 4, epochs=1)
    with qtbot.waitSignal(window.controller.run_finished, timeout=RUN_MS):
        window.runs.start_from_controls()
    first = window.session.points[-1]
    set_controls(window, "rf", 8, epochs=1)
    with qtbot.waitSignal(window.controller.run_finished, timeout=RUN_MS):
        window.runs.start_from_controls()
    assert len(window.spectrum.data_summary()["resonators_x"][0]) == 8
    window.sparsity.point_clicked.emit(first.id)  # what a click on the point emits
    assert not window.explorer.follow_live
    assert len(window.spectrum.data_summary()["resonators_x"][0]) == 4
    assert np.array_equal(window.assignment.current_image(), first.state.weight * 1e3)
    assert f"run #{first.id}" in window.spectrum.source_label.text()
    window.sparsity.show_details(first.id)
    assert "K = 4" in window.sparsity.details.text()


def test_closing_during_a_run_cancels_and_joins_the_thread(make_window, qtbot, set_controls):
    w = make_window()
    set_controls(w, "rf", 20, epochs=30)
    with qtbot.waitSignal(w.controller.snapshot_ready, timeout=RUN_MS):
        w.runs.start_from_controls()
    engine = w.controller.engine.process
    assert engine.is_alive()
    t0 = time.monotonic()
    w.close()
    assert time.monotonic() - t0 < 5.0
    assert not w.controller._thread.isRunning()
    assert not engine.is_alive() and engine.exitcode == 0  # it exited by itself, not terminated
    assert not Path(f"/proc/{engine.pid}").exists()  # joined: not even a zombie is left


def _processes_with(marker: str) -> list[int]:
    """Pids of live processes whose environment holds ``marker`` (the app and everything it started)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            env = (entry / "environ").read_bytes()
            state = next((line for line in (entry / "status").read_text().splitlines()
                          if line.startswith("State:")), "")
        except OSError:  # gone meanwhile, or not ours
            continue
        if marker.encode() in env and "zombie" not in state:
            found.append(int(entry.name))
    return found


def test_app_exits_with_status_zero_when_closed_mid_training(tmp_path):
    marker = f"RFEXPLORER_TEST_MARK=exit-{os.getpid()}-{time.monotonic_ns()}"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", XDG_CONFIG_HOME=str(tmp_path), HOME=str(tmp_path),
               RFEXPLORER_TEST_MARK=marker.split("=", 1)[1])
    # closed 0.1 s after the run started: the default run (15 epochs of the embedded subset) takes about 1 s
    # here, so it is still running whatever the machine (at 1.0 s a faster step let it finish first)
    proc = subprocess.run([sys.executable, "-m", "rfexplorer.app", "--train", "--quit-after", "0.1"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "cancelled the run in progress" in proc.stderr  # it really was closed mid-training
    assert "Destroyed while thread" not in proc.stderr
    assert "Traceback" not in proc.stderr
    # nothing the app started outlives it: the engine process (and multiprocessing's helper) are gone
    deadline = time.monotonic() + 5.0
    while _processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.1)  # (the test process, no GUI here)
    assert _processes_with(marker) == []


def test_history_keeps_every_epoch_end_when_live_points_were_skipped(qtbot):
    """The views draw only the latest snapshot: a run whose in-between snapshots were all coalesced away still
    traces one training point per finished epoch, in epoch order, next to the live points it did draw."""
    from engine.core.progress import Snapshot
    from rfexplorer.views.history import HistoryView

    view = HistoryView()
    qtbot.addWidget(view)
    view.reset(3)
    hist = [(1, 0.9, 0.70, 0.80), (2, 0.5, 0.85, 0.88), (3, 0.4, 0.90, 0.91)]

    def snap(step, history, final=False):
        return Snapshot(model="rf", resonators_per_chain=10, epoch=len(history) + 1, epochs=3, step=step,
                        total_steps=300, loss=0.6, train_accuracy=0.8, test_accuracy=None, elapsed_s=1.0, eta_s=1.0,
                        weight=np.zeros((2, 4), np.float32), bias=np.zeros(2, np.float32), rewiring_events=0,
                        history=history, final=final)

    view.add_snapshot(snap(150, hist[:1]))  # one live point at epoch 1.5, drawn after epoch 1 ended
    view.add_snapshot(snap(300, hist, final=True))  # then only the final snapshot
    data = view.data()
    assert np.allclose(data["train"], [70, 80, 85, 90])  # epochs 1, 1.5, 2, 3
    assert np.allclose(data["test"], [80, 88, 91])
    view.reset(3)
    view.add_snapshot(snap(300, hist, final=True))  # a finished run shown from its history alone
    assert np.allclose(view.data()["train"], [70, 85, 90])
