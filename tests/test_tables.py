"""engine.core.tables.write_csv: the one CSV writer (rows as dicts or sequences, exact floats, blanks for None)."""
from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import torch

from engine.core import outputs
from engine.core.tables import csv_text, write_csv


def _read(path):
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


def test_rows_as_dicts_and_sequences(tmp_path):
    path = write_csv(tmp_path / "t.csv", ["model", "k", "accuracy", "note"],
                     [{"model": "rf", "k": 10, "accuracy": 0.9125},
                      ["rigl", 5, None, "a, \"quoted\"\nnote"]])
    assert path == tmp_path / "t.csv"
    assert _read(path) == [["model", "k", "accuracy", "note"], ["rf", "10", "0.9125", ""],
                           ["rigl", "5", "", "a, \"quoted\"\nnote"]]
    assert path.read_text(encoding="utf-8").startswith("model,k,accuracy,note\nrf,10,0.9125,\n")


def test_floats_round_trip_exactly():
    values = [0.1, 1 / 3, float(torch.tensor(0.7, dtype=torch.float32)), 1e-300, -2.5e17]
    rows = list(csv.reader(csv_text(["v"], [[v] for v in values]).splitlines()))[1:]
    assert [float(r[0]) for r in rows] == values
    text = csv_text(["a", "b", "c"], [[math.nan, math.inf, -math.inf]])
    assert text.splitlines()[1] == "nan,inf,-inf"


def test_numpy_and_torch_scalars_lists_and_bools():
    text = csv_text(["a", "b", "c", "d", "e"], [[np.float64(0.1), np.int64(3), torch.tensor(2.5), [28, 28], True]])
    assert list(csv.reader(text.splitlines()))[1] == ["0.1", "3", "2.5", "[28, 28]", "True"]


def test_bad_rows_raise_and_write_nothing(tmp_path):
    dest = tmp_path / "t.csv"
    dest.write_text("old")
    with pytest.raises(ValueError, match="unknown column"):
        write_csv(dest, ["a"], [{"a": 1, "b": 2}])
    with pytest.raises(ValueError, match="2 values for 1 columns"):
        write_csv(dest, ["a"], [[1, 2]])
    with pytest.raises(ValueError, match="not unique"):
        write_csv(dest, ["a", "a"], [])
    assert dest.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["t.csv"]


def test_empty_table_has_a_header_and_generators_work(tmp_path):
    assert write_csv(tmp_path / "e.csv", ("x", "y"), []).read_text() == "x,y\n"
    path = write_csv(tmp_path / "g.csv", ("i",), ({"i": i} for i in range(3)))
    assert _read(path) == [["i"], ["0"], ["1"], ["2"]]


def test_write_is_atomic(tmp_path, monkeypatch):
    dest = tmp_path / "t.csv"
    dest.write_text("old")

    def boom(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(outputs.os, "replace", boom)  # the writes live in engine.core.outputs
    with pytest.raises(OSError):
        write_csv(dest, ["a"], [[1]])
    monkeypatch.undo()
    assert dest.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["t.csv"]
