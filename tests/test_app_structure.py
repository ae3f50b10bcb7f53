"""How the app's modules depend on each other, checked by importing them in a fresh interpreter."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _modules_after(statement: str) -> set:
    code = f"import sys\n{statement}\nprint('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env={"QT_QPA_PLATFORM": "offscreen", "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr[-2000:]
    return set(out.stdout.split())


def test_figures_do_not_import_the_main_window():
    loaded = _modules_after("import rfexplorer.figures")
    assert "rfexplorer.main_window" not in loaded


def test_display_state_and_labels_need_no_qt():
    """The worker builds display states and labels with them: they must not pull in Qt."""
    loaded = _modules_after("import rfexplorer.state, rfexplorer.labels")
    assert not any(m.startswith(("PySide6", "pyqtgraph")) for m in loaded)
