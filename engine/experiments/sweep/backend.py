"""What a sweep backend is and how one job becomes one row.

A backend (:class:`SweepBackend`) runs a list of jobs and hands each finished row to ``deliver`` in the calling
thread: :class:`engine.experiments.sweep.pool.LocalBackend` (this thread or a process pool) and
:class:`engine.experiments.sweep.ray_backend.RayBackend` (Ray tasks). Both train a job with :func:`train_row`, which
lives here, below
them and below the runner (:func:`engine.experiments.sweep.runner.run_sweep`), so no backend imports the runner.
"""

from __future__ import annotations

from typing import Callable, Optional, Protocol, Sequence

from engine.config.run_config import RunConfig
from engine.core.progress import CancelToken, DivergenceError
from engine.io.results import ResultRow, RunResult
from engine.training import loop as training

#: Receives each finished row, in the thread that called :meth:`SweepBackend.run`.
Deliver = Callable[[dict], None]


class SweepBackend(Protocol):
    """Where a sweep's runs execute."""

    def run(self, jobs: Sequence, dataset, deliver: Deliver, cancel: Optional[CancelToken] = None) -> None:
        """Run ``jobs`` on ``dataset`` and pass each finished row to ``deliver`` (in this thread), each job at
        most once; once ``cancel`` is set, stop starting jobs and deliver no row of a run cut short."""
        ...


def result_row(result) -> dict:
    """One sweep row: the run's :class:`ResultRow` as a dict (``error`` None when it succeeded)."""
    return result.row().to_dict()


def failed_row(cfg: RunConfig, message: str, n_inputs: int, n_classes: int) -> dict:
    """The row of a run that failed (e.g. diverged): no accuracy, the reason in ``error``."""
    return ResultRow.failed(cfg, message, n_inputs, n_classes).to_dict()


def train_row(cfg: RunConfig, dataset, cancel=None) -> tuple[dict, Optional[RunResult]]:
    """Train one run of a sweep: (its row, its result), or (a failed row, None) when the run diverged."""
    try:  # looked up on the module at each call, so a test can stand in for run_training
        result = training.run_training(cfg, dataset=dataset, cancel=cancel)
    except DivergenceError as exc:
        return failed_row(cfg, str(exc), dataset.n_inputs, dataset.n_classes), None
    return result_row(result), result


def run_config(cfg: RunConfig, dataset, cancel=None) -> dict:
    """A job of a sweep (one RunConfig) as a local backend runs it: its row, with ``_cancelled`` True when the
    run was cut short by ``cancel`` (not a result: the backend drops it)."""
    row, result = train_row(cfg, dataset, cancel)
    row["_cancelled"] = result is not None and result.cancelled
    return row


__all__ = ["Deliver", "SweepBackend", "failed_row", "result_row", "run_config", "train_row"]
