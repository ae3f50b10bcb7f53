"""The run store's tables (SQLAlchemy Core) and its forward migrations.

Tables of schema version :data:`SCHEMA_VERSION`:

- ``schema_version``: one row, the version the store's tables are at.
- ``runs``: one row per recorded run: when and by what it was recorded, a few summary columns for listing
  (model, dataset, status, accuracy, seconds, synapses), and the full record as JSON texts (resolved settings
  tree, metrics, per-epoch history, software versions, dataset record).
- ``run_settings``: the settings tree flattened, one ``(run_id, path, text, num)`` row per leaf, indexed on
  ``(path, text)`` and ``(path, num)``, so that a filter on any settings path is an index lookup.
- ``run_topology``: the trained network as topology-file JSON (format version 3), kept apart so that listing
  never reads it.

A store written by an older version is brought forward by :data:`MIGRATIONS` (ordered functions, each run in
its own transaction with the version bump), so a store keeps working across upgrades; a store written by a
newer version is refused rather than damaged. Everything here is portable SQL: what only SQLite needs sits
behind an ``if dialect == "sqlite"`` in :mod:`engine.io.store`.
"""

from __future__ import annotations

import json
from typing import Callable

from sqlalchemy import (
    Column,
    Connection,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    inspect,
    select,
    text,
    update,
)

#: The schema version this code writes; older stores are migrated forward on open.
SCHEMA_VERSION = 2

#: Settings values longer than this are cut in ``run_settings`` (indexed; the full tree is in ``runs.config``).
MAX_SETTING_TEXT = 500

metadata = MetaData()

schema_version = Table("schema_version", metadata, Column("version", Integer, nullable=False))

runs = Table(
    "runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("created", String(40), nullable=False),  # when the run finished (ISO 8601, UTC)
    Column("recorded", String(40), nullable=False),  # when it was written into the store
    Column("source", String(32), nullable=False, index=True),  # cli, sweep, ray, app, robustness, ...
    Column("model", String(64), nullable=False, server_default=""),
    Column("dataset", String(500), nullable=False, server_default=""),
    Column("status", String(16), nullable=False, server_default="ok"),  # ok, failed, cancelled
    Column("test_accuracy", Float),
    Column("evaluated_on", String(16)),
    Column("train_seconds", Float),
    Column("synapses", Integer),
    Column("error", Text),
    Column("config", Text, nullable=False),  # the resolved settings tree (JSON)
    Column("metrics", Text, nullable=False),  # JSON object
    Column("history", Text, nullable=False),  # JSON list: one object per epoch
    Column("versions", Text, nullable=False),  # JSON object
    Column("dataset_info", Text, nullable=False, server_default="{}"),  # JSON object
    sqlite_autoincrement=True,  # ids are never reused after a delete (other databases never reuse them either)
)

run_settings = Table(
    "run_settings",
    metadata,
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("path", String(200), primary_key=True),
    Column("text", String(MAX_SETTING_TEXT), nullable=False),
    Column("num", Float),
    Index("ix_run_settings_text", "path", "text", "run_id"),
    Index("ix_run_settings_num", "path", "num", "run_id"),
)

run_topology = Table(
    "run_topology",
    metadata,
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("document", Text, nullable=False),
)


def read_version(conn: Connection) -> int | None:
    """The store's schema version; None for an empty database (no tables of ours)."""
    if not inspect(conn).has_table("schema_version"):
        return None
    value = conn.execute(select(schema_version.c.version)).scalar()
    return int(value) if value is not None else None


def _write_version(conn: Connection, version: int) -> None:
    if conn.execute(update(schema_version).values(version=version)).rowcount == 0:
        conn.execute(schema_version.insert().values(version=version))


def create_current(conn: Connection) -> None:
    """Create every table at :data:`SCHEMA_VERSION` in an empty database."""
    metadata.create_all(conn)
    _write_version(conn, SCHEMA_VERSION)


def _v1_to_v2(conn: Connection) -> None:
    """Version 1 kept the topology in ``runs.topology`` and had no summary columns: move the topology to its own
    table and fill the summary columns from the JSON texts."""
    for name, kind in (
        ("model", "VARCHAR(64) DEFAULT '' NOT NULL"),
        ("dataset", "VARCHAR(500) DEFAULT '' NOT NULL"),
        ("status", "VARCHAR(16) DEFAULT 'ok' NOT NULL"),
        ("test_accuracy", "FLOAT"),
        ("evaluated_on", "VARCHAR(16)"),
        ("train_seconds", "FLOAT"),
        ("synapses", "INTEGER"),
        ("error", "TEXT"),
        ("recorded", "VARCHAR(40) DEFAULT '' NOT NULL"),
        ("dataset_info", "TEXT DEFAULT '{}' NOT NULL"),
    ):
        conn.execute(text(f"ALTER TABLE runs ADD COLUMN {name} {kind}"))
    run_topology.create(conn)
    conn.execute(
        text("INSERT INTO run_topology (run_id, document) SELECT id, topology FROM runs WHERE topology IS NOT NULL")
    )
    conn.execute(text("ALTER TABLE runs DROP COLUMN topology"))
    rows = conn.execute(text("SELECT id, created, config, metrics FROM runs")).all()
    for run_id, created, config_text, metrics_text in rows:
        config, metrics = json.loads(config_text or "{}"), json.loads(metrics_text or "{}")
        conn.execute(
            update(runs)
            .where(runs.c.id == run_id)
            .values(
                model=str(config.get("model", "")),
                dataset=str(config.get("dataset", "")),
                status=status_of(metrics),
                test_accuracy=metrics.get("test_accuracy"),
                evaluated_on=metrics.get("evaluated_on"),
                train_seconds=metrics.get("train_seconds"),
                synapses=metrics.get("synapses"),
                error=metrics.get("error"),
                recorded=created or "",
            )
        )
    conn.execute(text("CREATE INDEX ix_runs_source ON runs (source)"))  # (an Index object would join the table)


def status_of(metrics: dict) -> str:
    """A run's status from its metrics: failed (an error), cancelled, or ok."""
    if metrics.get("error"):
        return "failed"
    return "cancelled" if metrics.get("cancelled") else "ok"


#: (version reached, function) in order; each runs in its own transaction with its version bump.
MIGRATIONS: list[tuple[int, Callable[[Connection], None]]] = [(2, _v1_to_v2)]


def migrate(conn: Connection, from_version: int) -> None:
    """Apply the migrations above ``from_version`` inside the caller's transaction (the caller holds the
    write lock and commits), then record :data:`SCHEMA_VERSION`."""
    for version, step in MIGRATIONS:
        if version > from_version:
            step(conn)
            _write_version(conn, version)
