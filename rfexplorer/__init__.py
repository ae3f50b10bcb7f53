"""rfexplorer: the desktop explorer (PySide6 + pyqtgraph) for the RF spintronic networks of :mod:`engine`.

``rfexplorer.app.main`` opens the window; ``rfexplorer.figures`` renders result figures offscreen;
``rfexplorer.screenshots`` captures the window for documentation. The engine never imports this package.
"""
from engine import __version__  # the project's one version number

__all__ = ["__version__"]
