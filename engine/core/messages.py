"""Error messages that are safe to print: bounded in length, with no control characters of the user's.

Readers quote values from untrusted files (a model name, a dataset name, a dictionary key, a path) in their
one-sentence errors. A crafted file must not be able to print megabytes to the terminal or send it escape
sequences (colours, cursor moves, a new window title, a right-to-left override). Two helpers do it:

- :func:`shown` quotes one user value: strings in quotes with control and other non-printable characters
  escaped (``'\\x1b[31m'``), numbers as Python writes them, and anything longer than the limit cut with "…".
- :func:`sentence` bounds a whole message: runs of white space become one space, non-printable characters
  are escaped, and a message over the limit keeps its start and its end with "…" in between.

:func:`escaped` escapes a name to be printed as it is (no quotes), e.g. a recorded dataset or class name, and
:func:`clipped` also cuts it (a path in a message).
"""

from __future__ import annotations

import json
import math
from typing import Any, Optional

#: Longest user value :func:`shown` quotes by default (characters, the "…" included).
SHOWN_CHARS = 60
#: Longest message :func:`sentence` returns by default (characters).
SENTENCE_CHARS = 200
ELLIPSIS = "…"


def _escape_char(ch: str) -> str:
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def escaped(text: Any) -> str:
    """``text`` (any value, as ``str``) with every non-printable character but the plain space escaped as
    ``\\xNN`` / ``\\uNNNN``: control characters (escape, newline, tab, DEL, C1), format characters such as
    the bidirectional overrides, separators and surrogates. Printable text, accents and CJK stay as they are."""
    text = str(text)
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() or ch == " " else _escape_char(ch) for ch in text)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(limit - 1, 1)] + ELLIPSIS


def clipped(text: Any, limit: Optional[int] = None) -> str:
    """``text`` to print as it is (a path, a name; no quotes): escaped (:func:`escaped`), and over ``limit``
    characters (default :data:`SHOWN_CHARS`) cut with "…"."""
    limit = SHOWN_CHARS if limit is None else max(int(limit), 2)
    text = str(text)
    head = escaped(text[:limit])
    return _cut(head, limit) if len(text) <= limit else _cut(head + ELLIPSIS * 2, limit)


def shown(value: Any, limit: Optional[int] = None) -> str:
    """``value`` quoted for an error message, at most ``limit`` characters (default :data:`SHOWN_CHARS`).

    Strings come in single quotes with non-printable characters escaped, cut with "…" inside the quotes;
    floats as Python writes them (``1e+39``, ``0.5``, ``nan``, ``inf``); other numbers, booleans, None and
    containers as JSON, cut with "…"."""
    limit = SHOWN_CHARS if limit is None else max(int(limit), 4)
    if isinstance(value, str):
        head = value[:limit]  # never escape more than needed: the value may be megabytes long
        inner = _cut(escaped(head.replace("\\", "\\\\").replace("'", "\\'")), limit - 2)
        if len(value) > len(head) and not inner.endswith(ELLIPSIS):
            inner = inner[:-1] + ELLIPSIS
        return f"'{inner}'"
    if isinstance(value, float) and not isinstance(value, bool):
        return repr(value) if math.isfinite(value) else str(value)
    if isinstance(value, int) and not isinstance(value, bool):
        if abs(value) < 10 ** min(limit, 200):
            return str(value)
        return f"{'-' if value < 0 else ''}a number of {value.bit_length()} bits"
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=True, default=repr)
    except (TypeError, ValueError, RecursionError):
        text = type(value).__name__
    return _cut(escaped(text), limit)


def sentence(text: Any, limit: Optional[int] = None) -> str:
    """``text`` as one bounded line: white space runs become one space, non-printable characters are escaped,
    and over ``limit`` characters (default :data:`SENTENCE_CHARS`) its middle is replaced by "…" so that the
    start (what failed) and the end (why) both remain."""
    limit = SENTENCE_CHARS if limit is None else max(int(limit), 20)
    text = str(text)
    if len(text) > 8 * limit:  # a giant message: escape only the parts that can be kept
        text = text[: 4 * limit] + " " + text[-4 * limit :]
    text = escaped(" ".join(text.split()))
    if len(text) <= limit:
        return text
    tail = limit // 3
    return text[: limit - tail - 1] + ELLIPSIS + text[-tail:]


__all__ = ["ELLIPSIS", "SENTENCE_CHARS", "SHOWN_CHARS", "clipped", "escaped", "sentence", "shown"]
