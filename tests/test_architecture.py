"""Architecture rules: the import-linter contracts of pyproject.toml hold (and are able to fail), the engine
loads no Qt module at run time, and the app draws the engine's own physics."""
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
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
    from engine.config.run_config import RunConfig
    from engine.config.models import build_model
    from engine.physics.resonators import DeviceParams
    from rfexplorer import spectra

    torch.manual_seed(0)
    cfg = RunConfig(model="rf", resonators_per_chain=7, device=DeviceParams(phi=0.4, alpha=0.01))
    model = build_model(cfg, 784, 10)
    extras = model.snapshot_extras()
    probe = spectra.probe_frequencies_ghz(cfg.device, 784, 7)
    ours = spectra.chain_response(extras["resonator_freqs_ghz"], extras["resonator_signs"], cfg.device, probe)
    engine = model.chain_response(torch.as_tensor(probe)).numpy()
    np.testing.assert_allclose(ours, engine, rtol=1e-5, atol=1e-9)


def _lint_imports(cwd: Path) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("lint-imports")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "importlinter.cli"]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={"PYTHONPATH": str(cwd), "PATH": "/usr/bin:/bin"})


def test_import_contracts_hold():
    proc = _lint_imports(ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "0 broken" in proc.stdout


def test_import_contracts_catch_an_engine_module_that_imports_qt(tmp_path):
    """The same contracts on a copy of the tree where one engine module imports PySide6 must fail."""
    for name in ("engine", "rfexplorer"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "engine" / "leaky.py").write_text("import PySide6.QtCore\n")
    proc = _lint_imports(tmp_path)
    assert proc.returncode != 0 and "BROKEN" in proc.stdout.upper(), proc.stdout[-2000:]


def test_the_layers_contract_catches_a_lower_layer_importing_a_higher_one(tmp_path):
    """On a copy of the tree where the physics (a low layer) imports the training loop, the layers contract
    breaks, and only it."""
    for name in ("engine", "rfexplorer"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    physics = tmp_path / "engine" / "physics" / "resonators.py"
    physics.write_text(physics.read_text() + "\nfrom engine.training import loop  # a layer violation\n")
    proc = _lint_imports(tmp_path)
    assert proc.returncode != 0, proc.stdout[-2000:]
    assert "engine.physics is not allowed to import engine.training" in " ".join(proc.stdout.split())
    assert "4 kept, 1 broken" in proc.stdout or "1 broken" in proc.stdout


def test_the_architecture_doc_names_every_engine_module():
    """docs/architecture.md's layer map stays in step with engine/: every module is named there."""
    doc = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    missing = [str(p.relative_to(ROOT)) for p in (ROOT / "engine").rglob("*.py")
               if p.stem not in ("__init__", "__main__") and "__pycache__" not in p.parts
               and p.stem not in doc]
    assert not missing, f"docs/architecture.md does not mention: {missing}"


def test_the_engine_is_made_of_layer_packages_only():
    """engine/ holds only its __init__ and one subpackage per layer; the exhaustive layers contract then
    places every package, so a new one must be given its layer."""
    flat = sorted(p.name for p in (ROOT / "engine").glob("*.py") if p.name != "__init__.py")
    assert not flat, f"modules directly under engine/: {flat}"


def _import_cycles(package: str) -> list[list[str]]:
    """Strongly connected groups of modules of ``package`` (imports inside functions count; imports only for
    type checkers do not): each is an import cycle."""
    import grimp

    graph = grimp.build_graph(package, exclude_type_checking_imports=True, cache_dir=None)
    edges = {m: {i for i in graph.find_modules_directly_imported_by(m) if i.startswith(package)}
             for m in graph.modules}
    order, low, on_stack, stack, groups = {}, {}, set(), [], []

    def visit(v: str) -> None:  # Tarjan's algorithm, iterative enough for this graph's depth
        order[v] = low[v] = len(order)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in order:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], order[w])
        if low[v] == order[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for module in sorted(edges):
        if module not in order:
            visit(module)
    return groups


@pytest.mark.parametrize("package", ["engine", "rfexplorer"])
def test_there_is_no_import_cycle(package):
    assert _import_cycles(package) == []


def test_the_cycle_check_sees_a_cycle_through_an_import_inside_a_function(tmp_path, monkeypatch):
    pkg = tmp_path / "cyclic"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from . import b\n")
    (pkg / "b.py").write_text("def f():\n    from . import a\n    return a\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert _import_cycles("cyclic") == [["cyclic.a", "cyclic.b"]]
