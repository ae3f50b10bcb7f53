"""The robustness figure: accuracy (mean ± std over fresh chips) against one device knob, offscreen (PNG).

    python -m rfexplorer.robustness_figure OUT/robustness.json OUT/robustness.png

reads the ``robustness.json`` written by ``rfexplorer-cli robustness`` (``{"format": "rfexplorer-robustness",
"knob": ..., "rows": [{"value", "mean", "std", "n"}, ...]}``). The CLI imports this module only to draw the
PNG, so the engine and the CLI run without Qt.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Optional, Sequence

from .figures import FOREGROUND, light_canvas, run_figure_tool, save_canvas, style_plot

FIGURE_SIZE = (900, 560)


def _x_value(v) -> float:
    if v is None:  # e.g. tuning_bits = None (continuous): drawn right of the largest value
        return float("nan")
    if isinstance(v, bool):
        return float(v)
    return float(v)


def render_robustness_png(json_path: str | os.PathLike, out_png_path: str | os.PathLike,
                          size: tuple[int, int] = FIGURE_SIZE) -> Path:
    """Draw accuracy against the knob's values (mean ± std, in %) to a PNG, offscreen; returns its path."""
    doc = json.loads(Path(json_path).read_text(encoding="utf-8"))
    rows = [r for r in doc.get("rows", []) if r.get("mean") is not None]
    if not rows:
        raise ValueError(f"{json_path} holds no robustness rows to draw")
    import numpy as np
    import pyqtgraph as pg

    xs = [_x_value(r["value"]) for r in rows]
    finite = [x for x in xs if x == x]
    if len(finite) < len(xs):  # None values sit one step right of the largest finite one
        right = (max(finite) + 1.0) if finite else 0.0
        xs = [x if x == x else right for x in xs]
    x = np.array(xs, dtype=float)
    y = np.array([100.0 * float(r["mean"]) for r in rows])
    sd = np.array([100.0 * float(r.get("std") or 0.0) for r in rows])
    order = np.argsort(x, kind="stable")
    x, y, sd = x[order], y[order], sd[order]

    fg = FOREGROUND
    colour = "#e4572e"
    glw = light_canvas(size)
    plot = glw.addPlot(row=0, col=0)
    knob = str(doc.get("knob", "knob"))
    style_plot(plot, f"device.{knob}", "accuracy (%)")
    n = max(int(r.get("n") or 0) for r in rows)
    plot.setTitle(f"<span style='color:{fg}; font-size:13pt'>{doc.get('model', '')} on {doc.get('dataset', '')}"
                  f": accuracy vs {knob}</span><br><span style='color:#555555; font-size:10pt'>mean ± std over "
                  f"{n} fresh chip(s) per value</span>")
    plot.addItem(pg.ErrorBarItem(x=x, y=y, height=2 * sd, beam=0.0, pen=pg.mkPen(colour, width=1.5)))
    plot.addItem(pg.PlotDataItem(x, y, pen=pg.mkPen(colour, width=2.2), symbol="o", symbolSize=9,
                                 symbolBrush=colour, symbolPen=pg.mkPen("w")))
    low = float(np.min(y - sd))
    plot.setYRange(max(0.0, low - 5.0), min(100.0, float(np.max(y + sd)) + 3.0), padding=0.02)
    return save_canvas(glw, out_png_path)


def main(argv: Optional[Sequence[str]] = None) -> int:
    usage = "python -m rfexplorer.robustness_figure ROBUSTNESS.json OUT.png"
    return run_figure_tool(render_robustness_png, usage, argv)


if __name__ == "__main__":
    sys.exit(main())
