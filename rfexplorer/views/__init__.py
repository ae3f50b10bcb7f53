"""The live views: one module per view, each a QWidget that owns its pyqtgraph items and updates them in place."""
from .assignment import AssignmentView
from .diagram import NetworkView
from .history import HistoryView
from .robustness import RobustnessView
from .sparsity import SparsityView
from .spectrum import SpectrumView

__all__ = ["AssignmentView", "HistoryView", "NetworkView", "RobustnessView", "SparsityView", "SpectrumView"]
