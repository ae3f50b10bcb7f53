"""The run store: every finished run recorded in a database, to list, filter, compare and export later.

API (what the CLI, the sweep driver, the app and the design command use)::

    from engine.io.store import open_store, default_store_url

    store = open_store(None)          # $RFEXPLORER_STORE, else the per-user SQLite file (default_store_url())
    store = open_store("runs.sqlite") # a file path, or any SQLAlchemy URL ("postgresql+psycopg://host/db")
    run_id = store.record(result, source="cli")            # a RunResult or a ResultRow -> the new run's id
    run_id = store.record(row, source="design", topology_json=text, metrics={"trial": 3})
    records = store.list({"model": "rf-input", "device.tuning_bits": "8"}, limit=50)  # newest first
    record = store.get(run_id)        # RunRecord: settings, metrics, per-epoch history, versions, topology text
    topo = store.topology(run_id)     # the trained network, validated by the topology-file reader
    store.delete([run_id])
    store.url                         # the SQLAlchemy URL (Optuna can keep its study in the same database)

``source`` is one of :data:`SOURCES`. Records hold the full resolved settings tree, the metrics (accuracy,
evaluated split, train loss, seconds, synapses, K and sparsity, error), the per-epoch history (one object per
epoch: train loss and accuracy, and the loss and accuracy on the evaluated split: validation or test), the
software versions, the dataset record, the source and the times; the trained network as topology-file JSON
when there is one. Nothing is ever pickled. Filters match any settings path (``engine.io.store_query``).

SQLite (the default) runs in WAL mode with a busy timeout and short transactions, writes take the write lock at
``BEGIN`` (so two writers queue rather than fail), and a writer killed mid-transaction leaves the store readable
(its last transaction is simply absent). Schema versions migrate forward on open (``engine.io.store_schema``).
Errors are :class:`StoreError`: one sentence.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence, Union

from platformdirs import user_data_path
from sqlalchemy import Engine, create_engine, delete, event, func, make_url, select
from sqlalchemy.engine import URL
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

from engine.config.run_config import RunConfig
from engine.io.results import ResultRow, RunResult
from engine.io.store_query import RECORD_KEYS, StoreError, flatten, parse_where, setting_rows, where_clause
from engine.io.store_records import (
    SOURCES,
    ResultLike,
    RunRecord,
    auto_topology,
    differing_settings,
    epoch_history,
    loads,
    record_values,
)
from engine.io.store_schema import (
    SCHEMA_VERSION,
    create_current,
    migrate,
    read_version,
    run_settings,
    run_topology,
    runs,
)
from engine.io.topology import TopologyFileError, topology_from_document

_log = logging.getLogger(__name__)

#: The environment variable naming the store (a path or a SQLAlchemy URL).
STORE_ENV = "RFEXPLORER_STORE"
#: The value of $RFEXPLORER_STORE that turns recording off.
STORE_OFF = "off"
#: How long a SQLite writer waits for another one to finish (s).
BUSY_TIMEOUT_S = 30.0

_SUMMARY = (
    runs.c.id,
    runs.c.created,
    runs.c.recorded,
    runs.c.source,
    runs.c.model,
    runs.c.dataset,
    runs.c.status,
    runs.c.test_accuracy,
    runs.c.evaluated_on,
    runs.c.train_seconds,
    runs.c.synapses,
    runs.c.error,
    runs.c.metrics,
)
_FULL = (*_SUMMARY, runs.c.config, runs.c.history, runs.c.versions, runs.c.dataset_info)


# ---------------------------------------------------------------------------------------------------------
# Where the store is
# ---------------------------------------------------------------------------------------------------------


def default_store_path() -> Path:
    """The per-user SQLite file: platformdirs' user data folder of rfexplorer plus ``runs.sqlite`` (on Linux
    ~/.local/share/rfexplorer/runs.sqlite)."""
    return user_data_path("rfexplorer", appauthor=False) / "runs.sqlite"


def store_disabled() -> bool:
    """Whether ``$RFEXPLORER_STORE`` is ``off``: commands and the app record nothing unless given a store."""
    return os.environ.get(STORE_ENV, "").strip().lower() == STORE_OFF


def store_url(url_or_path: Optional[Union[str, os.PathLike]] = None) -> str:
    """The SQLAlchemy URL of a store given as a URL or a file path; None: $RFEXPLORER_STORE, else the default."""
    if url_or_path in (None, "") and store_disabled():
        raise StoreError(f"the run store is turned off (${STORE_ENV}={STORE_OFF}); name one with --store")
    given = url_or_path if url_or_path not in (None, "") else os.environ.get(STORE_ENV) or None
    if given is None:
        return URL.create("sqlite", database=str(default_store_path())).render_as_string(hide_password=False)
    text = os.fspath(given)
    if "://" in text:
        try:
            return make_url(text).render_as_string(hide_password=False)
        except (ArgumentError, ValueError) as exc:
            raise StoreError(f"the store URL {text!r} is not a database URL ({exc})") from None
    path = Path(text).expanduser()
    return URL.create("sqlite", database=str(path.resolve())).render_as_string(hide_password=False)


def sqlite_file(url: str) -> Optional[Path]:
    """The file of a SQLite store URL (None for another database or an in-memory one)."""
    u = make_url(url)
    if u.get_backend_name() != "sqlite" or not u.database or u.database == ":memory:":
        return None
    return Path(u.database)


def default_store_url() -> str:
    """The store used when none is named: $RFEXPLORER_STORE, else the per-user SQLite file."""
    return store_url(None)


def _make_engine(url: str) -> Engine:
    u = make_url(url)
    if u.get_backend_name() != "sqlite":
        return create_engine(u, pool_pre_ping=True)
    path = sqlite_file(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(u, connect_args={"timeout": BUSY_TIMEOUT_S})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record) -> None:
        dbapi_conn.isolation_level = None  # the driver's own BEGIN is off: _on_begin below emits it
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        cur.execute("PRAGMA journal_mode = WAL")  # readers never block the writer, a killed writer loses only its own
        cur.execute("PRAGMA synchronous = NORMAL")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn) -> None:  # writers take the lock at once (and wait for it) rather than fail mid-way
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("write") else "BEGIN")

    return engine


def open_store(url_or_path: Optional[Union[str, os.PathLike]] = None) -> "RunStore":
    """Open (creating or migrating as needed) the run store at a path or SQLAlchemy URL; None: the default."""
    return RunStore(store_url(url_or_path))


RecordList = list  # (``RunStore.list`` shadows the builtin inside the class)


class RunStore:
    """A run store at one SQLAlchemy URL (:func:`open_store`). Safe to share between threads; every method is one
    short transaction."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.shown = make_url(url).render_as_string(hide_password=True)
        try:
            self.engine = _make_engine(url)
        except (NoSuchModuleError, ModuleNotFoundError, ArgumentError) as exc:
            raise StoreError(f"the run store {self.shown} cannot be opened ({exc})") from None
        self.dialect = self.engine.dialect.name
        self._guard(self._prepare)

    def __repr__(self) -> str:
        return f"RunStore({self.shown!r})"

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> "RunStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _guard(self, fn, *args, **kwargs):
        """``fn`` with database errors turned into one StoreError sentence."""
        try:
            return fn(*args, **kwargs)
        except SQLAlchemyError as exc:
            reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
            raise StoreError(f"the run store {self.shown} cannot be used ({reason})") from None

    def _write(self):
        """A connection whose transaction takes the write lock at BEGIN (SQLite), for ``with ... .begin()``."""
        return self.engine.connect().execution_options(write=True)

    def _prepare(self) -> None:
        with self.engine.connect() as conn:
            version = read_version(conn)
        if version == SCHEMA_VERSION:
            return
        with self._write() as conn, conn.begin():
            if self.dialect == "postgresql":  # two first openers: one creates, the other waits then sees it
                conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7402911)")
            version = read_version(conn)
            if version is None:
                create_current(conn)
            elif version > SCHEMA_VERSION:
                raise StoreError(
                    f"the run store {self.shown} was written by a newer rfexplorer (schema {version}; this one "
                    f"reads up to {SCHEMA_VERSION})"
                )
            elif version < SCHEMA_VERSION:
                migrate(conn, version)

    # -----------------------------------------------------------------------------------------------------
    # Writing
    # -----------------------------------------------------------------------------------------------------

    def record(
        self,
        result: ResultLike,
        *,
        source: str,
        topology_json: Optional[str] = None,
        metrics: Optional[Mapping] = None,
    ) -> int:
        """Record one finished run; returns its id. ``topology_json``: the trained network as topology-file JSON
        (default: written from ``result.model`` when a RunResult holds one). ``metrics``: extra metrics."""
        return self.record_many([(result, topology_json, metrics)], source=source)[0]

    def record_many(self, items: Sequence[Any], *, source: str) -> list[int]:
        """Record several runs in one transaction: items are results or (result, topology_json, metrics)."""
        prepared = []
        for item in items:
            result, topo, extra = item if isinstance(item, tuple) else (item, None, None)
            if topo is None and isinstance(result, RunResult):
                topo = auto_topology(result)
            prepared.append((record_values(result, source=source, metrics=extra), topo))
        return self._guard(self._insert, prepared)

    def _insert(self, prepared: list) -> list[int]:
        ids = []
        with self._write() as conn, conn.begin():
            for values, topo in prepared:
                run_id = int(conn.execute(runs.insert().values(**values)).inserted_primary_key[0])
                rows = setting_rows(run_id, json.loads(values["config"]))
                if rows:
                    conn.execute(run_settings.insert(), rows)
                if topo is not None:
                    conn.execute(run_topology.insert().values(run_id=run_id, document=topo))
                ids.append(run_id)
        return ids

    def delete(self, ids: Iterable[int]) -> int:
        """Delete runs by id (all or none: StoreError names an unknown id); returns how many were deleted."""
        wanted = sorted({int(i) for i in ids})
        return self._guard(self._delete, wanted)

    def _delete(self, wanted: list[int]) -> int:
        with self._write() as conn, conn.begin():
            found: set[int] = set()
            for chunk in _chunks(wanted):
                found.update(conn.execute(select(runs.c.id).where(runs.c.id.in_(chunk))).scalars())
            missing = [i for i in wanted if i not in found]
            if missing:
                raise StoreError(f"no run with id {missing[0]} in the run store {self.shown}; nothing was deleted")
            for chunk in _chunks(wanted):
                for table, column in ((run_settings, run_settings.c.run_id), (run_topology, run_topology.c.run_id)):
                    conn.execute(delete(table).where(column.in_(chunk)))
                conn.execute(delete(runs).where(runs.c.id.in_(chunk)))
        return len(wanted)

    # -----------------------------------------------------------------------------------------------------
    # Reading
    # -----------------------------------------------------------------------------------------------------

    def list(
        self,
        where: Optional[Union[Mapping[str, Any], Sequence[str]]] = None,
        limit: Optional[int] = None,
        *,
        full: bool = False,
        after: Optional[int] = None,
    ) -> RecordList[RunRecord]:
        """Runs matching every filter ({settings path or "source"/"status": value}, or "PATH=VALUE" texts),
        newest first, at most ``limit``; ``after``: only runs with a larger id. ``full``: with settings, history,
        versions and dataset record. StoreError names a path no recorded run has."""
        filters = parse_where(where)
        return self._guard(self._list, filters, limit, full, after)

    def _list(
        self, filters: dict[str, str], limit: Optional[int], full: bool, after: Optional[int]
    ) -> RecordList[RunRecord]:
        with self.engine.connect() as conn:
            self._check_paths(conn, filters)
            query = select(*(_FULL if full else _SUMMARY)).order_by(runs.c.id.desc())
            clause = where_clause(filters)
            if clause is not None:
                query = query.where(clause)
            if after is not None:
                query = query.where(runs.c.id > int(after))
            if limit is not None:
                query = query.limit(max(0, int(limit)))
            return [_record(row, full) for row in conn.execute(query).mappings()]

    def count(self, where: Optional[Union[Mapping[str, Any], Sequence[str]]] = None) -> int:
        """How many runs match the filters (as :meth:`list`)."""
        filters = parse_where(where)

        def run() -> int:
            with self.engine.connect() as conn:
                self._check_paths(conn, filters)
                query = select(func.count()).select_from(runs)
                clause = where_clause(filters)
                return int(conn.execute(query.where(clause) if clause is not None else query).scalar() or 0)

        return self._guard(run)

    def _check_paths(self, conn, filters: Mapping[str, str]) -> None:
        for path in filters:
            if path in RECORD_KEYS:
                continue
            hit = conn.execute(select(run_settings.c.run_id).where(run_settings.c.path == path).limit(1)).first()
            if hit is None and path not in _default_paths():
                raise StoreError(
                    f"unknown settings path {path!r}: no recorded run has it (paths look like model, dataset, "
                    f"device.alpha or plasticity.interval_steps; also {' and '.join(RECORD_KEYS)})"
                )

    def get(self, run_id: int) -> RunRecord:
        """One run in full, topology text included (StoreError for an unknown id)."""
        return self._guard(self._get, int(run_id))

    def _get(self, run_id: int) -> RunRecord:
        with self.engine.connect() as conn:
            row = conn.execute(select(*_FULL).where(runs.c.id == run_id)).mappings().first()
            if row is None:
                raise StoreError(f"no run with id {run_id} in the run store {self.shown}")
            rec = _record(row, True)
            rec.topology_json = conn.execute(
                select(run_topology.c.document).where(run_topology.c.run_id == run_id)
            ).scalar()
        return rec

    def topology(self, run_id: int):
        """The run's trained network as a :class:`engine.io.topology.Topology`, checked by the same reader as
        topology files (StoreError when the run has none, TopologyFileError when it is not valid)."""
        rec = self.get(run_id)
        if rec.topology_json is None:
            raise StoreError(f"run {run_id} has no trained network in the run store (only its results)")
        return topology_of(rec.topology_json, f"run {run_id} of the run store")


def row_recorder(
    store: Optional[RunStore],
    source: str,
    on_note: Optional[Callable[[str], None]] = None,
    extra_keys: Sequence[str] = (),
) -> Optional[Callable[[dict], None]]:
    """A callback that records result rows (dicts, as sweeps deliver them) in ``store`` as they arrive, their
    ``extra_keys`` added to the metrics; rows marked ``_cancelled`` are skipped. A store that fails is noted once
    through ``on_note`` and recording stops (the caller's own files still get every row). None without a store."""
    if store is None:
        return None
    failed: list[str] = []

    def record(row: dict) -> None:
        if failed or row.get("_cancelled"):
            return
        try:
            extra = {k: row[k] for k in extra_keys if k in row}
            store.record(ResultRow.from_dict(row), source=source, metrics=extra)
        except (ValueError, TypeError) as exc:  # a row the store refuses (StoreError is a ValueError)
            failed.append(str(exc))
            (on_note or _log.warning)(f"warning: runs are no longer recorded in the run store: {exc}")

    return record


def topology_of(document: str, source: str):
    """A stored topology text read back through the topology-file reader (every check of ``load_topology``)."""
    try:
        doc = json.loads(document)
    except ValueError:
        raise TopologyFileError(f"The topology of {source} is not valid JSON.") from None
    return topology_from_document(doc, source=source)


def _record(row: Mapping, full: bool) -> RunRecord:
    rec = RunRecord(
        id=int(row["id"]),
        created=row["created"],
        recorded=row["recorded"],
        source=row["source"],
        model=row["model"],
        dataset=row["dataset"],
        status=row["status"],
        test_accuracy=row["test_accuracy"],
        evaluated_on=row["evaluated_on"],
        train_seconds=row["train_seconds"],
        synapses=row["synapses"],
        error=row["error"],
        metrics=loads(row["metrics"], {}),
    )
    if full:
        rec.config = loads(row["config"], {})
        rec.history = loads(row["history"], [])
        rec.versions = loads(row["versions"], {})
        rec.dataset_info = loads(row["dataset_info"], {})
    return rec


def _chunks(ids: Sequence[int], size: int = 500) -> Iterable[Sequence[int]]:
    for i in range(0, len(ids), size):
        yield ids[i : i + size]


_DEFAULT_PATHS: set[str] = set()


def _default_paths() -> set[str]:
    """The settings paths of a default RunConfig (known paths even in an empty store)."""
    if not _DEFAULT_PATHS:
        _DEFAULT_PATHS.update(path for path, _ in flatten(RunConfig().resolved().to_dict()))
    return _DEFAULT_PATHS


__all__ = [
    "SOURCES",
    "STORE_ENV",
    "RunRecord",
    "RunStore",
    "StoreError",
    "default_store_path",
    "differing_settings",
    "default_store_url",
    "epoch_history",
    "open_store",
    "record_values",
    "row_recorder",
    "sqlite_file",
    "store_disabled",
    "store_url",
    "topology_of",
]
