"""engine.core.files: atomic writes that never leave a half-written file, strict JSON out, a guarded JSON reader."""
from __future__ import annotations

import json
import math
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.core import files

from engine.core import outputs
from engine.core.files import (JsonFileError, atomic_write_bytes, atomic_write_text, best_schema_error, dumps_json,
                          json_safe, read_json, schema_problem, strict_schema_validator)


def _temp_files(folder: Path) -> list:
    return [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]


# --- atomic writes ----------------------------------------------------------------------------------------

def test_atomic_write_replaces_and_leaves_no_temp_files(tmp_path):
    dest = tmp_path / "a.txt"
    assert atomic_write_text(dest, "first ✓") == dest
    atomic_write_text(dest, "second")
    assert dest.read_text(encoding="utf-8") == "second"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]
    atomic_write_bytes(tmp_path / "b.bin", b"\x00\x01")
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"


def test_atomic_write_respects_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        atomic_write_text(tmp_path / "m.txt", "x")
        with open(tmp_path / "plain.txt", "w") as fh:
            fh.write("x")
    finally:
        os.umask(old)
    mode = (tmp_path / "m.txt").stat().st_mode & 0o777
    assert mode == (tmp_path / "plain.txt").stat().st_mode & 0o777 == 0o640  # not mkstemp's 0600


@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_failed_write_keeps_the_destination(tmp_path, monkeypatch, failing):
    dest = tmp_path / "doc.json"
    dest.write_text("previous content")

    def boom(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(outputs.os, failing, boom)  # the writes live in engine.core.outputs
    with pytest.raises(OSError, match="No space"):
        atomic_write_text(dest, "new content")
    monkeypatch.undo()
    assert dest.read_text() == "previous content"
    assert _temp_files(tmp_path) == []


def test_write_into_a_missing_folder_fails_cleanly(tmp_path):
    with pytest.raises(FileNotFoundError):
        atomic_write_text(tmp_path / "no" / "such.txt", "x")


# --- JSON out ---------------------------------------------------------------------------------------------

def test_json_safe_makes_strict_json_values():
    value = {1: (1.5, float("nan"), float("inf")), "t": torch.tensor([1.0, 2.0]), "n": np.float32(0.5),
             "a": np.arange(3), "s": "x", "b": True, "z": None}
    assert json_safe(value) == {"1": [1.5, None, None], "t": [1.0, 2.0], "n": 0.5, "a": [0, 1, 2], "s": "x",
                                "b": True, "z": None}


def test_dumps_json_is_strict_and_compact_for_number_lists():
    doc = {"a": [1.0, float("nan"), 3], "nested": {"x": 1, "y": "é"}, "rows": [[0, 1, 0.1], [1, 2, 0.2]],
           "f32": float(torch.tensor(0.1, dtype=torch.float32))}
    text = dumps_json(doc)
    assert text.endswith("\n") and "NaN" not in text and "é" in text
    assert '"a": [1.0, null, 3]' in text and "[0, 1, 0.1]" in text
    back = json.loads(text, parse_constant=lambda c: pytest.fail(c))
    assert back["rows"] == [[0, 1, 0.1], [1, 2, 0.2]] and back["nested"] == {"x": 1, "y": "é"}
    assert torch.tensor(back["f32"], dtype=torch.float32) == torch.tensor(0.1, dtype=torch.float32)


def test_dumps_json_refuses_what_json_cannot_hold():
    with pytest.raises(TypeError):
        dumps_json({"bad": object()})


# --- JSON in ----------------------------------------------------------------------------------------------

def _one_sentence(exc: Exception) -> str:
    msg = str(exc)
    assert "\n" not in msg and msg.endswith(".") and msg[0].isupper() and len(msg) < 400, msg
    return msg


def test_read_json_reads_json(tmp_path):
    path = tmp_path / "x.json"
    path.write_text('{"a": [1, 2.5, null], "b": "ü"}', encoding="utf-8")
    assert read_json(path) == {"a": [1, 2.5, None], "b": "ü"}
    path.write_bytes(b"\xef\xbb\xbf[1]")  # a byte-order mark is fine
    assert read_json(path) == [1]


@pytest.mark.parametrize("content,expected", [
    (b"", "is empty"),
    (b" \n\t", "is empty"),
    (b"\xff\xfe\x00garbage", "not a UTF-8 text file"),
    (b'{"a": 1,', "looks truncated"),
    (b"{'a': 1}", "not valid JSON"),
    (b"[" * 100_000, "nests too deeply"),
    (b'{"k": 1, "k": 2}', "the key 'k' twice"),
    (b"PK\x03\x04rest", "zip archive"),
])
def test_read_json_refuses_what_is_not_json(tmp_path, content, expected):
    path = tmp_path / "x.json"
    path.write_bytes(content)
    with pytest.raises(JsonFileError) as info:
        read_json(path, what="sweep file")
    msg = _one_sentence(info.value)
    assert expected in msg and str(path) in msg


class _Trap:
    """Unpickling this would create a marker file (proves the reader never unpickles)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
def test_pickles_are_refused_and_never_unpickled(tmp_path, protocol):
    marker = tmp_path / "unpickled"
    path = tmp_path / "x.json"
    path.write_bytes(pickle.dumps({"trap": _Trap(marker)}, protocol=protocol))
    with pytest.raises(JsonFileError, match="pickle"):
        read_json(path)
    assert not marker.exists()


def test_read_json_size_limit_and_paths(tmp_path):
    path = tmp_path / "big.json"
    path.write_text(json.dumps(list(range(1000))))
    with pytest.raises(JsonFileError, match="limit") as info:
        read_json(path, max_bytes=100)
    _one_sentence(info.value)
    with pytest.raises(JsonFileError, match="is a folder"):
        read_json(tmp_path)
    with pytest.raises(JsonFileError, match="does not exist"):
        read_json(tmp_path / "missing.json")


def test_read_json_accepts_non_standard_constants_for_the_caller_to_check(tmp_path):
    path = tmp_path / "x.json"
    path.write_text('{"a": NaN, "b": 1e999}')
    doc = read_json(path)
    assert math.isnan(doc["a"]) and doc["b"] == math.inf


def test_read_json_raises_the_callers_error_class(tmp_path):
    class MyError(ValueError):
        pass

    with pytest.raises(MyError, match="The settings file .* does not exist"):
        read_json(tmp_path / "nope.json", what="settings file", error=MyError)
    assert issubclass(JsonFileError, ValueError)


def test_unreadable_file(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root can read files without permission")
    path = tmp_path / "x.json"
    path.write_text("{}")
    path.chmod(0)
    with pytest.raises(JsonFileError, match="cannot be read"):
        read_json(path)


# --- JSON Schema ------------------------------------------------------------------------------------------

SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["name", "points"],
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "points": {"type": "array", "items": {"type": "object", "required": ["x"],
                                              "properties": {"x": {"type": "number", "minimum": 0}},
                                              "additionalProperties": False}},
    },
    "additionalProperties": False,
}


@pytest.mark.parametrize("doc,expected", [
    ({"name": "a", "points": [{"x": 1}]}, None),
    ([], "its top level is a list where a JSON object was expected"),
    ({"points": []}, "the file has no 'name' entry"),
    ({"name": "", "points": []}, "name is an empty string"),
    ({"name": "a", "points": [{"x": 1}, {"x": -2}]}, "points[1].x is -2, out of range (must be >= 0)"),
    ({"name": "a", "points": [{"x": float("nan")}]}, "points[0].x is nan, not a finite number"),
    ({"name": "a", "points": [{"x": "1"}]}, "points[0].x must be a number, not a string"),
    ({"name": "a", "points": [{"x": 1, "y": 2}]}, "points[0] has an unknown entry 'y'"),
    ({"name": "a", "points": [], "extra": 1}, "the file has an unknown entry 'extra'"),
])
def test_schema_problems_are_worded_with_the_field(doc, expected):
    error = best_schema_error(strict_schema_validator(SCHEMA), doc)
    assert (error is None) if expected is None else schema_problem(error) == expected
