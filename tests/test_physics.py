"""The device model (physics.md): lineshapes, detuning, frequency plans, chain signs, effective weight."""
import math

import pytest
import torch

from engine.physics import resonators as physics
from engine.config.run_config import RunConfig, k_from_removed_pct, remaining_synapses_pct, removed_synapses_pct
from engine.physics.resonators import DeviceParams


def test_antisymmetric_lineshape_peaks_at_one_linewidth():
    x = torch.linspace(-20, 20, 40001, dtype=torch.float64)
    lv = physics.lineshape(x, 0.0)
    assert float(lv.max()) == pytest.approx(1.0, abs=1e-9)
    assert float(x[lv.argmax()]) == pytest.approx(1.0, abs=1e-3)
    assert torch.allclose(lv, -physics.lineshape(-x, 0.0))  # odd: sign flips with the side
    far = physics.lineshape(torch.tensor([100.0], dtype=torch.float64), 0.0)
    assert float(far) == pytest.approx(2 / 100, rel=1e-3)  # 1/x tail: never fully disconnected


def test_symmetric_lineshape_and_mixture():
    x = torch.tensor([0.0, 1.0, -1.0], dtype=torch.float64)
    sym = physics.lineshape(x, math.pi / 2)
    assert sym.tolist() == pytest.approx([1.0, 0.5, 0.5])
    phi = 0.4
    mix = physics.lineshape(x, phi)
    expect = math.cos(phi) * 2 * x / (1 + x * x) + math.sin(phi) / (1 + x * x)
    assert torch.allclose(mix, expect)


@pytest.mark.parametrize("phi", [0.0, 0.3, math.pi / 2])
def test_lineshape_derivative_matches_autograd(phi):
    x = torch.linspace(-5, 5, 101, dtype=torch.float64, requires_grad=True)
    physics.lineshape(x, phi).sum().backward()
    assert torch.allclose(x.grad, physics.lineshape_derivative(x.detach(), phi))


def test_rectified_voltage_scales_with_power_and_k_sd():
    p = DeviceParams()
    f_r = torch.tensor(10.0, dtype=torch.float64)
    f = f_r * (1 + p.alpha)  # one linewidth above: x = 1, peak of the antisymmetric response
    v = physics.rectified_voltage(torch.tensor(2.0, dtype=torch.float64), f, f_r, p)
    assert float(v) == pytest.approx(2.0 * p.k_sd, rel=1e-9)
    assert p.k_sd == pytest.approx(8.84e-3, rel=1e-3)


def test_input_power_is_p_max_times_the_pixel_value():
    x = torch.rand(4, 6, generator=torch.Generator().manual_seed(0))
    assert physics.input_power(x, DeviceParams()) is x  # p_max_uw = 1: no pass over the batch
    assert torch.equal(physics.input_power(x, DeviceParams(p_max_uw=2.5)), 2.5 * x)


@pytest.mark.parametrize("plan", ["geometric", "linear"])
def test_frequency_plan_round_trip_and_band(plan):
    p = DeviceParams(plan=plan)
    f = physics.input_frequencies_ghz(p, 784).double()
    assert float(f[0]) == pytest.approx(p.f_min_ghz) and float(f[-1]) == pytest.approx(p.f_max_ghz, rel=1e-6)
    u = physics.ghz_to_comb(f, p, 784)
    assert torch.allclose(u, torch.arange(784, dtype=torch.float64), atol=1e-3)


def test_geometric_spacing_is_constant_in_linewidths():
    p = DeviceParams()
    f = physics.input_frequencies_ghz(p, 784).double()
    spacing_lw = (f[1:] - f[:-1]) / (p.alpha * f[:-1])
    r = physics.comb_ratio(p, 784)
    assert torch.allclose(spacing_lw, torch.full_like(spacing_lw, (r - 1) / p.alpha), rtol=1e-4)
    assert physics.spacing_in_linewidths(p, 784) == pytest.approx((r - 1) / p.alpha)
    assert 0.5 <= physics.spacing_in_linewidths(p, 784) <= 1.0  # the regime that trains well


def test_chain_signs_alternate_with_parity():
    assert physics.chain_signs(4, "even").tolist() == [1, -1, 1, -1]
    assert physics.chain_signs(3, "odd").tolist() == [-1, 1, -1]


def test_effective_weight_is_the_sum_of_signed_lorentzians():
    p = DeviceParams(phi=0.2)
    torch.manual_seed(0)
    f_in = physics.input_frequencies_ghz(p, 30).double()
    f_res = f_in[torch.randint(0, 30, (3, 4))] * 1.003
    w = physics.effective_weight(f_in, f_res, p)
    s = physics.chain_signs(4)
    manual = torch.zeros(3, 30, dtype=torch.float64)
    for j in range(3):
        for k in range(4):
            for i in range(30):
                x = (f_in[i] - f_res[j, k]) / (p.alpha * f_res[j, k])
                manual[j, i] += s[k] * p.k_sd * (math.cos(p.phi) * 2 * x / (1 + x * x)
                                                  + math.sin(p.phi) / (1 + x * x))
    assert torch.allclose(w, manual)


def test_device_params_are_validated():
    with pytest.raises(ValueError, match="alpha"):
        DeviceParams(alpha=0)
    with pytest.raises(ValueError, match="f_min_ghz < f_max_ghz"):
        DeviceParams(f_min_ghz=5, f_max_ghz=2)
    with pytest.raises(ValueError, match="plan"):
        DeviceParams(plan="log")
    with pytest.raises(ValueError, match="unknown device parameter"):
        DeviceParams.from_dict({"alpha": 0.01, "colour": "red"})
    assert DeviceParams.from_dict(DeviceParams().to_dict()) == DeviceParams()


def test_sparsity_equivalence():
    assert remaining_synapses_pct(10, 784) == pytest.approx(1.2755, abs=1e-3)  # "1.28 %"
    assert removed_synapses_pct(10, 784) == pytest.approx(98.72, abs=0.01)
    assert k_from_removed_pct(98.72, 784) == 10 and k_from_removed_pct(0, 784) == 784
    assert k_from_removed_pct(100, 784) == 1 and k_from_removed_pct(50, 256) == 128
    with pytest.raises(ValueError):
        k_from_removed_pct(120, 784)
    with pytest.raises(ValueError, match="unknown model"):
        RunConfig(model="mlp")
