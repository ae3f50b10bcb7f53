"""Tests of the sparse feed-forward baselines (engine/baselines) on the embedded mnist-mini set."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from engine.nets.baselines import (DensePerceptron, GradualMagnitudePruning, MaskedPerceptron, RigL, RigLParams, SET,
                              StaticRandomSparse)
from engine.nets.baselines.masked import cosine_fraction, select_largest, select_smallest, stochastic_round, topk_mask
from engine.config.run_config import RunConfig
from engine.data import load_dataset
from engine.core.model_base import TrainingContext
from engine.config.models import build_model, get_spec, list_models
from engine.training.loop import run_training

BASELINES = tuple(list_models("baseline"))

SPARSE = ("prune", "random", "rigl", "set")
BUDGETS = ("per-output", "global")
K = 10
#: Learning rates for the short test runs (per optimizer the model uses by default).
TEST_LR = {"adam": 0.01, "sgd": 0.3}


@pytest.fixture(scope="module")
def mini():
    torch.set_num_threads(1)
    return load_dataset("mnist-mini")


def lr_for(model: str) -> float:
    return TEST_LR[get_spec(model).params_class().optimizer]


def cfg_for(model: str, **kw) -> RunConfig:
    base = dict(model=model, resonators_per_chain=K, dataset="mnist-mini", epochs=2, lr=lr_for(model), seed=0)
    base.update(kw)
    return RunConfig(**base)


@pytest.fixture
def capture_optimizer(monkeypatch):
    """Make every baseline remember the optimizer it built (as ``captured_optimizer``)."""
    for cls in (MaskedPerceptron, DensePerceptron):
        original = cls.make_optimizer

        def make(self, lr, _original=original):
            opt = _original(self, lr)
            self.captured_optimizer = opt
            return opt

        monkeypatch.setattr(cls, "make_optimizer", make)


def assert_budget(model: MaskedPerceptron, budget: str) -> None:
    active = model.mask > 0
    assert ((model.mask == 0) | (model.mask == 1)).all()
    if budget == "per-output":
        assert active.sum(1).tolist() == [K] * model.n_classes
    assert int(active.sum()) == K * model.n_classes
    assert model.synapse_count() == K * model.n_classes


def assert_masked_state_zero(model: MaskedPerceptron, optimizer: torch.optim.Optimizer) -> None:
    inactive = model.mask == 0
    assert (model.weight[inactive] == 0).all()
    assert (model.effective_weight()[inactive] == 0).all()
    state = optimizer.state[model.weight]
    tensors = [v for v in state.values() if torch.is_tensor(v) and v.shape == model.weight.shape]
    assert tensors, "the optimizer has per-weight state"
    for v in tensors:
        assert (v[inactive] == 0).all()


# --- helpers ---------------------------------------------------------------------------------------------
def test_selection_helpers():
    scores = torch.tensor([[3.0, 1.0, 2.0, 0.0], [0.0, 5.0, float("inf"), 4.0]])
    small = select_smallest(scores, torch.tensor([2, 1]))
    assert small.tolist() == [[False, True, False, True], [True, False, False, False]]
    large = select_largest(scores.nan_to_num(posinf=-float("inf")), torch.tensor([1, 2]))
    assert large.tolist() == [[True, False, False, False], [False, True, False, True]]
    assert topk_mask(scores, 2).sum(1).tolist() == [2, 2]
    x = torch.full((20000,), 2.3)
    r = stochastic_round(x, torch.Generator().manual_seed(0))
    assert set(r.unique().tolist()) == {2, 3} and abs(r.float().mean().item() - 2.3) < 0.02
    assert (stochastic_round(torch.full((100,), 3.0), torch.Generator()) == 3).all()
    assert cosine_fraction(0.3, 0, 100) == pytest.approx(0.3)
    assert cosine_fraction(0.3, 100, 100) == pytest.approx(0.0)


def test_registry_builds_each_baseline_with_its_params():
    classes = {"dense": DensePerceptron, "prune": GradualMagnitudePruning, "random": StaticRandomSparse,
               "rigl": RigL, "set": SET}
    assert set(BASELINES) == set(classes)
    for name, cls in classes.items():
        assert type(build_model(cfg_for(name), 784, 10)) is cls
    cfg = cfg_for("rigl").with_(model_params=RigLParams(alpha=0.1, optimizer="sgd"))
    model = build_model(cfg, 784, 10)
    assert model.alpha == 0.1 and isinstance(model.make_optimizer(0.1), torch.optim.SGD)
    assert RigLParams().alpha == 0.3  # the defaults are untouched
    with pytest.raises(ValueError, match="optimizer"):
        RigLParams(optimizer="lbfgs")


@pytest.mark.parametrize("budget", BUDGETS)
def test_initial_masks(budget):
    for cls in (StaticRandomSparse, RigL, SET):
        assert_budget(cls(784, 10, K, budget, generator=torch.Generator().manual_seed(0)), budget)
    prune = GradualMagnitudePruning(784, 10, K, budget)
    assert prune.synapse_count() == 7840  # starts dense


def test_dense_gradient_matches_autograd():
    torch.manual_seed(0)
    model = RigL(784, 10, K, generator=torch.Generator().manual_seed(0))
    x, y = torch.rand(32, 784), torch.randint(0, 10, (32,))
    w_eff = model.weight * model.mask
    w_eff.retain_grad()
    F.cross_entropy(F.linear(x, w_eff, model.bias), y).backward()
    assert torch.allclose(model.dense_gradient(x, y), w_eff.grad, atol=1e-6)
    # the weight itself gets no gradient at masked positions
    assert (model.weight.grad[model.mask == 0] == 0).all()


# --- mask updates --------------------------------------------------------------------------------------------
def attach(model, opt, total_steps: int = 1000, steps_per_epoch: int = 100):
    """Give a model the training context the loop would give it (for calling its hooks directly)."""
    model.begin_training(TrainingContext(total_steps=total_steps, steps_per_epoch=steps_per_epoch, optimizer=opt,
                                         train_x=torch.empty(0, model.n_inputs), train_y=torch.empty(0),
                                         generator=model.generator))


def _trained_state(model: MaskedPerceptron, opt_name: str = "adam"):
    """A model after a few optimizer steps, so weights and optimizer moments are non-zero at active positions."""
    opt = {"adam": torch.optim.Adam, "sgd": lambda p, lr: torch.optim.SGD(p, lr, momentum=0.9)}[opt_name](
        model.parameters(), 0.01)
    attach(model, opt)
    for _ in range(3):
        x, y = torch.rand(16, 784), torch.randint(0, 10, (16,))
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
        model.after_step(0)
    return opt


@pytest.mark.parametrize("budget", BUDGETS)
@pytest.mark.parametrize("opt_name", ("adam", "sgd"))
def test_rigl_update_drops_smallest_grows_largest_gradient_at_zero(budget, opt_name):
    model = RigL(784, 10, K, budget, generator=torch.Generator().manual_seed(1))
    opt = _trained_state(model, opt_name)
    model.t_end = 1000
    before = model.mask > 0
    w_before = model.weight.detach().clone()
    grad = torch.randn(10, 784)
    grown = model.update_mask(0, grad, opt)  # t = 0: fraction alpha = 0.3, so exactly 3 per row of 10
    after = model.mask > 0
    assert_budget(model, budget)
    new, dropped = after & ~before, before & ~after
    n = 3 * 10
    assert grown == int(new.sum()) == int(dropped.sum()) == n == model.rewiring_events
    rows = (lambda t: t) if budget == "per-output" else (lambda t: t.reshape(1, -1))
    # dropped: the smallest |w| among the active ones (per row / overall)
    for d, b, w in zip(rows(dropped), rows(before), rows(w_before.abs())):
        assert w[d].max() <= w[b & ~d].min()
    # grown: the largest |grad| among the positions inactive before the update
    for g, b, s in zip(rows(new), rows(before), rows(grad.abs())):
        candidates = ~b & ~g
        assert s[g].min() >= s[candidates].max()
    if budget == "per-output":
        assert new.sum(1).tolist() == [3] * 10
    # grown start at zero with fresh optimizer state; masked stay zero
    assert (model.weight[new] == 0).all()
    for v in opt.state[model.weight].values():
        if torch.is_tensor(v) and v.shape == model.weight.shape:
            assert (v[new] == 0).all()
    assert_masked_state_zero(model, opt)
    # survivors are untouched
    kept = before & after
    assert torch.equal(model.weight[kept], w_before[kept])


def test_rigl_never_regrows_just_dropped():
    model = RigL(784, 10, K, generator=torch.Generator().manual_seed(2))
    opt = _trained_state(model)
    model.t_end = 1000
    before = model.mask > 0
    grad = torch.zeros(10, 784)
    grad[before] = 100.0  # the active (about to be dropped) positions have the largest gradient
    model.update_mask(0, grad, opt)
    dropped = before & ~(model.mask > 0)
    assert int(dropped.sum()) == 30
    assert not ((model.mask > 0) & ~before & (grad == 100.0)).any()


@pytest.mark.parametrize("budget", BUDGETS)
def test_set_evolve(budget):
    model = SET(784, 10, K, budget, generator=torch.Generator().manual_seed(3))
    opt = _trained_state(model)
    before = model.mask > 0
    w = model.weight.detach().clone()
    grown = model.evolve(opt)
    after = model.mask > 0
    assert_budget(model, budget)
    new, dropped = after & ~before, before & ~after
    assert grown == int(new.sum()) == int(dropped.sum()) > 0
    assert (model.weight[new] == 0).all()
    assert_masked_state_zero(model, opt)
    # dropped positives are the smallest positives, dropped negatives the smallest-magnitude negatives
    rows = (lambda t: t) if budget == "per-output" else (lambda t: t.reshape(1, -1))
    for d, b, wr in zip(rows(dropped), rows(before), rows(w)):
        pos, neg = b & (wr >= 0), b & (wr < 0)
        if (d & pos).any() and (pos & ~d).any():
            assert wr[d & pos].max() <= wr[pos & ~d].min()
        if (d & neg).any() and (neg & ~d).any():
            assert wr[d & neg].abs().max() <= wr[neg & ~d].abs().min()


@pytest.mark.parametrize("budget", BUDGETS)
def test_prune_schedule(budget):
    model = GradualMagnitudePruning(784, 10, K, budget)
    total = 6000
    attach(model, None, total_steps=total, steps_per_epoch=600)
    steps = sorted(model.schedule)
    keeps = [model.schedule[s] for s in steps]
    assert steps[0] > model.begin_fraction * total
    assert steps[-1] == round(model.end_fraction * total) < total
    assert keeps == sorted(keeps, reverse=True) and keeps[-1] == model.per_row_budget
    assert min(b - a for a, b in zip(steps, steps[1:])) >= 90  # about every 100 steps on full MNIST
    # cubic: most of the pruning happens early
    row = 784 if budget == "per-output" else 7840
    assert keeps[len(keeps) // 2] < model.per_row_budget + (row - model.per_row_budget) / 4


# --- end-to-end through run_training ------------------------------------------------------------------------
@pytest.mark.parametrize("budget", BUDGETS)
@pytest.mark.parametrize("model_name", SPARSE)
def test_training_respects_budget_and_masks(mini, capture_optimizer, model_name, budget):
    result = run_training(cfg_for(model_name, budget=budget), dataset=mini)
    model = result.model
    assert_budget(model, budget)
    assert_masked_state_zero(model, model.captured_optimizer)
    assert result.synapses == K * 10
    assert result.epochs_completed == 2
    if model_name in ("rigl", "set"):
        assert result.rewiring_events > 0
    else:
        assert result.rewiring_events == 0


def test_rigl_grown_weights_start_at_zero_during_training(mini, monkeypatch, capture_optimizer):
    seen = []
    original = RigL.update_mask

    def checked(self, t, grad, optimizer=None):
        before = self.mask > 0
        out = original(self, t, grad, optimizer)
        new = (self.mask > 0) & ~before
        seen.append(int(new.sum()))
        assert (self.weight[new] == 0).all()
        state = optimizer.state[self.weight]
        assert (state["exp_avg"][new] == 0).all() and (state["exp_avg_sq"][new] == 0).all()
        return out

    monkeypatch.setattr(RigL, "update_mask", checked)
    result = run_training(cfg_for("rigl", lr=0.01, epochs=3, model_params=RigLParams(optimizer="adam")),
                          dataset=mini)
    assert len(seen) >= 8 and sum(seen) == result.rewiring_events > 0
    model = result.model
    assert max(model.t_end, 0) < 3 * 60 and model.dt <= 100  # updates stop at 75 % of the 180 steps


@pytest.mark.parametrize("model_name", BASELINES)
def test_reproducible_per_seed(mini, model_name):
    a = run_training(cfg_for(model_name, epochs=1), dataset=mini)
    b = run_training(cfg_for(model_name, epochs=1), dataset=mini)
    assert torch.equal(a.model.effective_weight(), b.model.effective_weight())
    assert torch.equal(a.model.bias, b.model.bias)
    assert a.test_accuracy == b.test_accuracy and a.rewiring_events == b.rewiring_events
    if model_name != "dense":
        assert torch.equal(a.model.mask, b.model.mask)
        c = run_training(cfg_for(model_name, epochs=1, seed=1), dataset=mini)
        assert not torch.equal(a.model.mask, c.model.mask)


@pytest.fixture(scope="module")
def accuracies(mini):
    return {m: run_training(cfg_for(m, epochs=3), dataset=mini).test_accuracy for m in BASELINES}


@pytest.mark.parametrize("model_name,floor", [("dense", 0.8), ("prune", 0.5), ("rigl", 0.4), ("set", 0.2),
                                              ("random", 0.2)])
def test_each_method_learns(accuracies, model_name, floor):
    assert accuracies[model_name] > floor, accuracies


def test_dense_beats_random_sparse(accuracies):
    assert accuracies["dense"] > accuracies["random"] + 0.3, accuracies


@pytest.mark.parametrize("model_name", BASELINES)
def test_snapshots_and_default_lr(mini, model_name):
    snaps = []
    result = run_training(cfg_for(model_name, epochs=1, lr=None), dataset=mini, progress=snaps.append)
    assert snaps and snaps[-1].final and snaps[-1].weight.shape == (10, 784)
    assert math.isfinite(result.test_accuracy)
    expected = 7840 if model_name == "dense" else K * 10
    assert result.synapses == expected
    assert (snaps[-1].weight != 0).sum() <= expected
