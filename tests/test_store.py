"""The run store (engine.io.store): records, filters on settings paths, deletes, the forward migration of an older
store, errors as one sentence, SQLite's WAL and busy timeout, concurrent writers and a writer killed mid-write."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import text

from engine.config.run_config import RunConfig
from engine.io.results import ResultRow
from engine.io.store import (
    STORE_ENV,
    StoreError,
    default_store_path,
    default_store_url,
    open_store,
    store_url,
)
from engine.io.store_schema import SCHEMA_VERSION
from engine.io.topology import TopologyFileError

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.usefixtures("one_torch_thread")

#: The schema of version 1, frozen: the topology inside ``runs`` and no summary columns. Never edit.
V1_DDL = (
    "CREATE TABLE schema_version (version INTEGER NOT NULL)",
    "CREATE TABLE runs (id INTEGER PRIMARY KEY AUTOINCREMENT, created VARCHAR(40) NOT NULL, "
    "source VARCHAR(32) NOT NULL, config TEXT NOT NULL, metrics TEXT NOT NULL, history TEXT NOT NULL, "
    "versions TEXT NOT NULL, topology TEXT)",
    "CREATE TABLE run_settings (run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE, "
    "path VARCHAR(200) NOT NULL, text VARCHAR(500) NOT NULL, num FLOAT, PRIMARY KEY (run_id, path))",
    "CREATE INDEX ix_run_settings_text ON run_settings (path, text, run_id)",
    "CREATE INDEX ix_run_settings_num ON run_settings (path, num, run_id)",
    "INSERT INTO schema_version (version) VALUES (1)",
)


def make_row(acc: float = 0.5, **changes) -> ResultRow:
    """A result row of a run with ``changes`` to the default settings (``device`` a dict of device changes)."""
    device = changes.pop("device", {})
    cfg = RunConfig(**changes).resolved()
    config = cfg.to_dict()
    config["device"].update(device)
    return ResultRow(
        model=cfg.model,
        dataset=cfg.dataset,
        resonators_per_chain=cfg.resonators_per_chain,
        seed=cfg.seed,
        test_accuracy=acc,
        train_seconds=1.5,
        config=config,
        history=[[1, 0.9, 0.6, acc]],
        versions={"rfexplorer": "test"},
        created="2026-01-01T00:00:00+00:00",
    )


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> Path:
    """A small 3-class dataset file of 24 inputs: a run of two epochs takes a fraction of a second."""
    rng = np.random.default_rng(0)
    centers = rng.uniform(0, 1, (3, 24))

    def make(n):
        y = rng.integers(0, 3, n)
        return np.clip(centers[y] + 0.25 * rng.standard_normal((n, 24)), 0, None).astype("float32"), y

    (trx, try_), (tex, tey) = make(600), make(150)
    path = tmp_path_factory.mktemp("toy") / "toy.npz"
    np.savez(path, train_x=trx, train_y=try_, test_x=tex, test_y=tey)
    return path


@pytest.fixture(scope="module")
def trained(toy):
    """A real RunResult: rf on the toy set with a validation split, two epochs."""
    from engine.training.loop import run_training

    cfg = RunConfig(model="rf", dataset=str(toy), resonators_per_chain=4, epochs=2, validation_fraction=0.2)
    return run_training(cfg)


def test_the_environment_variable_names_the_store_and_tests_never_use_the_user_folder(run_store, tmp_path):
    assert os.environ[STORE_ENV] == str(run_store)
    assert default_store_url() == store_url(run_store) != store_url(default_store_path())
    assert store_url(tmp_path / "a.sqlite").startswith("sqlite:///")
    assert store_url("postgresql://team@db.example/runs") == "postgresql://team@db.example/runs"


def test_a_trained_run_is_recorded_in_full_and_read_back(trained, tmp_path):
    store = open_store(tmp_path / "s.sqlite")
    run_id = store.record(trained, source="cli")
    rec = store.get(run_id)
    assert rec.source == "cli" and rec.model == "rf" and rec.status == "ok"
    assert rec.config == trained.config.resolved().to_dict()
    assert rec.test_accuracy == trained.test_accuracy and rec.evaluated_on == "validation"
    assert rec.metrics["synapses"] == trained.synapses and rec.metrics["train_loss"] == trained.history[-1][1]
    assert rec.versions["torch"] == trained.versions["torch"]
    assert [h["epoch"] for h in rec.history] == [1, 2]
    for h, (_, loss, train_acc, val_acc) in zip(rec.history, trained.history):
        assert h["train_loss"] == loss and h["train_accuracy"] == train_acc and h["val_accuracy"] == val_acc
        assert h["val_loss"] > 0
    topo = store.topology(run_id)  # through the topology-file reader
    assert topo.kind == "rf-perceptron" and topo.recorded_accuracy == pytest.approx(trained.test_accuracy)
    row = rec.to_row()
    assert row.test_accuracy == pytest.approx(trained.test_accuracy) and row.history[-1] == list(trained.history[-1])
    assert "topology_json" not in rec.to_dict() and json.dumps(rec.to_dict())


def test_the_validation_loss_pass_changes_no_result(toy, monkeypatch):
    """The validation loss is measured with the model's generator restored afterwards: with read-out noise (which
    draws from it at every evaluation) the run is the same as one that never measured it."""
    from engine.training import loop

    cfg = RunConfig.from_dict(
        {"model": "rf", "dataset": str(toy), "resonators_per_chain": 4, "epochs": 2,
         "validation_fraction": 0.2, "device": {"readout_noise_v": 0.02}}
    )
    measured = loop.run_training(cfg)
    assert all(e["val_loss"] > 0 for e in measured.epoch_metrics)
    monkeypatch.setattr(loop._Trainer, "_validation_loss", lambda self: None)
    unmeasured = loop.run_training(cfg)
    assert unmeasured.history == measured.history and unmeasured.test_accuracy == measured.test_accuracy
    plain = loop.run_training(cfg.with_(validation_fraction=0.0))
    assert "val_loss" not in plain.epoch_metrics[0] and plain.epoch_metrics[0]["test_accuracy"] == plain.history[0][3]


def test_filters_match_any_settings_path(tmp_path):
    store = open_store(tmp_path / "s.sqlite")
    ids = store.record_many(
        [
            make_row(0.1, model="rf-input", device={"tuning_bits": 8}),
            make_row(0.2, model="rf-input", device={"tuning_bits": 6}),
            make_row(0.3, model="rf", device={"tuning_bits": 8, "alpha": 0.004}),
            make_row(0.4, model="rf-input", hidden=(20, 10)),
        ],
        source="sweep",
    )
    assert [r.id for r in store.list()] == ids[::-1]  # newest first
    assert [r.id for r in store.list({"model": "rf-input", "device.tuning_bits": "8"})] == [ids[0]]
    assert [r.id for r in store.list(["device.tuning_bits=8"])] == [ids[2], ids[0]]
    assert [r.id for r in store.list({"device.alpha": "4e-3"})] == [ids[2]]  # numerically equal
    assert [r.id for r in store.list({"device.tuning_bits": "None"})] == [ids[3]]
    assert [r.id for r in store.list({"hidden": "20, 10"})] == [ids[3]]
    assert [r.id for r in store.list({"device.calibrated": "True", "model": "rf"})] == [ids[2]]
    assert store.list({"source": "cli"}) == [] and store.count({"source": "sweep"}) == 4
    assert len(store.list(limit=2)) == 2 and store.list(limit=1, full=True)[0].config["hidden"] == [20, 10]
    with pytest.raises(StoreError, match="unknown settings path 'device.nope'"):
        store.list({"device.nope": "1"})
    with pytest.raises(StoreError, match="PATH=VALUE"):
        store.list(["model"])


def test_a_filter_is_an_index_lookup(tmp_path):
    store = open_store(tmp_path / "s.sqlite")
    store.record(make_row(), source="cli")
    with sqlite3.connect(tmp_path / "s.sqlite") as con:
        plan = con.execute(
            "EXPLAIN QUERY PLAN SELECT run_id FROM run_settings WHERE path = ? AND (text = ? OR num = ?)",
            ("device.tuning_bits", "8", 8.0),
        ).fetchall()
    assert any("ix_run_settings" in str(step) for step in plan), plan


def test_delete_is_all_or_nothing_and_ids_are_not_reused(tmp_path):
    store = open_store(tmp_path / "s.sqlite")
    a, b = store.record_many([make_row(), make_row(seed=1)], source="cli")
    with pytest.raises(StoreError, match=f"no run with id {b + 7}"):
        store.delete([a, b + 7])
    assert store.count() == 2
    assert store.delete([b]) == 1 and [r.id for r in store.list()] == [a]
    assert store.list({"seed": "1"}) == []
    c = store.record(make_row(), source="cli")
    assert c > b
    with pytest.raises(StoreError, match="no run with id"):
        store.get(b)


def test_sources_are_checked(tmp_path):
    with pytest.raises(StoreError, match="unknown run source"):
        open_store(tmp_path / "s.sqlite").record(make_row(), source="elsewhere")


def test_a_version_1_store_is_migrated_and_its_runs_stay_readable(trained, tmp_path):
    from engine.core.files import dumps_json
    from engine.io.topology import result_document

    path = tmp_path / "v1.sqlite"
    config = trained.config.to_dict()
    metrics = {"test_accuracy": 0.75, "evaluated_on": "validation", "synapses": 12, "train_seconds": 2.0}
    with sqlite3.connect(path) as con:
        for statement in V1_DDL:
            con.execute(statement)
        con.execute(
            "INSERT INTO runs (created, source, config, metrics, history, versions, topology) VALUES (?,?,?,?,?,?,?)",
            ("2025-05-05T00:00:00+00:00", "cli", json.dumps(config), json.dumps(metrics), "[]", "{}",
             dumps_json(result_document(trained))),
        )
        con.execute("INSERT INTO run_settings VALUES (1, 'model', 'rf', NULL)")
    store = open_store(path)
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT version FROM schema_version")).scalar() == SCHEMA_VERSION
        columns = [row[1] for row in conn.execute(text("PRAGMA table_info(runs)"))]
    assert "topology" not in columns and "test_accuracy" in columns
    [rec] = store.list({"model": "rf"})
    assert (rec.id, rec.model, rec.test_accuracy, rec.status, rec.synapses) == (1, "rf", 0.75, "ok", 12)
    assert store.topology(1).kind == "rf-perceptron"
    new = store.record(make_row(), source="cli")
    assert new == 2 and store.count() == 2
    assert open_store(path).count() == 2  # opening again migrates nothing


def test_a_store_of_a_newer_version_is_refused(tmp_path):
    path = tmp_path / "s.sqlite"
    open_store(path).close()
    with sqlite3.connect(path) as con:
        con.execute("UPDATE schema_version SET version = 99")
    with pytest.raises(StoreError, match="newer rfexplorer"):
        open_store(path)


def test_unusable_stores_are_one_sentence(tmp_path):
    bad = tmp_path / "bad.sqlite"
    bad.write_text("not a database at all" * 100)
    with pytest.raises(StoreError, match="cannot be used") as err:
        open_store(bad)
    assert "\n" not in str(err.value)
    with pytest.raises(StoreError, match="cannot be opened"):
        open_store("nosuchdialect://somewhere/db")
    with pytest.raises(StoreError, match="not a database URL"):
        open_store("postgresql://host:notaport/db")


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(tmp_path):
    store = open_store(tmp_path / "s.sqlite")
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 10_000


def test_a_tampered_topology_is_refused_on_the_way_out(trained, tmp_path):
    store = open_store(tmp_path / "s.sqlite")
    run_id = store.record(trained, source="cli")
    doc = json.loads(store.get(run_id).topology_json)
    doc["n_classes"] = 7
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE run_topology SET document = :d"), {"d": json.dumps(doc)})
    with pytest.raises(TopologyFileError):
        store.topology(run_id)


WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from engine.io.results import ResultRow
    from engine.io.store import open_store
    from engine.config.run_config import RunConfig
    store, n, tag, go = open_store(sys.argv[1]), int(sys.argv[2]), sys.argv[3], Path(sys.argv[4])
    config = RunConfig(dataset=tag).resolved().to_dict()
    Path(str(go) + "." + tag).touch()
    while not go.exists():
        time.sleep(0.01)
    for i in range(n):
        row = ResultRow(model="rf", dataset=tag, resonators_per_chain=10, seed=i, test_accuracy=0.5, config=config)
        store.record(row, source="sweep")
    """
)


def _writer(path: Path, n: int, tag: str, go: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), str(n), tag, str(go)], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}
    )


def _wait_for(condition, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.05)


def test_two_processes_writing_at_once_lose_nothing(tmp_path):
    path, go = tmp_path / "s.sqlite", tmp_path / "go"
    open_store(path).close()
    procs = [_writer(path, 50, tag, go) for tag in ("a", "b")]
    _wait_for(lambda: all(Path(f"{go}.{t}").exists() for t in ("a", "b")))
    go.touch()  # both start writing together
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    store = open_store(path)
    records = store.list()
    assert len(records) == 100 and len({r.id for r in records}) == 100
    for tag in ("a", "b"):
        assert sorted(r.metrics["seed"] for r in records if r.dataset == tag) == list(range(50))
        assert store.count({"dataset": tag}) == 50


def test_a_writer_killed_mid_write_leaves_the_store_readable(tmp_path):
    path, go = tmp_path / "s.sqlite", tmp_path / "go"
    go.touch()
    proc = _writer(path, 100_000, "k", go)
    try:
        _wait_for(lambda: path.exists() and _count(path) >= 30)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    store = open_store(path)
    n = store.count()
    assert n >= 30 and len(store.list()) == n
    assert store.list({"dataset": "k"}, limit=1)[0].id == max(r.id for r in store.list())
    with sqlite3.connect(path) as con:
        assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    store.record(make_row(), source="cli")  # and writable
    assert store.count() == n + 1


def _count(path: Path) -> int:
    try:
        with sqlite3.connect(path, timeout=5) as con:
            return con.execute("SELECT count(*) FROM runs").fetchone()[0]
    except sqlite3.OperationalError:  # the tables are not there yet
        return 0


@pytest.fixture(scope="module")
def _store_seen_by_a_module_fixture():
    import os

    return os.environ.get("RFEXPLORER_STORE")


def test_a_module_scoped_fixture_records_into_a_throwaway_store(_store_seen_by_a_module_fixture, tmp_path_factory):
    """A module's fixture (a sweep run once for several tests) is set up before each test's own store: it must
    still see a throwaway store, never the user's (a Ray test's module sweep once wrote into the user's)."""
    seen = _store_seen_by_a_module_fixture
    assert seen and Path(seen).is_relative_to(tmp_path_factory.getbasetemp())
