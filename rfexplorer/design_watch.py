"""What the Design view reads from the run store (Qt-free): the design studies that ``rfexplorer-cli design``
keeps there (Optuna RDB storage in the run store's database), a study's finished trials with their objective
values, and the Pareto front of two chosen objectives.

:class:`DesignWatch` is used from one worker thread (never the GUI thread): it opens the Optuna storage once and
reads it on every poll. A store that does not exist yet, or holds no Optuna tables, lists no study and is left
as it is (nothing is created by looking).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from typing import Any, Optional, Sequence

import numpy as np
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.exc import SQLAlchemyError

from engine.io.store import sqlite_file

#: The study user attribute that holds the search definition (engine.experiments.design.ATTR_DEFINITION).
ATTR_DEFINITION = "design"
#: The trial user attributes read here (engine.experiments.design's ATTR_* names).
ATTR_RUN_ID, ATTR_SETTINGS = "run_id", "settings"
#: How long a SQLite read waits for a writer (s).
SQLITE_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class StudyInfo:
    """One design study: its name, objectives (names and directions) and what it trains on."""

    name: str
    objectives: tuple[str, ...]
    directions: tuple[str, ...]  #: 'maximize' / 'minimize', one per objective
    n_trials: int = 0
    dataset: Optional[str] = None  #: the dataset its trials train on (from the search definition)
    data_dir: Optional[str] = None
    space: tuple[str, ...] = ()


@dataclass(frozen=True)
class TrialPoint:
    """A finished (complete) trial: its number, objective values, searched settings and run-store id."""

    number: int
    values: tuple[float, ...]
    params: dict = field(default_factory=dict)
    run_id: Optional[int] = None


@dataclass(frozen=True)
class StudySnapshot:
    """A study as read once: its complete trials (in trial order) and how many others there are."""

    study: StudyInfo
    trials: tuple[TrialPoint, ...]
    running: int = 0
    pruned: int = 0
    failed: int = 0


def objective_names(directions: Sequence[str], user_attrs: dict, metric_names: Optional[Sequence[str]]) -> list[str]:
    """The objectives' names: Optuna's metric names, else those of the design definition ('maximize NAME'),
    else 'objective N'."""
    n = len(directions)
    if metric_names and len(metric_names) == n:
        return [str(m) for m in metric_names]
    described = (user_attrs.get(ATTR_DEFINITION) or {}).get("objectives") or []
    if len(described) == n:
        return [str(d).split(" ", 1)[-1] for d in described]
    return [f"objective {i}" for i in range(n)]


def pareto_front(x: np.ndarray, y: np.ndarray, maximize: tuple[bool, bool]) -> np.ndarray:
    """Indices of the points no other point dominates on (x, y) under the directions, sorted by x then y."""
    sx = np.where(maximize[0], -1.0, 1.0) * np.asarray(x, dtype=float)  # both minimised from here on
    sy = np.where(maximize[1], -1.0, 1.0) * np.asarray(y, dtype=float)
    ok = np.flatnonzero(np.isfinite(sx) & np.isfinite(sy))
    order = ok[np.lexsort((sy[ok], sx[ok]))]
    front, best_y = [], math.inf
    for i in order:
        if sy[i] < best_y:  # better on y than every point at least as good on x
            front.append(i)
            best_y = sy[i]
    idx = np.asarray(front, dtype=int)
    return idx[np.lexsort((np.asarray(y)[idx], np.asarray(x)[idx]))] if idx.size else idx


def _shown(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


def trial_text(point: TrialPoint, study: StudyInfo) -> str:
    """A trial for a tooltip: its number, searched settings and objective values (accuracies in %)."""
    lines = [f"trial #{point.number}" + (f" (run {point.run_id})" if point.run_id is not None else "")]
    lines += [f"{k} = {_shown(v)}" for k, v in point.params.items()]
    for name, value in zip(study.objectives, point.values):
        shown = f"{100 * value:.2f} %" if name.endswith("accuracy") else _shown(float(value))
        lines.append(f"{name}: {shown}")
    return "\n".join(lines)


def _fingerprint(storage, study_id: int) -> Optional[tuple]:
    """What changes whenever a trial of the study starts, ends or is added: per state, the count and the latest
    completion time (one cheap query; reading 1,000 trials through Optuna takes most of a second). None when
    Optuna's tables are not as expected (every poll then reads the trials)."""
    query = text("SELECT state, COUNT(*), MAX(datetime_complete), MAX(trial_id) FROM trials "
                 "WHERE study_id = :study GROUP BY state ORDER BY state")
    try:
        with storage.engine.connect() as conn:
            return tuple(tuple(str(v) for v in row) for row in conn.execute(query, {"study": study_id}))
    except SQLAlchemyError:
        return None


class DesignWatch:
    """Reads the design studies of one store (a SQLAlchemy URL); one instance per worker thread."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._storage: Any = None
        self._cache: dict[str, tuple[Any, StudySnapshot]] = {}  #: study -> (fingerprint, its last snapshot)

    def _open(self):
        """Optuna's storage, or None while the store holds no study (nothing is created)."""
        if self._storage is not None:
            return self._storage
        path = sqlite_file(self.url)
        if path is not None and not path.is_file():
            return None
        kwargs = {"connect_args": {"timeout": SQLITE_TIMEOUT_S}} if self.url.startswith("sqlite") else {}
        probe = create_engine(self.url, **kwargs)
        try:
            if not inspect(probe).has_table("studies"):
                return None
        finally:
            probe.dispose()
        import optuna  # heavy, and needed only once a study exists: imported here, on the worker thread

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self._storage = optuna.storages.RDBStorage(self.url, engine_kwargs=kwargs)
        return self._storage

    def studies(self) -> list[StudyInfo]:
        """The design studies of the store, newest first (none when it has none)."""
        storage = self._open()
        if storage is None:
            return []
        return [self._info(frozen) for frozen in reversed(storage.get_all_studies())]  # in creation order

    def _info(self, frozen) -> StudyInfo:
        directions = tuple(d.name.lower() for d in frozen.directions)
        attrs = dict(frozen.user_attrs)
        metric_names = frozen.system_attrs.get("study:metric_names")
        definition = attrs.get(ATTR_DEFINITION) or {}
        settings = definition.get("settings") or {}
        return StudyInfo(name=frozen.study_name, objectives=tuple(objective_names(directions, attrs, metric_names)),
                         directions=directions, dataset=settings.get("dataset"), data_dir=settings.get("data_dir"),
                         space=tuple(definition.get("space") or ()))

    def snapshot(self, name: str) -> Optional[StudySnapshot]:
        """The study ``name`` as it is now (None when the store has no such study); the previous snapshot
        object itself while the study's trials did not change."""
        storage = self._open()
        if storage is None:
            return None
        frozen = next((s for s in storage.get_all_studies() if s.study_name == name), None)
        if frozen is None:
            return None
        study_id = storage.get_study_id_from_name(name)
        found = _fingerprint(storage, study_id)
        mark = (study_id, found)
        cached = self._cache.get(name)
        if found is not None and cached is not None and cached[0] == mark:
            return cached[1]  # nothing changed: the same snapshot (the view skips the redraw)
        snap = self._read_trials(storage, study_id, self._info(frozen))
        self._cache[name] = (mark, snap)
        return snap

    def _read_trials(self, storage, study_id: int, info: StudyInfo) -> StudySnapshot:
        from optuna.trial import TrialState  # (optuna: see _open)

        trials = storage.get_all_trials(study_id, deepcopy=False)
        points = []
        for t in trials:
            if t.state != TrialState.COMPLETE or t.values is None:
                continue
            params = t.user_attrs.get(ATTR_SETTINGS) or dict(t.params)
            run_id = t.user_attrs.get(ATTR_RUN_ID)
            points.append(TrialPoint(number=t.number, values=tuple(float(v) for v in t.values), params=dict(params),
                                     run_id=int(run_id) if run_id is not None else None))
        count = {s: sum(t.state == s for t in trials) for s in (TrialState.RUNNING, TrialState.PRUNED, TrialState.FAIL)}
        return StudySnapshot(study=replace(info, n_trials=len(trials)), trials=tuple(points),
                             running=count[TrialState.RUNNING], pruned=count[TrialState.PRUNED],
                             failed=count[TrialState.FAIL])

    def close(self) -> None:
        if self._storage is not None:
            self._storage.remove_session()
            self._storage.engine.dispose()
            self._storage = None
