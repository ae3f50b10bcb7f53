"""Pause, Resume and Step epoch driven through the real main window (offscreen): the run in the engine process
waits, says where it stopped, steps one epoch at a time, still stops at once, and ends as an unpaused run."""
import time

from PySide6.QtCore import QEventLoop, QTimer

RUN_MS = 120_000


def spin(ms: int) -> None:
    """Let the event loop run for ``ms`` (never QTest.qWait, which holds the interpreter lock)."""
    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()


def latest(window):
    return window.controller.latest_snapshot


def wait_paused(window, qtbot, epochs_done=None):
    def paused():
        snap = latest(window)
        return (snap is not None and snap.paused and "Paused at epoch" in window.progress.format()
                and (epochs_done is None or len(snap.history) == epochs_done))

    qtbot.waitUntil(paused, timeout=RUN_MS)
    return latest(window)


def test_pause_resume_and_step_from_the_buttons(window, qtbot, set_controls):
    set_controls(window, "rf", 10, epochs=30)
    controls = window.controls
    assert not controls.pause_button.isEnabled() and not controls.step_button.isEnabled()
    assert not window.controller.pause_run() and "No training run" in window.status_text()  # nothing to pause
    with qtbot.waitSignal(window.controller.snapshot_ready, timeout=RUN_MS):
        window.runs.start_from_controls()
    assert controls.pause_button.isEnabled() and controls.step_button.isEnabled()

    controls.pause_button.click()
    assert controls.pause_button.text() == "Resume" and window.controller.paused
    snap = wait_paused(window, qtbot)
    assert f"Paused at epoch {snap.epoch}/30" in window.progress.format()
    assert "Paused" in window.status_text() and window.controller.busy
    spin(1000)
    assert latest(window).step == snap.step and latest(window).paused  # no progress while paused

    done = len(snap.history)
    controls.step_button.click()  # to the end of the epoch under way, then paused again
    stepped = wait_paused(window, qtbot, done + 1)
    assert stepped.step == (done + 1) * (stepped.total_steps // 30)
    assert f"Paused at epoch {done + 1}/30" in window.progress.format()
    assert controls.pause_button.text() == "Resume"
    controls.step_button.click()  # exactly one more epoch
    stepped = wait_paused(window, qtbot, done + 2)
    assert stepped.step == (done + 2) * (stepped.total_steps // 30)
    spin(500)
    assert len(latest(window).history) == done + 2

    controls.pause_button.click()  # Resume
    assert controls.pause_button.text() == "Pause" and not window.controller.paused
    qtbot.waitUntil(lambda: not latest(window).paused and latest(window).step > stepped.step, timeout=RUN_MS)
    # the bar is redrawn from the latest snapshot by the window's timer: it says so within a redraw or two
    qtbot.waitUntil(lambda: "Paused" not in window.progress.format(), timeout=2000)

    controls.pause_button.click()  # paused again, then stopped: the stop is prompt
    wait_paused(window, qtbot)
    t0 = time.monotonic()
    with qtbot.waitSignal(window.controller.run_cancelled, timeout=5_000) as cancelled:
        controls.stop_button.click()
    assert time.monotonic() - t0 < 2.0
    assert cancelled.args[1] == "stopped by user"
    qtbot.waitUntil(lambda: not window.controller.busy, timeout=5_000)
    assert not controls.pause_button.isEnabled() and controls.pause_button.text() == "Pause"


def test_a_run_stepped_epoch_by_epoch_ends_as_an_unpaused_run(window, qtbot, set_controls, mini):
    from engine.training.loop import run_training

    set_controls(window, "rf", 10, epochs=3, seed=5)
    with qtbot.waitSignal(window.controller.run_started, timeout=RUN_MS):
        window.runs.start_from_controls()
    assert window.controller.step_epoch()
    wait_paused(window, qtbot, 1)
    window.act_step.trigger()  # Run > Step one epoch
    wait_paused(window, qtbot, 2)
    with qtbot.waitSignal(window.controller.run_finished, timeout=RUN_MS) as finished:
        window.controls.step_button.click()  # the last epoch ends the run: no pause after it
    result = finished.args[0]
    assert result.epochs_completed == 3 and not result.cancelled
    headless = run_training(result.config, dataset=mini)
    assert result.history == headless.history and result.confusion == headless.confusion
    assert window.controller.pause_state == "running"


def test_a_new_run_starts_unpaused(window, qtbot, set_controls):
    set_controls(window, "rf", 10, epochs=30)
    with qtbot.waitSignal(window.controller.snapshot_ready, timeout=RUN_MS):
        window.runs.start_from_controls()
    window.toggle_pause()
    wait_paused(window, qtbot)
    set_controls(window, "rf", 12, epochs=30)
    with qtbot.waitSignal(window.controller.run_started, timeout=RUN_MS):
        window.controls.train_button.click()  # Restart: the paused run is cancelled, the new one runs
    assert window.controls.pause_button.text() == "Pause" and not window.controller.paused
    first = None
    qtbot.waitUntil(lambda: latest(window) is not None and latest(window).step > 0, timeout=RUN_MS)
    first = latest(window).step
    qtbot.waitUntil(lambda: latest(window).step > first, timeout=RUN_MS)
    assert not latest(window).paused
    window.controller.stop()


def test_the_pause_request_is_a_frozen_message_that_pickles():
    import dataclasses
    import pickle

    from rfexplorer.protocol import PauseAction, PauseRun

    for action in PauseAction:
        message = PauseRun(action)
        back = pickle.loads(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))
        assert back == message and type(back.action) is PauseAction
    assert PauseRun.__dataclass_params__.frozen
    assert [f.name for f in dataclasses.fields(PauseRun)] == ["action"]
