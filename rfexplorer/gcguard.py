"""Keep Python's cyclic garbage collector in the GUI thread while worker threads run.

CPython runs the cyclic collector in whichever thread happens to allocate when a threshold is crossed. While
a worker thread trains (allocating many small objects), that is usually the worker, and collecting a Qt
wrapper there destroys a GUI-thread Qt object from the wrong thread ("Timers cannot be started from another
thread", then a crash). So while a window is open, automatic collection is off and a GUI-thread timer collects
instead, with the interpreter's own thresholds (the technique of pyqtgraph.GarbageCollector, made reversible).

A full collection scans every tracked object: with torch, Qt and pyqtgraph loaded that is about 240,000 and
0.4-0.8 s on 2 busy cores, in the GUI thread (the timer's, and the one at close: closing mid-run took 0.56-0.76 s,
most of it that). So the guard freezes what exists when it starts (``gc.freeze``: the imports, before the window
is built) and unfreezes it when it stops, after its last collection; the app also freezes the window's own
start-up objects once it is up (:func:`freeze_startup`, called by rfexplorer.app). Objects frozen are never
collected while frozen: what the start-up leaves as garbage waits until the guard stops.
"""
from __future__ import annotations

import gc
import time
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
            gc.freeze()  # what exists before the window (torch, Qt, pyqtgraph): out of the collections' sight
        GuiThreadGC._active += 1
        self._running = True
        self._timer.start()

    def stop(self) -> None:
        """Collect now, here (what the windows made; the frozen start-up objects are not scanned), then give
        collection back to the interpreter once no window needs the guard (the frozen objects too)."""
        if not self._running:
            return
        self._timer.stop()
        self._running = False
        GuiThreadGC._active -= 1
        gc.collect()
        if GuiThreadGC._active == 0:
            gc.unfreeze()
            if GuiThreadGC._was_enabled:
                gc.enable()

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


def freeze_startup() -> float:
    """Move every object alive now (the start-up's: torch, Qt, pyqtgraph, the window) to the collector's
    permanent generation (``gc.freeze``): later full collections (the guard's timer, the one at close) scan only
    the objects made since. Measured on 2 busy cores, a window mid-run: a full collection took 0.63-0.76 s
    (about 240,000 objects tracked), after the freeze under 1 ms, and closing mid-run 0.61 -> 0.35 s. No
    collection first (that alone took 0.9 s): what the start-up left as garbage waits until the guard stops
    (GuiThreadGC.stop unfreezes). Returns the seconds it took."""
    t0 = time.perf_counter()
    gc.freeze()
    return time.perf_counter() - t0
