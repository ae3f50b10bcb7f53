"""The vectorised greedy check of input jumps (engine.plasticity.input_jumps) takes exactly the decisions of the
one-input-at-a-time check it replaced (kept here as the reference), on random cases."""

from __future__ import annotations

import pytest
import torch

from engine.plasticity import input_jumps


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


@pytest.mark.parametrize("block", [input_jumps.BLOCK_ELEMENTS, 64])
def test_vectorised_check_picks_what_the_sequential_check_picks(monkeypatch, block):
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


def test_a_jump_makes_the_next_candidates_on_its_images_see_the_new_scores():
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


def test_heartbeat_is_called_during_a_long_check():
    logits, ce, y, power, steps, threshold, _ = random_case(7)
    beats = []
    input_jumps.greedy_jumps(logits, ce, y, power, steps, threshold, heartbeat=lambda: beats.append(1))
    assert beats
