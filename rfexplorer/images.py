"""PNG output of widgets and pixmaps, written atomically (engine.core.files.atomic_write_bytes)."""
from __future__ import annotations

import os
from pathlib import Path


def save_pixmap_png(pixmap, path: str | os.PathLike) -> Path:
    """Encode a QPixmap as PNG and write it atomically."""
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice

    from engine.core.files import atomic_write_bytes

    data = QByteArray()
    buf = QBuffer(data)
    buf.open(QIODevice.OpenModeFlag.WriteOnly)
    if not pixmap.save(buf, "PNG"):
        raise OSError(f"could not encode a PNG for {path}")
    buf.close()
    return atomic_write_bytes(path, bytes(data.data()))


def save_widget_png(widget, path: str | os.PathLike) -> Path:
    """Grab a widget (works offscreen) and write it as PNG atomically."""
    return save_pixmap_png(widget.grab(), path)
