"""The Design view (rfexplorer.views.design): the design studies of the run store, made by the real
``rfexplorer-cli design``, drawn as trials on two objectives with their Pareto front, new trials appearing while
the view is open, and a click on a point that loads that trial's network into the spectrum and the heatmap."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import RUN_TIMEOUT_MS

STUDY = "app-design-test"
TRIALS = 4


@pytest.fixture(scope="module")
def design_store(tmp_path_factory):
    """A run store holding a design study of TRIALS trials on mnist-mini (1 epoch), made by the real CLI."""
    folder = tmp_path_factory.mktemp("design")
    store = folder / "runs.sqlite"
    cmd = [sys.executable, "-m", "engine.cli", "design", "--model", "rf", "--dataset", "mnist-mini", "--epochs",
           "1", "--trials", str(TRIALS), "--space", "resonators_per_chain=2:40:int", "--study", STUDY,
           "--store", str(store), "--out", str(folder / "out"), "--threads", "1", "--quiet"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env={**os.environ, "CI": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    return store


@pytest.fixture
def study_store(design_store, tmp_path, monkeypatch):
    """A copy of the design store for one test, named by RFEXPLORER_STORE."""
    path = tmp_path / "runs.sqlite"
    shutil.copy(design_store, path)
    monkeypatch.setenv("RFEXPLORER_STORE", str(path))
    return path


def _study(path):
    import optuna

    return optuna.load_study(study_name=STUDY, storage=f"sqlite:///{path}")


def _open_design(window, qtbot):
    window.resize(1280, 720)
    window.view_actions["Design search"].trigger()
    assert window.design_dock.isVisible() and window.design.isVisible()
    return window.design


def _point_pos(view, number):
    """Where trial ``number``'s point is drawn, in the plot widget's viewport."""
    from PySide6.QtCore import QPointF

    spot = next(s for s in view.scatter.points() if s.data() == number)
    scene = view.plot.vb.mapViewToScene(QPointF(spot.pos().x(), spot.pos().y()))
    return view.plot_widget.mapFromScene(scene)


def _move(widget, pos):
    """A mouse move without buttons (hover), as the window system sends it."""
    from PySide6.QtCore import QPointF, Qt
    from PySide6.QtGui import QMouseEvent
    from PySide6.QtWidgets import QApplication

    local = QPointF(pos)
    event = QMouseEvent(QMouseEvent.Type.MouseMove, local, widget.mapToGlobal(local), Qt.NoButton, Qt.NoButton,
                        Qt.NoModifier)
    QApplication.sendEvent(widget, event)


def test_design_view_draws_the_trials_and_the_front_and_a_click_shows_the_network(make_window, study_store, qtbot,
                                                                                   tmp_path, dialogs):
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest

    study = _study(study_store)
    expected_front = {t.number for t in study.best_trials}
    w = make_window()
    view = _open_design(w, qtbot)
    qtbot.waitUntil(lambda: len(view.scatter.points()) == TRIALS, timeout=20_000)
    assert view.study_combo.currentData() == STUDY
    assert [view.x_combo.currentData(), view.y_combo.currentData()] == ["resonators", "val_accuracy"]
    assert set(view.front_numbers) == expected_front  # two objectives: the study's own Pareto front
    fx, fy = view.front_line.getData()
    assert len(fx) == len(expected_front) and np.all(np.diff(fx) >= 0)
    by_number = {t.number: t for t in study.trials}
    spots = {s.data(): (s.pos().x(), s.pos().y()) for s in view.scatter.points()}
    for n, (x, y) in spots.items():
        assert (x, y) == pytest.approx((by_number[n].values[1], 100 * by_number[n].values[0]))
    assert "on the front" in view.info_label.text()

    # hover: the trial's settings and values
    def hovered() -> bool:  # moved again at each check: the plot's range settles on its first paints
        _move(view.plot_widget.viewport(), _point_pos(view, view.front_numbers[0]))
        return f"trial #{view.front_numbers[0]}" in view.info_label.text()

    qtbot.waitUntil(hovered, timeout=5_000)
    assert "resonators_per_chain" in view.info_label.text()
    tip = view._tip(data=view.front_numbers[0])
    assert f"trial #{view.front_numbers[0]}" in tip and "val_accuracy:" in tip and "%" in tip
    w.grab().save(str(tmp_path / "design_view.png"))

    # click the front point whose K differs most from the network on display
    shown_k = w.explorer.state.resonators_per_chain
    target = max(view.front_numbers, key=lambda n: abs(by_number[n].params["resonators_per_chain"] - shown_k))
    k = by_number[target].params["resonators_per_chain"]
    assert k != shown_k
    QTest.mouseClick(view.plot_widget.viewport(), Qt.LeftButton, Qt.NoModifier, _point_pos(view, target))
    qtbot.waitUntil(lambda: any(p.source == "import" for p in w.session.points), timeout=RUN_TIMEOUT_MS)
    assert dialogs == []
    state = w.explorer.state
    assert view.selected == target and view.loaded_path.name in state.label
    assert state.resonators_per_chain == k
    resonators = w.spectrum.data_summary()["resonators_x"]
    assert all(r is not None and len(r) == k for r in resonators)  # the spectrum draws the trial's K per chain
    image = w.assignment.current_image()  # the heatmap too (drawn in its own unit: compared up to scale)
    np.testing.assert_allclose(image / np.abs(image).max(), state.weight / np.abs(state.weight).max(), atol=1e-6)
    qtbot.waitUntil(lambda: len(view.marker.points()) == 1, timeout=5_000)
    w.grab().save(str(tmp_path / "design_clicked.png"))


def test_a_new_trial_appears_while_the_view_is_open(make_window, study_store, qtbot):
    import optuna

    w = make_window()
    view = _open_design(w, qtbot)
    qtbot.waitUntil(lambda: len(view.scatter.points()) == TRIALS, timeout=20_000)
    study = _study(study_store)
    study.add_trial(optuna.trial.create_trial(values=[0.99, 1.0], user_attrs={"settings": {"resonators_per_chain": 1}}))
    added = time.perf_counter()
    qtbot.waitUntil(lambda: len(view.scatter.points()) == TRIALS + 1, timeout=10_000)
    waited = time.perf_counter() - added
    assert waited < 5.0, f"the new trial took {waited:.1f} s to appear"
    assert view.front_numbers == [TRIALS]  # it dominates every other trial


def test_an_empty_store_says_how_to_make_a_study(make_window, qtbot, run_store):
    from rfexplorer.views.design import NO_STUDY

    w = make_window()
    view = _open_design(w, qtbot)
    qtbot.waitUntil(lambda: view.reads >= 1, timeout=10_000)
    assert view.snapshot is None and view.studies == []
    assert view.message_label.isVisible() and view.message_label.text() == NO_STUDY
    assert not view.plot_widget.isVisible() and view.study_combo.count() == 0
    from sqlalchemy import create_engine, inspect

    engine = create_engine(f"sqlite:///{run_store}")
    assert not inspect(engine).has_table("studies")  # looking created no Optuna table in the user's store
    engine.dispose()


def test_a_trial_of_another_dataset_switches_the_app_to_it(make_window, tmp_path, monkeypatch, qtbot, dialogs):
    store = tmp_path / "drones.sqlite"
    cmd = [sys.executable, "-m", "engine.cli", "design", "--model", "rf", "--dataset", "drones", "--epochs", "1",
           "--trials", "1", "--space", "resonators_per_chain=3:12:int", "--study", "drones-study", "--store",
           str(store), "--out", str(tmp_path / "out"), "--threads", "1", "--quiet"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    monkeypatch.setenv("RFEXPLORER_STORE", str(store))
    w = make_window()
    assert w.controls.dataset() == "mnist-mini"
    view = _open_design(w, qtbot)
    qtbot.waitUntil(lambda: len(view.scatter.points()) == 1, timeout=20_000)
    trial = view.snapshot.trials[0]
    assert view.load_trial(trial.number)
    qtbot.waitUntil(lambda: any(p.source == "import" for p in w.session.points), timeout=RUN_TIMEOUT_MS)
    assert dialogs == [] and w.controls.dataset() == "drones"
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()  # a while longer: no preview of the new dataset comes after the network to replace it
    QTimer.singleShot(2000, loop.quit)
    loop.exec()
    state = w.explorer.state
    assert view.loaded_path.name in state.label
    assert state.weight.shape[1] == 256 and state.resonators_per_chain == trial.params["resonators_per_chain"]


def test_the_front_is_the_set_no_point_dominates():
    from rfexplorer.design_watch import pareto_front

    rng = np.random.default_rng(0)
    for maximize in ((False, True), (True, True), (False, False)):
        x, y = rng.integers(0, 8, 60).astype(float), rng.random(60).round(1)  # ties on both axes
        sx, sy = np.where(maximize[0], -x, x), np.where(maximize[1], -y, y)
        dominated = [bool(np.any((sx <= sx[i]) & (sy <= sy[i]) & ((sx < sx[i]) | (sy < sy[i])))) for i in range(60)]
        expected = {i for i in range(60) if not dominated[i]}
        front = pareto_front(x, y, maximize)
        # duplicates of one front point: one of them is drawn
        assert {(x[i], y[i]) for i in front} == {(x[i], y[i]) for i in expected}, maximize
        assert np.all(np.diff(x[front]) >= 0)


def test_a_poll_reads_the_trials_only_when_they_changed(design_store, tmp_path):
    import optuna

    from rfexplorer.design_watch import DesignWatch

    path = tmp_path / "runs.sqlite"
    shutil.copy(design_store, path)
    watch = DesignWatch(f"sqlite:///{path}")
    first = watch.snapshot(STUDY)
    assert [s.name for s in watch.studies()] == [STUDY] and len(first.trials) == TRIALS
    assert watch.snapshot(STUDY) is first  # nothing changed: no read of the trials
    assert all(t.run_id is not None and "resonators_per_chain" in t.params for t in first.trials)
    _study(path).add_trial(optuna.trial.create_trial(values=[0.5, 5.0]))
    second = watch.snapshot(STUDY)
    assert second is not first and len(second.trials) == TRIALS + 1
    watch.close()
