"""The engine process: where the app's engine jobs run. Qt-free (it must never import PySide6 or pyqtgraph).

The GUI (:mod:`rfexplorer.worker`) spawns one such process per window ('spawn' start method, never fork) and
reuses it for every job: training runs, dataset loads, previews of untrained networks, topology imports and
their evaluation, and sweeps. Training here does not share Python's interpreter lock with the GUI.

Wire protocol (one duplex pipe): the frozen dataclasses of :mod:`rfexplorer.protocol`, each pickled with
:mod:`pickle` by this module and ``rfexplorer.worker``, between our own two processes only (nothing is ever read
from a file), and matched by class on arrival. The GUI sends job requests (one class per job kind) and
``Shutdown``; this process sends ``Ready`` once, ``Warmed`` once the background warm-up is over (:func:`warm_up`;
it may come between any two messages), ``DatasetReady`` and, per job, the job's messages, always ending with
``Done``.

There are three job slots, each with its own thread here: 'train' (train, load, preview, import; one job at a
time), 'sweep' and 'robustness' (accuracy of a trained network on fresh chips as one device setting varies,
engine.nets.hardware.robustness). Each slot has a multiprocessing Event as its cancel token, which the engine checks
between batches, or between two evaluations of a robustness study (``run_training`` and ``run_sweep`` only
call its ``is_set()``). The GUI sends a slot's next job only
after the previous one's ``Done`` and clears the slot's event before it does, so a cancel request can never
reach the wrong job. The train slot's run can also be paused, resumed and stepped one epoch at a time: a
``PauseRun`` message, applied at once by this process's main thread to the engine.core.progress.PauseControl the
run checks between batches (reset when the slot's next job arrives, so it never reaches a later job).
Datasets are cached here (the last two), so consecutive jobs do not load them again.

When the GUI goes away (its end of the pipe closes) the process cancels what runs and exits. Once a sweep in
progress has stopped (its worker processes ended; the other jobs only compute for a GUI that is going away) it
ends with ``os._exit(0)`` after running the interpreter's exit handlers and flushing its output, skipping the
interpreter's teardown (1.5-2 s with torch loaded on 2 cores), so that the window closes at once. A sweep that
does not stop in time has its worker processes terminated first (none may outlive the engine process).

Right after start-up a background thread warms the engine up (:func:`warm_up`): torch's first optimizer imports
``torch._dynamo`` (2.5-4 s on 2 cores), which the first training run would otherwise wait for.
"""
from __future__ import annotations

import os
import pickle
import queue
import threading
import time
import traceback
from collections import OrderedDict
from pathlib import Path
from typing import Callable, Optional

from engine.core.progress import PauseControl  # light: numpy only

from .protocol import (SAMPLE_COUNT, DatasetInfo, DatasetReady, Done, EngineMessage,  # noqa: F401 (re-exported)
                       Evaluated, Failed, ImportJob, Imported, JobRequest, JobSlot, LoadJob, Loaded, PauseAction,
                       PauseRun,
                       PreviewJob, Previewed, Ready, RobustnessEval, RobustnessFinished, RobustnessJob,
                       RobustnessRequest, RunFinished, Shutdown, SnapshotReady, Started, SweepFinished, SweepJob,
                       SweepRow, TrainJob, Warmed)

#: How often a training run sends a snapshot (s): a little faster than the views redraw (every 90 ms), so that
#: every redraw has fresh data; each costs the run about 0.8 ms (build and pickle, RF K = 10 on MNIST), so 1.3 %
#: at this rate (the engine's own default, for headless callers, is 0.1 s).
SNAPSHOT_INTERVAL_S = 0.06
#: Datasets kept loaded in the engine process (a run's and a sweep's may differ).
CACHED_DATASETS = 2
#: How long the process waits for its jobs to notice their cancel tokens when asked to shut down (s, all jobs
#: together; the GUI waits 5 s before it terminates the process). A sweep that has not stopped by then (its worker
#: processes are still starting) has its workers terminated, so that none outlives this process.
JOB_JOIN_TIMEOUT_S = 1.5
#: What :func:`warm_up` imports (reported in the Warmed message).
WARM_MODULES = ("torch._dynamo", "numba")
#: The job slots, each with its own thread and cancel Event (protocol.JobKind.slot: the kinds each one runs).
SLOTS = tuple(JobSlot)
#: The slots whose job must end before the process does (a sweep has worker processes or a Ray instance to shut
#: down): the other jobs only compute and send their results to a GUI that is going away, so on shutdown a
#: cancelled run is not waited for (nor evaluated on the test set, as a cancelled run is), nor is a robustness
#: study mid-evaluation.
FINISHED_BEFORE_EXIT = (JobSlot.SWEEP,)


def dumps(message: EngineMessage | JobRequest | Shutdown) -> bytes:
    return pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)


def loads(data: bytes):
    return pickle.loads(data)  # only ever bytes from our own engine process or GUI, through their pipe


def describe_exception(exc: BaseException) -> str:
    """A one-paragraph message for the status line and dialogs."""
    from engine.core.progress import DivergenceError

    if isinstance(exc, (ValueError, FileNotFoundError, DivergenceError)):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


class DatasetCache:
    """The last few loaded datasets, shared by both slots (thread-safe), so jobs do not reload full MNIST."""

    def __init__(self, size: int = CACHED_DATASETS) -> None:
        self._size = size
        self._items: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, name: str, data_dir: Optional[str]):
        from engine.data import load_dataset

        key = (name, data_dir or "")
        with self._lock:  # two slots asking for the same dataset load it once
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            ds = load_dataset(name, data_dir)
            self._items[key] = ds
            while len(self._items) > self._size:
                self._items.popitem(last=False)
            return ds


class EngineJobs:
    """Runs jobs and reports through ``send(message)``; used by the engine process's slot threads."""

    def __init__(self, send: Callable[[EngineMessage], None], cancels: dict) -> None:
        self.send = send
        self.cancels = cancels  #: slot -> the Event the GUI sets to cancel that slot's job
        self.pause = PauseControl()  #: the train slot's run waits while it is set (PauseRun messages)
        self.cache = DatasetCache()
        self._reported: Optional[tuple] = None  # the dataset the GUI last heard of (train slot only)

    def _dataset(self, job: JobRequest, report: bool = True):
        ds = self.cache.get(job.dataset, job.data_dir)
        key = (job.dataset, job.data_dir or "")
        if report and key != self._reported:
            self._reported = key
            self.send(DatasetReady(DatasetInfo.from_dataset(ds, key=job.dataset)))
        return ds

    def run(self, job: JobRequest) -> None:
        from .memory import release_free_memory

        stage = job.kind.value
        try:
            match job:
                case TrainJob():
                    self._train(job)
                case LoadJob():
                    self._dataset(job)
                    self.send(Loaded(job.id))
                case PreviewJob():
                    stage = "load"
                    ds = self._dataset(job)
                    stage = "preview"
                    self._preview(job, ds)
                case ImportJob():
                    topo = self._import(job)
                    stage = "evaluate"
                    self._evaluate(job, topo)
                case SweepJob():
                    self._sweep(job)
                case RobustnessJob():
                    self._robustness(job)
                case _:
                    raise ValueError(f"unknown job {type(job).__name__}")
        except BaseException as exc:  # noqa: BLE001 - every failure must reach the GUI
            # stage: 'train', 'load' (the dataset), 'preview', 'import' (the file), 'evaluate', 'sweep' or
            # 'robustness'
            self.send(Failed(job.id, message=describe_exception(exc), traceback=traceback.format_exc(), stage=stage))
        finally:
            if not isinstance(job, PreviewJob):
                release_free_memory()  # what the job freed goes back to the OS (see rfexplorer.memory)
            self.send(Done(job.id))

    def _train(self, job: TrainJob) -> None:
        from engine.training.loop import run_training

        self.send(Started(job.id))
        ds = self._dataset(job)

        def progress(snap) -> None:  # snapshots are already copies (numpy arrays)
            self.send(SnapshotReady(job.id, snap))

        result = run_training(job.config, dataset=ds, progress=progress, cancel=self.cancels[JobSlot.TRAIN],
                              snapshot_interval_s=SNAPSHOT_INTERVAL_S, pause=self.pause)
        self.send(RunFinished(job.id, result))

    def _preview(self, job: PreviewJob, ds) -> None:
        """The untrained network of job.config on the job's dataset, seeded like a run of that config."""
        import torch

        from engine.config.models import build_model

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
        self.send(Previewed(job.id, state))

    def _import(self, job: ImportJob):
        from engine.core.messages import escaped
        from engine.io.topology import load_topology

        from .state import state_from_model

        topo = load_topology(job.path)
        name = Path(job.path).name
        state = state_from_model(topo.model, topo.config, f"— imported {escaped(name)}",
                                 int(topo.metrics.get("rewiring_events", 0) or 0),  # names shown escaped:
                                 class_names=tuple(escaped(c) for c in topo.class_names),  # no control characters
                                 image_shape=topo.image_shape)
        self.send(Imported(job.id, topo, state))
        return topo

    def _evaluate(self, job: ImportJob, topo) -> None:
        from engine.experiments.evaluation import evaluate_topology

        ds = self._dataset(job)
        self.send(Evaluated(job.id, float(evaluate_topology(topo, ds))))

    def _sweep(self, job: SweepJob) -> None:
        from engine.experiments.sweep.runner import run_sweep

        self.send(Started(job.id))
        ds = self._dataset(job, report=False)

        def on_result(row) -> None:
            self.send(SweepRow(job.id, dict(row)))

        rows = run_sweep(job.spec, dataset=ds, on_result=on_result, cancel=self.cancels[JobSlot.SWEEP],
                         backend=job.backend)
        self.send(SweepFinished(job.id, list(rows)))

    def _robustness(self, job: RobustnessJob) -> None:
        """Accuracy of the request's network on fresh chips at each value of one knob; every evaluation is sent
        as it comes (RobustnessEval), and the slot's cancel Event is checked after each one."""
        from engine.nets.hardware import chain_layers, robustness
        from engine.core.progress import RunCancelled

        req: RobustnessRequest = job.study
        cancel = self.cancels[JobSlot.ROBUSTNESS]
        self.send(Started(job.id))
        model = req.model  # this process's own copy (unpickled from the job)
        layers = chain_layers(model)
        if not layers:
            raise ValueError("robustness needs a trained RF network (this one has no resonator chains)")
        ds = self._dataset(job, report=False)
        n_inputs, n_classes = layers[0].n_inputs, layers[-1].n_chains
        if (int(ds.n_inputs), int(ds.n_classes)) != (n_inputs, n_classes):
            raise ValueError(f"the network has {n_inputs} inputs and {n_classes} classes but dataset {ds.name} "
                             f"has {ds.n_inputs} and {ds.n_classes}, so it cannot be evaluated on it")
        cfg = req.config
        fraction = float(getattr(cfg, "validation_fraction", 0.0) or 0.0)
        if fraction > 0 and ds.name == getattr(cfg, "dataset", None):  # measured where it was, as recorded
            ds = ds.validation_split(fraction, seed=cfg.seed)

        def on_eval(value, repeat: int, acc: float) -> None:
            self.send(RobustnessEval(job.id, value=value, repeat=int(repeat), accuracy=float(acc)))
            if cancel.is_set():
                raise RunCancelled

        rows, cancelled = [], cancel.is_set()
        if not cancelled:
            try:
                rows = robustness(model, ds.test_x, ds.test_y, req.knob, list(req.values), int(req.repeats),
                                  seed=int(req.seed), on_eval=on_eval, fixed=dict(req.fixed) if req.fixed else None)
            except RunCancelled:
                cancelled = True
        self.send(RobustnessFinished(job.id, rows=rows, cancelled=cancelled))


def warm_up() -> float:
    """Do once what a first training run would otherwise wait for (seconds taken): a throwaway Adam, built as
    engine.core.model_base.make_adam builds the models' (fused where it can be), on a 1-element tensor, and one step
    of it with a learning-rate schedule; torch's first optimizer imports ``torch._dynamo``. Then it imports
    ``numba``, the compiler of the fused weight build (its loops are loaded from numba's disk cache by the first
    run). Uses no random numbers, and imports only torch's and numba's own modules, none of those the jobs
    import (the engine's and the app's; they share none with torch._dynamo's or numba's), so it and a job never
    wait on each other's import locks (a circular wait, which Python breaks with an ImportError); a first run
    started meanwhile waits for them."""
    t0 = time.perf_counter()
    import torch

    param = torch.zeros(1, requires_grad=True)
    try:
        optimizer = torch.optim.Adam([param], lr=1e-3, fused=True)
    except (RuntimeError, TypeError):
        optimizer = torch.optim.Adam([param], lr=1e-3)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    (param * param).sum().backward()
    optimizer.step()
    schedule.step()
    try:  # the fused weight build's compiler (engine.layers.fused_weight imports it at the first weight build)
        import numba  # noqa: F401 - imported for its side effect: the first run does not wait for LLVM
    except Exception:  # noqa: BLE001 - without numba the engine uses its eager builds
        pass
    return time.perf_counter() - t0


def _warm_up_and_report(send: Callable[[EngineMessage], None]) -> None:
    import sys

    seconds, error = float("nan"), ""
    try:
        seconds = warm_up()
    except Exception as exc:  # noqa: BLE001 - only a head start: the first run does the same and reports
        error = describe_exception(exc)
    send(Warmed(seconds=seconds, modules=tuple(m for m in WARM_MODULES if m in sys.modules), error=error))


def _exit_at_once(threads: list) -> None:
    """End this engine process now, without the interpreter's teardown, if that loses nothing: ``threads`` (the
    slots of :data:`FINISHED_BEFORE_EXIT`) have ended (their messages sent: the pipe writes synchronously; their
    worker processes ended) and no other non-daemon thread runs; or else (a sweep still busy after
    :data:`JOB_JOIN_TIMEOUT_S`) once :func:`_end_children` has ended its worker processes and those threads have
    ended within a second. The exit handlers still run (multiprocessing's, Ray's, logging's), and Python's own
    output buffers are flushed. Only in a process multiprocessing started: a
    caller of :func:`main` in its own process keeps it."""
    import atexit
    import multiprocessing
    import sys

    run_exit_handlers = getattr(atexit, "_run_exitfuncs", None)
    if multiprocessing.parent_process() is None or run_exit_handlers is None:
        return
    if _busy(threads):
        if not _end_children():
            return
        _join(_busy(threads), time.monotonic() + 1.0)  # the sweep sees its pool broken and ends
        if _busy(threads):
            return
    run_exit_handlers()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, OSError, ValueError):
            pass
    os._exit(0)


def _busy(threads: list) -> list:
    """Those of ``threads`` still alive, and every other non-daemon thread but this one."""
    me = threading.current_thread()
    return [t for t in {*threads, *threading.enumerate()}
            if t is not me and t.is_alive() and (t in threads or not t.daemon)]


def _end_children(timeout: float = 2.0) -> bool:
    """Terminate this process's own worker processes (a cancelled sweep's, still starting, so not yet able to
    see the cancel request; the rows it finished were sent). True when none is left."""
    import multiprocessing

    children = multiprocessing.active_children()
    for child in children:
        child.terminate()
    deadline = time.monotonic() + timeout
    for child in children:
        child.join(max(0.0, deadline - time.monotonic()))
        if child.is_alive():
            child.kill()
            child.join(1.0)
    return not any(child.is_alive() for child in children)


def _join(threads: list, deadline: float) -> None:
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))


def _slot_loop(jobs: EngineJobs, inbox: "queue.Queue") -> None:
    while True:
        job = inbox.get()
        if job is None:
            return
        jobs.run(job)


def main(conn, train_cancel, sweep_cancel, torch_threads: int, robustness_cancel=None) -> None:
    """The engine process's entry point (the target of the spawned multiprocessing.Process)."""
    import signal

    import torch

    # Ctrl-C in a terminal reaches the whole process group: the GUI decides what it means and tells us
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(max(1, int(torch_threads)))  # once, before any torch op
    send_lock = threading.Lock()
    gone = threading.Event()  # the GUI's end of the pipe is closed

    def send(message: EngineMessage) -> None:
        data = dumps(message)
        with send_lock:
            if gone.is_set():
                return
            try:
                conn.send_bytes(data)
            except OSError:  # the GUI is gone: stop what runs, the main thread exits
                gone.set()
                for event in cancels.values():
                    event.set()

    cancels = {JobSlot.TRAIN: train_cancel, JobSlot.SWEEP: sweep_cancel,
               JobSlot.ROBUSTNESS: robustness_cancel if robustness_cancel is not None else threading.Event()}
    jobs = EngineJobs(send, cancels)
    inboxes = {slot: queue.Queue() for slot in SLOTS}
    threads = [threading.Thread(target=_slot_loop, args=(jobs, inboxes[slot]), name=f"rfexplorer-engine-{slot}",
                                daemon=True) for slot in SLOTS]
    for t in threads:
        t.start()
    send(Ready(os.getpid()))
    threading.Thread(target=_warm_up_and_report, args=(send,), name="rfexplorer-engine-warm-up",
                     daemon=True).start()  # daemon: it never holds up the exit
    told_to_stop = False
    try:
        while not gone.is_set():
            try:
                message = loads(conn.recv_bytes())
            except (EOFError, OSError):  # the GUI went away
                break
            if isinstance(message, JobRequest):
                if message.slot is JobSlot.TRAIN:  # the slot is idle (the GUI waited for Done): a fresh start
                    jobs.pause.reset()
                inboxes[message.slot].put(message)
            elif isinstance(message, PauseRun):
                {PauseAction.PAUSE: jobs.pause.pause, PauseAction.RESUME: jobs.pause.resume,
                 PauseAction.STEP: jobs.pause.step}[message.action]()
            elif isinstance(message, Shutdown):
                break
        told_to_stop = True  # (or the GUI is gone): not an error of this loop
    finally:
        for event in cancels.values():
            event.set()
        for inbox in inboxes.values():
            inbox.put(None)
        deadline = time.monotonic() + JOB_JOIN_TIMEOUT_S
        waited = [t for slot, t in zip(SLOTS, threads) if slot in FINISHED_BEFORE_EXIT]
        _join(waited if told_to_stop else threads, deadline)
        try:
            conn.close()
        except OSError:
            pass
    _exit_at_once(waited)
    _join(threads, deadline)  # the ordinary exit, as a last resort: give the other jobs their time too
