"""The Ray backend of :func:`engine.experiments.sweep.runner.run_sweep` (:class:`RayBackend`): each run is one Ray
task, on one
machine or a cluster.

Ray is an optional dependency (``pip install 'rfexplorer[cluster]'``) and is imported only inside the functions
of this module, so importing the engine never imports it.

Without an address a local Ray instance is started for the sweep (listening on 127.0.0.1 only, no dashboard,
``num_cpus`` = the sweep's workers) and shut down at the end; with an address the sweep joins that cluster and
leaves it running (a loopback address, e.g. a test cluster on this machine, is joined from 127.0.0.1 only).
When Ray is already initialised in this process (a script or a test that called ``ray.init`` itself), that
instance is used as it is and left running.

The dataset is put in the object store once and every task receives it by reference; each task sets its torch
threads to ``spec.threads_per_worker`` and calls :func:`engine.experiments.sweep.backend.train_row`, so a row is the
same,
digit for digit, as the local backend's with the same seed and thread count. Each row also records where it
ran (:data:`NODE_FIELD`). Rows are delivered in the calling thread as tasks finish, each run at most once.
Setting the cancel token cancels the tasks not finished and stops delivering.

Lost nodes (docs/cluster.md): a task whose worker process or node died is started again by Ray, up to
``max_retries`` times (:data:`DEFAULT_MAX_RETRIES`); a run whose task finally fails (retries used up, or an
exception in the run itself, which is not retried) becomes a failed row with the reason in ``error``, which
a resumed sweep runs again. The sweep goes on either way.

A Ray cluster has no authentication of its own: run it on a trusted network only.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import logging
import os
from contextlib import contextmanager
from typing import Optional, Sequence

import torch

from engine.config.run_config import RunConfig
from engine.core.progress import CancelToken
from engine.experiments.sweep.backend import Deliver, failed_row, train_row

#: Said when ``--backend ray`` is chosen but Ray is not installed.
INSTALL_HINT = (
    "the ray backend needs Ray, which is not installed: install the extra with pip install 'rfexplorer[cluster]'"
)
#: How often (seconds) the coordinating loop looks at the cancel token while waiting for tasks.
POLL_S = 0.2
#: Times a task whose worker process or node died is started again (Ray's own default for tasks, set
#: explicitly so that it does not change with Ray's version).
DEFAULT_MAX_RETRIES = 3
#: The row field that says where a run ran: {"id": Ray node id, "ip": node address, "attempt": 0 for the first
#: try, n for the n-th retry}, or None for a run whose task failed. Only the Ray backend sets it; resuming and
#: the tables ignore it.
NODE_FIELD = "ray_node"
LOOPBACK = "127.0.0.1"


class RayUnavailableError(RuntimeError):
    """Ray is not installed (the ``cluster`` extra)."""


def import_ray():
    """The ``ray`` module, or :class:`RayUnavailableError` with one sentence saying how to install it."""
    try:
        import ray  # optional (the cluster extra): imported only when the Ray backend is used
    except ImportError as exc:
        raise RayUnavailableError(INSTALL_HINT) from exc
    return ray


def ray_available() -> bool:
    """Whether Ray can be imported (without importing it)."""
    return importlib.util.find_spec("ray") is not None


def max_retries_setting(value: Optional[int]) -> int:
    """``value`` checked (a whole number >= 0), or :data:`DEFAULT_MAX_RETRIES` for None."""
    if value is None:
        return DEFAULT_MAX_RETRIES
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"max retries must be a whole number >= 0 (got {value!r})")
    return value


def _where(ray) -> dict:
    """Where this task runs: node id, node address and attempt number (None where Ray does not say)."""
    try:  # not public API: the attempt is only informative
        attempt = int(ray._private.worker.global_worker.core_worker.get_current_task_attempt_number())
    except Exception:  # noqa: BLE001 - private Ray API that may move or fail in any way: then "not known"
        attempt = None
    return {"id": ray.get_runtime_context().get_node_id(), "ip": ray.util.get_node_ip_address(), "attempt": attempt}


def _ray_task(cfg: RunConfig, dataset, threads: int) -> dict:
    """One run in a Ray worker (``dataset`` arrives resolved from its object reference)."""
    import ray  # optional dependency; this runs in a Ray worker, where it is installed

    torch.set_num_threads(max(1, int(threads)))
    row = train_row(cfg, dataset)[0]
    row[NODE_FIELD] = _where(ray)
    return row


def is_loopback(address: str) -> bool:
    """Whether a ``HOST:PORT`` address names this machine's loopback interface (127.0.0.0/8, ::1, localhost)."""
    text = address.strip()
    if text.startswith("["):  # [IPv6]:PORT
        host = text[1:].split("]", 1)[0]
    elif text.count(":") == 1:  # HOST:PORT
        host = text.split(":", 1)[0]
    else:  # a bare host or IPv6 address
        host = text
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@contextmanager
def _single_machine():
    """While starting or joining an instance on this machine only: Ray otherwise turns 127.0.0.1 (a node
    address, or the address of the cluster to join) into the machine's network address so other machines
    could reach it, except as a single-machine instance (as on Windows and macOS). Ask for that, so every
    server of the instance, and the connection to it, stays on 127.0.0.1."""
    try:
        from ray._private import ray_constants  # optional dependency (Ray), and not public API
    except ImportError:  # a Ray without that switch: its servers bind as it decides
        ray_constants = None
    single = ray_constants is not None and hasattr(ray_constants, "ENABLE_RAY_CLUSTER")
    previous = ray_constants.ENABLE_RAY_CLUSTER if single else None
    try:
        if single:
            ray_constants.ENABLE_RAY_CLUSTER = False
        yield
    finally:
        if single:
            ray_constants.ENABLE_RAY_CLUSTER = previous


def start_ray(ray, address: Optional[str], num_cpus: int) -> bool:
    """Connect to ``address``, or start a local instance (127.0.0.1 only, no dashboard, ``num_cpus`` CPUs);
    reuse an instance this process already initialised. Returns whether this call started the connection
    (and so should shut it down)."""
    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage report from a sweep
    quiet = {"logging_level": logging.WARNING, "log_to_driver": False}
    if address and not is_loopback(address):
        ray.init(address=address, **quiet)  # a cluster of several machines: Ray picks this machine's address
    elif address:
        with _single_machine():  # a cluster on this machine's loopback interface (e.g. a test cluster)
            ray.init(address=address, _node_ip_address=LOOPBACK, **quiet)
    else:
        # "local": always a new instance of our own, never one found through RAY_ADDRESS or /tmp/ray
        with _single_machine():
            ray.init(
                address="local",
                num_cpus=max(1, int(num_cpus)),
                include_dashboard=False,
                _node_ip_address=LOOPBACK,
                **quiet,
            )
    return True


def _first_sentence(text, limit: int = 200) -> str:
    """The first sentence of an error's text (Ray's run on with advice), at most ``limit`` characters."""
    line = next((s.strip() for s in str(text).splitlines() if s.strip()), "")
    head, dot, _ = line.partition(". ")
    line = head + "." if dot else line
    return line if len(line) <= limit else line[: limit - 1] + "…"


def failure_reason(ray, exc: BaseException, max_retries: int) -> str:
    """One sentence for the ``error`` field of a run whose Ray task failed for good."""
    if isinstance(exc, ray.exceptions.RayTaskError):  # the run itself raised: not retried, it would again
        cause = getattr(exc, "cause", None)
        what = f"{type(cause).__name__}: {_first_sentence(cause)}" if cause is not None else _first_sentence(exc)
        return f"the run raised {what} (on a Ray worker)"
    what = f"{type(exc).__name__}: {_first_sentence(exc)}"
    lost = (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError, ray.exceptions.OutOfMemoryError)
    if isinstance(exc, lost):  # the failures Ray retries: the last try failed too
        return f"the Ray task failed after {max_retries + 1} attempt(s): {what}"
    return f"the Ray task failed: {what}"


def _failed(ray, cfg: RunConfig, exc: BaseException, dataset, max_retries: int) -> dict:
    row = failed_row(cfg, failure_reason(ray, exc, max_retries), dataset.n_inputs, dataset.n_classes)
    row[NODE_FIELD] = None
    return row


class RayBackend:
    """A :class:`engine.experiments.sweep.backend.SweepBackend` on Ray: one task per run (see the module's docstring).
    ``workers`` is the CPUs of a local instance (ignored when joining ``address``), ``threads`` the torch threads
    of each task, ``max_retries`` how often a task whose worker or node died is started again. Creating one
    checks ``max_retries`` and that Ray is installed (:class:`RayUnavailableError`)."""

    def __init__(
        self, workers: int = 1, threads: int = 1, address: Optional[str] = None, max_retries: Optional[int] = None
    ) -> None:
        self.max_retries = max_retries_setting(max_retries)
        self.ray = import_ray()
        self.workers, self.threads, self.address = workers, threads, address

    def run(self, jobs: Sequence[RunConfig], dataset, deliver: Deliver, cancel: Optional[CancelToken] = None) -> None:
        """Run ``jobs`` as Ray tasks and pass each row to ``deliver`` (in this thread) as its task finishes: one
        row per job, a failed row for a job whose task failed for good."""
        if not jobs:
            return
        ray = self.ray
        started = start_ray(ray, self.address, self.workers)
        job_of: dict = {}
        try:
            task = ray.remote(num_cpus=1, max_retries=self.max_retries, retry_exceptions=False)(_ray_task)
            dataset_ref = ray.put(dataset)  # once: every task gets the same object by reference
            for i, cfg in enumerate(jobs):  # longest first, as ordered
                job_of[task.remote(cfg, dataset_ref, self.threads)] = i
            self._collect(job_of, jobs, dataset, deliver, cancel)
        finally:
            for ref in job_of:
                try:
                    ray.cancel(ref)
                except Exception:  # noqa: BLE001 - already finished or gone: nothing to cancel
                    pass
            if started:
                ray.shutdown()

    def _collect(
        self, job_of: dict, jobs: Sequence[RunConfig], dataset, deliver: Deliver, cancel: Optional[CancelToken]
    ) -> None:
        """Deliver each task's row as it finishes, removing it from ``job_of`` (what is left is cancelled)."""
        ray = self.ray
        # one object reference per run, each read once: a run is delivered once however often Ray started it
        while job_of:
            if cancel is not None and cancel.is_set():
                break
            done, _ = ray.wait(list(job_of), num_returns=1, timeout=POLL_S)
            for ref in done:
                if cancel is not None and cancel.is_set():
                    break
                i = job_of.pop(ref)
                try:
                    row = ray.get(ref)
                except ray.exceptions.RayError as exc:
                    row = _failed(ray, jobs[i], exc, dataset, self.max_retries)
                deliver(row)


def run_ray(
    spec,
    jobs: Sequence[RunConfig],
    dataset,
    deliver: Deliver,
    cancel: Optional[CancelToken] = None,
    address: Optional[str] = None,
    max_retries: Optional[int] = None,
) -> None:
    """Run ``jobs`` of sweep ``spec`` as Ray tasks (:class:`RayBackend` with the spec's workers and threads)."""
    RayBackend(spec.workers, spec.threads_per_worker, address, max_retries).run(jobs, dataset, deliver, cancel)


__all__ = [
    "DEFAULT_MAX_RETRIES",
    "INSTALL_HINT",
    "NODE_FIELD",
    "RayBackend",
    "RayUnavailableError",
    "failure_reason",
    "import_ray",
    "is_loopback",
    "max_retries_setting",
    "ray_available",
    "run_ray",
    "start_ray",
]
