"""The main-thread side of the engine: owns the engine process (through :class:`~rfexplorer.worker.EngineClient`),
relays its signals, throttles redraws.

The GUI talks only to :class:`Controller`. Every engine job runs in the engine process
(:mod:`rfexplorer.engine_process`); its messages arrive here, in the GUI thread, as signals of the
EngineClient, and the controller re-emits main-thread signals (``run_started``, ``run_finished``,
``run_cancelled``, ``run_failed``, ...) that views and tests can wait on safely. Of the snapshots it keeps only
the latest and hands it to the views from an 11 Hz QTimer. If the engine process dies, ``engine_lost`` says so
(the run in flight is lost, a new process takes the next jobs; results already received stay).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from PySide6.QtCore import QObject, QTimer, Signal, Slot

from .labels import describe_config
from .protocol import JobKind, PauseAction, RobustnessRequest
from .worker import DatasetInfo, EngineClient, Job

if TYPE_CHECKING:
    from engine.experiments.sweep.spec import SweepSpec

REDRAW_INTERVAL_MS = 90  # 11 Hz: just above the 10 Hz target


class Controller(QObject):
    # --- single runs ---------------------------------------------------------------------------------------
    run_requested = Signal(object)          #: RunConfig, emitted when start_run is called (before it starts)
    run_started = Signal(object)            #: RunConfig, when the worker actually begins the run
    run_finished = Signal(object)           #: RunResult of a completed run
    run_cancelled = Signal(object, str)     #: RunResult of a cancelled run, and why it was cancelled
    run_failed = Signal(str)                #: message
    snapshot_ready = Signal(object, object)  #: (Snapshot, RunConfig), at most every REDRAW_INTERVAL_MS
    busy_changed = Signal(bool)             #: a training job is queued or running
    pause_changed = Signal(str)             #: the current run's pause state: 'running', 'paused' or 'stepping'
    status = Signal(str, str)               #: (message, level: info / busy / warn / error / ok)
    dataset_ready = Signal(object)          #: DatasetInfo of a newly loaded dataset
    dataset_failed = Signal(str, str)       #: a dataset could not be loaded: (message, dataset name or path)
    # --- previews and topology imports -------------------------------------------------------------------
    preview_ready = Signal(object)          #: DisplayState of the untrained network of the requested config
    topology_imported = Signal(object, object)   #: (Topology, DisplayState) of an imported file
    import_failed = Signal(str, str)        #: (message, file path): the file cannot be read or shown
    evaluation_finished = Signal(object, float)  #: (topology, accuracy)
    evaluation_failed = Signal(str)
    # --- sweeps ------------------------------------------------------------------------------------------
    sweep_started = Signal(object)          #: spec
    sweep_row = Signal(dict)                #: one finished run of the sweep (RunResult.summary() row)
    sweep_finished = Signal(list)           #: all rows (a cancelled sweep gives the rows done so far)
    sweep_failed = Signal(str)
    sweep_busy_changed = Signal(bool)
    # --- robustness studies ------------------------------------------------------------------------------
    robustness_started = Signal(object)       #: RobustnessRequest, when the engine begins the study
    robustness_progress = Signal(list)        #: every evaluation so far [{value, repeat, accuracy}, ...], at
                                              #: most every REDRAW_INTERVAL_MS
    robustness_finished = Signal(object)      #: {rows, cancelled, evals, reason} (also after a cancel)
    robustness_failed = Signal(str)           #: message
    robustness_busy_changed = Signal(bool)
    # --- the engine process --------------------------------------------------------------------------------
    engine_lost = Signal(str)               #: the engine process died (message); a new one was started

    def __init__(self, parent: Optional[QObject] = None) -> None:
        super().__init__(parent)
        self._jobs: list[Job] = []          # training-thread jobs queued or running, oldest first
        self._current: Optional[Job] = None  # the training run the views follow
        self._pause_state = "running"  # of the current run: 'running', 'paused' or 'stepping' (to the epoch's end)
        self._sweep_job: Optional[Job] = None
        self._robust_job: Optional[Job] = None
        self._robust_evals: list = []  #: the running study's evaluations so far
        self._robust_dirty = False
        self._latest: Optional[tuple] = None
        self._dirty = False
        self._shut_down = False
        self.dataset_info: Optional[DatasetInfo] = None  #: the dataset the training worker last loaded

        self._engine = EngineClient(self)
        e = self._engine
        e.started.connect(self._on_started)
        e.snapshot.connect(self._on_snapshot)
        e.finished.connect(self._on_finished)
        e.previewed.connect(self._on_previewed)
        e.imported.connect(self._on_imported)
        e.evaluated.connect(self._on_evaluated)
        e.failed.connect(self._on_failed)
        e.skipped.connect(self._on_skipped)
        e.loaded.connect(self._on_skipped)
        e.dataset_ready.connect(self._on_dataset_ready)
        e.sweep_started.connect(self._on_sweep_started)
        e.sweep_row.connect(self._on_sweep_row)
        e.sweep_finished.connect(self._on_sweep_finished)
        e.sweep_failed.connect(self._on_sweep_failed)
        e.robustness_started.connect(self._on_robustness_started)
        e.robustness_eval.connect(self._on_robustness_eval)
        e.robustness_finished.connect(self._on_robustness_finished)
        e.robustness_failed.connect(self._on_robustness_failed)
        e.lost.connect(self._on_engine_lost)

        self._timer = QTimer(self)
        self._timer.setInterval(REDRAW_INTERVAL_MS)
        self._timer.timeout.connect(self._flush)
        self._timer.start()

    # --- queries -----------------------------------------------------------------------------------------
    @property
    def engine(self) -> EngineClient:
        return self._engine

    @property
    def _thread(self):
        """The thread that reads the engine process's messages (stopped once the controller is shut down)."""
        return self._engine.reader

    _sweep_thread = _thread  # sweeps report through the same pipe and reader

    @property
    def busy(self) -> bool:
        return any(j.kind is JobKind.TRAIN for j in self._jobs)

    @property
    def sweep_busy(self) -> bool:
        return self._sweep_job is not None

    @property
    def robustness_busy(self) -> bool:
        return self._robust_job is not None

    @property
    def robustness_evals(self) -> list:
        """The evaluations of the running (or last) robustness study received so far."""
        return list(self._robust_evals)

    @property
    def pause_state(self) -> str:
        """The current run's: 'running', 'paused' (or pausing at its next batch) or 'stepping' (running to the
        end of its epoch, then pausing)."""
        return self._pause_state

    @property
    def paused(self) -> bool:
        return self._pause_state == "paused"

    @property
    def current_config(self):
        return self._current.config if self._current is not None else None

    @property
    def latest_snapshot(self):
        return self._latest[0] if self._latest else None

    @property
    def n_inputs(self) -> Optional[int]:
        return self.dataset_info.n_inputs if self.dataset_info is not None else None

    def describe(self, cfg) -> str:
        """describe_config with the loaded dataset's input count."""
        return describe_config(cfg, self.n_inputs)

    # --- commands ----------------------------------------------------------------------------------------
    def start_run(self, cfg, data_dir: Optional[str] = None) -> None:
        """Start a training run; a run already going (or queued) is cancelled first."""
        if self._shut_down:
            return
        self._cancel_previews()
        running = [j for j in self._jobs if j.kind is JobKind.TRAIN and not j.cancelled]
        for job in running:
            self._engine.cancel(job, f"superseded by {self.describe(cfg)}")
        was_busy = self.busy
        job = Job(JobKind.TRAIN, cfg, dataset=cfg.dataset, data_dir=data_dir)
        self._jobs.append(job)
        self._current = job
        self._set_pause_state("running")  # a new run starts unpaused (the engine resets its pause control)
        if running:
            self.status.emit(f"Cancelling {self.describe(running[-1].config)} to start "
                             f"{self.describe(cfg)}…", "warn")
        else:
            self.status.emit(f"Starting {self.describe(cfg)} on {_dataset_name(cfg.dataset)}…", "busy")
        self.run_requested.emit(cfg)
        self._engine.submit(job)
        if not was_busy:
            self.busy_changed.emit(True)

    def stop(self) -> None:
        """Cancel the running (and any queued) training run; it stops before the next batch."""
        jobs = [j for j in self._jobs if j.kind is JobKind.TRAIN and not j.cancelled]
        for job in jobs:
            self._engine.cancel(job, "stopped by user")
        if jobs:
            self.status.emit("Stopping…", "warn")

    def pause_run(self) -> bool:
        """Pause the current run before its next batch (it keeps its state; resume_run goes on)."""
        return self._pause(PauseAction.PAUSE, "paused", "Pausing")

    def resume_run(self) -> bool:
        return self._pause(PauseAction.RESUME, "running", "Resuming")

    def step_epoch(self) -> bool:
        """Run the current run to the end of its epoch, then pause it."""
        return self._pause(PauseAction.STEP, "stepping", "Stepping to the end of the epoch of")

    def _pause(self, action: PauseAction, state: str, verb: str) -> bool:
        job = self._current
        if job is None or job not in self._jobs or not self._engine.pause(job, action):
            # no run in flight (queued behind a load, finished or cancelled): nothing to pause
            waiting = self.busy and job is not None and not job.cancelled
            self.status.emit("The run has not started yet; pause it once it trains." if waiting else
                             "No training run is under way to pause or step.", "warn")
            return False
        self._set_pause_state(state)
        self.status.emit(f"{verb} {self.describe(job.config)}…", "busy")
        return True

    def _set_pause_state(self, state: str) -> None:
        if state != self._pause_state:
            self._pause_state = state
            self.pause_changed.emit(state)

    def preview(self, cfg, data_dir: Optional[str] = None) -> None:
        """Build the untrained network of ``cfg`` in the training thread (preview_ready follows). A newer
        request replaces one not started yet."""
        if self._shut_down:
            return
        self._cancel_previews()
        job = Job(JobKind.PREVIEW, cfg, dataset=cfg.dataset, data_dir=data_dir)
        self._jobs.append(job)
        self._engine.submit(job)

    def _cancel_previews(self) -> None:
        for job in self._jobs:
            if job.kind is JobKind.PREVIEW:
                self._engine.cancel(job, "superseded")

    def import_topology(self, path, dataset: str, data_dir: Optional[str] = None) -> None:
        """Read a topology file, rebuild and show its network, then evaluate it on ``dataset`` (in the training
        thread, after any queued run): topology_imported, then evaluation_finished (or a *_failed signal)."""
        if self._shut_down:
            return
        job = Job(JobKind.IMPORT, payload=str(path), dataset=dataset, data_dir=data_dir)
        self._jobs.append(job)
        self.status.emit(f"Importing {_dataset_name(str(path))}…", "busy")
        self._engine.submit(job)

    def load_dataset(self, dataset: str, data_dir: Optional[str] = None) -> None:
        """Load a dataset in the training thread (dataset_ready follows); runs reuse it."""
        if self._shut_down:
            return
        job = Job(JobKind.LOAD, dataset=dataset, data_dir=data_dir)
        self._jobs.append(job)
        self._engine.submit(job)

    def start_sweep(self, spec: SweepSpec, dataset: str = "mnist-mini", data_dir: Optional[str] = None,
                    backend: str = "local") -> bool:
        """Run a sweep in the engine process on ``backend`` ('local' or 'ray', as the CLI's --backend)."""
        if self._shut_down or self._sweep_job is not None:
            return False
        self._sweep_job = Job(JobKind.SWEEP, spec, dataset=dataset, data_dir=data_dir, backend=backend)
        self.sweep_busy_changed.emit(True)
        self._engine.submit(self._sweep_job)
        return True

    def stop_sweep(self) -> None:
        if self._sweep_job is not None:
            self._engine.cancel(self._sweep_job, "stopped by user")
            self.status.emit("Stopping the sweep after the current batch…", "warn")

    def start_robustness(self, request: RobustnessRequest, dataset: str, data_dir: Optional[str] = None) -> bool:
        """Run a robustness study (rfexplorer.protocol.RobustnessRequest) in the engine process's own
        robustness slot (it runs beside training and sweeps); False if one is running already."""
        if self._shut_down or self._robust_job is not None:
            return False
        self._robust_job = Job(JobKind.ROBUSTNESS, dataset=dataset, data_dir=data_dir, payload=request)
        self._robust_evals = []
        self._robust_dirty = False
        self.robustness_busy_changed.emit(True)
        self._engine.submit(self._robust_job)
        return True

    def stop_robustness(self) -> None:
        """Cancel the robustness study: it stops after the evaluation under way."""
        if self._robust_job is not None:
            self._engine.cancel(self._robust_job, "stopped by user")
            self.status.emit("Stopping the robustness study after the current evaluation…", "warn")

    @Slot()
    def shutdown(self) -> None:
        """Cancel everything, let the engine process exit (join it; terminate it as a last resort) and stop the
        reader thread (call on window close)."""
        if self._shut_down:
            return
        self._shut_down = True
        self._timer.stop()
        for job in self._jobs:
            job.cancel("window closed")
        for job in (self._sweep_job, self._robust_job):
            if job is not None:
                job.cancel("window closed")
        self._engine.shutdown()

    # --- engine slots (GUI thread) ------------------------------------------------------------------
    def _forget(self, job: Job) -> None:
        was_busy = self.busy
        if job in self._jobs:
            self._jobs.remove(job)
        if job is self._current:
            self._set_pause_state("running")
        if was_busy and not self.busy:
            self.busy_changed.emit(False)

    @Slot(object)
    def _on_started(self, job: Job) -> None:
        if job.kind is JobKind.TRAIN and job is self._current and not job.cancelled:
            self._latest = None
            self._dirty = False
            self.status.emit(f"Training {self.describe(job.config)} on {_dataset_name(job.dataset)}…", "busy")
            self.run_started.emit(job.config)

    @Slot(object)
    def _on_snapshot(self, item) -> None:
        job, snap = item
        if job is self._current and (not job.cancelled or snap.final):
            self._latest = (snap, job.config)
            self._dirty = True
            if getattr(snap, "paused", False) and self._pause_state != "paused":  # a step reached its epoch's end
                self._set_pause_state("paused")
            if getattr(snap, "paused", False):
                self.status.emit(f"Paused {self.describe(job.config)} at epoch {snap.epoch}/{snap.epochs} "
                                 f"(Resume, or Step epoch).", "warn")

    @Slot()
    def _flush(self) -> None:
        if self._dirty and self._latest is not None:
            self._dirty = False
            self.snapshot_ready.emit(*self._latest)
        if self._robust_dirty:
            self._robust_dirty = False
            self.robustness_progress.emit(list(self._robust_evals))

    @Slot(object)
    def _on_finished(self, item) -> None:
        job, result = item
        if job is self._current:
            self._flush()
        self._forget(job)
        if result.cancelled:
            reason = job.reason or "cancelled"
            if job is self._current:
                self.status.emit(f"Cancelled {self.describe(job.config)} ({reason}) after "
                                 f"{result.epochs_completed} epoch(s).", "warn")
            else:
                self.status.emit(f"Cancelled {self.describe(job.config)} ({reason}).", "warn")
            self.run_cancelled.emit(result, reason)
            return
        self.status.emit(f"Finished {self.describe(job.config)}: test accuracy "
                         f"{100 * result.test_accuracy:.2f} % in {result.train_seconds:.1f} s.", "ok")
        self.run_finished.emit(result)

    @Slot(object)
    def _on_previewed(self, item) -> None:
        job, state = item
        self._forget(job)
        if not job.cancelled and not self._shut_down:
            self.preview_ready.emit(state)

    @Slot(object)
    def _on_imported(self, item) -> None:
        job, topo, state = item
        if not self._shut_down:
            self.topology_imported.emit(topo, state)

    @Slot(object)
    def _on_evaluated(self, item) -> None:
        job, acc = item
        self._forget(job)
        self.status.emit(f"Imported topology: {100 * acc:.2f} % on {_dataset_name(job.dataset)}.", "ok")
        self.evaluation_finished.emit(job.payload, acc)

    @Slot(object)
    def _on_failed(self, item) -> None:
        job, message, _tb, stage = item
        self._forget(job)
        if stage == "load":
            self.status.emit(f"Cannot load {_dataset_name(job.dataset)}: {message}", "error")
            self.dataset_failed.emit(message, job.dataset)
        elif stage == "preview":
            self.status.emit(f"Cannot show the initial network: {message}", "error")
        elif stage == "import":
            self.status.emit(f"Import failed: {message}", "error")
            self.import_failed.emit(message, str(job.payload))
        elif stage == "evaluate":
            self.status.emit(f"Evaluation failed: {message}", "error")
            self.evaluation_failed.emit(message)
        else:
            self.status.emit(f"Run failed: {message}", "error")
            self.run_failed.emit(message)

    @Slot(object)
    def _on_skipped(self, job: Job) -> None:
        self._forget(job)

    @Slot(object)
    def _on_dataset_ready(self, info) -> None:
        self.dataset_info = info
        self.dataset_ready.emit(info)

    @Slot(object)
    def _on_sweep_started(self, job: Job) -> None:
        self.status.emit("Sweep running in the background…", "busy")
        self.sweep_started.emit(job.config)

    @Slot(object)
    def _on_sweep_row(self, item) -> None:
        job, row = item
        self.sweep_row.emit(row)

    @Slot(object)
    def _on_sweep_finished(self, item) -> None:
        job, rows = item
        self._sweep_job = None
        self.sweep_busy_changed.emit(False)
        what = "Sweep cancelled" if job.cancelled else "Sweep finished"
        self.status.emit(f"{what}: {len(rows)} run(s).", "warn" if job.cancelled else "ok")
        self.sweep_finished.emit(rows)

    @Slot(object)
    def _on_sweep_failed(self, item) -> None:
        job, message, _tb = item
        self._sweep_job = None
        self.sweep_busy_changed.emit(False)
        self.status.emit(f"Sweep failed: {message}", "error")
        self.sweep_failed.emit(message)

    @Slot(object)
    def _on_robustness_started(self, job: Job) -> None:
        if job is self._robust_job:
            self.status.emit("Robustness study running in the background…", "busy")
            self.robustness_started.emit(job.payload)

    @Slot(object)
    def _on_robustness_eval(self, item) -> None:
        job, ev = item
        if job is self._robust_job:
            self._robust_evals.append(ev)
            self._robust_dirty = True  # drawn by the redraw timer (_flush), not per message

    def _end_robustness(self, job: Job) -> None:
        if job is self._robust_job:
            self._robust_job = None
            self.robustness_busy_changed.emit(False)

    @Slot(object)
    def _on_robustness_finished(self, item) -> None:
        job, out = item
        if job is not self._robust_job:
            return
        self._flush()
        self._end_robustness(job)
        cancelled = bool(out.get("cancelled"))
        n = len(self._robust_evals)
        if cancelled:
            self.status.emit(f"Robustness study cancelled ({job.reason or 'cancelled'}) after {n} evaluation(s).",
                             "warn")
        else:
            self.status.emit(f"Robustness study finished: {n} evaluation(s).", "ok")
        self.robustness_finished.emit(dict(out, evals=list(self._robust_evals), reason=job.reason))

    @Slot(object)
    def _on_robustness_failed(self, item) -> None:
        job, message, _tb = item
        if job is not self._robust_job:
            return
        self._end_robustness(job)
        self.status.emit(f"Robustness study failed: {message}", "error")
        self.robustness_failed.emit(message)

    @Slot(object)
    def _on_engine_lost(self, item) -> None:
        """The engine process died: forget the jobs it took with it (their results never come), say so."""
        message, lost = item
        if self._shut_down:
            return
        what = []
        for job in lost:
            if job.kind is JobKind.TRAIN:
                what.append(f"the run {self.describe(job.config)} was lost")
            elif job.kind is JobKind.SWEEP:
                what.append("the sweep was stopped (its finished runs are kept)")
            elif job.kind is JobKind.ROBUSTNESS:
                what.append("the robustness study was stopped (its evaluations so far are kept)")
            self._forget(job)
            if job is self._sweep_job:
                self._sweep_job = None
                self.sweep_busy_changed.emit(False)
            if job is self._robust_job:
                self._end_robustness(job)
                self.robustness_failed.emit("the engine process stopped during the study")
        said = "; ".join(what)
        text = message + (f" {said[0].upper()}{said[1:]}." if what else "")
        self.status.emit(text, "error")
        self.engine_lost.emit(text)


def _dataset_name(name_or_path: str) -> str:
    """A dataset for the status line: its registered name, or a file's name without its folders."""
    from pathlib import Path

    from engine.data import DATASET_NAMES

    return name_or_path if name_or_path in DATASET_NAMES else Path(name_or_path).name
