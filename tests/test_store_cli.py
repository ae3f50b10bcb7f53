"""Recording runs (train, export, sweep, robustness, hardware study; --no-store) and ``rfexplorer-cli runs`` list,
show, compare, export and delete, with their errors as one sentence and exit status 2."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.cli import main
from engine.io.store import open_store
from engine.io.topology import load_topology

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(autouse=True)
def keep_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> Path:
    """A small 3-class dataset file of 24 inputs (a run of two epochs takes a fraction of a second)."""
    rng = np.random.default_rng(1)
    centers = rng.uniform(0, 1, (3, 24))

    def make(n):
        y = rng.integers(0, 3, n)
        return np.clip(centers[y] + 0.25 * rng.standard_normal((n, 24)), 0, None).astype("float32"), y

    (trx, try_), (tex, tey) = make(600), make(150)
    path = tmp_path_factory.mktemp("toy") / "toy.npz"
    np.savez(path, train_x=trx, train_y=try_, test_x=tex, test_y=tey)
    return path


def train_args(toy: Path, *extra: str) -> list[str]:
    return ["train", "--model", "rf", "--dataset", str(toy), "-K", "4", "--epochs", "2", "--threads", "1", "--quiet",
            *extra]


def last_json(text: str) -> dict:
    return json.loads(text.strip().splitlines()[-1])


def test_train_records_the_run_and_its_json_has_the_per_epoch_history(toy, run_store, capsys):
    assert main(train_args(toy, "--validation-fraction", "0.2", "--json")) == 0
    out = last_json(capsys.readouterr().out)
    assert [h["epoch"] for h in out["history"]] == [1, 2]
    assert set(out["history"][0]) == {"epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy"}
    assert out["history"][-1]["val_accuracy"] == out["test_accuracy"]
    rec = open_store(run_store).get(out["run_id"])
    assert rec.source == "cli" and rec.history == out["history"] and rec.config == out["config"]
    assert rec.test_accuracy == out["test_accuracy"] and rec.topology_json is not None
    assert main(train_args(toy, "--json")) == 0  # no validation split: the test accuracy per epoch
    assert set(last_json(capsys.readouterr().out)["history"][0]) == {"epoch", "train_loss", "train_accuracy",
                                                                      "test_accuracy"}


def test_no_store_records_nothing_and_store_names_another(toy, run_store, tmp_path, capsys):
    assert main(train_args(toy, "--no-store", "--json")) == 0
    assert last_json(capsys.readouterr().out)["run_id"] is None
    assert not run_store.exists() or open_store(run_store).count() == 0
    other = tmp_path / "team.sqlite"
    assert main(train_args(toy, "--store", str(other))) == 0
    assert open_store(other).count() == 1 and (not run_store.exists() or open_store(run_store).count() == 0)


def test_a_bad_store_fails_before_training(toy, tmp_path, capsys):
    bad = tmp_path / "bad.sqlite"
    bad.write_text("not sqlite " * 50)
    assert main(train_args(toy, "--store", str(bad))) == 2
    err = capsys.readouterr().err
    assert "cannot be used" in err and err.count("\n") == 1 and "epoch 1" not in err


@pytest.fixture
def three_runs(toy, run_store, capsys):
    ids = []
    for extra in ((), ("--seed", "1"), ("--seed", "1", "--set", "device.tuning_bits=6")):
        assert main(train_args(toy, "--json", *extra)) == 0
        ids.append(last_json(capsys.readouterr().out)["run_id"])
    return ids


def test_runs_list_filters_by_settings_paths(three_runs, capsys):
    a, b, c = three_runs
    assert main(["runs", "list", "--json"]) == 0
    assert [r["id"] for r in last_json(capsys.readouterr().out)["runs"]] == [c, b, a]
    assert main(["runs", "list", "--where", "seed=1", "--where", "device.tuning_bits=6", "--json"]) == 0
    out = last_json(capsys.readouterr().out)
    assert out["total"] == 1 and [r["id"] for r in out["runs"]] == [c]
    assert main(["runs", "list", "--limit", "1"]) == 0
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    assert len(lines) == 2 and lines[1].split()[0] == str(c) and "3 run(s)" in captured.err


def test_runs_show_and_compare(three_runs, capsys):
    a, b, c = three_runs
    assert main(["runs", "show", str(a)]) == 0
    out = capsys.readouterr().out
    assert "per-epoch history:" in out and "train_loss" in out and "device.alpha" in out and "test_accuracy" in out
    assert main(["runs", "compare", str(a), str(c), "--json"]) == 0
    out = last_json(capsys.readouterr().out)
    assert set(out["settings"]) == {"seed", "device.tuning_bits"}
    assert out["settings"]["device.tuning_bits"] == [None, 6] and len(out["metrics"]["test_accuracy"]) == 2
    assert main(["runs", "compare", str(a), str(b)]) == 0
    assert "seed" in capsys.readouterr().out


def test_runs_export_writes_a_topology_file_that_evaluates_to_the_record(three_runs, tmp_path, capsys):
    a = three_runs[0]
    assert main(["runs", "export", str(a), "--out", str(tmp_path / "out"), "--json"]) == 0
    files = [Path(p) for p in last_json(capsys.readouterr().out)["files"]]
    assert [p.name for p in files] == [f"run-{a}.json", f"run-{a}.csv", f"run-{a}.record.json"]
    topo = load_topology(files[0])
    record = json.loads(files[2].read_text())
    assert topo.recorded_accuracy == pytest.approx(record["test_accuracy"]) and record["id"] == a
    assert main(["evaluate", str(files[0]), "--check"]) == 0


def test_runs_delete_needs_yes(three_runs, run_store, capsys):
    a, b, c = three_runs
    assert main(["runs", "delete", "--where", "seed=1"]) == 2
    assert "--yes" in capsys.readouterr().err and open_store(run_store).count() == 3
    assert main(["runs", "delete", "--where", "seed=1", "--yes"]) == 0
    assert [r.id for r in open_store(run_store).list()] == [a]
    assert main(["runs", "delete", str(a), str(b), "--yes"]) == 2  # b is gone: nothing deleted
    assert open_store(run_store).count() == 1


@pytest.mark.parametrize(
    "argv, words",
    [
        (["runs", "show", "999"], "No run with id 999"),
        (["runs", "list", "--where", "device.nothing=1"], "Unknown settings path 'device.nothing'"),
        (["runs", "list", "--where", "model"], "PATH=VALUE"),
        (["runs", "list", "--store", "nosuchdb://x/y"], "cannot be opened"),
        (["runs", "compare", "1", "999"], "No run with id 999"),
        (["runs", "export", "999", "--out", "unused"], "No run with id 999"),
        (["runs"], "needs an action"),
    ],
)
def test_runs_errors_are_one_sentence_and_exit_2(three_runs, argv, words, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert words in err and err.strip().count("\n") == 0, err


def test_runs_on_missing_or_unreadable_stores(tmp_path, capsys):
    assert main(["runs", "list", "--store", str(tmp_path / "none.sqlite")]) == 2
    assert "no run store at" in capsys.readouterr().err and not (tmp_path / "none.sqlite").exists()
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"\x00junk" * 100)
    assert main(["runs", "list", "--store", str(bad)]) == 2
    assert "cannot be used" in capsys.readouterr().err


def test_sweep_records_each_run_as_it_arrives(toy, run_store, tmp_path, capsys):
    argv = ["sweep", "--dataset", str(toy), "--models", "rf", "--ks", "3,5", "--seeds", "0", "--epochs", "1",
            "--workers", "1", "--quiet", "--out"]
    assert main([*argv, str(tmp_path / "a"), "--no-store"]) == 0
    assert not run_store.exists() or open_store(run_store).count() == 0
    seen = []
    from engine.experiments.sweep import runner

    original = runner._deliverer

    def spying(rows, log, on_result, recorder=None):  # the store already holds each row when it is reported
        def deliver(row):
            original(rows, log, on_result, recorder)(row)
            seen.append(open_store(run_store).count())

        return deliver

    runner._deliverer = spying
    try:
        assert main([*argv, str(tmp_path / "b")]) == 0
    finally:
        runner._deliverer = original
    capsys.readouterr()
    store = open_store(run_store)
    assert seen == [1, 2]
    assert sorted(r.metrics["resonators_per_chain"] for r in store.list({"source": "sweep"})) == [3, 5]
    assert store.count({"resonators_per_chain": "5", "model": "rf"}) == 1


def test_robustness_records_one_run_per_value(three_runs, run_store, tmp_path, capsys):
    assert main(["runs", "export", str(three_runs[0]), "--out", str(tmp_path)]) == 0
    topo = tmp_path / f"run-{three_runs[0]}.json"
    assert main(["robustness", str(topo), "--knob", "tuning_bits", "--values", "3,8", "--repeats", "2", "--out",
                 str(tmp_path / "rob"), "--no-figure", "--quiet"]) == 0
    rows = {r["value"]: r for r in last_json(capsys.readouterr().out)["rows"]}
    store = open_store(run_store)
    [rec] = store.list({"source": "robustness", "device.tuning_bits": "8"}, full=True)
    assert rec.test_accuracy == pytest.approx(rows[8]["mean"]) and rec.metrics["repeats"] == 2
    assert rec.config["device"]["tuning_bits"] == 8 and store.topology(rec.id).kind == "rf-perceptron"
    assert store.count({"source": "robustness"}) == 2


def test_the_hardware_study_records_each_training_run(toy, tmp_path):
    from dataclasses import replace

    from engine.data import load_dataset
    from engine.experiments.hardware_study import StudySpec, run_study

    spec = StudySpec.quick(models=("rf",), seeds=(0,), epochs=1, ranges=(0.05,), bits=(6,), jitters=(0.5,),
                           trained_jitters=(0.5,), spreads=(0.01,), trained_spreads=(0.01,), chips=2)
    spec = replace(spec, resonators_per_chain=4)
    store = open_store(tmp_path / "s.sqlite")
    doc = run_study(spec, dataset=load_dataset(str(toy)), store=store)
    records = store.list({"source": "hardware-study"})
    assert len(records) == doc["runs"] == len(spec.jobs())
    assert {r.metrics["part"] for r in records} == {j.part for j in spec.jobs()}
    assert store.count({"device.tuning_bits": "6", "source": "hardware-study"}) == 1


def test_store_off_in_the_environment_records_nothing(toy, run_store, monkeypatch, capsys):
    monkeypatch.setenv("RFEXPLORER_STORE", "off")
    assert main(train_args(toy, "--json")) == 0
    assert last_json(capsys.readouterr().out)["run_id"] is None and not run_store.exists()
    assert not Path("off").exists()
    assert main(["runs", "list"]) == 2
    assert "turned off" in capsys.readouterr().err
