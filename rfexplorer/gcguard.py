"""Keep Python's cyclic garbage collector in the GUI thread while worker threads run.

CPython runs the cyclic collector in whichever thread happens to allocate when a threshold is crossed. While
a worker thread trains (allocating many small objects), that is usually the worker, and collecting a Qt
wrapper there destroys a GUI-thread Qt object from the wrong thread ("Timers cannot be started from another
thread", then a crash). So while a window is open, automatic collection is off and a GUI-thread timer collects
instead, with the interpreter's own thresholds (the technique of pyqtgraph.GarbageCollector, made reversible).
"""
from __future__ import annotations

import gc
from typing import Optional

from PySide6.QtCore import QObject, QTimer, Slot


class GuiThreadGC(QObject):
    _active = 0
    _was_enabled = True

    def __init__(self, parent: Optional[QObject] = None, interval_ms: int = 500) -> None:
        super().__init__(parent)
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.collect)
        self._running = False

    def start(self) -> None:
        if self._running:
            return
        if GuiThreadGC._active == 0:
            GuiThreadGC._was_enabled = gc.isenabled()
            gc.disable()
        GuiThreadGC._active += 1
        self._running = True
        self._timer.start()

    def stop(self) -> None:
        """Give collection back to the interpreter (once no window needs the guard); collect now, here."""
        if not self._running:
            return
        self._timer.stop()
        self._running = False
        GuiThreadGC._active -= 1
        if GuiThreadGC._active == 0 and GuiThreadGC._was_enabled:
            gc.enable()
        gc.collect()

    @Slot()
    def collect(self) -> None:
        thresholds = gc.get_threshold()
        counts = gc.get_count()
        generation = -1
        for g in range(3):
            if counts[g] > thresholds[g]:
                generation = g
        if generation >= 0:
            gc.collect(generation)
