"""Lists of layer sizes as people type them ("100", "200,100", "200 100", "200; 100"): the CLI's ``--hidden``
and the app's hidden-layer and later-layer K fields read them with :func:`parse_sizes`."""

from __future__ import annotations

import re


def parse_sizes(text: str, what: str) -> tuple[int, ...]:
    """The whole numbers >= 1 in ``text`` (separated by commas, semicolons or spaces; empty text gives ``()``).
    Raises ValueError with one sentence that starts with ``what``, e.g. "Hidden layers: 'x' is not a whole
    number (write e.g. 100 or 200,100)"."""
    values = []
    for part in (p for p in re.split(r"[\s,;]+", text or "") if p):
        try:
            v = int(part)
        except ValueError:
            raise ValueError(f"{what}: {part!r} is not a whole number (write e.g. 100 or 200,100)") from None
        if v < 1:
            raise ValueError(f"{what}: every size must be at least 1 (got {v})")
        values.append(v)
    return tuple(values)
