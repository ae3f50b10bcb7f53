"""Runs trained together (engine.training.run_batches): each member trains as the same run alone would."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from engine.config.models import build_model
from engine.config.run_config import RunConfig
from engine.core.progress import CancelToken, DivergenceError
from engine.experiments.sweep.runner import SweepSpec, run_sweep
from engine.training.loop import run_training
from engine.training.run_batches import BATCHED_MODELS, batch_key, group_runs, run_batch


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):
    """Every test here runs torch on one thread (see conftest.one_torch_thread)."""


def configs(model: str, **changes) -> list[RunConfig]:
    """Two seeds x two K, the seeds interleaved (the batch sorts its members by seed and must answer in order)."""
    base = RunConfig(model=model, dataset="mnist-mini", epochs=2, **changes)
    return [base.with_(seed=s, resonators_per_chain=k) for k in (3, 40) for s in (1, 0)]


def assert_same_run(alone, together) -> None:
    assert together.config == alone.config
    w_alone, w_together = alone.model.effective_weight().detach(), together.model.effective_weight().detach()
    assert torch.equal(w_alone != 0, w_together != 0)  # the same topology
    assert (w_alone - w_together).abs().max() <= 1e-5  # the same weights, but for the products' rounding
    assert (alone.model.bias - together.model.bias).abs().max() <= 1e-5
    assert together.rewiring_events == alone.rewiring_events
    assert together.synapses == alone.synapses and together.evaluated_on == alone.evaluated_on
    n_eval = sum(sum(row) for row in alone.confusion)
    for a, b in zip(alone.history, together.history):  # a tie between two scores may settle one answer otherwise
        assert a[0] == b[0] and abs(a[1] - b[1]) <= 1e-5 * max(1.0, abs(a[1])) and abs(a[3] - b[3]) <= 1.5 / n_eval
    assert [set(e) for e in together.epoch_metrics] == [set(e) for e in alone.epoch_metrics]


@pytest.mark.parametrize("model", BATCHED_MODELS)
def test_every_member_trains_as_the_run_alone(model, mini):
    cfgs = configs(model)
    together = run_batch(cfgs, mini)
    for cfg, result in zip(cfgs, together):
        assert_same_run(run_training(cfg, dataset=mini), result)
    assert not any(r.cancelled for r in together)


def test_each_seed_has_its_own_validation_split(mini):
    cfgs = configs("rigl", validation_fraction=0.2)
    for cfg, result in zip(cfgs, run_batch(cfgs, mini)):
        alone = run_training(cfg, dataset=mini)
        assert result.evaluated_on == "validation"
        assert_same_run(alone, result)
        assert abs(result.epoch_metrics[-1]["val_loss"] - alone.epoch_metrics[-1]["val_loss"]) <= 1e-5


def test_a_member_that_diverges_is_reported_as_alone_and_spoils_no_other(mini):
    cfgs = [RunConfig(model="set", dataset="mnist-mini", epochs=1, resonators_per_chain=k) for k in (1, 784)]
    mask = build_model(cfgs[0], mini.n_inputs, mini.n_classes).mask  # SET keeps it through a one-epoch run
    pixel = int((mask.sum(0) == 0).nonzero()[0])  # an input no class of the K = 1 run reads
    x = mini.train_x.clone()
    x[:, pixel] = 1e38  # SGD's first step on it overflows the scores of the run that reads every input
    data = dataclasses.replace(mini, train_x=x)
    together = run_batch(cfgs, data)
    outcomes = []
    for cfg, result in zip(cfgs, together):
        try:
            alone = run_training(cfg, dataset=data)
        except DivergenceError as exc:
            assert isinstance(result, DivergenceError) and str(result) == str(exc)
            outcomes.append("diverged")
        else:
            assert_same_run(alone, result)
            outcomes.append("trained")
    assert outcomes == ["trained", "diverged"]


def test_a_cancelled_batch_returns_every_member_cancelled(mini):
    token = CancelToken()
    token.set()
    results = run_batch(configs("set"), mini, token)
    assert all(r.cancelled and r.epochs_completed == 0 for r in results)


def test_which_runs_train_together():
    base = RunConfig(model="rigl", resonators_per_chain=10)
    assert batch_key(base) == batch_key(base.with_(seed=3, resonators_per_chain=100))
    assert batch_key(base) != batch_key(base.with_(lr=0.01))
    assert batch_key(base) != batch_key(base.with_(model="set"))
    assert batch_key(base.with_(model="rf")) is None  # RF models train alone
    assert batch_key(base.with_(hidden=(20,))) is None  # so do multilayer networks
    rf = base.with_(model="rf")
    jobs = group_runs([base, rf, base.with_(seed=1), base.with_(model="set"), base.with_(seed=2)], max_size=2)
    assert jobs == [(base, base.with_(seed=1)), rf, (base.with_(model="set"),), (base.with_(seed=2),)]
    with pytest.raises(ValueError, match="differ in seed and K"):
        run_batch([base, base.with_(lr=0.01)], None)


def test_a_sweep_gives_the_same_rows_batched_or_one_at_a_time(mini):
    spec = SweepSpec(models=("random", "rf", "dense"), ks=(2, 20), seeds=(0, 1), base=RunConfig(epochs=1))
    batched = run_sweep(spec, dataset=mini)
    alone = run_sweep(dataclasses.replace(spec, batch_runs=False), dataset=mini)
    key = [(r["model"], r["resonators_per_chain"], r["seed"]) for r in alone]
    assert [(r["model"], r["resonators_per_chain"], r["seed"]) for r in batched] == key and len(key) == 10
    for a, b in zip(alone, batched):
        assert abs(a["test_accuracy"] - b["test_accuracy"]) <= 1.5 / 1000  # mnist-mini: 1 000 test images
