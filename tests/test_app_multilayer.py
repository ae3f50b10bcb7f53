"""Multilayer RF networks in the real window, offscreen: hidden sizes in the controls, the layer selector of the
spectrum and assignment views, the network diagram, and plain-words messages for invalid hidden sizes."""
import numpy as np
import pytest
from PySide6.QtCore import QEventLoop, QTimer

from rfexplorer.controls import parse_hidden, parse_layer_ks

RUN_MS = 120_000


def _spin(ms: int) -> None:
    """Let the event loop run (QTest.qWait would hold the GIL)."""
    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()


def test_parse_hidden_and_layer_ks():
    assert parse_hidden("") == () and parse_hidden("  ") == ()
    assert parse_hidden("100") == (100,)
    assert parse_hidden("200, 100") == (200, 100) and parse_hidden("200 100") == (200, 100)
    for bad in ("abc", "10,x", "0", "-5", "1.5"):
        with pytest.raises(ValueError, match="Hidden layers"):
            parse_hidden(bad)
    assert parse_layer_ks("", (32,)) == ()
    assert parse_layer_ks("16", (32, 8)) == (16, 8)  # one value for all, capped at each layer's inputs
    assert parse_layer_ks("50, 4", (32, 8)) == (32, 4)
    with pytest.raises(ValueError, match="no later layers"):
        parse_layer_ks("16", ())
    with pytest.raises(ValueError, match="one per later layer"):
        parse_layer_ks("1,2,3", (32, 8))


def test_controls_build_a_multilayer_config(window, set_controls):
    set_controls(window, "rf", 10, epochs=1)
    c = window.controls
    assert not c.layer_k_edit.isEnabled()
    c.hidden_edit.setText("32")
    assert c.layer_k_edit.isEnabled()
    c.layer_k_edit.setText("16")
    cfg = c.config()
    assert cfg.hidden == (32,) and cfg.layer_resonators == (16,) and cfg.layer_ks == (10, 16)
    c.layer_k_edit.setText("")
    assert c.config().layer_ks == (10, 10)
    c.set_config(cfg.with_(hidden=(20, 8), layer_resonators=(4, 3)))
    assert c.hidden_edit.text() == "20,8" and c.layer_k_edit.text() == "4,3"
    assert c.config().hidden == (20, 8)
    c.set_hidden(())
    assert c.config().hidden == () and not c.layer_k_edit.isEnabled()
    c.layer_k_edit.setText("16")  # ignored (disabled) without hidden layers
    assert c.config().layer_resonators == ()


def test_invalid_hidden_text_gives_a_message_and_starts_nothing(window, set_controls):
    set_controls(window, "rf", 10, epochs=1)
    started = []
    window.controller.run_started.connect(lambda *_: started.append(1))
    for text, words in (("32,abc", "'abc' is not a whole number"), ("0", "at least 1")):
        window.controls.hidden_edit.setText(text)
        assert window.runs.start_from_controls() is False
        assert window.status_text().startswith("Invalid settings: Hidden layers")
        assert words in window.status_text() and "Traceback" not in window.status_text()
    window.controls.hidden_edit.setText("32")
    window.controls.layer_k_edit.setText("4,4")  # two K for one later layer
    assert window.runs.start_from_controls() is False
    assert "one per later layer" in window.status_text()
    _spin(200)
    assert not started and not window.controller.busy


def _run_multilayer(window, qtbot, set_controls, dataset):
    set_controls(window, "rf", 10, epochs=1, dataset=dataset)
    qtbot.waitUntil(lambda: window.datasets.info is not None and window.datasets.info.name == dataset,
                    timeout=RUN_MS)
    window.controls.hidden_edit.setText("32")
    window.controls.layer_k_edit.setText("16")
    with qtbot.waitSignal(window.controller.run_finished, timeout=RUN_MS) as done:
        assert window.runs.start_from_controls()
    result = done.args[0]
    assert not result.cancelled
    qtbot.waitUntil(lambda: window.explorer.state is not None and window.explorer.state.is_multilayer
                    and not window.explorer.state.live, timeout=RUN_MS)
    _spin(100)
    return window.explorer.state


def _markers(window):
    xs = window.spectrum.data_summary()["resonators_x"]
    return sum(0 if r is None else len(r) for r in xs)


def test_multilayer_run_layer_selector_and_diagram(window, qtbot, set_controls):
    state = _run_multilayer(window, qtbot, set_controls, "mnist-mini")
    n_in, h1, n_cls = state.layer_sizes
    assert (n_in, h1, n_cls) == (784, 32, 10)
    assert "hidden 32 (K 10/16)" in window.status_text()
    sp, asg, net = window.spectrum, window.assignment, window.network
    # the selectors are shown, with one entry per layer, on layer 1
    for combo in (sp.layer_combo, asg.layer_combo):
        assert combo.isVisible() and combo.count() == 2
        assert combo.itemText(0) == "Layer 1 (784 inputs → 32)" and combo.itemText(1) == "Layer 2 (32 → classes)"
        assert combo.currentIndex() == 0
    # layer 1: H1 chains of K1 resonators over the 784 pixels; pixel maps keep the image shape
    assert sp.n_chains == 32 and _markers(window) == 32 * 10
    assert asg.current_image().shape == (32, 784)
    assert "hidden chain" in asg.plot.getAxis("left").labelText
    asg.set_mode(1)
    assert asg.map_shape() == (28, 28)
    window.grab().save("/tmp/ml_app_layer1.png")
    asg.set_mode(0)
    # the diagram: a column per layer, the hidden column drawn node by node, lines for every layer
    assert net.isVisible() and net.diagram.sizes == (784, 32, 10)
    assert net.diagram.drawn_nodes() == [1, 32, 10]
    assert net.diagram.n_lines(0) == 32 * 3 and net.diagram.n_lines(1) == 10 * 3

    # switch to layer 2 with the spectrum's selector: both views and the diagram follow
    sp.layer_combo.setCurrentIndex(1)
    _spin(100)
    assert asg.layer_combo.currentIndex() == 1 and window.explorer.selected_layer == 1
    assert net.diagram.layer == 1
    assert sp.n_chains == 10 and _markers(window) == 10 * 16
    comb = sp.data_summary()
    assert len(comb["comb_x"]) == 2 * 32  # the comb is the 32 hidden emitters
    emitters = state.layers[1]["input_freqs_ghz"]
    assert np.allclose(comb["comb_x"][::2], np.log10(emitters), atol=1e-5)
    assert comb["response"] is not None and np.abs(comb["response"]).max() > 0
    img = asg.current_image()
    assert img.shape == (10, 32) and np.abs(img).max() > 0
    assert "class" in asg.plot.getAxis("left").labelText and "emitter" in asg.plot.getAxis("bottom").labelText
    assert sp.class_names == tuple(window.datasets.info.class_names)
    window.grab().save("/tmp/ml_app_layer2.png")
    asg.set_mode(1)  # deeper layers: one strip of emitters per chain, attached emitters marked
    assert asg.map_shape() == (1, 32)
    marks = asg.map_marks[0].getData()[0]
    assert len(marks) == 16
    window.grab().save("/tmp/ml_app_layer2_maps.png")
    asg.set_mode(0)

    # back to layer 1 from the assignment view's selector
    asg.layer_combo.setCurrentIndex(0)
    _spin(50)
    assert sp.layer_combo.currentIndex() == 0 and sp.n_chains == 32 and _markers(window) == 320


def test_multilayer_drones_keeps_class_names_and_single_layer_hides_selector(window, qtbot, set_controls):
    state = _run_multilayer(window, qtbot, set_controls, "drones")
    names = tuple(window.datasets.info.class_names)
    assert state.layer_sizes[-1] == len(names) and state.output_names == names
    sp, asg = window.spectrum, window.assignment
    assert sp.class_names != names  # layer 1's rows are hidden chains, not classes
    sp.layer_combo.setCurrentIndex(1)
    _spin(100)
    assert sp.class_names == names and asg.class_names == names
    assert any(name in sp.chain_combo.itemText(j) for j, name in enumerate(names) if name != str(j))
    window.grab().save("/tmp/ml_app_drones_layer2.png")
    # a single-layer run afterwards: no selector, no diagram, the views on the one layer
    window.controls.hidden_edit.setText("")
    with qtbot.waitSignal(window.controller.run_finished, timeout=RUN_MS):
        assert window.runs.start_from_controls()
    qtbot.waitUntil(lambda: window.explorer.state is not None and not window.explorer.state.is_multilayer
                    and not window.explorer.state.live, timeout=RUN_MS)
    _spin(100)
    assert not sp.layer_combo.isVisible() and not asg.layer_combo.isVisible()
    assert not window.network.isVisible()
    assert sp.n_chains == len(names) and asg.current_image().shape == (len(names), state.n_inputs)
