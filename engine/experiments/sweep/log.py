"""The row log of a sweep folder (``rows.jsonl``) and resuming from it.

:class:`RowLog` appends each finished row as one JSON line, flushed and fsynced; :func:`read_rows_log` reads
the rows back (skipping a line cut short by a crash); :func:`finished_rows` says which planned runs already
have a successful row with the same resolved settings (:func:`engine.experiments.sweep.spec.settings_key`) and the same
data (:func:`dataset_identity`). Used by :func:`engine.experiments.sweep.runner.run_sweep` and the hardware study.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

from engine.config.run_config import RunConfig
from engine.core.files import json_safe, open_nofollow, read_bytes_nofollow
from engine.experiments.sweep.spec import canonical_text, settings_key
from engine.io.results import ResultRow, dataset_record

#: The row log of a sweep folder: one finished run per line, appended as runs finish.
ROWS_FILE = "rows.jsonl"

#: The parts of :func:`engine.io.results.dataset_record` that identify the data (not where it was read from).
_DATASET_IDENTITY = ("name", "n_inputs", "n_classes", "n_train", "n_test", "class_names", "image_shape", "scaling")


def dataset_identity(record: dict) -> str:
    record = record or {}
    return canonical_text({k: record.get(k) for k in _DATASET_IDENTITY})


def read_rows_log(path) -> tuple[list[dict], list[str]]:
    """The rows of a ``rows.jsonl`` file and notes about lines that were skipped (a last line cut short by a
    crash, or a line that is not a JSON object). A missing file gives no rows; a symbolic link is refused
    (:class:`engine.core.files.UnsafeOutputError`), never followed."""
    path = Path(path)
    try:
        data = read_bytes_nofollow(path)
    except FileNotFoundError:
        return [], []
    rows: list[dict] = []
    notes: list[str] = []
    lines = data.split(b"\n")
    complete = data.endswith(b"\n")
    last = len(lines) - (2 if complete else 1)  # index of the last non-empty-by-position line
    for i, raw in enumerate(lines):
        if not raw.strip():
            continue
        try:
            row = json.loads(raw.decode("utf-8"))
            if not isinstance(row, dict):
                raise ValueError("not a JSON object")
        except (ValueError, UnicodeDecodeError):
            where = "last line" if i >= last else f"line {i + 1}"
            notes.append(f"ignored the {where} of {path} (incomplete or not a result row)")
            continue
        rows.append(row)
    return rows, notes


class RowLog:
    """Appends rows to a ``rows.jsonl`` file, one JSON line each, flushed and fsynced before returning, so an
    interrupted sweep loses no finished row and never leaves a half-written line behind a complete one. The file
    is opened once, with O_NOFOLLOW: a symbolic link planted in its place is refused
    (:class:`engine.core.files.UnsafeOutputError`), so nothing outside the output folder is ever written."""

    def __init__(self, path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = open_nofollow(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT)
        try:
            self._repair_tail(fd)
        except BaseException:
            os.close(fd)
            raise
        self._file = os.fdopen(fd, "ab")

    def _repair_tail(self, fd: int) -> None:
        """A last line without its newline (a crash mid-write) is cut off, or ended if it is a whole row,
        so the next row starts on a line of its own."""
        size = os.fstat(fd).st_size
        if size == 0:
            return
        start = max(0, size - (1 << 16))
        while True:  # read back from the end until the last newline (or the start) is in view
            os.lseek(fd, start, os.SEEK_SET)
            data = b""
            while len(data) < size - start:
                chunk = os.read(fd, size - start - len(data))
                if not chunk:
                    break
                data += chunk
            if data.endswith(b"\n"):
                return
            if b"\n" in data or start == 0:
                break
            start = max(0, start - (1 << 20))
        cut = data.rfind(b"\n") + 1
        try:
            ok = isinstance(json.loads(data[cut:].decode("utf-8")), dict)
        except (ValueError, UnicodeDecodeError):
            ok = False
        if ok:
            os.write(fd, b"\n")  # O_APPEND: at the end
        else:
            os.ftruncate(fd, start + cut)
        os.fsync(fd)

    def append(self, row: dict) -> None:
        line = json.dumps(json_safe(row), allow_nan=False, separators=(",", ":")) + "\n"
        self._file.write(line.encode("utf-8"))
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()

    def __enter__(self) -> "RowLog":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _is_done(row: dict) -> bool:
    try:
        return ResultRow.from_dict(row).ok
    except (TypeError, ValueError):  # not a result row
        return False


def finished_rows(jobs: Sequence[RunConfig], logged: Sequence[dict], dataset) -> dict[int, dict]:
    """Which of ``jobs`` already have a successful row in ``logged`` with the same resolved settings and the
    same dataset: {job index: row} (the last matching row wins)."""
    wanted = dataset_identity(dataset_record(dataset))
    by_key: dict[str, dict] = {}
    for row in logged:
        if not _is_done(row) or not isinstance(row.get("config"), dict):
            continue
        if dataset_identity(row.get("dataset_info") or {}) != wanted:
            continue
        try:  # a row written before a setting existed records no value for it: its default applies
            key = settings_key(RunConfig.from_dict(row["config"]))
        except (TypeError, ValueError):
            key = canonical_text(row["config"])
        by_key[key] = row
    found = {}
    for i, cfg in enumerate(jobs):
        done = by_key.get(settings_key(cfg))
        if done is not None:
            found[i] = done
    return found


__all__ = ["ROWS_FILE", "RowLog", "dataset_identity", "finished_rows", "read_rows_log"]
