"""Hardware realism in the app, offscreen: the Hardware tab of the controls, robustness studies in the engine
process (streamed, drawn, cancelled, explained when they cannot run) and the spectrum's tuning ranges and
set-point levels."""
import math

import numpy as np
import pytest
import torch
from PySide6.QtCore import QEventLoop, QTimer

from engine.physics import resonators as physics
from engine.config.run_config import RunConfig
from engine.physics.resonators import DeviceParams

RUN_MS = 120_000
HARDWARE_FIELDS = ("tuning_range", "tuning_bits", "freq_spread", "calibrated", "freq_jitter_lw", "power_noise")


def _spin(ms: int) -> None:
    """Let the event loop run (QTest.qWait would hold the GIL)."""
    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()


def _train(window, qtbot, set_controls, model="rf", k=5, epochs=1):
    set_controls(window, model, k, epochs=epochs)
    with qtbot.waitSignal(window.controller.run_finished, timeout=RUN_MS) as done:
        assert window.runs.start_from_controls()
    return done.args[0]


# --- controls --------------------------------------------------------------------------------------------------

def test_hardware_controls_default_to_the_engine_defaults_and_round_trip(settings, qtbot):
    from rfexplorer.controls import HARDWARE_TAB, ControlPanel

    panel = ControlPanel(settings)
    qtbot.addWidget(panel)
    cfg = panel.config()
    assert cfg.hardware == RunConfig().hardware
    for name in HARDWARE_FIELDS:
        assert getattr(cfg.device, name) == getattr(DeviceParams(), name), name
    assert panel.hardware_summary() is None
    assert panel.device_tabs.tabText(HARDWARE_TAB) == "Hardware"

    dev = DeviceParams(tuning_range=0.05, tuning_bits=6, freq_spread=0.004, calibrated=False, freq_jitter_lw=0.2,
                       power_noise=0.03, alpha=0.004)
    wanted = RunConfig(model="rf-input", resonators_per_chain=12, hardware="aware", device=dev)
    panel.set_config(wanted)
    got = panel.config()
    assert got.hardware == "aware"
    for name in HARDWARE_FIELDS + ("alpha",):
        assert getattr(got.device, name) == getattr(dev, name), name
    assert panel.device_tabs.tabText(HARDWARE_TAB) == "Hardware ●"
    summary = panel.hardware_summary()
    for words in ("aware training", "range ±5 %", "6 bits", "spread 0.4 %", "not calibrated", "jitter 0.2 lw",
                  "power noise 3 %"):
        assert words in summary
    assert summary in panel.device_tabs.tabToolTip(HARDWARE_TAB)

    # back to an ideal device: unlimited range and continuous set-points are the spin boxes' special values
    panel.set_config(RunConfig(model="rf"))
    assert panel.range_spin.text() == "unlimited" and panel.bits_spin.text() == "continuous"
    assert panel.config().device.tuning_range is None and panel.config().device.tuning_bits is None
    assert panel.device_tabs.tabText(HARDWARE_TAB) == "Hardware"

    # like the Device tab, the hardware settings apply to RF models only
    panel.set_model("dense")
    assert not any(w.isEnabled() for w in panel.hardware_widgets)
    panel.set_model("rf")
    assert all(w.isEnabled() for w in panel.hardware_widgets)


def test_the_open_device_tab_is_remembered(settings, qtbot):
    from rfexplorer.controls import DEVICE_TAB, HARDWARE_TAB, ControlPanel

    first = ControlPanel(settings)
    qtbot.addWidget(first)
    assert first.device_tabs.currentIndex() == DEVICE_TAB
    first.device_tabs.setCurrentIndex(HARDWARE_TAB)
    second = ControlPanel(settings)
    qtbot.addWidget(second)
    assert second.device_tabs.currentIndex() == HARDWARE_TAB



def test_device_and_hardware_tabs_are_remembered_and_reset(settings, qtbot):
    from rfexplorer.controls import HARDWARE_TAB, SETTINGS_DEVICE, ControlPanel

    first = ControlPanel(settings)
    qtbot.addWidget(first)
    dev = DeviceParams(tuning_range=0.2, tuning_bits=8, freq_spread=0.003, calibrated=False, freq_jitter_lw=0.1,
                       power_noise=0.02, alpha=0.006, plan="linear")
    first.set_config(RunConfig(model="rf-input", hardware="in-situ", device=dev))
    second = ControlPanel(settings)  # the next session
    qtbot.addWidget(second)
    got = second.config()
    assert got.hardware == "in-situ"
    for name in HARDWARE_FIELDS + ("alpha", "plan"):
        assert getattr(got.device, name) == getattr(dev, name), name
    assert second.device_tabs.tabText(HARDWARE_TAB) == "Hardware ●"

    # "Ideal device" puts every hardware field back to its default and keeps the Device tab
    second.ideal_button.click()
    ideal = second.config()
    assert ideal.hardware == RunConfig().hardware and second.hardware_summary() is None
    for name in HARDWARE_FIELDS:
        assert getattr(ideal.device, name) == getattr(DeviceParams(), name), name
    assert ideal.device.alpha == dev.alpha and ideal.device.plan == "linear"
    third = ControlPanel(settings)
    qtbot.addWidget(third)
    assert third.config().device == ideal.device

    # a damaged settings file (not JSON, unknown or invalid fields) starts from the defaults, without a word
    for damaged in ("{not json", '{"tuning_bits": -3}', '{"mystery": 1}', "[1, 2]"):
        settings.setValue(SETTINGS_DEVICE, damaged)
        panel = ControlPanel(settings)
        qtbot.addWidget(panel)
        assert panel.config().device == DeviceParams(), damaged

# --- the level grid helper ---------------------------------------------------------------------------------------

def test_set_point_levels_are_the_engines_quantisation_levels():
    from rfexplorer.spectra import set_point_levels

    lo = np.array([0.0, 10.0, 3.25])
    hi = np.array([3.0, 13.5, 40.0])
    bits = 4
    device, u = set_point_levels(lo, hi, bits, 2.2, 12.9, 10_000)
    # brute force: every level of every device, kept where it is visible
    want = []
    for d in range(3):
        levels = lo[d] + np.arange(2 ** bits) * (hi[d] - lo[d]) / (2 ** bits - 1)
        want += [(d, v) for v in levels if 2.2 <= v <= 12.9]
    assert sorted(zip(device.tolist(), np.round(u, 9).tolist())) == sorted((d, round(v, 9)) for d, v in want)
    q = physics.quantise_comb(torch.as_tensor(u), torch.as_tensor(lo[device]), torch.as_tensor(hi[device]), bits)
    np.testing.assert_allclose(q.numpy(), u, atol=1e-9)  # each tick is a level: quantising leaves it in place
    assert set_point_levels(lo, hi, bits, 2.2, 12.9, len(want) - 1) is None  # too many to draw


# --- robustness ---------------------------------------------------------------------------------------------------

def test_robustness_needs_a_trained_rf_network(window, qtbot, set_controls):
    view, presenter = window.robustness, window.robustness_runs
    assert presenter.run() is False
    assert window.status_text().startswith("Robustness needs a trained RF network")
    assert "Traceback" not in window.status_text() and not window.controller.robustness_busy
    _train(window, qtbot, set_controls, model="dense", k=784)
    assert presenter.run() is False
    assert "without resonator chains" in window.status_text()
    _train(window, qtbot, set_controls, model="rf", k=5)
    view.set_knob("tuning_bits")
    view.values_edit.setText("8, 30")
    assert presenter.run() is False
    assert window.status_text().startswith("Invalid robustness values: tuning_bits must be a whole number")
    view.values_edit.setText(" ")
    assert presenter.run() is False
    assert "the field needs at least one value" in window.status_text()
    assert not window.controller.robustness_busy and not view.curves


def test_robustness_rows_stream_in_and_are_drawn(window, qtbot, set_controls):
    result = _train(window, qtbot, set_controls, model="rf", k=5)
    view = window.robustness
    window.show_robustness()
    assert window.results_tabs.currentWidget() is view
    view.set_knob("freq_jitter_lw")
    assert view.values_edit.text()  # prefilled for the knob
    # enough evaluations to outlast several redraws (a jittered read-out is one fused pass, milliseconds each)
    values = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8]
    view.values_edit.setText(", ".join(f"{v:g}" for v in values))
    view.repeats_spin.setValue(8)
    progress = []
    window.controller.robustness_progress.connect(lambda evals: progress.append(len(evals)))
    with qtbot.waitSignal(window.controller.robustness_finished, timeout=RUN_MS) as done:
        assert window.robustness_runs.run()
        assert view.run_button.text() == "Stop" and not view.knob_combo.isEnabled()
    out = done.args[0]
    assert not out["cancelled"] and len(out["evals"]) == 64
    # the evaluations came as they were made, and were drawn before the study ended
    assert progress and min(progress) < 64
    rows = out["rows"]
    assert [r["value"] for r in rows] == values and all(r["n"] == 8 for r in rows)
    # without jitter the network is its trained self on its own chip: the run's accuracy, on every chip
    assert rows[0]["accuracies"] == [pytest.approx(result.test_accuracy)] * 8
    (curve,) = view.data_summary()
    np.testing.assert_allclose(curve["x"], values)
    np.testing.assert_allclose(curve["y"], [100 * r["mean"] for r in rows])
    np.testing.assert_allclose(curve["height"], [200 * r["std"] for r in rows])
    assert view.rows()[1]["mean"] == pytest.approx(rows[1]["mean"])
    assert view.run_button.text() == "Run" and view.knob_combo.isEnabled()
    assert "(64/64)" in view.legend.text() or "run #" in view.legend.text()
    assert window.status_text().startswith("Robustness study finished: 64 evaluation(s)")


def test_robustness_study_can_be_stopped_and_another_started(window, qtbot, set_controls, tmp_path):
    _train(window, qtbot, set_controls, model="rf", k=5)
    view, c = window.robustness, window.controller
    view.set_knob("freq_jitter_lw")
    view.values_edit.setText(", ".join(f"{v:g}" for v in np.linspace(0.05, 1.0, 12)))
    view.repeats_spin.setValue(4)
    with qtbot.waitSignal(c.robustness_progress, timeout=RUN_MS):
        assert window.robustness_runs.run()
    with qtbot.waitSignal(c.robustness_finished, timeout=RUN_MS) as done:
        view.run_button.click()  # Stop
    out = done.args[0]
    assert out["cancelled"] and 0 < len(out["evals"]) < 48
    assert not c.robustness_busy and view.run_button.text() == "Run"
    assert "(stopped)" in view.legend.text()
    assert window.status_text().startswith("Robustness study cancelled (stopped by user)")
    # the slot's cancel request does not reach the next study; a study of another knob starts a new plot
    view.set_knob("calibrated")
    assert view.values_edit.text() == "true, false"
    with qtbot.waitSignal(c.robustness_finished, timeout=RUN_MS) as done:
        assert window.robustness_runs.run()
    assert not done.args[0]["cancelled"] and len(done.args[0]["evals"]) == 2 * view.repeats()
    assert len(view.curves) == 1 and view.curves[0].knob == "calibrated"
    ticks = view.plot.getAxis("bottom")._tickLevels
    assert ticks and {label for _, label in ticks[0]} == {"calibrated", "not calibrated"}
    path = window.robustness_runs.export_csv(tmp_path / "robustness.csv")
    lines = path.read_text().splitlines()
    assert lines[0] == "study,knob,value,mean,std,n,accuracies" and len(lines) == 3


def test_spread_study_holds_calibration_fixed_as_chosen(window, qtbot, set_controls):
    result = _train(window, qtbot, set_controls, model="rf", k=5)
    view, c = window.robustness, window.controller
    view.set_knob("freq_spread")
    # calibrated as the network was trained (an ideal device: calibrated chips); the values are percent
    assert view.calibrated_check.isVisibleTo(view) and view.calibrated_check.isChecked()
    view.values_edit.setText("0, 2")
    view.repeats_spin.setValue(2)
    means = {}
    for calibrated in (True, False):
        view.calibrated_check.setChecked(calibrated)
        with qtbot.waitSignal(c.robustness_finished, timeout=RUN_MS) as done:
            assert window.robustness_runs.run()
        rows = done.args[0]["rows"]
        assert rows[0]["accuracies"] == [pytest.approx(result.test_accuracy)] * 2
        means[calibrated] = rows[1]["mean"]
    # calibrated chips trim their offsets (no tuning bits: nothing remains); uncalibrated ones suffer them
    assert means[True] == pytest.approx(result.test_accuracy, abs=0.002)
    assert means[False] < result.test_accuracy - 0.02
    assert [cv.label.endswith(("calibrated chips", "uncalibrated chips")) for cv in view.curves] == [True, True]
    view.set_knob("power_noise")
    assert not view.calibrated_check.isVisibleTo(view) and view.fixed() == {}


# --- the spectrum -------------------------------------------------------------------------------------------------

def test_spectrum_shows_tuning_ranges_and_levels_when_zoomed_in(window, qtbot, set_controls):
    set_controls(window, "rf", 5, epochs=1)
    c = window.controls
    c.range_spin.setValue(5.0)
    c.bits_spin.setValue(6)
    with qtbot.waitSignal(window.controller.run_finished, timeout=RUN_MS) as done:
        assert window.runs.start_from_controls()
    result = done.args[0]
    assert result.config.device.tuning_range == 0.05 and result.config.device.tuning_bits == 6
    spec = window.spectrum
    qtbot.waitUntil(lambda: window.explorer.state is not None and window.explorer.state.resonator_bounds_ghz
                    is not None and not window.explorer.state.live, timeout=RUN_MS)
    state = window.explorer.state
    bounds = np.asarray(state.resonator_bounds_ghz)
    assert bounds.shape == (10, 5, 2) and np.all(bounds[..., 0] < bounds[..., 1])
    f_res = np.asarray(state.resonator_freqs_ghz)
    assert np.all((bounds[..., 0] <= f_res * (1 + 1e-6)) & (f_res <= bounds[..., 1] * (1 + 1e-6)))
    summary = spec.hardware_summary()
    assert summary["bands"] == 50 and summary["selected_bands_visible"]
    assert not summary["ticks_visible"]  # the whole band: 64 levels per range are too many to tell apart here
    # zoom into the first resonator's range of chain 0: its 64 levels become ticks, each inside a band
    lo, hi = bounds[0, 0]
    spec.comb_plot.setXRange(math.log10(lo * 0.995), math.log10(hi * 1.005), padding=0)
    qtbot.waitUntil(lambda: spec.hardware_summary()["ticks_visible"], timeout=5000)
    xs, ys = spec.grid_item.getData()
    f_ticks, rows = 10 ** xs[0::2], np.round(0.5 * (ys[0::2] + ys[1::2])).astype(int)
    assert np.sum(rows == 0) >= 2 ** 6  # every level of that resonator (and of any other range in view)
    in_band = [np.any((bounds[r, :, 0] * (1 - 1e-5) <= f) & (f <= bounds[r, :, 1] * (1 + 1e-5)))
               for f, r in zip(f_ticks, rows)]
    assert all(in_band)
    p, n = state.params, state.n_inputs
    u = physics.ghz_to_comb(torch.as_tensor(f_ticks[rows == 0], dtype=torch.float64), p, n)
    u_lo = physics.ghz_to_comb(torch.tensor(float(lo), dtype=torch.float64), p, n)
    u_hi = physics.ghz_to_comb(torch.tensor(float(hi), dtype=torch.float64), p, n)
    step = (u_hi - u_lo) / 63
    first = u[(u >= u_lo - 1e-4) & (u <= u_hi + 1e-4)]
    np.testing.assert_allclose(((first - u_lo) / step).numpy(), np.round(((first - u_lo) / step).numpy()),
                               atol=1e-2)  # on the levels lo + i (hi - lo) / (2^6 - 1)
    # zoomed out again: no ticks; an ideal device: no bands either
    spec.comb_plot.setXRange(0.0, math.log10(18.0), padding=0)
    qtbot.waitUntil(lambda: not spec.hardware_summary()["ticks_visible"], timeout=5000)
    c.range_spin.setValue(0.0)
    c.bits_spin.setValue(0)
    qtbot.waitUntil(lambda: window.explorer.state.resonator_bounds_ghz is None
                    and "initial state" in window.explorer.state.label, timeout=RUN_MS)
    _spin(100)
    summary = spec.hardware_summary()
    assert not summary["bands_visible"] and not summary["ticks_visible"] and not summary["selected_bands_visible"]
