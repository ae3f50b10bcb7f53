"""Multilayer RF networks: STNO physics, the settings, training with plasticity in every layer, topology files."""
from __future__ import annotations

import json
import math

import pytest
import torch

from engine.physics import resonators as physics
from engine.config.run_config import RunConfig, build_config
from engine.data import load_dataset
from engine.experiments.evaluation import evaluate_topology
from engine.nets.multilayer import RFNetwork
from engine.physics.resonators import DeviceParams, STNOParams
from engine.plasticity.hidden import HiddenLayerPlasticity
from engine.io.topology import export_result, load_topology, topology_from_document
from engine.training.loop import run_training


@pytest.fixture(scope="module")
def mini():
    return load_dataset("mnist-mini")


# --- physics -----------------------------------------------------------------------------------------------

def test_stno_power_follows_the_published_model():
    stno = STNOParams()
    i = torch.tensor([5.0, 10.0, 20.0, 40.0, 80.0])  # µA, before the clamp
    clamped = physics.stno_current_ua(i / 3.39 / 1000.0, 3.39, stno)
    assert torch.allclose(clamped, torch.tensor([10.0, 10.0, 20.0, 40.0, 40.0]))
    p = physics.stno_power_uw(clamped, stno)
    # P = A (xi - 1)/(xi + Q) R I^2: zero at threshold, 1.25 * 1/4 * 1000 * 400e-12 W = 0.125 µW at 2 I_th
    assert p[0] == 0 and p[1] == 0
    assert p[2].item() == pytest.approx(1.25 * (1 / 4) * 1000 * 20.0 ** 2 * 1e-6)
    assert p[3].item() == pytest.approx(stno.max_power_uw) and stno.max_power_uw == pytest.approx(1.0)
    assert bool((p[1:] >= p[:-1]).all())  # monotonic in the current


def test_stno_settings_are_validated_and_recorded():
    with pytest.raises(ValueError, match="clamp_ratio"):
        STNOParams(clamp_ratio=1.0)
    cfg = build_config(overrides=["device.stno.q=3", "hidden=8", "layer_resonators=4"])
    assert cfg.device.stno.q == 3.0 and cfg.hidden == (8,) and cfg.layer_ks == (10, 4)
    again = RunConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg
    assert DeviceParams.from_dict(cfg.device.to_dict()) == cfg.device


@pytest.mark.parametrize("changes, message", [
    ({"hidden": (0,)}, "hidden layer sizes must be whole numbers >= 1"),
    ({"hidden": (20,), "layer_resonators": (5, 5)}, "got 3 K values for a network of 2 layer"),
    ({"layer_resonators": (5,)}, "got 2 K values for a network of 1 layer"),
    ({"hidden": (20,), "layer_resonators": (30,)}, "K of layer 2 is 30, more than its 20 inputs"),
    ({"hidden": (20,), "model": "set"}, "has no multilayer version"),
])
def test_bad_layer_settings_are_refused_in_one_sentence(changes, message):
    with pytest.raises(ValueError, match=message):
        RunConfig(**changes)


def test_one_k_for_all_layers_is_capped_at_each_layers_inputs():
    assert RunConfig(resonators_per_chain=30, hidden=(100, 12)).layer_ks == (30, 30, 12)


# --- the model ---------------------------------------------------------------------------------------------

def _network(**kw) -> RFNetwork:
    return RFNetwork(64, 4, (12, 6), (8, 5, 6), device=DeviceParams(), generator=torch.Generator().manual_seed(1),
                     **kw)


def test_forward_shapes_and_synapse_count():
    net = _network()
    x = torch.rand(7, 64, generator=torch.Generator().manual_seed(0))
    assert net(x).shape == (7, 4)
    assert net.synapse_count() == 12 * 8 + 6 * 5 + 4 * 6
    assert [tuple(w.shape) for w in net.layer_weights()] == [(12, 64), (6, 12), (4, 6)]
    p = net.layer_inputs(x, 2)
    assert p.shape == (7, 6) and bool((p >= 0).all()) and bool((p <= net.stno.max_power_uw + 1e-6).all())
    assert torch.allclose(net.scores_from(2, p), net(x))


def test_calibration_puts_every_stno_inside_its_window(mini):
    net = RFNetwork(784, 10, (32,), (10, 10), device=DeviceParams(), generator=torch.Generator().manual_seed(0))
    x = mini.train_x[:512]
    before = net.hidden_current(0, net.layers[0](x))
    net.calibrate(x)
    i = net.hidden_current(0, net.layers[0](x))
    lo, hi = net.stno.i_th_ua, net.stno.clamp_ratio * net.stno.i_th_ua
    active = ((i > lo) & (i < hi)).float().mean(0)  # per neuron: the fraction of images in the window
    assert float(active.median()) > 0.4, (before.median(), i.median())


def test_gradients_reach_every_layer():
    net = _network(train_inputs=True)
    x = torch.rand(16, 64, generator=torch.Generator().manual_seed(0))
    net.calibrate(x)
    torch.nn.functional.cross_entropy(net(x), torch.arange(16) % 4).backward()
    for l, layer in enumerate(net.layers):
        assert layer.resonator_comb.grad is not None and float(layer.resonator_comb.grad.abs().sum()) > 0, l
        assert layer.input_comb.grad is not None and float(layer.input_comb.grad.abs().sum()) > 0, l
    for b in net.hidden_bias:
        assert float(b.grad.abs().sum()) > 0


def test_training_with_plasticity_in_every_layer_learns_and_rewires(mini):
    cfg = RunConfig(model="rf", hidden=(32,), resonators_per_chain=10, layer_resonators=(16,), epochs=3, seed=0,
                    plasticity=build_config().plasticity.__class__(interval_steps=20))
    jumps: dict[int, int] = {}
    original = HiddenLayerPlasticity.rewire

    def counting(self, max_moves):
        moved = original(self, max_moves)
        jumps[self.layer] = jumps.get(self.layer, 0) + moved
        return moved

    HiddenLayerPlasticity.rewire = counting
    try:
        result = run_training(cfg, dataset=mini)
    finally:
        HiddenLayerPlasticity.rewire = original
    assert result.test_accuracy > 0.5, result.history
    assert jumps.get(0, 0) > 0  # the hidden layer rewired
    assert result.rewiring_events > jumps[0]  # and so did the output layer
    assert result.synapses == 32 * 10 + 10 * 16
    assert result.row().hidden == (32,) and result.row().layer_ks == (10, 16)
    model = result.model
    assert not model.plasticity and model.context is None  # training state is gone


def test_a_seed_reproduces_a_run_exactly(mini):
    cfg = RunConfig(model="rf-input", hidden=(16,), resonators_per_chain=8, epochs=1, seed=4)
    a, b = run_training(cfg, dataset=mini), run_training(cfg, dataset=mini)
    assert a.test_accuracy == b.test_accuracy and a.rewiring_events == b.rewiring_events
    for la, lb in zip(a.model.layers, b.model.layers):
        assert torch.equal(la.resonator_comb, lb.resonator_comb) and torch.equal(la.input_comb, lb.input_comb)


# --- topology files ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def network_result(mini):
    cfg = RunConfig(model="rf-input", hidden=(20, 12), resonators_per_chain=6, layer_resonators=(5, 12),
                    epochs=1, seed=2)
    return run_training(cfg, dataset=mini)


def test_multilayer_topology_round_trip_is_exact(network_result, mini, tmp_path):
    json_path, csv_path = export_result(network_result, tmp_path / "net.json", dataset=mini)
    topo = load_topology(json_path)
    assert topo.kind == "rf-network" and topo.config.hidden == (20, 12)
    x = mini.test_x[:300]
    with torch.no_grad():
        assert torch.equal(topo.model(x), network_result.model(x))
    assert evaluate_topology(topo, mini) == pytest.approx(network_result.test_accuracy, abs=0)
    doc = json.loads(json_path.read_text())
    assert doc["layer_sizes"] == [784, 20, 12, 10] and doc["layer_ks"] == [6, 5, 12]
    assert all(layer["inputs"]["trained"] for layer in doc["layers"])
    header = csv_path.read_text().splitlines()[0]
    assert header.startswith("layer,chain,index")
    assert len(csv_path.read_text().splitlines()) == 1 + 20 * 6 + 12 * 5 + 10 * 12


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["layer_ks"].append(3), "layer_ks has 4 entries where 3 were expected"),
    (lambda d: d["layers"][1].pop("stno"), "layers\\[1\\] is a hidden layer but has no 'stno' entry"),
    (lambda d: d["layers"][0]["chains"].pop(), "layers\\[0\\].chains has 19 entries"),
    (lambda d: d["layers"][1]["chains"][0]["resonators"][0].update(attached_input=20),
     "layers\\[1\\].chains\\[0\\].resonators\\[0\\].attached_input is 20, out of range"),
    (lambda d: d["layers"][2]["inputs"]["frequency_ghz"].__setitem__(0, 99.0), "layers\\[2\\].inputs.frequency_ghz"),
    (lambda d: d.update(chains=[]), "'chains', which a file of kind 'rf-network' must not have"),
])
def test_broken_multilayer_files_are_refused_in_one_sentence(network_result, mini, edit, message):
    from engine.io.topology import result_document

    doc = json.loads(json.dumps(result_document(network_result, dataset=mini)))
    edit(doc)
    with pytest.raises(ValueError, match=message):
        topology_from_document(doc, source="net.json")


def test_a_version_2_file_still_loads(mini, tmp_path):
    from engine.io.topology import result_document

    result = run_training(RunConfig(model="rf", resonators_per_chain=4, epochs=1), dataset=mini)
    doc = json.loads(json.dumps(result_document(result, dataset=mini)))
    doc["format_version"] = 2
    del doc["physics"]["stno"]  # what rfexplorer wrote before multilayer networks
    topo = topology_from_document(doc)
    assert topo.format_version == 2 and topo.kind == "rf-perceptron"
    assert torch.equal(topo.model.effective_weight(), result.model.effective_weight())
    assert math.isclose(evaluate_topology(topo, mini), result.test_accuracy)


# --- the multilayer sweep ----------------------------------------------------------------------------------

def test_multilayer_sweep_preset_plans_every_shape_once():
    from engine.experiments.sweep.runner import SweepSpec

    jobs = SweepSpec.multilayer("mnist").jobs(784)
    shapes = {(c.model, c.hidden, c.layer_ks if c.spec.uses_k else None) for c in jobs}
    assert ("rf-input", (100,), (30, 100)) in shapes and ("rf-input", (), (10,)) in shapes
    assert ("rigl", (50,), (20, 50)) in shapes
    dense = sorted(c.hidden for c in jobs if c.model == "dense")
    assert dense == [(), (), (), (50,), (50,), (50,), (100,), (100,), (100,)]  # K does not apply: once per shape
    assert len(jobs) == (4 + 4 + 3 + 4 + 4) * 3
    assert {c.dataset for c in jobs} == {"mnist"} and {c.epochs for c in jobs} == {10}


def test_a_sweep_with_hidden_layers_writes_the_network_table(mini, tmp_path):
    from engine.experiments.sweep.runner import SweepSpec, run_sweep

    spec = SweepSpec(models=("rf-frozen", "dense"), ks=(5,), seeds=(0,), base=RunConfig(epochs=1),
                     variants=({}, {"hidden": [12], "layer_resonators": [6]}))
    rows = run_sweep(spec, dataset=mini, out_dir=tmp_path)
    assert len(rows) == 4 and all(r["test_accuracy"] is not None for r in rows)
    table = (tmp_path / "sweep_table.md").read_text()
    assert "| RF frozen topology | 784-12-10 | 5,6 | 120 |" in table
    assert "| RF frozen topology | 784-10 | 5 | 50 |" in table
    assert "| Dense | 784-12-10 | all | 9,528 |" in table
    # a second run into the same folder finds every row done
    notes = []
    again = run_sweep(spec, dataset=mini, out_dir=tmp_path, on_note=notes.append)
    assert len(again) == 4 and any("4 of 4 runs already done" in n for n in notes)


# --- the compiled weight build -----------------------------------------------------------------------------

@pytest.mark.skipif(not __import__("engine.layers.compiled_weight", fromlist=["available"]).available(),
                    reason="torch.compile needs a C++ compiler and ATEN_CPU_CAPABILITY unset (engine.layers.compiled_weight)")
@pytest.mark.parametrize("phi, train_inputs", [(0.0, True), (0.4, True), (0.0, False)])
def test_compiled_weight_build_matches_the_exact_one(phi, train_inputs):
    from engine.layers.chain import RFChainLayer

    dev = DeviceParams(phi=phi)
    layers = [RFChainLayer(50, 6, 7, dev, train_inputs=train_inputs, weight_build=build,
                           generator=torch.Generator().manual_seed(3)) for build in ("exact", "compiled")]
    # clustered resonators and inputs moved off the comb, as after training
    with torch.no_grad():
        for layer in layers:
            layer.resonator_comb[:, :3] = 20.0 + 0.05 * torch.arange(3.0)
            if train_inputs:
                layer.input_comb.add_(0.3 * torch.sin(torch.arange(50.0)))
    g = torch.randn(6, 50, generator=torch.Generator().manual_seed(0))
    weights = []
    for layer in layers:
        w = layer.weight()
        w.backward(g)
        weights.append(w.detach())
    scale = weights[0].abs().max()
    assert float((weights[0] - weights[1]).abs().max() / scale) < 1e-5
    for name in ("resonator_comb", "input_comb") if train_inputs else ("resonator_comb",):
        a, b = (getattr(layer, name).grad for layer in layers)
        assert float((a - b).abs().max() / a.abs().max()) < 1e-5, name
    if not train_inputs:
        assert layers[1].input_comb.grad is None


@pytest.mark.parametrize("model, budget", [("dense", "per-output"), ("prune", "per-output"), ("rigl", "global")])
def test_multilayer_software_networks_round_trip_exactly(model, budget, mini, tmp_path):
    cfg = RunConfig(model=model, hidden=(16,), resonators_per_chain=12, layer_resonators=(8,), epochs=1, seed=1,
                    budget=budget)
    result = run_training(cfg, dataset=mini)
    json_path, csv_path = export_result(result, tmp_path / "mlp.json", dataset=mini)
    doc = json.loads(json_path.read_text())
    assert doc["kind"] == "sparse-network" and doc["layer_sizes"] == [784, 16, 10]
    assert sum(layer["nonzero_weights"] for layer in doc["layers"]) == result.synapses
    topo = load_topology(json_path)
    x = mini.test_x[:300]
    with torch.no_grad():
        assert torch.equal(topo.model(x), result.model(x))
    assert evaluate_topology(topo, mini) == result.test_accuracy
    assert csv_path.read_text().splitlines()[0] == "layer,neuron,input,pixel_row,pixel_col,weight"
    if model != "dense":  # a weight beyond the budget is refused
        doc["layers"][0]["weights"].append([0, 783 if [0, 783] not in [w[:2] for w in doc["layers"][0]["weights"]]
                                            else 782, 0.5])
        doc["layers"][0]["nonzero_weights"] += 1
        if budget == "per-output":
            with pytest.raises(ValueError, match="more than its budget of 12"):
                topology_from_document(doc)


def test_the_compiled_build_is_refused_in_one_sentence_where_it_cannot_build(monkeypatch):
    """With ATen's kernels forced to another CPU, inductor's C++ build fails; the layer says so at once."""
    from engine.layers import compiled_weight
    from engine.layers.chain import RFChainLayer

    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "default")
    assert not compiled_weight.available()
    with pytest.raises(ValueError, match="weight_build 'compiled' needs torch.compile"):
        RFChainLayer(4, 2, 5, DeviceParams(), weight_build="compiled")
