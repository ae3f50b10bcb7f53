"""The confusion matrix of a trained network as a PNG figure, drawn the way the group's public simulator draws it:
rows are the true classes, columns the predicted ones, each cell shows its count and is coloured by the fraction
of its true class (the row, normalised to 1), and both axes carry the class names.

    png = confusion_png(matrix, class_names, title="rf, K = 10: 82.60 % on the test set")
    write_confusion_png("confusion.png", matrix, class_names)    # atomic (engine.core.outputs)

Drawn with matplotlib's Agg backend (no display, no Qt). The counts come from
:func:`engine.core.metrics.confusion_matrix` (a run records them in ``RunResult.confusion``).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from engine.core.files import PathLike
from engine.core.outputs import atomic_write_bytes

#: Above this many classes the cells are too small for their counts: only the colours are drawn.
MAX_ANNOTATED_CLASSES = 30
#: Figure size per class (inches) and its bounds.
INCH_PER_CLASS, MIN_INCHES, MAX_INCHES = 0.55, 4.5, 16.0
#: Fraction above which a cell's count is written in white (on the dark end of the colour map).
DARK_CELL = 0.55
COLOUR_MAP = "Blues"


def as_matrix(counts) -> np.ndarray:
    """``counts`` (a [C][C] list or array) as a square int64 array; ValueError in one sentence otherwise."""
    m = np.asarray(counts)
    if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] == 0:
        raise ValueError(f"a confusion matrix must be square with at least one class (got shape {m.shape})")
    if not np.issubdtype(m.dtype, np.number) or not np.all(np.isfinite(m)) or np.any(m < 0):
        raise ValueError("a confusion matrix holds counts: finite numbers of at least 0")
    return m.astype(np.int64)


def row_normalised(counts) -> np.ndarray:
    """Each row over its sum (the fraction of each true class predicted as each class); float64, a class with
    no sample stays 0."""
    m = as_matrix(counts).astype(np.float64)
    sums = m.sum(axis=1, keepdims=True)
    return np.divide(m, sums, out=np.zeros_like(m), where=sums > 0)


def class_labels(names: Optional[Sequence], n_classes: int) -> list[str]:
    """The class names as text, or '0' .. 'C-1' when none (or the wrong number) are given."""
    names = [str(c) for c in names] if names else []
    return names if len(names) == n_classes else [str(c) for c in range(n_classes)]


def _draw(ax, fig, m: np.ndarray, frac: np.ndarray, labels: list[str]) -> None:
    n = len(labels)
    image = ax.imshow(frac, cmap=COLOUR_MAP, vmin=0.0, vmax=1.0, interpolation="nearest")
    bar = fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    bar.set_label("fraction of the true class")
    slanted = max(len(s) for s in labels) > 2  # names longer than digits are slanted so they do not overlap
    ax.set_xticks(
        range(n), labels, rotation=45 if slanted else 0, ha="right" if slanted else "center", rotation_mode="anchor"
    )
    ax.set_yticks(range(n), labels)
    ax.set_xlabel("Predicted class")
    ax.set_ylabel("True class")
    if n <= MAX_ANNOTATED_CLASSES:
        size = max(5.0, min(10.0, 120.0 / n))
        for i in range(n):
            for j in range(n):
                colour = "white" if frac[i, j] > DARK_CELL else "black"
                ax.text(j, i, f"{m[i, j]:d}", ha="center", va="center", color=colour, fontsize=size)


def confusion_figure(counts, class_names: Optional[Sequence] = None, *, title: str = "", dpi: int = 120):
    """The matplotlib Figure of the confusion matrix ``counts`` ([true][predicted]) with ``class_names`` on
    both axes (no pyplot: no global state, no display)."""
    # matplotlib: imported here, when a figure is asked for (it is heavy, and only the --confusion options use it)
    from matplotlib.figure import Figure

    m = as_matrix(counts)
    labels = class_labels(class_names, m.shape[0])
    inches = float(np.clip(INCH_PER_CLASS * m.shape[0] + 2.0, MIN_INCHES, MAX_INCHES))
    fig = Figure(figsize=(inches + 1.0, inches), dpi=dpi, layout="constrained")
    ax = fig.add_subplot()
    _draw(ax, fig, m, row_normalised(m), labels)
    total = int(m.sum())
    subtitle = f"{total:,} samples, accuracy {100 * np.trace(m) / max(total, 1):.2f} %"
    ax.set_title(f"{title}\n{subtitle}" if title else subtitle, fontsize=10)
    return fig


def confusion_png(counts, class_names: Optional[Sequence] = None, *, title: str = "", dpi: int = 120) -> bytes:
    """The PNG bytes of :func:`confusion_figure` (drawn by matplotlib's Agg canvas)."""
    # matplotlib: imported here (heavy; see confusion_figure)
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = confusion_figure(counts, class_names, title=title, dpi=dpi)
    FigureCanvasAgg(fig)
    out = io.BytesIO()
    fig.savefig(out, format="png")
    return out.getvalue()


def write_confusion_png(
    path: PathLike, counts, class_names: Optional[Sequence] = None, *, title: str = "", dpi: int = 120
) -> Path:
    """Write the figure of :func:`confusion_png` to ``path`` atomically (never through a symbolic link)."""
    return atomic_write_bytes(path, confusion_png(counts, class_names, title=title, dpi=dpi))


__all__ = [
    "MAX_ANNOTATED_CLASSES",
    "as_matrix",
    "class_labels",
    "confusion_figure",
    "confusion_png",
    "row_normalised",
    "write_confusion_png",
]
