"""The CSV reader of user dataset files: a .csv file's numbers parsed into float64 rows, bounded by
:mod:`engine.core.limits` while it is parsed (its record length before anything splits it, then its rows, columns and
bytes of numbers), and split into training and test sets by the fixed stratified rule. The layout and the rule
are described in :mod:`engine.data.user_files`, which opens the file (regular files only) and calls
:func:`read_csv`.
"""

from __future__ import annotations

import array
import csv
import io
import itertools
from pathlib import Path
from typing import Optional

import numpy as np

from engine.core.limits import ENV_PREFIX, FileLimits
from engine.data.arrays import check_features, check_labels, dataset_from_arrays, display_text, file_error, over_limit
from engine.data.dataset import CSV_TEST_EVERY, Dataset, PathLike

#: Characters one CSV record may have per column it is allowed (see :func:`_csv_records`).
CSV_CHARS_PER_COLUMN = 32
#: Lines of a .csv file parsed together by numpy's fast reader (see :func:`_csv_table`).
CSV_CHUNK_LINES = 8192


class _CsvRows:
    """Numeric CSV rows gathered into float64 blocks (8 bytes a number), bounded by the limits as they come."""

    def __init__(self, path: PathLike, limits: FileLimits):
        self.path, self.limits = path, limits
        self.blocks: list[np.ndarray] = []
        self.pending: list[list[float]] = []
        self.lines = array.array("q")
        self.header: Optional[bool] = None
        self.width = self.ref_line = 0

    def add(self, line_num: int, fields: list[str]) -> None:
        """One record as the csv module split it (the first one may be a header)."""
        path = self.path
        if not any(f.strip() for f in fields):
            return
        if self.header is None:  # the first row: a header unless it is all numbers
            self.header = not all(_is_float(f) for f in fields)
            self.width, self.ref_line = len(fields), line_num
            if self.width - 1 > self.limits.max_features:
                raise over_limit(
                    path,
                    f"has {self.width - 1:,} feature columns at line {line_num}",
                    "max_features",
                    self.limits.max_features,
                )
            if self.header:
                return
        try:
            values = [float(f) for f in fields]
        except ValueError:
            c = next(i for i, f in enumerate(fields) if not _is_float(f))
            raise file_error(
                path, f"has {fields[c].strip()[:40]!r} at line {line_num}, column {c + 1}, which is not a number"
            ) from None
        if len(fields) != self.width:
            raise file_error(
                path, f"has {len(fields)} columns at line {line_num} but {self.width} at line {self.ref_line}"
            )
        self.pending.append(values)
        self.lines.append(line_num)
        self._bound(line_num)
        if len(self.pending) * self.width >= 1 << 16:
            self._flush()

    def add_block(self, block: np.ndarray, first_line: int) -> None:
        """Rows parsed by numpy from consecutive lines starting at ``first_line`` (no blank line among them)."""
        self._flush()
        self.blocks.append(block)
        self.lines.extend(range(first_line, first_line + len(block)))
        self._bound(first_line + len(block) - 1)

    def _bound(self, line_num: int) -> None:
        limits, most_rows = self.limits, 2 * self.limits.max_samples  # a training and a test split
        if len(self.lines) > most_rows:
            raise over_limit(
                self.path,
                f"has more than {most_rows:,} rows (two splits of max_samples)",
                "max_samples",
                limits.max_samples,
            )
        if len(self.lines) * self.width * 8 > limits.max_array_bytes:
            raise over_limit(
                self.path,
                f"has more than {limits.max_array_bytes:,} bytes of numbers by line {line_num}",
                "max_array_bytes",
                limits.max_array_bytes,
            )

    def _flush(self) -> None:
        if self.pending:
            self.blocks.append(np.asarray(self.pending, dtype=np.float64))
            self.pending = []

    def table(self) -> tuple[np.ndarray, np.ndarray]:
        self._flush()
        if not self.blocks:
            raise file_error(self.path, "has no samples")
        if self.width < 2:
            raise file_error(
                self.path, "has a single column, but it needs features and then the label in the last column"
            )
        return np.concatenate(self.blocks), np.frombuffer(self.lines, dtype=np.int64)


def _csv_lines(path: PathLike, text: io.TextIOBase, limits: FileLimits, state: dict):
    """The lines of ``text``; one record (the caller resets ``state["chars"]`` after each) may have at most
    :data:`CSV_CHARS_PER_COLUMN` characters per column that max_features allows, counted *before* anything
    splits it, so a huge line is refused without building millions of fields."""
    most = CSV_CHARS_PER_COLUMN * (limits.max_features + 1)
    while True:
        line = text.readline(most + 1 - state["chars"])
        if not line:
            return
        state["chars"] += len(line)
        state["line"] += 1
        if state["chars"] > most:
            raise file_error(
                path,
                f"has a record of more than {most:,} characters at line {state['line']} (at most "
                f"{CSV_CHARS_PER_COLUMN} per column of the limit max_features = "
                f"{limits.max_features:,}; set {ENV_PREFIX}MAX_FEATURES to raise it)",
            )
        yield line


def _csv_records(path: PathLike, lines, state: dict, rows: _CsvRows, offset: int, first_only: bool) -> None:
    """Parse ``lines`` with the csv module into ``rows`` (``offset``: lines before them); with ``first_only``,
    stop after the first non-blank record (the csv reader takes no line beyond the record it returns)."""
    reader = csv.reader(lines)
    try:
        for fields in reader:
            state["chars"] = 0
            rows.add(offset + reader.line_num, fields)
            if first_only and rows.header is not None:
                return
    except csv.Error as exc:
        raise file_error(path, f"is not valid CSV at line {offset + reader.line_num} ({exc})") from None


def _csv_table(path: PathLike, text: io.TextIOBase, limits: FileLimits) -> tuple[np.ndarray, np.ndarray]:
    """(float64 table, line number of each row) of the CSV ``text``. The first record goes through the csv
    module (it may be a header); then chunks of plain numeric lines go through numpy's C reader, and any chunk
    it does not take exactly (blank lines, a bad number, ragged rows) through the csv module, so messages and
    values are the same either way; from the first quote character on, all of it goes through the csv module
    (a quoted field may span lines)."""
    state = {"chars": 0, "line": 0}
    lines = _csv_lines(path, text, limits, state)
    rows = _CsvRows(path, limits)
    _csv_records(path, lines, state, rows, 0, first_only=True)
    while True:
        chunk: list[str] = []
        for line in lines:
            state["chars"] = 0
            chunk.append(line)
            if len(chunk) == CSV_CHUNK_LINES:
                break
        if not chunk:
            return rows.table()
        first = state["line"] - len(chunk) + 1
        if any('"' in line for line in chunk):
            _csv_records(path, itertools.chain(chunk, lines), state, rows, first - 1, first_only=False)
            return rows.table()
        block = None
        if all(line.strip() for line in chunk):
            try:
                block = np.loadtxt(chunk, delimiter=",", dtype=np.float64, comments=None, ndmin=2)
            except ValueError:
                block = None
        if block is not None and block.shape == (len(chunk), rows.width):
            rows.add_block(block, first)
        else:
            _csv_records(path, iter(chunk), state, rows, first - 1, first_only=False)


def read_csv(path: Path, fh: io.BufferedReader, size: int, limits: FileLimits) -> Dataset:
    """The dataset of the .csv file ``path``, already opened as ``fh`` (which this closes) and ``size`` bytes
    long on disk (see :mod:`engine.data.user_files` for the layout and the split rule)."""
    with fh:
        if size > limits.max_csv_bytes:
            raise over_limit(path, f"has {size:,} bytes", "max_csv_bytes", limits.max_csv_bytes)
        text = io.TextIOWrapper(fh, encoding="utf-8-sig")
        try:
            table, lines = _csv_table(path, text, limits)
        except UnicodeDecodeError:
            raise file_error(path, "is not a UTF-8 text file") from None
        except OSError as exc:
            raise file_error(path, f"cannot be read ({exc.strerror or exc})") from None
    x = table[:, :-1]

    def line_where(r: int, c: Optional[int]) -> str:  # a Where: the file's own line numbers
        return f"line {lines[r]}, column {c + 1}" if c is not None else f"line {lines[r]}, last column"

    check_features(path, x, "the features", line_where)
    y = check_labels(path, table[:, -1], "the labels", line_where)
    test = np.zeros(len(y), dtype=bool)
    for c in np.unique(y):
        members = np.flatnonzero(y == c)
        test[members[CSV_TEST_EVERY - 1 :: CSV_TEST_EVERY]] = True
    if not test.any():
        raise file_error(
            path,
            f"has too few samples for a test set: every {CSV_TEST_EVERY}th sample of each class is "
            f"held out for testing, and no class has {CSV_TEST_EVERY}",
        )
    tr, te = np.flatnonzero(~test), np.flatnonzero(test)
    train_x, test_x = x[tr], x[te]
    del table, x  # the whole table is no longer needed: free it before scaling
    rule = f"every {CSV_TEST_EVERY}th sample of each class held out as the test set"
    return dataset_from_arrays(
        path,
        display_text(path.name),
        train_x,
        y[tr],
        test_x,
        y[te],
        keys=("train_x", "train_y", "test_x", "test_y"),
        source=f"{display_text(str(path.resolve()))} ({rule})",
        limits=limits,
    )


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


__all__ = ["CSV_CHARS_PER_COLUMN", "CSV_CHUNK_LINES", "read_csv"]
