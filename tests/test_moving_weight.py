"""The log-frequency grid build (engine.layers.grid_weight): devices anywhere, against the exact physics in float64."""
from __future__ import annotations

import math

import pytest
import torch

from engine.config.run_config import RunConfig
from engine.layers import grid_weight
from engine.layers.chain import RFChainLayer
from engine.layers.grid_weight import GridBuild, LogGrid, choose_stencil, log_frequency, log_kernel
from engine.nets.rf_perceptron import RFParams
from engine.physics import resonators as physics
from engine.physics.resonators import DeviceParams
from engine.training.loop import run_training


def reference(layer: RFChainLayer, f_in: torch.Tensor, f_res: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """sum(W * g) with W from the physics functions in float64 at frequencies f_in (N,), f_res (C, K)."""
    p = layer.params
    k_sd = layer.k_sd_r.double() if layer.k_sd_r is not None else p.k_sd
    amp = (layer.signs.double() * k_sd).expand(f_res.shape)
    x = physics.detuning(f_in.double().view(1, 1, -1), f_res.double().unsqueeze(-1), p.alpha)
    w = (amp.unsqueeze(-1) * physics.lineshape(x, p.phi)).sum(1)
    return w, (w * g.double()).sum()


def exact_from_comb(layer: RFChainLayer, g: torch.Tensor):
    """W and the gradients of sum(W * g) for the inputs' and resonators' comb positions, in float64."""
    p, n = layer.params, layer.n_inputs
    u = layer.resonator_comb.detach().double().requires_grad_()
    v = layer.input_comb.detach().double().requires_grad_()
    w, loss = reference(layer, physics.comb_to_ghz(v, p, n), physics.comb_to_ghz(u, p, n), g)
    loss.backward()
    return w.detach(), v.grad, u.grad


def place(layer: RFChainLayer, layout: str, gen: torch.Generator) -> None:
    """Move the inputs and resonators off the comb: 'random', 'clustered' or 'edges'."""
    n, k = layer.n_inputs, layer.n_resonators
    lo, hi = layer.comb_range
    with torch.no_grad():
        layer.input_comb.add_(0.7 * torch.randn(n, generator=gen))
        if layout == "clustered":  # half of the inputs and of each chain within a hundredth of a spacing
            layer.input_comb[: n // 2] = layer.input_comb[n // 3] + 0.01 * torch.randn(n // 2, generator=gen)
            layer.resonator_comb[:, : k // 2] = layer.input_comb[n // 3] + 0.01 * torch.randn(
                layer.n_chains, k // 2, generator=gen)
        elif layout == "edges":  # on the limits of the tuning range, on half-integers, swapped
            layer.input_comb[0], layer.input_comb[1], layer.input_comb[2] = hi, lo, 0.5
            layer.resonator_comb[:, 0], layer.resonator_comb[:, 1] = lo, hi
            layer.resonator_comb[:, 2:6] = torch.tensor([0.5, 1.5, -0.5, n - 1.5])
        layer.input_comb.clamp_(lo, hi)
        layer.resonator_comb.clamp_(lo, hi)


def assert_close(got: torch.Tensor, ref: torch.Tensor, rtol: float = 1e-5) -> None:
    ref = ref.detach()
    err, top = float((got.detach().double() - ref).abs().max()), float(ref.abs().max())
    assert err <= rtol * top, f"error {err:.3g} of max {top:.3g}"


@pytest.mark.parametrize("n,k,kw,layout", [
    (784, 784, {}, "random"), (784, 100, {"phi": 0.4}, "clustered"), (784, 10, {"k_sd_dtod": 0.2}, "clustered"),
    (256, 64, {"tuning_margin": 6.0}, "edges"), (100, 20, {"alpha": 0.02}, "clustered"),
    (300, 50, {"plan": "linear", "phi": -1.0}, "random"), (64, 40, {"plan": "linear", "alpha": 0.05}, "edges"),
])
def test_grid_build_matches_the_exact_physics_for_moving_inputs(n, k, kw, layout):
    gen = torch.Generator().manual_seed(n + k)
    layer = RFChainLayer(n, 10, k, DeviceParams(**kw), train_inputs=True, generator=gen, weight_build="fft",
                         init_layout="random")
    place(layer, layout, gen)
    g = torch.randn(n, 10, generator=gen).t()  # transposed, as dLoss/dW arrives in training (V = P W^T)
    w = layer.weight()
    (w * g).sum().backward()
    w_ref, grad_in, grad_res = exact_from_comb(layer, g)
    assert layer.grid_build() is not None and w.is_contiguous()
    assert_close(w, w_ref)
    assert_close(layer.input_comb.grad, grad_in)
    assert_close(layer.resonator_comb.grad, grad_res)


@pytest.mark.parametrize("kw,training", [
    ({"freq_spread": 0.002, "calibrated": False}, False), ({"freq_spread": 0.002, "tuning_bits": 10}, False),
    ({"freq_jitter_lw": 0.5}, True), ({"tuning_bits": 8, "k_sd_dtod": 0.1}, True),
])
def test_grid_build_follows_the_devices_true_frequencies(kw, training):
    """Fabrication offsets, set-point levels and jitter move the devices: the grid build sees where they are."""
    gen = torch.Generator().manual_seed(3)
    layer = RFChainLayer(200, 6, 150, DeviceParams(**kw), train_inputs=True, generator=gen, weight_build="fft")
    place(layer, "random", gen)
    layer.train(training)
    g = torch.randn(6, 200, generator=gen)
    state = layer.generator.get_state()
    w = layer.weight()
    (w * g).sum().backward()
    grads = layer.input_comb.grad.clone(), layer.resonator_comb.grad.clone()
    layer.zero_grad()
    layer.generator.set_state(state)  # the same jitter draws for the reference
    f_in, f_res = layer.device_freqs(layer._chip())
    if layer._jitter_now():
        xi_in = torch.randn(200, generator=layer.generator)
        xi_r = torch.randn(6, 150, generator=layer.generator)
        f_in = physics.jittered(f_in, xi_in, layer.params.alpha, layer.params)
        f_res = physics.jittered(f_res, xi_r, layer.params.alpha, layer.params)
    w_ref, loss = reference(layer, f_in, f_res, g)
    loss.backward()
    assert_close(w, w_ref)
    assert_close(grads[0], layer.input_comb.grad.double())
    assert_close(grads[1], layer.resonator_comb.grad.double())


def test_the_grid_grows_when_devices_leave_it():
    layer = RFChainLayer(100, 4, 30, DeviceParams(), train_inputs=True, weight_build="fft")
    layer.weight()
    size = layer.grid_build().grid.size
    with torch.no_grad():  # far beyond the tuning range (no clamp in between)
        layer.input_comb[0], layer.resonator_comb[0, 0] = -40.0, 160.0
    g = torch.randn(4, 100)
    w = layer.weight()
    (w * g).sum().backward()
    assert layer.grid_build().grid.size > size
    w_ref, grad_in, grad_res = exact_from_comb(layer, g)
    assert_close(w, w_ref)
    assert_close(layer.input_comb.grad, grad_in)
    assert_close(layer.resonator_comb.grad, grad_res)


def test_the_spectral_response_uses_the_grid_where_it_pays_off():
    """The chains' response at many probe tones (input-jump rounds, the app's spectra) by the grid build."""
    gen = torch.Generator().manual_seed(4)
    layer = RFChainLayer(784, 10, 400, DeviceParams(phi=0.2, freq_spread=0.001, k_sd_dtod=0.1), generator=gen)
    lo, hi = layer.comb_range
    probe = layer.comb_to_ghz(torch.arange(lo, hi, 0.5))
    with torch.no_grad():
        got = layer.response(probe)
        w_ref, _ = reference(layer, probe, layer.device_freqs()[1], torch.zeros(10, probe.numel()))
    assert layer._grid_build is not None  # the exact sum was not taken
    assert_close(got, w_ref)
    small = RFChainLayer(784, 10, 5, DeviceParams(), generator=gen)
    assert torch.equal(small.response(probe[:50]), small.coupling(probe[:50]).sum(1))  # few pairs: exact


def test_the_amplitudes_gradient_is_the_adjoint():
    """d sum(W g) / d a_jk = sum_i g_ji g(s_i - s_jk), through the same FFT correlation as the positions."""
    p = DeviceParams(phi=0.7)
    gen = torch.Generator().manual_seed(0)
    s_in = log_frequency(torch.rand(60, generator=gen) * 60, p, 60)
    s_res = log_frequency(torch.rand(3, 20, generator=gen) * 60, p, 60)
    amp = torch.randn(3, 20, generator=gen).requires_grad_()
    g = torch.randn(3, 60, generator=gen)
    build = GridBuild(p, 60, (-2.0, 61.0))
    (build.weight(s_in, s_res, amp) * g).sum().backward()
    ref = torch.einsum("jn,jkn->jk", g.double(), log_kernel(s_in.view(1, 1, -1) - s_res.unsqueeze(-1), p.alpha, p.phi))
    assert_close(amp.grad, ref)


@pytest.mark.parametrize("alpha,phi", [(0.005, 0.0), (0.0005, 0.3), (0.05, -2.0), (0.5, 1.5)])
def test_the_stencil_meets_its_tolerance_at_any_damping(alpha, phi):
    points, rho = choose_stencil(alpha, phi)
    err, err_slope = grid_weight._check_error(points, rho, alpha, phi)
    assert err <= grid_weight.KERNEL_RTOL and err_slope <= grid_weight.SLOPE_RTOL
    grid = LogGrid(alpha, phi, (0.0, 1.0), points, rho)
    assert grid.covers(0.0, 1.0) and grid.fft_size >= 2 * grid.size - 1


def test_the_log_kernel_is_the_physics_lineshape():
    p = DeviceParams(phi=0.3, plan="linear")
    u = torch.linspace(-2, 101, 501, dtype=torch.float64)
    f, f_r = physics.comb_to_ghz(u, p, 100), physics.comb_to_ghz(torch.tensor(40.0, dtype=torch.float64), p, 100)
    s = log_frequency(u, p, 100) - log_frequency(torch.tensor(40.0), p, 100)
    assert torch.allclose(log_kernel(s, p.alpha, p.phi), physics.lineshape(physics.detuning(f, f_r, p.alpha), p.phi),
                          rtol=1e-9, atol=1e-12)
    assert math.isclose(float(log_frequency(torch.tensor(0.0), p, 100)), math.log(p.f_min_ghz))


def test_auto_uses_the_grid_build_where_it_pays_off():
    big = RFChainLayer(784, 10, 784, DeviceParams(), train_inputs=True)
    assert big.fast_build() is None and big.grid_build() is not None
    assert RFChainLayer(784, 10, 10, DeviceParams(), train_inputs=True).grid_build() is None  # small K: exact
    assert RFChainLayer(784, 10, 784, DeviceParams()).grid_build() is not None  # but the comb build goes first
    assert RFChainLayer(784, 10, 784, DeviceParams()).fast_build() is not None
    assert RFChainLayer(784, 10, 784, DeviceParams(plan="linear")).grid_build() is not None
    spread = RFChainLayer(784, 10, 784, DeviceParams(alpha_dtod=0.1), train_inputs=True)
    assert spread.grid_build() is None and spread.weight().shape == (10, 784)  # the exact build, silently


def test_rf_input_learns_the_same_with_either_build(mini):
    runs = {b: run_training(RunConfig(model="rf-input", resonators_per_chain=64, epochs=1,
                                      model_params=RFParams(weight_build=b)), mini) for b in ("exact", "fft")}
    assert abs(runs["exact"].test_accuracy - runs["fft"].test_accuracy) < 0.03
    assert runs["fft"].config.model_params.weight_build == "fft"


@pytest.mark.skipif(grid_weight._loops() is None, reason="numba does not import here")
def test_the_compiled_grid_loops_compute_what_the_torch_steps_compute(monkeypatch):
    """On the CPU in float32 the stencils, the spreading and the interpolation are numba loops; the torch steps
    (the GPU's way and the fallback without numba) give the same W and gradients to float rounding."""
    p = DeviceParams(phi=0.4)
    gen = torch.Generator().manual_seed(7)
    s_in = log_frequency(torch.rand(90, generator=gen) * 90, p, 90).requires_grad_()
    s_res = log_frequency(torch.rand(4, 30, generator=gen) * 90, p, 90).requires_grad_()
    amp = torch.randn(4, 30, generator=gen).requires_grad_()
    g = torch.randn(4, 90, generator=gen)
    build = GridBuild(p, 90, (-2.0, 91.0))
    results = []
    for loops in (grid_weight._loops, lambda: None):
        monkeypatch.setattr(grid_weight, "_loops", loops)
        w = build.weight(s_in, s_res, amp)
        (w * g).sum().backward()
        results.append([w.detach().clone()] + [t.grad.clone() for t in (s_in, s_res, amp)])
        for t in (s_in, s_res, amp):
            t.grad = None
    for got, ref in zip(*results):
        assert_close(got, ref.double(), rtol=1e-6)


@pytest.mark.skipif(grid_weight._loops() is None, reason="numba does not import here")
def test_the_compiled_stencils_refuse_a_device_off_the_grid():
    p = DeviceParams()
    build = GridBuild(p, 60, (-2.0, 61.0))
    far = log_frequency(torch.tensor([1000.0]), p, 60)  # far beyond the grid (GridBuild.weight would regrow it)
    s_res = log_frequency(torch.rand(2, 5) * 60, p, 60)
    with pytest.raises(IndexError, match="outside the log-frequency grid"):
        grid_weight.LogGridWeight.apply(far, s_res, torch.ones(2, 5), build.grid)
