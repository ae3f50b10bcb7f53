"""The multilayer figure: accuracy against the whole network's synapse count, offscreen with pyqtgraph (PNG).

    python -m rfexplorer.network_figure OUT.png SWEEP.json [SWEEP.json ...]

One panel per dataset. Each model gets one curve through its networks (filled markers: one layer, hollow:
with hidden layers), mean ± std over seeds, at the synapse count of the whole network (resonators for RF, active
weights for the software baselines) on a log axis. Reads the ``sweep.json`` files written by ``rfexplorer-cli sweep
--multilayer`` (``make reproduce-multilayer``).
"""
from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import Optional, Sequence

from .figures import FOREGROUND, FigureError, figure_exit, light_canvas, load_sweep, save_canvas, style_plot

PANEL_SIZE = (760, 560)


def _count_text(v: float) -> str:
    return f"{v / 1000:g}k" if v >= 1000 else f"{v:g}"


def _ticks(lo: float, hi: float) -> list:
    """Log-axis ticks (positions in log10) at 1, 2, 5 x 10^n between lo and hi, labelled 100, 200, 1k, ..."""
    major, minor = [], []
    for e in range(int(math.floor(math.log10(lo))) - 1, int(math.ceil(math.log10(hi))) + 2):
        for m in (1, 2, 5):
            v = m * 10.0 ** e
            (major if m == 1 else minor).append((math.log10(v), _count_text(v)))
    return [major, minor]


def render_network_png(sweep_paths: Sequence[str | os.PathLike], out_png_path: str | os.PathLike,
                       size: Optional[tuple[int, int]] = None) -> Path:
    """Render accuracy vs synapses (one panel per dataset) from sweep files; returns the PNG path."""
    agg = []
    for path in sweep_paths:
        agg.extend(load_sweep(path)[0])
    agg = [a for a in agg if a.get("synapses")]
    if not agg:
        raise FigureError("the sweep files hold no run with a synapse count (rerun the sweep with this version)")
    datasets = sorted({str(a.get("dataset")) for a in agg})
    glw = light_canvas(size or (PANEL_SIZE[0] * len(datasets), PANEL_SIZE[1]))
    import numpy as np
    import pyqtgraph as pg
    from PySide6.QtGui import QFont

    from . import theme
    from .labels import model_label, model_order

    fg = FOREGROUND
    font = QFont()
    font.setPointSizeF(10)
    for col, dataset in enumerate(datasets):
        plot = glw.addPlot(row=0, col=col)
        plot.setLogMode(x=True, y=False)
        style_plot(plot, "synapses in the network (resonators / active weights, log scale)", "test accuracy (%)",
                   font)
        plot.setTitle(f"<span style='color:{fg}; font-size:13pt'>{dataset}: accuracy vs synapses</span><br>"
                      f"<span style='color:#555555; font-size:10pt'>mean ± std over seeds; filled markers: one "
                      f"layer, hollow: with hidden layers</span>")
        legend = pg.LegendItem(labelTextColor=fg, labelTextSize="10pt", verSpacing=-4,
                               brush=pg.mkBrush(255, 255, 255, 235), pen=pg.mkPen("#cccccc"))
        here = [a for a in agg if str(a.get("dataset")) == dataset]
        groups: dict[tuple[str, bool], list[dict]] = {}
        for a in here:
            groups.setdefault((a["model"], bool(a.get("hidden"))), []).append(a)
        lowest = 100.0
        for model in model_order({m for m, _ in groups}):
            pts = sorted(groups.get((model, False), []) + groups.get((model, True), []),
                         key=lambda a: int(a["synapses"]))
            colour, symbol = theme.model_style(model, light=True)
            x = np.log10([float(a["synapses"]) for a in pts])
            y = np.array([100 * float(a["mean"]) for a in pts])
            sd = np.array([100 * float(a.get("std") or 0.0) for a in pts])
            deep = [bool(a.get("hidden")) for a in pts]
            lowest = min(lowest, float(np.min(y - sd)))
            size = 15 if symbol == "star" else 10
            # one line per model through its networks, filled markers for one layer, hollow for hidden layers
            curve = pg.PlotDataItem(10 ** x, y, pen=pg.mkPen(colour, width=2.2), symbol=symbol, symbolSize=size,
                                    symbolBrush=[pg.mkBrush("w" if d else colour) for d in deep],
                                    symbolPen=[pg.mkPen(colour if d else "w", width=2 if d else 1) for d in deep])
            plot.addItem(pg.ErrorBarItem(x=x, y=y, height=2 * sd, beam=0.03, pen=pg.mkPen(colour, width=1.4)))
            plot.addItem(curve)
            legend.addItem(curve, model_label(model, short=True))
        counts = [float(a["synapses"]) for a in here]
        plot.getAxis("bottom").setTicks(_ticks(min(counts), max(counts)))
        legend.setParentItem(plot.getViewBox())
        legend.anchor(itemPos=(1, 1), parentPos=(1, 1), offset=(-12, -12))
        plot.setYRange(max(0.0, 10 * math.floor((lowest - 3) / 10)), 100, padding=0.02)
    return save_canvas(glw, out_png_path)


def main(argv: Optional[Sequence[str]] = None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m rfexplorer.network_figure",
                                description="Render accuracy vs synapses in the network from multilayer sweeps.")
    p.add_argument("out_png", help="PNG to write")
    p.add_argument("sweep_json", nargs="+", help="sweep.json files written by rfexplorer-cli sweep --multilayer")
    args = p.parse_args(argv)
    return figure_exit(lambda: render_network_png(args.sweep_json, args.out_png))


if __name__ == "__main__":
    sys.exit(main())
