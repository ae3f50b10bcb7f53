"""The accuracy-vs-sparsity view averages and joins only comparable runs (issue #21, findings 2 and 3).

A series is every run of one settings tree except the seed and the sparsity (rfexplorer.series): runs that
differ in epochs, hardware regime or dataset are never averaged into one mean ± std, one dataset is shown at
a time, and a multilayer network sits at the sparsity of all its layers, on a line of its own.
"""
import numpy as np
import pyqtgraph as pg
import pytest

from engine.config.run_config import RunConfig
from engine.physics.resonators import DeviceParams
from engine.io.results import RunResult
from rfexplorer import series
from rfexplorer.session import SessionPoint
from rfexplorer.views.sparsity import SparsityView, removed_to_x


def _row(acc, model="rf", k=10, seed=0, dataset="mnist-mini", n_inputs=784, n_classes=10, **settings):
    """The row a finished run records (RunResult.row(): the resolved settings tree included)."""
    cfg = RunConfig(model=model, resonators_per_chain=k, seed=seed, dataset=dataset, **settings).resolved()
    probe = RunResult(config=cfg, test_accuracy=acc, train_seconds=1.0, epochs_completed=cfg.epochs,
                      n_inputs=n_inputs, n_classes=n_classes)
    return probe.row().with_(synapses=series.network_synapses(probe.row()))


@pytest.fixture
def view(app_env):
    v = SparsityView()
    v.resize(900, 560)
    yield v
    v.deleteLater()


def _show(view, rows, source="run"):
    points = [SessionPoint(row=r, source=source) for r in rows]
    view.set_points(points)
    return points


def _lines(view):
    """(x, y) of every line drawn (PlotDataItems with data): one per series."""
    out = []
    for item in view.plot.listDataItems():
        if isinstance(item, pg.PlotDataItem):
            x, y = item.getData()
            if x is not None and len(x):
                out.append((np.asarray(x, dtype=float), np.asarray(y, dtype=float)))
    return out


def _all_means(view):
    return sorted(float(v) for _, y in _lines(view) for v in y)


def test_runs_differing_only_in_epochs_are_never_averaged(view):
    """RF at K = 10, seed 0, trained for 15 and then 3 epochs: two series, not one point at 72.0 ± 11.9 %."""
    _show(view, [_row(0.804, epochs=15), _row(0.636, epochs=3)])
    assert _all_means(view) == pytest.approx([63.6, 80.4])
    assert len(_lines(view)) == 2
    assert sorted(view.series_labels()) == ["RF · 15 ep", "RF · 3 ep"]


def test_a_sweep_then_train_keeps_the_sweeps_epochs_apart(view):
    """A 3-epoch sweep over two K and seeds, then a 15-epoch Train at one of its K."""
    sweep = [_row(a, k=k, seed=s, epochs=3) for k, accs in ((10, (0.60, 0.62)), (50, (0.70, 0.74)))
             for s, a in enumerate(accs)]
    points = [SessionPoint(row=r, source="sweep") for r in sweep]
    points.append(SessionPoint(row=_row(0.85, k=10, epochs=15), source="run"))
    view.set_points(points)
    lines = sorted(_lines(view), key=len)
    means = sorted((len(x), sorted(np.round(y, 6))) for x, y in _lines(view))
    assert means == [(1, [85.0]), (2, [61.0, 72.0])]  # seeds averaged within the sweep, the Train on its own
    assert len(lines) == 2 and view.n_points() == 5


def test_seeds_and_settings_without_effect_are_averaged_together(view):
    """Seeds, the compute device and the data folder do not split a series."""
    _show(view, [_row(0.80, seed=0), _row(0.84, seed=1, compute_device="auto"),
                 _row(0.82, seed=2, data_dir="/elsewhere")])
    assert _all_means(view) == pytest.approx([82.0])
    assert view.series_labels() == ["RF"]


def test_an_aware_run_is_not_joined_to_the_in_situ_series(view):
    """±5 % tuning range and 0.1-linewidth jitter, trained aware: its own series, named by what differs."""
    noisy = DeviceParams(tuning_range=0.05, freq_jitter_lw=0.1)
    _show(view, [_row(0.82, k=10), _row(0.85, k=50),
                 _row(0.70, k=10, hardware="aware", device=noisy), _row(0.60, k=10, hardware="ideal")])
    assert len(_lines(view)) == 3
    assert _all_means(view) == pytest.approx([60.0, 70.0, 82.0, 85.0])
    labels = view.series_labels()
    aware = next(label for label in labels if "aware" in label)
    assert "±5 %" in aware and "jitter 0.1 lw" in aware
    assert any("ideal" in label for label in labels) and any("in-situ" in label for label in labels)


def test_only_one_dataset_is_shown_with_a_selector_that_follows_the_newest_run(view):
    mnist = [_row(0.80, seed=s) for s in range(3)]
    mine = _row(0.95, k=5, dataset="/data/my-drones.npz", n_inputs=256, n_classes=4)
    points = _show(view, mnist + [mine])
    assert view.n_points() == 1 and _all_means(view) == pytest.approx([95.0])
    assert view.dataset == "/data/my-drones.npz"
    assert view.datasets() == ["mnist-mini", "/data/my-drones.npz"]
    assert "my-drones.npz" in view.dataset_combo.currentText() and view.dataset_combo.isEnabled()
    view.set_dataset("mnist-mini")
    assert view.n_points() == 3 and _all_means(view) == pytest.approx([80.0])
    # the user's choice holds until a new run arrives, which brings its dataset into view
    view.set_points(points)
    assert view.dataset == "mnist-mini" and view.n_points() == 3
    view.set_points(points + [SessionPoint(row=_row(0.9, k=8, dataset="/data/my-drones.npz", n_inputs=256,
                                                    n_classes=4), source="run")])
    assert view.dataset == "/data/my-drones.npz" and view.n_points() == 2
    with pytest.raises(ValueError, match="no results on dataset"):
        view.set_dataset("cifar")


def test_a_multilayer_network_sits_at_the_sparsity_of_all_its_layers(view):
    """784-100-10 RF with K = 30 then 100: 4,000 resonators of a dense 79,400, i.e. 94.96 % removed (not the
    96.17 % of layer 1's K alone), on a line of its own."""
    deep = _row(0.90, k=30, hidden=(100,), layer_resonators=(100,))
    flat = [_row(0.80, k=30), _row(0.86, k=100)]
    points = _show(view, flat + [deep])
    assert series.network_synapses(deep) == 4000 and series.dense_synapses(deep) == 79400
    assert points[-1].removed_pct == pytest.approx(100 * (1 - 4000 / 79400))
    assert "94.96 % removed" in points[-1].describe() and "4,000 of 79,400 synapses" in points[-1].describe()
    lines = _lines(view)
    assert len(lines) == 2
    deep_line = next((x, y) for x, y in lines if len(x) == 1)
    assert deep_line[0][0] == pytest.approx(float(removed_to_x(100 * (1 - 4000 / 79400))))
    flat_x = next(x for x, y in lines if len(x) == 2)
    assert float(removed_to_x(points[0].removed_pct)) in list(flat_x)  # the single layer keeps 1 - K/N
    assert sorted(view.series_labels()) == ["RF · 1 layer", "RF · 784-100-10"]


def test_drones_multilayer_is_placed_by_its_960_resonators(view):
    deep = _row(0.93, k=20, hidden=(32,), layer_resonators=(32,), dataset="drones", n_inputs=256, n_classes=10)
    points = _show(view, [deep])
    assert series.network_synapses(deep) == 960
    assert points[0].removed_pct == pytest.approx(100 * (1 - 960 / (256 * 32 + 32 * 10)))
    x, _ = _lines(view)[0]
    assert x[0] == pytest.approx(float(removed_to_x(points[0].removed_pct)))


def test_labels_name_only_the_settings_that_differ():
    rows = {"a": _row(0.8, epochs=15), "b": _row(0.7, epochs=3), "c": _row(0.7, model="rigl", epochs=15),
            "d": _row(0.9, model="dense", epochs=15, hardware="aware")}
    settings = {k: series.series_settings(r) for k, r in rows.items()}
    labels = series.series_labels(settings, rows)
    assert labels == {"a": "rf · 15 ep", "b": "rf · 3 ep", "c": "rigl", "d": "dense"}
    # a difference between models only (every RF run at 15 epochs, RigL at 3) is named on both
    rows = {"a": _row(0.8, epochs=15), "c": _row(0.7, model="rigl", epochs=3)}
    labels = series.series_labels({k: series.series_settings(r) for k, r in rows.items()}, rows)
    assert labels == {"a": "rf · 15 ep", "c": "rigl · 3 ep"}


def test_two_dense_levels_when_epochs_differ(view):
    _show(view, [_row(0.92, model="dense", epochs=15), _row(0.88, model="dense", epochs=3)])
    levels = sorted(item.value() for item in view.plot.items if isinstance(item, pg.InfiniteLine)
                    and item.isVisible())
    assert levels == pytest.approx([88.0, 92.0])


def test_the_window_shows_session_results_by_series(window):
    """The real window: results added to the session reach the view, split by settings, newest dataset shown."""
    window.session.add(_row(0.804, epochs=15), "run")
    window.session.add(_row(0.636, epochs=3), "run")
    assert _all_means(window.sparsity) == pytest.approx([63.6, 80.4])
    assert sorted(window.sparsity.series_labels()) == ["RF · 15 ep", "RF · 3 ep"]
    window.session.add(_row(0.9, k=4, dataset="/data/other.csv", n_inputs=16, n_classes=3), "run")
    assert window.sparsity.n_points() == 1 and window.sparsity.dataset == "/data/other.csv"
