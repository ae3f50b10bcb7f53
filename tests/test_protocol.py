"""The app-engine protocol (rfexplorer.protocol): every message pickles whole through the pipe, messages are matched
by class (no module reads one by position), and the protocol stays Qt-free and light."""
import ast
import dataclasses
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from rfexplorer import protocol as p

ROOT = Path(__file__).resolve().parents[1]


def _payloads() -> dict:
    """A real value for every field name the protocol's classes use (a stand-in only for the Topology)."""
    from engine.config.run_config import RunConfig
    from engine.core.progress import Snapshot
    from engine.io.results import RunResult
    from engine.physics.resonators import DeviceParams
    from engine.experiments.sweep.spec import SweepSpec
    from rfexplorer.state import DisplayState

    cfg = RunConfig(model="rf", resonators_per_chain=3, seed=4)
    weight = np.arange(12, dtype=np.float32).reshape(3, 4)
    snap = Snapshot("rf", 3, 1, 2, 5, 10, 0.5, 0.6, None, 1.0, 2.0, weight, np.zeros(3, np.float32), 0,
                    history=[(1, 0.5, 0.6, 0.7)], input_freqs_ghz=np.linspace(1, 2, 4))
    info = p.DatasetInfo("mini", "mnist-mini", "a test set", 4, 3, ("a", "b", "c"), (2, 2),
                         np.ones((2, 4), np.float32), np.array([0, 2]), "here", 10, 2)
    study = p.RobustnessRequest(model=torch.nn.Linear(4, 3), knob="power_noise", values=(0.0, 0.1), config=cfg,
                                fixed={"calibrated": False})
    return {"id": 7, "job_id": 7, "config": cfg, "dataset": "mnist-mini", "data_dir": "/data", "path": "/t.json",
            "spec": SweepSpec(models=("rf",), ks=(3,), seeds=(0, 1), base=cfg), "backend": "ray", "study": study,
            "pid": 1234, "seconds": 0.25, "modules": ("torch._dynamo",), "error": "", "info": info,
            "traceback": "Traceback ...", "snapshot": snap, "state": DisplayState("rf", weight, DeviceParams(), 3),
            "result": RunResult(cfg, 0.9, 1.5, 2, history=[(1, 0.5, 0.6, 0.7)]),
            "topology": {"kind": "rf-perceptron"}, "accuracy": 0.875, "row": {"seed": 0, "test_accuracy": 0.5},
            "rows": [{"seed": 0}], "value": 0.1, "repeat": 2, "cancelled": True, "message": "bad file",
            "stage": "import", "action": p.PauseAction.STEP}


def _same(a, b) -> bool:
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b)
    if isinstance(a, torch.nn.Module):
        return type(a) is type(b) and all(torch.equal(x, y) for x, y in
                                          zip(a.state_dict().values(), b.state_dict().values()))
    if dataclasses.is_dataclass(a) and not isinstance(a, type):
        return type(a) is type(b) and all(_same(getattr(a, f.name), getattr(b, f.name))
                                          for f in dataclasses.fields(a))
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, dict):
        return type(b) is dict and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def _subclasses(cls) -> set:
    return {s for c in cls.__subclasses__() for s in {c, *_subclasses(c)}}


def test_the_message_list_is_complete_and_every_message_is_frozen():
    listed = set(p.MESSAGE_CLASSES)
    concrete = (_subclasses(p.EngineMessage) - {p.JobMessage}) | _subclasses(p.JobRequest) | {p.Shutdown, p.PauseRun}
    assert concrete == listed
    for cls in listed:
        assert dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen, cls
        assert cls.__module__ == "rfexplorer.protocol"


@pytest.mark.parametrize("cls", p.MESSAGE_CLASSES, ids=lambda c: c.__name__)
def test_every_message_pickles_round_trip(cls):
    values = _payloads()
    message = cls(**{f.name: values[f.name] for f in dataclasses.fields(cls)})
    back = pickle.loads(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))
    assert type(back) is cls and _same(message, back)


def test_the_round_trip_comparison_sees_a_difference():
    info = _payloads()["info"]
    other = dataclasses.replace(info, sample_images=info.sample_images + 1)
    assert not _same(p.DatasetReady(info), p.DatasetReady(other))
    assert not _same(p.Failed(1, "a", "b", "load"), p.Failed(1, "a", "b", "import"))
    assert not _same(p.Done(1), p.Loaded(1)) and _same(p.Done(1), p.Done(1))


def test_each_job_kind_has_its_request_class_and_slot():
    from rfexplorer.worker import Job

    for kind in p.JobKind:
        job = Job(kind.value, payload="/t.json" if kind is p.JobKind.IMPORT else None)
        request = job.request()
        assert request.kind is kind and isinstance(request, p.JobRequest) and request.id == job.id
        assert request.slot is job.slot is kind.slot
    assert {k.slot for k in p.JobKind} == set(p.JobSlot)
    with pytest.raises(ValueError, match="not a valid JobKind"):
        Job("bake")


def test_robustness_messages_give_the_dicts_the_controller_keeps():
    assert p.RobustnessEval(1, value=0.1, repeat=2, accuracy=0.5).as_dict() == {"value": 0.1, "repeat": 2,
                                                                                 "accuracy": 0.5}
    assert p.RobustnessFinished(1, rows=[], cancelled=True).as_dict() == {"rows": [], "cancelled": True}


def positional_reads(source: str, filename: str = "<source>") -> list:
    """Where ``source`` reads a message by position (``message[3]``, ``msg[0]``) or sends a bare tuple
    (``send(("done", id))``): ``["file:line ..."]``."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if (isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name)
                and node.value.id in ("message", "msg") and isinstance(node.slice, ast.Constant)):
            found.append(f"{filename}:{node.lineno} {ast.unparse(node)}")
        if (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Tuple)
                and isinstance(node.func, (ast.Name, ast.Attribute))
                and (node.func.id if isinstance(node.func, ast.Name) else node.func.attr) in ("send", "_send")):
            found.append(f"{filename}:{node.lineno} {ast.unparse(node)}")
    return found


def test_no_app_module_reads_a_message_by_position():
    assert positional_reads("kind = message[0]\nx = msg[3]\nself._send(('shutdown',))\nsend((1, 2))") == [
        "<source>:1 message[0]", "<source>:2 msg[3]", "<source>:3 self._send(('shutdown',))",
        "<source>:4 send((1, 2))"]
    assert positional_reads("match message:\n    case Done(): pass\nsend(Done(3))\nitems[0]") == []
    found = [hit for path in sorted((ROOT / "rfexplorer").rglob("*.py"))
             for hit in positional_reads(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))]
    assert found == []


def test_the_protocol_imports_neither_qt_nor_torch():
    code = ("import sys, rfexplorer.protocol; "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('PySide6', 'shiboken6', 'pyqtgraph', "
            "'torch')); print(bad); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_import_contract_catches_qt_in_the_protocol(tmp_path):
    for name in ("engine", "rfexplorer"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    with open(tmp_path / "rfexplorer" / "protocol.py", "a", encoding="utf-8") as fh:
        fh.write("\nimport shiboken6\n")
    exe = Path(sys.executable).with_name("lint-imports")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "importlinter.cli"]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert proc.returncode != 0 and "Qt-free" in proc.stdout and "BROKEN" in proc.stdout.upper(), proc.stdout[-2000:]
