"""The multilayer figure: accuracy against the whole network's synapse count, offscreen with pyqtgraph (PNG).

    python -m rfexplorer.network_figure OUT.png SWEEP.json [SWEEP.json ...]

One panel per dataset. Each model gets one curve per depth (solid: one layer, dashed: with hidden layers),
mean ± std over seeds, at the synapse count of the whole network (resonators for RF, active weights for the
software baselines) on a log axis. Reads the ``sweep.json`` files written by ``rfexplorer-cli sweep
--multilayer`` (``make reproduce-multilayer``).
"""
from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import Optional, Sequence

from .figures import FigureError, _ensure_app, load_sweep

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
    _ensure_app()
    import numpy as np
    import pyqtgraph as pg
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QFont

    from . import theme
    from .labels import model_label, model_order

    datasets = sorted({str(a.get("dataset")) for a in agg})
    w, h = size or (PANEL_SIZE[0] * len(datasets), PANEL_SIZE[1])
    pg.setConfigOptions(antialias=True)
    fg = "#222222"
    glw = pg.GraphicsLayoutWidget()
    glw.setBackground("w")
    glw.resize(w, h)
    font = QFont()
    font.setPointSizeF(10)
    for col, dataset in enumerate(datasets):
        plot = glw.addPlot(row=0, col=col)
        plot.setLogMode(x=True, y=False)
        for name in ("left", "bottom"):
            ax = plot.getAxis(name)
            ax.setTickFont(font)
            ax.setTextPen(pg.mkPen(fg))
            ax.setPen(pg.mkPen(fg))
        plot.showGrid(x=True, y=True, alpha=0.18)
        label = {"color": fg, "font-size": "11pt"}
        plot.setLabel("bottom", "synapses in the network (resonators / active weights, log scale)", **label)
        plot.setLabel("left", "test accuracy (%)", **label)
        plot.setTitle(f"<span style='color:{fg}; font-size:13pt'>{dataset}: one layer (solid) vs hidden layers "
                      f"(dashed)</span><br><span style='color:#555555; font-size:10pt'>mean ± std over seeds</span>")
        legend = pg.LegendItem(labelTextColor=fg, labelTextSize="10pt", verSpacing=-4,
                               brush=pg.mkBrush(255, 255, 255, 235), pen=pg.mkPen("#cccccc"))
        here = [a for a in agg if str(a.get("dataset")) == dataset]
        groups: dict[tuple[str, bool], list[dict]] = {}
        for a in here:
            groups.setdefault((a["model"], bool(a.get("hidden"))), []).append(a)
        lowest = 100.0
        for model in model_order({m for m, _ in groups}):
            for deep in (False, True):
                pts = sorted(groups.get((model, deep), []), key=lambda a: int(a["synapses"]))
                if not pts:
                    continue
                colour, symbol = theme.model_style(model, light=True)
                x = np.log10([float(a["synapses"]) for a in pts])
                y = np.array([100 * float(a["mean"]) for a in pts])
                sd = np.array([100 * float(a.get("std") or 0.0) for a in pts])
                lowest = min(lowest, float(np.min(y - sd)))
                curve = pg.PlotDataItem(10 ** x, y, pen=pg.mkPen(colour, width=2.2,
                                                                 style=Qt.DashLine if deep else Qt.SolidLine),
                                        symbol=symbol, symbolSize=14 if symbol == "star" else 9, symbolBrush=colour,
                                        symbolPen=pg.mkPen("w"))
                bars = pg.ErrorBarItem(x=x, y=y, height=2 * sd, beam=0.03, pen=pg.mkPen(colour, width=1.4))
                plot.addItem(bars)
                plot.addItem(curve)
                legend.addItem(curve, model_label(model, short=True) + (" (hidden layers)" if deep else ""))
        counts = [float(a["synapses"]) for a in here]
        plot.getAxis("bottom").setTicks(_ticks(min(counts), max(counts)))
        legend.setParentItem(plot.getViewBox())
        legend.anchor(itemPos=(1, 1), parentPos=(1, 1), offset=(-12, -12))
        plot.setYRange(max(0.0, 10 * math.floor((lowest - 3) / 10)), 100, padding=0.02)

    out = Path(out_png_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    glw.ci.layout.activate()
    from .images import save_pixmap_png

    try:
        save_pixmap_png(glw.grab(), out)
    finally:
        glw.close()
        glw.deleteLater()
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m rfexplorer.network_figure",
                                description="Render accuracy vs synapses in the network from multilayer sweeps.")
    p.add_argument("out_png", help="PNG to write")
    p.add_argument("sweep_json", nargs="+", help="sweep.json files written by rfexplorer-cli sweep --multilayer")
    args = p.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    try:
        path = render_network_png(args.sweep_json, args.out_png)
    except (FigureError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
