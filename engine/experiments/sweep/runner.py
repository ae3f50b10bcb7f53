"""The reference sweep: test accuracy against the percentage of synapses removed, for every model and seed.

This reproduces the layout of the reference work's Figure 1b (see docs/physics.md): x axis 100 (1 - K/N) %
removed, one curve per model, mean ± std over seeds. Models that do not use K (dense) run once per seed and
are recorded at K = N (0 % removed). Rows are :class:`engine.io.results.ResultRow` dicts; averaging is
:func:`engine.io.results.aggregate`.

This module is the runner, :func:`run_sweep`. The other parts live in modules of their own, each re-exported here
for existing imports: what to run (:mod:`engine.experiments.sweep.spec`), the row log and resuming
(:mod:`engine.experiments.sweep.log`),
the tables and files written (:mod:`engine.experiments.sweep.report`), and where runs execute, behind one protocol
(:class:`engine.experiments.sweep.backend.SweepBackend`): a process pool or the calling thread
(:mod:`engine.experiments.sweep.pool`;
a pool when ``spec.workers > 1``, ``spawn`` context, the dataset copied once per worker, longest runs first) or
Ray (:mod:`engine.experiments.sweep.ray_backend`). Results are reported through ``on_result`` in the calling thread as
each run
finishes.

Resuming: given an output folder, each finished row is appended to ``OUT/rows.jsonl`` (one JSON line, flushed
and fsynced) as soon as it is reported, and a later sweep into the same folder skips the runs whose row is
already there with the same resolved settings and dataset (failed rows are run again). The summary files
(``sweep.csv``, ``sweep.json``, ``sweep_table.md``) are rewritten atomically from the sweep's rows at the end,
also when the sweep is interrupted.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Optional, Sequence

from engine.config.run_config import RunConfig
from engine.core.files import check_output_folder, json_safe, refuse_symlink
from engine.core.progress import CancelToken
from engine.data import load_dataset
from engine.experiments.sweep.backend import Deliver, SweepBackend, failed_row, result_row, train_row
from engine.experiments.sweep.log import ROWS_FILE, RowLog, dataset_identity, finished_rows, read_rows_log
from engine.experiments.sweep.pool import LocalBackend
from engine.experiments.sweep.ray_backend import RayBackend
from engine.experiments.sweep.report import (
    REFERENCE_K,
    VARY_FILE,
    markdown_table,
    network_table,
    result_paths,
    rows_csv_text,
    sort_key,
    sweep_document,
    vary_table,
    write_results,
    write_vary_table,
)
from engine.experiments.sweep.spec import (
    DEFAULT_KS,
    DEFAULT_SEEDS,
    MULTILAYER_MODELS,
    SweepSpec,
    estimated_cost,
    settings_key,
    vary_variants,
)
from engine.io.results import aggregate
from engine.io.store import RunStore, row_recorder
from engine.training.run_batches import group_runs

ResultCallback = Callable[[dict], None]
NoteCallback = Callable[[str], None]
#: Where runs execute: "local" (this thread or a process pool) or "ray" (engine/experiments/sweep/ray_backend.py).
BACKENDS = ("local", "ray")


def make_backend(
    name: str, spec: SweepSpec, address: Optional[str] = None, max_retries: Optional[int] = None
) -> SweepBackend:
    """The backend called ``name`` (one of :data:`BACKENDS`) with ``spec``'s workers and threads; ValueError for
    an unknown name or bad ``max_retries``, :class:`engine.experiments.sweep.ray_backend.RayUnavailableError` without
    Ray."""
    if name not in BACKENDS:
        raise ValueError(f"unknown sweep backend {name!r} (choose from: {', '.join(BACKENDS)})")
    if name == "ray":
        return RayBackend(spec.workers, spec.threads_per_worker, address, max_retries)
    return LocalBackend(spec.workers, spec.threads_per_worker)


def _resume(
    jobs: Sequence[RunConfig], dataset, out_dir, on_note: Optional[NoteCallback]
) -> tuple[list[dict], list[RunConfig], Optional[RowLog]]:
    """(rows already done, jobs to run, the open row log or None) of a sweep into ``out_dir`` (None: no folder,
    every job to run)."""
    if out_dir is None:
        return [], list(jobs), None
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"the output folder {out} is a file")
    log_path = out / ROWS_FILE
    logged, notes = read_rows_log(log_path)
    for text in notes:
        if on_note is not None:
            on_note(text)
    done = finished_rows(jobs, logged, dataset)
    if done and on_note is not None:
        on_note(f"resuming: {len(done)} of {len(jobs)} runs already done in {log_path}")
    todo = [cfg for i, cfg in enumerate(jobs) if i not in done]
    return list(done.values()), todo, (RowLog(log_path) if todo else None)


def _deliverer(
    rows: list[dict], log: Optional[RowLog], on_result: Optional[ResultCallback], recorder: Optional[Deliver] = None
) -> Deliver:
    """What a backend calls with each finished row: append it to ``log`` (then keep it as it reads back from the
    file), record it in the run store, add it to ``rows``, and report it to ``on_result``."""

    def deliver(row: dict) -> None:
        if log is not None:
            log.append(row)
            row = json.loads(json.dumps(json_safe(row)))  # as it reads back from the file
        if recorder is not None:
            recorder(row)
        rows.append(row)
        if on_result is not None:
            on_result(row)

    return deliver


def run_sweep(
    spec: SweepSpec,
    dataset=None,
    on_result: Optional[ResultCallback] = None,
    cancel: Optional[CancelToken] = None,
    out_dir=None,
    on_note: Optional[NoteCallback] = None,
    on_plan: Optional[Callable[[int, int], None]] = None,
    backend: str = "local",
    address: Optional[str] = None,
    max_retries: Optional[int] = None,
    store: Optional[RunStore] = None,
) -> list[dict]:
    """Run every job of ``spec`` and return the rows (sorted by model, K, seed).

    ``dataset`` (an :class:`engine.data.Dataset` of ``spec.base.dataset``) avoids loading it again; worker
    processes receive a copy of it. ``on_result(row)`` is called in the calling thread as each run finishes.
    Setting ``cancel`` stops submitting runs, cancels those not started and stops running ones at their next
    batch; the runs cut short are not reported, and the rows finished so far are returned. A run that diverges
    gives a row with ``test_accuracy`` None and the reason in ``error`` (the sweep goes on).

    With ``out_dir``, each reported row is first appended to ``out_dir/rows.jsonl``; runs already there with
    the same resolved settings and dataset are skipped (their rows are returned, not reported again; failed
    rows are run again; rows of other settings stay in the file but are not part of this sweep), and
    ``sweep.csv``, ``sweep.json`` and ``sweep_table.md`` are written from the returned rows at the end, also
    when interrupted. ``on_note(text)`` receives what a person should know (how many runs were skipped, lines
    of the file that were ignored); ``on_plan(n_jobs, n_already_done)`` is called once before any run.

    ``backend`` is ``"local"`` (the default: this thread or a process pool) or ``"ray"`` (one Ray task per
    run, see :mod:`engine.experiments.sweep.ray_backend`; ``address`` joins a running cluster, none starts a local
    instance;
    ``max_retries`` (default 3) is how often a run whose worker or node died is started again).

    ``store`` (an :class:`engine.io.store.RunStore`) records each finished run as its row arrives, source "sweep"
    (or "ray"); rows skipped on resuming are not recorded again.
    """
    backend_impl = make_backend(backend, spec, address, max_retries)  # says how to install Ray before any work
    if out_dir is not None:  # before any data is loaded or any run starts
        check_output_folder(out_dir)
        refuse_symlink(Path(out_dir) / ROWS_FILE)
    if dataset is None:
        # loaded here once even for a pool (workers get a copy): N and C are needed, and a missing or
        # malformed dataset is reported before any worker starts
        dataset = load_dataset(spec.base.dataset, spec.base.data_dir)
    jobs = spec.jobs(dataset.n_inputs)
    if dataset.n_inputs < max(c.resonators_per_chain for c in jobs):
        raise ValueError(f"resonators per chain must be between 1 and {dataset.n_inputs} for {dataset.name}")
    rows, todo, log = _resume(jobs, dataset, out_dir, on_note)
    if on_plan is not None:
        on_plan(len(jobs), len(jobs) - len(todo))
    try:
        recorder = row_recorder(store, "ray" if backend == "ray" else "sweep", on_note)
        # Ray spreads single runs over a cluster; locally, baselines that differ in seed and K train together
        jobs_to_run = group_runs(todo) if spec.batch_runs and backend == "local" else todo
        backend_impl.run(jobs_to_run, dataset, _deliverer(rows, log, on_result, recorder), cancel)
    finally:
        if log is not None:
            log.close()
        if out_dir is not None and rows:
            write_results(rows, out_dir, spec)
    return sorted(rows, key=sort_key)


__all__ = [
    "BACKENDS",
    "DEFAULT_KS",
    "DEFAULT_SEEDS",
    "MULTILAYER_MODELS",
    "REFERENCE_K",
    "ROWS_FILE",
    "RowLog",
    "SweepSpec",
    "VARY_FILE",
    "aggregate",
    "dataset_identity",
    "estimated_cost",
    "failed_row",
    "finished_rows",
    "make_backend",
    "markdown_table",
    "network_table",
    "read_rows_log",
    "result_paths",
    "result_row",
    "rows_csv_text",
    "run_sweep",
    "settings_key",
    "sweep_document",
    "train_row",
    "vary_table",
    "vary_variants",
    "write_results",
    "write_vary_table",
]
