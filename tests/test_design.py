"""rfexplorer-cli design: the search space and objectives, the CLI's errors, a tiny study's front files, pruning,
an interrupted study continued, and two worker processes sharing one study (engine.experiments.design)."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from engine.cli import main
from engine.experiments.design import ATTR_CURVE, DesignPlan, _Pruner, counts, finished
from engine.experiments.design_space import (
    DesignSpecError,
    parse_dimension,
    parse_objectives,
    parse_requirements,
    parse_space,
)
from engine.io.store import open_store
from engine.io.topology import load_topology

ROOT = Path(__file__).resolve().parents[1]
SPACE = ["--space", "resonators_per_chain=1:8:int", "--space", "device.tuning_bits=3:8:int"]
OBJECTIVES = ["--maximize", "val_accuracy", "--minimize", "resonators", "--minimize", "device.tuning_bits"]


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> Path:
    """A small 3-class dataset file: trials of a few epochs take well under a second."""
    rng = np.random.default_rng(0)
    centers = rng.uniform(0, 1, (3, 24))

    def make(n):
        y = rng.integers(0, 3, n)
        return np.clip(centers[y] + 0.25 * rng.standard_normal((n, 24)), 0, None).astype("float32"), y

    (trx, try_), (tex, tey) = make(600), make(150)
    path = tmp_path_factory.mktemp("toy") / "toy.npz"
    np.savez(path, train_x=trx, train_y=try_, test_x=tex, test_y=tey)
    return path


def design_args(toy: Path, store: Path, out: Path, *extra: str) -> list[str]:
    return [
        "design", "--model", "rf-input", "--dataset", str(toy), "--epochs", "2", *SPACE, *OBJECTIVES,
        "--store", str(store), "--out", str(out), "--threads", "1", "--quiet", *extra,
    ]  # fmt: skip


def study_trials(store: Path, name: str) -> list:
    storage = optuna.storages.RDBStorage(f"sqlite:///{store}")
    return optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)


# ---------------------------------------------------------------------------------------------------------
# The space and the objectives
# ---------------------------------------------------------------------------------------------------------


def test_space_ranges_and_choices():
    k = parse_dimension("resonators_per_chain=1:100:int:log", "rf-input")
    assert (k.low, k.high, k.integer, k.log) == (1, 100, True, True)
    r = parse_dimension("device.tuning_range=0.01:0.5:log", "rf-input")
    assert (r.low, r.high, r.integer, r.log) == (0.01, 0.5, False, True)
    bits = parse_dimension("device.tuning_bits=4:12", "rf-input")
    assert bits.integer  # a whole-number setting is sampled as one without :int
    hidden = parse_dimension("hidden=0,32,100,200+100", "rf-input")
    assert [hidden.value(c, "rf-input") for c in hidden.choices] == [(), (32,), (100,), (200, 100)]
    plan = parse_dimension("device.plan=geometric,linear", "rf-input")
    assert plan.value("linear", "rf-input") == "linear"


@pytest.mark.parametrize(
    "text, words",
    [
        ("nosuch=1:2", "unknown setting nosuch"),
        ("device.nosuch=1:2", "unknown setting device.nosuch"),
        ("resonators_per_chain=5:1", "range is empty"),
        ("resonators_per_chain=3:3", "range is empty"),
        ("device.tuning_range=0:0.5:log", "log range must start above 0"),
        ("device.tuning_bits=a:8", "'a' is not a number"),
        ("device.tuning_bits=4:8:cubic", "'cubic' is not int or log"),
        ("resonators_per_chain=1.5:4:int", "whole-number ends"),
        ("hidden=1:3", "hidden is not a number"),
        ("dataset=1:3", "dataset is not a number"),
        ("device.tuning_bits=4,x", "device.tuning_bits must be a whole number"),
        ("hidden=32,x", "hidden"),
        ("device.plan=linear,linear", "given twice"),
        ("device.plan=linear,", "empty item"),
        ("resonators_per_chain", "must look like PATH="),
        ("=1:2", "must look like PATH="),
    ],
)
def test_space_errors_name_the_dimension(text, words):
    with pytest.raises(DesignSpecError) as info:
        parse_dimension(text, "rf-input")
    assert words in str(info.value)
    assert text.split("=")[0] in str(info.value) or text.startswith("=")


def test_space_needs_a_dimension_and_each_path_once():
    with pytest.raises(DesignSpecError, match="at least one --space"):
        parse_space([])
    with pytest.raises(DesignSpecError, match="given twice"):
        parse_space(["device.tuning_bits=4:8", "device.tuning_bits=3:5"])


def test_objectives():
    assert [o.describe() for o in parse_objectives([])] == ["maximize val_accuracy", "minimize resonators"]
    objs = parse_objectives([("maximize", "val_accuracy"), ("minimize", "device.tuning_range"), ("minimize", "hidden")])
    assert [o.is_metric for o in objs] == [True, False, False]
    for pairs, words in [
        ([("minimize", "nosuch")], "--minimize nosuch: not a metric"),
        ([("maximize", "device.plan")], "--maximize device.plan: the setting is not a number"),
        ([("maximize", "val_accuracy"), ("minimize", "val_accuracy")], "val_accuracy is given twice"),
    ]:
        with pytest.raises(DesignSpecError, match=words):
            parse_objectives(pairs)


@pytest.mark.parametrize(
    "extra, words",
    [
        (["--space", "nosuch=1:2"], "--space nosuch=1:2: unknown setting nosuch"),
        (["--space", "resonators_per_chain=9:2"], "the range is empty"),
        (["--space", "resonators_per_chain=1:50:int"], "at most 24"),
        (["--space", "device.tuning_bits=1:40:int"], "tuning_bits must be a whole number from 1 to"),
        (["--space", "device.tuning_bits=4:8", "--minimize", "nosuch"], "--minimize nosuch: not a metric"),
        (["--space", "device.tuning_bits=4:8", "--time-budget", "0"], "--time-budget must be a positive"),
        ([], "at least one --space"),
    ],
)
def test_cli_refuses_a_bad_search_in_one_sentence(toy, tmp_path, capsys, extra, words):
    args = ["design", "--model", "rf-input", "--dataset", str(toy), "--store", str(tmp_path / "s.sqlite"), *extra]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("rfexplorer-cli: error: ") and words in err[0], err
    assert not (tmp_path / "design-results").exists()


# ---------------------------------------------------------------------------------------------------------
# Pruning: the median rule on the per-epoch validation accuracy
# ---------------------------------------------------------------------------------------------------------


class _Snap:
    def __init__(self, accs, epochs=5):
        self.history = [(i + 1, 0.0, 0.0, a) for i, a in enumerate(accs)]
        self.epochs = epochs


def test_median_pruner_cancels_a_trial_below_the_median():
    from engine.core.progress import CancelToken

    study = optuna.create_study(directions=["maximize", "minimize"])
    for acc in (0.5, 0.6, 0.7, 0.8):
        study.add_trial(optuna.trial.create_trial(values=[acc, 1.0], user_attrs={ATTR_CURVE: [acc, acc + 0.1]}))
    good, bad, off = CancelToken(), CancelToken(), CancelToken()
    _Pruner(study, True, good)(_Snap([0.66]))
    _Pruner(study, True, bad)(_Snap([0.64]))
    _Pruner(study, False, off)(_Snap([0.1]))
    assert not good.is_set() and bad.is_set() and not off.is_set()


def test_a_trial_below_the_median_is_cancelled_and_told_pruned(toy, monkeypatch):
    from engine.config.run_config import RunConfig
    from engine.core.progress import CancelToken
    from engine.experiments import design
    from engine.io.results import RunResult
    from engine.training import loop

    base = RunConfig(model="rf-input", dataset=str(toy), epochs=3, validation_fraction=0.1).resolved().to_dict()
    dims = tuple(parse_space(["device.tuning_bits=4:8"], "rf-input"))
    objectives = tuple(parse_objectives([]))
    plan = DesignPlan(base=base, dims=dims, objectives=objectives, study_name="p", trials=9, prune=True)
    study = optuna.create_study(directions=plan.directions)
    for acc in (0.8, 0.85, 0.9, 0.95):
        study.add_trial(optuna.trial.create_trial(values=[acc, 3.0], user_attrs={ATTR_CURVE: [acc, acc, acc]}))
    seen = {}

    def fake_training(cfg, *, dataset, progress, cancel, snapshot_interval_s):
        progress(_Snap([0.3], epochs=3))  # epoch 1: below the median of the completed trials
        seen["cancelled"] = cancel.is_set()
        return RunResult(config=cfg, test_accuracy=0.3, train_seconds=1.0, epochs_completed=1, cancelled=True)

    monkeypatch.setattr(loop, "run_training", fake_training)
    trial = design.claim_trial(study, plan)
    frozen = design.run_trial(study, trial, plan, None, None, CancelToken(), {})
    assert seen["cancelled"] and frozen.state == TrialState.PRUNED and frozen in finished(study.trials)
    assert frozen.user_attrs[ATTR_CURVE] == [0.3]


# ---------------------------------------------------------------------------------------------------------
# A tiny study: the front's files, the store, continuing
# ---------------------------------------------------------------------------------------------------------


def test_tiny_study_writes_the_front_and_records_every_trial(toy, tmp_path, capsys):
    store, out = tmp_path / "runs.sqlite", tmp_path / "out"
    assert main(design_args(toy, store, out, "--trials", "5", "--study", "tiny", "--json")) == 0
    cap = capsys.readouterr()
    assert "trial 5/5" in cap.err and "ETA" in cap.err and "best val_accuracy" in cap.err
    report = json.loads(cap.out.strip().splitlines()[-1])
    assert report["trials"]["finished"] == 5
    for name in ("pareto.csv", "pareto.json", "pareto.png"):
        assert (out / name).stat().st_size > 0
    assert (out / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with (out / "pareto.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    front = json.loads((out / "pareto.json").read_text())["front"]
    assert len(rows) == len(front) == len(report["front"]) >= 1
    trials = {t.number: t for t in study_trials(store, "tiny")}
    with open_store(store) as rs:
        runs = rs.list({"source": "design"})
        assert len(runs) == 5  # every trial's run, recorded once
        for row in rows:
            t = trials[int(row["trial"])]
            assert t.state == TrialState.COMPLETE
            topo = load_topology(out / row["topology"])
            assert topo.resonators_per_chain == int(row["resonators_per_chain"])
            assert topo.evaluated_on == "validation"  # the search never saw the test set
            assert float(row["val_accuracy"]) == pytest.approx(topo.recorded_accuracy)
            assert 0.0 <= float(row["test_accuracy"]) <= 1.0
            assert rs.get(int(row["run_id"])).settings()["resonators_per_chain"] == topo.resonators_per_chain
    # the front is Optuna's: no completed trial beats a front member in every objective
    done = [t for t in trials.values() if t.state == TrialState.COMPLETE]
    for row in rows:
        mine = trials[int(row["trial"])].values
        for t in done:
            assert not (t.values[0] >= mine[0] and t.values[1] <= mine[1] and t.values[2] <= mine[2]
                        and list(t.values) != list(mine))  # fmt: skip
    # the same command continues the study: more trials, none run again
    assert main(design_args(toy, store, out, "--trials", "7", "--study", "tiny", "--prune")) == 0
    after = study_trials(store, "tiny")
    assert len(finished(after)) == 7 and all(after[n].state == trials[n].state for n in trials)


def test_a_study_name_keeps_its_search(toy, tmp_path, capsys):
    store, out = tmp_path / "runs.sqlite", tmp_path / "out"
    assert main(design_args(toy, store, out, "--trials", "1", "--study", "s1")) == 0
    args = design_args(toy, store, out, "--trials", "2", "--study", "s1")
    args[args.index("resonators_per_chain=1:8:int")] = "resonators_per_chain=2:8:int"
    capsys.readouterr()
    assert main(args) == 2
    assert "choose another --study name" in capsys.readouterr().err


def test_requirements_parse_in_the_objectives_units_and_errors_name_them():
    objectives = parse_objectives([("maximize", "val_accuracy"), ("minimize", "resonators")])
    (acc,) = parse_requirements(["val_accuracy>=90"], objectives)  # percent, as people write it
    assert acc.at_least and acc.bound == pytest.approx(0.9) and acc.describe() == "val_accuracy>=0.9"
    assert acc.violation(0.95) < 0 < acc.violation(0.85)
    (res,) = parse_requirements(["resonators <= 100"], objectives)
    assert not res.at_least and res.violation(80) < 0 < res.violation(120)
    for text, words in (("val_accuracy>0.9", "NAME>=VALUE"), ("train_seconds>=3", "not an objective"),
                        ("val_accuracy>=high", "--require val_accuracy>=high")):
        with pytest.raises(DesignSpecError, match=words):
            parse_requirements([text], objectives)


def test_a_requirement_keeps_the_front_to_the_trials_that_meet_it(toy, tmp_path, capsys):
    """With --require, every trial carries its constraint, and the front holds only trials that meet it (an
    unmet requirement gives an empty front and says so)."""
    store, out = tmp_path / "runs.sqlite", tmp_path / "out"
    assert main(design_args(toy, store, out, "--trials", "4", "--study", "req", "--require", "val_accuracy>=0.5",
                            "--json")) == 0  # fmt: skip
    front = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["front"]
    trials = study_trials(store, "req")
    assert all(any(k.startswith("constraints") for k in t.system_attrs) for t in trials if t.values)
    met = {t.number for t in trials if t.values and t.values[0] >= 0.5}
    assert front and {r["trial"] for r in front} <= met
    out2 = tmp_path / "out2"
    assert main(design_args(toy, store, out2, "--trials", "2", "--study", "never", "--require",
                            "resonators<=0")) == 0  # fmt: skip (no network has no resonator)
    err = capsys.readouterr().err
    assert "met resonators<=0" in err and "the front is empty" in err
    with (out2 / "pareto.csv").open() as fh:
        assert list(csv.DictReader(fh)) == []


def test_no_store_runs_in_memory(toy, tmp_path, run_store, capsys):
    out = tmp_path / "out"
    args = design_args(toy, tmp_path / "unused.sqlite", out, "--trials", "3", "--no-store")
    assert main(args) == 0
    assert (out / "pareto.csv").exists() and list((out / "front").glob("trial-*.json"))
    assert not (tmp_path / "unused.sqlite").exists() and not run_store.exists()
    assert main([*args, "--workers", "2"]) == 2
    assert "need one (not --no-store)" in capsys.readouterr().err


def test_failed_trials_do_not_count_and_three_in_a_row_stop_the_search(toy, tmp_path, monkeypatch, capsys):
    from engine.core.progress import DivergenceError
    from engine.training import loop

    calls = []

    def diverging(cfg, **kwargs):
        calls.append(cfg)
        raise DivergenceError("training diverged at epoch 1, by step 3: the loss became nan")

    monkeypatch.setattr(loop, "run_training", diverging)
    store = tmp_path / "runs.sqlite"
    assert main(design_args(toy, store, tmp_path / "out", "--trials", "5", "--study", "fails")) == 2
    err = capsys.readouterr().err
    assert "trial #0 failed" in err and "3 trials in a row failed" in err and "the loss became nan" in err
    trials = study_trials(store, "fails")
    assert len(calls) == 3 and [t.state for t in trials] == [TrialState.FAIL] * 3
    assert not finished(trials) and all("diverged" in t.user_attrs["error"] for t in trials)


# ---------------------------------------------------------------------------------------------------------
# Processes: Ctrl-C then rerun, and two workers on one study
# ---------------------------------------------------------------------------------------------------------


def _cli(args: list[str]) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "engine.cli", *args], cwd=ROOT, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _wait_for(store: Path, name: str, n: int, proc: subprocess.Popen, timeout: float = 240.0) -> int:
    end = time.monotonic() + timeout
    while time.monotonic() < end and proc.poll() is None:
        try:
            done = len(finished(study_trials(store, name)))
        except (KeyError, optuna.exceptions.StorageInternalError, Exception):  # noqa: BLE001 - not created yet
            done = 0
        if done >= n:
            return done
        time.sleep(0.2)
    raise AssertionError(f"the study did not reach {n} finished trials: {proc.communicate()[1][-2000:]}")


def test_ctrl_c_then_rerun_continues_with_no_finished_trial_lost(toy, tmp_path):
    store, out = tmp_path / "runs.sqlite", tmp_path / "out"
    args = design_args(toy, store, out, "--trials", "40", "--study", "stop", "--epochs", "6")
    proc = _cli(args)
    _wait_for(store, "stop", 2, proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "to go on" in err
    before = {t.number: t for t in finished(study_trials(store, "stop"))}
    assert 2 <= len(before) < 40
    assert not [t for t in study_trials(store, "stop") if t.state == TrialState.RUNNING]
    target = len(before) + 2
    args[args.index("40")] = str(target)
    rerun = _cli(args)
    _, err = rerun.communicate(timeout=240)
    assert rerun.returncode == 0, err
    after = study_trials(store, "stop")
    assert len(finished(after)) == target
    for n, t in before.items():  # every finished trial kept, as it was
        assert after[n].state == t.state and after[n].values == t.values
    with open_store(store) as rs:
        assert len(rs.list({"source": "design"})) == target


def test_two_worker_processes_share_one_study(toy, tmp_path):
    store, out = tmp_path / "runs.sqlite", tmp_path / "out"
    n = 6
    procs = [_cli(design_args(toy, store, out / str(i), "--trials", str(n), "--study", "pair")) for i in range(2)]
    errs = [p.communicate(timeout=300)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errs
    trials = study_trials(store, "pair")
    done = finished(trials)
    assert len(done) == n and not [t for t in trials if counts(t) and t not in done]
    workers = {t.user_attrs["worker"] for t in done}
    assert len(workers) == 2  # both processes ran trials
    with open_store(store) as rs:
        runs = rs.list({"source": "design"})
    recorded = sorted(r.metrics["design_trial"] for r in runs)
    assert recorded == sorted(t.number for t in done)  # each trial's run once, none lost


def test_workers_option_runs_processes(toy, tmp_path, capsys):
    store, out = tmp_path / "runs.sqlite", tmp_path / "out"
    assert main(design_args(toy, store, out, "--trials", "4", "--study", "procs", "--workers", "2")) == 0
    done = finished(study_trials(store, "procs"))
    assert len(done) == 4 and len({t.user_attrs["worker"] for t in done}) >= 1
    assert "trial 4/4" in capsys.readouterr().err


def test_ray_tasks_share_the_study(toy, tmp_path, capsys):
    pytest.importorskip("ray")
    store, out = tmp_path / "runs.sqlite", tmp_path / "out"
    args = design_args(toy, store, out, "--trials", "3", "--study", "ray", "--backend", "ray", "--workers", "2")
    assert main(args) == 0
    done = finished(study_trials(store, "ray"))
    assert len(done) == 3 and (out / "pareto.csv").exists()
    with open_store(store) as rs:
        recorded = sorted(r.metrics["design_trial"] for r in rs.list({"source": "design"}))
    assert recorded == sorted(t.number for t in done)


def test_plan_is_picklable():
    import pickle

    dims = tuple(parse_space(["device.tuning_bits=4:8"]))
    plan = DesignPlan(base={"model": "rf"}, dims=dims, objectives=tuple(parse_objectives([])), study_name="x", trials=1)
    assert pickle.loads(pickle.dumps(plan)) == plan
