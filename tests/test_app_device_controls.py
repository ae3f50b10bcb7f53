"""The Device and Hardware tabs generated from engine.physics.resonators.DeviceParams (rfexplorer.device_controls): every
shown field's control follows its metadata and docstring, and the tabs read the settings earlier versions
saved."""
import json
import math

from engine.config.run_config import RunConfig
from engine.physics.resonators import DeviceParams

#: The JSON the hand-made tabs (before the tabs were generated) saved for a non-default device.
OLD_SAVED = ('{"alpha": 0.006, "phi": 0.30019663134302466, "f_min_ghz": 2.5, "f_max_ghz": 7.25, "plan": "linear", '
             '"tuning_range": 0.2, "tuning_bits": 8, "freq_spread": 0.003, "calibrated": false, '
             '"freq_jitter_lw": 0.1, "power_noise": 0.025}')


def test_every_shown_field_has_a_labelled_control_with_its_docstring_as_tooltip(app_env):
    from PySide6.QtWidgets import QCheckBox, QComboBox

    from rfexplorer.device_controls import DEVICE_FIELDS, HARDWARE_FIELDS, DeviceForm, device_controls

    assert HARDWARE_FIELDS == ("tuning_range", "tuning_bits", "freq_spread", "calibrated", "freq_jitter_lw",
                               "power_noise")
    assert DEVICE_FIELDS == ("alpha", "phi", "f_min_ghz", "f_max_ghz", "plan") + HARDWARE_FIELDS
    form = DeviceForm()
    for c in device_controls():
        widget = form.widgets[c.name]
        assert c.label and widget.toolTip() == c.tip and len(c.tip) > len(c.name) + 10, c.name
        assert widget.objectName() == f"device.{c.name}"
        if not isinstance(widget, (QCheckBox, QComboBox)):
            assert widget.singleStep() > 0 and widget.minimum() < widget.maximum(), c.name
    assert "Gilbert damping" in form.widgets["alpha"].toolTip()
    assert form.widgets["phi"].suffix() == "°" and "Shown in °" in form.widgets["phi"].toolTip()
    assert form.widgets["power_noise"].suffix() == " %" and [c.label for c in device_controls("device")][2:4] == [
        "f min (GHz)", "f max (GHz)"]
    assert form.params() == DeviceParams()


def test_the_form_shows_and_reads_a_device_exactly(app_env):
    from rfexplorer.device_controls import DeviceForm

    form = DeviceForm()
    d = DeviceParams(alpha=0.0042, phi=math.radians(37.5), f_min_ghz=2.25, f_max_ghz=9.5, plan="linear",
                     tuning_range=0.025, tuning_bits=6, freq_spread=0.0015, calibrated=False, freq_jitter_lw=0.35,
                     power_noise=0.125)
    form.show(d)
    assert form.params() == d
    assert form.widgets["tuning_range"].text() == "2.50 %" and form.widgets["phi"].text() == "37.5°"
    form.show(DeviceParams())
    assert form.widgets["tuning_range"].text() == "unlimited" and form.widgets["tuning_bits"].text() == "continuous"
    assert form.params() == DeviceParams()


def test_the_settings_earlier_versions_saved_are_read_and_written_alike(settings, qtbot):
    from rfexplorer.controls import ControlPanel
    from rfexplorer.device_controls import SETTINGS_DEVICE, SETTINGS_REGIME

    settings.setValue(SETTINGS_DEVICE, OLD_SAVED)
    settings.setValue(SETTINGS_REGIME, "aware")
    panel = ControlPanel(settings)
    qtbot.addWidget(panel)
    want = DeviceParams.from_dict({**DeviceParams().to_dict(), **json.loads(OLD_SAVED)})
    assert panel.config().device == want and panel.hardware() == "aware"
    panel.set_config(RunConfig(model="rf", hardware="aware", device=DeviceParams()))
    panel.set_config(RunConfig(model="rf", hardware="aware", device=want))
    assert json.loads(settings.value(SETTINGS_DEVICE)) == json.loads(OLD_SAVED)
    assert panel.hardware_summary() == ("aware training, range ±20 %, 8 bits, spread 0.3 %, not calibrated, "
                                        "jitter 0.1 lw, power noise 2.5 %")


def test_a_spin_box_that_can_say_a_word_is_wide_enough_for_it(app_env):
    """'continuous' (tuning bits) and 'unlimited' (tuning range) are never cut, however narrow the tab is
    made: the spin box's minimum width holds the word and the arrows (it read "ontinuous")."""
    from PySide6.QtWidgets import QAbstractSpinBox, QWidget

    from rfexplorer.device_controls import DeviceForm

    form = DeviceForm()
    page = QWidget()
    page.setLayout(form.grid("hardware"))
    page.resize(page.minimumSizeHint())
    page.show()
    worded = [w for w in form.tab_widgets("hardware") if isinstance(w, QAbstractSpinBox) and w.specialValueText()]
    assert worded
    for widget in worded:
        text = widget.fontMetrics().horizontalAdvance(widget.specialValueText())
        assert widget.width() >= text + 24, (widget.objectName(), widget.width(), text)
    page.close()
