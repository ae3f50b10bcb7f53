"""The confusion matrix of a run: computed in the engine (engine.core.metrics.confusion_matrix), recorded with
every finished run (RunResult / ResultRow.confusion), drawn as a PNG (engine.experiments.confusion_figure) by
``rfexplorer-cli train/export/evaluate --confusion``."""
import json

import numpy as np
import pytest
import torch

import engine.cli as cli
from engine.config.run_config import RunConfig
from engine.core import metrics
from engine.core.metrics import accuracy, accuracy_of, confusion_matrix
from engine.experiments.confusion_figure import (as_matrix, class_labels, confusion_figure, confusion_png,
                                                 row_normalised, write_confusion_png)
from engine.io.results import ResultRow
from engine.training.loop import run_training

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def last_json(out: str) -> dict:
    return json.loads(out.strip().splitlines()[-1])


class Fixed(torch.nn.Module):
    """Predicts the class written in the first input (as a one-hot score)."""

    def __init__(self, n_classes: int) -> None:
        super().__init__()
        self.n_classes = n_classes

    def forward(self, x):
        return torch.nn.functional.one_hot(x[:, 0].long(), self.n_classes).float()


# --- the matrix --------------------------------------------------------------------------------------------------

def test_confusion_matrix_counts_true_rows_and_predicted_columns(monkeypatch):
    pred = torch.tensor([0, 1, 2, 2, 1, 0, 2])
    y = torch.tensor([0, 1, 1, 2, 2, 2, 2])
    x = pred[:, None].float()
    expected = np.zeros((3, 3), dtype=np.int64)
    for t, p in zip(y.tolist(), pred.tolist()):
        expected[t, p] += 1
    model = Fixed(3)
    model.train()
    m = confusion_matrix(model, x, y, 3)
    assert m.dtype == np.int64 and m.shape == (3, 3)
    assert np.array_equal(m, expected)
    assert m[1, 2] == 1 and m[2, 1] == 1 and m[2, 0] == 1  # row: true class, column: predicted
    assert model.training  # the model's mode is given back
    assert accuracy_of(m) == accuracy(model, x, y) == 4 / 7
    monkeypatch.setattr(metrics, "EVAL_BATCH", 2)  # in batches: the same counts
    assert np.array_equal(confusion_matrix(model, x, y, 3), expected)


def test_confusion_matrix_refuses_a_network_with_another_class_count():
    with pytest.raises(ValueError, match="4 outputs but the data has 3 classes"):
        confusion_matrix(Fixed(4), torch.zeros(2, 1), torch.zeros(2, dtype=torch.long), 3)


def test_a_run_records_its_confusion_matrix_consistent_with_its_accuracy(mini):
    result = run_training(RunConfig(model="rf", resonators_per_chain=10, epochs=1, seed=2), dataset=mini)
    m = np.asarray(result.confusion)
    assert m.shape == (10, 10) and m.sum() == len(mini.test_y)
    assert np.array_equal(m.sum(axis=1), np.bincount(mini.test_y.numpy(), minlength=10))  # rows: true classes
    assert accuracy_of(m) == result.test_accuracy == result.history[-1][3]
    assert np.array_equal(m, confusion_matrix(result.model, mini.test_x, mini.test_y, 10))  # the final network's
    row = result.row()
    assert row.confusion == m.tolist()
    assert ResultRow.from_dict(json.loads(json.dumps(row.to_dict()))).confusion == m.tolist()
    assert "confusion" not in result.summary()  # the flat --json row stays flat


def test_a_cancelled_run_records_the_matrix_of_the_network_as_it_stands(mini):
    from engine.core.progress import CancelToken

    token = CancelToken()
    seen = []

    def progress(snap):
        seen.append(snap)
        if snap.step >= 5:
            token.set()

    result = run_training(RunConfig(model="rf", resonators_per_chain=10, epochs=2, seed=2), dataset=mini,
                          progress=progress, cancel=token, snapshot_interval_s=0.0)
    assert result.cancelled and result.epochs_completed == 0
    m = np.asarray(result.confusion)
    assert m.sum() == len(mini.test_y) and accuracy_of(m) == result.test_accuracy


# --- the figure --------------------------------------------------------------------------------------------------

def test_rows_are_normalised_and_an_empty_class_stays_zero():
    frac = row_normalised([[3, 1, 0], [0, 0, 0], [1, 1, 2]])
    assert np.allclose(frac.sum(axis=1), [1, 0, 1])
    assert frac[0, 0] == 0.75 and frac[2, 2] == 0.5


@pytest.mark.parametrize("bad", [[[1, 2, 3]], [], [[1, -1], [0, 2]], [[1, float("nan")], [0, 1]]])
def test_a_bad_matrix_is_refused_in_one_sentence(bad):
    with pytest.raises(ValueError, match="confusion matrix"):
        as_matrix(bad)


def test_class_labels_fall_back_to_numbers():
    assert class_labels(None, 3) == ["0", "1", "2"]
    assert class_labels(["a", "b"], 3) == ["0", "1", "2"]  # the wrong count: numbers
    assert class_labels(("cat", "dog"), 2) == ["cat", "dog"]


def test_the_figure_has_class_names_on_both_axes_counts_in_cells_and_row_colours():
    counts = [[5, 1, 0], [2, 2, 0], [0, 0, 9]]
    fig = confusion_figure(counts, ["quad", "hexa", "wing"], title="drones")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["quad", "hexa", "wing"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["quad", "hexa", "wing"]
    assert ax.get_xlabel() == "Predicted class" and ax.get_ylabel() == "True class"
    cells = {(round(t.get_position()[1]), round(t.get_position()[0])): t.get_text() for t in ax.texts}
    assert cells[(0, 1)] == "1" and cells[(1, 0)] == "2" and cells[(2, 2)] == "9"  # (row, column): counts
    image = ax.images[0].get_array()
    assert np.allclose(image, row_normalised(counts))  # colour: the fraction of the true class
    assert "drones" in ax.get_title() and "19 samples" in ax.get_title() and "84.21 %" in ax.get_title()


def test_write_confusion_png_is_atomic_and_a_png(tmp_path):
    path = write_confusion_png(tmp_path / "cm.png", np.eye(3, dtype=int) * 4, ["a", "b", "c"])
    assert path.read_bytes().startswith(PNG_MAGIC)
    assert [p.name for p in tmp_path.iterdir()] == ["cm.png"]  # no temporary file left
    assert confusion_png(np.ones((40, 40), dtype=int)).startswith(PNG_MAGIC)  # many classes: colours only


# --- the command-line tool ---------------------------------------------------------------------------------------

def test_train_and_evaluate_draw_the_confusion_matrix(tmp_path, capsys):
    net, trained_png, evaluated_png = tmp_path / "net.json", tmp_path / "train.png", tmp_path / "eval.png"
    assert cli.main(["train", "--model", "rf", "-K", "8", "--epochs", "1", "--threads", "1", "--dataset", "drones",
                     "--export", str(net), "--confusion", str(trained_png), "--json"]) == 0
    captured = capsys.readouterr()
    out = last_json(captured.out)
    assert out["confusion_png"] == str(trained_png) and "confusion matrix" in captured.err
    assert trained_png.read_bytes().startswith(PNG_MAGIC)
    assert cli.main(["evaluate", str(net), "--threads", "1", "--confusion", str(evaluated_png), "--json"]) == 0
    out = last_json(capsys.readouterr().out)
    assert out["confusion_png"] == str(evaluated_png) and evaluated_png.read_bytes().startswith(PNG_MAGIC)


def test_a_confusion_file_that_is_no_png_is_refused_before_training(tmp_path, capsys, monkeypatch):
    from engine.training import loop

    def never(*_a, **_k):
        raise AssertionError("trained")

    monkeypatch.setattr(loop, "run_training", never)
    assert cli.main(["train", "--epochs", "1", "--threads", "1", "--confusion", str(tmp_path / "cm.jpg")]) == 2
    assert "must end in .png" in capsys.readouterr().err
    missing = tmp_path / "no" / "such" / "cm.png"
    assert cli.main(["train", "--epochs", "1", "--threads", "1", "--confusion", str(missing)]) == 2
    assert not missing.parent.exists()


# --- the app's view ----------------------------------------------------------------------------------------------

RUN_MS = 120_000


def test_the_app_shows_the_confusion_matrix_of_the_run_on_display(window, qtbot, set_controls, tmp_path):
    view = window.confusion
    assert "Confusion matrix" in window.view_actions and window.confusion_dock.objectName() == "ConfusionDock"
    assert view.data()["counts"] is None and view.data()["message"]  # an untrained preview: a message
    set_controls(window, "rf", 10, epochs=2)
    finished, messages = [], []
    window.controller.run_finished.connect(finished.append)
    window.controller.snapshot_ready.connect(lambda *_: messages.append(view.data()["message"]))
    window.runs.start_from_controls()
    qtbot.waitUntil(lambda: bool(finished), timeout=RUN_MS)
    result = finished[0]
    assert any("Training" in (m or "") for m in messages)  # while the run is live: a message
    qtbot.waitUntil(lambda: view.data()["counts"] is not None, timeout=5_000)
    shown = view.data()
    assert np.array_equal(shown["counts"], result.confusion)
    assert shown["names"] == [str(d) for d in range(10)]  # MNIST: the digits
    assert len(shown["texts"]) == 100 and shown["texts"][0] == str(result.confusion[0][0])
    assert np.allclose(shown["image"], row_normalised(result.confusion))
    assert f"accuracy {100 * result.test_accuracy:.2f} %" in view.summary_label.text()
    point = window.session.points[-1]
    assert view.source_label.text().startswith(f"— run #{point.id}")
    window.confusion_dock.show()
    window.confusion_dock.raise_()
    window.resize(1280, 720)
    qtbot.waitUntil(lambda: window.confusion.isVisible(), timeout=5_000)
    window.grab().save(str(tmp_path / "window.png"))
    window.confusion.grab().save("/tmp/confusion_view.png")


def test_a_clicked_sweep_result_shows_its_matrix_with_its_class_names(window, qtbot):
    names = ["dx4e", "dx6i", "MTx"]
    counts = [[5, 1, 0], [2, 7, 1], [0, 0, 9]]
    row = ResultRow(model="rf", dataset="drones", resonators_per_chain=8, seed=1, test_accuracy=21 / 25,
                    n_inputs=256, n_classes=3, confusion=counts, dataset_info={"class_names": names})
    point = window.session.add(row, "sweep")
    window.sparsity.point_clicked.emit(point.id)
    shown = window.confusion.data()
    assert np.array_equal(shown["counts"], counts) and shown["names"] == names
    bottom = window.confusion.plot.getAxis("bottom")._tickLevels[0]
    left = window.confusion.plot.getAxis("left")._tickLevels[0]
    assert [t[1] for t in bottom] == names and [t[1] for t in left] == names  # class names on both axes
    old = window.session.add(row.with_(confusion=None), "sweep")
    window.sparsity.point_clicked.emit(old.id)
    assert window.confusion.data()["counts"] is None and "no recorded" in window.confusion.data()["message"]
