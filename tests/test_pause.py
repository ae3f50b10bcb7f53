"""Pausing a training run between batches (engine.core.progress.PauseControl): the run waits without burning CPU,
resumes, steps one epoch at a time, still stops when cancelled, and ends exactly as an unpaused run."""
import threading
import time

import numpy as np
import pytest
import torch

from engine.config.run_config import RunConfig
from engine.core.progress import PAUSE_POLL_S, CancelToken, PauseControl
from engine.training.loop import run_training

CFG = RunConfig(model="rf", resonators_per_chain=10, epochs=3, batch_size=200, seed=4)
WAIT_S = 60.0


def once_at(step: int, action):
    """A snapshot callback that calls ``action`` once, at the first snapshot of optimizer step ``step``."""
    done = []

    def callback(snap) -> None:
        if snap.step == step and not done:
            done.append(True)
            action()

    return callback


def wait_for(condition, timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.01)


class Run:
    """run_training in a thread, with every snapshot kept (one per batch)."""

    def __init__(self, dataset, pause, cancel=None, on_snapshot=None, cfg=CFG) -> None:
        self.snaps: list = []
        self.result = None
        self.error = None
        self._on_snapshot = on_snapshot

        def progress(snap) -> None:
            self.snaps.append(snap)
            if self._on_snapshot is not None:
                self._on_snapshot(snap)

        def target() -> None:
            try:
                self.result = run_training(cfg, dataset=dataset, progress=progress, cancel=cancel, pause=pause,
                                           snapshot_interval_s=0.0)
            except BaseException as exc:  # noqa: BLE001 - reported by the test
                self.error = exc

        self.thread = threading.Thread(target=target, daemon=True)
        self.thread.start()

    @property
    def last(self):
        return self.snaps[-1]

    def paused(self) -> bool:
        return bool(self.snaps) and self.last.paused

    def join(self, timeout: float = WAIT_S):
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the run did not end"
        if self.error is not None:
            raise self.error
        return self.result


@pytest.fixture(scope="module")
def plain(mini):
    """The unpaused run of CFG."""
    return run_training(CFG, dataset=mini)


def same_run(a, b) -> None:
    assert a.history == b.history
    assert a.test_accuracy == b.test_accuracy and a.confusion == b.confusion
    for (name, p), (_, q) in zip(a.model.state_dict().items(), b.model.state_dict().items()):
        assert torch.equal(p, q), name


def test_a_paused_run_stops_advancing_waits_idle_and_resumes_to_the_same_result(mini, plain):
    pause = PauseControl()
    run = Run(mini, pause, on_snapshot=once_at(7, pause.pause))
    wait_for(run.paused)
    step = run.last.step
    assert step == 7 and run.last.epoch == 1 and not run.last.final
    cpu0, wall0 = time.process_time(), time.monotonic()
    time.sleep(1.0)
    cpu = time.process_time() - cpu0
    wall = time.monotonic() - wall0
    assert run.last.step == step and run.thread.is_alive()  # no progress while paused
    assert cpu < 0.25 * wall, f"a paused run used {cpu:.2f} s of CPU in {wall:.2f} s"
    pause.resume()
    result = run.join()
    assert max(s.step for s in run.snaps) > step and run.last.final and not run.last.paused
    same_run(result, plain)
    assert result.train_seconds < plain.train_seconds + (wall - 0.5)  # time paused is not training time


def test_step_advances_exactly_one_epoch_then_pauses(mini, plain):
    pause = PauseControl()
    pause.step()  # from the start: run the first epoch, then pause
    run = Run(mini, pause)
    wait_for(run.paused)
    assert len(run.last.history) == 1 and run.last.epoch == 1 and pause.is_set() and not pause.stepping
    steps_per_epoch = run.last.step
    time.sleep(0.3)
    assert len(run.last.history) == 1 and run.last.step == steps_per_epoch
    run.snaps.clear()
    pause.step()
    wait_for(run.paused)
    assert len(run.last.history) == 2 and run.last.step == 2 * steps_per_epoch
    pause.resume()
    same_run(run.join(), plain)


def test_step_from_the_middle_of_an_epoch_runs_to_its_end(mini):
    pause = PauseControl()
    run = Run(mini, pause, on_snapshot=once_at(3, pause.pause))
    wait_for(run.paused)
    assert run.last.step == 3 and not run.last.history
    run.snaps.clear()
    pause.step()
    wait_for(run.paused)
    assert len(run.last.history) == 1 and run.last.epoch == 1
    pause.resume()
    assert run.join().epochs_completed == CFG.epochs


def test_the_last_epoch_does_not_pause_the_finished_run(mini):
    pause = PauseControl()
    pause.step()
    run = Run(mini, pause, cfg=CFG.with_(epochs=1))
    result = run.join()
    assert result.epochs_completed == 1 and not result.cancelled and not any(s.paused for s in run.snaps)


def test_cancel_while_paused_ends_promptly(mini):
    pause, cancel = PauseControl(), CancelToken()
    run = Run(mini, pause, cancel=cancel, on_snapshot=once_at(2, pause.pause))
    wait_for(run.paused)
    t0 = time.monotonic()
    cancel.set()
    result = run.join()
    assert time.monotonic() - t0 < 2.0 + 4 * PAUSE_POLL_S  # (most of it: the evaluation of a cancelled run)
    assert result.cancelled and result.epochs_completed == 0 and pause.is_set()
    assert np.asarray(result.confusion).sum() == len(mini.test_y)


def test_any_object_with_is_set_pauses_a_run(mini, plain):
    event = threading.Event()
    run = Run(mini, event, on_snapshot=once_at(4, event.set))
    wait_for(run.paused)
    time.sleep(0.2)
    assert run.last.step == 4
    event.clear()
    same_run(run.join(), plain)


def test_pause_control_methods():
    p = PauseControl()
    assert not p.is_set() and not p.stepping
    p.pause()
    assert p.is_set()
    p.step()
    assert not p.is_set() and p.stepping
    p.epoch_ended()
    assert p.is_set() and not p.stepping
    p.epoch_ended()  # not stepping: nothing changes
    assert p.is_set()
    p.resume()
    assert not p.is_set() and not p.stepping
