"""The fused exact weight build (engine.layers.fused_weight): the exact formula as numba loops, against the
physics functions in float64 at the same frequencies, and where the 'auto' build uses it."""
from __future__ import annotations

import math

import pytest
import torch

from engine.config.run_config import RunConfig
from engine.layers import fused_weight
from engine.layers.chain import RFChainLayer
from engine.layers.exact_weight import ExactWeight
from engine.layers.fused_weight import FusedWeight
from engine.nets.rf_perceptron import RFParams
from engine.physics import resonators as physics
from engine.physics.resonators import DeviceParams
from engine.training.loop import run_training

pytestmark = pytest.mark.skipif(not fused_weight.available(), reason="numba does not import here")


def frequencies(layout: str, c: int, k: int, n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Input (N,) and resonance (C, K) frequencies (GHz, float32) in one of three layouts."""
    f_in = torch.sort(2.0 + 3.0 * torch.rand(n, generator=gen)).values
    f_res = 2.0 + 3.0 * torch.rand(c, k, generator=gen)
    if layout == "clustered":  # half of every chain within a linewidth of one input: large and zero detunings
        f_res[:, : k // 2] = f_in[n // 3] * (1.0 + 1e-3 * torch.randn(c, k // 2, generator=gen))
        f_res[0, 0] = f_in[n // 3]
    elif layout == "edges":  # at the ends of the band, on an input, and two resonators at one frequency
        f_res[:, 0], f_res[:, 1], f_res[:, 2] = f_in[0], f_in[-1], f_in[-1]
        f_res[1:, 3] = 1.0
    return f_in, f_res


def reference(f_in, f_res, alpha, amp, phi, g):
    """W and the gradients of sum(W * g) for f_in and f_res, from the physics functions in float64."""
    fi, fr = f_in.double().requires_grad_(), f_res.double().requires_grad_()
    a = alpha.double().unsqueeze(-1) if isinstance(alpha, torch.Tensor) else alpha
    x = physics.detuning(fi.view(1, 1, -1), fr.unsqueeze(-1), a)
    w = (amp.double().unsqueeze(-1) * physics.lineshape(x, phi)).sum(1)
    (w * g.double()).sum().backward()
    return w.detach(), fi.grad, fr.grad


def assert_close(got: torch.Tensor, ref: torch.Tensor, rtol: float = 1e-5) -> None:
    ref = ref.detach()
    err, top = float((got.detach().double() - ref).abs().max()), float(ref.abs().max())
    assert err <= rtol * top, f"error {err:.3g} of max {top:.3g}"


@pytest.mark.parametrize("layout", ["random", "clustered", "edges"])
@pytest.mark.parametrize("phi, spread", [(0.0, False), (0.4, True)])
def test_fused_build_and_its_gradients_match_float64_physics(layout, phi, spread):
    gen = torch.Generator().manual_seed(3)
    c, k, n = 7, 13, 200
    f_in, f_res = frequencies(layout, c, k, n, gen)
    alpha = 2e-3 * (1.0 + 0.2 * torch.rand(c, k, generator=gen)) if spread else 2e-3
    amp = physics.chain_signs(k).view(1, -1) * (1.0 + 0.1 * torch.rand(c, k, generator=gen))
    g = torch.randn(c, n, generator=gen)
    w_ref, gin_ref, gres_ref = reference(f_in, f_res, alpha, amp, phi, g)
    fi, fr = f_in.clone().requires_grad_(), f_res.clone().requires_grad_()
    w = FusedWeight.apply(fi, fr, alpha, amp, phi)
    (w * g).sum().backward()
    assert_close(w, w_ref)
    assert_close(fi.grad, gin_ref)
    assert_close(fr.grad, gres_ref)


def test_without_an_input_gradient_only_the_resonances_get_one():
    gen = torch.Generator().manual_seed(4)
    f_in, f_res = frequencies("random", 3, 5, 64, gen)
    amp = physics.chain_signs(5).expand(3, 5)
    g = torch.randn(3, 64, generator=gen)
    fr = f_res.clone().requires_grad_()
    (FusedWeight.apply(f_in, fr, 1e-2, amp, 0.0) * g).sum().backward()
    fr_exact = f_res.clone().requires_grad_()
    (ExactWeight.apply(f_in, fr_exact, torch.full_like(f_res, 1e-2), amp.contiguous(), 0.0) * g).sum().backward()
    assert_close(fr.grad, fr_exact.grad.double())


def layer(build: str, k: int = 10, n: int = 64, train_inputs: bool = False) -> RFChainLayer:
    return RFChainLayer(n, 4, k, DeviceParams(), train_inputs=train_inputs, weight_build=build)


def test_auto_uses_the_fused_loops_where_the_exact_formula_is_cheapest(monkeypatch):
    calls = []
    original = FusedWeight.apply
    monkeypatch.setattr(FusedWeight, "apply", lambda *a: calls.append(1) or original(*a))
    auto, exact = layer("auto", train_inputs=True), layer("exact", train_inputs=True)
    exact.load_state_dict(auto.state_dict())
    w = auto.weight()
    assert calls, "'auto' did not use the fused loops at K = 10"
    assert_close(w, exact.weight().double())
    calls.clear()
    exact.weight()
    assert not calls, "'exact' must stay the eager reference build"


def test_a_fused_build_is_refused_in_one_sentence_without_numba(monkeypatch):
    monkeypatch.setattr(fused_weight, "kernels", lambda: None)
    with pytest.raises(ValueError, match="numba"):
        layer("fused")
    calls = []
    monkeypatch.setattr(FusedWeight, "apply", lambda *a: calls.append(1))
    w = layer("auto").weight()  # 'auto' falls back to the eager build
    assert not calls and torch.isfinite(w).all()


def test_a_short_run_with_the_fused_build_reaches_the_exact_builds_accuracy(tmp_path):
    """Fused and eager builds differ in float rounding only: short runs of three seeds each, the same mean
    accuracy to 1 point. (A single short run is chaotic: rounding alone moved seed 1 by 0.8-1.0 point, about
    the seeds' own spread here, while seeds 2 and 3 agreed to the digit.)"""
    results = {}
    for build in ("exact", "fused"):
        accs = []
        for seed in (1, 2, 3):
            cfg = RunConfig(model="rf-input", dataset="mnist-mini", epochs=2, resonators_per_chain=10, seed=seed,
                            model_params=RFParams(weight_build=build))
            accs.append(run_training(cfg).test_accuracy)
        results[build] = sum(accs) / len(accs)
    assert math.isclose(results["fused"], results["exact"], abs_tol=0.01), results


def test_the_couplings_block_matches_the_physics_functions_and_keeps_gradients_where_needed():
    gen = torch.Generator().manual_seed(5)
    chains = RFChainLayer(50, 3, 7, DeviceParams(phi=0.3), train_inputs=True)
    with torch.no_grad():
        chains.input_comb.add_(0.4 * torch.randn(50, generator=gen))
    f_in, f_res = chains.device_freqs()
    ref = physics.coupling_tensor(f_in.double(), f_res.double(), chains.params, signs=chains.signs.double())
    with torch.no_grad():
        assert_close(chains.coupling(), ref, rtol=1e-6)
    c = chains.coupling()  # with gradients on: the physics functions, differentiable
    assert c.requires_grad
    assert_close(c, ref, rtol=1e-6)


def test_a_jittered_read_out_is_one_fused_pass_with_the_same_draws():
    """Evaluation under frequency jitter reads every sample out at its own frequencies: the fused pass and the
    eager build's blocks see the same draws and agree to float rounding (the fused pass skips dark inputs)."""
    outs = []
    for build in ("auto", "exact"):
        chains = RFChainLayer(60, 4, 9, DeviceParams(freq_jitter_lw=0.3), weight_build=build,
                              generator=torch.Generator().manual_seed(8))
        chains.eval()
        gen = torch.Generator().manual_seed(9)
        power = torch.rand(37, 60, generator=gen) * (torch.rand(37, 60, generator=gen) < 0.4)  # dark inputs
        power[0], power[1] = 0.0, torch.rand(60, generator=gen) + 0.1  # a dark sample, a fully lit one
        with torch.no_grad():
            outs.append(chains(power))
    assert_close(outs[0], outs[1].double(), rtol=1e-5)


@pytest.mark.parametrize("plan", ["geometric", "linear"])
@pytest.mark.parametrize("train_inputs", [False, True])
def test_a_plain_layers_voltages_are_one_node_with_the_weight_paths_values_and_gradients(plan, train_inputs):
    """FusedVoltages (one autograd node from the comb positions) against the weight path (the comb map, W by the
    fused loops, then the product) of the same layer: the same voltages, and the same gradients for the
    resonator and input positions and the powers to float rounding; the sink gets dL/dW."""
    gen = torch.Generator().manual_seed(11)
    chains = RFChainLayer(60, 4, 9, DeviceParams(plan=plan, phi=0.3), train_inputs=train_inputs, generator=gen)
    if train_inputs:
        with torch.no_grad():
            chains.input_comb.add_(0.3 * torch.randn(60, generator=gen))
    power = torch.rand(23, 60, generator=gen).requires_grad_()
    g = torch.randn(23, 4, generator=gen)
    sunk = []
    v = chains.plain_voltages(power, sunk.append)
    assert v is not None and v.grad_fn is not None and "FusedVoltages" in type(v.grad_fn).__name__
    (v * g).sum().backward()
    fused_grads = [t.grad.clone() for t in (chains.resonator_comb, power)]
    fused_in = chains.input_comb.grad.clone() if train_inputs else None
    for t in (chains.resonator_comb, chains.input_comb, power):
        t.grad = None
    w = chains.weight()
    w.retain_grad()
    v_ref = chains(power, weight=w)
    assert torch.equal(v.detach(), v_ref.detach())
    (v_ref * g).sum().backward()
    assert len(sunk) == 1 and torch.allclose(sunk[0], w.grad, rtol=1e-6, atol=1e-7)
    for got, ref in zip(fused_grads, (chains.resonator_comb.grad, power.grad)):
        assert_close(got, ref.double(), rtol=1e-6)
    if train_inputs:
        assert_close(fused_in, chains.input_comb.grad.double(), rtol=1e-6)


@pytest.mark.parametrize(
    "change",
    ["exact build", "freq spread", "jitter", "read-out noise", "tuning bits", "comb fft", "float64"],
)
def test_the_plain_path_steps_aside_wherever_its_conditions_fail(change):
    kwargs, build, k, dtype = {}, "auto", 9, torch.float32
    if change == "exact build":
        build = "exact"
    elif change == "freq spread":
        kwargs["freq_spread"] = 0.01
    elif change == "jitter":
        kwargs["freq_jitter_lw"] = 0.2
    elif change == "read-out noise":
        kwargs["readout_noise_v"] = 0.01
    elif change == "tuning bits":
        kwargs["tuning_bits"] = 6
    elif change == "comb fft":
        k = 600  # 'auto' takes the comb FFT build from K = 300 against the fused loops
    chains = RFChainLayer(700, 2, k, DeviceParams(**kwargs), weight_build=build)
    power = torch.rand(5, 700, dtype=dtype)
    assert chains.plain_voltages(power.double() if change == "float64" else power) is None
    plain = RFChainLayer(700, 2, 9, DeviceParams())
    assert plain.plain_voltages(power) is not None


def test_the_plain_paths_build_choice_follows_the_input_positions():
    """At K = 600 'auto' takes the comb FFT build while the inputs sit on their slots; once one moves, it takes the
    exact formula (then the plain path): the remembered choice is made again."""
    chains = RFChainLayer(700, 2, 600, DeviceParams())
    power = torch.rand(5, 700)
    assert chains.plain_voltages(power) is None
    with torch.no_grad():
        chains.input_comb[3] += 0.4
    assert chains.fast_build() is None and chains.grid_build() is None  # the exact formula is 'auto's build now
    moved = chains.plain_voltages(power)
    assert moved is not None and torch.equal(moved, chains(power, weight=chains.weight()))
