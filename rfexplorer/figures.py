"""Result figures rendered offscreen with pyqtgraph (PNG only: pyqtgraph's SVG export is broken on current Qt).

    python -m rfexplorer.figures results/sweep.json results/sweep.png

draws test accuracy against the percentage of synapses removed, one curve per model, mean ± std over seeds
(the layout of the seed paper's Figure 1b), from the ``sweep.json`` written by
``engine.experiments.sweep.runner.write_results``
(``{"format": "rfexplorer-sweep", "aggregate": [...], "rows": [...]}``; a bare list of rows also works).
"""
from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

FIGURE_SIZE = (1000, 620)


class FigureError(ValueError):
    """The sweep file cannot be drawn (missing, not JSON, or not a sweep); the message says why."""


def load_sweep(path: str | os.PathLike) -> tuple[list[dict], list[dict]]:
    """(aggregate, rows) of a sweep JSON file; FigureError with a plain message if it is not one."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FigureError(f"The sweep file {path} does not exist.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise FigureError(f"The sweep file {path} cannot be read ({exc}).") from None
    try:
        doc: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FigureError(f"The sweep file {path} is not valid JSON ({exc.msg}, line {exc.lineno}).") from None
    if isinstance(doc, list):
        rows, agg = doc, None
    elif isinstance(doc, dict) and ("rows" in doc or "aggregate" in doc):
        rows, agg = doc.get("rows") or [], doc.get("aggregate")
    else:
        raise FigureError(f"The file {path} is not a sweep result (expected the sweep.json written by "
                          f"engine.experiments.sweep.runner.write_results, with 'rows' and 'aggregate').")
    if not isinstance(rows, list):
        raise FigureError(f"The sweep file {path} is malformed: 'rows' must be a list.")
    if agg is None or not isinstance(agg, list):  # a bare list of rows: averaged by the engine
        from engine.io.results import ResultRow, aggregate

        readable = []
        for r in rows:
            try:
                readable.append(ResultRow.from_dict(r))
            except (ValueError, TypeError):
                continue
        agg = [a.to_dict() for a in aggregate(readable)]
    agg = [a for a in agg if isinstance(a, dict) and a.get("mean") is not None and "model" in a]
    if not agg:
        raise FigureError(f"The sweep file {path} holds no successful run to plot.")
    return agg, rows


def _ensure_app():
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    if app is None:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        app = QApplication([])
    return app


#: Text colour of the white-background figures.
FOREGROUND = "#222222"


def light_canvas(size: tuple[int, int]):
    """A white, offscreen pyqtgraph canvas of ``size`` pixels for a result figure."""
    _ensure_app()
    import pyqtgraph as pg

    pg.setConfigOptions(antialias=True)
    glw = pg.GraphicsLayoutWidget()
    glw.setBackground("w")
    glw.resize(*size)
    return glw


def style_plot(plot, x_label: str, y_label: str, font=None) -> None:
    """Dark axes, a light grid and 11 pt axis labels on a white figure."""
    import pyqtgraph as pg

    for name in ("left", "bottom"):
        ax = plot.getAxis(name)
        if font is not None:
            ax.setTickFont(font)
        ax.setTextPen(pg.mkPen(FOREGROUND))
        ax.setPen(pg.mkPen(FOREGROUND))
    plot.showGrid(x=True, y=True, alpha=0.18)
    label = {"color": FOREGROUND, "font-size": "11pt"}
    plot.setLabel("bottom", x_label, **label)
    plot.setLabel("left", y_label, **label)


def save_canvas(glw, out_png_path: str | os.PathLike) -> Path:
    """Lay out, grab and write the canvas as a PNG (atomically), then release it; returns the path."""
    from .images import save_pixmap_png

    out = Path(out_png_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    glw.ci.layout.activate()
    try:
        save_pixmap_png(glw.grab(), out)
    finally:
        glw.close()
        glw.deleteLater()
    return out


def figure_exit(render: Callable[[], Path], errors: tuple = (FigureError, OSError)) -> int:
    """The end of a figure module's command line: ``render()`` offscreen, then exit 0 printing the PNG's path,
    or 2 with one line on stderr for one of ``errors``."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    try:
        path = render()
    except errors as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(path)
    return 0


def run_figure_tool(render, usage: str, argv: Optional[Sequence[str]] = None) -> int:
    """The command line of a figure module that reads one JSON file and writes one PNG: ``render(json, png)``
    (see :func:`figure_exit`; a JSON file that does not parse is reported too)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2:
        print(f"usage: {usage}", file=sys.stderr)
        return 2
    return figure_exit(lambda: render(args[0], args[1]), (OSError, ValueError))


def render_sweep_png(sweep_json_path: str | os.PathLike, out_png_path: str | os.PathLike,
                     title: Optional[str] = None, size: tuple[int, int] = FIGURE_SIZE) -> Path:
    """Render accuracy vs % synapses removed (mean ± std per model) to a PNG, offscreen. Returns the path.

    Raises :class:`FigureError` for a missing or malformed sweep file; the PNG is written atomically.
    """
    agg, rows = load_sweep(sweep_json_path)
    glw = light_canvas(size)
    import numpy as np
    import pyqtgraph as pg
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QFont

    from . import theme
    from .labels import model_label, model_order, uses_k
    from .views.sparsity import RemovedAxis, removed_to_x, x_max

    fg = FOREGROUND
    axis = RemovedAxis("bottom")
    plot = glw.addPlot(row=0, col=0, axisItems={"bottom": axis})
    font = QFont()
    font.setPointSizeF(10)
    style_plot(plot, "synapses removed (%, log scale of those kept)", "test accuracy (%)", font)
    datasets = sorted({str(a.get("dataset")) for a in agg if a.get("dataset")})
    seeds = sorted({s for a in agg for s in (a.get("seeds") or [])})
    heading = title or ("Accuracy vs synapses removed" + (f" — {', '.join(datasets)}" if datasets else ""))
    sub = "mean ± std over " + (f"seeds {', '.join(map(str, seeds))}" if seeds else "seeds")
    plot.setTitle(f"<span style='color:{fg}; font-size:13pt'>{heading}</span><br>"
                  f"<span style='color:#555555; font-size:10pt'>{sub}</span>")
    legend = pg.LegendItem(labelTextColor=fg, labelTextSize="10pt", verSpacing=-4, brush=pg.mkBrush(255, 255, 255, 235),
                           pen=pg.mkPen("#cccccc"))
    by_model: dict[str, list[dict]] = {}
    for a in agg:
        by_model.setdefault(a["model"], []).append(a)
    from .views.sparsity import DASHED

    lowest = 100.0
    for model in model_order(by_model):
        pts = sorted(by_model[model], key=lambda a: (str(a.get("dataset")), float(a["removed_synapses_pct"])))
        colour, symbol = theme.model_style(model, light=True)
        x = removed_to_x([float(a["removed_synapses_pct"]) for a in pts])
        y = np.array([100 * float(a["mean"]) for a in pts])
        sd = np.array([100 * float(a["std"]) if a.get("std") is not None else 0.0 for a in pts])
        same = np.array([a.get("dataset") == b.get("dataset") for a, b in zip(pts, pts[1:])] + [False])
        lowest = min(lowest, float(np.min(y - sd)))
        name = model_label(model, short=True)
        level = None
        if not uses_k(model):  # a model that uses every input: one level across the figure
            level = float(np.mean(y))
            line = pg.InfiniteLine(pos=level, angle=0, pen=pg.mkPen(colour, width=1.5, style=Qt.DashLine))
            plot.addItem(line, ignoreBounds=True)
        curve = pg.PlotDataItem(x, y, connect=same,
                                pen=pg.mkPen(colour, width=2.2, style=Qt.DashLine if model in DASHED else Qt.SolidLine),
                                symbol=symbol, symbolSize=15 if symbol == "star" else 10, symbolBrush=colour,
                                symbolPen=pg.mkPen("w"))
        bars = pg.ErrorBarItem(x=x, y=y, height=2 * sd, beam=0.04, pen=pg.mkPen(colour, width=1.5))
        plot.addItem(bars)
        plot.addItem(curve)
        legend.addItem(curve, name + (f" ({level:.1f} %)" if level is not None else ""))
    # the lower left is where sparse models are absent and dense ones sit high: the legend goes there
    legend.setParentItem(plot.getViewBox())
    legend.anchor(itemPos=(0, 1), parentPos=(0, 1), offset=(12, -12))
    n_inputs = max([int(r.get("n_inputs") or 0) for r in rows if isinstance(r, dict)] +
                   [int(a.get("resonators_per_chain") or 0) for a in agg] + [2])
    plot.setXRange(-0.05, x_max(n_inputs), padding=0)
    plot.setYRange(max(0.0, 10 * math.floor((lowest - 3) / 10)), 100, padding=0.02)
    return save_canvas(glw, out_png_path)


def main(argv: Optional[Sequence[str]] = None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m rfexplorer.figures",
                                description="Render accuracy vs synapses removed from a sweep.json (PNG).")
    p.add_argument("sweep_json", help="sweep.json written by engine.experiments.sweep.runner.write_results")
    p.add_argument("out_png", help="PNG to write")
    p.add_argument("--title", default=None)
    args = p.parse_args(argv)
    return figure_exit(lambda: render_sweep_png(args.sweep_json, args.out_png, title=args.title))


if __name__ == "__main__":
    sys.exit(main())
