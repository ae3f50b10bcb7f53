"""The Ray sweep backend: the same rows, digit for digit, as the local backend (needs the 'cluster' extra)."""
from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest

from engine.config.run_config import RunConfig
from engine.experiments.sweep.runner import ROWS_FILE, SweepSpec, read_rows_log, run_sweep


def _spec(workers: int) -> SweepSpec:
    return SweepSpec(models=("rf", "rigl", "dense"), ks=(1, 10), seeds=(0,),
                     base=RunConfig(dataset="mnist-mini", epochs=1), workers=workers, threads_per_worker=1)


def _key(row: dict):
    return row["model"], row["resonators_per_chain"], row["seed"]


def test_engine_does_not_import_ray():
    code = ("import sys, engine, engine.experiments.sweep.runner, engine.experiments.sweep.ray_backend, engine.cli; "
            "print('ray' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_imports_go_one_way_backends_below_the_runner_and_hardware_below_training():
    code = ("import sys, engine.nets.hardware; below_training = 'engine.training.loop' not in sys.modules; "
            "import engine.experiments.sweep.pool, engine.experiments.sweep.ray_backend, engine.experiments.hardware_study; "
            "print(below_training, 'engine.experiments.sweep.runner' not in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "True"]


def test_without_ray_the_cli_says_to_install_the_extra(tmp_path):
    # a 'ray' that cannot be imported, whether or not Ray is installed here
    (tmp_path / "ray.py").write_text("raise ImportError('no ray here')\n")
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from engine.cli import main; "
            "sys.exit(main(['sweep', '--backend', 'ray', '--quick', '--models', 'dense', '--seeds', '0', "
            "'--epochs', '1', '--out', sys.argv[2]]))")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path), str(tmp_path / "out")],
                         capture_output=True, text=True)
    assert out.returncode == 2
    assert "pip install 'rfexplorer[cluster]'" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out" / ROWS_FILE).exists()


def test_unknown_backend_is_refused():
    with pytest.raises(ValueError, match="backend"):
        run_sweep(_spec(1), backend="spark")


@pytest.fixture(scope="module")
def ray_local():
    ray = pytest.importorskip("ray")
    from engine.experiments.sweep.ray_backend import start_ray

    assert not ray.is_initialized()
    assert start_ray(ray, None, num_cpus=2)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def local_rows():
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)  # the in-process path uses the caller's threads: the same count as the tasks
    try:
        return run_sweep(dataclasses.replace(_spec(1), batch_runs=False))  # one run per task, as Ray
    finally:
        torch.set_num_threads(previous)


def test_local_instance_listens_on_loopback_only(ray_local):
    assert ray_local.get_runtime_context().gcs_address.startswith("127.0.0.1:")
    assert ray_local.cluster_resources().get("CPU") == 2


def test_ray_rows_are_identical_to_local_rows(ray_local, local_rows, tmp_path):
    seen = []
    rows = run_sweep(_spec(2), backend="ray", out_dir=tmp_path, on_result=seen.append)
    assert len(rows) == len(local_rows) == 5 and len(seen) == 5
    assert ray_local.is_initialized()  # an instance the caller started is left running
    local = {_key(r): r for r in local_rows}
    for row in rows:
        ref = local[_key(row)]
        assert row["error"] is None
        assert repr(row["test_accuracy"]) == repr(ref["test_accuracy"])
        assert row["rewiring_events"] == ref["rewiring_events"]
        assert json.dumps(row["config"], sort_keys=True) == json.dumps(ref["config"], sort_keys=True)
    logged, notes = read_rows_log(tmp_path / ROWS_FILE)
    assert not notes and sorted(map(_key, logged)) == sorted(map(_key, rows))
    # resuming through Ray: everything is already in rows.jsonl, so nothing runs and nothing is reported
    again = []
    resumed = run_sweep(_spec(2), backend="ray", out_dir=tmp_path, on_result=again.append)
    assert again == [] and [r["test_accuracy"] for r in resumed] == [r["test_accuracy"] for r in rows]


def test_cancel_stops_delivering(ray_local):
    from engine.core.progress import CancelToken

    token = CancelToken()
    seen = []

    def on_result(row):
        seen.append(row)
        token.set()

    rows = run_sweep(_spec(2), backend="ray", cancel=token, on_result=on_result)
    assert len(seen) == 1 and len(rows) == 1
