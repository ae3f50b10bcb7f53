"""The app's session kept in the run store (rfexplorer.store_session) and the "Recorded runs" browser
(rfexplorer.runs_browser): finished runs recorded with source "app" and reloaded at the next launch, clearing the
session, and a browser that opens at once over 10,000 runs, filters by settings path, compares two runs and loads
one into the views."""
from __future__ import annotations

import time

import pytest

from conftest import RUN_TIMEOUT_MS
from engine.config.run_config import RunConfig
from engine.io.results import ResultRow
from engine.io.store import open_store


def synthetic(n: int) -> list[ResultRow]:
    """``n`` light rows (a few settings each): many runs in the store without minutes of writing."""
    models = ("rf", "rf-input", "dense")
    return [ResultRow(model=models[i % 3], dataset="mnist", resonators_per_chain=10, seed=i, test_accuracy=0.5,
                      train_seconds=1.0, config={"model": models[i % 3], "seed": i,
                                                 "device": {"tuning_bits": (4, 8)[i % 2]}})
            for i in range(n)]


def test_finished_runs_are_recorded_and_come_back_at_the_next_launch(make_window, settings, set_controls, qtbot,
                                                                      run_store):
    w = make_window()
    set_controls(w, "rf", 10, epochs=1)
    with qtbot.waitSignal(w.store_session.recorded, timeout=RUN_TIMEOUT_MS) as recorded:
        with qtbot.waitSignal(w.controller.run_finished, timeout=RUN_TIMEOUT_MS):
            assert w.runs.start_from_controls()
    store = open_store(run_store)
    rec = store.get(recorded.args[0])
    run_point = next(p for p in w.session.points if p.source == "run")
    assert rec.source == "app" and rec.model == "rf" and rec.test_accuracy == pytest.approx(run_point.accuracy)
    assert store.topology(rec.id).kind == "rf-perceptron" and len(rec.history) == 1
    sweep_row = synthetic(1)[0].with_(model="rf-input", test_accuracy=0.25)
    with qtbot.waitSignal(w.store_session.recorded, timeout=10_000):
        w.session.add(sweep_row, "sweep")
    w.close()
    assert store.count({"source": "app"}) == 2

    w2 = make_window(settings)
    qtbot.waitUntil(lambda: any(p.source == "stored" for p in w2.session.points), timeout=10_000)
    stored = [p for p in w2.session.points if p.source == "stored"]
    assert [(p.model, p.accuracy) for p in stored] == [("rf", pytest.approx(run_point.accuracy)), ("rf-input", 0.25)]
    assert store.count() == 2  # reloaded runs are not recorded again
    w2.act_clear.trigger()
    qtbot.waitUntil(lambda: w2.store_session.pending == 0, timeout=10_000)
    w2.close()

    w3 = make_window(settings)
    qtbot.waitUntil(lambda: w3.store_session.reloaded_count is not None, timeout=10_000)
    assert w3.store_session.reloaded_count == 0 and not any(p.source == "stored" for p in w3.session.points)
    assert store.count() == 2  # clearing the session keeps the runs in the store


def test_the_browser_opens_at_once_over_10000_runs_filters_compares_and_loads(make_window, qtbot, run_store, mini,
                                                                                tmp_path):
    from PySide6.QtCore import QItemSelectionModel

    from engine.training.loop import run_training

    store = open_store(run_store)
    rows = synthetic(10_000)
    for i in range(0, 10_000, 2_500):
        store.record_many(rows[i : i + 2_500], source="sweep")
    trained = run_training(RunConfig(model="rf", epochs=1, resonators_per_chain=10, seed=3), dataset=mini)
    real = store.record(trained, source="cli")
    w = make_window()
    start = time.perf_counter()
    w.act_runs_browser.trigger()
    browser = w.runs_browser
    opened = time.perf_counter() - start
    assert browser.isVisible() and opened < 0.5, f"the browser took {opened:.2f} s to open"
    qtbot.waitUntil(lambda: browser.model.rowCount() == 10_001, timeout=20_000)
    assert browser.count_label.text() == "10,001 run(s)" and browser.model.records[0].id == real

    browser.filter_edit.setText("model=rf-input device.tuning_bits=8")
    browser.refresh()
    qtbot.waitUntil(lambda: browser.model.rowCount() == sum(1 for i in range(10_000) if i % 3 == 1 and i % 2),
                    timeout=10_000)
    browser.filter_edit.setText("device.nothing=1")
    browser.refresh()
    qtbot.waitUntil(lambda: "unknown settings path" in browser.count_label.text(), timeout=10_000)

    browser.filter_edit.setText("")
    browser.refresh()
    qtbot.waitUntil(lambda: browser.model.rowCount() == 10_001, timeout=10_000)
    browser.table.selectRow(0)
    flags = QItemSelectionModel.SelectionFlag.Select | QItemSelectionModel.SelectionFlag.Rows
    browser.table.selectionModel().select(browser.model.index(2, 0), flags)
    assert browser.compare_btn.isEnabled() and not browser.load_btn.isEnabled()
    browser.compare_selected()
    qtbot.waitUntil(lambda: "Settings that differ" in browser.compare_text.toPlainText(), timeout=10_000)
    text = browser.compare_text.toPlainText()
    assert f"run {real}" in text and "test_accuracy" in text and "lr" in text
    browser.grab().save(str(tmp_path / "runs_browser.png"))

    browser.table.selectRow(0)
    assert browser.load_btn.isEnabled()
    browser.load_selected()
    qtbot.waitUntil(lambda: any(p.source == "import" for p in w.session.points), timeout=RUN_TIMEOUT_MS)
    imported = next(p for p in w.session.points if p.source == "import")
    assert imported.accuracy == pytest.approx(trained.test_accuracy) and browser.loaded_path.name == f"run-{real}.json"
