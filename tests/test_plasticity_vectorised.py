"""The vectorised greedy check of input jumps (engine.plasticity.input_jumps) takes exactly the decisions of the
one-input-at-a-time check it replaced (kept here as the reference), on random cases; the fast parts of the
resonator round (engine.plasticity.rounds) compute what the physics and a brute-force evaluation compute."""

from __future__ import annotations

import pytest
import torch

from engine.config.run_config import PlasticityParams
from engine.physics import resonators as physics
from engine.physics.resonators import DeviceParams
from engine.plasticity import input_jumps, rounds


def sequential_jumps(logits, ce, y, power, steps, threshold, site_ok=None):
    """The reference: each candidate checked on the images where it emits, the scores updated after a jump."""
    chosen = torch.full((len(power),), -1, dtype=torch.long)
    for i in range(len(power)):
        rows = (power[i] > 0).nonzero().flatten()
        if len(rows) == 0:
            continue
        trial = torch.addcmul(logits[rows].unsqueeze(0), power[i, rows].view(1, -1, 1), steps[i].unsqueeze(1))
        new_ce = trial.logsumexp(2) - trial.gather(2, y[rows].view(1, -1, 1).expand(len(steps[i]), -1, 1)).squeeze(2)
        change = (new_ce - ce[rows]).sum(1)
        if site_ok is not None:
            change = change.masked_fill(~site_ok[i], float("inf"))
        best, t = change.min(0)
        if float(best) < -threshold:
            logits[rows] = trial[int(t)]
            ce[rows] = new_ce[int(t)]
            chosen[i] = int(t)
    return chosen


def random_case(seed: int):
    g = torch.Generator().manual_seed(seed)
    s = int(torch.randint(10, 200, (1,), generator=g))
    c = int(torch.randint(2, 12, (1,), generator=g))
    t = int(torch.randint(1, 6, (1,), generator=g))
    n = int(torch.randint(1, 60, (1,), generator=g))
    density = float(torch.rand(1, generator=g)) ** 2  # from nearly disjoint images to every image
    logits = 3.0 * torch.randn(s, c, generator=g)
    y = torch.randint(0, c, (s,), generator=g)
    power = torch.rand(n, s, generator=g) * (torch.rand(n, s, generator=g) < density) * 40.0
    power[torch.rand(n, generator=g) < 0.1] = 0.0  # some candidates emit nowhere
    steps = torch.randn(n, t, c, generator=g) * float(torch.rand(1, generator=g)) * 0.05
    site_ok = torch.rand(n, t, generator=g) < 0.8 if seed % 3 == 0 else None
    ce = torch.nn.functional.cross_entropy(logits, y, reduction="none")
    threshold = float(torch.rand(1, generator=g)) * 0.05 * s
    return logits, ce, y, power, steps, threshold, site_ok


COMPILED = [True, False] if input_jumps.fused_weight.available() else [False]


@pytest.fixture(params=COMPILED, ids=lambda c: "compiled" if c else "windows")
def compiled(request, monkeypatch):
    """Each greedy-check test runs on both ways: the compiled loop (engine.plasticity.round_loops, where numba
    imports) and torch's windows."""
    monkeypatch.setattr(input_jumps, "COMPILED", request.param)
    return request.param


@pytest.mark.parametrize("block", [input_jumps.BLOCK_ELEMENTS, 64])
def test_vectorised_check_picks_what_the_sequential_check_picks(monkeypatch, block, compiled):
    monkeypatch.setattr(input_jumps, "BLOCK_ELEMENTS", block)  # 64: windows of one candidate or a few
    jumps = 0
    for seed in range(80):
        logits, ce, y, power, steps, threshold, site_ok = random_case(seed)
        ref_logits, ref_ce = logits.clone(), ce.clone()
        expected = sequential_jumps(ref_logits, ref_ce, y, power, steps, threshold, site_ok)
        got = input_jumps.greedy_jumps(logits, ce, y, power, steps, threshold, site_ok)
        assert torch.equal(got, expected), f"case {seed}"
        torch.testing.assert_close(logits, ref_logits, rtol=0, atol=1e-5)
        torch.testing.assert_close(ce, ref_ce, rtol=0, atol=1e-5)
        jumps += int((expected >= 0).sum())
    assert jumps > 50  # the cases exercise jumps, not only candidates that stay


def test_a_jump_makes_the_next_candidates_on_its_images_see_the_new_scores(compiled):
    # two candidates on the same three images (labels 0, 0, 1) with the same move, +0.7 on class 0: from even
    # scores it lowers the summed loss, twice it overshoots. Greedily only the first one jumps (checked on the
    # old scores, both would).
    logits = torch.zeros(3, 2)
    y = torch.tensor([0, 0, 1])
    ce = torch.nn.functional.cross_entropy(logits, y, reduction="none")
    power = torch.ones(2, 3)
    steps = torch.tensor([[[0.7, 0.0]], [[0.7, 0.0]]])  # one site each
    chosen = input_jumps.greedy_jumps(logits, ce, y, power, steps, threshold=0.0)
    assert chosen.tolist() == [0, -1]
    torch.testing.assert_close(logits[:, 0], torch.full((3,), 0.7))


def test_heartbeat_is_called_during_a_long_check(compiled):
    logits, ce, y, power, steps, threshold, _ = random_case(7)
    beats = []
    input_jumps.greedy_jumps(logits, ce, y, power, steps, threshold, heartbeat=lambda: beats.append(1),
                             max_window=4)
    assert len(beats) >= len(power) // 4


@pytest.mark.parametrize("loop", [0, input_jumps.LOOP_CANDIDATES, 10**6])
def test_both_ways_of_computing_a_windows_scores_pick_the_same_jumps(monkeypatch, loop):
    # 0: every window gathers its emissions' steps; 10**6: every window computes them candidate by candidate
    monkeypatch.setattr(input_jumps, "LOOP_CANDIDATES", loop)
    monkeypatch.setattr(input_jumps, "COMPILED", False)
    for seed in range(0, 80, 3):
        logits, ce, y, power, steps, threshold, site_ok = random_case(seed)
        ref_logits, ref_ce = logits.clone(), ce.clone()
        expected = sequential_jumps(ref_logits, ref_ce, y, power, steps, threshold, site_ok)
        got = input_jumps.greedy_jumps(logits, ce, y, power, steps, threshold, site_ok)
        assert torch.equal(got, expected), f"case {seed}"
        torch.testing.assert_close(logits, ref_logits, rtol=0, atol=1e-5)


def test_emissions_are_listed_candidate_by_candidate_as_torch_lists_them():
    g = torch.Generator().manual_seed(3)
    power = torch.rand(40, 300, generator=g) * (torch.rand(40, 300, generator=g) < 0.3)
    emit_in, emit_row, emit_p = input_jumps._emissions(power)
    ref_in, ref_row = (power > 0).nonzero(as_tuple=True)
    assert torch.equal(emit_in, ref_in) and torch.equal(emit_row, ref_row)
    assert torch.equal(emit_p, power[ref_in, ref_row])
    assert emit_in.is_contiguous() and emit_row.is_contiguous()


# --- the resonator round (engine.plasticity.rounds) ---------------------------------------------------------


@pytest.mark.parametrize("plan", ["geometric", "linear"])
@pytest.mark.parametrize("phi", [0.0, 0.4])
def test_site_couplings_are_the_physics_couplings_bit_for_bit(plan, phi):
    params = DeviceParams(plan=plan, phi=phi)
    n = 50
    g = torch.Generator().manual_seed(0)
    f_in = physics.comb_to_ghz(torch.arange(n, dtype=torch.float32) + 0.3 * torch.randn(n, generator=g), params, n)
    f_sites = physics.comb_to_ghz(torch.arange(-3.0, n + 3.0, 0.25), params, n)
    expected = physics.coupling_tensor(f_in, f_sites.view(1, -1), params, signs=torch.ones(len(f_sites)))[0]
    assert torch.equal(rounds.site_couplings(f_in, f_sites, params), expected)
    reused = torch.full_like(expected, float("nan"))  # a buffer of the right shape is written over
    assert rounds.site_couplings(f_in, f_sites, params, out=reused) is reused
    assert torch.equal(reused, expected)


def test_others_logsumexp_is_the_logsumexp_over_the_other_classes():
    g = torch.Generator().manual_seed(1)
    logits = 4.0 * torch.randn(500, 7, generator=g)
    logits[:5, 2] = 200.0  # one class far above the others: its others must not underflow
    logits[5:10] = 1.5  # ties
    eye = torch.eye(7, dtype=torch.bool)
    expected = torch.logsumexp(logits.unsqueeze(1).masked_fill(eye, -float("inf")), dim=2)
    torch.testing.assert_close(rounds.others_logsumexp(logits), expected, rtol=1e-6, atol=1e-5)


def test_each_move_takes_every_chains_best_swap_by_the_exact_sampled_loss(compiled):
    """The moves of a round, against a brute-force reference: for every chain, the cross-entropy of the sample
    with each open swap applied, recomputed from scratch; a chain takes its best swap if it improves enough."""
    g = torch.Generator().manual_seed(2)
    s, c, d, t = 300, 4, 3, 5
    logits = 2.0 * torch.randn(s, c, generator=g)
    y = torch.randint(0, c, (s,), generator=g)
    contrib = torch.randn(s, c, d, generator=g)
    cand_for = contrib.unsqueeze(-1) + 0.8 * torch.randn(s, c, d, t, generator=g)
    open_ = torch.rand(c, d, t, generator=g) < 0.9
    plasticity = rounds.StructuralPlasticity.__new__(rounds.StructuralPlasticity)
    plasticity.params, plasticity.device, plasticity._buffers = PlasticityParams(candidates=t), logits.device, {}
    ref_logits, ref_contrib = logits.clone(), contrib.clone()
    moves = plasticity._best_swaps(logits, y, contrib, cand_for, rounds.candidate_factors(cand_for), open_, 4)
    n_moves = 0
    for js, dd, tt in moves:
        base = float(torch.nn.functional.cross_entropy(ref_logits, y))
        expected_js = []
        for j in range(c):
            gains = torch.full((d, t), -float("inf"), dtype=torch.float64)
            for a in range(d):
                for b in range(t):
                    if open_[j, a, b]:
                        trial = ref_logits.clone()
                        trial[:, j] += cand_for[:, j, a, b] - ref_contrib[:, j, a]
                        gains[a, b] = base - float(torch.nn.functional.cross_entropy(trial, y))
            best = int(gains.argmax())
            if gains.view(-1)[best] > plasticity.params.min_improvement:
                expected_js.append((j, best // t, best % t))
        assert [(int(j), int(a), int(b)) for j, a, b in zip(js, dd, tt)] == expected_js
        for j, a, b in expected_js:  # the reference's own bookkeeping, and the swap closed
            ref_logits[:, j] += cand_for[:, j, a, b] - ref_contrib[:, j, a]
            ref_contrib[:, j, a] = cand_for[:, j, a, b]
            open_[j, a, :] = False
        torch.testing.assert_close(logits, ref_logits, rtol=0, atol=1e-5)
        n_moves += 1
    assert n_moves >= 2  # the case makes several moves


def test_summed_changes_handle_candidates_without_emissions():
    diff = torch.arange(12, dtype=torch.float32).view(2, 6)  # (T, E)
    ends = [0, 0, 2, 2, 5, 6, 6, 6]  # empty first, middle and last candidates
    got = input_jumps._summed_changes(diff, ends)
    expected = [[float(diff[t, a:b].sum()) for t in range(2)] for a, b in zip(ends[:-1], ends[1:])]
    assert got == expected
    assert input_jumps._summed_changes(diff[:, :0], [0, 0]) == [[0.0, 0.0]]


@pytest.mark.skipif(not input_jumps.fused_weight.available(), reason="numba does not import here")
def test_the_compiled_swap_sums_are_the_blocks_sums():
    """round_loops.log_sums: the sum over the sample of log(1 + factor * shift), without the block, against
    float64; the torch block it replaces is no closer."""
    from engine.plasticity import round_loops

    g = torch.Generator().manual_seed(4)
    s, c, d, t = 700, 3, 4, 5
    factors = torch.rand(s, c, d, t, generator=g) * torch.exp(4 * torch.randn(s, c, d, t, generator=g))
    shift = torch.exp(3 * torch.randn(s, c, d, generator=g))
    ref = torch.log1p(factors.double() * shift.double().unsqueeze(-1)).sum(0)
    got = round_loops.log_sums(factors, shift)
    block = torch.log(1 + factors * shift.unsqueeze(-1)).sum(0)
    err, block_err = float((got.double() - ref).abs().max()), float((block.double() - ref).abs().max())
    assert got.shape == (c, d, t) and err <= 1e-6 * float(ref.abs().max()) and err <= block_err + 1e-6


@pytest.mark.skipif(not input_jumps.fused_weight.available(), reason="numba does not import here")
def test_the_vectorisable_exp_and_log_are_within_a_few_units_in_the_last_place():
    import numba
    import numpy as np

    from engine.layers.vector_math import vexp, vlog

    @numba.njit
    def both(x, e, lg):
        for i in range(x.shape[0]):
            e[i] = vexp(x[i])
            lg[i] = vlog(e[i])

    x = np.concatenate([np.linspace(-87, 88, 20001), [-1000.0, 1000.0, 0.0, -1e-6, 1e-6]]).astype(np.float32)
    e, lg = np.empty_like(x), np.empty_like(x)
    both(x, e, lg)
    clamped = np.clip(x.astype(np.float64), -87, 88)
    assert np.all(np.abs(e / np.exp(clamped) - 1) < 3e-7)
    ref_log = np.log(e.astype(np.float64))
    assert np.all(np.abs(lg - ref_log) <= 3e-7 * np.maximum(np.abs(ref_log), 1.0))


@pytest.mark.parametrize("sparse", [False, True])
def test_the_input_rounds_predicted_changes_are_the_gauss_newton_model(sparse):
    """_predicted_changes (the curvature stored as its pairs c <= d) against the model written out: for input n
    moved to site m, g_n . d + 1/2 d^T H_n d with d = curve_m - w_n, g_n and H_n from the sample; with the
    sample's sums dense (from the transposed powers) and sparse (round_loops.input_moments)."""
    if sparse and not input_jumps.fused_weight.available():
        pytest.skip("numba does not import here")
    g = torch.Generator().manual_seed(6)
    n, s, c, m = 30, 200, 5, 17
    p_t = torch.rand(n, s, generator=g) * (torch.rand(n, s, generator=g) < 0.3)
    logits = 2.0 * torch.randn(s, c, generator=g)
    y = torch.randint(0, c, (s,), generator=g)
    wt = 0.1 * torch.randn(n, c, generator=g)
    gain = 0.5 + torch.rand(c, generator=g)
    curve = 0.1 * torch.randn(c, m, generator=g)

    class Buffers:
        def _buffer(self, name, shape, like):
            return torch.empty(shape, dtype=like.dtype)

    p_in = p_t.t().contiguous()
    got = rounds.StructuralPlasticity._predicted_changes(
        Buffers(), p_in, None if sparse else p_t, logits, y, wt, gain, curve
    )
    prob = logits.double().softmax(1)
    resid = prob - torch.nn.functional.one_hot(y, c).double()
    pt, gn = p_t.double(), gain.double()
    grad = (pt @ resid) * gn / s  # (N, C)
    hess = torch.einsum("ns,sc,sd->ncd", pt**2, prob, prob).neg() + torch.diag_embed(pt**2 @ prob)
    hess = hess * torch.outer(gn, gn) / s
    d = curve.double().t().unsqueeze(0) - wt.double().unsqueeze(1)  # (N, M, C)
    expected = (d * grad.unsqueeze(1)).sum(-1) + 0.5 * torch.einsum("nmc,ncd,nmd->nm", d, hess, d)
    torch.testing.assert_close(got.double(), expected, rtol=1e-4, atol=1e-6)


@pytest.mark.skipif(not input_jumps.fused_weight.available(), reason="numba does not import here")
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_rounds_sparse_sample_sums_are_the_dense_products(seed):
    """round_loops.sample_products and input_moments (the terms of non-zero powers only) against float64
    products, on powers with dark rows, fully lit rows and lit counts that are not multiples of eight."""
    from engine.plasticity import round_loops

    g = torch.Generator().manual_seed(seed)
    s, n = 67, 45
    power = torch.rand(s, n, generator=g) * (torch.rand(s, n, generator=g) < 0.2 + 0.3 * seed)
    power[0] = 0.0  # a dark image
    power[1] = torch.rand(n, generator=g) + 0.1  # every input lit
    lines = [torch.randn(r, n, generator=g) for r in (13, 8, 1)]
    outs = [torch.full((s, len(t)), float("nan")) for t in lines]
    round_loops.sample_products(power, lines, outs)
    for t, o in zip(lines, outs):
        ref = power.double() @ t.double().t()
        torch.testing.assert_close(o.double(), ref, rtol=0, atol=1e-5 * float(ref.abs().max()))
    resid, weights = torch.randn(s, 5, generator=g), torch.rand(s, 15, generator=g)
    grad, moments = round_loops.input_moments(power, resid, weights)
    ref_grad = power.double().t() @ resid.double()
    ref_mom = (power.double().t() ** 2 / s) @ weights.double()
    torch.testing.assert_close(grad.double(), ref_grad, rtol=0, atol=1e-5 * float(ref_grad.abs().max()))
    torch.testing.assert_close(moments.double(), ref_mom, rtol=0, atol=1e-5 * float(ref_mom.abs().max()))
    assert round_loops.sparse_enough(power) == (seed == 0)


@pytest.mark.parametrize("sep", [1, 2, 8])
def test_suppressing_around_a_site_masks_the_sites_a_distance_comparison_masks(sep):
    gen = torch.Generator().manual_seed(sep)
    benefit = torch.randn(6, 5, 40, generator=gen)
    best = torch.randint(0, 40, (6, 5), generator=gen)
    best[0, 0], best[0, 1], best[1, 0] = 0, 39, 1  # the grid's edges
    dist = (torch.arange(40).view(1, 1, -1) - best.unsqueeze(-1)).abs()
    expected = benefit.masked_fill(dist < sep, -float("inf"))
    assert torch.equal(rounds.suppress_around(benefit.clone(), best, sep), expected)
