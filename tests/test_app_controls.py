"""The control panel driven in the real main window: slider sync, run requests, validation, data folder."""
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from engine.config.run_config import removed_synapses_pct
from engine.config.models import get_spec, list_models
from rfexplorer.controls import SETTINGS_DATA_DIR, SLIDER_STEPS, k_to_pos, pos_to_k

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def test_chain_length_slider_moves_sparsity_slider(window):
    c = window.controls
    pos = k_to_pos(50, 784)
    c.k_slider.setValue(pos)
    k = pos_to_k(pos, 784)
    assert c.k() == k == c.k_spin.value()
    assert c.sparsity_slider.value() == SLIDER_STEPS - pos
    assert c.removed_label.text() == f"{removed_synapses_pct(k, 784):.2f} %"


def test_sparsity_slider_moves_chain_length_slider(window):
    c = window.controls
    c.sparsity_slider.setValue(SLIDER_STEPS)  # all the way right: the sparsest network, K = 1
    assert c.k() == 1 and c.k_spin.value() == 1 and c.k_slider.value() == 0
    assert c.removed_pct() == pytest.approx(100 * (1 - 1 / 784))
    c.sparsity_slider.setValue(0)  # all the way left: dense, K = N
    assert c.k() == 784 and c.k_slider.value() == SLIDER_STEPS
    c.k_spin.setValue(10)  # the spin box drives both sliders too
    assert c.k_slider.value() == k_to_pos(10, 784)
    assert c.sparsity_slider.value() == SLIDER_STEPS - k_to_pos(10, 784)
    assert c.removed_label.text() == "98.72 %"


def test_slider_release_requests_a_run_at_that_setting(window, qtbot, set_controls):
    set_controls(window, "rf", 10, epochs=1)
    c = window.controls
    c.k_slider.setValue(k_to_pos(20, 784))
    with qtbot.waitSignal(window.controller.run_requested, timeout=2000) as req:
        c.k_slider.sliderReleased.emit()
    assert req.args[0].resonators_per_chain == c.k() == pos_to_k(k_to_pos(20, 784), 784)
    with qtbot.waitSignal(window.controller.busy_changed, timeout=60_000, check_params_cb=lambda b: not b):
        window.controller.stop()


def test_keyboard_move_of_a_slider_requests_a_run(window, qtbot, set_controls):
    set_controls(window, "dense", 784, epochs=1)
    set_controls(window, "random", 10, epochs=1)
    slider = window.controls.sparsity_slider
    slider.setFocus()
    with qtbot.waitSignal(window.controller.run_requested, timeout=3000) as req:
        qtbot.keyClick(slider, Qt.Key_PageUp)
    assert req.args[0].model == "random"
    assert req.args[0].resonators_per_chain == window.controls.k() < 10
    with qtbot.waitSignal(window.controller.busy_changed, timeout=60_000, check_params_cb=lambda b: not b):
        pass


def test_invalid_device_parameters_are_reported_not_run(window, qtbot):
    c = window.controls
    c.fmin_spin.setValue(20.0)
    c.fmax_spin.setValue(10.0)
    requested = []
    window.controller.run_requested.connect(requested.append)
    assert window.runs.start_from_controls() is False
    assert not requested and not window.controller.busy
    assert "Invalid settings" in window.status_text() and "f_min_ghz" in window.status_text()


def test_model_choice_and_chain_length_reach_the_run_config(window, set_controls):
    set_controls(window, "rf-input", 25, epochs=2, seed=3)
    window.controls.alpha_spin.setValue(0.01)
    window.controls.phi_spin.setValue(90.0)
    cfg = window.controls.config()
    assert (cfg.model, cfg.resonators_per_chain, cfg.epochs, cfg.seed) == ("rf-input", 25, 2, 3)
    assert cfg.lr is None and cfg.dataset == "mnist-mini"
    assert cfg.device.alpha == pytest.approx(0.01) and cfg.device.phi == pytest.approx(3.14159265 / 2)
    names = [window.controls.model_combo.itemData(i) for i in range(window.controls.model_combo.count())]
    assert names == list_models()  # the registry, in its order
    assert window.controls.model_combo.itemText(0) == get_spec(names[0]).label


def test_embedded_dataset_is_the_default_and_shown_in_the_status_bar(window):
    assert window.controls.dataset() == "mnist-mini"
    text = window.dataset_label.text()
    assert text.startswith("mnist-mini: 6,000 train / 1,000 test images (embedded subset")


@pytest.mark.skipif(not (SHARED_DATA / "MNIST" / "raw" / "train-images-idx3-ubyte").is_file(),
                    reason="full MNIST not available")
def test_data_folder_is_chosen_and_remembered(make_window, settings):
    first = make_window()
    assert "mnist" not in first.controls.available or first.controls.data_dir == str(SHARED_DATA)
    first.controls.set_data_dir(str(SHARED_DATA))
    assert "mnist" in first.controls.available
    index = first.controls.dataset_combo.findData("mnist")
    assert first.controls.dataset_combo.model().item(index).isEnabled()
    assert settings.value(SETTINGS_DATA_DIR) == str(SHARED_DATA)
    assert Path(settings.fileName()).is_file() or settings.sync() is None
    second = make_window(settings)  # a new session with the same (throwaway) settings
    assert second.controls.data_dir == str(SHARED_DATA)
    assert "mnist" in second.controls.available


@pytest.mark.skipif(not (SHARED_DATA / "MNIST" / "raw" / "train-images-idx3-ubyte").is_file(),
                    reason="full MNIST not available")
def test_selecting_full_mnist_loads_it_in_the_background(window, qtbot):
    window.controls.set_data_dir(str(SHARED_DATA))
    with qtbot.waitSignal(window.controller.dataset_ready, timeout=60_000) as ready:
        window.controls.select_dataset("mnist")
        assert window.status_text().startswith("Loading mnist")
    assert ready.args[0].name == "mnist"
    assert window.dataset_label.text().startswith("mnist: 60,000 train / 10,000 test images")
    assert window.controls.config().data_dir == str(SHARED_DATA)


def test_default_epochs_follow_the_dataset_until_edited(window, qtbot):
    c = window.controls
    assert c.epochs_spin.value() == 15  # embedded subset: 60 steps per epoch, a first RF run of about 2 s
    with qtbot.waitSignal(window.datasets.changed, timeout=60_000):
        c.select_dataset("drones")  # its recommended settings (engine.experiments.recommended)
    assert (c.epochs_spin.value(), c.batch_spin.value(), c.lr_spin.value()) == (120, 20, 0.1)
    c.epochs_spin.setValue(7)  # edited: no longer follows the dataset
    with qtbot.waitSignal(window.datasets.changed, timeout=60_000):
        c.select_dataset("mnist-mini")
    assert c.epochs_spin.value() == 7 and c.config().epochs == 7
    assert c.batch_spin.value() == 100 and c.config().lr is None  # not edited: they follow the dataset


def test_the_compute_device_is_in_the_controls_and_the_config(window):
    import torch

    combo = window.controls.compute_combo
    assert window.controls.config().compute_device == "cpu"
    assert combo.isEnabled() == torch.cuda.is_available()
    if not torch.cuda.is_available():
        assert "no GPU" in combo.toolTip()
