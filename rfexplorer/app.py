"""Entry point of the desktop app: ``rfexplorer`` (or ``python -m rfexplorer.app``).

Options (for demos and smoke tests): ``--train`` starts a run with the default settings as soon as the dataset
is loaded; ``--quit-after SECONDS`` closes the window after that long (a run in progress is cancelled cleanly;
with ``--train``, counted from the run's start, so that the window closes mid-run however long the engine
process took to start and load the dataset); ``--quit-when-done`` (with ``--train``) closes it when the run
ends. Every run that ends prints one line on stderr (``rfexplorer: run finished: ...``).

Start-up: the engine process is started first (:func:`start_engine_early`), so that it imports torch and warms
the optimizer up while this process imports Qt and builds the window; once the window is up, the objects made so
far are frozen out of the garbage collector's sight (:func:`freeze_startup_objects`).

Start-up checks: before the QApplication exists, :func:`rfexplorer.platform_check.preflight` checks that Qt's
platform plugin can load (on X11: the xcb plugin's system libraries); if not, the app exits with status 2 and
one sentence naming the missing libraries and the commands that install them. ``--check`` prints the whole
checklist (engine and Qt) and exits non-zero when something needed is missing; ``--install-desktop-entry`` /
``--uninstall-desktop-entry`` add or remove the app in the user's application menu.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Optional, Sequence


def torch_threads() -> int:
    """Intra-op threads for torch: leave one core to the GUI."""
    return max(1, min(4, (os.cpu_count() or 2) - 1))


def start_engine_early() -> None:
    """Start the engine process first thing (rfexplorer.worker.prestart), before this process imports torch and
    Qt and builds the window: it imports torch and warms the optimizer up meanwhile, so a run started as soon as
    the window shows waits less. Without Qt's libraries nothing starts here (the window reports that)."""
    try:
        from .worker import prestart
    except ImportError:
        return
    prestart(torch_threads())


def freeze_startup_objects() -> None:
    """Once the window is up: move every object made so far (torch, Qt, pyqtgraph, the window) out of the
    collector's sight (rfexplorer.gcguard.freeze_startup), so later full collections scan only what came since."""
    from .gcguard import freeze_startup

    freeze_startup()


def configure_runtime() -> None:
    """Process-wide settings of the app, before any torch op: torch's thread count."""
    import torch

    torch.set_num_threads(torch_threads())


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="rfexplorer", description="Visual explorer for RF spintronic neural networks")
    p.add_argument("--train", action="store_true", help="start a training run at start-up")
    p.add_argument("--quit-after", type=float, default=None, metavar="SECONDS",
                   help="close the window after this many seconds (with --train: after the run started)")
    p.add_argument("--quit-when-done", action="store_true",
                   help="with --train: close the window when the run has ended")
    p.add_argument("--check", action="store_true",
                   help="print a checklist of what the app needs (Python, torch, Qt platform libraries, "
                        "datasets, ...) and exit (status 1 when something needed is missing)")
    entry = p.add_mutually_exclusive_group()
    entry.add_argument("--install-desktop-entry", action="store_true",
                       help="add rfexplorer to your application menu (files under $XDG_DATA_HOME) and exit")
    entry.add_argument("--uninstall-desktop-entry", action="store_true",
                       help="remove what --install-desktop-entry added and exit")
    args = p.parse_args(argv)
    if args.quit_when_done and not args.train:
        p.error("--quit-when-done needs --train")
    return args


def check() -> int:
    """``rfexplorer --check``: the engine's checklist and the app's Qt checks on stdout."""
    from engine.experiments.doctor import exit_status, format_checklist, run_checks

    from .platform_check import qt_checks

    checks = run_checks() + qt_checks()
    print(format_checklist(checks), flush=True)
    return exit_status(checks)


def preflight() -> Optional[int]:
    """Exit status 2 (after one sentence on stderr) when Qt's platform plugin cannot load; None when it can."""
    from .platform_check import preflight as why_not

    problem = why_not()
    if problem is None:
        return None
    print(problem, file=sys.stderr, flush=True)
    return 2


def _report_run_end(window, quit_when_done: bool) -> None:
    """One line on stderr when a run ends; with ``quit_when_done``, close the window then."""
    def ended(text: str) -> None:
        print(f"rfexplorer: run {text}", file=sys.stderr, flush=True)
        if quit_when_done:
            window.close()

    controller = window.controller
    controller.run_finished.connect(lambda r: ended(
        f"finished: test accuracy {100 * r.test_accuracy:.2f}% after {r.epochs_completed} epochs "
        f"({r.train_seconds:.1f} s)"))
    controller.run_cancelled.connect(lambda r, why: ended(f"cancelled: {why}"))
    controller.run_failed.connect(lambda msg: ended(f"failed: {msg}"))


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.install_desktop_entry or args.uninstall_desktop_entry:
        from .desktop_entry import main as desktop_entry

        return desktop_entry("install" if args.install_desktop_entry else "uninstall")
    if args.check:
        return check()
    widgets = sys.modules.get("PySide6.QtWidgets")  # already imported: maybe a QApplication exists (tests)
    if widgets is None or widgets.QApplication.instance() is None:
        status = preflight()
        if status is not None:
            return status
    start_engine_early()  # before torch, Qt and the window: the engine process imports torch meanwhile
    configure_runtime()  # once, before any torch op

    try:
        from PySide6.QtCore import QSettings, QTimer
        from PySide6.QtGui import QIcon
        from PySide6.QtWidgets import QApplication
    except ImportError as exc:  # Qt's own libraries need system ones too (libGL, libEGL, fontconfig, ...)
        from .platform_check import import_error_sentence

        print(import_error_sentence(exc), file=sys.stderr, flush=True)
        return 2

    from . import __version__, theme
    from .main_window import ICON_PATH, MainWindow

    # argv[0] "rfexplorer" (not app.py under python -m): the X11 WM_CLASS instance name, as in the desktop entry
    app = QApplication.instance() or QApplication(["rfexplorer"])
    app.setApplicationName("rfexplorer")
    app.setOrganizationName("rfexplorer")
    app.setApplicationVersion(__version__)
    app.setDesktopFileName("rfexplorer")
    if ICON_PATH.is_file():
        app.setWindowIcon(QIcon(str(ICON_PATH)))
    theme.apply_theme(app)

    window = MainWindow(QSettings("rfexplorer", "rfexplorer"))
    app.aboutToQuit.connect(window.controller.shutdown)
    window.show()
    QTimer.singleShot(0, freeze_startup_objects)  # once the window is up
    _report_run_end(window, args.quit_when_done)
    if args.train:
        def train_once(_info) -> None:
            window.datasets.changed.disconnect(train_once)
            window.runs.start_from_controls()

        window.datasets.changed.connect(train_once)
    if args.quit_after is not None:
        delay_ms = int(1000 * args.quit_after)
        if args.train:
            def close_later(_cfg) -> None:
                window.controller.run_started.disconnect(close_later)
                QTimer.singleShot(delay_ms, window.close)

            window.controller.run_started.connect(close_later)
        else:
            QTimer.singleShot(delay_ms, window.close)
    return int(app.exec())


if __name__ == "__main__":
    sys.exit(main())
