"""The progress bar follows the background jobs: a sweep and a robustness study, each on its own lane of the
window's :class:`~rfexplorer.eta.ProgressBoard` (the run's lane is written by rfexplorer.runs, a dataset
fetch's by rfexplorer.fetch_action). Each shows n/N, the time elapsed and the time left
(:mod:`rfexplorer.eta`), refreshed every second while the job runs so that the count-down moves between
finished units; they follow the controller's signals only.
"""
from __future__ import annotations

import time
from typing import Callable, Optional

from PySide6.QtCore import QObject, QTimer, Slot

from .eta import BAR_STEPS, EtaEstimator, ProgressLane, RunTimes, SweepEta, format_duration, time_left

#: How often a running job's line is redrawn (ms): elapsed time and count-down move between finished units.
TICK_MS = 1000


def session_times(session) -> RunTimes:
    """Seconds per epoch of this session's own runs and sweep runs (not imported files, nor results recorded in
    earlier sessions: another machine's, or another day's load)."""
    return RunTimes.from_rows(p.row for p in session.points if p.source in ("run", "sweep"))


class _Follower(QObject):
    """A lane redrawn every TICK_MS while its job runs."""

    def __init__(self, parent: QObject, lane: ProgressLane) -> None:
        super().__init__(parent)
        self.lane = lane
        self._tick = QTimer(self)
        self._tick.setInterval(TICK_MS)
        self._tick.timeout.connect(self.redraw)

    def _begin(self) -> None:
        self.lane.begin()
        self._tick.start()
        self.redraw()

    def _end(self, text: str, value: Optional[int] = None) -> None:
        self._tick.stop()
        self.lane.set(value=value, text=text)
        self.lane.end()

    @Slot()
    def redraw(self) -> None:
        raise NotImplementedError


class SweepProgress(_Follower):
    """The running sweep: 'Sweep: 3/12 runs · 41 s elapsed · 1 min 22 s left' (rfexplorer.eta.SweepEta)."""

    def __init__(self, parent: QObject, controller, lane: ProgressLane, session,
                 n_inputs: Callable[[], Optional[int]], status: Callable[[str, str], None]) -> None:
        super().__init__(parent, lane)
        self.controller, self.session, self.n_inputs, self.status = controller, session, n_inputs, status
        self.eta: Optional[SweepEta] = None
        controller.sweep_started.connect(self.on_started)
        controller.sweep_row.connect(self.on_row)
        controller.sweep_finished.connect(self.on_finished)
        controller.sweep_failed.connect(lambda _message: self._stop("Sweep failed — see the status line"))
        controller.sweep_busy_changed.connect(self._on_busy_changed)

    @Slot(object)
    def on_started(self, spec) -> None:
        try:
            jobs = spec.jobs(self.n_inputs())
        except (ValueError, TypeError):  # the sweep itself says what is wrong with it
            jobs = []
        self.eta = SweepEta(jobs, session_times(self.session), getattr(spec, "workers", 1))
        self._begin()
        left = time_left(self.eta.remaining())
        self.status(f"Sweep of {len(jobs)} runs running in the background" + (f" (~{left})" if left else "")
                    + "; its progress is in the bar below.", "busy")

    @Slot(dict)
    def on_row(self, row: dict) -> None:
        if self.eta is None:
            return
        self.eta.finished(row)
        self.redraw()

    @Slot(list)
    def on_finished(self, rows: list) -> None:
        if self.eta is None:
            return
        eta = self.eta
        took = format_duration(eta.elapsed())
        if eta.done >= eta.total:
            self._stop(f"Sweep finished: {eta.total} runs in {took}", BAR_STEPS)
        else:
            self._stop(f"Sweep stopped after {eta.done}/{eta.total} runs ({took})")

    @Slot(bool)
    def _on_busy_changed(self, busy: bool) -> None:
        if not busy:  # after the signals that follow it (finished, failed), unless the engine process was lost
            QTimer.singleShot(0, self, self._lost)

    @Slot()
    def _lost(self) -> None:
        if self.eta is not None:
            self._stop(f"Sweep stopped after {self.eta.done}/{self.eta.total} runs")

    def _stop(self, text: str, value: Optional[int] = None) -> None:
        if self.eta is not None:
            self.eta = None
            self._end(text, value)

    def eta_s(self) -> Optional[float]:
        """The time left shown now (None without an estimate, or without a sweep)."""
        return self.eta.remaining() if self.eta is not None else None

    @Slot()
    def redraw(self) -> None:
        eta = self.eta
        if eta is None:
            return
        left = time_left(eta.remaining())
        self.lane.set(value=int(BAR_STEPS * eta.done / max(1, eta.total)), text=f"Sweep: {eta.describe()}",
                      brief=f"sweep {eta.done}/{eta.total}" + (f", {left}" if left else ""))


class RobustnessProgress(_Follower):
    """The running robustness study: 'Robustness: 4/12 evaluations · 3.1 s elapsed · 6.0 s left'."""

    def __init__(self, parent: QObject, controller, lane: ProgressLane) -> None:
        super().__init__(parent, lane)
        self.estimator: Optional[EtaEstimator] = None
        controller.robustness_started.connect(self.on_started)
        controller.robustness_progress.connect(self.on_progress)
        controller.robustness_finished.connect(self.on_finished)
        controller.robustness_failed.connect(lambda _m: self._stop("Robustness study failed"))

    @Slot(object)
    def on_started(self, request) -> None:
        total = max(1, len(request.values) * int(request.repeats))
        self.estimator = EtaEstimator(total, min_fraction=0.0, min_span_s=0.5, smoothing=0.5)
        self.estimator.start(time.monotonic())
        self._begin()

    @Slot(list)
    def on_progress(self, evals: list) -> None:
        if self.estimator is not None:
            self.estimator.update(len(evals), time.monotonic())
            self.redraw()

    @Slot(object)
    def on_finished(self, out: dict) -> None:
        if self.estimator is None:
            return
        n, took = len(out.get("evals", [])), format_duration(self.estimator.elapsed(time.monotonic()))
        if out.get("cancelled"):
            self._stop(f"Robustness study stopped after {n}/{int(self.estimator.total)} evaluations ({took})")
        else:
            self._stop(f"Robustness study finished: {n} evaluations in {took}", BAR_STEPS)

    def _stop(self, text: str, value: Optional[int] = None) -> None:
        if self.estimator is not None:
            self.estimator = None
            self._end(text, value)

    @Slot()
    def redraw(self) -> None:
        est = self.estimator
        if est is None:
            return
        now = time.monotonic()
        done, total = int(est.done), int(est.total)
        left = time_left(est.remaining(now))
        parts = [f"{done}/{total} evaluations", f"{format_duration(est.elapsed(now))} elapsed"] + (
            [left] if left else [])
        self.lane.set(value=int(BAR_STEPS * est.fraction), text="Robustness: " + " · ".join(parts),
                      brief=f"robustness {done}/{total}" + (f", {left}" if left else ""))
