"""The Ray backend of :func:`engine.sweep.run_sweep`: each run is one Ray task, on one machine or a cluster.

Ray is an optional dependency (``pip install 'rfexplorer[cluster]'``) and is imported only inside the functions
of this module, so importing the engine never imports it.

Without an address a local Ray instance is started for the sweep (listening on 127.0.0.1 only, no dashboard,
``num_cpus`` = the sweep's workers) and shut down at the end; with an address the sweep joins that cluster and
leaves it running. When Ray is already initialised in this process (a script or a test that called
``ray.init`` itself), that instance is used as it is and left running.

The dataset is put in the object store once and every task receives it by reference; each task sets its torch
threads to ``spec.threads_per_worker`` and calls :func:`engine.training.run_training`, so a row is the same,
digit for digit, as the local backend's with the same seed and thread count. Rows are delivered in the calling
thread as tasks finish. Setting the cancel token cancels the tasks not finished and stops delivering.

A Ray cluster has no authentication of its own: run it on a trusted network only.
"""
from __future__ import annotations

import logging
import os
from typing import Callable, Optional, Sequence

from .config import RunConfig
from .progress import CancelToken

#: Said when ``--backend ray`` is chosen but Ray is not installed.
INSTALL_HINT = "the ray backend needs Ray, which is not installed: install the extra with pip install 'rfexplorer[cluster]'"
#: How often (seconds) the coordinating loop looks at the cancel token while waiting for tasks.
POLL_S = 0.2


class RayUnavailableError(RuntimeError):
    """Ray is not installed (the ``cluster`` extra)."""


def import_ray():
    """The ``ray`` module, or :class:`RayUnavailableError` with one sentence saying how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise RayUnavailableError(INSTALL_HINT) from exc
    return ray


def ray_available() -> bool:
    """Whether Ray can be imported (without importing it)."""
    import importlib.util

    return importlib.util.find_spec("ray") is not None


def _ray_task(cfg: RunConfig, dataset, threads: int) -> dict:
    """One run in a Ray worker (``dataset`` arrives resolved from its object reference)."""
    import torch

    from .sweep import train_row

    torch.set_num_threads(max(1, int(threads)))
    return train_row(cfg, dataset)[0]


def start_ray(ray, address: Optional[str], num_cpus: int) -> bool:
    """Connect to ``address``, or start a local instance (127.0.0.1 only, no dashboard, ``num_cpus`` CPUs);
    reuse an instance this process already initialised. Returns whether this call started the connection
    (and so should shut it down)."""
    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage report from a sweep
    quiet = {"logging_level": logging.WARNING, "log_to_driver": False}
    if address:
        ray.init(address=address, **quiet)
    else:
        # "local": always a new instance of our own, never one found through RAY_ADDRESS or /tmp/ray.
        # Ray turns a node address of 127.0.0.1 into the machine's network address (so other nodes could
        # join) unless it runs as a single-machine instance, as it does on Windows and macOS: ask for that
        # while starting, so every server of the instance listens on 127.0.0.1 only.
        try:
            from ray._private import ray_constants
        except ImportError:  # a Ray without that switch: its servers bind as it decides
            ray_constants = None
        single = ray_constants is not None and hasattr(ray_constants, "ENABLE_RAY_CLUSTER")
        previous = ray_constants.ENABLE_RAY_CLUSTER if single else None
        try:
            if single:
                ray_constants.ENABLE_RAY_CLUSTER = False
            ray.init(address="local", num_cpus=max(1, int(num_cpus)), include_dashboard=False,
                     _node_ip_address="127.0.0.1", **quiet)
        finally:
            if single:
                ray_constants.ENABLE_RAY_CLUSTER = previous
    return True


def run_ray(spec, jobs: Sequence[RunConfig], dataset, deliver: Callable[[dict], None],
            cancel: Optional[CancelToken] = None, address: Optional[str] = None) -> None:
    """Run ``jobs`` as Ray tasks and pass each row to ``deliver`` (in this thread) as its task finishes."""
    ray = import_ray()
    if not jobs:
        return
    started = start_ray(ray, address, spec.workers)
    pending: list = []
    try:
        task = ray.remote(num_cpus=1)(_ray_task)
        dataset_ref = ray.put(dataset)  # once: every task gets the same object by reference
        threads = spec.threads_per_worker
        pending = [task.remote(cfg, dataset_ref, threads) for cfg in jobs]  # longest first, as ordered
        while pending:
            if cancel is not None and cancel.is_set():
                break
            done, pending = ray.wait(pending, num_returns=1, timeout=POLL_S)
            for ref in done:
                if cancel is not None and cancel.is_set():
                    break
                deliver(ray.get(ref))
    finally:
        for ref in pending:
            try:
                ray.cancel(ref)
            except Exception:  # already finished or gone: nothing to cancel
                pass
        if started:
            ray.shutdown()


__all__ = ["INSTALL_HINT", "RayUnavailableError", "import_ray", "ray_available", "run_ray", "start_ray"]
