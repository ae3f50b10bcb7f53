"""Hover read-outs of the spectrum and assignment views, and the hidden-layer comb of a multilayer network drawn
at the powers its STNOs emit for the test sample, in the real window, offscreen.

Pointer moves are sent through each plot scene's sigMouseMoved at the scene position of a known view coordinate
(real mouse events are unreliable offscreen); leaving the plot is a QEvent.Leave sent to the plot widget.
"""
import dataclasses

import numpy as np
import pytest
import torch
from PySide6.QtCore import QEvent, QEventLoop, QPointF, QTimer
from PySide6.QtWidgets import QApplication

from engine.nets.hardware import set_regime
from engine.nets.multilayer import RFNetwork, emitted_powers_uw
from engine.physics.resonators import DeviceParams

RUN_MS = 120_000


def _spin(ms: int) -> None:
    """Let the event loop run (QTest.qWait would hold the GIL)."""
    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()


def _hover(scene, vb, x: float, y: float) -> None:
    scene.sigMouseMoved.emit(vb.mapViewToScene(QPointF(x, y)))


def _leave(widget) -> None:
    QApplication.sendEvent(widget.viewport(), QEvent(QEvent.Leave))


def _stno_powers(w0, d, params, x):
    """The powers (µW) hidden STNOs emit for input x, written out from docs/physics.md (independent of the
    engine's helper): V = W P_in + V_bias, I = clamp(1000 g_m V + I_b, I_th, 4 I_th), P = A R (xi-1)/(xi+Q) I^2."""
    s = params.stno
    v = np.asarray(w0, np.float64) @ (params.p_max_uw * np.asarray(x, np.float64)) + s.v_bias
    i = np.clip(1000.0 * d["stno_gm"] * v + np.asarray(d["stno_bias_ua"], np.float64), s.i_th_ua,
                s.clamp_ratio * s.i_th_ua)
    xi = i / s.i_th_ua
    return s.amplification * s.r_ohm * 1e-6 * (xi - 1.0) / (xi + s.q) * i * i


# --- engine: the snapshot carries what the hidden powers need, and they are the network's own ---------------------
def test_emitted_powers_match_the_networks_forward_pass():
    net = RFNetwork(64, 4, (12, 6), (8, 5, 6), device=DeviceParams(), generator=torch.Generator().manual_seed(1))
    x = torch.rand(20, 64, generator=torch.Generator().manual_seed(2))
    net.calibrate(x)
    net.train()
    extras = net.snapshot_extras()
    layers = extras["layers"]
    assert "stno_bias_ua" in layers[0] and "stno_gm" in layers[1] and "stno_bias_ua" not in layers[2]
    assert "stno_gm" not in extras  # only per layer (Snapshot has no such field)
    w0 = net.effective_weight().detach().numpy()
    for upto in (1, 2):
        want = net.layer_inputs(x[:4], upto).numpy()
        got = np.stack([emitted_powers_uw(w0, layers, net.params, x[i].numpy(), upto) for i in range(4)])
        assert np.allclose(got, want, rtol=1e-4, atol=1e-6)
        assert np.ptp(want) > 0.05  # the STNOs are not all at one power
    with pytest.raises(KeyError):
        emitted_powers_uw(w0, [{k: v for k, v in d.items() if not k.startswith("stno")} for d in layers],
                          net.params, x[0].numpy(), 1)


def test_operating_points_take_no_random_draw_of_training():
    """A run with progress snapshots stays the run without them: reading the deeper layers' W and operating
    points for a snapshot draws no chip, although a training pass of the 'aware' regime draws one per batch."""
    device = DeviceParams(freq_spread=0.002, alpha_dtod=0.05)
    net = RFNetwork(64, 4, (12, 6), (8, 5, 6), device=device, generator=torch.Generator().manual_seed(1))
    net.train()
    set_regime(net, "aware")
    before = net.generator.get_state()
    for layer in range(net.n_layers):
        net.emitter_operating_point(layer)
    assert torch.equal(before, net.generator.get_state()) and net.layers[1].training
    net.layers[1].weight()  # (what a training pass does: the check above can fail)
    assert not torch.equal(before, net.generator.get_state())


# --- hover read-outs on the untrained network shown at start-up (RF, K = 10, MNIST) -----------------------------------
def test_heatmap_hover_reads_out_chain_input_pixel_and_coupling(window, qtbot):
    asg = window.assignment
    qtbot.waitUntil(lambda: asg._state is not None and asg.image_shape == (28, 28), timeout=RUN_MS)
    assert asg._state.is_rf
    img = asg.current_image()
    j, row, col = 3, 14, 20
    i = row * 28 + col
    assert img[j, i] != 0
    _hover(asg.glw.scene(), asg.plot.getViewBox(), i + 0.5, j + 0.5)
    text = asg.readout_text()
    assert "chain 3" in text and f"input {i} (pixel row {row}, column {col})" in text
    assert f"W = {img[j, i]:+.3g} mV/µW" in text
    assert asg.readout_label.text() == text
    _hover(asg.glw.scene(), asg.plot.getViewBox(), 7.5, 1.5)  # the same label, rewritten
    assert "chain 1" in asg.readout_text() and "input 7 " in asg.readout_text()
    assert f"{img[1, 7]:+.3g} mV/µW" in asg.readout_text()
    window.grab().save("/tmp/readout.png")
    _leave(asg.glw)
    assert asg.readout_text() == "" and "mV/µW" not in asg.readout_label.text()

    asg.set_mode(1)  # pixel maps: the pixel of the chain's map under the pointer
    _spin(50)
    _hover(asg.glw_maps.scene(), asg.map_boxes[2], col + 0.5, row + 0.5)
    text = asg.readout_text()
    assert "chain 2" in text and f"input {i} (pixel row {row}, column {col})" in text
    assert f"W = {img[2, i]:+.3g} mV/µW" in text
    window.grab().save("/tmp/readout_maps.png")
    _leave(asg.glw_maps)
    assert asg.readout_text() == ""
    asg.set_mode(0)


def test_spectrum_hover_reads_out_frequency_emitter_response_and_resonator(window, qtbot):
    sp = window.spectrum
    qtbot.waitUntil(lambda: sp._state is not None and sp._state.is_rf, timeout=RUN_MS)
    st = sp._state
    f_in = np.asarray(st.input_freqs_ghz, np.float64)
    i = int(np.argmax(window.datasets.info.sample_images[sp.sample_spin.value()]))  # a bright pixel
    x_i = sp._x(f_in[i])
    _hover(sp.glw.scene(), sp.comb_plot.getViewBox(), float(x_i), 0.5e-6)
    text = sp.readout_text()
    p_i = float(sp.data_summary()["comb_y"][2 * i + 1]) * 1e6
    assert f"f = {f_in[i]:.4g} GHz" in text and f"input oscillator {i} at {f_in[i]:.5g} GHz" in text
    assert f"P = {p_i:.3g} µW" in text and p_i > 0
    assert sp.readout_label.text() == text
    # the response plot: the selected chain's response at the pointer, in mV/µW
    xs, ys = sp.resp_curve.getData()
    xm = float(xs[len(xs) // 2])
    _hover(sp.glw.scene(), sp.resp_plot.getViewBox(), xm, 0.0)
    want = float(np.interp(xm, xs, ys)) * 1e3
    assert f"chain 0 response {want:+.3g} mV/µW" in sp.readout_text()
    assert "f = " in sp.readout_text() and "GHz" in sp.readout_text()
    # the resonator rows: chain 4's resonator nearest the pointer
    f_res = np.asarray(st.resonator_freqs_ghz)[4]
    _hover(sp.glw.scene(), sp.res_plot.getViewBox(), float(sp._x(f_res[2])), 4.0)
    assert f"chain 4 · nearest resonator 2 at {f_res[2]:.5g} GHz" in sp.readout_text()
    window.grab().save("/tmp/readout_spectrum.png")
    _leave(sp.glw)
    assert sp.readout_text() == "" and "GHz" not in sp.readout_label.text()


# --- a multilayer run: layer 2's comb at the hidden STNOs' powers for the test sample -----------------------------
def test_layer2_comb_is_drawn_at_the_hidden_powers_of_the_test_sample(window, qtbot, set_controls):
    set_controls(window, "rf", 10, epochs=1, dataset="mnist-mini")
    qtbot.waitUntil(lambda: window.datasets.info is not None and window.datasets.info.name == "mnist-mini",
                    timeout=RUN_MS)
    window.controls.hidden_edit.setText("32")
    window.controls.layer_k_edit.setText("16")
    with qtbot.waitSignal(window.controller.run_finished, timeout=RUN_MS) as done:
        assert window.runs.start_from_controls()
    assert not done.args[0].cancelled
    qtbot.waitUntil(lambda: window.explorer.state is not None and window.explorer.state.is_multilayer
                    and not window.explorer.state.live, timeout=RUN_MS)
    _spin(100)
    state = window.explorer.state
    sp = window.spectrum
    sp.layer_combo.setCurrentIndex(1)
    _spin(100)
    assert sp._state.layer_index == 1
    images = window.datasets.info.sample_images
    for sample in (0, 5):
        sp.sample_spin.setValue(sample)
        heights = sp.data_summary()["comb_y"][1::2] * 1e6  # W -> µW
        want = _stno_powers(state.weight, state.layers[0], state.params, images[sample])
        assert heights.shape == (32,)
        assert np.allclose(heights, want, rtol=1e-4, atol=1e-6)
        assert np.ptp(heights) > 1e-3  # not every STNO at one (full) power
    assert not np.allclose(_stno_powers(state.weight, state.layers[0], state.params, images[0]), heights)
    assert "Hidden STNO comb (power each STNO emits for the test sample)" in sp.subtitle_label.text()
    # the read-out names the STNO and its power
    f_in = np.asarray(state.layers[1]["input_freqs_ghz"])
    _hover(sp.glw.scene(), sp.comb_plot.getViewBox(), float(sp._x(f_in[3])), 0.5e-6)
    assert f"hidden STNO 3 (layer 1) at {f_in[3]:.5g} GHz" in sp.readout_text()
    assert f"P = {heights[3]:.3g} µW" in sp.readout_text()
    window.grab().save("/tmp/readout_layer2.png")

    # the assignment view on layer 2: emitters, in mV/µW
    asg = window.assignment
    qtbot.waitUntil(lambda: asg._state is not None and asg._state.layer_index == 1, timeout=5_000)
    img = asg.current_image()
    _hover(asg.glw.scene(), asg.plot.getViewBox(), 5.5, 2.5)
    assert "emitter 5 (hidden STNO 5 of layer 1)" in asg.readout_text()
    assert f"W = {img[2, 5]:+.3g} mV/µW" in asg.readout_text()

    # a state without the STNOs' operating points (older snapshots): positions only, and the caption says so
    bare = [{k: v for k, v in d.items() if not k.startswith("stno")} for d in state.layers]
    sp.show_state(dataclasses.replace(state, layers=bare))
    assert "operating points are unknown" in sp.subtitle_label.text()
    heights = sp.data_summary()["comb_y"][1::2]
    assert np.ptp(heights) == 0 and heights[0] > 0

def test_heatmap_readout_of_a_baseline_without_image_shape(app_env, qtbot):
    """A software baseline over inputs without a 2-D shape: outputs with their class names, plain input
    indices, weights in arbitrary units."""
    from rfexplorer.state import DisplayState
    from rfexplorer.views.assignment import AssignmentView

    view = AssignmentView()
    qtbot.addWidget(view)
    view.resize(700, 400)
    view.show()
    w = np.arange(3 * 50, dtype=np.float32).reshape(3, 50) / 100.0 - 0.5
    view.show_state(DisplayState(model="dense", weight=w, params=DeviceParams(), resonators_per_chain=0,
                                 class_names=("cat", "dog", "bird")))
    _spin(50)
    _hover(view.glw.scene(), view.plot.getViewBox(), 7.5, 1.5)
    assert view.readout_text() == f"output 1 (class dog) · input 7 · weight = {w[1, 7]:+.3g} (a.u.)"
    _hover(view.glw.scene(), view.plot.getViewBox(), -1.0, 2.5)  # on the colour strip: the row alone
    assert view.readout_text() == "output 2 (class bird)"
    view.set_mode(1)  # input strips
    _spin(50)
    _hover(view.glw_maps.scene(), view.map_boxes[0], 42.5, 0.5)
    assert view.readout_text() == f"output 0 (class cat) · input 42 · weight = {w[0, 42]:+.3g} (a.u.)"
    _leave(view.glw_maps)
    assert view.readout_text() == "" and view.readout_label.text() == "Point at a cell to read its value"
