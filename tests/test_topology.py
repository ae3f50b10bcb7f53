"""Topology files: exact round trips, version 1 files, the lab CSV, the published schema and malformed files."""
from __future__ import annotations

import csv
import json
import pickle
from pathlib import Path

import pytest
import torch

from engine.io import topology as tp
from engine.nets.baselines.dense import DensePerceptron
from engine.nets.baselines.masked import MaskedPerceptron
from engine.config.run_config import RunConfig
from engine.experiments.evaluation import evaluate_topology
from engine.physics.resonators import DeviceParams
from engine.nets.rf_perceptron import RFPerceptron
from engine.io.topology import (FORMAT_NAME, FORMAT_VERSION, Topology, TopologyFileError, export_result,
                             load_topology, topology_from_document, write_topology, write_topology_csv)
from engine.training.loop import run_training

DATA = Path(__file__).parent / "data"
V1_RF = DATA / "topology_v1_rf-input.json"
V1_RIGL = DATA / "topology_v1_rigl.json"


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


def _rows(path: Path) -> list:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


# --- round trips ------------------------------------------------------------------------------------------

def test_rf_round_trip_is_bit_exact(rf_result, mini, tmp_path):
    json_path, csv_path = export_result(rf_result, tmp_path / "rf.json")
    assert csv_path == tmp_path / "rf.csv" and csv_path.is_file()
    topo = load_topology(json_path)
    assert isinstance(topo, Topology) and topo.kind == "rf-perceptron" and topo.model_name == "rf"
    assert topo.format_version == FORMAT_VERSION == 3 and topo.source == json_path
    assert isinstance(topo.model, RFPerceptron) and not topo.model.training
    trained = rf_result.model
    assert torch.equal(topo.model.chains.resonator_comb, trained.chains.resonator_comb)
    assert torch.equal(topo.model.chains.input_comb, trained.chains.input_comb)
    assert torch.equal(topo.model.bias, trained.bias)
    assert torch.equal(topo.model.log_gain, trained.log_gain)
    assert torch.equal(topo.model.effective_weight(), trained.effective_weight())
    assert topo.config == rf_result.config and topo.dataset == "mnist-mini"
    assert topo.resonators_per_chain == 10
    assert topo.metrics["test_accuracy"] == rf_result.test_accuracy  # full precision, not summary()'s rounding
    assert topo.versions["torch"] == torch.__version__ and topo.created
    assert topo.image_shape == (28, 28) and topo.n_inputs == 784 and topo.n_classes == 10
    assert topo.class_names == tuple(str(c) for c in range(10))
    acc = evaluate_topology(topo, mini)
    assert acc == rf_result.test_accuracy == topo.recorded_accuracy
    assert evaluate_topology(json_path, "mnist-mini") == acc  # a path and a dataset name work too


def test_current_document_carries_the_dataset_description_and_config(rf_doc_text, rf_result):
    doc = json.loads(rf_doc_text)
    assert doc["format"] == FORMAT_NAME and doc["format_version"] == 3
    assert doc["n_inputs"] == 784 and doc["image_shape"] == [28, 28]
    assert doc["class_names"] == [str(c) for c in range(10)]
    assert doc["config"] == json.loads(json.dumps(rf_result.config.to_dict()))
    assert RunConfig.from_dict(doc["config"]) == rf_result.config
    assert doc["versions"]["torch"] == torch.__version__


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
    with pytest.raises(TopologyFileError, match=r"chains\[0\]\.resonators\[2\] has no 'alpha' entry"):
        del doc["chains"][0]["resonators"][2]["alpha"]
        topology_from_document(doc)


def test_baseline_round_trip_is_exact(rigl_result, mini, tmp_path):
    json_path, csv_path = export_result(rigl_result, tmp_path / "rigl.json")
    topo = load_topology(json_path)
    assert topo.kind == "sparse-perceptron" and isinstance(topo.model, MaskedPerceptron)
    assert not topo.model.training
    assert torch.equal(topo.model.effective_weight(), rigl_result.model.effective_weight())
    assert torch.equal(topo.model.bias, rigl_result.model.bias)
    doc = json.loads(json_path.read_text())
    assert len(doc["weights"]) == topo.model.synapse_count() <= 10 * 10
    assert evaluate_topology(topo, mini) == rigl_result.test_accuracy == topo.recorded_accuracy
    rows = _rows(csv_path)
    assert list(rows[0]) == list(tp.SPARSE_CSV_COLUMNS) and len(rows) == len(doc["weights"])
    for row in rows:
        i = int(row["input"])
        assert (int(row["pixel_row"]), int(row["pixel_col"])) == divmod(i, 28)
        assert float(row["weight"]) == topo.model.effective_weight()[int(row["class"]), i].item()


def test_dense_round_trip_is_exact(mini, tmp_path):
    result = run_training(RunConfig(model="dense", resonators_per_chain=784, epochs=1), dataset=mini)
    topo = load_topology(export_result(result, tmp_path / "dense.json")[0])
    assert isinstance(topo.model, DensePerceptron)
    assert torch.equal(topo.model.weight, result.model.effective_weight())
    assert evaluate_topology(topo, mini) == result.test_accuracy


def test_loading_consumes_no_global_random_state(tmp_path):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    load_topology(V1_RF)
    load_topology(V1_RIGL)
    assert torch.equal(torch.rand(3), expected)


def test_class_names_and_image_shape_come_from_the_dataset(rigl_result, mini, tmp_path):
    names = [f"class {c}" for c in range(10)]

    class Described:  # a dataset description, as the engine's Dataset gives one
        name = "digits-renamed"
        class_names = names
        image_shape = None

    json_path, csv_path = export_result(rigl_result, tmp_path / "named.json", dataset=Described)
    topo = load_topology(json_path)
    assert topo.class_names == tuple(names) and topo.image_shape is None and topo.dataset == "digits-renamed"
    assert all(r["pixel_row"] == "" and r["pixel_col"] == "" for r in _rows(csv_path))
    with pytest.raises(ValueError, match="3 class names"):
        export_result(rigl_result, tmp_path / "bad.json", class_names=["a", "b", "c"])
    assert not (tmp_path / "bad.json").exists()


def test_image_shape_is_dropped_when_it_does_not_fit(rigl_result, tmp_path):
    doc = tp.result_document(rigl_result, image_shape=(20, 20))
    assert doc["image_shape"] is None


def test_export_refuses_a_csv_name_and_a_result_without_model(rigl_result, tmp_path):
    with pytest.raises(ValueError, match="must not end in .csv"):
        export_result(rigl_result, tmp_path / "x.csv")
    import dataclasses

    with pytest.raises(ValueError, match="no trained model"):
        export_result(dataclasses.replace(rigl_result, model=None), tmp_path / "x.json")


def test_rf_csv_has_one_row_per_resonator(rf_result, tmp_path):
    _, csv_path = export_result(rf_result, tmp_path / "rf.json")
    rows = _rows(csv_path)
    assert list(rows[0]) == list(tp.RF_CSV_COLUMNS)
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
    assert tp.topology_csv_text(json.loads(json_path.read_text())) == csv_path.read_text()


def test_json_is_strict(rf_doc_text):
    json.loads(rf_doc_text, parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))


def test_unserialisable_document_is_not_written(tmp_path):
    dest = tmp_path / "x.json"
    with pytest.raises(TypeError):
        write_topology({"format": FORMAT_NAME, "bad": object()}, dest)
    assert not dest.exists() and list(tmp_path.iterdir()) == []


# --- version 1 files --------------------------------------------------------------------------------------

@pytest.mark.parametrize("path,kind,model_type", [(V1_RF, "rf-perceptron", RFPerceptron),
                                                  (V1_RIGL, "sparse-perceptron", MaskedPerceptron)])
def test_version_1_files_load_and_evaluate(mini, path, kind, model_type):
    topo = load_topology(path)
    assert topo.format_version == 1 and topo.kind == kind and isinstance(topo.model, model_type)
    assert topo.class_names == tuple(str(c) for c in range(10)) and not topo.class_names_recorded
    assert topo.n_inputs == 784 and topo.image_shape == (28, 28) and topo.resonators_per_chain == 5
    assert topo.config.seed == 3 and topo.config.model == topo.model_name
    # recorded on the CPU that wrote the file: float32 sums may differ in the last digit here, so a near-tie may
    # flip; allow one test image
    assert evaluate_topology(topo, mini) == pytest.approx(topo.recorded_accuracy, abs=1 / len(mini.test_y))


@pytest.mark.parametrize("path", [V1_RF, V1_RIGL])
def test_version_1_file_upgrades_to_the_current_version_with_identical_weights(path, mini, tmp_path):
    old = load_topology(path)
    new_path = write_topology(old, tmp_path / "upgraded.json")
    doc = json.loads(new_path.read_text())
    assert doc["format_version"] == 3 and doc["class_names"] == [str(c) for c in range(10)]
    new = load_topology(new_path)
    assert new.format_version == 3 and new.class_names_recorded
    assert torch.equal(new.model.effective_weight(), old.model.effective_weight())
    assert torch.equal(new.model.bias, old.model.bias)
    for name, tensor in old.model.state_dict().items():
        assert torch.equal(new.model.state_dict()[name], tensor), name
    assert new.config == old.config and new.metrics == old.metrics and new.history == old.history
    assert new.created == old.created and new.versions == old.versions
    if old.kind == "rf-perceptron":
        assert doc["inputs"]["trained"] is json.loads(path.read_text())["inputs"]["trained"]
    assert evaluate_topology(new, mini) == evaluate_topology(old, mini)
    _assert_same_csv_values(write_topology_csv(new, tmp_path / "a.csv"), write_topology_csv(old, tmp_path / "b.csv"))


def _assert_same_csv_values(a: Path, b: Path, rtol: float = 1e-5) -> None:
    """Same columns, rows and whole numbers; real numbers equal within ``rtol`` (topology.FREQ_RTOL).

    Not byte for byte: the version-1 file's CSV shows the frequencies and couplings it stores, computed on the
    machine that wrote it, and the upgraded file's shows them recomputed here from the same stored combs in
    float32, whose last digits depend on the CPU's kernels (AVX-512, AVX2, MKL) and differ by an ulp or so."""
    with a.open(newline="") as fa, b.open(newline="") as fb:
        rows_a, rows_b = list(csv.reader(fa)), list(csv.reader(fb))
    assert rows_a[0] == rows_b[0] and len(rows_a) == len(rows_b)
    for ra, rb in zip(rows_a[1:], rows_b[1:]):
        assert len(ra) == len(rb)
        for column, x, y in zip(rows_a[0], ra, rb):
            if "." in x or "e" in x.lower() or "." in y or "e" in y.lower():
                assert float(x) == pytest.approx(float(y), rel=rtol, abs=1e-12), (column, x, y)
            else:  # indices, signs, pixels, empty cells: exact
                assert x == y, (column, x, y)


def test_version_1_file_is_still_checked(tmp_path):
    doc = json.loads(V1_RIGL.read_text())
    doc["weights"][0][1] = 9999
    with pytest.raises(TopologyFileError, match=r"weights\[0\] input index is 9999"):
        topology_from_document(doc)


# --- the published schema ---------------------------------------------------------------------------------

def test_the_engine_validates_with_exactly_the_published_schema():
    # docs/topology.schema.json is written by `python -m engine.io.topology > docs/topology.schema.json`
    assert tp.SCHEMA_PATH.read_text(encoding="utf-8") == tp.SCHEMA_TEXT
    assert tp.topology_schema() == json.loads(tp.SCHEMA_PATH.read_text(encoding="utf-8"))


def test_the_published_schema_is_a_valid_draft_2020_12_schema():
    from jsonschema import Draft202012Validator

    schema = json.loads(tp.SCHEMA_PATH.read_text())
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"].endswith("/draft/2020-12/schema")
    assert schema["properties"]["format_version"]["const"] == FORMAT_VERSION


def test_exported_documents_validate_against_the_published_schema(rf_doc_text, rigl_doc_text):
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(json.loads(tp.SCHEMA_PATH.read_text()))
    for text in (rf_doc_text, rigl_doc_text):
        assert list(validator.iter_errors(json.loads(text))) == []
    upgraded = load_topology(V1_RF).to_document()
    assert list(validator.iter_errors(upgraded)) == []


def test_schema_physics_block_matches_the_device_parameters():
    schema = json.loads(tp.SCHEMA_PATH.read_text())
    assert set(schema["$defs"]["physics"]["properties"]) == set(DeviceParams().to_dict())


# --- malformed files --------------------------------------------------------------------------------------

def _check_message(exc: TopologyFileError) -> str:
    msg = str(exc)
    assert "\n" not in msg and msg.endswith(".") and msg[0].isupper() and len(msg) < 400, msg
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
    "newer version": (lambda d: d.update(format_version=4), "newer rfexplorer"),
    "older version": (lambda d: d.update(format_version=0), "not supported"),
    "version as string": (lambda d: d.update(format_version="2"), "format_version must be a whole number"),
    "unknown kind": (lambda d: d.update(kind="mlp"), "kind is 'mlp', not one of: rf-perceptron"),
    "kind/model mismatch": (lambda d: d.update(model="rigl"), "does not match kind"),
    "unknown model": (lambda d: d.update(model="transformer"), "model 'transformer' is unknown"),
    "missing chains": (lambda d: d.pop("chains"), "the file has no 'chains' entry"),
    "missing class names": (lambda d: d.pop("class_names"), "the file has no 'class_names' entry"),
    "sparse entry in rf file": (lambda d: d.update(weights=[]), "entry 'weights', which a file of kind"),
    "unknown top-level entry": (lambda d: d.update(colour="red"), "the file has an unknown entry 'colour'"),
    "n_inputs as string": (lambda d: d.update(n_inputs="784"), "n_inputs must be a whole number, not a string"),
    "n_inputs too large": (lambda d: d.update(n_inputs=10 ** 7), "n_inputs is 10000000, over the limit"),
    "class names short": (lambda d: d.update(class_names=d["class_names"][:9]), "class_names has 9 entries"),
    "class names repeated": (lambda d: d["class_names"].__setitem__(1, "0"), "class_names lists '0' twice"),
    "class name empty": (lambda d: d["class_names"].__setitem__(1, ""), "class_names[1] is an empty string"),
    "image shape of 3": (lambda d: d.update(image_shape=[28, 28, 1]), "image_shape has 3 entries"),
    "short input list": (lambda d: d["inputs"].update(comb_position=d["inputs"]["comb_position"][:-1]),
                         "inputs.comb_position has 783 entries where 784 were expected"),
    "too few chains": (lambda d: d.update(chains=d["chains"][:9]), "chains has 9 entries where 10"),
    "too few resonators": (lambda d: d["chains"][3].update(resonators=d["chains"][3]["resonators"][:4]),
                           "chains[3].resonators has 4 entries where 10"),
    "attached input out of range": (lambda d: d["chains"][2]["resonators"][1].update(attached_input=784),
                                    "chains[2].resonators[1].attached_input is 784, out of range"),
    "negative attached input": (lambda d: d["chains"][0]["resonators"][0].update(attached_input=-1),
                                "chains[0].resonators[0].attached_input is -1, out of range (must be >= 0)"),
    "comb outside tuning range": (lambda d: d["chains"][0]["resonators"][0].update(comb_position=1e6),
                                  "chains[0].resonators[0].comb_position is 1000000.0, outside the tuning range"),
    "input comb outside range": (lambda d: d["inputs"]["comb_position"].__setitem__(7, -50.0),
                                 "inputs.comb_position[7] is -50.0, outside the tuning range"),
    "frequency edited": (lambda d: d["chains"][1]["resonators"][2].update(
        frequency_ghz=d["chains"][1]["resonators"][2]["frequency_ghz"] * 1.01),
        "chains[1].resonators[2].frequency_ghz is"),
    "input frequency edited": (lambda d: d["inputs"]["frequency_ghz"].__setitem__(3, 5.0),
                               "inputs.frequency_ghz[3] is 5.0 GHz but its comb position"),
    "negative frequency": (lambda d: d["inputs"]["frequency_ghz"].__setitem__(3, -5.0),
                           "inputs.frequency_ghz[3] is -5.0, out of range (must be > 0)"),
    "sign flipped": (lambda d: d["chains"][0]["resonators"][1].update(sign=1), "sign is 1 but"),
    "sign not unit": (lambda d: d["chains"][0]["resonators"][1].update(sign=2), "sign is 2, not one of: -1, 1"),
    "bias as string": (lambda d: d["chains"][0].update(bias="0.1"), "chains[0].bias must be a number"),
    "bias as bool": (lambda d: d["chains"][0].update(bias=True), "chains[0].bias must be a number, not a boolean"),
    "resonator unknown entry": (lambda d: d["chains"][0]["resonators"][0].update(q=3),
                                "chains[0].resonators[0] has an unknown entry 'q'"),
    "chain index wrong": (lambda d: d["chains"][4].update(index=7), "chains[4].index is 7 where 4"),
    "invalid physics": (lambda d: d["physics"].update(f_min_ghz=30.0), "physics parameters are not valid"),
    "negative damping": (lambda d: d["physics"].update(alpha=-0.1), "physics.alpha is -0.1, out of range"),
    "unknown physics": (lambda d: d["physics"].update(temperature=300.0), "physics has an unknown entry"),
    "physics type": (lambda d: d["physics"].update(plan=3), "physics.plan is 3, not one of: geometric, linear"),
    "config for another model": (lambda d: d["config"].update(model="rf-input"), "run config is for model"),
    "invalid config": (lambda d: d["config"].update(epochs=0), "run config is not valid"),
    "config not object": (lambda d: d.update(config=[1]), "config must be a JSON object, not a list"),
    "config K mismatch": (lambda d: d["config"].update(resonators_per_chain=11), "resonators per chain"),
    "image shape wrong": (lambda d: d.update(image_shape=[20, 20]), "does not have n_inputs"),
    "pixel row wrong": (lambda d: d["chains"][0]["resonators"][0].update(pixel_row=0, attached_input=100),
                        "pixel_row is 0 but attached input 100"),
    "gain inconsistent": (lambda d: d["readout"].update(gain=d["readout"]["gain"] * 2), "readout.gain"),
    "accuracy above 1": (lambda d: d["metrics"].update(test_accuracy=92.5),
                         "metrics.test_accuracy is 92.5, out of range (must be <= 1)"),
    "metrics not object": (lambda d: d.update(metrics=[1, 2]), "metrics must be a JSON object, not a list"),
    "versions not text": (lambda d: d["versions"].update(torch=2), "versions.torch must be a string"),
}


@pytest.mark.parametrize("name", list(RF_MUTATIONS))
def test_malformed_rf_file(rf_doc_text, tmp_path, name):
    mutate, expected = RF_MUTATIONS[name]
    path = _write(tmp_path, _mutated(rf_doc_text, mutate))
    with pytest.raises(TopologyFileError) as info:
        load_topology(path)
    msg = _check_message(info.value)
    # the file is named; a long path is cut at its start so that the message stays within 200 characters
    assert expected in msg and path.name in msg and (str(path) in msg or len(msg) > 150) and len(msg) <= 200


SPARSE_MUTATIONS = {
    "class out of range": (lambda d: d["weights"][0].__setitem__(0, 10), "weights[0] class index is 10"),
    "input out of range": (lambda d: d["weights"][1].__setitem__(1, 9999), "weights[1] input index is 9999"),
    "negative input": (lambda d: d["weights"][1].__setitem__(1, -3), "weights[1] input index is -3, out of range"),
    "not a triplet": (lambda d: d["weights"][0].pop(), "weights[0] has 2 entries where at least 3"),
    "four entries": (lambda d: d["weights"][0].append(1), "weights[0] has 4 entries where at most 3"),
    "weight as text": (lambda d: d["weights"][2].__setitem__(2, "0.5"), "weights[2] weight must be a number"),
    "duplicate weight": (lambda d: d["weights"].append(list(d["weights"][0])), "listed twice"),
    "over budget": (lambda d: d["weights"].extend([[c, i, 0.5] for c in range(10) for i in range(784)
                                                   if [c, i] not in [w[:2] for w in d["weights"]]][:5]),
                    "more than its budget of 10 x 10"),
    "count wrong": (lambda d: d.update(nonzero_weights=3), "nonzero_weights is 3 but it lists"),
    "bias shape": (lambda d: d.update(bias=d["bias"][:3]), "bias has 3 entries where 10"),
    "rf entry in sparse file": (lambda d: d.update(physics={}), "entry 'physics', which a file of kind"),
    "missing weights": (lambda d: d.pop("weights"), "the file has no 'weights' entry"),
}


@pytest.mark.parametrize("name", list(SPARSE_MUTATIONS))
def test_malformed_sparse_file(rigl_doc_text, tmp_path, name):
    mutate, expected = SPARSE_MUTATIONS[name]
    path = _write(tmp_path, _mutated(rigl_doc_text, mutate))
    with pytest.raises(TopologyFileError) as info:
        load_topology(path)
    assert expected in _check_message(info.value)


@pytest.mark.parametrize("literal,shown", [("NaN", "nan"), ("Infinity", "inf"), ("1e999", "inf")])
def test_non_finite_numbers_are_named(rf_doc_text, tmp_path, literal, shown):
    doc = json.loads(rf_doc_text)
    doc["chains"][4]["resonators"][7]["frequency_ghz"] = "@@"
    path = _write(tmp_path, json.dumps(doc).replace('"@@"', literal))
    with pytest.raises(TopologyFileError) as info:
        load_topology(path)
    assert f"chains[4].resonators[7].frequency_ghz is {shown}, not a finite number" in _check_message(info.value)


def test_non_finite_weight_and_input_comb(rigl_doc_text, rf_doc_text, tmp_path):
    doc = json.loads(rigl_doc_text)
    doc["weights"][0][2] = float("inf")
    with pytest.raises(TopologyFileError, match=r"weights\[0\] weight is inf, not a finite number"):
        load_topology(_write(tmp_path, json.dumps(doc), "w.json"))
    doc = json.loads(rf_doc_text)
    doc["inputs"]["comb_position"][5] = float("nan")
    with pytest.raises(TopologyFileError, match=r"inputs\.comb_position\[5\] is nan"):
        topology_from_document(doc)


def test_document_errors_name_the_source():
    with pytest.raises(TopologyFileError, match="The topology file <document> is invalid"):
        topology_from_document([])
    with pytest.raises(TopologyFileError, match="lab.json"):
        topology_from_document({"format": FORMAT_NAME}, source="lab.json")


def test_oversized_network_is_refused_before_allocating(rigl_doc_text):
    doc = json.loads(rigl_doc_text)
    doc.update(n_inputs=1_000_000, n_classes=100_000, class_names=[str(c) for c in range(100_000)],
               image_shape=None)
    with pytest.raises(TopologyFileError, match="over the limit"):
        topology_from_document(doc)


@pytest.mark.parametrize("content,expected", [
    (b"", "is empty"),
    (b"  \n", "is empty"),
    (b"[1, 2, 3]", "top level is a list where a JSON object was expected"),
    (b'"text"', "top level is a string"),
    (b"null", "top level is null"),
    (b"\xff\xfe\x00garbage", "not a UTF-8 text file"),
    (b"[" * 100_000, "nests too deeply"),
    (b"{}", "has no 'format' entry"),
    (b'{"format": "rfexplorer-sweep", "rows": []}', "format is 'rfexplorer-sweep'"),
    (b'{"format": "rfexplorer-topology"}', "no 'format_version' entry"),
    (b'{"format": "rfexplorer-topology", "format": "x"}', "the key 'format' twice"),
])
def test_not_a_topology(tmp_path, content, expected):
    path = tmp_path / "x.json"
    path.write_bytes(content)
    with pytest.raises(TopologyFileError) as info:
        load_topology(path)
    assert expected in _check_message(info.value)


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


def test_torch_checkpoint_is_refused(tmp_path):
    path = tmp_path / "model.pt"
    torch.save({"w": torch.zeros(2)}, path)
    with pytest.raises(TopologyFileError, match="zip archive"):
        load_topology(path)


def test_directory_missing_and_oversized_file(rf_doc_text, tmp_path, monkeypatch):
    with pytest.raises(TopologyFileError, match="is a folder"):
        load_topology(tmp_path)
    with pytest.raises(TopologyFileError, match="does not exist"):
        load_topology(tmp_path / "missing.json")
    path = _write(tmp_path, rf_doc_text)
    monkeypatch.setattr(tp, "MAX_FILE_BYTES", 1000)
    with pytest.raises(TopologyFileError, match="limit"):
        load_topology(path)


def test_error_is_a_value_error():
    assert issubclass(TopologyFileError, ValueError)
