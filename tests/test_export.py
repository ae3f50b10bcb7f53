"""Topology files: exact round trips, the lab CSV, atomic writes and the validation of malformed files."""
from __future__ import annotations

import csv
import json
import math
import os
import pickle
from pathlib import Path

import pytest
import torch

from engine import export as ex
from engine.config import RunConfig
from engine.data import Dataset
from engine.export import (FORMAT_NAME, SparsePerceptron, Topology, TopologyFileError, evaluate_topology,
                           export_result, load_topology, write_topology, write_topology_csv)
from engine.physics import DeviceParams
from engine.rf_perceptron import RFPerceptron
from engine.training import run_training


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):
    """Every test here runs torch on one thread (see conftest.one_torch_thread)."""


@pytest.fixture(scope="module")
def rf_result(mini):
    return run_training(RunConfig(model="rf", resonators_per_chain=10, epochs=1), dataset=mini)


@pytest.fixture(scope="module")
def rigl_result(mini):
    return run_training(RunConfig(model="rigl", resonators_per_chain=10, epochs=1), dataset=mini)


@pytest.fixture(scope="module")
def rf_doc_text(rf_result, tmp_path_factory):
    path = tmp_path_factory.mktemp("rf") / "rf.json"
    export_result(rf_result, path)
    return path.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def rigl_doc_text(rigl_result, tmp_path_factory):
    path = tmp_path_factory.mktemp("rigl") / "rigl.json"
    export_result(rigl_result, path)
    return path.read_text(encoding="utf-8")


# --- round trips ------------------------------------------------------------------------------------------

def test_rf_round_trip_is_bit_exact(rf_result, mini, tmp_path):
    json_path, csv_path = export_result(rf_result, tmp_path / "rf.json")
    assert csv_path == tmp_path / "rf.csv" and csv_path.is_file()
    topo = load_topology(json_path)
    assert isinstance(topo, Topology) and topo.kind == "rf-perceptron" and topo.model_name == "rf"
    assert isinstance(topo.model, RFPerceptron) and not topo.model.training
    trained = rf_result.model
    assert torch.equal(topo.model.chains.resonator_comb, trained.chains.resonator_comb)
    assert torch.equal(topo.model.chains.input_comb, trained.chains.input_comb)
    assert torch.equal(topo.model.bias, trained.bias)
    assert torch.equal(topo.model.log_gain, trained.log_gain)
    assert torch.equal(topo.model.effective_weight(), trained.effective_weight())
    assert topo.config == rf_result.config and topo.dataset == "mnist-mini"
    assert topo.metrics["test_accuracy"] == rf_result.test_accuracy  # full precision, not summary()'s rounding
    assert topo.versions["torch"] == torch.__version__ and topo.created
    assert topo.image_shape == (28, 28) and topo.n_inputs == 784 and topo.n_classes == 10
    acc = evaluate_topology(topo, mini)
    assert acc == rf_result.test_accuracy == topo.recorded_accuracy
    assert evaluate_topology(json_path, "mnist-mini") == acc  # a path and a dataset name work too


def test_rf_input_with_device_spreads_round_trip(mini, tmp_path):
    dev = DeviceParams(alpha_dtod=0.1, k_sd_dtod=0.1, plan="linear", parity="odd", phi=0.3, f_min_ghz=2.0,
                       f_max_ghz=12.0)
    result = run_training(RunConfig(model="rf-input", resonators_per_chain=6, epochs=1, device=dev), dataset=mini)
    json_path, _ = export_result(result, tmp_path / "rfi.json")
    topo = load_topology(json_path)
    assert topo.model.params == dev
    assert torch.equal(topo.model.chains.alpha_r, result.model.chains.alpha_r)
    assert torch.equal(topo.model.chains.k_sd_r, result.model.chains.k_sd_r)
    assert torch.equal(topo.model.chains.input_comb, result.model.chains.input_comb)
    assert evaluate_topology(topo, mini) == result.test_accuracy
    doc = json.loads(json_path.read_text())
    res = doc["chains"][0]["resonators"][0]
    assert {"alpha", "k_sd"} <= set(res) and res["sign"] == -1  # parity 'odd': s_0 = -1
    assert doc["inputs"]["trained"] is True


def test_baseline_round_trip_is_exact(rigl_result, mini, tmp_path):
    json_path, csv_path = export_result(rigl_result, tmp_path / "rigl.json")
    topo = load_topology(json_path)
    assert topo.kind == "sparse-perceptron" and isinstance(topo.model, SparsePerceptron)
    assert torch.equal(topo.model.effective_weight(), rigl_result.model.effective_weight())
    assert torch.equal(topo.model.bias, rigl_result.model.bias)
    doc = json.loads(json_path.read_text())
    assert len(doc["weights"]) == topo.model.synapse_count() <= 10 * 10
    assert evaluate_topology(topo, mini) == rigl_result.test_accuracy == topo.recorded_accuracy
    with open(csv_path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == list(ex.SPARSE_CSV_COLUMNS) and len(rows) == len(doc["weights"])
    for row in rows:
        i = int(row["input"])
        assert (int(row["pixel_row"]), int(row["pixel_col"])) == divmod(i, 28)
        assert float(row["weight"]) == topo.model.weight[int(row["class"]), i].item()


def test_dense_round_trip_is_exact(mini, tmp_path):
    result = run_training(RunConfig(model="dense", resonators_per_chain=784, epochs=1), dataset=mini)
    topo = load_topology(export_result(result, tmp_path / "dense.json")[0])
    assert evaluate_topology(topo, mini) == result.test_accuracy


def test_validation_split_is_reproduced(mini, tmp_path):
    result = run_training(RunConfig(model="rf-frozen", resonators_per_chain=5, epochs=1, validation_fraction=0.1),
                          dataset=mini)
    topo = load_topology(export_result(result, tmp_path / "val.json")[0])
    assert topo.evaluated_on == "validation"
    assert evaluate_topology(topo, mini) == result.test_accuracy == topo.recorded_accuracy
    assert 0.0 <= evaluate_topology(topo, mini, split="test") <= 1.0


def test_rf_csv_has_one_row_per_resonator(rf_result, tmp_path):
    _, csv_path = export_result(rf_result, tmp_path / "rf.json")
    with open(csv_path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == list(ex.RF_CSV_COLUMNS)
    assert len(rows) == 10 * 10
    idx, coupling = rf_result.model.attachments()
    with torch.no_grad():
        freqs = rf_result.model.chains.resonator_freqs_ghz()
    for row in rows:
        j, k = int(row["chain"]), int(row["index"])
        assert int(row["attached_input"]) == int(idx[j, k])
        assert (int(row["pixel_row"]), int(row["pixel_col"])) == divmod(int(idx[j, k]), 28)
        assert float(row["frequency_ghz"]) == float(freqs[j, k])
        assert float(row["comb_position"]) == rf_result.model.chains.resonator_comb[j, k].item()
        assert float(row["coupling"]) == float(coupling[j, k])
        assert int(row["sign"]) == (1 if k % 2 == 0 else -1)


def test_reexport_csv_from_loaded_file_is_identical(rf_result, tmp_path):
    json_path, csv_path = export_result(rf_result, tmp_path / "rf.json")
    again = write_topology_csv(load_topology(json_path), tmp_path / "again.csv")
    assert again.read_bytes() == csv_path.read_bytes()


def test_evaluate_rejects_a_dataset_of_another_size(rigl_result, tmp_path):
    topo = load_topology(export_result(rigl_result, tmp_path / "r.json")[0])
    small = Dataset("tiny", torch.zeros(4, 64), torch.zeros(4, dtype=torch.long), torch.zeros(2, 64),
                    torch.zeros(2, dtype=torch.long), image_shape=(8, 8))
    with pytest.raises(ValueError, match="784 inputs"):
        evaluate_topology(topo, small)


# --- atomic writes ----------------------------------------------------------------------------------------

def _temp_files(folder: Path) -> list:
    return [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]


def test_atomic_write_leaves_no_temp_files(rf_result, tmp_path):
    export_result(rf_result, tmp_path / "rf.json")
    export_result(rf_result, tmp_path / "rf.json")  # overwrite
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rf.csv", "rf.json"]
    mode = (tmp_path / "rf.json").stat().st_mode & 0o777
    assert mode & 0o644 == 0o644 or mode == 0o666 & ~0o077  # ordinary file permissions, not mkstemp's 0600


@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_failed_write_keeps_the_destination(rf_doc_text, tmp_path, monkeypatch, failing):
    dest = tmp_path / "rf.json"
    dest.write_text("previous content")

    def boom(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ex.os, failing, boom)
    with pytest.raises(OSError, match="No space"):
        write_topology(json.loads(rf_doc_text), dest)
    monkeypatch.undo()
    assert dest.read_text() == "previous content"
    assert _temp_files(tmp_path) == []


def test_unserialisable_document_is_not_written(tmp_path):
    dest = tmp_path / "x.json"
    with pytest.raises(TypeError):
        write_topology({"format": FORMAT_NAME, "bad": object()}, dest)
    assert not dest.exists() and _temp_files(tmp_path) == []


def test_json_is_strict(rf_doc_text):
    json.loads(rf_doc_text, parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))


# --- malformed files --------------------------------------------------------------------------------------

def _check_message(exc: TopologyFileError) -> str:
    msg = str(exc)
    assert "\n" not in msg and msg.endswith(".") and msg[0].isupper() and len(msg) < 400
    return msg


def _write(tmp_path: Path, doc, name: str = "t.json") -> Path:
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return path


def _mutated(text: str, mutate) -> dict:
    doc = json.loads(text)
    mutate(doc)
    return doc


RF_MUTATIONS = {
    "wrong format name": (lambda d: d.update(format="something-else"), "format is 'something-else'"),
    "newer version": (lambda d: d.update(format_version=2), "newer rfexplorer"),
    "older version": (lambda d: d.update(format_version=0), "not supported"),
    "version as string": (lambda d: d.update(format_version="1"), "format_version must be a whole number"),
    "unknown kind": (lambda d: d.update(kind="mlp"), "kind 'mlp' is unknown"),
    "kind/model mismatch": (lambda d: d.update(model="rigl"), "does not match kind"),
    "unknown model": (lambda d: d.update(model="transformer"), "model 'transformer' is unknown"),
    "missing chains": (lambda d: d.pop("chains"), "no 'chains' entry"),
    "n_inputs as string": (lambda d: d.update(n_inputs="784"), "n_inputs must be a whole number"),
    "short input list": (lambda d: d["inputs"].update(comb_position=d["inputs"]["comb_position"][:-1]),
                         "inputs.comb_position has 783 entries where 784 were expected"),
    "too few chains": (lambda d: d.update(chains=d["chains"][:9]), "chains has 9 entries where 10"),
    "too few resonators": (lambda d: d["chains"][3].update(resonators=d["chains"][3]["resonators"][:4]),
                           "chains[3].resonators has 4 entries where 10"),
    "attached input out of range": (lambda d: d["chains"][2]["resonators"][1].update(attached_input=784),
                                    "chains[2].resonators[1].attached_input is 784, out of range"),
    "negative attached input": (lambda d: d["chains"][0]["resonators"][0].update(attached_input=-1),
                                "out of range"),
    "comb outside tuning range": (lambda d: d["chains"][0]["resonators"][0].update(comb_position=1e6),
                                  "outside the tuning range"),
    "frequency edited": (lambda d: d["chains"][1]["resonators"][2].update(
        frequency_ghz=d["chains"][1]["resonators"][2]["frequency_ghz"] * 1.01), "but its comb position"),
    "sign flipped": (lambda d: d["chains"][0]["resonators"][1].update(sign=1), "sign is 1 but"),
    "bias as string": (lambda d: d["chains"][0].update(bias="0.1"), "chains[0].bias must be a number"),
    "bias as bool": (lambda d: d["chains"][0].update(bias=True), "chains[0].bias must be a number"),
    "invalid physics": (lambda d: d["physics"].update(alpha=-0.1), "physics parameters are not valid"),
    "unknown physics": (lambda d: d["physics"].update(temperature=300.0), "unknown parameter 'temperature'"),
    "physics type": (lambda d: d["physics"].update(plan=3), "physics.plan must be a string"),
    "config for another model": (lambda d: d["config"].update(model="rf-input"), "run config is for model"),
    "invalid config": (lambda d: d["config"].update(epochs=0), "run config is not valid"),
    "config K mismatch": (lambda d: d["config"].update(resonators_per_chain=11), "resonators per chain"),
    "image shape wrong": (lambda d: d.update(image_shape=[20, 20]), "does not have n_inputs"),
    "pixel row wrong": (lambda d: d["chains"][0]["resonators"][0].update(pixel_row=0, attached_input=100),
                        "pixel_row is 0 but attached input 100"),
    "gain inconsistent": (lambda d: d["readout"].update(gain=d["readout"]["gain"] * 2), "readout.gain"),
    "accuracy above 1": (lambda d: d["metrics"].update(test_accuracy=92.5), "not a fraction"),
    "metrics not object": (lambda d: d.update(metrics=[1, 2]), "metrics must be a JSON object"),
}


@pytest.mark.parametrize("name", list(RF_MUTATIONS))
def test_malformed_rf_file(rf_doc_text, tmp_path, name):
    mutate, expected = RF_MUTATIONS[name]
    path = _write(tmp_path, _mutated(rf_doc_text, mutate))
    with pytest.raises(TopologyFileError) as info:
        load_topology(path)
    msg = _check_message(info.value)
    assert expected in msg and str(path) in msg


SPARSE_MUTATIONS = {
    "class out of range": (lambda d: d["weights"][0].__setitem__(0, 10), "weights[0] class index is 10"),
    "input out of range": (lambda d: d["weights"][1].__setitem__(1, 9999), "weights[1] input index is 9999"),
    "not a triplet": (lambda d: d["weights"][0].pop(), "weights[0] has 2 entries where 3"),
    "duplicate weight": (lambda d: d["weights"].append(list(d["weights"][0])), "listed twice"),
    "over budget": (lambda d: d["weights"].extend([[c, i, 0.5] for c in range(10) for i in range(784)
                                                   if [c, i] not in [w[:2] for w in d["weights"]]][:5]),
                    "105 non-zero weights, more than its budget of 10 x 10"),
    "bias shape": (lambda d: d.update(bias=d["bias"][:3]), "bias has 3 entries where 10"),
    "weight not finite": (lambda d: d["weights"][0].__setitem__(2, 1e999), "weights[0] weight is inf"),
}


@pytest.mark.parametrize("name", list(SPARSE_MUTATIONS))
def test_malformed_sparse_file(rigl_doc_text, tmp_path, name):
    mutate, expected = SPARSE_MUTATIONS[name]
    path = _write(tmp_path, _mutated(rigl_doc_text, mutate))
    with pytest.raises(TopologyFileError) as info:
        load_topology(path)
    assert expected in _check_message(info.value)


def test_nan_frequency(rf_doc_text, tmp_path):
    doc = json.loads(rf_doc_text)
    doc["chains"][4]["resonators"][7]["frequency_ghz"] = float("nan")
    path = _write(tmp_path, json.dumps(doc))  # Python writes the NaN literal
    assert "NaN" in path.read_text()
    with pytest.raises(TopologyFileError) as info:
        load_topology(path)
    assert "chains[4].resonators[7].frequency_ghz is nan, not a finite number" in _check_message(info.value)


def test_nan_input_comb_position(rf_doc_text, tmp_path):
    doc = json.loads(rf_doc_text)
    doc["inputs"]["comb_position"][5] = float("inf")
    with pytest.raises(TopologyFileError, match=r"inputs\.comb_position\[5\] is inf"):
        load_topology(_write(tmp_path, json.dumps(doc)))


def test_truncated_json(rf_doc_text, tmp_path):
    path = _write(tmp_path, rf_doc_text[: len(rf_doc_text) // 2])
    with pytest.raises(TopologyFileError) as info:
        load_topology(path)
    msg = _check_message(info.value)
    assert "not valid JSON" in msg and "truncated" in msg


class _Trap:
    """Unpickling this would create a marker file (proves the loader never unpickles)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_pickle_file_is_refused_and_never_unpickled(tmp_path):
    marker = tmp_path / "unpickled"
    path = tmp_path / "model.json"
    path.write_bytes(pickle.dumps({"format": FORMAT_NAME, "trap": _Trap(marker)}))
    with pytest.raises(TopologyFileError) as info:
        load_topology(path)
    assert "pickle" in _check_message(info.value)
    assert not marker.exists()
    path.write_bytes(pickle.dumps({"a": 1}, protocol=0))
    with pytest.raises(TopologyFileError, match="pickle"):
        load_topology(path)


def test_torch_checkpoint_is_refused(tmp_path):
    path = tmp_path / "model.pt"
    torch.save({"w": torch.zeros(2)}, path)
    with pytest.raises(TopologyFileError, match="zip archive"):
        load_topology(path)


@pytest.mark.parametrize("content,expected", [
    (b"", "is empty"),
    (b"  \n", "is empty"),
    (b"[1, 2, 3]", "top level is a list where a JSON object was expected"),
    (b'"text"', "top level is a string"),
    (b"null", "top level is null"),
    (b"\xff\xfe\x00garbage", "not a text file"),
    (b"[" * 100_000, "nests too deeply"),
    (b"{}", "has no 'format' entry"),
])
def test_not_a_topology(tmp_path, content, expected):
    path = tmp_path / "x.json"
    path.write_bytes(content)
    with pytest.raises(TopologyFileError) as info:
        load_topology(path)
    assert expected in _check_message(info.value)


def test_directory_and_missing_file(tmp_path):
    with pytest.raises(TopologyFileError, match="is a folder"):
        load_topology(tmp_path)
    with pytest.raises(TopologyFileError, match="does not exist"):
        load_topology(tmp_path / "missing.json")


def test_oversized_file_is_not_read(rf_doc_text, tmp_path, monkeypatch):
    path = _write(tmp_path, rf_doc_text)
    monkeypatch.setattr(ex, "MAX_FILE_BYTES", 1000)
    with pytest.raises(TopologyFileError, match="limit"):
        load_topology(path)
    assert ex.MAX_FILE_BYTES == 1000 and math.isclose(200 * 1024 * 1024, 209715200)


def test_error_is_a_value_error():
    assert issubclass(TopologyFileError, ValueError)


def test_unreadable_file(rf_doc_text, tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root can read files without permission")
    path = _write(tmp_path, rf_doc_text)
    path.chmod(0)
    with pytest.raises(TopologyFileError, match="cannot be read"):
        load_topology(path)
