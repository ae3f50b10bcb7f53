"""What a sweep backend is and how one job becomes its rows.

A backend (:class:`SweepBackend`) runs a list of jobs and hands each finished row to ``deliver`` in the calling
thread: :class:`engine.experiments.sweep.pool.LocalBackend` (this thread or a process pool) and
:class:`engine.experiments.sweep.ray_backend.RayBackend` (Ray tasks). Both train a job with :func:`train_row`, which
lives here, below
them and below the runner (:func:`engine.experiments.sweep.runner.run_sweep`), so no backend imports the runner.
A job is one RunConfig, or a tuple of them that train together (engine.training.run_batches), which gives
one row per run.
"""

from __future__ import annotations

from typing import Callable, Optional, Protocol, Sequence, Union

from engine.config.run_config import RunConfig
from engine.core.progress import CancelToken, DivergenceError
from engine.io.results import ResultRow, RunResult
from engine.training import loop as training
from engine.training import run_batches

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


def train_rows(cfgs: Sequence[RunConfig], dataset, cancel=None) -> list[tuple[dict, Optional[RunResult]]]:
    """Train runs of one batch key together (engine.training.run_batches): for each, as :func:`train_row`."""
    out: list[tuple[dict, Optional[RunResult]]] = []
    for cfg, result in zip(cfgs, run_batches.run_batch(cfgs, dataset, cancel)):
        if isinstance(result, DivergenceError):
            out.append((failed_row(cfg, str(result), dataset.n_inputs, dataset.n_classes), None))
        else:
            out.append((result_row(result), result))
    return out


def run_config(job: Union[RunConfig, tuple], dataset, cancel=None) -> Union[dict, list[dict]]:
    """A job of a sweep as a local backend runs it: one RunConfig's row, or for a tuple of runs trained
    together their rows; a row has ``_cancelled`` True when its run was cut short by ``cancel`` (not a result:
    the backend drops it)."""
    if isinstance(job, tuple):
        pairs = train_rows(job, dataset, cancel)
    else:
        pairs = [train_row(job, dataset, cancel)]
    for row, result in pairs:
        row["_cancelled"] = result is not None and result.cancelled
    return [row for row, _ in pairs] if isinstance(job, tuple) else pairs[0][0]


__all__ = ["Deliver", "SweepBackend", "failed_row", "result_row", "run_config", "train_row", "train_rows"]
