"""File menu paths of the main window: topology export/import, malformed files, results CSV, PNGs, About."""
import csv
import json

import numpy as np
import pytest
from PySide6.QtGui import QImage

RUN_MS = 120_000


def _train(window, qtbot, set_controls, model, k, epochs=1):
    set_controls(window, model, k, epochs=epochs)
    with qtbot.waitSignal(window.controller.run_finished, timeout=RUN_MS) as done:
        window.runs.start_from_controls()
    return done.args[0]


def _leftovers(folder, keep):
    return sorted(p.name for p in folder.iterdir() if p.name not in keep)


@pytest.mark.parametrize("model,k", [("rf", 6), ("rigl", 10)])
def test_topology_export_then_import_round_trips(window, qtbot, set_controls, dialogs, tmp_path, model, k):
    result = _train(window, qtbot, set_controls, model, k)
    final_weight = window.session.points[-1].state.weight.copy()
    final_res = window.spectrum.data_summary()["resonators_x"]
    paths = window.files.export_topology(tmp_path / "net.json")
    assert paths and (tmp_path / "net.json").is_file() and (tmp_path / "net.csv").is_file()
    assert _leftovers(tmp_path, {"net.json", "net.csv"}) == []  # nothing half-written left behind
    doc = json.loads((tmp_path / "net.json").read_text())
    assert doc["model"] == model and doc["format"] == "rfexplorer-topology"

    window.session.clear()
    with qtbot.waitSignal(window.controller.evaluation_finished, timeout=RUN_MS) as ev:
        assert window.files.import_topology(tmp_path / "net.json")
    assert dialogs == []
    assert ev.args[1] == pytest.approx(result.test_accuracy, abs=1e-9)  # same network, same test set
    shown = window.explorer.state
    assert "imported net.json" in shown.label
    np.testing.assert_allclose(shown.weight, final_weight, rtol=1e-5, atol=1e-7)
    for before, after in zip(final_res, window.spectrum.data_summary()["resonators_x"]):
        if before is not None and len(before):
            np.testing.assert_allclose(after, before, rtol=1e-6)
    imported = window.session.points[-1]
    assert imported.source == "import" and imported.accuracy == pytest.approx(result.test_accuracy)
    assert window.sparsity.n_points() == 1


@pytest.mark.parametrize("content", [b"", b"{not json", b"[1, 2, 3]", b'{"format": "something-else"}',
                                     b"\x89PNG\r\n\x1a\n\x00\x00binary", "{\"format\": \"rfexplorer-topology\", "
                                     "\"format_version\": 1, \"kind\": \"rf-perceptron\"}".encode()])
def test_malformed_or_foreign_topology_gives_a_clear_dialog(window, qtbot, dialogs, tmp_path, content):
    bad = tmp_path / "bad.json"
    bad.write_bytes(content)
    state_before = window.explorer.state
    with qtbot.waitSignal(window.controller.import_failed, timeout=RUN_MS):
        window.files.import_topology(bad)  # read in the worker; the failure comes back as a signal
    assert dialogs.kinds() == ["warning"]
    kind, title, text = dialogs[0]
    assert title == "Cannot import topology" and "bad.json" in text
    assert window.explorer.state is state_before and window.session.points == []
    assert "Import failed" in window.status_text()


def test_missing_topology_file_gives_a_dialog(window, qtbot, dialogs, tmp_path):
    with qtbot.waitSignal(window.controller.import_failed, timeout=RUN_MS):
        window.files.import_topology(tmp_path / "nope.json")
    assert dialogs.kinds() == ["warning"] and "does not exist" in dialogs[0][2]


def test_failed_export_reports_and_leaves_nothing(window, qtbot, set_controls, dialogs, tmp_path):
    _train(window, qtbot, set_controls, "rf", 3)
    target = tmp_path / "missing-folder" / "net.json"
    assert window.files.export_topology(target) is None
    assert dialogs.kinds() == ["critical"]
    assert not (tmp_path / "missing-folder").exists()
    assert list(tmp_path.iterdir()) == []


def test_export_without_a_trained_model_explains(window, dialogs):
    window.files.export_topology_dialog()
    assert dialogs.kinds() == ["information"]


def test_results_export_writes_csv_and_a_json_the_figure_renders(window, tmp_path, dialogs):
    from rfexplorer.figures import render_sweep_png

    for model, k, acc in (("rf", 10, 0.81), ("rf", 10, 0.83), ("rigl", 10, 0.70), ("dense", 784, 0.92)):
        window.session.add({"model": model, "resonators_per_chain": k, "removed_synapses_pct": 100 * (1 - k / 784),
                            "test_accuracy": acc, "seed": 0, "dataset": "mnist-mini"}, "sweep")
    assert window.sparsity.n_points() == 4 and window.sparsity.level_lines["dense"].isVisible()
    assert window.files.export_results(tmp_path / "results.csv")
    with open(tmp_path / "results.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 4 and {r["model"] for r in rows} == {"rf", "rigl", "dense"}
    assert {r["source"] for r in rows} == {"sweep"}
    png = render_sweep_png(tmp_path / "results.json", tmp_path / "results.png")
    assert not QImage(str(png)).isNull()
    assert dialogs == []


def test_sweep_results_import_adds_the_runs_and_rejects_foreign_files(window, tmp_path, dialogs):
    from engine.experiments.sweep.runner import write_results

    rows = [{"model": m, "resonators_per_chain": k, "removed_synapses_pct": 100 * (1 - k / 784),
             "test_accuracy": acc, "seed": seed, "dataset": "mnist", "train_seconds": 1.0, "error": None}
            for m, k, acc, seed in (("rf", 10, 0.80, 0), ("rf", 10, 0.82, 1), ("rigl", 10, 0.75, 0),
                                    ("dense", 784, 0.92, 0))]
    rows.append(dict(rows[0], seed=2, test_accuracy=None, error="diverged"))  # a failed run is skipped
    write_results(rows, tmp_path)
    assert window.files.import_results(tmp_path / "sweep.json")
    assert window.sparsity.n_points() == 4 and dialogs == []
    assert {p.source for p in window.session.points} == {"sweep"}
    (tmp_path / "foreign.json").write_text('{"format": "rfexplorer-topology"}')
    assert not window.files.import_results(tmp_path / "foreign.json")
    assert dialogs.kinds() == ["warning"] and window.sparsity.n_points() == 4


def test_views_save_as_png(window, tmp_path, dialogs):
    for name, widget in window.files.png_targets.items():
        path = tmp_path / (name.replace(" ", "_") + ".png")
        assert window.files.save_png(widget, path)
        img = QImage(str(path))
        assert not img.isNull() and img.width() > 100 and img.height() > 100
    assert _leftovers(tmp_path, {p.name for p in tmp_path.glob("*.png") if not p.name.startswith(".")}) == []
    assert dialogs == []


def test_about_names_the_model_the_papers_and_the_versions(window, dialogs):
    window.show_about()
    (kind, title, text), = dialogs
    assert kind == "about"
    for needle in ("Rageau", "Grollier", "Sanz-Hernandez", "Mizrahi", "Leroux", "034067", "Ross", "1273",
                   "Lorentzian", "spin-diode", "torch", "PySide6", "pyqtgraph"):
        assert needle in text, needle


def test_sweep_runs_in_the_background_and_accumulates(window, qtbot):
    from engine.config.run_config import RunConfig
    from engine.experiments.sweep.runner import SweepSpec

    spec = SweepSpec(models=("rf", "dense", "random"), ks=(5,), seeds=(0,),
                     base=RunConfig(dataset="mnist-mini", epochs=1))
    rows_seen = []
    window.controller.sweep_row.connect(rows_seen.append)
    with qtbot.waitSignal(window.controller.sweep_finished, timeout=RUN_MS) as done:
        assert window.runs.start_sweep(spec)
        assert window.controls.sweep_button.text() == "Stop sweep"
    assert len(done.args[0]) == 3 and len(rows_seen) == 3
    assert window.sparsity.n_points() == 3
    assert {p.source for p in window.session.points} == {"sweep"}
    assert window.controls.sweep_button.text() == "Run sweep…"
