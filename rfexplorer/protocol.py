"""The typed protocol between the app and its engine process. Qt-free (import-linter checks it), and light: it
imports numpy only (the engine's types appear in annotations alone), so either process can import it first.

Every message is a frozen dataclass, pickled whole through the engine process's pipe (between our own two
processes only) and matched by its class on arrival (``isinstance`` or ``match``), never by position:

- GUI -> engine: a :class:`JobRequest`, one class per job kind (:class:`TrainJob`, :class:`LoadJob`,
  :class:`PreviewJob`, :class:`ImportJob`, :class:`SweepJob`, :class:`RobustnessJob`), :class:`PauseRun` (pause,
  resume or step the training run in progress) and :class:`Shutdown`.
- engine -> GUI: :class:`Ready` once, :class:`Warmed` once the background warm-up is over (it may come between
  any two messages), :class:`DatasetReady` whenever a train-slot job used a different dataset, then per job the
  :class:`JobMessage` subclasses: :class:`Started`, :class:`SnapshotReady`, :class:`RunFinished`,
  :class:`Previewed`, :class:`Imported`, :class:`Evaluated`, :class:`Loaded`, :class:`SweepRow`,
  :class:`SweepFinished`, :class:`RobustnessEval`, :class:`RobustnessFinished`, :class:`Failed` and always
  last :class:`Done`.
- :class:`Garbled` is what the GUI's pipe reader makes of a message it cannot unpickle.

Also here: the payloads that only the protocol defines (:class:`DatasetInfo`, :class:`RobustnessRequest`), the
job kinds (:class:`JobKind`) and the engine process's job slots (:class:`JobSlot`).
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Mapping, Optional

import numpy as np

if TYPE_CHECKING:  # annotations only: importing them would load torch (the engine's models)
    import torch

    from engine.config.run_config import RunConfig
    from engine.core.progress import Snapshot
    from engine.io.results import RunResult
    from engine.experiments.sweep.spec import SweepSpec
    from engine.io.topology_read import Topology

    from .state import DisplayState

#: Test samples handed to the GUI to drive the input comb.
SAMPLE_COUNT = 200


class JobSlot(enum.StrEnum):
    """The engine process's job slots, each with its own thread and cancel Event."""

    TRAIN = "train"  #: train, load, preview and import jobs, one at a time
    SWEEP = "sweep"
    ROBUSTNESS = "robustness"


class JobKind(enum.StrEnum):
    """What a job does (its :class:`JobRequest` class says the same)."""

    TRAIN = "train"
    LOAD = "load"
    PREVIEW = "preview"
    IMPORT = "import"
    SWEEP = "sweep"
    ROBUSTNESS = "robustness"

    @property
    def slot(self) -> JobSlot:
        """The slot a job of this kind runs in."""
        if self is JobKind.SWEEP:
            return JobSlot.SWEEP
        if self is JobKind.ROBUSTNESS:
            return JobSlot.ROBUSTNESS
        return JobSlot.TRAIN


# --- payloads ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RobustnessRequest:
    """A robustness study of a trained network (engine.nets.hardware.robustness) on the job's dataset."""

    model: torch.nn.Module  #: the trained network (pickled to the engine process: the GUI keeps its own)
    knob: str  #: one of engine.nets.hardware.ROBUSTNESS_KNOBS
    values: tuple  #: the knob's values, typed (engine.nets.hardware.parse_knob_values)
    repeats: int = 3  #: fresh chips (and noise draws) per value
    seed: int = 0  #: repeat r draws from seed + r at every value (common random numbers)
    config: Optional[RunConfig] = None  #: the network's RunConfig, if known (its validation split is measured on)
    fixed: Optional[Mapping[str, Any]] = None  #: {DeviceParams field: value} held at every value


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


# --- GUI -> engine ----------------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class JobRequest:
    """What the engine process needs of a job (the GUI keeps the rest: cancel reason, bookkeeping)."""

    kind: ClassVar[JobKind]
    id: int
    dataset: str = "mnist-mini"  #: a registered dataset name or a dataset file path
    data_dir: Optional[str] = None

    @property
    def slot(self) -> JobSlot:
        return self.kind.slot


@dataclass(frozen=True, kw_only=True)
class TrainJob(JobRequest):
    """Train a network (engine.training.loop.run_training)."""

    kind: ClassVar[JobKind] = JobKind.TRAIN
    config: RunConfig


@dataclass(frozen=True, kw_only=True)
class LoadJob(JobRequest):
    """Load the dataset into the engine's cache (a DatasetReady follows if the GUI has not heard of it)."""

    kind: ClassVar[JobKind] = JobKind.LOAD


@dataclass(frozen=True, kw_only=True)
class PreviewJob(JobRequest):
    """Build the untrained network of a config, seeded like a run of it."""

    kind: ClassVar[JobKind] = JobKind.PREVIEW
    config: RunConfig


@dataclass(frozen=True, kw_only=True)
class ImportJob(JobRequest):
    """Read a topology file, rebuild its network, then evaluate it on the dataset."""

    kind: ClassVar[JobKind] = JobKind.IMPORT
    path: str  #: the topology file


@dataclass(frozen=True, kw_only=True)
class SweepJob(JobRequest):
    """Run a sweep (engine.experiments.sweep.runner.run_sweep)."""

    kind: ClassVar[JobKind] = JobKind.SWEEP
    spec: SweepSpec
    backend: str = "local"  #: the sweep backend ('local' or 'ray'; engine.experiments.sweep.runner.BACKENDS)


@dataclass(frozen=True, kw_only=True)
class RobustnessJob(JobRequest):
    """Run a robustness study of a trained network."""

    kind: ClassVar[JobKind] = JobKind.ROBUSTNESS
    study: RobustnessRequest


@dataclass(frozen=True)
class Shutdown:
    """Cancel every job and exit."""


class PauseAction(enum.StrEnum):
    """What a :class:`PauseRun` asks of the training run in progress (engine.core.progress.PauseControl)."""

    PAUSE = "pause"  #: wait before the next batch
    RESUME = "resume"
    STEP = "step"  #: run to the end of the current epoch, then pause


@dataclass(frozen=True)
class PauseRun:
    """Pause, resume or step the train slot's run. It travels in order with the job requests: the engine clears
    its pause control when the train slot's next job arrives, so a request can never reach a later job."""

    action: PauseAction


# --- engine -> GUI: about the process ---------------------------------------------------------------------------
@dataclass(frozen=True)
class EngineMessage:
    """Anything the engine process sends the GUI."""


@dataclass(frozen=True)
class Ready(EngineMessage):
    """The engine process has started (sent once)."""

    pid: int


@dataclass(frozen=True)
class Warmed(EngineMessage):
    """The background warm-up (rfexplorer.engine_process.warm_up) is over."""

    seconds: float  #: how long it took (NaN if it failed)
    modules: tuple  #: the warmed-up modules now imported
    error: str  #: why it failed, or ""


@dataclass(frozen=True)
class DatasetReady(EngineMessage):
    """A train-slot job used a dataset the GUI has not heard of yet."""

    info: DatasetInfo


@dataclass(frozen=True)
class Garbled(EngineMessage):
    """Made by the GUI's pipe reader of a message it could not unpickle."""

    traceback: str


# --- engine -> GUI: about one job -------------------------------------------------------------------------------
@dataclass(frozen=True)
class JobMessage(EngineMessage):
    """A message about one job (its JobRequest.id)."""

    job_id: int


@dataclass(frozen=True)
class Started(JobMessage):
    """A train, sweep or robustness job has begun."""


@dataclass(frozen=True)
class SnapshotReady(JobMessage):
    """A training run's progress (numpy copies)."""

    snapshot: Snapshot


@dataclass(frozen=True)
class RunFinished(JobMessage):
    """A training run ended (also when cancelled: result.cancelled)."""

    result: RunResult


@dataclass(frozen=True)
class Previewed(JobMessage):
    """The untrained network of a PreviewJob's config."""

    state: DisplayState


@dataclass(frozen=True)
class Imported(JobMessage):
    """A topology file read and rebuilt (its evaluation follows)."""

    topology: Topology
    state: DisplayState


@dataclass(frozen=True)
class Evaluated(JobMessage):
    """The test accuracy of an imported topology on the job's dataset."""

    accuracy: float


@dataclass(frozen=True)
class Loaded(JobMessage):
    """A LoadJob's dataset is in the engine's cache."""


@dataclass(frozen=True)
class SweepRow(JobMessage):
    """One finished run of a sweep (RunResult.summary() row)."""

    row: dict


@dataclass(frozen=True)
class SweepFinished(JobMessage):
    """A sweep ended: all its rows (those done so far if it was cancelled)."""

    rows: list


@dataclass(frozen=True)
class RobustnessEval(JobMessage):
    """One evaluation of a robustness study."""

    value: Any  #: the knob's value
    repeat: int
    accuracy: float

    def as_dict(self) -> dict:
        """``{value, repeat, accuracy}``, as the controller keeps it."""
        return {"value": self.value, "repeat": self.repeat, "accuracy": self.accuracy}


@dataclass(frozen=True)
class RobustnessFinished(JobMessage):
    """A robustness study ended (cancelled or not)."""

    rows: list
    cancelled: bool

    def as_dict(self) -> dict:
        """``{rows, cancelled}``, as the controller takes it."""
        return {"rows": self.rows, "cancelled": self.cancelled}


@dataclass(frozen=True)
class Failed(JobMessage):
    """A job failed."""

    message: str  #: one paragraph for the status line and dialogs
    traceback: str
    stage: str  #: 'train', 'load' (the dataset), 'preview', 'import' (the file), 'evaluate', 'sweep' or 'robustness'


@dataclass(frozen=True)
class Done(JobMessage):
    """A job is over (always its last message): its slot takes the next one."""


#: Every message class of the protocol (requests, replies and the reader's Garbled).
MESSAGE_CLASSES = (TrainJob, LoadJob, PreviewJob, ImportJob, SweepJob, RobustnessJob, Shutdown, PauseRun, Ready,
                   Warmed, DatasetReady, Garbled, Started, SnapshotReady, RunFinished, Previewed, Imported, Evaluated,
                   Loaded, SweepRow, SweepFinished, RobustnessEval, RobustnessFinished, Failed, Done)
