"""The engine's public names, importable from ``engine`` itself, and the one version number."""
import re
import subprocess
import sys
from pathlib import Path

import engine

ROOT = Path(__file__).resolve().parents[1]


def test_public_names_resolve_to_the_engine_objects():
    from engine.config.run_config import RunConfig
    from engine.experiments.evaluation import evaluate_topology
    from engine.config.models import get_model, list_models
    from engine.experiments.sweep.runner import SweepSpec, run_sweep
    from engine.io.topology import load_topology
    from engine.training.loop import run_training

    assert engine.RunConfig is RunConfig and engine.train is run_training
    assert engine.evaluate is evaluate_topology and engine.load_topology is load_topology
    assert engine.list_models is list_models and engine.get_model is get_model
    assert engine.run_sweep is run_sweep and engine.SweepSpec is SweepSpec
    assert engine.experiments.sweep.runner.run_sweep is run_sweep  # the module of that name
    assert "rf-input" in engine.list_models()
    assert set(engine.__all__) >= {"RunConfig", "train", "evaluate", "load_topology", "list_models",
                                   "get_model", "run_sweep"}


def test_an_unknown_name_is_an_attribute_error():
    try:
        engine.no_such_thing  # noqa: B018 - the attribute access is the test
    except AttributeError as exc:
        assert "no_such_thing" in str(exc)
    else:
        raise AssertionError("engine.no_such_thing resolved")


def test_importing_engine_alone_loads_no_torch():
    code = "import sys, engine; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "False"


def test_the_version_is_kept_in_one_place():
    import rfexplorer

    assert rfexplorer.__version__ == engine.__version__
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'^dynamic = \["version"\]', pyproject, re.M)
    project = pyproject.split("[project]", 1)[1].split("\n[", 1)[0]
    assert not re.search(r"^version\s*=", project, re.M)
    assert 'version = { attr = "engine.__version__" }' in pyproject
    literal = re.compile(r'^__version__\s*=\s*["\']', re.M)
    holders = [p for p in list((ROOT / "engine").rglob("*.py")) + list((ROOT / "rfexplorer").rglob("*.py"))
               if literal.search(p.read_text(encoding="utf-8"))]
    assert holders == [ROOT / "engine" / "__init__.py"]
