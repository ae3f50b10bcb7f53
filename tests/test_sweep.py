"""The reference sweep: spec and job list, aggregate math, tables, end-to-end runs (in-process and pool)."""
from __future__ import annotations

import csv
import json
import math
import statistics

import pytest
import torch

from engine import cli
from engine.config.run_config import RunConfig
from engine.config.models import list_models
from engine.core.progress import CancelToken, DivergenceError
from engine.experiments.sweep.runner import (DEFAULT_KS, SweepSpec, aggregate, markdown_table, rows_csv_text, run_sweep,
                          write_results)


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):
    """Every test here runs torch on one thread (see conftest.one_torch_thread)."""


def row(model: str, k: int, seed: int, acc, *, error=None, cancelled=False) -> dict:
    return {"model": model, "dataset": "mnist", "resonators_per_chain": k,
            "remaining_synapses_pct": round(100 * k / 784, 4), "removed_synapses_pct": round(100 - 100 * k / 784, 4),
            "test_accuracy": acc, "evaluated_on": "test", "seed": seed, "epochs": 10, "train_seconds": 1.0,
            "cancelled": cancelled, "error": error, "n_inputs": 784, "config": RunConfig(model=model, resonators_per_chain=k,
                                                                       seed=seed).to_dict()}


# --- spec ----------------------------------------------------------------------------------------------------

def test_spec_defaults():
    spec = SweepSpec()
    assert spec.models == tuple(list_models()) and spec.seeds == (0, 1, 2)
    assert spec.ks == DEFAULT_KS == (1, 3, 10, 30, 100, 392, 784) and 10 in spec.ks
    quick, full = SweepSpec.quick(), SweepSpec.full()
    assert quick.base.dataset == "mnist-mini" and quick.ks == (1, 10, 100, 784) and quick.seeds == (0, 1, 2)
    assert full.base.dataset == "mnist" and full.base.epochs == 10 and full.ks == DEFAULT_KS
    assert SweepSpec.from_dict(json.loads(json.dumps(quick.to_dict()))) == quick


def test_jobs_run_dense_once_per_seed_and_longest_first():
    spec = SweepSpec(models=("rigl", "dense", "rf"), ks=(1, 10, 100), seeds=(0, 1))
    jobs = spec.jobs(784)
    assert len(jobs) == 2 * 3 * 2 + 2
    dense = [j for j in jobs if j.model == "dense"]
    assert sorted(j.seed for j in dense) == [0, 1] and {j.resonators_per_chain for j in dense} == {784}
    assert (jobs[0].model, jobs[0].resonators_per_chain) == ("rf", 100)
    assert all(j.model != "rf" for j in jobs[-6:])  # baselines are the cheap tail
    assert len({(j.model, j.resonators_per_chain, j.seed) for j in jobs}) == len(jobs)


@pytest.mark.parametrize("changes,expected", [
    ({"models": ("rf", "mlp")}, "unknown model"),
    ({"ks": (0, 10)}, ">= 1"),
    ({"seeds": ()}, "no seed"),
    ({"workers": 0}, "workers"),
    ({"models": ("rf", "rf")}, "twice"),
])
def test_spec_validation(changes, expected):
    with pytest.raises(ValueError, match=expected):
        SweepSpec(**changes)


# --- aggregate and tables ------------------------------------------------------------------------------------

def test_aggregate_mean_std_n():
    rows = [row("rf", 10, 0, 0.80), row("rf", 10, 1, 0.84), row("rf", 10, 2, 0.83),
            row("rigl", 10, 0, 0.70), row("rigl", 10, 1, None, error="diverged"),
            row("rigl", 10, 2, 0.60, cancelled=True), row("dense", 784, 0, 0.92)]
    agg = {(a.model, a.resonators_per_chain): a for a in aggregate(rows)}
    rf = agg[("rf", 10)]
    assert rf.n == 3 and rf.n_failed == 0 and rf.seeds == (0, 1, 2)
    assert rf.mean == pytest.approx(statistics.fmean([0.80, 0.84, 0.83]))
    assert rf.std == pytest.approx(math.sqrt(((0.80 - 0.8233333) ** 2 + (0.84 - 0.8233333) ** 2
                                                  + (0.83 - 0.8233333) ** 2) / 2), rel=1e-5)
    assert (rf.min, rf.max) == (0.80, 0.84)
    assert rf.removed_synapses_pct == pytest.approx(98.7245)
    rigl = agg[("rigl", 10)]
    assert rigl.n == 1 and rigl.n_failed == 2 and rigl.mean == 0.70
    assert rigl.std == 0.0  # one seed: std 0, and n says so
    assert agg[("dense", 784)].n == 1
    assert list(agg) == [("rf", 10), ("dense", 784), ("rigl", 10)]  # the registry's order


def test_aggregate_tolerates_rows_without_timing_or_seed():
    a, b = row("rf", 10, 0, 0.5), row("rf", 10, 1, 0.7)
    del a["train_seconds"]
    b["train_seconds"] = float("nan")
    del b["seed"]
    (agg,) = aggregate([a, b])
    assert agg.n == 2 and agg.mean == pytest.approx(0.6) and agg.mean_train_seconds is None
    assert agg.seeds == (0, 0)  # a row without a seed reads as seed 0


def test_markdown_table_and_margin():
    rows = [row(m, k, s, acc) for s in (0, 1) for (m, k, acc) in (
        ("rf", 10, 0.80 + 0.01 * s), ("rigl", 10, 0.70 - 0.01 * s), ("rf", 100, 0.85), ("rigl", 100, 0.80),
        ("rf-input", 10, 0.88))] + [row("dense", 784, s, 0.92) for s in (0, 1)]
    md = markdown_table(rows)
    lines = md.splitlines()
    header = next(line for line in lines if line.startswith("| removed %"))
    assert header == "| removed % | K | rf | rf-input | dense | rigl |"
    k10 = next(line for line in lines if line.startswith("| 98.72 | 10 |"))
    assert "80.50 ± 0.71" in k10 and "69.50 ± 0.71" in k10 and "92.00 ± 0.00" in k10
    assert "| 87.24 | 100 |" in md
    assert "- RF (trained topology) − RigL (rf − rigl): +11.00 points" in md
    assert "rf-input − rigl): +18.50 points" in md
    assert "dense − rf-input): +4.00 points" in md
    # rows sorted by % removed, ascending
    removed = [float(line.split("|")[1]) for line in lines if line.startswith("| ") and line[2].isdigit()]
    assert removed == sorted(removed)


def test_margin_missing_is_said():
    md = markdown_table([row("rf", 100, 0, 0.8)])
    assert "RF − RigL: not available" in md


def test_csv_is_tidy():
    rows = [row("rf", 10, 0, 0.8), row("rigl", 10, 0, None, error="diverged")]
    text = rows_csv_text(rows)
    parsed = list(csv.DictReader(text.splitlines()))
    assert len(parsed) == 2
    assert parsed[0]["test_accuracy"] == "0.8" and parsed[1]["test_accuracy"] == ""
    assert parsed[1]["error"] == "diverged" and parsed[0]["config.device.alpha"] == "0.005"


# --- end to end ----------------------------------------------------------------------------------------------

def test_tiny_sweep_end_to_end(mini, tmp_path):
    spec = SweepSpec(models=("rf", "rigl", "dense"), ks=(1, 10), seeds=(0, 1), base=RunConfig(epochs=1))
    seen = []
    rows = run_sweep(spec, dataset=mini, on_result=seen.append)
    assert len(rows) == len(seen) == 2 * 2 * 2 + 2
    assert all(0.0 <= r["test_accuracy"] <= 1.0 and r["error"] is None for r in rows)
    assert all(r["config"]["resonators_per_chain"] == r["resonators_per_chain"] for r in rows)
    assert [(r["model"], r["resonators_per_chain"], r["seed"]) for r in rows][:2] == [("rf", 1, 0), ("rf", 1, 1)]
    paths = write_results(rows, tmp_path / "out", spec)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["sweep.csv", "sweep.json", "sweep_table.md"]
    doc = json.loads(paths["json"].read_text())
    assert doc["format"] == "rfexplorer-sweep" and len(doc["rows"]) == 10 and doc["spec"]["ks"] == [1, 10]
    assert {(a["model"], a["resonators_per_chain"]) for a in doc["aggregate"]} == {
        ("rf", 1), ("rf", 10), ("rigl", 1), ("rigl", 10), ("dense", 784)}
    assert all(a["n"] == 2 for a in doc["aggregate"]) and doc["versions"]["torch"] == torch.__version__
    with open(paths["csv"], newline="") as fh:
        assert len(list(csv.DictReader(fh))) == 10
    md = paths["md"].read_text()
    assert "| removed % | K | rf | rigl | dense |" in md and "RF (trained topology) − RigL (rf − rigl)" in md


def test_pool_matches_in_process(mini):
    spec = SweepSpec(models=("rigl", "rf"), ks=(3,), seeds=(0, 1), base=RunConfig(epochs=1))
    local = run_sweep(spec, dataset=mini)
    pooled = run_sweep(SweepSpec(**{**spec.__dict__, "workers": 2}))  # workers load mnist-mini themselves
    assert [(r["model"], r["seed"], r["test_accuracy"]) for r in pooled] == \
           [(r["model"], r["seed"], r["test_accuracy"]) for r in local]


def test_cancel_stops_the_sweep(mini):
    spec = SweepSpec(
        models=("rigl", "random"), ks=(1, 5, 10), seeds=(0, 1), base=RunConfig(epochs=1), batch_runs=False
    )
    token = CancelToken()
    seen = []

    def on_result(r):
        seen.append(r)
        if len(seen) == 2:
            token.set()

    rows = run_sweep(spec, dataset=mini, on_result=on_result, cancel=token)
    assert len(rows) == len(seen) == 2


def test_divergence_is_recorded_and_the_sweep_goes_on(mini, monkeypatch):
    import engine.training.loop

    real = engine.training.loop.run_training

    def flaky(cfg, *args, **kwargs):
        if cfg.model == "rigl" and cfg.seed == 1:
            raise DivergenceError("training diverged at epoch 1, step 2: the loss became nan")
        return real(cfg, *args, **kwargs)

    monkeypatch.setattr(engine.training.loop, "run_training", flaky)
    spec = SweepSpec(models=("rigl", "random"), ks=(5,), seeds=(0, 1), base=RunConfig(epochs=1), batch_runs=False)
    rows = run_sweep(spec, dataset=mini)
    failed = [r for r in rows if r["error"]]
    assert len(rows) == 4 and len(failed) == 1 and failed[0]["test_accuracy"] is None
    agg = {a.model: a for a in aggregate(rows)}
    assert agg["rigl"].n == 1 and agg["rigl"].n_failed == 1 and agg["random"].n == 2


def test_cli_sweep(tmp_path, capsys):
    out = tmp_path / "sw"
    assert cli.main(["sweep", "--quick", "--models", "rigl,dense", "--ks", "1,10", "--seeds", "0", "--epochs", "1",
                     "--workers", "1", "--out", str(out), "--json"]) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out.strip().splitlines()[-1])
    assert summary["runs"] == 3 and summary["failed"] == 0
    assert (out / "sweep_table.md").is_file() and (out / "sweep.csv").is_file()
    assert "[3/3]" in captured.err
    doc = json.loads((out / "sweep.json").read_text())
    assert doc["spec"]["base"]["epochs"] == 1 and doc["spec"]["base"]["dataset"] == "mnist-mini"


def test_mean_std_is_the_sample_std_and_zero_for_one_value():
    from engine.core.stats import mean_std

    values = [0.81, 0.79, 0.84]
    assert mean_std(values) == (statistics.fmean(values), statistics.stdev(values))
    assert mean_std([0.5]) == (0.5, 0.0)
    with pytest.raises(ValueError):
        mean_std([])
