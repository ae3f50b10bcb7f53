"""Datasets of any shape in the real window: a user file without an image shape (N = 64 inputs, C = 3 classes),
File > Open dataset with a bad file, the K range following N, the embedded drone set, and where models are
built (never on the GUI thread)."""
import threading

import numpy as np
import pytest

from rfexplorer.controls import SLIDER_STEPS

RUN_MS = 120_000
N_TOY, C_TOY = 64, 3
TOY_NAMES = ("alpha", "beta", "gamma")


@pytest.fixture
def toy_npz(tmp_path):
    """A user dataset file: 64 non-negative features, 3 classes with names, no image shape."""
    rng = np.random.default_rng(0)
    centres = rng.random((C_TOY, N_TOY))

    def draw(n):
        y = rng.integers(0, C_TOY, n)
        return (0.5 * centres[y] + rng.random((n, N_TOY))).astype(np.float32), y

    (trx, try_), (tex, tey) = draw(300), draw(90)
    path = tmp_path / "toy64.npz"
    np.savez(path, train_x=trx, train_y=try_, test_x=tex, test_y=tey, class_names=np.array(TOY_NAMES))
    return path


def _open(window, qtbot, choose_file, path):
    """File > Open dataset…, answering the file dialog with ``path``; waits until the views follow it."""
    choose_file(path)
    with qtbot.waitSignal(window.datasets.changed, timeout=RUN_MS) as ready:
        window.act_open_dataset.trigger()
    return ready.args[0]


def test_a_dataset_without_image_shape_trains_and_the_views_follow_it(window, qtbot, choose_file, dialogs,
                                                                       set_controls, toy_npz):
    info = _open(window, qtbot, choose_file, toy_npz)
    assert (info.n_inputs, info.n_classes, info.image_shape) == (N_TOY, C_TOY, None)
    assert window.controls.dataset() == str(toy_npz.resolve())
    assert "3 classes" in window.dataset_label.text() and "toy64.npz" in window.dataset_label.text()
    set_controls(window, "rf", 5, epochs=2, dataset=str(toy_npz.resolve()))
    with qtbot.waitSignal(window.controller.run_finished, timeout=RUN_MS) as done:
        assert window.runs.start_from_controls()
    result = done.args[0]
    assert (result.n_inputs, result.n_classes) == (N_TOY, C_TOY) and dialogs == []

    # the assignment heatmap: 3 rows (named by the classes) x 64 columns
    assert window.assignment.current_image().shape == (C_TOY, N_TOY)
    assert window.assignment.image.image.shape == (C_TOY, N_TOY)
    ticks = window.assignment.plot.getAxis("left")._tickLevels[0]
    assert [t[1] for t in ticks] == list(TOY_NAMES)
    # input maps are 1 x 64 strips, one per chain, not 28 x 28 images
    window.assignment.set_mode(1)
    assert len(window.assignment.map_images) == C_TOY and window.assignment.map_shape() == (1, N_TOY)
    assert "1×64" in window.assignment.mode_combo.itemText(1)
    window.assignment.set_mode(0)
    # the spectrum: 64 comb stems, 3 chains of 5 resonators, a chain selector with the class names
    data = window.spectrum.data_summary()
    assert len(data["comb_x"]) == 2 * N_TOY and data["comb_y"].max() > 0
    assert [len(r) for r in data["resonators_x"]] == [5] * C_TOY
    assert window.spectrum.chain_combo.count() == C_TOY and "gamma" in window.spectrum.chain_combo.itemText(2)
    assert window.spectrum.sample_title.text() == "Test sample"
    # the accuracy view: the run at 100 (1 - 5/64) % removed
    point = window.session.points[-1]
    assert point.removed_pct == pytest.approx(100 * (1 - 5 / N_TOY), abs=1e-3)
    assert window.sparsity.n_points() == 1
    # the session keeps the finished model (no training state) for export, and the row
    assert point.network is not None and point.network.context is None
    assert point.row.dataset_info["class_names"] == list(TOY_NAMES)
    # selecting the last chain works for C = 3
    window.explorer.select_chain(7)
    assert window.explorer.selected_chain == C_TOY - 1 == window.assignment.selected_chain


def test_open_dataset_with_a_bad_file_shows_the_engine_error(window, qtbot, choose_file, dialogs, tmp_path):
    from engine.data import DatasetFileError, load_dataset

    bad = tmp_path / "bad.npz"
    np.savez(bad, train_x=-np.ones((4, 3)), train_y=np.array([0, 1, 0, 1]), test_x=np.ones((2, 3)),
             test_y=np.array([0, 1]))
    with pytest.raises(DatasetFileError) as expected:
        load_dataset(str(bad))
    before = window.datasets.info
    choose_file(bad)
    with qtbot.waitSignal(window.controller.dataset_failed, timeout=RUN_MS):
        window.act_open_dataset.trigger()
    assert dialogs == [("warning", "Cannot load the dataset", str(expected.value))]
    assert window.controls.dataset() == "mnist-mini" and str(bad.resolve()) not in window.controls.dataset_keys()
    assert window.datasets.info is before and window.controls.k_spin.maximum() == 784
    # a cancelled dialog changes nothing
    choose_file(None)
    window.act_open_dataset.trigger()
    assert window.controls.dataset() == "mnist-mini" and len(dialogs) == 1


def test_k_slider_range_follows_the_number_of_inputs(window, qtbot, choose_file, toy_npz):
    c = window.controls
    assert c.n_inputs == 784 and c.k_spin.maximum() == 784
    c.set_k(100)
    _open(window, qtbot, choose_file, toy_npz)
    assert c.n_inputs == N_TOY and c.k_spin.maximum() == N_TOY
    assert c.k() == N_TOY  # K = 100 does not fit: clamped to N
    c.k_slider.setValue(SLIDER_STEPS)  # right end: K = N
    assert c.k() == N_TOY and c.removed_label.text() == "0.00 %"
    c.sparsity_slider.setValue(SLIDER_STEPS)  # right end: the sparsest network, K = 1
    assert c.k() == 1 and c.removed_label.text() == f"{100 * (1 - 1 / N_TOY):.2f} %"
    c.set_k(30)
    assert c.k() == 30 and c.config().resonators_per_chain == 30
    with qtbot.waitSignal(window.datasets.changed, timeout=RUN_MS):
        c.select_dataset("mnist-mini")
    assert c.k_spin.maximum() == 784 and c.k() == 30


def test_drones_dataset_from_the_menu(window, qtbot):
    act = next(a for a in window.dataset_actions.actions() if a.data() == "drones")
    with qtbot.waitSignal(window.controller.preview_ready, timeout=RUN_MS) as preview:
        with qtbot.waitSignal(window.datasets.changed, timeout=RUN_MS) as ready:
            act.trigger()
    info = ready.args[0]
    assert (info.name, info.n_inputs, info.n_classes, info.image_shape) == ("drones", 256, 10, None)
    state = preview.args[0]
    assert state.weight.shape == (10, 256) and state.class_names == info.class_names
    assert window.controls.k_spin.maximum() == 256
    assert window.controls.epochs_spin.value() > 15  # a small set: more epochs for the same ~2 s
    assert window.assignment.current_image().shape == (10, 256)


def test_models_are_built_in_the_engine_process_never_in_the_gui(window, qtbot, monkeypatch, set_controls):
    import os

    import engine.config.models

    calls = []
    real = engine.config.models.build_model

    def spy(*args, **kwargs):
        calls.append(threading.current_thread().name)
        return real(*args, **kwargs)

    monkeypatch.setattr(engine.config.models, "build_model", spy)  # only this (the GUI) process sees the spy
    set_controls(window, "rf-input", 7, epochs=1)
    with qtbot.waitSignal(window.controller.preview_ready, timeout=RUN_MS) as preview:
        window.runs.show_preview()
    assert preview.args[0].resonators_per_chain == 7  # built for these settings…
    assert calls == []  # …but not here
    engine = window.controller.engine
    assert engine.process.is_alive() and engine.pid != os.getpid()


def test_the_sweep_dialog_follows_the_registry_and_n(app_env):
    from engine.config.run_config import RunConfig
    from engine.config.models import list_models
    from rfexplorer.sweep_dialog import SweepDialog

    dlg = SweepDialog(RunConfig(), 64)
    assert list(dlg.model_checks) == list_models()
    assert dlg.ks_edit.text() == "1, 10, 64"
    assert dlg.spec().ks == (1, 10, 64)
    dlg.deleteLater()
