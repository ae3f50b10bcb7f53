"""The RF perceptron, its chain layer and structural plasticity, trained on the embedded subset."""
import math

import numpy as np
import pytest
import torch

from engine.physics import resonators as physics
from engine.layers.chain import RFChainLayer
from engine.config.run_config import PlasticityParams, RunConfig
from engine.core.model_base import TrainingContext
from engine.physics.resonators import DeviceParams
from engine.plasticity.rounds import StructuralPlasticity
from engine.core.progress import CancelToken, DivergenceError
from engine.nets.rf_perceptron import RFParams, RFPerceptron
from engine.training.loop import run_training


def test_lean_lineshape_matches_reference():
    x = torch.linspace(-30, 30, 2001, dtype=torch.float64)
    f_r, alpha = torch.tensor(1.7, dtype=torch.float64), 0.01
    a, _b = physics.detuning_partials(f_r, alpha)
    f = f_r * (1 + alpha * x)
    assert torch.allclose(physics.detuning_scaled(f, f_r, a), physics.detuning(f, f_r, alpha))
    for phi in (0.0, 0.3, math.pi / 2, -1.0):
        xd, d = physics.lineshape_parts(x.clone())
        c_xd, c_d = physics.lineshape_coefficients(phi)
        assert torch.allclose(c_xd * xd + c_d * d, physics.lineshape(x, phi))
        half = physics.lineshape_half_slope(xd, d, phi)
        assert torch.allclose(2 * half, physics.lineshape_derivative(x, phi))
        out = torch.empty_like(x)
        assert physics.lineshape_half_slope(xd, d, phi, out=out) is out and torch.equal(out, half)


@pytest.mark.parametrize("kw", [{}, {"phi": 0.4, "alpha_dtod": 0.1, "k_sd_dtod": 0.2}, {"plan": "linear"}])
@pytest.mark.parametrize("shape", [(50, 4, 6), (784, 10, 40)])  # (N, C, K): small and large (chunked, batched)
def test_fused_weight_and_gradients_match_plain_autograd(kw, shape):
    n, c, k = shape
    layer = RFChainLayer(n, c, k, DeviceParams(**kw), train_inputs=True, generator=torch.Generator().manual_seed(0))
    g = torch.randn(c, n)
    w_fast = layer.weight()
    (w_fast * g).sum().backward()
    grads_fast = layer.resonator_comb.grad.clone(), layer.input_comb.grad.clone()
    layer.zero_grad()
    w_ref = layer.coupling().sum(dim=1)  # physics.coupling_tensor through plain autograd
    (w_ref * g).sum().backward()
    assert torch.allclose(w_fast, w_ref, rtol=1e-5, atol=1e-6 * float(w_ref.detach().abs().max()))
    for fast, ref in zip(grads_fast, (layer.resonator_comb.grad, layer.input_comb.grad)):
        assert torch.allclose(fast, ref, rtol=1e-4, atol=1e-6 * float(ref.abs().max()))


def test_weight_is_the_physics_effective_weight():
    p = DeviceParams()
    layer = RFChainLayer(784, 10, 5, p, generator=torch.Generator().manual_seed(1))
    ref = physics.effective_weight(layer.input_freqs_ghz(), layer.resonator_freqs_ghz(), p)
    assert torch.allclose(layer.weight(), ref, rtol=1e-5, atol=1e-9)
    # the spectral response at the inputs' own frequencies is the weight matrix
    assert torch.allclose(layer.response(layer.input_freqs_ghz()), ref, rtol=1e-5, atol=1e-9)


def test_scores_scale_with_the_input_power():
    """Class scores = gain * (P_max x) W^T + b: doubling p_max_uw doubles the voltage term (the
    p_max_uw = 1 path skips the multiplication, the others must not)."""
    x = torch.rand(5, 30, generator=torch.Generator().manual_seed(1))
    scores = {}
    for p_max in (1.0, 2.0):
        m = RFPerceptron(30, 4, 3, device=DeviceParams(p_max_uw=p_max), generator=torch.Generator().manual_seed(0))
        m.eval()
        with torch.no_grad():
            scores[p_max] = m(x) - m.bias
            assert torch.allclose(scores[p_max], m.gain * (p_max * x) @ m.chains.weight().t(), rtol=1e-5)
    # the gain unit is 1/(K_SD P_max), so the same initial gain gives the same scores whatever P_max
    assert torch.allclose(scores[1.0], scores[2.0], rtol=1e-5)


def test_attachment_is_the_strongest_coupling():
    layer = RFChainLayer(784, 3, 4, DeviceParams(), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        idx, coupling = layer.attachments()
        c = layer.coupling()
    for j in range(3):
        for k in range(4):
            i = int(c[j, k].abs().argmax())
            assert int(idx[j, k]) == i and float(coupling[j, k]) == pytest.approx(float(c[j, k, i]))
            # one linewidth off resonance, the attached input sits near the resonator
            assert abs(float(layer.resonator_comb.detach()[j, k]) - i) < 3


def test_swap_losses_are_exact():
    torch.manual_seed(0)
    s, c, d, t = 200, 10, 4, 3
    logits, y = torch.randn(s, c) * 3, torch.randint(0, c, (s,))
    contrib, cand = torch.randn(s, c, d), torch.randn(s, c, d, t) * 3
    own = torch.einsum("sc,scdt->cdt", torch.nn.functional.one_hot(y, c).float(), cand)
    out = StructuralPlasticity.swap_losses(logits, y, contrib, cand.clone(), own)
    # a reused work block (whatever it held) gives the same losses, and the candidates are left untouched
    kept = cand.clone()
    again = StructuralPlasticity.swap_losses(logits, y, contrib, cand, own, work=torch.full_like(cand, float("nan")))
    assert torch.equal(again, out) and torch.equal(cand, kept)
    for j in range(c):
        for dd in range(d):
            for tt in range(t):
                mod = logits.clone()
                mod[:, j] += cand[:, j, dd, tt] - contrib[:, j, dd]
                assert float(out[j, dd, tt]) == pytest.approx(float(torch.nn.functional.cross_entropy(mod, y)),
                                                              abs=1e-4)


def _cfg(model, **kw):
    return RunConfig(model=model, resonators_per_chain=kw.pop("k", 10), dataset="mnist-mini",
                     epochs=kw.pop("epochs", 2), seed=kw.pop("seed", 0), **kw)


def test_plasticity_rewires_and_beats_the_frozen_topology(mini):
    frozen = run_training(_cfg("rf-frozen", epochs=3), mini)
    plastic = run_training(_cfg("rf", epochs=3), mini)
    assert frozen.rewiring_events == 0 and plastic.rewiring_events > 0
    assert plastic.test_accuracy > frozen.test_accuracy + 0.05
    assert plastic.test_accuracy > 0.5  # far above chance (0.1) after 180 steps on 6k images


def test_only_rf_input_moves_the_input_oscillators(mini):
    nominal = physics.input_frequencies_ghz(DeviceParams(), 784)
    for model, moves in (("rf", False), ("rf-input", True)):
        r = run_training(_cfg(model, epochs=1), mini)
        moved = not torch.allclose(r.model.chains.input_freqs_ghz().detach(), nominal, rtol=1e-6)
        assert moved == moves, model


def test_input_jumps_are_checked_exactly_and_lower_the_sampled_loss(mini):
    m = run_training(_cfg("rf-input", epochs=1), mini).model
    assert m.plasticity is None and m.context is None  # training state ended with training
    x, y = mini.train_x, mini.train_y
    params = PlasticityParams()
    idx = torch.randint(0, len(x), (params.input_sample_size,), generator=torch.Generator().manual_seed(7))
    ctx = TrainingContext(total_steps=100, steps_per_epoch=60, optimizer=None, train_x=x, train_y=y,
                          generator=torch.Generator().manual_seed(7))  # draws the same sample as idx
    sp = StructuralPlasticity(m, params, ctx)
    before_comb = m.chains.input_comb.detach().clone()
    with torch.no_grad():
        before = float(torch.nn.functional.cross_entropy(m(x[idx]), y[idx]))
        moved = sp.rewire_inputs(1.0)
        after = float(torch.nn.functional.cross_entropy(m(x[idx]), y[idx]))
    changed = int((m.chains.input_comb.detach() != before_comb).sum())
    assert moved > 0 and changed == moved
    # every jump lowered the sampled loss by at least input_min_improvement
    assert after < before - moved * params.input_min_improvement * 0.99


def test_frequencies_stay_in_the_tuning_range(mini):
    p = DeviceParams(tuning_margin=0.5)
    r = run_training(_cfg("rf-input", epochs=1, device=p, lr=5.0), mini)
    lo, hi = physics.tuning_range_comb(p, 784)
    for u in (r.model.chains.resonator_comb.detach(), r.model.chains.input_comb.detach()):
        assert float(u.min()) >= lo - 1e-4 and float(u.max()) <= hi + 1e-4


def test_runs_are_reproducible_per_seed(mini):
    a = run_training(_cfg("rf", epochs=1, seed=5), mini)
    b = run_training(_cfg("rf", epochs=1, seed=5), mini)
    c = run_training(_cfg("rf", epochs=1, seed=6), mini)
    assert torch.equal(a.model.chains.resonator_comb, b.model.chains.resonator_comb)
    assert a.test_accuracy == b.test_accuracy
    assert not torch.equal(a.model.chains.resonator_comb, c.model.chains.resonator_comb)


def test_divergence_stops_with_a_clear_message(mini):
    with pytest.raises(DivergenceError, match="diverged"):
        run_training(_cfg("rf", epochs=1, model_params=RFParams(initial_gain=1e38)), mini)


def test_snapshots_are_private_copies_and_cancellation_stops_between_batches(mini):
    token = CancelToken()
    snaps = []

    def progress(s):
        snaps.append(s)
        if len(snaps) == 2:
            token.set()

    r = run_training(_cfg("rf", epochs=3), mini, progress=progress, cancel=token, snapshot_interval_s=0.0)
    assert r.cancelled and r.epochs_completed == 0 and snaps[-1].final
    first = snaps[0]
    assert first.resonator_freqs_ghz.shape == (10, 10) and first.input_freqs_ghz.shape == (784,)
    assert first.weight.shape == (10, 784) and first.weight.flags.owndata
    before = first.weight.copy()
    with torch.no_grad():
        r.model.chains.resonator_comb.add_(3.0)
    assert np.array_equal(first.weight, before), "snapshot must not change when the model does"


def test_long_rewiring_rounds_report_progress_and_can_be_cancelled(mini):
    token = CancelToken()
    steps = []

    def progress(s):
        if not s.final:
            steps.append(s.step)
        if steps.count(100) >= 3:  # several reports at the step of the first rewiring round: inside it
            token.set()

    # 3 epochs of 60 steps: rewiring rounds at steps 100 (inside the first 75 %) and not at 200 (min_rounds=0:
    # the nominal interval, not the one a short run is given)
    cfg = _cfg("rf-input", epochs=3, plasticity=PlasticityParams(heartbeat_every=8, min_rounds=0))
    r = run_training(cfg, mini, progress=progress, cancel=token, snapshot_interval_s=0.0)
    assert r.cancelled and steps.count(100) == 3 and max(steps) == 100
    assert r.model.context is None and r.model.plasticity is None  # the loop's state does not outlive the run


def test_rebuilding_from_state_is_bit_identical(mini):
    r = run_training(_cfg("rf-input", epochs=1), mini)
    m = r.model
    clone = RFPerceptron.from_state(m.params, m.chains.input_comb.detach(), m.chains.resonator_comb.detach(),
                                    m.bias.detach(), float(m.log_gain.detach()), None, None)
    with torch.no_grad():
        assert torch.equal(clone(mini.test_x), m(mini.test_x))


def test_plasticity_schedule_decays_and_stops():
    params = PlasticityParams(fraction=0.5, end_fraction=0.5)
    model = RFPerceptron(784, 10, 10, device=DeviceParams(), plasticity=params)
    ctx = TrainingContext(total_steps=1000, steps_per_epoch=100, optimizer=None, train_x=torch.rand(5, 784),
                          train_y=torch.zeros(5, dtype=torch.long), generator=model.generator)
    model.begin_training(ctx)
    sp = model.plasticity
    assert sp.moves_at(0) == 5 and sp.moves_at(400) >= 1 and sp.moves_at(500) == 0 and sp.moves_at(900) == 0

    model.finish_training()
    assert model.plasticity is None and model.context is None


def test_resonator_jumps_of_both_chain_signs_lower_the_sampled_loss(mini):
    """A resonator of sign -1 that jumps contributes the negative of a +1 resonator's coupling at its new
    site: the exact evaluation must use that, so jumps of both signs happen and each lowers the sampled loss."""
    m = run_training(_cfg("rf", epochs=1, k=10), mini).model
    x, y = mini.train_x, mini.train_y
    params = PlasticityParams()
    ctx = TrainingContext(total_steps=100, steps_per_epoch=60, optimizer=None, train_x=x, train_y=y,
                          generator=torch.Generator().manual_seed(3))
    sp = StructuralPlasticity(m, params, ctx)
    w = m.chains.weight().detach().requires_grad_()
    logits = m.gain.detach() * (m.params.p_max_uw * x[:3000] @ w.t()) + m.bias.detach()
    torch.nn.functional.cross_entropy(logits, y[:3000]).backward()
    sp.accumulate(w.grad)
    # rewire() draws its sample first thing from the context's generator: the same draw as this one
    idx = torch.randint(0, len(x), (params.sample_size,), generator=torch.Generator().manual_seed(3))
    before_comb = m.chains.resonator_comb.detach().clone()
    with torch.no_grad():
        before = float(torch.nn.functional.cross_entropy(m(x[idx]), y[idx]))
        moved = sp.rewire(4)
        after = float(torch.nn.functional.cross_entropy(m(x[idx]), y[idx]))
    jumped = m.chains.resonator_comb.detach() != before_comb  # (C, K)
    signs = m.chains.signs
    assert moved == int(jumped.sum()) > 0
    assert jumped[:, signs > 0].any() and jumped[:, signs < 0].any(), "only one chain sign ever jumps"
    assert after < before - moved * params.min_improvement * 0.99


def test_runs_on_different_training_sets_in_one_process(mini):
    """Per-dataset caches must tell training tensors apart by identity (and never compare them)."""
    from engine.data import load_dataset

    drones = load_dataset("drones")
    for ds in (mini, drones, mini.validation_split(0.2), drones):
        r = run_training(RunConfig(model="rf", resonators_per_chain=4, epochs=1, dataset=ds.name), ds)
        assert 0.0 <= r.test_accuracy <= 1.0
