"""Findings of driving the app as a new user on a laptop (issue #21), each checked in the real window, offscreen:
a failed import never mixes two networks, the robustness study's defaults and units, large layers' input maps,
text that is never clipped (combo boxes, notes, axis titles, the status bar), non-image data (class names, a
1-D thumbnail), the first paint, and the live ring of a multilayer run."""
import numpy as np
import pytest
from PySide6.QtCore import QEventLoop, QTimer
from PySide6.QtGui import QImage, QPainter

RUN_MS = 120_000
N_TOY, C_TOY = 64, 3
LAPTOP = (1280, 720)


def _spin(ms: int) -> None:
    """Let the event loop run (QTest.qWait would hold the GIL)."""
    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()


def _train(window, qtbot, set_controls, model="rf", k=3, epochs=1, dataset="mnist-mini", **cfg):
    set_controls(window, model, k, epochs=epochs, dataset=dataset)
    if cfg:
        window.controls.set_config(window.controls.config().with_(**cfg))
    with qtbot.waitSignal(window.controller.run_finished, timeout=RUN_MS) as done:
        assert window.runs.start_from_controls()
    _spin(100)
    return done.args[0]


def _fits(combo, slack: int = 16) -> bool:
    """Whether a combo box shows its current text whole (its text, and room for the arrow)."""
    return combo.width() >= combo.fontMetrics().horizontalAdvance(combo.currentText()) + slack


def _drawn_tick_texts(axis) -> list:
    """The tick labels an axis draws (pyqtgraph leaves out those that would overlap)."""
    img = QImage(10, 10, QImage.Format_ARGB32)
    painter = QPainter(img)
    try:
        specs = axis.generateDrawSpecs(painter)
    finally:
        painter.end()
    return [text for _rect, _flags, text in specs[2]] if specs else []


def _inside(item, vb, slack: float = 2.0) -> bool:
    """Whether a text item (drawn in pixels) lies within its plot's view box."""
    r, box = item.mapRectToScene(item.boundingRect()), vb.sceneBoundingRect()
    return (r.left() >= box.left() - slack and r.right() <= box.right() + slack and r.width() > 0)


@pytest.fixture
def toy_npz(tmp_path):
    """A user dataset file: 64 non-negative features, 3 classes, no image shape."""
    rng = np.random.default_rng(0)
    centres = rng.random((C_TOY, N_TOY))

    def draw(n):
        y = rng.integers(0, C_TOY, n)
        return (0.5 * centres[y] + rng.random((n, N_TOY))).astype(np.float32), y

    (trx, try_), (tex, tey) = draw(300), draw(90)
    path = tmp_path / "toy64.npz"
    np.savez(path, train_x=trx, train_y=try_, test_x=tex, test_y=tey, class_names=np.array(("a", "b", "c")))
    return path


# --- 5: a failed import ---------------------------------------------------------------------------------------
def test_an_import_that_cannot_be_evaluated_leaves_the_views_as_they_were(window, qtbot, set_controls, dialogs,
                                                                          choose_file, toy_npz, tmp_path):
    _train(window, qtbot, set_controls, "rf", 3)
    assert window.files.export_topology(tmp_path / "net784.json")
    choose_file(toy_npz)
    with qtbot.waitSignal(window.controller.preview_ready, timeout=RUN_MS):
        window.act_open_dataset.trigger()
    _spin(200)
    before = window.explorer.state
    assert before.n_inputs == N_TOY
    with qtbot.waitSignal(window.controller.evaluation_failed, timeout=RUN_MS):
        window.files.import_topology(tmp_path / "net784.json")
    _spin(200)
    assert dialogs.kinds() == ["warning"] and "cannot be evaluated" in dialogs[0][2]
    # nothing of the 784-input network is drawn over the 64-input comb
    assert window.explorer.state is before
    comb_x = window.spectrum.data_summary()["comb_x"]
    assert len(comb_x) == 2 * N_TOY
    assert window.spectrum.n_chains == C_TOY and window.spectrum.data_summary()["response"] is not None
    assert window.assignment.current_image().shape == (C_TOY, N_TOY)
    assert "Import failed" in window.status_text()


# --- the live ring of a multilayer run ---------------------------------------------------------------------
def test_the_live_ring_of_a_multilayer_run_counts_the_synapses_of_every_layer(window, qtbot, set_controls,
                                                                              monkeypatch):
    from rfexplorer.series import network_removed_pct

    live = []
    real = window.sparsity.set_live
    monkeypatch.setattr(window.sparsity, "set_live", lambda pct, acc, label="": (live.append(pct), real(pct, acc,
                                                                                                           label)))
    set_controls(window, "rf", 10, epochs=2, batch=20, dataset="drones")
    qtbot.waitUntil(lambda: window.datasets.info is not None and window.datasets.info.name == "drones",
                    timeout=RUN_MS)
    window.controls.hidden_edit.setText("32")
    window.controls.layer_k_edit.setText("16")
    with qtbot.waitSignal(window.controller.run_finished, timeout=RUN_MS) as done:
        assert window.runs.start_from_controls()
    result = done.args[0]
    ring = [p for p in live if p is not None]
    assert ring, "no live ring was drawn"
    finished = network_removed_pct(result.row())
    assert ring[-1] == pytest.approx(finished)
    assert finished == pytest.approx(100 * (1 - (32 * 10 + 10 * 16) / (256 * 32 + 32 * 10)))


# --- 7: robustness --------------------------------------------------------------------------------------------
def test_robustness_defaults_to_what_the_network_was_trained_against(window, qtbot, set_controls):
    from engine.physics.resonators import DeviceParams

    view = window.robustness
    _train(window, qtbot, set_controls, "rf", 3)  # an ideal device: frequency jitter, on calibrated chips
    assert view.knob() == "freq_jitter_lw"
    spread = DeviceParams(freq_spread=0.01, calibrated=False)
    _train(window, qtbot, set_controls, "rf", 3, device=spread, hardware="aware")
    assert view.knob() == "freq_spread" and not view.calibrated_check.isChecked()
    assert "1" in [v.strip() for v in view.values_text().split(",")]  # the trained spread, in percent
    view.set_knob("power_noise")  # the user's choice stays when the next network comes
    view._on_knob_activated(0)
    _train(window, qtbot, set_controls, "rf", 3)
    assert view.knob() == "power_noise"


def test_robustness_shows_relative_spreads_in_percent(window):
    from engine.nets.hardware import parse_knob_values

    view = window.robustness
    view.set_knob("freq_spread")
    assert view.values_text() == "0, 0.1, 0.2, 0.5, 1, 2" and view.unit_label.isVisibleTo(view)
    assert parse_knob_values("freq_spread", view.engine_values_text()) == pytest.approx(
        [0, 0.001, 0.002, 0.005, 0.01, 0.02])
    view.begin("freq_spread", [0.0, 0.005, 0.02], 1, "a study")
    assert "%" in view.plot.getAxis("bottom").labelText
    np.testing.assert_allclose(view.curves[0].x, [0.0, 0.5, 2.0])
    view.set_knob("freq_jitter_lw")  # linewidths stay linewidths
    assert not view.unit_label.isVisibleTo(view) and view.engine_values_text() == view.values_text()


def test_robustness_labels_the_continuous_point_and_fits_its_note(window, qtbot):
    window.show_robustness()
    _spin(300)
    view = window.robustness
    assert view.note.isVisible() and _inside(view.note, view.plot.getViewBox())  # 1400 x 900: not clipped
    view.begin("tuning_bits", [None, 12, 10, 8, 6, 5, 4], 1, "bits")
    _spin(300)
    texts = _drawn_tick_texts(view.plot.getAxis("bottom"))
    assert "continuous" in texts and "12" in texts


# --- 8: large layers ----------------------------------------------------------------------------------------
def test_input_maps_of_a_hundred_chains_are_readable(window, qtbot):
    c = window.controls
    c.hidden_edit.setText("100")
    c.hidden_edit.editingFinished.emit()
    qtbot.waitUntil(lambda: window.explorer.state is not None and window.explorer.state.n_chains == 100,
                    timeout=RUN_MS)
    a = window.assignment
    a.set_mode(1)
    _spin(400)
    assert len(a.map_boxes) == 100
    view_width = a.glw_maps.viewport().width()
    for vb, title in zip(a.map_boxes, a.map_titles):
        box = vb.sceneBoundingRect()
        assert box.width() >= 60, f"a map is {box.width():.0f} px wide"
        label = title.item.boundingRect().width()
        assert label <= title.sceneBoundingRect().width() + 1, "a title is wider than its map"
        assert box.right() <= view_width + 1, "the last column is cut off"


# --- 9: clipped text ----------------------------------------------------------------------------------------
def test_nothing_is_clipped_at_1280_by_720(window, qtbot, set_controls):
    window.resize(*LAPTOP)
    window._size_docks()
    _spin(400)
    assert _fits(window.controls.dataset_combo), window.controls.dataset_combo.currentText()
    a = window.assignment
    a.set_mode(1)
    _spin(200)
    assert _fits(a.mode_combo) and a.mode_combo.currentText() == "Pixel maps (28×28)"
    a.set_mode(0)
    assert window.dataset_label.shown_text().endswith("10 classes")  # the status bar
    # the spectrum's y-axis titles never run into each other: each fits its plot's height, or is left out
    for text, length, room in window.spectrum.axis_titles():
        assert not text or length <= room + 1, (text, length, room)
    assert window.spectrum.axis_titles()[0][0]  # the comb keeps its title ("P (µW)")
    # the training history, the "is it learning?" read-out, has room for its plot and axis title
    vb = window.history.plot.getViewBox()
    assert vb.height() >= 110
    axis = window.history.plot.getAxis("left")
    assert axis.label.boundingRect().width() <= axis.geometry().height() + 1


def test_the_accuracy_views_empty_note_leaves_the_live_ring(window, qtbot, set_controls):
    sp = window.sparsity
    assert sp.empty_note.isVisible() and _inside(sp.empty_note, sp.plot.getViewBox())
    set_controls(window, "rf", 3, epochs=3, batch=20)
    seen = []
    timer = QTimer()
    timer.timeout.connect(lambda: seen.append((sp.live_position() is not None, sp.empty_note.isVisible())))
    timer.start(20)
    with qtbot.waitSignal(window.controller.run_finished, timeout=RUN_MS):
        assert window.runs.start_from_controls()
    timer.stop()
    during = [note for ring, note in seen if ring]
    assert during, "no live ring was drawn"
    assert not any(during), "the empty note was drawn under the live ring"
    _spin(100)
    assert not sp.empty_note.isVisible()


# --- 10: non-image data -----------------------------------------------------------------------------------
def test_drones_show_class_names_and_a_spectrum_thumbnail(window, qtbot):
    act = next(a for a in window.dataset_actions.actions() if a.data() == "drones")
    with qtbot.waitSignal(window.controller.preview_ready, timeout=RUN_MS):
        act.trigger()
    _spin(300)
    names = window.datasets.info.class_names
    sp = window.spectrum
    ticks = [t[1] for t in sp.res_plot.getAxis("left")._tickLevels[0]]
    assert ticks and ticks[0].rstrip("…") in names[0] and not any(t.isdigit() for t in ticks)
    assert names[0] in sp.chain_combo.currentText() and _fits(sp.chain_combo)
    img = sp.thumb.pixmap().toImage().convertToFormat(QImage.Format_Grayscale8)
    rows = {bytes(img.constScanLine(r))[:img.width()] for r in range(img.height())}
    assert img.height() >= 20 and len(rows) > 2, "a barcode (every row alike), not a line"


# --- 12c: the first paint ------------------------------------------------------------------------------------
def test_the_first_paint_has_no_placeholder_axes(make_window, qtbot):
    from PySide6.QtWidgets import QApplication

    w = make_window(ready=False)
    QApplication.processEvents()
    _spin(300)  # laid out and painted; the engine process is still starting
    if w.datasets.info is not None:
        pytest.skip("the dataset loaded before the first paint")
    a, sp = w.assignment, w.spectrum
    assert not (a.glw.isVisible() and "N = 1" in a.plot.getAxis("bottom").labelText)
    assert not (sp.glw.isVisible() and "x0.001" in sp.res_plot.getAxis("left").labelString())
    assert not sp.glw.isVisible() and sp.waiting_label.isVisible()
    assert _inside(w.sparsity.empty_note, w.sparsity.plot.getViewBox())
    qtbot.waitUntil(lambda: w.explorer.state is not None, timeout=RUN_MS)
    assert sp.glw.isVisible() and a.glw.isVisible()
