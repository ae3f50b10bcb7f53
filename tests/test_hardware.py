"""Hardware realism (issue #11): tuning range and resolution, fabrication spread and calibration, read-out noise,
training regimes, the robustness CLI and sweep --vary."""
from __future__ import annotations

import dataclasses
import json
import math

import pytest
import torch

from engine.physics import resonators as physics
from engine.layers import jitter_readout
from engine.layers.chain import RFChainLayer, initial_resonator_comb
from engine.config.run_config import RunConfig
from engine.nets.hardware import robustness, set_regime
from engine.physics.resonators import DeviceParams
from engine.training.loop import run_training

N, C, K = 64, 3, 4


def layer(params: DeviceParams = DeviceParams(), seed: int = 0, **kw) -> RFChainLayer:
    return RFChainLayer(N, C, K, params, generator=torch.Generator().manual_seed(seed), weight_build="exact", **kw)


@pytest.fixture(scope="module")
def mini():
    from engine.data import load_dataset

    return load_dataset("mnist-mini")


FAST = {"interval_steps": 10, "sample_size": 512, "input_sample_size": 512}


def train(ds, model="rf", epochs=1, **kw):
    d = dict(model=model, epochs=epochs, seed=1, plasticity=FAST)
    d.update(kw)
    return run_training(RunConfig.from_dict(d), dataset=ds)


# --- defaults: today's ideal device --------------------------------------------------------------------------

def test_defaults_build_the_old_layer_exactly():
    """All knobs at their defaults: no new buffers, the same generator draws, W from the unchanged formula."""
    g = torch.Generator().manual_seed(3)
    lay = RFChainLayer(N, C, K, DeviceParams(), generator=g, weight_build="exact")
    ref_gen = torch.Generator().manual_seed(3)
    expected = initial_resonator_comb(N, C, K, ref_gen)
    assert torch.equal(lay.resonator_comb.detach(), expected)
    assert torch.equal(g.get_state(), ref_gen.get_state())  # nothing else was drawn
    assert set(lay.state_dict()) == {"resonator_comb", "input_comb", "signs"}
    # the physics in float64: the float32 build rounds within a few 1e-7 of max|W|
    w = physics.effective_weight(lay.input_freqs_ghz().double(), lay.resonator_freqs_ghz().double(), DeviceParams()).detach()
    assert torch.allclose(lay.weight().detach().double(), w, rtol=0, atol=5e-7 * float(w.abs().max()))
    f_in, f_res = lay.device_freqs()
    assert torch.equal(f_in, lay.input_freqs_ghz()) and torch.equal(f_res, lay.resonator_freqs_ghz())


def test_regimes_identical_without_spreads_or_noise(mini):
    states = []
    for regime in ("ideal", "aware", "in-situ"):
        r = train(mini, hardware=regime, resonators_per_chain=5)
        states.append((r.test_accuracy, r.rewiring_events, r.model.chains.resonator_comb.detach().clone()))
    for acc, events, comb in states[1:]:
        assert acc == states[0][0] and events == states[0][1] and torch.equal(comb, states[0][2])


# --- tuning range ----------------------------------------------------------------------------------------------

def test_tuning_bounds_are_relative_to_the_fabricated_frequency():
    p = DeviceParams(tuning_range=0.05)
    lay = layer(p)
    f_home = lay.comb_to_ghz(lay.resonator_home)
    assert torch.allclose(lay.comb_to_ghz(lay.res_lo), torch.maximum(f_home * 0.95, lay.comb_to_ghz(
        torch.tensor(lay.comb_range[0]))), rtol=1e-5)
    assert torch.allclose(lay.comb_to_ghz(lay.res_hi), torch.minimum(f_home * 1.05, lay.comb_to_ghz(
        torch.tensor(lay.comb_range[1]))), rtol=1e-5)
    # the fabricated layout tiles the band: K shared sites, evenly spaced
    assert torch.allclose(lay.resonator_home[0], (torch.arange(K) + 0.5) * (N - 1) / K)
    assert torch.equal(lay.resonator_home[0], lay.resonator_home[-1])
    with torch.no_grad():
        lay.resonator_comb.fill_(1e6)
        lay.input_comb.requires_grad_(True)
        lay.input_comb.fill_(-1e6)
    lay.clamp_to_tuning_range()
    assert torch.equal(lay.resonator_comb.detach(), lay.res_hi)
    assert torch.equal(lay.input_comb.detach(), lay.in_lo)


@pytest.mark.parametrize("model", ["rf", "rf-input"])
def test_steps_and_jumps_stay_within_reach(mini, model):
    r = train(mini, model=model, device={"tuning_range": 0.02}, resonators_per_chain=6)
    chains = r.model.chains
    assert r.rewiring_events > 0
    u = chains.resonator_comb.detach()
    assert bool(((u >= chains.res_lo - 1e-5) & (u <= chains.res_hi + 1e-5)).all())
    width = float((chains.res_hi - chains.res_lo).max())
    assert width < 0.02 * chains.n_inputs  # the range is really limited (about 11 of 784 comb units)
    if model == "rf-input":
        v = chains.input_comb.detach()
        assert bool(((v >= chains.in_lo - 1e-5) & (v <= chains.in_hi + 1e-5)).all())
        assert not torch.equal(v, torch.arange(chains.n_inputs, dtype=v.dtype))  # inputs did move


def test_jump_candidates_are_reachable():
    from engine.plasticity.rounds import StructuralPlasticity

    lay = layer(DeviceParams(tuning_range=0.03))
    params = dataclasses.replace(RunConfig().plasticity, grid_step=0.25, candidates=3)

    sp = StructuralPlasticity.__new__(StructuralPlasticity)
    sp.params, sp.chains, sp.device, sp._lines = params, lay, torch.device("cpu"), None
    grad = torch.randn(C, N, generator=torch.Generator().manual_seed(0))
    drop = torch.arange(K).expand(C, K)
    sites, lines, valid = sp.propose_reachable(grad, drop)
    lo, hi = lay.res_lo.unsqueeze(-1), lay.res_hi.unsqueeze(-1)
    assert bool(valid.any())
    assert bool(((sites >= lo - 1e-5) & (sites <= hi + 1e-5))[valid].all())
    # the couplings are those of a resonator of each one's own sign at its site
    plus = physics.coupling_tensor(lay.input_freqs_ghz(), lay.comb_to_ghz(sites.reshape(1, -1)), lay.params,
                                   signs=torch.ones(sites.numel()))[0].view(*sites.shape, N)
    assert torch.allclose(lines, plus * lay.signs.view(1, K, 1, 1), atol=1e-6)


# --- tuning resolution -------------------------------------------------------------------------------------------

def test_quantisation_levels_are_exact():
    u = torch.linspace(-5.0, 70.0, 1001)
    q = physics.quantise_comb(u, -2.0, 65.0, 3)
    levels = -2.0 + torch.arange(8) * (67.0 / 7)
    assert set(q.tolist()) <= set(levels.tolist()) and len(set(q.tolist())) == 8
    assert float((q - u.clamp(-2.0, 65.0)).abs().max()) <= 67.0 / 14 + 1e-5
    assert torch.equal(physics.quantise_comb(q, -2.0, 65.0, 3), q)  # idempotent


def test_snapshots_show_the_set_points_the_network_computes_with(mini):
    """With tuning bits, snapshot frequencies sit on the levels (the shadows do not); without, they are the
    comb positions' frequencies exactly."""
    net = train(mini, epochs=1, device={"tuning_range": 0.05, "tuning_bits": 5}).model
    chains = net.chains
    shown = torch.as_tensor(net.snapshot_extras()["resonator_freqs_ghz"])
    lo, hi = chains._bounds("res")
    levels = chains.comb_to_ghz(physics.quantise_comb(chains.resonator_comb.detach(), lo, hi, 5))
    assert torch.equal(shown, levels)
    assert not torch.equal(shown, chains.resonator_freqs_ghz().detach())
    plain = train(mini, epochs=1).model
    assert torch.equal(torch.as_tensor(plain.snapshot_extras()["resonator_freqs_ghz"]),
                      plain.chains.resonator_freqs_ghz().detach())


def test_set_points_are_quantised_and_gradients_flow_straight_through():
    p = DeviceParams(tuning_range=0.1, tuning_bits=4)
    lay = layer(p)
    _, f_res = lay.device_freqs()
    u_set = physics.ghz_to_comb(f_res.detach().double(), p, N).float()
    step = (lay.res_hi - lay.res_lo) / 15
    m = (u_set - lay.res_lo) / step
    assert float((m - m.round()).abs().max()) < 1e-3  # every set-point on one of the 16 levels
    x = torch.rand(8, N, generator=torch.Generator().manual_seed(1))
    lay(x).square().sum().backward()
    g = lay.resonator_comb.grad
    assert g is not None and bool((g != 0).all())


# --- fabrication spread and calibration ---------------------------------------------------------------------------

def test_spread_is_drawn_once_per_chip_and_calibration_trims_it():
    raw = layer(DeviceParams(freq_spread=0.01, calibrated=False))
    raw.eval()
    f_in, f_res = raw.device_freqs()
    assert torch.equal(raw.weight(), raw.weight())  # the chip does not change between read-outs
    factor = physics.spread_factor(raw.freq_eps_r, raw.params)
    assert torch.allclose(f_res, raw.resonator_freqs_ghz() * factor)
    assert float((f_res / raw.resonator_freqs_ghz() - 1).detach().abs().max()) > 1e-3  # offsets act in full
    trimmed = layer(DeviceParams(freq_spread=0.01))  # calibrated: only rounding remains without bits
    _, f_cal = trimmed.device_freqs()
    assert torch.allclose(f_cal, trimmed.resonator_freqs_ghz(), rtol=1e-5)
    bits = layer(DeviceParams(freq_spread=0.01, tuning_bits=8))  # calibrated: the quantisation residual
    _, f_q = (t.detach() for t in bits.device_freqs())
    u_true = physics.ghz_to_comb(f_q.double(), bits.params, N)
    step = (bits.comb_range[1] - bits.comb_range[0]) / 255
    resid = (u_true - bits.resonator_comb.detach().double()).abs()
    assert float(resid.max()) <= step / 2 + 1e-3 and float(resid.max()) > 0


# --- noise at every read-out --------------------------------------------------------------------------------------

def test_seeded_noisy_evaluation_reproduces():
    lay = layer(DeviceParams(freq_jitter_lw=0.5, power_noise=0.1, readout_noise_v=1e-3, freq_spread=0.01,
                             calibrated=False))
    lay.eval()
    x = torch.rand(20, N, generator=torch.Generator().manual_seed(2))
    lay.generator.manual_seed(7)
    a = lay(x)
    lay.generator.manual_seed(7)
    b = lay(x)
    c = lay(x)
    assert torch.equal(a, b) and not torch.equal(b, c)
    quiet = layer(DeviceParams(freq_spread=0.01, calibrated=False))
    quiet.eval()
    clean = quiet(x)
    # every sample gets its own jitter: the noise differs from row to row
    assert float((a - clean).detach().std(dim=0).min()) > 0


def test_jittered_read_out_is_exact_per_sample_whatever_the_chunking(monkeypatch):
    """Each sample's voltages under its own jitter draw equal a direct evaluation of the physics with that
    sample's frequencies; splitting the block into chunks changes neither the draws nor the values."""
    p = DeviceParams(freq_jitter_lw=0.3)
    lay = layer(p)
    lay.eval()
    x = torch.rand(7, N, generator=torch.Generator().manual_seed(3))
    power = x * 1.0
    lay.generator.manual_seed(11)
    whole = jitter_readout.jittered_voltages(lay, power).detach()
    monkeypatch.setattr(jitter_readout, "JITTER_CHUNK", C * K * N * 2)  # two samples at a time
    lay.generator.manual_seed(11)
    split = jitter_readout.jittered_voltages(lay, power).detach()
    assert torch.allclose(whole, split, rtol=0, atol=1e-6 * float(whole.abs().max()))
    g = torch.Generator().manual_seed(11)
    xi_in, xi_r = torch.randn(7, N, generator=g), torch.randn(7, C, K, generator=g)
    f_in, f_res = (f.detach() for f in lay.device_freqs(lay._chip()))
    amp = (lay.signs.view(1, -1) * p.k_sd).expand(C, K)
    for b in range(7):
        fi = physics.jittered(f_in, xi_in[b], p.alpha, p).double()
        fr = physics.jittered(f_res, xi_r[b], p.alpha, p).double()
        xd = (fi.view(1, 1, -1) - fr.unsqueeze(-1)) / (p.alpha * fr.unsqueeze(-1))
        w = (amp.double().unsqueeze(-1) * physics.lineshape(xd, p.phi)).sum(1)
        direct = w @ power[b].double()
        assert torch.allclose(whole[b].double(), direct, rtol=0, atol=1e-5 * float(direct.abs().max()))


def test_jitter_moves_frequencies_by_linewidths():
    f = torch.full((100000,), 10.0)
    xi = torch.randn(100000, generator=torch.Generator().manual_seed(0))
    p = DeviceParams(freq_jitter_lw=2.0)
    moved = physics.jittered(f, xi, p.alpha, p)
    assert abs(float(((moved - f) / (p.alpha * f)).std()) - 2.0) < 0.05
    assert float(physics.noisy_power(torch.ones(3), torch.tensor([-100.0, 0.0, 1.0]), DeviceParams(power_noise=0.1)).min()) == 0.0


# --- regimes ------------------------------------------------------------------------------------------------------

def test_regimes_choose_the_chip_a_training_pass_sees():
    p = DeviceParams(freq_spread=0.01, calibrated=False, alpha_dtod=0.1)
    ideal, aware, insitu = layer(p), layer(p), layer(p)
    nominal = layer(DeviceParams())
    set_regime(torch.nn.Sequential(ideal), "ideal")
    set_regime(torch.nn.Sequential(aware), "aware")
    set_regime(torch.nn.Sequential(insitu), "in-situ")
    with torch.no_grad():
        nominal.resonator_comb.copy_(ideal.resonator_comb)
    # ideal: trains the nominal device; evaluation sees its own chip
    assert torch.allclose(ideal.weight(), nominal.weight(), atol=1e-7)
    ideal.eval()
    assert not torch.allclose(ideal.weight(), nominal.weight(), atol=1e-5)
    # in-situ: training and evaluation see the same fixed chip
    w_train = insitu.weight().detach()
    insitu.eval()
    assert torch.equal(w_train, insitu.weight())
    # aware: a fresh chip at every batch (kept within a batch), never the evaluation chip
    w1, w1_again = aware.weight().detach(), aware.weight().detach()
    aware.clamp_to_tuning_range()  # after the optimizer step
    w2 = aware.weight().detach()
    assert torch.equal(w1, w1_again) and not torch.allclose(w1, w2, atol=1e-6)
    aware.eval()
    w_eval = aware.weight()
    assert not torch.allclose(w_eval, w1, atol=1e-6) and torch.equal(w_eval, aware.weight())


def test_regimes_train_differently_with_spreads(mini):
    dev = {"freq_spread": 0.003, "calibrated": False, "readout_noise_v": 0.002}
    accs = {h: train(mini, hardware=h, device=dev, resonators_per_chain=5).test_accuracy
            for h in ("ideal", "in-situ")}
    assert accs["ideal"] != accs["in-situ"]


# --- robustness and the CLI ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def topo_file(tmp_path_factory, mini):
    from engine.io.topology import export_result

    path = tmp_path_factory.mktemp("hw") / "rf.json"
    r = train(mini, resonators_per_chain=5, device={"tuning_range": 0.05, "tuning_bits": 8})
    export_result(r, path, csv_path=False)
    return path, r.test_accuracy


def test_topology_round_trip_keeps_the_hardware_fields(topo_file, mini):
    from engine.experiments.evaluation import evaluate_topology
    from engine.io.topology import load_topology

    path, acc = topo_file
    doc = json.loads(path.read_text())
    assert doc["physics"]["tuning_range"] == 0.05 and doc["physics"]["tuning_bits"] == 8
    topo = load_topology(path)
    assert topo.model.params == RunConfig.from_dict({"device": doc["physics"]}).device
    assert evaluate_topology(topo, mini) == acc


@pytest.mark.parametrize("hidden", [(), (8,)])
def test_a_chip_trained_in_situ_is_saved_with_its_fabrication_draws(mini, tmp_path, hidden):
    """An in-situ network on an uncalibrated chip keeps its accuracy through a file (the chip's draws are
    stored); a file without them runs on a new chip; half-stored or misplaced draws are refused."""
    from engine.experiments.evaluation import evaluate_topology
    from engine.io.topology import TopologyFileError, export_result, load_topology

    r = train(mini, hidden=hidden, device={"freq_spread": 0.01, "calibrated": False})
    path = tmp_path / "chip.json"
    export_result(r, path, csv_path=False)
    topo = load_topology(path)
    assert evaluate_topology(topo, mini) == r.test_accuracy
    doc = json.loads(path.read_text())
    layer = doc["layers"][0] if hidden else doc
    assert len(layer["inputs"]["fabrication_draw"]) == mini.n_inputs

    def strip(d):
        d["inputs"].pop("fabrication_draw")
        for c in d["chains"]:
            for res in c["resonators"]:
                res.pop("fabrication_draw")

    new_chip = json.loads(path.read_text())
    for part in (new_chip["layers"] if hidden else [new_chip]):
        strip(part)
    (tmp_path / "new_chip.json").write_text(json.dumps(new_chip))
    assert evaluate_topology(load_topology(tmp_path / "new_chip.json"), mini) < r.test_accuracy - 0.05
    half = json.loads(path.read_text())
    (half["layers"][0] if hidden else half)["inputs"].pop("fabrication_draw")
    (tmp_path / "half.json").write_text(json.dumps(half))
    with pytest.raises(TopologyFileError, match="fabrication_draw"):
        load_topology(tmp_path / "half.json")
    no_spread = json.loads(path.read_text())
    no_spread["physics"]["freq_spread"] = 0.0
    (tmp_path / "no_spread.json").write_text(json.dumps(no_spread))
    with pytest.raises(TopologyFileError, match="freq_spread is 0"):
        load_topology(tmp_path / "no_spread.json")


def test_robustness_rows_and_common_draws(topo_file, mini):
    from engine.io.topology import load_topology

    topo = load_topology(topo_file[0])
    x, y = mini.test_x[:300], mini.test_y[:300]
    rows = robustness(topo.model, x, y, "freq_jitter_lw", [0.0, 1.0], 2, seed=4)
    again = robustness(topo.model, x, y, "freq_jitter_lw", [0.0, 1.0], 2, seed=4)
    assert rows == again
    assert [r["n"] for r in rows] == [2, 2] and rows[0]["std"] == 0.0
    assert rows[1]["mean"] < rows[0]["mean"]
    assert topo.model.params.freq_jitter_lw == 0.0  # left as it was


def test_robustness_cli_output_contract(topo_file, tmp_path, capsys):
    from engine.cli import main

    out = tmp_path / "rob"
    rc = main(["robustness", str(topo_file[0]), "--knob", "device.power_noise", "--values", "0,0.3",
               "--repeats", "2", "--out", str(out), "--quiet", "--threads", "1"])
    assert rc == 0
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [set(r) for r in last["rows"]] == [{"knob", "value", "mean", "std", "n"}] * 2
    assert [r["value"] for r in last["rows"]] == [0.0, 0.3] and all(r["n"] == 2 for r in last["rows"])
    assert (out / "robustness.csv").read_text().splitlines()[0].startswith("knob,value,mean,std,n")
    assert json.loads((out / "robustness.json").read_text())["rows"][1]["knob"] == "power_noise"
    pytest.importorskip("PySide6")
    assert (out / "robustness.png").stat().st_size > 1000


@pytest.mark.parametrize("argv, words", [
    (["train", "--set", "device.freq_spread=-0.1"], "freq_spread must be >= 0"),
    (["train", "--set", "device.tuning_bits=25"], "tuning_bits must be a whole number from 1 to 24"),
    (["train", "--set", "device.tuning_range=1.5"], "tuning_range must be in (0, 1]"),
    (["train", "--set", "device.tuning_range=0"], "tuning_range must be in (0, 1]"),
    (["train", "--set", "device.power_noise=-1"], "power_noise must be >= 0"),
    (["train", "--set", "hardware=lab"], "ardware must be one of ideal, aware, in-situ"),
    (["sweep", "--quick", "--vary", "device.freq_jitter_lw=-1"], "freq_jitter_lw must be >= 0"),
    (["sweep", "--quick", "--vary", "model_params.initial_gain=1"], "model_params cannot be varied"),
])
def test_bad_values_exit_2_with_one_sentence(argv, words, capsys, tmp_path):
    from engine.cli import main

    argv = [*argv, "--epochs", "1"] + (["--out", str(tmp_path / "s")] if argv[0] == "sweep" else [])
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0]


def test_robustness_bad_knob_or_value_exits_2(topo_file, tmp_path, capsys):
    from engine.cli import main

    for knob, values in (("tuning_range", "0.1"), ("freq_spread", "-1"), ("tuning_bits", "30")):
        assert main(["robustness", str(topo_file[0]), "--knob", knob, "--values", values,
                     "--out", str(tmp_path / "r")]) == 2
        assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_sweep_vary_is_a_cross_product():
    from engine.experiments.sweep.runner import SweepSpec, vary_table, vary_variants

    variants = vary_variants(({},), [("device.freq_spread", [0.0, 0.01]), ("hardware", ["ideal", "aware"])])
    assert len(variants) == 4 and {"device.freq_spread": 0.01, "hardware": "aware"} in variants
    spec = SweepSpec(models=("rf",), ks=(10,), seeds=(0, 1), variants=variants)
    jobs = spec.jobs()
    assert len(jobs) == 8 and {(j.device.freq_spread, j.hardware) for j in jobs} == {
        (0.0, "ideal"), (0.0, "aware"), (0.01, "ideal"), (0.01, "aware")}
    rows = [{"model": "rf", "resonators_per_chain": 10, "hidden": [], "test_accuracy": 0.5 + 0.1 * s,
             "config": j.to_dict()} for s, j in enumerate(jobs[:2])]
    columns, table = vary_table(rows, ["device.freq_spread", "hardware"])
    assert columns[3:5] == ["device.freq_spread", "hardware"] and sum(r[-1] for r in table) == 2


def test_sweep_vary_cli_writes_one_row_per_value(tmp_path, capsys):
    from engine.cli import main

    rc = main(["sweep", "--quick", "--models", "rf-frozen", "--ks", "3", "--seeds", "0", "--epochs", "1",
               "--workers", "1", "--vary", "device.tuning_bits=none,4", "--out", str(tmp_path), "--quiet", "--json"])
    assert rc == 0
    lines = (tmp_path / "sweep_vary.csv").read_text().splitlines()
    assert lines[0].split(",")[3] == "device.tuning_bits" and len(lines) == 3
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["runs"] == 2


def test_multilayer_runs_with_every_knob(mini):
    r = train(mini, hidden=[8], resonators_per_chain=4, hardware="aware",
              device={"tuning_range": 0.2, "tuning_bits": 8, "freq_spread": 0.002, "freq_jitter_lw": 0.2,
                      "power_noise": 0.05}, plasticity={**FAST, "hidden_sample_size": 256})
    assert math.isfinite(r.test_accuracy) and r.test_accuracy > 0.1
    for chains in r.model.layers:
        u = chains.resonator_comb.detach()
        assert bool(((u >= chains.res_lo - 1e-5) & (u <= chains.res_hi + 1e-5)).all())
