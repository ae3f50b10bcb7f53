"""Workers that run engine jobs off the GUI thread.

A worker is a QObject moved to a QThread. Its slots run one job each (a training run, a topology evaluation,
a sweep); while a job runs, the thread's event loop is busy, so jobs are cancelled through the job's
:class:`engine.progress.CancelToken` (a threading.Event), never through a queued signal. Every exception
becomes a ``failed`` signal with a plain message; nothing dies silently.

Signals carry tuples ``(job, payload)`` so the controller can drop what belongs to a superseded job.
"""
from __future__ import annotations

import itertools
import traceback
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np
from PySide6.QtCore import QObject, Signal, Slot

from engine.progress import CancelToken

_ids = itertools.count(1)
#: How often a training run sends a snapshot (s): a little faster than the views redraw, so that every redraw
#: has fresh data (the engine's own default, for headless callers, is 0.1 s).
SNAPSHOT_INTERVAL_S = 0.05


@dataclass
class Job:
    """One unit of work for a worker. ``kind`` is 'train', 'evaluate', 'load' or 'sweep'."""

    kind: str
    config: Any = None  #: RunConfig for 'train'; SweepSpec for 'sweep'
    dataset: str = "mnist-mini"
    data_dir: Optional[str] = None
    payload: Any = None  #: the topology for 'evaluate'
    token: CancelToken = field(default_factory=CancelToken)
    id: int = field(default_factory=lambda: next(_ids))
    reason: str = ""  #: why it was cancelled, for the status line

    def cancel(self, reason: str = "") -> None:
        if not self.token.is_set():
            self.reason = reason
        self.token.set()

    @property
    def cancelled(self) -> bool:
        return self.token.is_set()


@dataclass
class DatasetInfo:
    """What the GUI needs of a loaded dataset: its description and a few test images to show."""

    name: str
    description: str
    n_inputs: int
    n_classes: int
    image_shape: tuple
    sample_images: np.ndarray  #: (S, n_inputs) float32 copies in [0, 1]
    sample_labels: np.ndarray  #: (S,)

    @classmethod
    def from_dataset(cls, ds, n_samples: int = 200) -> "DatasetInfo":
        n = min(n_samples, len(ds.test_y))
        return cls(ds.name, ds.describe(), ds.n_inputs, ds.n_classes, tuple(ds.image_shape),
                   ds.test_x[:n].detach().cpu().numpy().astype(np.float32, copy=True),
                   ds.test_y[:n].detach().cpu().numpy().copy())


def describe_exception(exc: BaseException) -> str:
    """A one-paragraph message for the status line and dialogs."""
    from engine.progress import DivergenceError

    if isinstance(exc, (ValueError, FileNotFoundError, DivergenceError)):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


class _DatasetCache:
    """Keeps the last loaded dataset so consecutive runs do not reload full MNIST (seconds)."""

    def __init__(self) -> None:
        self._key = None
        self._ds = None

    def get(self, name: str, data_dir: Optional[str]):
        from engine.data import load_dataset

        key = (name, data_dir or "")
        if self._key != key:
            self._ds = load_dataset(name, data_dir)
            self._key = key
            return self._ds, True
        return self._ds, False


class TrainingWorker(QObject):
    """Runs training and evaluation jobs, one at a time, in its own thread."""

    started = Signal(object)          #: job
    snapshot = Signal(object)         #: (job, engine.progress.Snapshot)
    finished = Signal(object)         #: (job, RunResult)  (also for cancelled runs: result.cancelled)
    evaluated = Signal(object)        #: (job, accuracy float)
    failed = Signal(object)           #: (job, message str, traceback str)
    skipped = Signal(object)          #: job cancelled before it began
    loaded = Signal(object)           #: job ('load': the dataset is in the cache)
    dataset_ready = Signal(object)    #: DatasetInfo, whenever a different dataset was loaded

    def __init__(self) -> None:
        super().__init__()
        self._cache = _DatasetCache()

    def _dataset(self, job: Job):
        ds, fresh = self._cache.get(job.dataset, job.data_dir)
        if fresh:
            self.dataset_ready.emit(DatasetInfo.from_dataset(ds))
        return ds

    @Slot(object)
    def run_job(self, job: Job) -> None:
        if job.cancelled:
            self.skipped.emit(job)
            return
        try:
            if job.kind == "train":
                self._train(job)
            elif job.kind == "load":
                self._dataset(job)
                self.loaded.emit(job)
            elif job.kind == "evaluate":
                self._evaluate(job)
            else:
                raise ValueError(f"unknown job kind {job.kind!r}")
        except BaseException as exc:  # noqa: BLE001 - every failure must reach the GUI
            self.failed.emit((job, describe_exception(exc), traceback.format_exc()))

    def _train(self, job: Job) -> None:
        from engine.training import run_training

        self.started.emit(job)
        ds = self._dataset(job)

        def progress(snap) -> None:  # runs in this worker thread; snapshots are already copies
            self.snapshot.emit((job, snap))

        result = run_training(job.config, dataset=ds, progress=progress, cancel=job.token,
                              snapshot_interval_s=SNAPSHOT_INTERVAL_S)
        self.finished.emit((job, result))

    def _evaluate(self, job: Job) -> None:
        from .engine_extras import evaluate_topology

        self.started.emit(job)
        ds = self._dataset(job)
        acc = evaluate_topology(job.payload, ds)
        self.evaluated.emit((job, float(acc)))


class SweepWorker(QObject):
    """Runs an accuracy-versus-sparsity sweep (engine.sweep.run_sweep) in its own thread."""

    started = Signal(object)   #: job
    row = Signal(object)       #: (job, row dict)
    finished = Signal(object)  #: (job, rows list)
    failed = Signal(object)    #: (job, message, traceback)

    def __init__(self) -> None:
        super().__init__()
        self._cache = _DatasetCache()

    @Slot(object)
    def run_job(self, job: Job) -> None:
        if job.cancelled:
            self.finished.emit((job, []))
            return
        try:
            from .engine_extras import run_sweep

            self.started.emit(job)
            ds, _ = self._cache.get(job.dataset, job.data_dir)

            def on_result(row) -> None:
                self.row.emit((job, dict(row)))

            rows = run_sweep(job.config, dataset=ds, on_result=on_result, cancel=job.token)
            self.finished.emit((job, list(rows)))
        except BaseException as exc:  # noqa: BLE001
            self.failed.emit((job, describe_exception(exc), traceback.format_exc()))
