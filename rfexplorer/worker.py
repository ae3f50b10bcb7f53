"""The GUI side of the engine process: spawns it, hands it jobs, turns its messages into Qt signals.

Engine jobs (training runs, dataset loads, previews of untrained networks, topology imports and their
evaluation, sweeps, robustness studies) run in one separate process, :mod:`rfexplorer.engine_process`,
spawned once per window (multiprocessing's 'spawn' start method: never fork a process that runs Qt) and
reused for every job, so
training never shares Python's interpreter lock with the GUI. :class:`EngineClient` lives in the GUI thread:

- it keeps each slot's queue ('train': train, load, preview, import; 'sweep'; 'robustness') and sends a slot's next job
  only when the previous one is done, after clearing that slot's cancel Event; cancelling the job in flight
  sets the Event, which the engine checks between batches; a queued job is cancelled here and never sent;
  pausing, resuming or stepping the run in flight sends a ``PauseRun`` (:meth:`EngineClient.pause`);
- a thin reader QThread (:class:`PipeReader`) waits on the pipe (without the interpreter lock), unpickles each
  message (a dataclass of :mod:`rfexplorer.protocol`) and hands it to :meth:`EngineClient._on_message` in the
  GUI thread, which matches it by class and emits the signals the controller consumes, each carrying the
  GUI-side :class:`Job`;
- when the process dies (killed, crashed, out of memory), the reader sees the pipe close: the jobs in flight
  are reported in ``lost`` and a new process is started for the queued and later jobs;
- :meth:`EngineClient.shutdown` cancels everything, asks the process to exit, joins it (terminates it as a
  last resort) and stops the reader. The process exits as soon as its jobs have stopped, without the
  interpreter's teardown (see :mod:`rfexplorer.engine_process`), so this takes a fraction of a second.

Signals carry tuples ``(job, payload)`` so the controller can drop what belongs to a superseded job.
"""
from __future__ import annotations

import atexit
import collections
import dataclasses
import itertools
import multiprocessing
import signal
import sys
import traceback
import types
import weakref
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Optional, Union

from PySide6.QtCore import QObject, QThread, QTimer, Signal, Slot

from engine.core.progress import CancelToken

from . import engine_process
from .engine_process import (SAMPLE_COUNT, SLOTS, SNAPSHOT_INTERVAL_S, DatasetInfo,  # noqa: F401 (re-exported)
                             JobRequest, RobustnessRequest, describe_exception)
from .protocol import (DatasetReady, Done, EngineMessage, Evaluated, Failed, Garbled, ImportJob, Imported,
                       JobKind, JobMessage, JobSlot, LoadJob, Loaded, PauseAction, PauseRun, PreviewJob, Previewed,
                       Ready, RobustnessEval, RobustnessFinished, RobustnessJob, RunFinished, Shutdown,
                       SnapshotReady, Started, SweepFinished, SweepJob, SweepRow, TrainJob, Warmed)

if TYPE_CHECKING:
    from engine.config.run_config import RunConfig
    from engine.experiments.sweep.spec import SweepSpec

_ids = itertools.count(1)
#: How often the reader looks at its stop flag while the pipe is quiet (s).
POLL_S = 0.2
#: How long shutdown waits for the engine process to exit by itself before terminating it (s).
JOIN_TIMEOUT_S = 5.0
#: The engine process died this many times in a row before it said it was ready: stop restarting it.
MAX_FAILED_STARTS = 3
SPAWN = multiprocessing.get_context("spawn")


@dataclass
class Job:
    """One unit of work for the engine, as the GUI keeps it; :meth:`request` is what the engine is sent."""

    kind: JobKind  #: a JobKind, or its value ('train', 'load', 'preview', 'import', 'sweep', 'robustness')
    config: Union[RunConfig, SweepSpec, None] = None  #: RunConfig for 'train' and 'preview'; SweepSpec for 'sweep'
    dataset: str = "mnist-mini"  #: a registered dataset name or a dataset file path
    data_dir: Optional[str] = None
    payload: Union[str, RobustnessRequest, None] = None  #: topology file path ('import'), RobustnessRequest
    backend: str = "local"  #: the sweep backend
    token: CancelToken = field(default_factory=CancelToken)  #: set here, in the GUI (the engine has an Event)
    id: int = field(default_factory=lambda: next(_ids))
    reason: str = ""  #: why it was cancelled, for the status line

    def __post_init__(self) -> None:
        self.kind = JobKind(self.kind)  # a bad kind fails here, in the GUI, not in the engine process

    def cancel(self, reason: str = "") -> None:
        if not self.token.is_set():
            self.reason = reason
        self.token.set()

    @property
    def cancelled(self) -> bool:
        return self.token.is_set()

    @property
    def slot(self) -> JobSlot:
        return self.kind.slot

    def request(self) -> JobRequest:
        """The typed request the engine process is sent for this job."""
        where = {"id": self.id, "dataset": self.dataset, "data_dir": self.data_dir}
        match self.kind:
            case JobKind.TRAIN:
                return TrainJob(config=self.config, **where)
            case JobKind.LOAD:
                return LoadJob(**where)
            case JobKind.PREVIEW:
                return PreviewJob(config=self.config, **where)
            case JobKind.IMPORT:
                return ImportJob(path=self.payload, **where)
            case JobKind.SWEEP:
                return SweepJob(spec=self.config, backend=self.backend, **where)
            case JobKind.ROBUSTNESS:
                return RobustnessJob(study=self.payload, **where)
        raise ValueError(f"unknown job kind {self.kind!r}")


class PipeReader(QThread):
    """Reads the engine's messages off the pipe in its own thread; ``received`` carries (generation, message)
    to the GUI thread, ``closed`` (generation) says the pipe closed (the process exited or died)."""

    received = Signal(object)
    closed = Signal(int)

    def __init__(self, conn, generation: int, parent: Optional[QObject] = None) -> None:
        super().__init__(parent)
        self.setObjectName(f"rfexplorer-engine-reader-{generation}")
        self._conn = conn
        self.generation = generation
        self._stop = False

    def stop(self) -> None:
        self._stop = True

    def run(self) -> None:
        conn = self._conn
        while not self._stop:
            try:
                if not conn.poll(POLL_S):  # waits without the interpreter lock
                    continue
                data = conn.recv_bytes()
            except (EOFError, OSError):
                break
            try:
                message = engine_process.loads(data)
            except Exception:  # noqa: BLE001 - a message we cannot read must not kill the reader
                message = Garbled(traceback.format_exc())
            self.received.emit((self.generation, message))
        self.closed.emit(self.generation)


def describe_exit(exitcode: Optional[int]) -> str:
    if exitcode is None:
        return "it stopped answering"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = str(-exitcode)
        hint = " (out of memory, or killed from outside)" if -exitcode == signal.SIGKILL else ""
        return f"it was killed by {name}{hint}"
    return f"it exited with status {exitcode}"


@contextmanager
def _main_module_hidden():
    """While a process is spawned, hide this process's ``__main__`` from multiprocessing, so that the engine
    process does not import it again (spawn runs the parent's main script in the child: a script that opens
    a window at top level, without ``if __name__ == "__main__"``, would open one there too, and any main script
    would drag Qt into the engine). The engine process needs nothing from it: its entry point is
    :func:`rfexplorer.engine_process.main`."""
    main = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")  # no __file__, no __spec__: nothing to import
    try:
        yield
    finally:
        if main is not None:
            sys.modules["__main__"] = main


_live: "weakref.WeakSet[EngineClient]" = weakref.WeakSet()
_atexit_registered = False
#: An engine process started before any window (:func:`prestart`): (process, GUI end of the pipe, cancel Events,
#: torch threads), taken by the first EngineClient that asks for the same entry point and threads.
_prestarted: Optional[tuple] = None


def _start_process(entry, torch_threads: int) -> tuple:
    """Spawn an engine process running ``entry``: (process, the GUI's end of its pipe, its cancel Events)."""
    parent_conn, child_conn = SPAWN.Pipe(duplex=True)
    # fresh Events for each process: one that died inside Event.is_set() may have left the old ones locked
    cancels = {slot: SPAWN.Event() for slot in SLOTS}
    proc = SPAWN.Process(target=entry, name="rfexplorer-engine",
                         args=(child_conn, cancels[JobSlot.TRAIN], cancels[JobSlot.SWEEP], int(torch_threads),
                               cancels[JobSlot.ROBUSTNESS]))
    proc.daemon = False  # a sweep may start its own worker processes, which a daemon cannot
    with _main_module_hidden():
        proc.start()
    child_conn.close()  # so that the pipe reports EOF here when the process dies
    return proc, parent_conn, cancels


def prestart(torch_threads: int) -> None:
    """Start the engine process now, before the window is built (rfexplorer.app does, first thing): it imports
    torch and warms its optimizer up while this process imports Qt and builds the window, so a run started as
    soon as the window shows waits less. The window's EngineClient takes it over; one never taken is ended at
    exit."""
    global _prestarted
    if _prestarted is None:
        _prestarted = (*_start_process(engine_process.main, torch_threads), int(torch_threads))
        atexit.register(_end_prestarted)


def _take_prestarted(entry, torch_threads: int) -> Optional[tuple]:
    """The prestarted engine process (see :func:`prestart`) if it runs ``entry`` with these threads and lives."""
    global _prestarted
    found, _prestarted = _prestarted, None
    if found is None:
        return None
    proc, conn, cancels, threads = found
    if entry is engine_process.main and threads == int(torch_threads) and proc.is_alive():
        return proc, conn, cancels
    _prestarted = found  # not for this client: ended at exit if nobody takes it
    return None


def _end_prestarted() -> None:
    global _prestarted
    found, _prestarted = _prestarted, None
    if found is not None:
        proc, conn = found[0], found[1]
        conn.close()  # the process sees the GUI gone and exits
        proc.join(2.0)
        if proc.is_alive():
            proc.terminate()
            proc.join(2.0)


def _stop_live_processes() -> None:
    """At interpreter exit, end engine processes a window never shut down (multiprocessing would otherwise
    wait for them forever: they are not daemons, so that a sweep can start its own worker processes)."""
    for client in list(_live):
        client._end_process(timeout=1.0)


class EngineClient(QObject):
    """The engine process as the controller sees it: submit, cancel, shutdown, and signals."""

    started = Signal(object)          #: job ('train')
    snapshot = Signal(object)         #: (job, engine.core.progress.Snapshot)
    finished = Signal(object)         #: (job, RunResult)  (also for cancelled runs: result.cancelled)
    previewed = Signal(object)        #: (job, DisplayState) of the untrained network of job.config
    imported = Signal(object)         #: (job, Topology, DisplayState): a topology file read and rebuilt
    evaluated = Signal(object)        #: (job, accuracy float) of the imported topology on job.dataset
    failed = Signal(object)           #: (job, message str, traceback str, stage str)
    skipped = Signal(object)          #: job cancelled before it was sent
    loaded = Signal(object)           #: job ('load': the dataset is in the engine's cache)
    dataset_ready = Signal(object)    #: DatasetInfo, whenever a train-slot job used a different dataset
    sweep_started = Signal(object)    #: job
    sweep_row = Signal(object)        #: (job, row dict)
    sweep_finished = Signal(object)   #: (job, rows list); a sweep cancelled before it began gives []
    sweep_failed = Signal(object)     #: (job, message, traceback)
    robustness_started = Signal(object)   #: job
    robustness_eval = Signal(object)      #: (job, {value, repeat, accuracy}): one evaluation of the study
    robustness_finished = Signal(object)  #: (job, {rows, cancelled}); cancelled before it began: no rows
    robustness_failed = Signal(object)    #: (job, message, traceback)
    lost = Signal(object)             #: (message, [jobs that were in flight]): the process died
    restarted = Signal(int)           #: pid of the new process started after a death

    def __init__(self, parent: Optional[QObject] = None, torch_threads: Optional[int] = None,
                 entry=None) -> None:
        """``entry``: the engine process's entry point (default :func:`rfexplorer.engine_process.main`; tests
        give one that fails)."""
        super().__init__(parent)
        self._entry = entry if entry is not None else engine_process.main
        if torch_threads is None:
            import torch

            torch_threads = torch.get_num_threads()  # the app set it at start-up (rfexplorer.app)
        self._threads = int(torch_threads)
        self._queues = {slot: collections.deque() for slot in SLOTS}
        self._inflight: dict[JobSlot, Optional[Job]] = {slot: None for slot in SLOTS}
        self._jobs: dict[int, Job] = {}
        self._generation = 0
        self._proc = None
        self._conn = None
        self._cancels: dict = {}
        self.reader: Optional[PipeReader] = None
        self._ready = False
        self._warm_up: Optional[dict] = None
        self._failed_starts = 0
        self._broken: Optional[str] = None  #: why no engine process can be started any more
        self._shut_down = False
        self.restarts = 0
        self._pump_timer = QTimer(self)
        self._pump_timer.setSingleShot(True)
        self._pump_timer.setInterval(0)
        self._pump_timer.timeout.connect(self._pump)
        self._spawn()

    # --- the process ------------------------------------------------------------------------------------------
    @property
    def process(self):
        """The current engine process (multiprocessing.Process)."""
        return self._proc

    @property
    def pid(self) -> Optional[int]:
        return self._proc.pid if self._proc is not None else None

    @property
    def ready(self) -> bool:
        """The current process has started and said so."""
        return self._ready

    @property
    def warm_up(self) -> Optional[dict]:
        """The current process's report of its warm-up (rfexplorer.engine_process.warm_up: ``seconds``,
        ``modules`` imported, ``error``), or None until it is over."""
        return self._warm_up

    def _spawn(self) -> None:
        global _atexit_registered
        self._generation += 1
        started = _take_prestarted(self._entry, self._threads) if self._generation == 1 else None
        proc, parent_conn, self._cancels = started or _start_process(self._entry, self._threads)
        self._proc, self._conn, self._ready, self._warm_up = proc, parent_conn, False, None
        _live.add(self)
        if not _atexit_registered:  # after multiprocessing's own handler, so it runs before it
            atexit.register(_stop_live_processes)
            _atexit_registered = True
        if self.reader is not None:  # the previous process's, finished
            self.reader.deleteLater()
        reader = PipeReader(parent_conn, self._generation, self)
        reader.received.connect(self._on_message)
        reader.closed.connect(self._on_closed)
        self.reader = reader
        reader.start()

    def _send(self, message: Union[JobRequest, Shutdown]) -> bool:
        try:
            self._conn.send_bytes(engine_process.dumps(message))
            return True
        except (OSError, ValueError):  # the process is gone; the reader reports it
            return False

    def _end_process(self, timeout: float) -> None:
        proc = self._proc
        if proc is None:
            return
        for event in self._cancels.values():
            event.set()
        if not self._ready and self._inflight[JobSlot.SWEEP] is None and self._inflight[JobSlot.ROBUSTNESS] is None:
            # still starting up (importing torch, for seconds), or at most loading, previewing or training for a
            # window that is going away: nothing it does writes a file or starts a process, so do not wait for it
            timeout = 0.0
        self._send(Shutdown())
        proc.join(timeout)
        if proc.is_alive():
            proc.terminate()
            proc.join(2.0)
        if proc.is_alive():
            proc.kill()
            proc.join(2.0)

    def shutdown(self, timeout: float = JOIN_TIMEOUT_S) -> None:
        """Cancel everything, let the engine process exit (terminate it if it does not in ``timeout``), stop
        the reader thread. Call once, on window close."""
        if self._shut_down:
            return
        self._shut_down = True
        self._pump_timer.stop()
        for job in list(self._jobs.values()):
            job.cancel("window closed")
        self._end_process(timeout)
        if self.reader is not None:
            self.reader.stop()
            self.reader.wait()
        if self._conn is not None:
            self._conn.close()
        _live.discard(self)

    @property
    def is_shut_down(self) -> bool:
        return self._shut_down

    # --- jobs -------------------------------------------------------------------------------------------------
    def submit(self, job: Job) -> None:
        """Queue a job; it is sent when its slot is free (a queued job that is cancelled is never sent)."""
        if self._shut_down:
            return
        self._jobs[job.id] = job
        self._queues[job.slot].append(job)
        self._pump_timer.start()  # from the event loop, as a queued signal would

    def cancel(self, job: Job, reason: str = "") -> None:
        """Cancel a job: a queued one is dropped when its turn comes, the one in flight stops at its next
        batch (its slot's Event is set)."""
        job.cancel(reason)
        if self._inflight.get(job.slot) is job and not self._shut_down:
            self._cancels[job.slot].set()

    def pause(self, job: Job, action: PauseAction | str) -> bool:
        """Pause, resume or step one epoch (``PauseAction``) the training run ``job`` if it is the one in flight;
        False (nothing sent) otherwise. The request travels in order with the job requests (see PauseRun)."""
        if self._shut_down or job.cancelled or self._inflight[JobSlot.TRAIN] is not job:
            return False
        return self._send(PauseRun(PauseAction(action)))

    @Slot()
    def _pump(self) -> None:
        for slot in SLOTS:
            queue = self._queues[slot]
            while self._inflight[slot] is None and queue and not self._shut_down:
                job = queue.popleft()
                if job.cancelled:
                    self._jobs.pop(job.id, None)
                    if slot is JobSlot.SWEEP:
                        self.sweep_finished.emit((job, []))
                    elif slot is JobSlot.ROBUSTNESS:
                        self.robustness_finished.emit((job, {"rows": [], "cancelled": True}))
                    else:
                        self.skipped.emit(job)
                    continue
                if self._broken is not None:
                    self._fail(job, self._broken)
                    continue
                self._cancels[slot].clear()  # no cancel request of an earlier job can reach this one
                self._inflight[slot] = job
                self._send(job.request())

    def _fail(self, job: Job, message: str) -> None:
        self._jobs.pop(job.id, None)
        if job.slot is JobSlot.SWEEP:
            self.sweep_failed.emit((job, message, ""))
        elif job.slot is JobSlot.ROBUSTNESS:
            self.robustness_failed.emit((job, message, ""))
        else:
            self.failed.emit((job, message, "", job.kind))

    # --- messages (GUI thread) --------------------------------------------------------------------------------
    @Slot(object)
    def _on_message(self, item) -> None:
        generation, message = item
        if generation != self._generation or self._shut_down:
            return
        match message:
            case Ready():
                self._ready, self._failed_starts = True, 0
            case Warmed():
                self._warm_up = dataclasses.asdict(message)  # {seconds, modules, error}
                if message.error:
                    print(f"rfexplorer: the engine process's warm-up failed: {message.error}", file=sys.stderr)
            case DatasetReady():
                self.dataset_ready.emit(message.info)
            case Garbled():
                print(f"rfexplorer: unreadable message from the engine process:\n{message.traceback}")
            case JobMessage():
                job = self._jobs.get(message.job_id)
                if job is not None:
                    self._on_job_message(job, message)

    def _on_job_message(self, job: Job, message: EngineMessage) -> None:
        """A message about ``job``, turned into the signal the controller consumes."""
        match message:
            case Started():
                {JobSlot.SWEEP: self.sweep_started,
                 JobSlot.ROBUSTNESS: self.robustness_started}.get(job.slot, self.started).emit(job)
            case SnapshotReady():
                self.snapshot.emit((job, message.snapshot))
            case RunFinished():
                self.finished.emit((job, message.result))
            case Previewed():
                self.previewed.emit((job, message.state))
            case Imported():
                self.imported.emit((job, message.topology, message.state))
            case Evaluated():
                self.evaluated.emit((job, message.accuracy))
            case Loaded():
                self.loaded.emit(job)
            case SweepRow():
                self.sweep_row.emit((job, message.row))
            case SweepFinished():
                self.sweep_finished.emit((job, message.rows))
            case RobustnessEval():
                self.robustness_eval.emit((job, message.as_dict()))
            case RobustnessFinished():
                self.robustness_finished.emit((job, message.as_dict()))
            case Failed():
                self._on_failed(job, message)
            case Done():
                self._jobs.pop(job.id, None)
                if self._inflight[job.slot] is job:
                    self._inflight[job.slot] = None
                self._pump()

    def _on_failed(self, job: Job, message: Failed) -> None:
        if job.slot is JobSlot.SWEEP:
            self.sweep_failed.emit((job, message.message, message.traceback))
        elif job.slot is JobSlot.ROBUSTNESS:
            self.robustness_failed.emit((job, message.message, message.traceback))
        else:
            self.failed.emit((job, message.message, message.traceback, message.stage))

    @Slot(int)
    def _on_closed(self, generation: int) -> None:
        """The pipe closed: unless we are shutting down, the engine process died. Report the jobs in flight,
        start a new process and carry on with the queued jobs."""
        if generation != self._generation or self._shut_down:
            return
        proc = self._proc
        proc.join(2.0)
        how = describe_exit(proc.exitcode)
        if proc.is_alive():  # the pipe broke but the process lives on: end it
            proc.kill()
            proc.join(2.0)
        self.reader.wait()  # its loop has ended (the pipe closed); _spawn replaces it
        self._conn.close()
        lost = [job for job in self._inflight.values() if job is not None]
        for job in lost:
            self._jobs.pop(job.id, None)
        self._inflight = {slot: None for slot in SLOTS}
        if not self._ready:
            self._failed_starts += 1
        if self._failed_starts >= MAX_FAILED_STARTS:
            self._broken = (f"The engine process cannot be started ({how}, {self._failed_starts} times in a "
                            f"row). Restart rfexplorer.")
            self.lost.emit((self._broken, lost))
        else:
            self._spawn()
            self.restarts += 1
            self.restarted.emit(self._proc.pid)
            self.lost.emit((f"The engine process stopped unexpectedly: {how}. A new one was started; the "
                            f"session's results are kept.", lost))
        self._pump()
