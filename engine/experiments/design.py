"""The design search: the cheapest network that reaches a target, as an Optuna multi-objective study.

Each trial samples the searched settings (:mod:`engine.experiments.design_space`), trains one run through the
engine's own entry point (:func:`engine.training.loop.run_training`) scored on a validation split (never the
test set), records it in the run store (``source="design"``, with its trained network) and tells Optuna its
objectives. The study lives in the run store's database (``RunStore.url`` is Optuna's RDB storage), so a
rerun with the same study name continues it, and several worker processes (or Ray tasks) share it.

``--trials N`` counts the trials run to an end (complete or pruned); a trial stopped by Ctrl-C, SIGTERM or a
killed worker is not counted and its place is taken by a new one on the next run, and neither is a trial that
failed with an error (its reason is kept with it; a worker stops after :data:`MAX_FAILURES_IN_A_ROW` in a row). A
worker claims a trial only while the study has fewer than N counted or running trials, and after Optuna gave
it a number checks that fewer than N counted or running trials come before it, so workers that start at the
same moment never run more than N together (a trial that lost that race is closed at once as a failed
"surplus" trial that ran nothing).

Pruning (``prune=True``) is the median rule, applied to the validation accuracy each epoch reports through
the progress callback: after the first epoch, a trial whose accuracy is below the median of the completed
trials' accuracy at the same epoch (once :data:`PRUNE_STARTUP` trials completed) is cancelled through its
cancel token. (Optuna's own pruners do not take multi-objective studies.)
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import socket
import statistics
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import optuna
import torch
from optuna.trial import FrozenTrial, Trial, TrialState
from sqlalchemy.exc import SQLAlchemyError

from engine.config.run_config import RunConfig
from engine.core.files import dumps_json
from engine.core.progress import CancelToken, RunCancelled
from engine.core.settings_tree import set_path
from engine.data.named import load_dataset
from engine.experiments.design_space import Dimension, Objective, Requirement, dotted_get, setting_number
from engine.io.results import RunResult
from engine.io.store import StoreError, open_store
from engine.io.topology import result_document, topology_from_document
from engine.training import loop as training  # run_training is looked up at each run (tests replace it)

#: Completed trials needed before the median rule prunes.
PRUNE_STARTUP = 4
#: Epochs every trial runs before it can be pruned.
PRUNE_WARMUP_EPOCHS = 1
#: A worker stops when this many of its trials in a row failed with an error (a setting no run survives).
MAX_FAILURES_IN_A_ROW = 3
#: Validation fraction used when the settings give none (the search must never score on the test set).
DEFAULT_VALIDATION_FRACTION = 0.1
#: Attempts at opening the study storage (Optuna creates its tables on first use, racing other workers).
STORAGE_TRIES = 5
#: How long a SQLite connection of the study waits for another writer (s).
SQLITE_TIMEOUT_S = 60.0

ATTR_DEFINITION = "design"  # study user attribute: the search this study runs
ATTR_WORKER = "worker"  # trial user attributes: host:pid of the process running it
ATTR_RUN_ID = "run_id"  # the trial's run in the run store
ATTR_CURVE = "val_curve"  # validation accuracy per epoch
ATTR_SETTINGS = "settings"  # the searched settings' values as set (JSON-safe)
ATTR_STOPPED = "stopped"  # why a FAIL trial did not count: 'interrupted' or 'surplus'
ATTR_ERROR = "error"  # why a trial failed


class DesignError(ValueError):
    """A design search that cannot run as asked (one sentence)."""


@dataclass(frozen=True)
class DesignPlan:
    """Everything a worker needs (picklable: sent to worker processes and Ray tasks)."""

    base: dict  #: the settings tree that the search does not vary (RunConfig.to_dict())
    dims: tuple[Dimension, ...]
    objectives: tuple[Objective, ...]
    study_name: str
    trials: int
    store_url: Optional[str] = None  #: the run store (the study's storage); None: in memory, nothing recorded
    deadline: Optional[float] = None  #: time.time() after which no trial starts
    prune: bool = False
    threads: int = 1
    definition: dict = field(default_factory=dict)
    requirements: tuple[Requirement, ...] = ()  #: bounds a trial must meet to be on the front

    @property
    def model(self) -> str:
        return str(self.base.get("model", RunConfig.model))

    @property
    def directions(self) -> list[str]:
        return [o.direction for o in self.objectives]


def search_definition(base: dict, dims, objectives, requirements=()) -> dict:
    """What makes two searches the same study: the fixed settings, the space, the objectives and the
    requirements (a search without requirements keeps the definition it always had)."""
    definition = {
        "space": [d.text for d in dims],
        "objectives": [o.describe() for o in objectives],
        "settings": base,
    }
    if requirements:
        definition["requirements"] = [r.describe() for r in requirements]
    return definition


def default_study_name(definition: dict) -> str:
    """``design-`` and a short hash of the search, so the same command continues the same study."""
    digest = hashlib.sha256(json.dumps(definition, sort_keys=True, default=str).encode()).hexdigest()
    return f"design-{digest[:10]}"


def trial_config(base: dict, values: dict) -> RunConfig:
    """The RunConfig of one trial: ``base`` with each searched path set to its value."""
    mapping = dict(base)
    for path, value in values.items():
        mapping = set_path(mapping, path, value)  # (a copy along the path: ``base`` is left as it is)
    return RunConfig.from_dict(mapping)


# ---------------------------------------------------------------------------------------------------------
# The study
# ---------------------------------------------------------------------------------------------------------

_STORAGES: dict = {}  # url -> RDBStorage, one per process (each holds a connection pool)


def _storage(url: Optional[str]):
    if url is None:
        return None
    kwargs = {"connect_args": {"timeout": SQLITE_TIMEOUT_S}} if url.startswith("sqlite") else {}
    for attempt in range(STORAGE_TRIES):
        if url in _STORAGES:
            break
        try:
            _STORAGES[url] = optuna.storages.RDBStorage(url, engine_kwargs=kwargs)
        except SQLAlchemyError:  # two processes creating Optuna's tables at once: the later one finds them made
            if attempt == STORAGE_TRIES - 1:
                raise
            time.sleep(0.2 * (attempt + 1))
    return _STORAGES[url]


def _sampler(plan: DesignPlan, salt: int) -> optuna.samplers.BaseSampler:
    """TPE (multi-objective), seeded from the run seed and ``salt`` (a worker's own), lying about running
    trials so parallel workers spread out."""
    seed = int(hashlib.sha256(f"{plan.base.get('seed', 0)}:{salt}".encode()).hexdigest()[:8], 16)
    return optuna.samplers.TPESampler(seed=seed, constant_liar=True, n_startup_trials=min(10, max(2, plan.trials // 4)))


def open_study(plan: DesignPlan, salt: int = 0) -> optuna.Study:
    """The plan's study, created or continued (DesignError when a study of that name runs another search); in
    memory when the plan has no store."""
    optuna.logging.set_verbosity(logging.WARNING)
    study = optuna.create_study(
        study_name=plan.study_name,
        storage=_storage(plan.store_url),
        directions=plan.directions,  # type: ignore[arg-type]  # 'maximize'/'minimize', as parsed
        sampler=_sampler(plan, salt),
        load_if_exists=True,
    )
    if [d.name.lower() for d in study.directions] != plan.directions:
        raise DesignError(f"the study {plan.study_name} has other objectives; choose another --study name")
    found = study.user_attrs.get(ATTR_DEFINITION)
    if found is None:
        study.set_user_attr(ATTR_DEFINITION, plan.definition)
    elif found != json.loads(json.dumps(plan.definition)):
        raise DesignError(
            f"the study {plan.study_name} searches {', '.join(found.get('space', []))} with other settings or "
            "objectives; choose another --study name to start a new one"
        )
    return study


def _worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def fail_dead_trials(study: optuna.Study) -> int:
    """Close (as failed, not counted) the RUNNING trials of this host whose process is gone (a killed worker)."""
    host, closed = socket.gethostname(), 0
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        where, _, pid = str(t.user_attrs.get(ATTR_WORKER, "")).rpartition(":")
        if where == host and pid.isdigit() and not _pid_alive(int(pid)):
            study.tell(t.number, state=TrialState.FAIL)
            closed += 1
    return closed


def counts(trial: FrozenTrial) -> bool:
    """Whether a trial takes one of the N places: run to an end, or running."""
    return trial.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)


def finished(trials) -> list[FrozenTrial]:
    """The trials run to an end (complete or pruned)."""
    return [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]


def reported(trials) -> list[FrozenTrial]:
    """The trials a user hears about: run to an end, or failed with an error."""
    return [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED) or ATTR_ERROR in t.user_attrs]


def claim_trial(study: optuna.Study, plan: DesignPlan) -> Optional[Trial]:
    """A new trial while the study has fewer than ``plan.trials`` counted ones and the deadline is not past;
    None when the work is done (see the module's docstring for the race between workers)."""
    if plan.deadline is not None and time.time() >= plan.deadline:
        return None
    if sum(counts(t) for t in study.get_trials(deepcopy=False)) >= plan.trials:
        return None
    trial = study.ask()
    trial.set_user_attr(ATTR_WORKER, _worker_id())
    before = [t for t in study.get_trials(deepcopy=False) if t.number < trial.number and counts(t)]
    if len(before) >= plan.trials:
        trial.set_user_attr(ATTR_STOPPED, "surplus")
        study.tell(trial, state=TrialState.FAIL)
        return None
    return trial


# ---------------------------------------------------------------------------------------------------------
# One trial
# ---------------------------------------------------------------------------------------------------------


def sample(trial: Trial, dims, model: str) -> dict:
    """The searched settings' typed values, sampled by Optuna."""
    values = {}
    for d in dims:
        if d.categorical:
            raw: Any = trial.suggest_categorical(d.path, list(d.choices))
        elif d.integer:
            raw = trial.suggest_int(d.path, int(d.low), int(d.high), log=d.log)
        else:
            raw = trial.suggest_float(d.path, float(d.low), float(d.high), log=d.log)
        values[d.path] = d.value(raw, model)
    return values


def objective_values(result: RunResult, objectives) -> list[float]:
    """Each objective of a finished run: a metric, or the value of a settings path in its resolved settings."""
    tree = result.config.to_dict()
    metrics = {
        "val_accuracy": float(result.test_accuracy),  # the run was evaluated on its validation split
        "train_accuracy": float(result.history[-1][2]) if result.history else math.nan,
        "resonators": float(result.synapses),
        "train_seconds": float(result.train_seconds),
    }
    return [metrics[o.name] if o.is_metric else setting_number(dotted_get(tree, o.name)) for o in objectives]


class _Pruner:
    """The median rule on the per-epoch validation accuracy, fed by the training progress callback."""

    def __init__(self, study: optuna.Study, enabled: bool, token: CancelToken) -> None:
        self.study, self.enabled, self.token = study, enabled, token
        self.curve: list[float] = []
        self.pruned = False

    def __call__(self, snap) -> None:
        if len(snap.history) <= len(self.curve):
            return
        self.curve = [float(h[3]) for h in snap.history]
        epoch = len(self.curve)
        if not self.enabled or self.pruned or epoch < PRUNE_WARMUP_EPOCHS or epoch >= snap.epochs:
            return
        done = self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        peers = [t.user_attrs[ATTR_CURVE][epoch - 1] for t in done if len(t.user_attrs.get(ATTR_CURVE, ())) >= epoch]
        if len(peers) >= PRUNE_STARTUP and self.curve[-1] < statistics.median(peers):
            self.pruned = True
            self.token.set()


def _record(store, result: RunResult, plan: DesignPlan, trial: Trial, status: str) -> Optional[int]:
    """The trial's run in the run store, with its trained network; its id (None without a store)."""
    if store is None:
        return None
    topo = dumps_json(result_document(result)) if result.model is not None else None
    extra = {"design_study": plan.study_name, "design_trial": trial.number, "design_status": status}
    return store.record(result, source="design", topology_json=topo, metrics=extra)


def _close_failed(study: optuna.Study, trial: Trial, exc: BaseException) -> FrozenTrial:
    """Close a trial that failed with an error (kept with its reason; not counted)."""
    trial.set_user_attr(ATTR_ERROR, (str(exc).splitlines() or [type(exc).__name__])[0][:500])
    study.tell(trial, state=TrialState.FAIL)
    return study.get_trials(deepcopy=False)[trial.number]


class _TrialToken(CancelToken):
    """A trial's cancel token: set by the pruner, or by the worker's own (Ctrl-C, SIGTERM)."""

    def __init__(self, outer: CancelToken) -> None:
        super().__init__()
        self.outer = outer

    def is_set(self) -> bool:
        return super().is_set() or self.outer.is_set()


def run_trial(study, trial: Trial, plan: DesignPlan, ds, store, cancel: CancelToken, networks: dict) -> FrozenTrial:
    """Train one trial and tell Optuna how it ended. Ctrl-C (``cancel`` set) closes it as interrupted (not
    counted) and raises :class:`engine.core.progress.RunCancelled`; an error closes it as failed."""
    values = sample(trial, plan.dims, plan.model)
    trial.set_user_attr(ATTR_SETTINGS, json.loads(json.dumps(values, default=list)))
    token = _TrialToken(cancel)
    pruner = _Pruner(study, plan.prune, token)
    try:
        cfg = trial_config(plan.base, values)
        # epoch-end snapshots only (the pruner reads the history; mid-epoch ones copy the network)
        result = training.run_training(cfg, dataset=ds, progress=pruner, cancel=token, snapshot_interval_s=math.inf)
    except (ValueError, RuntimeError) as exc:  # a setting the data refuses, a diverged run
        return _close_failed(study, trial, exc)
    except KeyboardInterrupt:  # stopped at once (a second Ctrl-C, a cancelled Ray task): not counted
        trial.set_user_attr(ATTR_STOPPED, "interrupted")
        study.tell(trial, state=TrialState.FAIL)
        raise
    trial.set_user_attr(ATTR_CURVE, pruner.curve)
    if result.cancelled and not pruner.pruned:
        trial.set_user_attr(ATTR_STOPPED, "interrupted")
        study.tell(trial, state=TrialState.FAIL)
        raise RunCancelled
    status = "pruned" if pruner.pruned else "complete"
    try:
        run_id = _record(store, result, plan, trial, status)
    except StoreError as exc:  # the trial's network would be lost: the search stops with the reason
        _close_failed(study, trial, exc)
        raise
    if run_id is not None:
        trial.set_user_attr(ATTR_RUN_ID, run_id)
    elif result.model is not None:
        networks[trial.number] = result_document(result)
    if pruner.pruned:
        study.tell(trial, state=TrialState.PRUNED)
    else:
        scores = objective_values(result, plan.objectives)
        for r in plan.requirements:  # Optuna's samplers and its front then prefer the trials that meet them
            trial.set_constraint(r.describe(), r.violation(scores[[o.name for o in plan.objectives].index(r.name)]))
        study.tell(trial, scores)
    return study.get_trials(deepcopy=False)[trial.number]


def trial_topology(trial: FrozenTrial, plan: DesignPlan, networks: dict):
    """A trial's trained network (engine.io.topology.Topology), from the run store or ``networks`` (trial
    number -> topology document, kept by this process when there is no store)."""
    if ATTR_RUN_ID in trial.user_attrs and plan.store_url is not None:
        with open_store(plan.store_url) as store:
            return store.topology(int(trial.user_attrs[ATTR_RUN_ID]))
    doc = networks.get(trial.number)
    if doc is None:
        raise DesignError(f"trial {trial.number} of {plan.study_name} has no trained network")
    return topology_from_document(doc, source=f"trial {trial.number}")


# ---------------------------------------------------------------------------------------------------------
# A worker: trials until the study has N
# ---------------------------------------------------------------------------------------------------------

TrialCallback = Callable[[optuna.Study, FrozenTrial], None]


def run_worker(
    plan: DesignPlan,
    *,
    salt: int = 0,
    dataset=None,
    cancel: Optional[CancelToken] = None,
    on_trial: Optional[TrialCallback] = None,
    study: Optional[optuna.Study] = None,
    networks: Optional[dict] = None,
) -> int:
    """Run trials of the plan's study (``study``, else opened from the store) until it has ``plan.trials``
    (or the deadline passes, or ``cancel`` is set); returns how many this worker finished. Raises RunCancelled
    when a trial was interrupted. ``networks`` receives the trained networks when there is no store."""
    torch.set_num_threads(max(1, plan.threads))
    networks = networks if networks is not None else {}
    cancel = cancel or CancelToken()
    study = study if study is not None else open_study(plan, salt=salt)
    cfg = RunConfig.from_dict(plan.base)
    ds = dataset if dataset is not None else load_dataset(cfg.dataset, cfg.data_dir)
    store = open_store(plan.store_url) if plan.store_url is not None else None
    done = failures = 0
    try:
        while not cancel.is_set():
            trial = claim_trial(study, plan)
            if trial is None:
                break
            frozen = run_trial(study, trial, plan, ds, store, cancel, networks)
            done += frozen.state != TrialState.FAIL
            failures = failures + 1 if frozen.state == TrialState.FAIL else 0
            if on_trial is not None:
                on_trial(study, frozen)
            if failures >= MAX_FAILURES_IN_A_ROW:
                reason = frozen.user_attrs.get(ATTR_ERROR, "no reason recorded")
                raise DesignError(f"{failures} trials in a row failed, so the search stops; the last one: {reason}")
    finally:
        if store is not None:
            store.close()
    return done


__all__ = [
    "ATTR_CURVE",
    "ATTR_RUN_ID",
    "ATTR_SETTINGS",
    "DEFAULT_VALIDATION_FRACTION",
    "DesignError",
    "DesignPlan",
    "claim_trial",
    "counts",
    "default_study_name",
    "fail_dead_trials",
    "finished",
    "objective_values",
    "open_study",
    "reported",
    "run_trial",
    "run_worker",
    "sample",
    "search_definition",
    "trial_config",
    "trial_topology",
]
