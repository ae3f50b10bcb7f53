"""Offscreen figures (rfexplorer.figures) and the screenshot script (rfexplorer.screenshots)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtGui import QImage

from rfexplorer.figures import FIGURE_SIZE, FigureError, render_sweep_png

ROOT = Path(__file__).resolve().parents[1]


def _rows():
    rows = []
    for model, k, accs in (("rf", 10, (0.84, 0.86)), ("rf", 100, (0.88, 0.89)), ("rigl", 10, (0.72, 0.75)),
                           ("rigl", 100, (0.86, 0.87)), ("dense", 784, (0.92, 0.925))):
        for seed, acc in enumerate(accs):
            rows.append({"model": model, "dataset": "mnist-mini", "resonators_per_chain": k,
                         "removed_synapses_pct": round(100 * (1 - k / 784), 4), "test_accuracy": acc,
                         "seed": seed, "train_seconds": 1.0, "error": None, "cancelled": False})
    rows.append({"model": "set", "dataset": "mnist-mini", "resonators_per_chain": 10, "removed_synapses_pct": 98.7245,
                 "test_accuracy": None, "seed": 0, "train_seconds": None, "error": "diverged", "cancelled": False})
    return rows


def _check_png(path):
    img = QImage(str(path))
    assert not img.isNull()
    assert (img.width(), img.height()) == FIGURE_SIZE


def test_render_sweep_png_from_the_engine_sweep_file(app_env, tmp_path):
    sweep = pytest.importorskip("engine.experiments.sweep.runner")
    from engine.core.files import dumps_json

    src = tmp_path / "sweep.json"
    src.write_text(dumps_json(sweep.sweep_document(_rows())))
    out = render_sweep_png(src, tmp_path / "fig" / "sweep.png")
    _check_png(out)
    assert sorted(p.name for p in (tmp_path / "fig").iterdir()) == ["sweep.png"]


def test_render_sweep_png_from_a_bare_list_of_rows(app_env, tmp_path):
    src = tmp_path / "rows.json"
    src.write_text(json.dumps(_rows()))
    _check_png(render_sweep_png(src, tmp_path / "rows.png"))


@pytest.mark.parametrize("content,needle", [("{oops", "not valid JSON"), ('{"format": "x"}', "not a sweep result"),
                                            ("[]", "no successful run"), ('{"rows": 3}', "must be a list")])
def test_malformed_sweep_files_raise_a_plain_error(app_env, tmp_path, content, needle):
    src = tmp_path / "bad.json"
    src.write_text(content)
    with pytest.raises(FigureError, match=needle):
        render_sweep_png(src, tmp_path / "bad.png")
    assert not (tmp_path / "bad.png").exists()


def test_figures_command_line(tmp_path):
    src = tmp_path / "rows.json"
    src.write_text(json.dumps(_rows()))
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    ok = subprocess.run([sys.executable, "-m", "rfexplorer.figures", str(src), str(tmp_path / "out.png")],
                        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert (tmp_path / "out.png").is_file()
    bad = subprocess.run([sys.executable, "-m", "rfexplorer.figures", str(tmp_path / "missing.json"),
                          str(tmp_path / "x.png")], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "does not exist" in bad.stderr and not (tmp_path / "x.png").exists()


def test_screenshot_script_writes_the_window_and_each_view(tmp_path):
    env = dict(os.environ, SCREENSHOTS_DIR=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path / "config"))
    proc = subprocess.run([sys.executable, "-m", "rfexplorer.screenshots"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    names = {p.name for p in tmp_path.glob("*.png")}
    # every view, single-layer and multilayer, and the first paint, at a laptop's 1280 x 720
    assert {"first_paint.png", "assignment.png", "assignment_maps.png", "history.png", "main_window.png",
            "robustness.png", "sparsity.png", "spectrum.png", "drones_spectrum.png", "multilayer_main_window.png",
            "multilayer_network.png", "multilayer_spectrum_layer2.png", "multilayer_assignment_maps_layer1.png",
            "multilayer_robustness.png", "large_layer_assignment_maps.png"} <= names
    main = QImage(str(tmp_path / "main_window.png"))
    assert (main.width(), main.height()) == (1280, 720)


def test_the_dense_level_is_one_datasets_never_an_average_over_datasets(app_env):
    """Sweep rows of one dataset and a single run of another: the view shows one dataset at a time (the newest
    run's), and its dense level is that dataset's, never an average over datasets."""
    from engine.io.results import ResultRow
    from rfexplorer.session import SessionPoint
    from rfexplorer.views.sparsity import SparsityView

    view = SparsityView()
    rows = [ResultRow(model="dense", dataset="mnist", resonators_per_chain=784, seed=s, test_accuracy=a)
            for s, a in enumerate((0.928, 0.929, 0.927))]
    rows.append(ResultRow(model="dense", dataset="mnist-mini", resonators_per_chain=784, seed=0, test_accuracy=0.85))
    view.set_points([SessionPoint(row=r, source="sweep") for r in rows])
    assert view.dataset == "mnist-mini"
    assert view.level_lines["dense"].value() == pytest.approx(85.0)
    view.set_dataset("mnist")
    assert view.level_lines["dense"].value() == pytest.approx(92.8)
    view.deleteLater()


def test_every_registered_model_has_its_own_plot_style():
    """Colours and markers live in the app's theme (the engine's registry carries none); unknown models get
    the fallback style."""
    from engine.config.models import get_spec, list_models
    from rfexplorer import theme

    assert not hasattr(get_spec("rf"), "color") and not hasattr(get_spec("rf"), "symbol")
    styles = [theme.model_style(m) for m in list_models()]
    assert set(list_models()) <= set(theme.MODEL_STYLES)
    assert len({colour for colour, _ in styles}) == len(styles)
    assert len({theme.model_style(m, light=True)[0] for m in list_models()}) == len(styles)
    assert theme.model_style("rf", light=True) == ("#e4572e", "star")
    assert theme.model_style("no-such-model") == (theme.UNKNOWN_MODEL_STYLE[0], theme.UNKNOWN_MODEL_STYLE[2])
