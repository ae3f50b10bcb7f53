"""rfexplorer-cli: help, the --json last-line contract, exports, evaluate, exit status 2 and Ctrl-C."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from engine import cli
from engine.core.progress import DivergenceError

ROOT = Path(__file__).resolve().parent.parent
PYTHON = ROOT / ".venv" / "bin" / "python"
if not PYTHON.exists():  # pragma: no cover - other checkouts
    PYTHON = Path(sys.executable)
SHARED_DATA = ROOT.parent / "shared" / "data"
REQUIRED_JSON_KEYS = {"model", "resonators_per_chain", "remaining_synapses_pct", "test_accuracy", "seed", "epochs",
                      "train_seconds"}


@pytest.fixture(autouse=True)
def keep_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([str(PYTHON), "-m", "engine.cli", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def last_json(stdout: str) -> dict:
    lines = [line for line in stdout.splitlines() if line.strip()]
    assert lines, "nothing on stdout"
    return json.loads(lines[-1])


# --- subprocess ---------------------------------------------------------------------------------------------

def test_help_lists_subcommands():
    proc = run_cli("--help")
    assert proc.returncode == 0
    for command in ("train", "sweep", "evaluate", "export"):
        assert command in proc.stdout


def test_train_json_last_line_contract():
    proc = run_cli("train", "--model", "rf", "--resonators-per-chain", "5", "--epochs", "1", "--threads", "1",
                   "--json")
    assert proc.returncode == 0, proc.stderr
    out = last_json(proc.stdout)
    assert REQUIRED_JSON_KEYS <= set(out)
    assert out["model"] == "rf" and out["resonators_per_chain"] == 5 and out["epochs"] == 1 and out["seed"] == 0
    assert 0.0 <= out["test_accuracy"] <= 1.0 and out["train_seconds"] > 0
    assert out["remaining_synapses_pct"] == pytest.approx(100 * 5 / 784, abs=1e-3)
    assert "epoch 1/1" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_exits_130_and_sigterm_143(sig):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([str(PYTHON), "-m", "engine.cli", "train", "--model", "rf", "-K", "784", "--epochs",
                             "50", "--threads", "1"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        header = ""
        while time.monotonic() < deadline:  # wait until training has started (header line on stderr)
            header = proc.stderr.readline()
            if "model rf" in header or not header:
                break
        assert "model rf" in header
        time.sleep(0.5)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == (130 if sig == signal.SIGINT else 143), err[-3000:]
    assert ("interrupted" in err or "terminated" in err) and "Traceback" not in err


# --- in-process (main(argv)) --------------------------------------------------------------------------------

def test_main_help_returns_0(capsys):
    assert cli.main(["--help"]) == 0
    assert "evaluate" in capsys.readouterr().out


def test_sparsity_is_converted_to_k(capsys):
    assert cli.main(["train", "--model", "rigl", "--sparsity", "98.72", "--epochs", "1", "--threads", "1",
                     "--json"]) == 0
    out = last_json(capsys.readouterr().out)
    assert out["resonators_per_chain"] == 10 and out["model"] == "rigl"


def test_dense_is_recorded_at_full_k(capsys):
    assert cli.main(["train", "--model", "dense", "--epochs", "1", "--threads", "1", "--json"]) == 0
    out = last_json(capsys.readouterr().out)
    assert out["resonators_per_chain"] == 784 and out["remaining_synapses_pct"] == 100.0


@pytest.mark.parametrize("model", ["rf-input", "set"])
def test_train_export_then_evaluate_reproduces_accuracy(tmp_path, capsys, model):
    target = tmp_path / "net.json"
    assert cli.main(["train", "--model", model, "-K", "8", "--epochs", "1", "--threads", "1", "--seed", "3",
                     "--export", str(target), "--json"]) == 0
    trained = last_json(capsys.readouterr().out)
    assert target.is_file() and target.with_suffix(".csv").is_file()
    assert trained["export"] == str(target) and trained["seed"] == 3
    assert cli.main(["evaluate", str(target), "--threads", "1", "--json", "--check"]) == 0
    captured = capsys.readouterr()
    out = last_json(captured.out)
    assert out["test_accuracy"] == trained["test_accuracy"] and out["matches_recorded"] is True
    assert "identical" in captured.err


def test_evaluate_validation_split_and_check(tmp_path, capsys):
    target = tmp_path / "v.json"
    assert cli.main(["train", "--model", "prune", "-K", "7", "--epochs", "1", "--threads", "1",
                     "--validation-fraction", "0.07", "--export", str(target), "--json"]) == 0
    trained = last_json(capsys.readouterr().out)
    assert trained["evaluated_on"] == "validation"
    assert cli.main(["evaluate", str(target), "--json", "--check", "--threads", "1"]) == 0
    out = last_json(capsys.readouterr().out)
    assert out["split"] == "validation" and out["matches_recorded"] is True
    assert out["test_accuracy"] == trained["test_accuracy"]
    doc = json.loads(target.read_text())
    doc["metrics"]["test_accuracy"] = 0.999
    target.write_text(json.dumps(doc))
    assert cli.main(["evaluate", str(target), "--check", "--threads", "1"]) == 1
    assert "differs by" in capsys.readouterr().err
    assert cli.main(["evaluate", str(target), "--split", "test", "--json", "--threads", "1"]) == 0
    assert last_json(capsys.readouterr().out)["split"] == "test"


def test_export_subcommand_trains_and_reexports(tmp_path, capsys):
    target = tmp_path / "rf.json"
    assert cli.main(["export", str(target), "--model", "rf-frozen", "-K", "4", "--epochs", "1", "--threads",
                     "1"]) == 0
    original_csv = target.with_suffix(".csv").read_bytes()
    capsys.readouterr()
    again = tmp_path / "lab.csv"
    assert cli.main(["export", "--from", str(target), str(again)]) == 0
    assert again.read_bytes() == original_csv
    assert cli.main(["export", "--from", str(target), "--model", "rf"]) == 2
    assert "cannot be given" in capsys.readouterr().err


def _error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("rfexplorer-cli: error:")]
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize("argv,expected", [
    (["train", "--model", "mlp"], "invalid choice: 'mlp'"),
    (["train", "--dataset", "cifar10"], "Unknown dataset 'cifar10'"),
    (["train", "-K", "0"], "must be >= 1"),
    (["train", "-K", "785"], "between 1 and 784"),
    (["train", "--resonators-per-chain", "abc"], "expected a whole number"),
    (["train", "-K", "5", "--sparsity", "90"], "not allowed with"),
    (["train", "--sparsity", "120"], "between 0 and 100"),
    (["train", "--epochs", "0"], "must be >= 1"),
    (["train", "--lr", "nan"], "finite"),
    (["train", "--alpha", "-1", "--epochs", "1"], "alpha must be > 0"),
    (["train", "--f-min", "5", "--f-max", "2", "--epochs", "1"], "f_min_ghz < f_max_ghz"),
    (["train", "--validation-fraction", "1.5"], "Validation fraction must be in [0, 1)"),
    (["train", "--export", "out.csv"], "must be the JSON file"),
    (["evaluate"], "required"),
    (["export"], "needs an OUTPUT"),
    (["sweep", "--quick", "--ks", "1,2000"], "between 1 and 784"),
    (["sweep", "--models", "rf,mlp"], "unknown model 'mlp'"),
    (["frobnicate"], "invalid choice"),
    (["train", "--hidden", "0"], "hidden sizes: every size must be at least 1 (got 0)"),
    (["train", "--hidden", "20,x"], "hidden sizes: 'x' is not a whole number"),
    (["train", "-K", "10,5"], "Got 2 K values for a network of 1 layer"),
    (["train", "--hidden", "20", "-K", "10,5,3"], "Got 3 K values for a network of 2 layer"),
    (["train", "--hidden", "20", "-K", "10,30"], "K of layer 2 is 30, more than its 20 inputs"),
    (["train", "--hidden", "20", "-K", "800,5", "--epochs", "1"], "between 1 and 784"),
    (["train", "--hidden", "20", "--model", "set"], "has no multilayer version"),
])
def test_wrong_input_exits_2(capsys, argv, expected):
    assert cli.main(argv) == 2
    assert expected in _error_line(capsys)


def test_missing_data_exits_2(tmp_path, capsys):
    assert cli.main(["train", "--dataset", "mnist", "--data-dir", str(tmp_path), "--epochs", "1"]) == 2
    line = _error_line(capsys)
    assert "MNIST was not found" in line and str(tmp_path) in line


@pytest.mark.parametrize("content", [b"", b"{\"format\": \"rfexplorer-topology\", \"format_", b"\x80\x04junk",
                                     b"[]"])
def test_malformed_file_exits_2(tmp_path, capsys, content):
    bad = tmp_path / "bad.json"
    bad.write_bytes(content)
    assert cli.main(["evaluate", str(bad)]) == 2
    assert str(bad) in _error_line(capsys)


def test_missing_file_and_folder_exit_2(tmp_path, capsys):
    assert cli.main(["evaluate", str(tmp_path / "nope.json")]) == 2
    assert "does not exist" in _error_line(capsys)
    assert cli.main(["evaluate", str(tmp_path)]) == 2
    assert "is a folder" in _error_line(capsys)


def test_divergence_exits_2(monkeypatch, capsys):
    import engine.training.loop

    def diverge(*args, **kwargs):
        raise DivergenceError("training diverged at epoch 1, step 3: the loss became nan; lower the learning "
                              "rate (now 0.1).")

    monkeypatch.setattr(engine.training.loop, "run_training", diverge)
    assert cli.main(["train", "--epochs", "1", "--threads", "1"]) == 2
    assert "diverged" in _error_line(capsys)


def test_threads_are_set(capsys):
    assert cli.main(["train", "--model", "random", "-K", "3", "--epochs", "1", "--threads", "1", "--json"]) == 0
    assert torch.get_num_threads() == 1


@pytest.mark.skipif(not (SHARED_DATA / "MNIST" / "raw" / "t10k-images-idx3-ubyte").is_file(),
                    reason="full MNIST not available")
def test_evaluate_on_another_dataset_is_not_compared(tmp_path, capsys):
    target = tmp_path / "r.json"
    assert cli.main(["train", "--model", "rigl", "-K", "10", "--epochs", "1", "--threads", "1", "--export",
                     str(target)]) == 0
    capsys.readouterr()
    assert cli.main(["evaluate", str(target), "--dataset", "mnist", "--data-dir", str(SHARED_DATA), "--json",
                     "--threads", "1"]) == 0
    out = last_json(capsys.readouterr().out)
    assert out["dataset"] == "mnist" and out["matches_recorded"] is None and 0 <= out["test_accuracy"] <= 1
