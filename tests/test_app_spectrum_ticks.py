"""The spectrum's resonator plot labels its chain rows without overlap (issue #21: 100 hidden chains in a short
plot): every n-th row, as many as fit the plot's height, relabelled when the view is resized."""
import numpy as np
import pytest
from PySide6.QtCore import QEventLoop, QPointF, QTimer
from PySide6.QtGui import QFontMetricsF

from engine.physics.resonators import DeviceParams

K = 6


def _spin(ms: int) -> None:
    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()


def _rf_state(n_chains: int):
    from rfexplorer.state import DisplayState

    rng = np.random.default_rng(0)
    p = DeviceParams()
    f = np.sort(rng.uniform(1.1 * p.f_min_ghz, 3.0 * p.f_min_ghz, size=(n_chains, K)), axis=1)
    return DisplayState(model="rf", weight=rng.normal(size=(n_chains, 64)).astype(np.float32), params=p,
                        resonators_per_chain=K, resonator_freqs_ghz=f, resonator_signs=np.ones(K, np.float32))


def _labelled_rows(view) -> list:
    return [int(v) for v, _ in view.res_plot.getAxis("left")._tickLevels[0]]


def _label_gap_px(view) -> float:
    """Smallest vertical distance (pixels) between two consecutive row labels of the resonator plot."""
    vb = view.res_plot.getViewBox()
    rows = _labelled_rows(view)
    ys = [vb.mapViewToScene(QPointF(0.0, float(r))).y() for r in rows]
    return float(np.min(np.abs(np.diff(ys)))) if len(ys) > 1 else float("inf")


def _digits_px(view) -> float:
    """Height (pixels) of the digits of a row label: two labels closer than this overlap."""
    axis = view.res_plot.getAxis("left")
    return QFontMetricsF(axis.style.get("tickFont") or axis.font()).tightBoundingRect("0123456789").height()


@pytest.mark.parametrize("n_chains, need, want", [(10, 0, 1), (100, 0, 7), (100, 10, 10), (100, 23, 25),
                                                  (1000, 225, 250), (3, 9, 3)])
def test_chain_tick_step(n_chains, need, want):
    from rfexplorer.views.spectrum import chain_tick_step

    height = n_chains * 12.0 / need if need else 0.0  # a height that asks for a step of `need`
    assert chain_tick_step(n_chains, height, 12.0) == want


def test_hundred_chains_are_labelled_without_overlap_and_follow_the_height(app_env, qtbot):
    from rfexplorer.views.spectrum import SpectrumView

    view = SpectrumView()
    qtbot.addWidget(view)
    view.resize(700, 330)  # a short resonator plot (about 60 px for 100 rows)
    view.show()
    view.show_state(_rf_state(100))
    _spin(100)
    short = _labelled_rows(view)
    assert 2 <= len(short) < 16 and short[0] == 0
    assert _label_gap_px(view) >= _digits_px(view) + 1
    view.resize(900, 1100)  # room for the usual 16 labels at most
    _spin(100)
    tall = _labelled_rows(view)
    assert len(tall) > len(short) and len(tall) <= 16 and _label_gap_px(view) >= _digits_px(view) + 1
    view.resize(700, 330)
    _spin(100)
    assert _labelled_rows(view) == short


def test_ten_chains_keep_every_row_labelled(app_env, qtbot):
    from rfexplorer.views.spectrum import SpectrumView

    view = SpectrumView()
    qtbot.addWidget(view)
    view.resize(900, 560)
    view.show()
    view.show_state(_rf_state(10))
    _spin(100)
    assert _labelled_rows(view) == list(range(10))
