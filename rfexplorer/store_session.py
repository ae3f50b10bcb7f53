"""The session kept across restarts through the run store (engine.io.store).

Every run the app finishes (a single run, with its trained network, or a sweep row) is recorded with source
"app"; at launch the app's runs recorded since the session was last cleared are reloaded into the session (the
newest :data:`RELOAD_LIMIT`). All store work runs on one background thread, never the GUI thread; results come
back through a queued signal to a slot. ``RFEXPLORER_STORE`` names another store (a path or database URL), and
``off`` turns recording and reloading off.
"""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Optional

from PySide6.QtCore import QObject, QSettings, Signal, Slot

from engine.io.store import RunStore, StoreError, open_store, store_disabled

#: The app's runs reloaded at launch, at most (the newest).
RELOAD_LIMIT = 2000
#: QSettings key: the id of the newest run when the session was last cleared (runs up to it are not reloaded).
CLEARED_KEY = "store/cleared_after"
#: Session sources recorded in the store (imported files and reloaded runs are not recorded again).
RECORDED_SOURCES = ("run", "sweep")


class StoreSession(QObject):
    """Records the session's finished runs and reloads them at launch, on one worker thread."""

    #: (callback, result) from the worker, delivered to the GUI thread
    _done = Signal(object, object)
    #: the number of runs reloaded into the session at launch
    reloaded = Signal(int)
    #: a run was recorded: its id in the store
    recorded = Signal(int)

    def __init__(self, session, settings: QSettings, status: Callable[[str, str], None],
                 parent: Optional[QObject] = None) -> None:
        super().__init__(parent)
        self.session, self.settings, self.status = session, settings, status
        self.enabled = not store_disabled()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="run-store")
        self._store: Optional[RunStore] = None
        self._lock = threading.Lock()
        self._failed = False
        self.pending = 0  #: store calls submitted and not yet delivered
        self.reloaded_count: Optional[int] = None  #: runs reloaded at launch (None until the store answered)
        self._done.connect(self._deliver)
        session.added.connect(self.on_point_added)
        session.cleared.connect(self.on_cleared)

    # --- the worker side ------------------------------------------------------------------------------------
    def store(self) -> RunStore:
        """The store, opened on first use (worker thread)."""
        with self._lock:
            if self._store is None:
                self._store = open_store(None)
            return self._store

    def call(self, fn: Callable[[RunStore], Any], on_done: Callable[[Any], None],
             on_error: Optional[Callable[[str], None]] = None) -> bool:
        """Run ``fn(store)`` on the worker; ``on_done(result)`` (or ``on_error(message)``) follows in the GUI
        thread. False when the store is off or was found unusable."""
        if not self.enabled or self._failed:
            return False
        self.pending += 1

        def work() -> None:
            try:
                result: Any = fn(self.store())
            except (StoreError, OSError, ValueError) as exc:  # one sentence for the user, never a crash
                self._done.emit(on_error or self._on_error, str(exc))
                return
            self._done.emit(on_done, result)

        self._pool.submit(work)
        return True

    @Slot(object, object)
    def _deliver(self, callback, result) -> None:
        self.pending -= 1
        callback(result)

    def _on_error(self, message: str) -> None:
        if not self._failed:
            self._failed = True
            self.status(f"The run store cannot be used, so runs are not kept: {message}", "error")

    def shutdown(self) -> None:
        """On close: finish what was submitted (each call is one short transaction), then close the store."""
        self._pool.shutdown(wait=True)
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None

    # --- reloading --------------------------------------------------------------------------------------------
    def start(self) -> None:
        """Reload the app's runs recorded since the session was last cleared (newest RELOAD_LIMIT)."""
        after = self.settings.value(CLEARED_KEY, 0)
        try:
            after = int(after)
        except (TypeError, ValueError):
            after = 0

        def load(store: RunStore) -> list:
            records = store.list({"source": "app"}, RELOAD_LIMIT, full=True, after=after)
            return [r.to_row() for r in reversed(records)]

        self.call(load, self._on_loaded)

    def _on_loaded(self, rows: list) -> None:
        if rows:
            self.session.add_rows(rows, "stored")
            self.status(f"Reloaded {len(rows)} run(s) of earlier sessions from the run store.", "ok")
        self.reloaded_count = len(rows)
        self.reloaded.emit(len(rows))

    # --- recording --------------------------------------------------------------------------------------------
    @Slot(object)
    def on_point_added(self, point) -> None:
        """A finished run joined the session: record it (a single run with its trained network)."""
        if point.source not in RECORDED_SOURCES:
            return
        item: Any = point.row
        if point.network is not None:  # with its trained network, recorded as a topology
            item = point.run_result()
            item.epoch_metrics = list(point.row.epoch_metrics)
        self.call(lambda store: store.record(item, source="app"), self.recorded.emit)

    @Slot()
    def on_cleared(self) -> None:
        """Clearing the session: the runs recorded so far are not reloaded at the next launch (they stay in the
        store, for the Runs browser and ``rfexplorer-cli runs``)."""

        def newest(store: RunStore) -> int:
            records = store.list(limit=1)
            return records[0].id if records else 0

        self.call(newest, self._on_newest)

    def _on_newest(self, run_id: int) -> None:
        self.settings.setValue(CLEARED_KEY, int(run_id))
        self.settings.sync()
