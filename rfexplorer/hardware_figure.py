"""The hardware figure: accuracy against tuning range, tuning bits, jitter and spread, offscreen (PNG).

    python -m rfexplorer.hardware_figure OUT/hardware.json OUT/hardware.png

Reads the ``hardware.json`` written by ``rfexplorer-cli hardware-study`` (``make reproduce-hardware``) and draws
its four panels, mean ± std over seeds: one colour per model, one line style per training regime (solid:
trained at the level or ideal, dashed: aware, dotted: in-situ). 'Unlimited' range and 'continuous' tuning sit
one step right of the largest level, spread 0 one decade left of the smallest.
"""
from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from typing import Optional, Sequence

from .figures import FOREGROUND, FigureError, light_canvas, run_figure_tool, save_canvas, style_plot

PANEL_SIZE = (700, 470)
TITLES = {"range": "tuning range (± % of the fabricated frequency, log)",
          "bits": "tuning resolution (bits per device)",
          "jitter": "frequency jitter at each read-out (linewidths)",
          "spread": "uncalibrated fabrication spread (% std, log)"}
STYLES = {"trained": None, "ideal": None, "aware": "dash", "in-situ": "dot"}
#: Where each panel's legend sits (the corner its curves leave free): 1 = right, 0 = left.
LEGEND_SIDE = {"range": 1, "bits": 1, "jitter": 0, "spread": 0}


def _positions(panel: str, levels: Sequence, all_levels: Sequence) -> tuple[list[float], list[tuple[float, str]]]:
    """x positions of ``levels`` in ``panel`` and the axis ticks of ``all_levels``."""
    finite = sorted(float(v) for v in all_levels if v is not None and (panel != "spread" or float(v) > 0))

    def pos(v) -> float:
        if panel == "range":
            return math.log10(100 * (float(v) if v is not None else 2 * max(finite)))
        if panel == "bits":
            return float(v) if v is not None else max(finite) + 2.0
        if panel == "spread":
            return math.log10(100 * (float(v) if float(v) > 0 else min(finite) / 10))
        return float(v)

    ticks = []
    for v in sorted(all_levels, key=lambda v: (v is None, float(v) if v is not None else 0.0)):
        if v is None:
            text = "unlimited" if panel == "range" else "continuous"
        elif panel in ("range", "spread"):
            text = f"{100 * float(v):g}"
        else:
            text = f"{float(v):g}"
        ticks.append((pos(v), text))
    return [pos(v) for v in levels], ticks


def render_hardware_png(json_path: str | os.PathLike, out_png_path: str | os.PathLike,
                        size: Optional[tuple[int, int]] = None) -> Path:
    """Draw the study's four panels to a PNG, offscreen; returns its path."""
    try:
        doc = json.loads(Path(json_path).read_text(encoding="utf-8"))
    except ValueError as exc:
        raise FigureError(f"{json_path} is not a JSON file ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != "rfexplorer-hardware-study":
        raise FigureError(f"{json_path} is not a hardware study (written by rfexplorer-cli hardware-study)")
    series = [s for s in doc.get("series", []) if s.get("levels")]
    if not series:
        raise FigureError(f"{json_path} holds no finished runs to draw")
    import numpy as np
    import pyqtgraph as pg
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QFont

    from . import theme
    from .labels import model_label

    spec = doc.get("spec", {})
    glw = light_canvas(size or (2 * PANEL_SIZE[0], 2 * PANEL_SIZE[1] + 40))
    glw.addLabel(f"<span style='color:{FOREGROUND}; font-size:14pt'>What an RF chip needs: {spec.get('dataset')}, "
                 f"K = {spec.get('resonators_per_chain')}, mean ± std over seeds "
                 f"{', '.join(map(str, spec.get('seeds', [])))}</span>", row=0, col=0, colspan=2)
    font = QFont()
    font.setPointSizeF(10)
    dashes = {"dash": Qt.DashLine, "dot": Qt.DotLine, None: Qt.SolidLine}
    for i, panel in enumerate(("range", "bits", "jitter", "spread")):
        here = [s for s in series if s["panel"] == panel]
        if not here:
            continue
        plot = glw.addPlot(row=1 + i // 2, col=i % 2)
        style_plot(plot, TITLES[panel], "test accuracy (%)", font)
        legend = pg.LegendItem(labelTextColor=FOREGROUND, labelTextSize="9pt", verSpacing=-6,
                               brush=pg.mkBrush(255, 255, 255, 235), pen=pg.mkPen("#cccccc"))
        all_levels = []
        for s in here:
            for v in s["levels"]:
                if v not in all_levels:
                    all_levels.append(v)
        lowest = 100.0
        for s in here:
            xs, ticks = _positions(panel, s["levels"], all_levels)
            colour, symbol = theme.model_style(s["model"], light=True)
            y = 100 * np.asarray(s["mean"], dtype=float)
            sd = 100 * np.asarray(s["std"], dtype=float)
            order = np.argsort(xs, kind="stable")
            x, y, sd = np.asarray(xs)[order], y[order], sd[order]
            lowest = min(lowest, float(np.min(y - sd)))
            pen = pg.mkPen(colour, width=2.2, style=dashes[STYLES.get(s["regime"])])
            curve = pg.PlotDataItem(x, y, pen=pen, symbol=symbol, symbolSize=12 if symbol == "star" else 8,
                                    symbolBrush=colour if s["regime"] in ("trained", "ideal") else "w",
                                    symbolPen=pg.mkPen(colour, width=1.5))
            plot.addItem(pg.ErrorBarItem(x=x, y=y, height=2 * sd, beam=0.0, pen=pg.mkPen(colour, width=1.2)))
            plot.addItem(curve)
            name = model_label(s["model"], short=True)
            legend.addItem(curve, name if s["regime"] == "trained" else f"{name}, {s['regime']}")
        axis = plot.getAxis("bottom")
        axis.enableAutoSIPrefix(False)
        axis.setTicks([ticks, []])
        span = [t[0] for t in ticks]
        plot.setXRange(min(span), max(span), padding=0.08)
        legend.setParentItem(plot.getViewBox())
        side = LEGEND_SIDE[panel]
        legend.anchor(itemPos=(side, 1), parentPos=(side, 1), offset=(-12 if side else 12, -12))
        plot.setYRange(max(0.0, 10 * math.floor((lowest - 3) / 10)), 100, padding=0.02)
    return save_canvas(glw, out_png_path)


def main(argv: Optional[Sequence[str]] = None) -> int:
    return run_figure_tool(render_hardware_png, "python -m rfexplorer.hardware_figure HARDWARE.json OUT.png", argv)


if __name__ == "__main__":
    sys.exit(main())
