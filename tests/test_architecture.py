"""Architecture rules: the engine never pulls in Qt; the app draws the engine's physics instead of its own;
cross-thread signals land in declared slots; torch threads are set before torch is used."""
import inspect
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
GUI_MODULES = ("PySide6", "shiboken6", "pyqtgraph", "PyQt5", "PyQt6", "PySide2", "rfexplorer")


def test_importing_the_engine_pulls_in_no_qt_module():
    code = (
        "import importlib, pkgutil, sys\n"
        "import engine\n"
        "for m in pkgutil.walk_packages(engine.__path__, 'engine.'):\n"
        "    importlib.import_module(m.name)\n"
        f"bad = sorted(n for n in sys.modules if n.split('.')[0] in {GUI_MODULES!r})\n"
        "print(len([n for n in sys.modules if n.startswith('engine')]), bad)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    count, bad = proc.stdout.strip().split(" ", 1)
    assert int(count) > 5 and bad == "[]", proc.stdout


def test_spectrum_helper_matches_the_engines_chain_response():
    from engine.config import RunConfig
    from engine.models import build_model
    from engine.physics import DeviceParams
    from rfexplorer import spectra

    torch.manual_seed(0)
    cfg = RunConfig(model="rf", resonators_per_chain=7, device=DeviceParams(phi=0.4, alpha=0.01))
    model = build_model(cfg, 784, 10)
    extras = model.snapshot_extras()
    probe = spectra.probe_frequencies_ghz(cfg.device, 784, 7)
    ours = spectra.chain_response(extras["resonator_freqs_ghz"], extras["resonator_signs"], cfg.device, probe)
    engine = model.chain_response(torch.as_tensor(probe)).numpy()
    np.testing.assert_allclose(ours, engine, rtol=1e-5, atol=1e-9)


def test_the_app_does_not_write_the_lineshape_again():
    pattern = re.compile(r"1(\.0)?\s*\+\s*x\s*(\*\s*x|\*\*\s*2)|def\s+(lineshape|lorentzian)", re.I)
    offenders = [str(p.relative_to(ROOT)) for p in (ROOT / "rfexplorer").rglob("*.py")
                 if pattern.search(p.read_text(encoding="utf-8"))]
    assert offenders == []


def test_worker_signals_are_received_by_declared_slots():
    from rfexplorer.controller import Controller

    mo = Controller.staticMetaObject
    slots = {bytes(mo.method(i).name()).decode() for i in range(mo.methodOffset(), mo.methodCount())}
    source = inspect.getsource(Controller.__init__)
    connected = set(re.findall(r"_(?:sweep_)?worker\.\w+\.connect\(self\.(\w+)\)", source))
    assert connected and connected <= slots, connected - slots
    assert "lambda" not in source


def test_main_sets_torch_threads_first():
    from rfexplorer import app

    assert "torch.set_num_threads" in inspect.getsource(app.configure_runtime)
    source = inspect.getsource(app.main)
    first_torch_use = source.index("configure_runtime()")
    for later in ("QApplication", "MainWindow", "apply_theme"):
        assert source.index(later) > first_torch_use
