"""Entry point of the desktop app: ``rfexplorer`` (or ``python -m rfexplorer.app``).

Options (for demos and smoke tests): ``--train`` starts a run with the default settings as soon as the dataset
is loaded; ``--quit-after SECONDS`` closes the window after that long (a run in progress is cancelled cleanly;
with ``--train``, counted from the run's start, so that the window closes mid-run however long the engine
process took to start and load the dataset).
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Optional, Sequence


def torch_threads() -> int:
    """Intra-op threads for torch: leave one core to the GUI."""
    return max(1, min(4, (os.cpu_count() or 2) - 1))


def configure_runtime() -> None:
    """Process-wide settings of the app, before any torch op: torch's thread count."""
    import torch

    torch.set_num_threads(torch_threads())


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="rfexplorer", description="Visual explorer for RF spintronic neural networks")
    p.add_argument("--train", action="store_true", help="start a training run at start-up")
    p.add_argument("--quit-after", type=float, default=None, metavar="SECONDS",
                   help="close the window after this many seconds (with --train: after the run started)")
    return p.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    configure_runtime()  # once, before any torch op

    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtGui import QIcon
    from PySide6.QtWidgets import QApplication

    from . import __version__, theme
    from .main_window import ICON_PATH, MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
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
