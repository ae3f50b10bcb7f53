"""One look for the whole app: a dark Fusion palette, pyqtgraph defaults, and the colours shared by the views.

Every view takes its colours from here, so chain j has the same colour in the spectrum, the assignment
heatmap and the pixel maps, and each model has the same colour wherever it is plotted.
"""
from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtGui import QColor, QFont, QPalette
from PySide6.QtWidgets import QApplication

#: Window and plot colours (dark theme).
BG = "#1b1d23"          # plot background
PANEL = "#23262e"       # widget background
PANEL_ALT = "#2b2f38"   # inputs, alternate rows
BORDER = "#3a3f4b"
FG = "#d7dae0"          # text, axes
FG_DIM = "#8b919e"      # secondary text, grid
ACCENT = "#4aa3ff"      # selection, primary button
WARN = "#ffb454"
ERROR = "#ff6b6b"
OK = "#7ed491"

#: One colour per output chain (class), readable on the dark background (Tableau 10, brightened). Chains
#: beyond the tenth get evenly spread hues (golden-angle steps), so any number of classes stays distinct.
CHAIN_COLORS = ("#5fa8ff", "#ffa54f", "#5cd17a", "#ff6b6b", "#b99cff",
                "#d0a080", "#ff9ad5", "#c8c8c8", "#d6d65a", "#4fd6e6")
#: Each model's (colour on the dark background, colour on white figures, pyqtgraph marker symbol), by name.
MODEL_STYLES = {
    "rf": ("#ff8c42", "#e4572e", "star"),
    "rf-input": ("#ff4f6d", "#b5179e", "star"),
    "rf-frozen": ("#f6d55c", "#c9a227", "d"),
    "dense": ("#e6e6e6", "#222222", "o"),
    "prune": ("#5fa8ff", "#1f77b4", "s"),
    "random": ("#9aa0ab", "#7f7f7f", "x"),
    "rigl": ("#5cd17a", "#2ca02c", "t1"),
    "set": ("#b99cff", "#9467bd", "t"),
}
#: Style of a model without an entry above (an imported row from another version, an experiment's model).
UNKNOWN_MODEL_STYLE = ("#ffffff", "#000000", "o")

#: Signed couplings: blue (negative) - black (zero) - red (positive), so "no coupling" is the background.
DIVERGING_MAP = "CET-D4"


def chain_color(j: int) -> str:
    if 0 <= j < len(CHAIN_COLORS):
        return CHAIN_COLORS[j]
    hue = (0.61803398875 * j) % 1.0
    return QColor.fromHsvF(hue, 0.55, 0.95).name()


def model_style(model: str, light: bool = False) -> tuple[str, str]:
    """(colour, pyqtgraph symbol) of a model (:data:`MODEL_STYLES`, else the unknown style); ``light`` for
    white figures."""
    dark, white, symbol = MODEL_STYLES.get(model, UNKNOWN_MODEL_STYLE)
    return (white if light else dark), symbol


def model_color(model: str) -> str:
    return model_style(model)[0]


def diverging_colormap() -> pg.ColorMap:
    return pg.colormap.get(DIVERGING_MAP)


def configure_pyqtgraph() -> None:
    """Global pyqtgraph options: row-major images (arrays are (rows, cols)), antialiasing, dark colours."""
    pg.setConfigOptions(imageAxisOrder="row-major", antialias=True, background=BG, foreground=FG,
                        useOpenGL=False)


STYLESHEET = f"""
QMainWindow, QDialog {{ background: {PANEL}; }}
QWidget {{ color: {FG}; }}
QDockWidget::title {{ background: {PANEL_ALT}; padding: 5px 8px; font-weight: 600; }}
QGroupBox {{ border: 1px solid {BORDER}; border-radius: 6px; margin-top: 14px; padding: 8px 6px 6px 6px; }}
QGroupBox::title {{ subcontrol-origin: margin; left: 8px; padding: 0 4px; color: {FG_DIM}; font-weight: 600; }}
QFrame#ViewCard {{ background: {BG}; border: 1px solid {BORDER}; border-radius: 6px; }}
QLabel#ViewTitle {{ font-weight: 600; font-size: 10.5pt; }}
QLabel#Dim, QLabel#ViewSubtitle {{ color: {FG_DIM}; }}
QLabel#StatusLine {{ padding: 2px 4px; }}
QPushButton {{ background: {PANEL_ALT}; border: 1px solid {BORDER}; border-radius: 4px; padding: 5px 10px; }}
QPushButton:hover {{ border-color: {ACCENT}; }}
QPushButton:disabled {{ color: #5d6370; }}
QPushButton#Primary {{ background: #1f5fa8; border-color: #2f77c8; font-weight: 600; }}
QPushButton#Primary:disabled {{ background: #2b3545; }}
QPushButton#Danger:enabled {{ background: #6b2a2a; border-color: #8a3a3a; }}
QComboBox, QSpinBox, QDoubleSpinBox, QLineEdit {{ background: {PANEL_ALT}; border: 1px solid {BORDER};
    border-radius: 3px; padding: 2px 4px; min-height: 20px; }}
QComboBox QAbstractItemView {{ background: {PANEL_ALT}; selection-background-color: {ACCENT}; }}
QProgressBar {{ border: 1px solid {BORDER}; border-radius: 4px; background: {PANEL_ALT}; text-align: center;
    min-height: 20px; }}
QProgressBar::chunk {{ background: #2f6fb3; border-radius: 3px; }}
QSlider::groove:horizontal {{ height: 4px; background: {BORDER}; border-radius: 2px; }}
QSlider::sub-page:horizontal {{ background: #2f6fb3; border-radius: 2px; }}
QSlider::handle:horizontal {{ background: {ACCENT}; width: 14px; margin: -6px 0; border-radius: 7px; }}
QSlider::handle:horizontal:disabled {{ background: #5d6370; }}
QSlider::sub-page:horizontal:disabled {{ background: {BORDER}; }}
QStatusBar {{ background: {PANEL_ALT}; border-top: 1px solid {BORDER}; }}
QStatusBar QLabel {{ padding: 0 6px; }}
QSplitter::handle {{ background: {PANEL}; }}
QMenuBar {{ background: {PANEL_ALT}; }}
QMenuBar::item:selected, QMenu::item:selected {{ background: {ACCENT}; color: white; }}
QMenu {{ background: {PANEL_ALT}; border: 1px solid {BORDER}; }}
QToolTip {{ background: {PANEL_ALT}; color: {FG}; border: 1px solid {BORDER}; }}
QScrollArea {{ border: none; }}
"""


def apply_theme(app: QApplication) -> None:
    """Fusion style with a dark palette and the app stylesheet; pyqtgraph set to match."""
    app.setStyle("Fusion")
    pal = QPalette()
    for role, colour in ((QPalette.Window, PANEL), (QPalette.WindowText, FG), (QPalette.Base, PANEL_ALT),
                         (QPalette.AlternateBase, PANEL), (QPalette.ToolTipBase, PANEL_ALT),
                         (QPalette.ToolTipText, FG), (QPalette.Text, FG), (QPalette.Button, PANEL_ALT),
                         (QPalette.ButtonText, FG), (QPalette.BrightText, "#ffffff"),
                         (QPalette.Highlight, ACCENT), (QPalette.HighlightedText, "#ffffff"),
                         (QPalette.Link, ACCENT), (QPalette.PlaceholderText, FG_DIM)):
        pal.setColor(role, QColor(colour))
    pal.setColor(QPalette.Disabled, QPalette.Text, QColor("#5d6370"))
    pal.setColor(QPalette.Disabled, QPalette.ButtonText, QColor("#5d6370"))
    pal.setColor(QPalette.Disabled, QPalette.WindowText, QColor("#5d6370"))
    app.setPalette(pal)
    font = app.font()
    if font.pointSizeF() < 9.5:
        font.setPointSizeF(9.5)
    app.setFont(font)
    app.setStyleSheet(STYLESHEET)
    configure_pyqtgraph()


def axis_font(size_pt: float = 9.0) -> QFont:
    f = QFont()
    f.setPointSizeF(size_pt)
    return f


def style_plot(plot: pg.PlotItem, *, grid: bool = True) -> None:
    """Readable axes (tick font, label colour, light grid) for one PlotItem."""
    for name in ("left", "bottom", "right", "top"):
        ax = plot.getAxis(name)
        ax.setTickFont(axis_font(8.5))
        ax.setTextPen(pg.mkPen(FG))
        ax.setPen(pg.mkPen(FG_DIM))
        cache_item(ax)
    if grid:
        plot.showGrid(x=True, y=True, alpha=0.15)


def cache_item(item) -> None:
    """Paint an item from a cached pixmap: axes are redrawn only when their range or labels change, not on
    every curve update around them (replaying the text of 14 axes was most of a live frame)."""
    from PySide6.QtWidgets import QGraphicsItem

    item.setCacheMode(QGraphicsItem.DeviceCoordinateCache)


def label_style() -> dict:
    return {"color": FG, "font-size": "9pt"}


__all__ = [name for name in dir() if not name.startswith("_") and name not in ("pg", "Qt")]
