"""Workers that run engine jobs off the GUI thread.

A worker is a QObject moved to a QThread. Its slots run one job each (a training run, a dataset load, the
preview of an untrained network, a topology import and its evaluation, a sweep); while a job runs, the thread's
event loop is busy, so jobs are cancelled through the job's :class:`engine.progress.CancelToken` (a
threading.Event), never through a queued signal. Every exception becomes a ``failed`` signal with a plain
message; nothing dies silently. Every torch model the app shows is built here, never on the GUI thread.

Signals carry tuples ``(job, payload)`` so the controller can drop what belongs to a superseded job.
"""
from __future__ import annotations

import itertools
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
from PySide6.QtCore import QObject, Signal, Slot

from engine.progress import CancelToken

from .memory import release_free_memory

_ids = itertools.count(1)
#: How often a training run sends a snapshot (s): a little faster than the views redraw, so that every redraw
#: has fresh data (the engine's own default, for headless callers, is 0.1 s).
SNAPSHOT_INTERVAL_S = 0.05
#: Test samples handed to the GUI to drive the input comb.
SAMPLE_COUNT = 200


@dataclass
class Job:
    """One unit of work for a worker. ``kind`` is 'train', 'load', 'preview', 'import' or 'sweep'."""

    kind: str
    config: Any = None  #: RunConfig for 'train' and 'preview'; SweepSpec for 'sweep'
    dataset: str = "mnist-mini"  #: a registered dataset name or a dataset file path
    data_dir: Optional[str] = None
    payload: Any = None  #: the topology file path for 'import'
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
    """What the GUI needs of a loaded dataset: its shape, class names, description and a few test samples."""

    name: str  #: the dataset's own name (the file name for a user file)
    key: str  #: what was asked for: a registered name or the file path
    description: str
    n_inputs: int
    n_classes: int
    class_names: tuple
    image_shape: Optional[tuple]  #: (rows, columns), or None when the inputs have no 2-D shape
    sample_images: np.ndarray  #: (S, n_inputs) float32 copies in [0, 1]
    sample_labels: np.ndarray  #: (S,)
    source: str = ""
    n_train: int = 0
    n_test: int = 0

    @classmethod
    def from_dataset(cls, ds, key: str = "", n_samples: int = SAMPLE_COUNT) -> "DatasetInfo":
        n = min(n_samples, len(ds.test_y))
        shape = getattr(ds, "image_shape", None)
        names = tuple(getattr(ds, "class_names", ()) or (str(c) for c in range(ds.n_classes)))
        return cls(ds.name, key or ds.name, ds.describe(), int(ds.n_inputs), int(ds.n_classes), names,
                   tuple(int(s) for s in shape) if shape else None,
                   ds.test_x[:n].detach().cpu().numpy().astype(np.float32, copy=True),
                   ds.test_y[:n].detach().cpu().numpy().copy(), str(getattr(ds, "source", "")),
                   int(len(ds.train_y)), int(len(ds.test_y)))


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
            ds = load_dataset(name, data_dir)
            self._key, self._ds = key, ds
            return ds, True
        return self._ds, False


class TrainingWorker(QObject):
    """Runs training, loading, preview and import jobs, one at a time, in its own thread."""

    started = Signal(object)          #: job
    snapshot = Signal(object)         #: (job, engine.progress.Snapshot)
    finished = Signal(object)         #: (job, RunResult)  (also for cancelled runs: result.cancelled)
    previewed = Signal(object)        #: (job, DisplayState) of the untrained network of job.config
    imported = Signal(object)         #: (job, Topology, DisplayState): a topology file read and rebuilt
    evaluated = Signal(object)        #: (job, accuracy float) of the imported topology on job.dataset
    failed = Signal(object)           #: (job, message str, traceback str, stage str)
    skipped = Signal(object)          #: job cancelled before it began
    loaded = Signal(object)           #: job ('load': the dataset is in the cache)
    dataset_ready = Signal(object)    #: DatasetInfo, whenever a different dataset was loaded

    def __init__(self) -> None:
        super().__init__()
        self._cache = _DatasetCache()
        self._info: Optional[DatasetInfo] = None
        self._stage = ""

    def _dataset(self, job: Job):
        ds, fresh = self._cache.get(job.dataset, job.data_dir)
        if fresh:
            self._info = DatasetInfo.from_dataset(ds, key=job.dataset)
            self.dataset_ready.emit(self._info)
        return ds

    @Slot(object)
    def run_job(self, job: Job) -> None:
        if job.cancelled:
            self.skipped.emit(job)
            return
        self._stage = job.kind
        try:
            if job.kind == "train":
                self._train(job)
            elif job.kind == "load":
                self._dataset(job)
                self.loaded.emit(job)
            elif job.kind == "preview":
                self._stage = "load"
                ds = self._dataset(job)
                self._stage = "preview"
                self._preview(job, ds)
            elif job.kind == "import":
                topo = self._import(job)
                self._stage = "evaluate"
                self._evaluate(job, topo)
            else:
                raise ValueError(f"unknown job kind {job.kind!r}")
        except BaseException as exc:  # noqa: BLE001 - every failure must reach the GUI
            # stage: 'train', 'load' (the dataset), 'preview', 'import' (the file) or 'evaluate'
            self.failed.emit((job, describe_exception(exc), traceback.format_exc(), self._stage))
        finally:
            if job.kind in ("train", "load", "import"):
                release_free_memory()  # what the job freed goes back to the OS (see rfexplorer.memory)

    def _train(self, job: Job) -> None:
        from engine.training import run_training

        self.started.emit(job)
        ds = self._dataset(job)

        def progress(snap) -> None:  # runs in this worker thread; snapshots are already copies
            self.snapshot.emit((job, snap))

        result = run_training(job.config, dataset=ds, progress=progress, cancel=job.token,
                              snapshot_interval_s=SNAPSHOT_INTERVAL_S)
        self.finished.emit((job, result))

    def _preview(self, job: Job, ds) -> None:
        """The untrained network of job.config on the job's dataset, seeded like a run of that config."""
        import torch

        from engine.models import build_model

        from .labels import describe_config
        from .state import state_from_model

        cfg = job.config
        if cfg.spec.uses_k and cfg.resonators_per_chain > ds.n_inputs:
            cfg = cfg.with_(resonators_per_chain=ds.n_inputs)
        # the run's own generator, as run_training seeds it: the preview is the run's starting point
        model = build_model(cfg, ds.n_inputs, ds.n_classes, torch.Generator().manual_seed(cfg.seed))
        state = state_from_model(model, cfg, f"— initial state: {describe_config(cfg, ds.n_inputs)} (untrained)",
                                 class_names=getattr(ds, "class_names", ()),
                                 image_shape=getattr(ds, "image_shape", None))
        self.previewed.emit((job, state))

    def _import(self, job: Job):
        from engine.topology import load_topology

        from .state import state_from_model

        topo = load_topology(job.payload)
        name = Path(job.payload).name
        state = state_from_model(topo.model, topo.config, f"— imported {name}",
                                 int(topo.metrics.get("rewiring_events", 0) or 0),
                                 class_names=topo.class_names, image_shape=topo.image_shape)
        self.imported.emit((job, topo, state))
        return topo

    def _evaluate(self, job: Job, topo) -> None:
        from engine.evaluation import evaluate_topology

        ds = self._dataset(job)
        self.evaluated.emit((job, float(evaluate_topology(topo, ds))))


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
            from engine.sweep import run_sweep

            self.started.emit(job)
            ds, _ = self._cache.get(job.dataset, job.data_dir)

            def on_result(row) -> None:
                self.row.emit((job, dict(row)))

            rows = run_sweep(job.config, dataset=ds, on_result=on_result, cancel=job.token)
            self.finished.emit((job, list(rows)))
        except BaseException as exc:  # noqa: BLE001
            self.failed.emit((job, describe_exception(exc), traceback.format_exc()))
