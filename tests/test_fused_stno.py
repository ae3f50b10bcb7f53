"""The hidden-layer round's fused loop (engine.plasticity.fused_stno): the same bits as the torch path."""
from __future__ import annotations

import pytest
import torch

from engine.physics import resonators as physics
from engine.physics.resonators import STNOParams
from engine.plasticity import fused_stno

pytestmark = pytest.mark.skipif(not fused_stno.available(), reason="numba does not import here")


def torch_changes(v, contrib, cand, h, bias_ua, g_m, stno):
    """The torch path of engine.plasticity.hidden (the physics functions on the whole block)."""
    v_new = (v.unsqueeze(-1) - contrib).unsqueeze(-1) + cand
    current = physics.stno_current_ua(v_new + stno.v_bias, g_m, stno, bias_ua.view(-1, 1, 1))
    return physics.stno_power_uw(current, stno) - h.view(*h.shape, 1, 1)


@pytest.mark.parametrize("seed", [0, 1])
def test_the_fused_power_changes_are_the_torch_paths_bits(seed):
    gen = torch.Generator().manual_seed(seed)
    s, hh, d, t = 33, 7, 3, 5
    stno = STNOParams()
    v = 0.02 * torch.randn(s, hh, generator=gen)  # volts: some currents clamp at each end
    contrib = 0.01 * torch.randn(s, hh, d, generator=gen)
    cand = 0.01 * torch.randn(s, hh, d, t, generator=gen)
    h = torch.rand(s, hh, generator=gen)
    bias_ua = stno.i_th_ua * torch.rand(hh, generator=gen)
    g_m = stno.g_m * torch.exp(torch.tensor(0.3))
    ref = torch_changes(v, contrib, cand, h, bias_ua, g_m, stno)
    out = torch.empty_like(cand)
    fused_stno.power_changes(v, contrib, cand, h, bias_ua, g_m, stno, out)
    assert torch.equal(out, ref)
    # a subset of chains: only theirs are written
    out.fill_(7.0)
    chains = torch.tensor([1, 4])
    fused_stno.power_changes(v, contrib, cand, h, bias_ua, g_m, stno, out, chains)
    assert torch.equal(out[:, chains], ref[:, chains])
    assert (out[:, [0, 2, 3, 5, 6]] == 7.0).all()


@pytest.mark.parametrize("shape", [(40, 6), (9, 6, 4, 3)])
def test_the_fused_powers_are_the_torch_paths_bits_and_the_network_uses_them_without_gradients(shape):
    from engine.nets.multilayer import RFNetwork

    gen = torch.Generator().manual_seed(2)
    stno = STNOParams()
    v = 0.02 * torch.randn(*shape, generator=gen)
    bias_ua = stno.i_th_ua * torch.rand(shape[1], generator=gen)
    g_m = stno.g_m * torch.exp(torch.tensor(-0.2))
    bias = bias_ua.view(-1, *([1] * (len(shape) - 2)))
    ref = physics.stno_power_uw(physics.stno_current_ua(v + stno.v_bias, g_m, stno, bias), stno)
    assert torch.equal(fused_stno.powers(v, bias_ua, g_m, stno), ref)
    net = RFNetwork(20, 3, (shape[1],), (4, 5), device=physics.DeviceParams())
    with torch.no_grad():
        net.hidden_bias[0].uniform_(0.0, 1.0, generator=gen)
        fused = net.activation(0, v)
    torched = net.activation(0, v.clone().requires_grad_())  # with gradients: the physics functions
    assert torch.equal(fused, torched.detach())
