"""LeanAdam (engine.core.model_base): torch's fused Adam without its Python front end, the same numbers bit
for bit."""
from __future__ import annotations

import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_post_hook

from engine.core.model_base import LeanAdam, make_adam


def params(seed: int) -> list[torch.nn.Parameter]:
    g = torch.Generator().manual_seed(seed)
    return [torch.nn.Parameter(torch.randn(s, generator=g)) for s in ((7, 5), (40,), (3,), ())]


def fused_adam_available() -> bool:
    try:
        torch.optim.Adam(params(0), lr=1e-3, fused=True)
    except (RuntimeError, TypeError):
        return False
    return True


@pytest.mark.skipif(not fused_adam_available(), reason="this torch has no fused CPU Adam")
def test_lean_adam_steps_as_torch_fused_adam_bit_for_bit():
    a, b = params(1), params(1)
    groups = lambda ps: [{"params": ps[:2]}, {"params": ps[2:], "lr": 3e-2}]  # noqa: E731
    ref = torch.optim.Adam(groups(a), lr=1e-2, fused=True)
    lean = make_adam(groups(b), 1e-2)
    assert isinstance(lean, LeanAdam)
    schedules = [torch.optim.lr_scheduler.LambdaLR(o, lambda s: 1.0 / (1 + 0.1 * s)) for o in (ref, lean)]
    g = torch.Generator().manual_seed(2)
    for step in range(30):
        grads = [torch.randn(p.shape, generator=g) for p in a]
        for opt, ps in ((ref, a), (lean, b)):
            opt.zero_grad(set_to_none=True)
            for i, (p, grad) in enumerate(zip(ps, grads)):
                if not (step % 7 == 3 and i == 1):  # now and then a parameter without a gradient
                    p.grad = grad.clone()
            opt.step()
        for sched in schedules:
            sched.step()
        if step == 10:  # fresh moments for a few entries, as a rewiring round gives jumped resonators
            for opt, ps in ((ref, a), (lean, b)):
                opt.state[ps[0]]["exp_avg"][2] = 0.0
                opt.state[ps[0]]["exp_avg_sq"][2] = 0.0
        for p, q in zip(a, b):
            assert torch.equal(p, q), f"step {step}"
    for p, q in zip(a, b):
        for key in ("exp_avg", "exp_avg_sq", "step"):
            assert torch.equal(ref.state[p][key], lean.state[q][key])


def test_lean_adam_takes_adams_own_step_where_it_must():
    ps = params(3)
    opt = LeanAdam(ps, lr=1e-2, amsgrad=True)
    for p in ps:
        p.grad = torch.ones_like(p)
    before = [p.detach().clone() for p in ps]
    opt.step()
    opt.step()
    assert all(not torch.equal(p, q) for p, q in zip(ps, before))
    assert float(opt.state[ps[0]]["step"]) == 2.0
    assert opt.step(lambda: torch.tensor(0.0)) is not None  # a closure: Adam's step, which returns its loss


@pytest.mark.skipif(not fused_adam_available(), reason="this torch has no fused CPU Adam")
def test_lean_adam_keeps_step_hooks_and_the_profilers_annotation():
    a, b = params(3), params(3)
    ref = torch.optim.Adam(a, lr=1e-2, fused=True)
    lean = make_adam(b, 1e-2)
    calls: list[str] = []
    for ps, opt in ((a, ref), (b, lean)):  # one plain step each, so that every parameter has its state
        for p in ps:
            p.grad = torch.ones_like(p)
        opt.step()
    lean.register_step_pre_hook(lambda opt, args, kwargs: calls.append("pre"))
    lean.register_step_post_hook(lambda opt, args, kwargs: calls.append("post"))
    handle = register_optimizer_step_post_hook(lambda opt, args, kwargs: calls.append("all"))
    try:
        for ps, opt in ((a, ref), (b, lean)):
            for p in ps:
                p.grad = torch.full_like(p, 0.5)
            opt.step()
    finally:
        handle.remove()
    assert calls == ["all", "pre", "post", "all"]  # the reference's global hook, then the lean one's three
    for x, y in zip(a, b):
        assert torch.equal(x, y)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        for p in b:
            p.grad = torch.ones_like(p)
        lean.step()
    assert any(e.name == "Optimizer.step#LeanAdam.step" for e in prof.events())
