"""Every modal dialog the app opens goes through here: message boxes and file choosers.

One place makes them easy to replace in tests and scripts (patch ``QMessageBox`` / ``QFileDialog`` in this
module) and keeps their wording and filters consistent.
"""
from __future__ import annotations

from typing import Optional

from PySide6.QtWidgets import QFileDialog, QMessageBox


def information(parent, title: str, text: str) -> None:
    QMessageBox.information(parent, title, text)


def warning(parent, title: str, text: str) -> None:
    QMessageBox.warning(parent, title, text)


def critical(parent, title: str, text: str) -> None:
    QMessageBox.critical(parent, title, text)


def about(parent, title: str, text: str) -> None:
    QMessageBox.about(parent, title, text)


def save_file(parent, title: str, default: str, filters: str) -> Optional[str]:
    """A path chosen to save to, or None if the dialog was cancelled."""
    path, _ = QFileDialog.getSaveFileName(parent, title, default, filters)
    return path or None


def open_file(parent, title: str, filters: str, folder: str = "") -> Optional[str]:
    """A file chosen to open, or None if the dialog was cancelled."""
    path, _ = QFileDialog.getOpenFileName(parent, title, folder, filters)
    return path or None


def open_folder(parent, title: str, folder: str = "") -> Optional[str]:
    path = QFileDialog.getExistingDirectory(parent, title, folder)
    return path or None
