"""Who runs a design search's trials: this process, several worker processes of this machine, or Ray tasks,
all sharing one Optuna study through the run store (engine.experiments.design).

With one local worker the trials run in this process. Otherwise this process only watches: it starts the
workers, reads the study every few seconds to report newly finished trials, and on cancel asks every worker
to stop (SIGTERM to a process, a cancel to a Ray task): each closes its running trial as interrupted (not
counted) and exits, so a rerun continues with no finished trial lost.
"""

from __future__ import annotations

import multiprocessing
import signal
import sys
import time
from typing import Callable, Optional

import optuna
from optuna.trial import FrozenTrial, TrialState

from engine.core.progress import CancelToken, RunCancelled
from engine.experiments.design import DesignError, DesignPlan, fail_dead_trials, open_study, reported, run_worker
from engine.experiments.sweep.ray_backend import import_ray, start_ray

BACKENDS = ("local", "ray")
#: How often the watching process reads the study (s).
POLL_S = 2.0
#: Exit status of a worker process whose trial was interrupted.
_EXIT_INTERRUPTED = 130
_EXIT_USAGE = 2

TrialCallback = Callable[[optuna.Study, FrozenTrial], None]


class _Reporter:
    """Calls ``on_trial`` once for every trial that finished since the search started."""

    def __init__(self, study: optuna.Study, on_trial: Optional[TrialCallback]) -> None:
        self.study, self.on_trial = study, on_trial
        self.seen = {t.number for t in study.get_trials(deepcopy=False) if t.state != TrialState.RUNNING}

    def poll(self) -> None:
        for t in reported(self.study.get_trials(deepcopy=False)):
            if t.number not in self.seen:
                self.seen.add(t.number)
                if self.on_trial is not None:
                    self.on_trial(self.study, t)


def _child_main(plan: DesignPlan, salt: int) -> None:
    """A worker process: trials until the study is done; SIGINT or SIGTERM stops it after closing its trial."""
    token = CancelToken()

    def stop(signum, frame) -> None:
        token.set()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        run_worker(plan, salt=salt, cancel=token)
    except RunCancelled:
        raise SystemExit(_EXIT_INTERRUPTED) from None
    except DesignError as exc:  # one sentence, as the CLI writes its errors
        print(f"design worker: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(_EXIT_USAGE) from None


def _terminate(procs) -> None:
    """SIGTERM to every live worker process: each closes its running trial as interrupted and exits."""
    for p in procs:
        if p.is_alive():
            p.terminate()


def _watch(reporter: _Reporter, alive: Callable[[], bool], cancel: CancelToken, stop: Callable[[], None]) -> None:
    """Report trials while workers are ``alive``; on cancel, ``stop`` them once and wait for them."""
    stopped = False
    while alive():
        if cancel.is_set() and not stopped:
            stop()
            stopped = True
        time.sleep(POLL_S if not stopped else 0.2)
        reporter.poll()
    reporter.poll()


def _run_processes(plan: DesignPlan, workers: int, reporter: _Reporter, cancel: CancelToken) -> None:
    ctx = multiprocessing.get_context("spawn")  # a fresh interpreter: no torch threads or locks inherited
    procs = [ctx.Process(target=_child_main, args=(plan, salt), daemon=False) for salt in range(1, workers + 1)]
    for p in procs:
        p.start()
    try:
        _watch(
            reporter,
            lambda: any(p.is_alive() for p in procs),
            cancel,
            lambda: _terminate(procs),
        )
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
            p.join()
    bad = [p.exitcode for p in procs if p.exitcode not in (0, _EXIT_INTERRUPTED, -signal.SIGTERM)]
    if bad and not cancel.is_set():
        raise DesignError(f"a design worker process stopped with exit status {bad[0]} (its error is printed above)")


def _ray_worker(plan: DesignPlan, salt: int) -> int:
    try:
        return run_worker(plan, salt=salt)
    except RunCancelled:
        return 0


def _run_ray(plan: DesignPlan, workers: int, reporter: _Reporter, cancel: CancelToken, address) -> None:
    ray = import_ray()
    started = start_ray(ray, address, workers)
    try:
        task = ray.remote(num_cpus=1, max_retries=0)(_ray_worker)
        refs = [task.remote(plan, salt) for salt in range(1, workers + 1)]
        pending = list(refs)

        def alive() -> bool:
            done, rest = ray.wait(pending, num_returns=len(pending), timeout=0)
            pending[:] = rest
            return bool(pending)

        def stop() -> None:  # each task's running trial is closed as interrupted (KeyboardInterrupt in the task)
            for ref in pending:
                ray.cancel(ref)

        _watch(reporter, alive, cancel, stop)
        if not cancel.is_set():
            ray.get(refs)  # a task's error surfaces here
    finally:
        if started:
            ray.shutdown()


def run_design(
    plan: DesignPlan,
    *,
    workers: int = 1,
    backend: str = "local",
    ray_address: Optional[str] = None,
    dataset=None,
    cancel: Optional[CancelToken] = None,
    on_trial: Optional[TrialCallback] = None,
    study: Optional[optuna.Study] = None,
    networks: Optional[dict] = None,
) -> optuna.Study:
    """Run the plan's trials until its study has ``plan.trials`` (or the deadline passed, or ``cancel`` was
    set), on ``workers`` workers of ``backend``; returns the study. RunCancelled when stopped by ``cancel``."""
    if backend not in BACKENDS:
        raise DesignError(f"unknown design backend {backend!r} (one of {', '.join(BACKENDS)})")
    if (workers > 1 or backend == "ray") and plan.store_url is None:
        raise DesignError("several workers share the study through the run store, so they need one (not --no-store)")
    cancel = cancel or CancelToken()
    study = study if study is not None else open_study(plan)
    fail_dead_trials(study)
    reporter = _Reporter(study, on_trial)
    if backend == "local" and workers == 1:
        run_worker(
            plan, dataset=dataset, cancel=cancel, on_trial=lambda s, t: reporter.poll(), study=study, networks=networks
        )
    elif backend == "local":
        _run_processes(plan, workers, reporter, cancel)
    else:
        _run_ray(plan, workers, reporter, cancel, ray_address)
    if cancel.is_set():
        raise RunCancelled
    return study


__all__ = ["BACKENDS", "run_design"]
