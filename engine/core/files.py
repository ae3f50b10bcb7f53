"""Files the engine writes and reads: atomic writes, strict JSON out, a guarded JSON reader in.

Writes never leave a half-written file behind and never go through a symbolic link: the write side lives in
:mod:`engine.core.outputs` (atomic writes alone or as a group, O_NOFOLLOW opens, temporary-file clean-up, checks
before long work) and is re-exported here.

JSON is written strictly (no NaN or Infinity: non-finite floats become ``null``) and read with :mod:`json`
only, after checks that refuse folders, oversized files, pickles and zip archives (``torch.save``
checkpoints) with one plain sentence. Nothing here ever unpickles anything. Parsed documents are checked
against a JSON Schema (draft 2020-12, with ``jsonschema``) by :func:`strict_schema_validator` and
:func:`best_schema_error`, and :func:`schema_problem` words an error as one sentence naming the field.
"""

from __future__ import annotations

import gc
import json
import math
import os  # noqa: F401 - tests/test_files.py and test_tables.py patch engine.core.files.os
from pathlib import Path
from typing import Any

from engine.core.outputs import (
    STALE_TEMP_SECONDS,
    TEMP_SUFFIX,
    OutputPathError,
    PathLike,
    UnsafeOutputError,
    atomic_write_bytes,
    atomic_write_files,
    atomic_write_text,
    check_output_file,
    check_output_folder,
    clean_stale_temps,
    open_nofollow,
    read_bytes_nofollow,
    refuse_symlink,
    remove_live_temps,
)

#: Default size limit of :func:`read_json` (bytes).
DEFAULT_MAX_JSON_BYTES = 200 * 1024 * 1024


class JsonFileError(ValueError):
    """A JSON file is missing, unreadable, too large or not JSON; the message is one sentence."""


# ---------------------------------------------------------------------------------------------------------
# JSON out
# ---------------------------------------------------------------------------------------------------------


def json_safe(value: Any) -> Any:
    """A copy of ``value`` that strict JSON can hold: non-finite floats become None, tuples become lists,
    dict keys become strings, tensors and numpy scalars/arrays become Python numbers and lists."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, "tolist") and hasattr(value, "dtype"):  # torch tensors, numpy arrays and scalars
        return json_safe(value.tolist())
    return value


_SCALARS = (str, int, float, bool, type(None))


def _is_flat(value: Any) -> bool:
    """A scalar, a list of scalars, or an object whose values are scalars or lists of scalars (one line)."""
    if isinstance(value, _SCALARS):
        return True
    if isinstance(value, list):
        return all(isinstance(v, _SCALARS) for v in value)
    if not isinstance(value, dict):
        return True  # json.dumps rejects it with a TypeError
    return all(
        isinstance(v, _SCALARS) or (isinstance(v, list) and all(isinstance(x, _SCALARS) for x in v))
        for v in value.values()
    )


def _dump(value: Any, indent: int, out: list) -> None:
    if _is_flat(value):
        out.append(json.dumps(value, allow_nan=False, ensure_ascii=False))
        return
    pad, inner = " " * indent, " " * (indent + 1)
    if isinstance(value, dict):
        out.append("{\n")
        for n, (k, v) in enumerate(value.items()):
            out.append(f"{inner}{json.dumps(str(k), ensure_ascii=False)}: ")
            _dump(v, indent + 1, out)
            out.append(",\n" if n < len(value) - 1 else "\n")
        out.append(pad + "}")
    else:
        out.append("[\n")
        for n, v in enumerate(value):
            out.append(inner)
            _dump(v, indent + 1, out)
            out.append(",\n" if n < len(value) - 1 else "\n")
        out.append(pad + "]")


def dumps_json(doc: Any) -> str:
    """Strict JSON text (no NaN/Infinity, UTF-8) of ``json_safe(doc)``, ending in a newline: objects and lists
    of objects are indented one space per level, number lists and flat records stay on one line.

    Raises TypeError for values JSON cannot hold (before anything is written)."""
    out: list = []
    _dump(json_safe(doc), 0, out)
    return "".join(out) + "\n"


# ---------------------------------------------------------------------------------------------------------
# JSON in
# ---------------------------------------------------------------------------------------------------------


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _no_duplicates(pairs: list) -> dict:
    out: dict = {}
    for k, v in pairs:
        if k in out:
            raise _DuplicateKey(k)
        out[k] = v
    return out


def _mb(n: int) -> str:
    return f"{n / 2**20:.0f} MB" if n >= 2**20 else f"{n} bytes"


def read_json(
    path: PathLike, *, what: str = "JSON file", max_bytes: int = DEFAULT_MAX_JSON_BYTES, error: type = JsonFileError
) -> Any:
    """Read and parse a JSON file with :mod:`json` only, after guarding against what is not one.

    ``what`` names the file in messages ("topology file", "sweep file"); ``error`` is the exception class
    raised (a subclass of ValueError, called with one sentence), :class:`JsonFileError` by default.

    Refused, each with one sentence: a missing or unreadable path, a folder, anything that is not a regular
    file, a file larger than ``max_bytes`` (checked before reading, and again while reading), an empty file,
    a Python pickle or a zip archive (such as a ``torch.save`` checkpoint: never loaded), bytes that are not
    UTF-8 text, text that is not JSON (truncated files are named as such), an object with the same key twice,
    and nesting too deep to parse. Python's reader accepts the non-standard constants NaN and Infinity; they
    come back as floats, and it is up to the caller's validation to refuse them.
    """
    path = Path(path)
    name = str(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise error(f"The {what} {name} does not exist.") from None
    except OSError as exc:
        raise error(f"The {what} {name} cannot be read ({exc.strerror or exc}).") from None
    if path.is_dir():
        raise error(f"The path {name} is a folder, not a {what}.")
    if not path.is_file():
        raise error(f"The path {name} is not a regular file, so it cannot be a {what}.")
    if st.st_size > max_bytes:
        raise error(
            f"The {what} {name} is {_mb(st.st_size)}, larger than the {_mb(max_bytes)} limit, so it was not read."
        )
    if st.st_size == 0:
        raise error(f"The {what} {name} is empty.")
    try:
        with open(path, "rb") as fh:
            raw = fh.read(max_bytes + 1)
    except OSError as exc:
        raise error(f"The {what} {name} cannot be read ({exc.strerror or exc}).") from None
    if len(raw) > max_bytes:
        raise error(f"The {what} {name} is larger than the {_mb(max_bytes)} limit, so it was not read.")
    if raw[:1] == b"\x80" or (raw[:1] in (b"(", b"c", b"]", b"}") and raw.rstrip().endswith(b".")):
        raise error(f"The file {name} looks like a Python pickle, not a {what}; rfexplorer never loads pickles.")
    if raw[:4] == b"PK\x03\x04":
        raise error(
            f"The file {name} is a zip archive (such as a torch.save checkpoint), not a {what}; "
            f"rfexplorer never loads checkpoints."
        )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise error(f"The file {name} is not a UTF-8 text file, so it cannot be a {what}.") from None
    if not text.strip():
        raise error(f"The {what} {name} is empty.")
    collecting = gc.isenabled()
    gc.disable()  # parsed JSON holds no cycles; collecting during a parse of millions of lists doubles its time
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as exc:
        hint = " (the file looks truncated)" if exc.pos >= len(text.rstrip()) else ""
        raise error(
            f"The {what} {name} is not valid JSON{hint}: {exc.msg} at line {exc.lineno}, column {exc.colno}."
        ) from None
    except _DuplicateKey as exc:
        raise error(f"The {what} {name} is not usable JSON: an object has the key {_shown(exc.key)} twice.") from None
    except ValueError:  # Python refuses integers of more than 4300 digits
        raise error(f"The {what} {name} holds a number too long to read.") from None
    except RecursionError:
        raise error(f"The {what} {name} nests too deeply to be read.") from None
    finally:
        if collecting:
            gc.enable()


# ---------------------------------------------------------------------------------------------------------
# JSON Schema: validation with one-sentence problems (jsonschema is imported only here, on first use)
# ---------------------------------------------------------------------------------------------------------


def json_type_name(value: Any) -> str:
    """What a parsed JSON value is, in words: 'a number', 'a list', 'null', ..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def json_path_text(path) -> str:
    """A JSON path (keys and indices) as people write it: ``chains[3].resonators[1].sign``."""
    from engine.core.messages import clipped

    out = ""
    for p in path:  # keys come from the file: escaped and cut (a key may be megabytes long)
        out += f"[{p}]" if isinstance(p, int) else ("." if out else "") + clipped(p, 40)
    return out


def strict_schema_validator(schema: dict):
    """A JSON Schema draft 2020-12 validator for ``schema`` whose "number" (and "integer") excludes NaN and
    ±Infinity: Python's json module reads those non-standard constants, strict JSON has none."""
    from jsonschema import Draft202012Validator, validators

    def finite_number(checker, value) -> bool:
        return (
            isinstance(value, (int, float))
            and not isinstance(value, bool)
            and (not isinstance(value, float) or math.isfinite(value))
        )

    Draft202012Validator.check_schema(schema)
    checker = Draft202012Validator.TYPE_CHECKER.redefine("number", finite_number)
    return validators.extend(Draft202012Validator, type_checker=checker)(schema)


def best_schema_error(validator, instance: Any):
    """The most relevant error of ``instance`` against ``validator`` (jsonschema's best_match: the one
    highest up in the document), or None if it is valid."""
    from jsonschema.exceptions import best_match

    return best_match(validator.iter_errors(instance))


_TYPE_WORDS = {
    "object": "a JSON object",
    "array": "a list",
    "string": "a string",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "null": "null",
}
_BOUNDS = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">", "exclusiveMaximum": "<"}


def _shown(v: Any) -> str:
    """A user's value quoted in a message: bounded, control characters escaped (engine.core.messages.shown)."""
    from engine.core.messages import shown

    return shown(v, 40)


def _were(n: int) -> str:
    return "was" if n == 1 else "were"


def schema_problem(error, *, where=json_path_text) -> str:
    """A jsonschema ValidationError as the end of one sentence: where (``where(path)``, 'the file' at the
    top) and what is wrong, e.g. "chains[2].resonators[1].attached_input is -1, out of range (must be >= 0)"."""
    path = list(error.absolute_path)
    at = where(path) or "the file"
    v, inst, value = error.validator, error.instance, error.validator_value
    if v == "required":
        missing = [k for k in value if isinstance(inst, dict) and k not in inst]
        return f"{at} has no {_shown((missing or value)[0])} entry"
    if v == "type":
        if isinstance(inst, float) and not math.isfinite(inst):
            return f"{at} is {inst}, not a finite number"
        words = " or ".join(_TYPE_WORDS.get(t, t) for t in ([value] if isinstance(value, str) else value))
        if not path:
            return f"its top level is {json_type_name(inst)} where {words} was expected"
        return f"{at} must be {words}, not {json_type_name(inst)}"
    if v in _BOUNDS:
        return f"{at} is {_shown(inst)}, out of range (must be {_BOUNDS[v]} {value})"
    if v == "enum":
        return f"{at} is {_shown(inst)}, not one of: {', '.join(str(x) for x in value)}"
    if v == "const":
        return f"{at} is {_shown(inst)} where {json.dumps(value)} was expected"
    if v == "minItems":
        return f"{at} has {len(inst)} entries where at least {value} {_were(value)} expected"
    if v in ("maxItems", "items") and isinstance(inst, list):
        n = len(error.schema.get("prefixItems", ())) if v == "items" else value
        return f"{at} has {len(inst)} entries where at most {n} {_were(n)} expected"
    if v == "uniqueItems":
        seen: set = set()
        for x in inst:
            key = json.dumps(x, sort_keys=True)
            if key in seen:
                return f"{at} lists {_shown(x)} twice"
            seen.add(key)
    if v == "minLength":
        return f"{at} is an empty string" if value == 1 else f"{at} is shorter than {value} characters"
    if v == "maxLength" and isinstance(inst, str):
        return f"{at} is {_shown(inst)}, longer than {value} characters"
    if v == "additionalProperties" and isinstance(inst, dict):
        known = error.schema.get("properties", {})
        extra = [k for k in inst if k not in known]
        return f"{at} has an unknown entry {_shown(extra[0])}" if extra else f"{at} has unknown entries"
    if v == "not" and value == {} and path:
        return f"{where(path[:-1]) or 'the file'} must not have an entry {_shown(path[-1])}"
    return f"{at} does not match the schema (keyword {v!r})"


__all__ = [
    "DEFAULT_MAX_JSON_BYTES",
    "STALE_TEMP_SECONDS",
    "TEMP_SUFFIX",
    "JsonFileError",
    "OutputPathError",
    "UnsafeOutputError",
    "atomic_write_bytes",
    "atomic_write_files",
    "atomic_write_text",
    "best_schema_error",
    "check_output_file",
    "check_output_folder",
    "clean_stale_temps",
    "open_nofollow",
    "read_bytes_nofollow",
    "refuse_symlink",
    "remove_live_temps",
    "dumps_json",
    "json_path_text",
    "json_safe",
    "json_type_name",
    "read_json",
    "schema_problem",
    "strict_schema_validator",
]
