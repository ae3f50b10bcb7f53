"""The FFT weight build (engine.layers.fast_weight) against the exact physics, in float64."""
from __future__ import annotations

import pytest
import torch

from engine.config.run_config import RunConfig
from engine.layers import fast_weight, fused_weight
from engine.layers.chain import RFChainLayer
from engine.layers.fast_weight import ShiftKernel, kernel
from engine.physics import resonators as physics
from engine.physics.resonators import DeviceParams
from engine.training.loop import run_training


def exact_w_and_grad(layer: RFChainLayer, g: torch.Tensor):
    """W and dLoss/du with loss = sum(W * g), from the physics functions in float64 through plain autograd."""
    p, n = layer.params, layer.n_inputs
    u = layer.resonator_comb.detach().double().requires_grad_()
    k_sd = layer.k_sd_r.double() if layer.k_sd_r is not None else p.k_sd
    amp = layer.signs.double() * k_sd
    f_in = physics.comb_to_ghz(torch.arange(n, dtype=torch.float64), p, n)
    x = physics.detuning(f_in.view(1, 1, -1), physics.comb_to_ghz(u, p, n).unsqueeze(-1), p.alpha)
    w = (amp.expand(u.shape).unsqueeze(-1) * physics.lineshape(x, p.phi)).sum(1)
    (w * g.double()).sum().backward()
    return w.detach(), u.grad


@pytest.mark.parametrize("n,k,kw,layout", [
    (784, 784, {}, "random"), (784, 100, {"phi": 0.4}, "clustered"), (784, 10, {"k_sd_dtod": 0.2}, "clustered"),
    (256, 30, {}, "random"), (256, 64, {"tuning_margin": 6.0}, "edges"), (100, 20, {"alpha": 0.02}, "clustered"),
])
@pytest.mark.parametrize("way", ["compiled", "torch"])
def test_fft_build_matches_the_exact_formula(n, k, kw, layout, way, monkeypatch):
    if way == "torch":  # the GPU's way, and the CPU's without numba
        monkeypatch.setattr(fast_weight, "_loops", lambda: None)
    elif fast_weight._loops() is None:
        pytest.skip("numba does not import here")
    gen = torch.Generator().manual_seed(n + k)
    layer = RFChainLayer(n, 10, k, DeviceParams(**kw), generator=gen, weight_build="fft")
    with torch.no_grad():
        lo, hi = layer.comb_range
        if layout == "clustered":  # half of each chain within a hundredth of a spacing of one site
            layer.resonator_comb[:, : k // 2] = layer.resonator_comb[:, :1] + 0.01 * torch.randn(
                10, k // 2, generator=gen)
        elif layout == "edges":  # on the limits of the tuning range, and on half-integer sites
            layer.resonator_comb[:, 0], layer.resonator_comb[:, 1] = lo, hi
            layer.resonator_comb[:, 2:6] = torch.tensor([0.5, 1.5, -0.5, n - 1.5])
        layer.resonator_comb.clamp_(lo, hi)
    g = torch.randn(10, n, generator=gen)
    w = layer.weight()
    (w * g).sum().backward()
    w_ref, grad_ref = exact_w_and_grad(layer, g)
    scale = float(w_ref.abs().max())
    assert float((w.detach().double() - w_ref).abs().max()) <= 1e-5 * scale
    assert float((layer.resonator_comb.grad.double() - grad_ref).abs().max()) <= 1e-5 * float(grad_ref.abs().max())


def test_the_kernel_is_the_physics_lineshape():
    p = DeviceParams(phi=0.3)
    d = torch.linspace(-50, 50, 1001, dtype=torch.float64)
    f_in = physics.comb_to_ghz(d + 200, p, 784)
    f_r = physics.comb_to_ghz(torch.tensor(200.0, dtype=torch.float64), p, 784)
    assert torch.allclose(kernel(d, p, 784), physics.lineshape(physics.detuning(f_in, f_r, p.alpha), p.phi),
                          rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("kw,train_inputs", [({"plan": "linear"}, False), ({"alpha_dtod": 0.1}, False), ({}, True)])
def test_the_comb_build_leaves_devices_off_the_comb_to_the_other_builds(kw, train_inputs):
    auto = RFChainLayer(784, 10, 100, DeviceParams(**kw), train_inputs=train_inputs, weight_build="auto")
    assert auto.fast_build() is None and auto.weight().shape == (10, 784)


def test_fft_refuses_a_damping_spread():
    layer = RFChainLayer(784, 10, 100, DeviceParams(alpha_dtod=0.1), weight_build="fft")
    with pytest.raises(ValueError, match="weight_build 'fft' cannot be used here: a damping spread"):
        layer.weight()


def test_auto_uses_the_fft_build_only_for_large_k(monkeypatch):
    # against the fused exact loops the crossover is K = 300 (chain.FFT_MIN_RESONATORS_FUSED) ...
    assert RFChainLayer(784, 10, 10, DeviceParams()).fast_build() is None
    assert RFChainLayer(784, 10, 200, DeviceParams()).fast_build() is None
    assert RFChainLayer(784, 10, 400, DeviceParams()).fast_build() is not None
    # ... and K = 64 against the eager exact build, where numba is missing
    monkeypatch.setattr(fused_weight, "kernels", lambda: None)
    assert RFChainLayer(784, 10, 10, DeviceParams()).fast_build() is None
    assert RFChainLayer(784, 10, 200, DeviceParams()).fast_build() is not None
    # a spacing of many linewidths cannot be expanded: the exact build stays
    assert not ShiftKernel(DeviceParams(), 20, (-2.0, 21.0)).available


def test_training_with_either_build_learns_the_same(mini):
    runs = {b: run_training(RunConfig(model="rf-frozen", resonators_per_chain=100, epochs=1,
                                      model_params=RunConfig().model_params.__class__(weight_build=b)), mini)
            for b in ("exact", "fft")}
    assert abs(runs["exact"].test_accuracy - runs["fft"].test_accuracy) < 0.02
    assert runs["fft"].config.model_params.weight_build == "fft"  # recorded with the result


@pytest.mark.parametrize("kw", [{}, {"phi": 1.2}, {"k_sd_dtod": 0.3, "alpha_dtod": 0.2}, {"alpha": 0.05}])
def test_windowed_attachments_match_the_full_search(kw):
    layer = RFChainLayer(784, 10, 50, DeviceParams(**kw), generator=torch.Generator().manual_seed(5))
    assert layer._attachment_window() is not None
    with torch.no_grad():
        idx, coupling = layer.attachments()
        full = layer.coupling()
    ref_idx = full.abs().argmax(dim=-1)
    assert torch.equal(idx, ref_idx)
    assert torch.allclose(coupling, full.gather(-1, ref_idx.unsqueeze(-1)).squeeze(-1), rtol=1e-5)


def test_the_first_fft_build_may_happen_without_gradients():
    layer = RFChainLayer(784, 10, 100, DeviceParams(), weight_build="fft")
    with torch.no_grad():
        w = layer.weight()
    assert w.shape == (10, 784) and layer.fast_build() is not None
