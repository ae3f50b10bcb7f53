"""The main window fits a laptop: its minimum size stays within 1024 x 640 whatever the network, at 1280 x 720
the progress bar, status line and training history are on screen, every view is a dock that the View menu hides
and shows, and the layout comes back from the settings in the next session."""
from PySide6.QtCore import QEventLoop, QPoint, QRect, Qt, QTimer

RUN_MS = 120_000
LAPTOP = (1024, 640)


def _spin(ms: int) -> None:
    """Let the event loop run (QTest.qWait would hold the GIL)."""
    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()


def _run(window, qtbot, hidden: str = "", layer_k: str = ""):
    window.controls.hidden_edit.setText(hidden)
    window.controls.layer_k_edit.setText(layer_k)
    with qtbot.waitSignal(window.controller.run_finished, timeout=RUN_MS):
        assert window.runs.start_from_controls()
    multi = bool(hidden)
    qtbot.waitUntil(lambda: window.explorer.state is not None and not window.explorer.state.live
                    and window.explorer.state.is_multilayer == multi, timeout=RUN_MS)
    _spin(150)


def _assert_fits_a_laptop(window):
    for size in (window.minimumSizeHint(), window.minimumSize()):
        assert size.width() <= LAPTOP[0] and size.height() <= LAPTOP[1], size


def _on_screen(window, widget, screen: QRect) -> bool:
    """``widget`` is shown, not squashed, and wholly inside ``screen`` (window coordinates)."""
    rect = QRect(widget.mapTo(window, QPoint(0, 0)), widget.size())
    return widget.isVisible() and rect.height() >= 10 and rect.width() >= 100 and screen.contains(rect)


def _check_at(window, size, name: str):
    window.resize(*size)
    _spin(200)
    assert (window.width(), window.height()) == size  # nothing forces the window larger
    screen = QRect(0, 0, *size)
    for widget in (window.progress, window.status_line, window.history.glw):
        assert _on_screen(window, widget, screen), (widget, widget.geometry())
    assert window.history.glw.height() >= 50
    for view in (window.spectrum, window.assignment, window.results_tabs):
        assert view.isVisible() and view.width() >= 150 and view.height() >= 100, (view, view.size())
    window.grab().save(f"/tmp/layout_{name}_{size[0]}x{size[1]}.png")


def test_window_fits_a_laptop_after_single_and_multilayer_runs(window, qtbot, set_controls):
    set_controls(window, "rf", 10, epochs=1)
    _run(window, qtbot)
    _assert_fits_a_laptop(window)
    for size in ((1280, 720), LAPTOP):
        _check_at(window, size, "single")
    _run(window, qtbot, "32", "16")
    assert window.network.isVisible() and window.network_dock.isVisible()
    _assert_fits_a_laptop(window)
    for size in ((1280, 720), LAPTOP):
        _check_at(window, size, "multilayer")
        assert window.network.diagram.width() >= 80
    # both result tabs stay reachable
    window.show_robustness()
    assert window.robustness.isVisible()
    window.results_tabs.setCurrentWidget(window.sparsity)


def test_view_menu_hides_and_shows_every_view(window):
    view_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&View")
    in_menu = set(view_menu.actions())
    targets = {"Frequency spectrum": window.spectrum, "Controls": window.controls,
               "Training history": window.history, "Synapse assignment": window.assignment,
               "Results (accuracy, robustness)": window.results_tabs}
    for name, widget in targets.items():
        act = window.view_actions[name]
        assert act in in_menu and act.isCheckable() and act.isEnabled(), name
        assert act.isChecked() and widget.isVisible(), name
        act.trigger()
        assert not act.isChecked() and not widget.isVisible(), name
        act.trigger()
        assert act.isChecked() and widget.isVisible(), name
    # the diagram's entry is there, and enabled for multilayer networks only
    assert window.view_actions["Network diagram"] in in_menu
    assert not window.view_actions["Network diagram"].isEnabled() and not window.network.isVisible()


def test_layout_is_restored_from_the_settings(make_window, settings):
    first = make_window(settings)
    first.history_dock.hide()
    first.removeDockWidget(first.results_dock)
    first.addDockWidget(Qt.RightDockWidgetArea, first.results_dock)
    first.results_dock.show()
    first.view_actions["Frequency spectrum"].setChecked(False)
    room = first.screen().availableGeometry()  # restoreGeometry keeps the window on its screen
    first.resize(min(1100, room.width() - 20), min(700, room.height() - 20))
    _spin(100)
    size = (first.width(), first.height())
    first.close()
    assert settings.value("layout/state") is not None
    second = make_window(settings)
    assert not second.history_dock.isVisible() and not second.history.isVisible()
    assert second.dockWidgetArea(second.results_dock) == Qt.RightDockWidgetArea and second.results_dock.isVisible()
    assert not second.view_actions["Frequency spectrum"].isChecked() and not second.spectrum.isVisible()
    second.restore_layout()  # the test fixture resized the window after it was made: apply the geometry again
    _spin(50)
    # restoreGeometry keeps a window on its screen (the offscreen one is 800 px wide), but never below the
    # window's own minimum width
    expected = max(min(size[0], room.width()), second.minimumSizeHint().width(), second.minimumWidth())
    assert abs(second.width() - expected) <= 4 and second.height() == size[1]
    second.reset_layout()
    assert second.history_dock.isVisible() and second.spectrum.isVisible()
    assert second.dockWidgetArea(second.results_dock) == Qt.BottomDockWidgetArea
