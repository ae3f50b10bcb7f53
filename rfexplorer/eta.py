"""How far the app's long jobs are and how long they will take: n/N, elapsed time and a time left that means
something. Qt-free (the Qt side is rfexplorer.job_progress and the presenters).

- :func:`format_duration`: "40 ms", "3.4 s", "34 s", "2 min 05 s", "1 h 04 min" (a short run is never "0.0 s").
- :class:`EtaEstimator`: the time left of a job measured in units (steps, evaluations, bytes). The rate is
  measured from the first unit finished on, so what came before it (the engine's warm-up, the first step's
  set-up) does not inflate it; nothing is said until enough work is done to measure it; successive estimates
  are blended (exponential smoothing of the count-down), so the number does not jump at every redraw.
- :class:`RunTimes`: seconds per epoch of the session's finished runs, by dataset, model and K;
  :func:`estimate_sweep` turns them into a sweep's expected duration (the sweep dialog) and :class:`SweepEta`
  into the time left of a running sweep, each run weighted by its expected cost (runs of long chains cost more).
- :class:`ProgressBoard`: the window's one progress bar, shared by the jobs that may run at once (a run, a
  sweep, a robustness study, a dataset fetch). Each job writes its own lane; the bar shows the first active
  lane in full and the others' short forms after it; when none is active, the last one to finish stays.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Optional, Protocol, Sequence

#: The progress bar's range (QProgressBar.setRange(0, BAR_STEPS)).
BAR_STEPS = 1000


def format_duration(seconds: float) -> str:
    """A duration for people: milliseconds below a second, then seconds, minutes and hours."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "?"
    if seconds < 1.0:
        ms = round(seconds * 1000)
        return "< 1 ms" if ms < 1 else f"{ms} ms"
    if seconds < 9.95:
        return f"{seconds:.1f} s"
    if seconds < 99.5:
        return f"{seconds:.0f} s"
    if seconds < 3600 - 0.5:
        minutes, secs = divmod(round(seconds), 60)
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(round(seconds / 60), 60)
    return f"{hours} h {minutes:02d} min"


@dataclass
class EtaEstimator:
    """Time left of a job of ``total`` units from progress samples ``update(done, now)`` (``now`` in seconds
    on any clock that starts with the job; :meth:`start` sets its zero, else the first sample does).

    The rate is (units since the first finished unit) / (time since then) once that span is at least
    ``min_span_s`` long, else (units done) / (time since the start); no estimate is given before
    ``min_fraction`` of the job is done and ``min_span_s`` has passed since the start. Each new estimate is
    blended with the previous one counted down: ``smoothing`` is the new estimate's weight (1: none).
    """

    total: float
    min_fraction: float = 0.05
    min_span_s: float = 1.0
    smoothing: float = 0.3
    _start: Optional[float] = field(default=None, repr=False)
    _ref: Optional[tuple] = field(default=None, repr=False)  #: (time, done) at the first finished unit
    _last: Optional[tuple] = field(default=None, repr=False)  #: (time, done) of the latest sample
    _eta: Optional[tuple] = field(default=None, repr=False)  #: (time, seconds left then)

    def start(self, now: float) -> None:
        self._start = now

    @property
    def done(self) -> float:
        return self._last[1] if self._last is not None else 0.0

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total) if self.total > 0 else 0.0

    def elapsed(self, now: Optional[float] = None) -> float:
        if self._start is None:
            return 0.0
        return max(0.0, (now if now is not None else self._last[0] if self._last else self._start) - self._start)

    def rate(self) -> Optional[float]:
        """Units per second, measured as the class says (None until measurable)."""
        if self._last is None or self._start is None:
            return None
        t, done = self._last
        if self._ref is not None and done > self._ref[1] and t - self._ref[0] >= self.min_span_s:
            return (done - self._ref[1]) / (t - self._ref[0])
        if done > 0 and t - self._start >= self.min_span_s and done >= self.min_fraction * self.total:
            return done / (t - self._start)
        return None

    def update(self, done: float, now: float) -> None:
        if self._start is None:
            self._start = now
        if done > 0 and self._ref is None:
            self._ref = (now, done)
        self._last = (now, float(done))
        if done >= self.total:
            self._eta = (now, 0.0)
            return
        rate = self.rate()
        if rate is None or rate <= 0 or done < self.min_fraction * self.total:
            return
        raw = (self.total - done) / rate
        if self._eta is not None:
            previous = max(0.0, self._eta[1] - (now - self._eta[0]))
            raw = self.smoothing * raw + (1.0 - self.smoothing) * previous
        self._eta = (now, raw)

    def remaining(self, now: Optional[float] = None) -> Optional[float]:
        """Seconds left at ``now`` (counted down from the latest estimate; default: the latest sample's time),
        or None while there is no meaningful estimate."""
        if self._eta is None:
            return None
        at = now if now is not None else self._last[0]
        return max(0.0, self._eta[1] - (at - self._eta[0]))


def time_left(eta: Optional[float]) -> str:
    """'12 s left', 'almost done' (an estimate run out before the job), or '' without an estimate."""
    if eta is None:
        return ""
    return "almost done" if eta < 0.5 else f"{format_duration(eta)} left"


# --- how long runs take -----------------------------------------------------------------------------------------
def _get(row, name: str, default=None):
    return row.get(name, default) if isinstance(row, dict) else getattr(row, name, default)


class RunTimes:
    """Seconds per epoch of finished runs, by (dataset, model, K): the mean of those recorded."""

    def __init__(self) -> None:
        self._sums: dict[tuple, list] = {}

    def __len__(self) -> int:
        return sum(int(n) for _, n in self._sums.values())

    def add(self, row) -> bool:
        """Record a finished run (a ResultRow or its dict); False (ignored) without a usable time."""
        seconds, epochs = _get(row, "train_seconds"), _get(row, "epochs_completed") or _get(row, "epochs")
        if _get(row, "error") or not isinstance(seconds, (int, float)) or not epochs or seconds <= 0:
            return False
        key = (str(_get(row, "dataset")), str(_get(row, "model")), int(_get(row, "resonators_per_chain", 0)))
        total = self._sums.setdefault(key, [0.0, 0])
        total[0] += float(seconds) / float(epochs)
        total[1] += 1
        return True

    @classmethod
    def from_rows(cls, rows: Iterable) -> "RunTimes":
        times = cls()
        for row in rows:
            times.add(row)
        return times

    def seconds_per_epoch(self, dataset: str, model: str, k: int) -> Optional[float]:
        """That of (dataset, model, K) if known, else of the same model at the nearest known K (on a log
        scale), else None."""
        exact = self._sums.get((dataset, model, int(k)))
        if exact:
            return exact[0] / exact[1]
        same = [(key[2], s / n) for key, (s, n) in self._sums.items() if key[:2] == (dataset, model)]
        if not same:
            return None
        return min(same, key=lambda kv: abs(math.log(max(kv[0], 1)) - math.log(max(int(k), 1))))[1]

    def run_seconds(self, cfg) -> Optional[float]:
        """Expected training time of a RunConfig-like ``cfg`` (dataset, model, resonators_per_chain, epochs)."""
        spe = self.seconds_per_epoch(cfg.dataset, cfg.model, cfg.resonators_per_chain)
        return None if spe is None else spe * cfg.epochs


@dataclass(frozen=True)
class SweepEstimate:
    seconds: Optional[float]  #: expected duration of the known runs, divided among the workers
    n_runs: int
    n_unknown: int  #: runs of a model (on this dataset) with no timing yet
    n_timings: int  #: finished runs the estimate comes from

    def describe(self) -> str:
        if self.seconds is None:
            return "no estimate yet (train a run of these models on this dataset first)"
        text = f"about {format_duration(self.seconds)}"
        if self.n_unknown:
            text = f"more than {format_duration(self.seconds)} ({self.n_unknown} run(s) of models not timed yet)"
        return f"{text}, from {self.n_timings} finished run(s) of this session"


def estimate_sweep(jobs: Sequence, times: RunTimes, workers: int = 1) -> SweepEstimate:
    """The expected duration of a sweep's runs (RunConfigs): each run's seconds per epoch (:class:`RunTimes`)
    times its epochs, summed, divided by the parallel runs."""
    known = [s for s in (times.run_seconds(cfg) for cfg in jobs) if s is not None]
    parallel = max(1, min(int(workers), len(jobs) or 1))
    seconds = sum(known) / parallel if known else None
    return SweepEstimate(seconds, len(jobs), len(jobs) - len(known), len(times))


class SweepEta:
    """Time left of a running sweep of ``jobs`` (RunConfigs) from the runs finished so far.

    Each run is weighted by its expected cost (:class:`RunTimes`, learning from the sweep's own rows as they
    come; equal weights for what is not known); the sweep's throughput in that currency is measured from the
    first finished run to the latest one (the sweep's start-up excluded; with one run finished, from the start),
    so several parallel workers are accounted for. Between two finished runs the estimate counts down.
    Before the first run finishes, the estimate from the session's earlier runs (if any) counts down instead.
    """

    def __init__(self, jobs: Sequence, times: Optional[RunTimes] = None, workers: int = 1,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.jobs = list(jobs)
        self.times = times if times is not None else RunTimes()
        self.clock = clock
        self.started = clock()
        self._pending = [self._key(cfg) for cfg in self.jobs]
        self._finished: list[tuple[float, tuple]] = []
        self._eta: Optional[tuple] = None
        prior = estimate_sweep(self.jobs, self.times, workers)
        if prior.seconds is not None and not prior.n_unknown:
            self._eta = (self.started, prior.seconds)

    @staticmethod
    def _key(cfg) -> tuple:
        return (cfg.dataset, cfg.model, int(cfg.resonators_per_chain), int(cfg.epochs))

    @property
    def total(self) -> int:
        return len(self.jobs)

    @property
    def done(self) -> int:
        return len(self._finished)

    def _cost(self, key: tuple) -> Optional[float]:
        spe = self.times.seconds_per_epoch(*key[:3])
        return None if spe is None else spe * key[3]

    def finished(self, row: dict, now: Optional[float] = None) -> None:
        """A run of the sweep finished (its result row, failed ones too)."""
        now = self.clock() if now is None else now
        self.times.add(row)
        key = (str(_get(row, "dataset")), str(_get(row, "model")), int(_get(row, "resonators_per_chain", 0)),
               int(_get(row, "epochs", 0) or 0))
        match = next((k for k in self._pending if k == key), None)
        if match is None:  # a row we cannot match to a job (settings resolved differently): any pending job
            match = next((k for k in self._pending if k[1:3] == key[1:3]), self._pending[0] if self._pending else key)
        if match in self._pending:
            self._pending.remove(match)
        self._finished.append((now, match))
        self._eta = (now, self._estimate())

    def _estimate(self) -> float:
        if not self._pending:
            return 0.0
        costs = {key: self._cost(key) for _, key in self._finished}
        costs.update({key: self._cost(key) for key in self._pending})
        known = [c for c in costs.values() if c is not None and c > 0]
        fallback = sum(known) / len(known) if known else 1.0

        def cost(key: tuple) -> float:
            c = costs.get(key)
            return c if c is not None and c > 0 else fallback

        last = self._finished[-1][0]
        if len(self._finished) >= 2 and last > self._finished[0][0]:
            work = sum(cost(key) for _, key in self._finished[1:])
            span = last - self._finished[0][0]
        else:
            work = sum(cost(key) for _, key in self._finished)
            span = last - self.started
        if span <= 0 or work <= 0:
            return float("nan")
        return sum(cost(key) for key in self._pending) / (work / span)

    def elapsed(self, now: Optional[float] = None) -> float:
        return (self.clock() if now is None else now) - self.started

    def remaining(self, now: Optional[float] = None) -> Optional[float]:
        if self._eta is None or not math.isfinite(self._eta[1]):
            return None
        return max(0.0, self._eta[1] - ((self.clock() if now is None else now) - self._eta[0]))

    def describe(self, now: Optional[float] = None) -> str:
        """'3/12 runs · 41 s elapsed · 1 min 22 s left'."""
        parts = [f"{self.done}/{self.total} runs", f"{format_duration(self.elapsed(now))} elapsed"]
        left = time_left(self.remaining(now))
        if left:
            parts.append(("~" if self.done == 0 else "") + left)
        return " · ".join(parts)


# --- the shared progress bar ------------------------------------------------------------------------------------
class Bar(Protocol):
    """What the board needs of a QProgressBar."""

    def setValue(self, value: int) -> None: ...  # noqa: N802 - Qt's method name

    def setFormat(self, text: str) -> None: ...  # noqa: N802 - Qt's method name


class ProgressLane:
    """One job's line on the :class:`ProgressBoard`; ``setValue``/``setFormat`` as a QProgressBar's, so a
    presenter can write to it as to the bar itself."""

    def __init__(self, board: "ProgressBoard", key: str) -> None:
        self.board, self.key = board, key
        self.value, self.text, self.brief = 0, "", ""
        self.active = False
        self.stamp = 0

    def setValue(self, value: int) -> None:  # noqa: N802 - QProgressBar's method name
        self.set(value=int(value))

    def setFormat(self, text: str) -> None:  # noqa: N802 - QProgressBar's method name
        self.set(text=text)

    def set(self, value: Optional[int] = None, text: Optional[str] = None, brief: Optional[str] = None) -> None:
        """Change the lane (``brief``: what the bar shows of it while another job's lane is in front)."""
        if value is not None:
            self.value = max(0, min(BAR_STEPS, int(value)))
        if text is not None:
            self.text = text
        if brief is not None:
            self.brief = brief
        self.board.touch(self)

    def begin(self) -> None:
        self.active = True
        self.board.touch(self)

    def end(self) -> None:
        self.active = False
        self.board.touch(self)


class ProgressBoard:
    """The window's progress bar shared by its jobs, one :class:`ProgressLane` each, first made first shown."""

    def __init__(self, bar: Bar, idle_text: str) -> None:
        self.bar, self.idle_text = bar, idle_text
        self.lanes: dict[str, ProgressLane] = {}
        self._stamp = 0
        self._shown: Optional[tuple] = None

    def lane(self, key: str) -> ProgressLane:
        if key not in self.lanes:
            self.lanes[key] = ProgressLane(self, key)
        return self.lanes[key]

    def touch(self, lane: ProgressLane) -> None:
        self._stamp += 1
        lane.stamp = self._stamp
        self.render()

    def front(self) -> Optional[ProgressLane]:
        """The lane shown in full: the first active one, else the last one changed."""
        active = [lane for lane in self.lanes.values() if lane.active]
        if active:
            return active[0]
        written = [lane for lane in self.lanes.values() if lane.text]
        return max(written, key=lambda lane: lane.stamp) if written else None

    def render(self) -> None:
        front = self.front()
        if front is None:
            value, text = 0, self.idle_text
        else:
            others = [lane.brief or lane.text for lane in self.lanes.values() if lane.active and lane is not front]
            value, text = front.value, "   |   ".join([front.text, *others])
        if (value, text) != self._shown:  # each change repaints the bar
            self._shown = (value, text)
            self.bar.setValue(value)
            self.bar.setFormat(text)
