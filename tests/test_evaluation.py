"""engine.experiments.evaluation: a topology is scored on the recorded split, and refused on a dataset it cannot classify."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from engine.config.run_config import RunConfig
from engine.experiments.evaluation import DatasetMismatchError, evaluate_topology, evaluation_split
from engine.io.topology import export_result, load_topology, topology_from_document
from engine.training.loop import run_training

DATA = Path(__file__).parent / "data"
V1_RIGL = DATA / "topology_v1_rigl.json"


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):
    """Every test here runs torch on one thread (see conftest.one_torch_thread)."""


def _fake(mini, *, name="fake", n_inputs=784, class_names=None, n_classes=None):
    """A stand-in dataset with the attributes evaluation reads."""
    x = mini.test_x[:50, :n_inputs] if n_inputs <= 784 else torch.zeros(50, n_inputs)
    names = class_names if class_names is not None else tuple(str(c) for c in range(n_classes or 10))
    return SimpleNamespace(name=name, test_x=x, test_y=mini.test_y[:50] % len(names), n_inputs=n_inputs,
                           n_classes=len(names), class_names=names)


def test_recorded_dataset_is_loaded_when_none_is_given(mini):
    topo = load_topology(V1_RIGL)
    assert evaluate_topology(V1_RIGL) == evaluate_topology(topo, mini)  # same weights, same kernels: exact
    # the recorded accuracy was computed on another CPU: float32 sums may differ in the last digit there, so a
    # near-tie may flip; allow one test image
    assert evaluate_topology(topo, "mnist-mini", split="test") == pytest.approx(topo.recorded_accuracy,
                                                                                abs=1 / len(mini.test_y))


def test_validation_split_is_reproduced(mini, tmp_path):
    result = run_training(RunConfig(model="rf-frozen", resonators_per_chain=5, epochs=1, validation_fraction=0.1),
                          dataset=mini)
    topo = load_topology(export_result(result, tmp_path / "val.json")[0])
    assert topo.evaluated_on == "validation" and topo.setting("validation_fraction") == 0.1
    x, _ = evaluation_split(topo, mini)
    assert len(x) == round(0.1 * len(mini.train_y))
    assert evaluate_topology(topo, mini) == result.test_accuracy == topo.recorded_accuracy
    x, y = evaluation_split(topo, mini, split="test")
    assert torch.equal(x, mini.test_x) and torch.equal(y, mini.test_y)
    assert 0.0 <= evaluate_topology(topo, mini, split="test") <= 1.0


def test_a_dataset_with_other_inputs_is_refused(mini):
    topo = load_topology(V1_RIGL)
    with pytest.raises(DatasetMismatchError) as info:
        evaluate_topology(topo, _fake(mini, name="tiny", n_inputs=64))
    msg = str(info.value)
    assert "784 inputs" in msg and "tiny has 64" in msg and str(V1_RIGL) in msg and "\n" not in msg
    assert isinstance(info.value, ValueError)


def test_a_dataset_with_other_classes_is_refused(mini):
    topo = load_topology(V1_RIGL)
    with pytest.raises(DatasetMismatchError, match="10 classes but dataset five has 5"):
        evaluate_topology(topo, _fake(mini, name="five", n_classes=5))


def test_a_dataset_with_other_class_names_is_refused(mini, tmp_path):
    v1 = load_topology(V1_RIGL)
    path = tmp_path / "v2.json"
    doc = v1.to_document()
    doc["class_names"] = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    path.write_text(json.dumps(doc))
    named = load_topology(path)
    digits = _fake(mini, name="digits")
    with pytest.raises(DatasetMismatchError) as info:
        evaluate_topology(named, digits)
    msg = str(info.value)
    assert "class 0 is 'zero' in the file and '0' in the dataset" in msg and msg.endswith(".")
    same = _fake(mini, name="words", class_names=tuple(doc["class_names"]))
    assert 0.0 <= evaluate_topology(named, same) <= 1.0
    # a dataset that records no class names is compared by counts only
    plain = SimpleNamespace(**{k: v for k, v in vars(digits).items() if k != "class_names"})
    assert evaluate_topology(named, plain) == evaluate_topology(v1, plain)


def test_version_1_files_are_compared_by_counts_only(mini):
    v1 = load_topology(V1_RIGL)  # records no class names: "0".."9" are made up on load
    clothes = _fake(mini, name="clothes", class_names=tuple(f"item {c}" for c in range(10)))
    assert 0.0 <= evaluate_topology(v1, clothes) <= 1.0


def test_real_dataset_with_other_names_is_refused(mini, tmp_path):
    if not getattr(mini, "class_names", None):
        pytest.skip("this engine.data.Dataset records no class names")
    doc = load_topology(V1_RIGL).to_document()
    doc["class_names"] = [f"c{c}" for c in range(10)]
    with pytest.raises(DatasetMismatchError):
        evaluate_topology(topology_from_document(doc), mini)


def test_bad_arguments(mini):
    topo = load_topology(V1_RIGL)
    with pytest.raises(ValueError, match="split must be"):
        evaluate_topology(topo, mini, split="train")
    with pytest.raises(TypeError, match="dataset must be"):
        evaluate_topology(topo, 42)
    with pytest.raises(ValueError):
        evaluate_topology(dataclasses.replace(topo, model=topo.model), "no-such-dataset")
