"""A thin progress bar for long CLI commands: tqdm on stderr, off when stderr is not a terminal or when asked.

When the bar is off (a pipe, a log file, ``--quiet``, or tqdm not installed) :meth:`ProgressBar.write` prints
the message as a plain stderr line, so callers can keep per-step lines for logs and hand them to the bar when
it is drawn (tqdm then prints them above the bar without breaking it).
"""

from __future__ import annotations

import sys
from typing import Optional, TextIO


def stderr_is_terminal(stream: Optional[TextIO] = None) -> bool:
    stream = stream if stream is not None else sys.stderr
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


class ProgressBar:
    """A bar over ``total`` steps (runs, epochs) with rate and ETA, drawn on stderr.

    ``enabled`` is False when ``quiet`` is set, when stderr is not a terminal (unless ``force``) or when tqdm
    cannot be imported; every method is then a no-op except :meth:`write`, which prints a plain line.
    """

    def __init__(
        self,
        total: int,
        desc: str = "",
        unit: str = "it",
        *,
        initial: int = 0,
        quiet: bool = False,
        force: bool = False,
        stream: Optional[TextIO] = None,
    ) -> None:
        self._stream = stream
        self._bar = None
        if quiet or not (force or stderr_is_terminal(self._out())):
            return
        try:
            from tqdm import tqdm
        except ImportError:  # pragma: no cover - tqdm is a dependency; degrade to plain lines
            return
        self._bar = tqdm(
            total=int(total),
            initial=int(initial),
            desc=desc or None,
            unit=unit,
            file=self._out(),
            dynamic_ncols=True,
            leave=True,
            smoothing=0.1,
        )

    def _out(self) -> TextIO:
        return self._stream if self._stream is not None else sys.stderr

    @property
    def enabled(self) -> bool:
        return self._bar is not None

    def update(self, n: int = 1, postfix: Optional[str] = None) -> None:
        if self._bar is None:
            return
        if postfix is not None:
            self._bar.set_postfix_str(postfix, refresh=False)
        self._bar.update(n)

    def write(self, message: str) -> None:
        """One line on stderr: above the bar when it is drawn, plain otherwise."""
        if self._bar is not None:
            self._bar.write(message, file=self._out())
        else:
            print(message, file=self._out(), flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> "ProgressBar":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


__all__ = ["ProgressBar", "stderr_is_terminal"]
