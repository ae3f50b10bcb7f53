"""The local sweep backend: runs in the calling thread, or in a pool of spawned worker processes.

:class:`LocalBackend` runs the jobs one after the other in the calling thread when it has one worker;
otherwise in a ``spawn`` process pool (one copy of the dataset and ``threads`` torch threads per worker, jobs
submitted in the order given, at most one per worker at a time). Rows are delivered in the calling thread as
jobs finish. Ctrl-C is decided by the parent: workers ignore SIGINT and stop through a shared cancel event.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import signal
import threading
from contextlib import contextmanager
from typing import Any, Callable, Optional, Sequence

import torch

from engine.core.progress import CancelToken
from engine.experiments.sweep.backend import Deliver, run_config

SPAWN_METHOD = "spawn"
#: ``run_job(job, dataset, cancel) -> row or rows``: one job as the local backend runs it (a list of rows for a
#: job of several runs); a row with ``_cancelled`` true was cut short and is dropped. In a pool it must be a
#: module-level function (it is pickled by name).
RunJob = Callable[[Any, Any, Any], Any]  # (a job of the backend's kind, its dataset, an event or None)


def _rows(result) -> list[dict]:
    """A job's rows: ``result`` itself when a list, else the one row."""
    return result if isinstance(result, list) else [result]


# Worker-process state (set by _worker_init in each pool process).
_WORKER_DATASET = None
_WORKER_CANCEL = None


def _worker_init(dataset, threads: int, cancel_event) -> None:
    global _WORKER_DATASET, _WORKER_CANCEL
    try:  # Ctrl-C goes to the whole process group: the parent decides, workers stop through cancel_event
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    except (ValueError, OSError):
        pass
    torch.set_num_threads(max(1, int(threads)))
    _WORKER_DATASET = dataset
    _WORKER_CANCEL = cancel_event


def _run_in_worker(run_job: RunJob, job) -> dict:
    """``run_job`` on ``job`` with this worker's dataset and cancel event."""
    return run_job(job, _WORKER_DATASET, _WORKER_CANCEL)


@contextmanager
def _sigint_ignored_in_children():
    """Ignore SIGINT while submitting (which may spawn workers): a spawned process inherits the ignored
    disposition from its first instruction, so Ctrl-C never prints a traceback from a starting worker. The
    parent decides what Ctrl-C means and stops the workers through their cancel event."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    try:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except (ValueError, OSError):
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def run_pool(
    jobs: Sequence,
    dataset,
    deliver: Deliver,
    cancel: Optional[CancelToken],
    *,
    workers: int,
    threads: int,
    run_job: RunJob = run_config,
) -> None:
    """Run ``jobs`` in a pool of ``workers`` spawned processes (``threads`` torch threads each, a copy of
    ``dataset`` in each), ``deliver``-ing each row in this thread as it comes. ``run_job`` runs in a worker
    with the worker's dataset and cancel event; a row with ``_cancelled`` true is dropped."""
    ctx = multiprocessing.get_context(SPAWN_METHOD)
    stop = ctx.Event()
    workers = min(workers, len(jobs))
    pool = cf.ProcessPoolExecutor(
        max_workers=workers, mp_context=ctx, initializer=_worker_init, initargs=(dataset, threads, stop)
    )
    pending = list(jobs)
    running: set = set()
    try:
        while pending or running:
            if cancel is not None and cancel.is_set():
                stop.set()
                pending.clear()
            while pending and len(running) < workers:
                with _sigint_ignored_in_children():
                    running.add(pool.submit(_run_in_worker, run_job, pending.pop(0)))
            if not running:
                break
            done, running = cf.wait(running, timeout=0.2, return_when=cf.FIRST_COMPLETED)
            for fut in done:
                try:
                    rows = _rows(fut.result())
                except cf.process.BrokenProcessPool as exc:
                    raise RuntimeError(
                        "a sweep worker process stopped unexpectedly (killed, out of memory, or a script that "
                        "starts a sweep without an \"if __name__ == '__main__':\" guard)"
                    ) from exc
                for row in rows:
                    if not row.pop("_cancelled", False):  # one cut short by the cancel request is not a result
                        deliver(row)
    except BaseException:
        stop.set()
        for fut in running:
            fut.cancel()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True, cancel_futures=True)


class LocalBackend:
    """A :class:`engine.experiments.sweep.backend.SweepBackend` on this machine: in the calling thread for one worker
    (leaving the caller's torch threads alone), else a pool of ``workers`` processes of ``threads`` torch
    threads each. ``run_job`` runs one job (default: train one RunConfig,
    :func:`engine.experiments.sweep.backend.run_config`)."""

    def __init__(self, workers: int = 1, threads: int = 1, run_job: RunJob = run_config) -> None:
        self.workers, self.threads, self.run_job = workers, threads, run_job

    def run(self, jobs: Sequence, dataset, deliver: Deliver, cancel: Optional[CancelToken] = None) -> None:
        if not jobs:
            return
        if self.workers > 1:
            run_pool(jobs, dataset, deliver, cancel, workers=self.workers, threads=self.threads, run_job=self.run_job)
            return
        for job in jobs:
            if cancel is not None and cancel.is_set():
                break
            cut_short = False
            for row in _rows(self.run_job(job, dataset, cancel)):
                if row.pop("_cancelled", False):  # cut short by the cancel request: not a result
                    cut_short = True
                else:
                    deliver(row)
            if cut_short:
                break


__all__ = ["LocalBackend", "SPAWN_METHOD", "run_pool"]
