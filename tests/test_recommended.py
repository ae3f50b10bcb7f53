"""Recommended settings per dataset (engine.experiments.recommended) and plasticity's schedule scaled to the run's length."""
from __future__ import annotations

import json

import pytest
import torch

from engine import cli
from engine.config.run_config import PlasticityParams, RunConfig
from engine.data import DATASET_NAMES, load_dataset
from engine.config.models import get_spec, list_models
from engine.plasticity.rounds import rewiring_interval, rewiring_rounds
from engine.experiments.recommended import (RECOMMENDED, fill_recommended, model_group, plasticity_note, recommendation,
                                recommended_values)
from engine.training.loop import planned_steps, run_training


@pytest.fixture(autouse=True)
def keep_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def _last_json(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


# --- the table ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dataset", DATASET_NAMES)
def test_every_named_dataset_recommends_valid_settings_for_every_model(dataset):
    for model in list_models():
        values = recommended_values(dataset, model)
        assert set(values) == {"epochs", "batch_size", "lr"}
        RunConfig(model=model, dataset=dataset, **values)  # valid (raises otherwise)
        assert recommendation(dataset, model).source  # says where the values come from
    assert set(RECOMMENDED) == set(DATASET_NAMES)


def test_groups_follow_the_registry():
    assert model_group("rf-input") == "rf" and model_group("rigl") == "sparse" and model_group("dense") == "dense"
    assert {model_group(m) for m in list_models("rf")} == {"rf"}


def test_mnist_recommendation_is_the_reference_run():
    """Full MNIST's recommendation is RunConfig's defaults (the reference sweep's settings)."""
    for model in list_models():
        assert recommended_values("mnist", model) == {"epochs": RunConfig.epochs, "batch_size": RunConfig.batch_size,
                                                      "lr": get_spec(model).default_lr}


def test_drones_takes_the_multilayer_sweeps_tuned_settings():
    from engine.experiments.sweep.runner import SweepSpec

    spec = SweepSpec.multilayer("drones")
    for model in spec.models:
        values = recommended_values("drones", model)
        assert values["epochs"] == spec.base.epochs and values["batch_size"] == spec.base.batch_size
        assert values["lr"] == spec.model_settings[model]["lr"]


def test_a_dataset_file_has_no_recommendation():
    assert recommendation("my_spectra.npz", "rf") is None
    mapping, record = fill_recommended({"dataset": "my_spectra.npz", "model": "rf"})
    assert record == {} and "epochs" not in mapping


def test_fill_keeps_what_the_user_set_and_records_the_rest():
    mapping, record = fill_recommended({"dataset": "drones", "model": "rf-input", "epochs": 3})
    assert mapping["epochs"] == 3 and mapping["batch_size"] == 20 and mapping["lr"] == 0.1
    assert record["applied"] == {"batch_size": 20, "lr": 0.1} and record["group"] == "rf"
    _, record = fill_recommended({"dataset": "drones", "model": "dense", "epochs": 3, "batch_size": 7,
                                  "lr": 0.5})
    assert record["applied"] == {}


# --- plasticity's schedule -----------------------------------------------------------------------------------
def _simulated_rounds(params: PlasticityParams, total_steps: int) -> int:
    """Rounds as StructuralPlasticity.maybe_rewire runs them: after step t (1-based) when t is a multiple of the
    interval and below the end step (moves_at is 0 from there)."""
    interval = rewiring_interval(params, total_steps)
    end_step = int(params.end_fraction * total_steps)
    return sum(1 for t in range(1, total_steps + 1) if interval and t % interval == 0 and t < end_step)


@pytest.mark.parametrize("total, interval", [
    (6000, 100),   # full MNIST, 10 epochs of 100: the reference sweep and the hardware study
    (4320, 100),   # drones, 120 epochs of 20: the multilayer sweep
    (900, 100),    # mnist-mini, 15 epochs of 100
    (600, 100),    # mnist-mini, 10 epochs of 100
])
def test_reference_runs_keep_their_interval(total, interval):
    assert rewiring_interval(PlasticityParams(), total) == interval


def test_golden_hardware_runs_keep_their_interval():
    # benchmarks/golden_hardware.py: mnist-mini, 2 epochs of 100 (120 steps), interval_steps=20
    assert rewiring_interval(PlasticityParams(interval_steps=20), 120) == 20


def test_short_runs_still_get_min_rounds():
    params = PlasticityParams()
    # the drones run that used to get no round: 10 epochs of batches of 100 = 80 steps
    assert rewiring_interval(params, 80) < params.interval_steps and rewiring_rounds(params, 80) >= params.min_rounds
    for total in range(1, 2000, 7):
        rounds = rewiring_rounds(params, total)
        assert rounds == _simulated_rounds(params, total)
        end_step = int(params.end_fraction * total)
        assert rounds >= min(params.min_rounds, max(end_step - 1, 0))


def test_min_rounds_zero_and_interval_zero():
    assert rewiring_interval(PlasticityParams(min_rounds=0), 80) == 100
    assert rewiring_rounds(PlasticityParams(min_rounds=0), 80) == 0
    assert rewiring_interval(PlasticityParams(interval_steps=0), 10_000) == 0
    assert rewiring_rounds(PlasticityParams(interval_steps=0), 10_000) == 0
    with pytest.raises(ValueError, match="min_rounds must be >= 0"):
        PlasticityParams(min_rounds=-1)


def test_a_short_run_rewires():
    """One epoch of mnist-mini is 60 steps, fewer than one nominal interval: the scaled schedule still rewires."""
    torch.set_num_threads(1)
    ds = load_dataset("mnist-mini")
    cfg = RunConfig(model="rf", epochs=1, plasticity=PlasticityParams(sample_size=512))
    assert planned_steps(cfg, len(ds.train_y)) == 60
    assert run_training(cfg, dataset=ds).rewiring_events > 0


def test_plasticity_note():
    assert plasticity_note(RunConfig(model="rf-frozen", epochs=1, batch_size=10_000), 100) == ""
    assert plasticity_note(RunConfig(model="rigl"), 100) == ""
    assert plasticity_note(RunConfig(model="rf"), 6000) == ""
    assert "never rewires" in plasticity_note(RunConfig(model="rf", plasticity=PlasticityParams(interval_steps=0)),
                                              6000)
    assert "before the first rewiring round" in plasticity_note(RunConfig(model="rf-input", epochs=1,
                                                                          batch_size=3000), 6000)
    assert planned_steps(RunConfig(epochs=2, batch_size=100, validation_fraction=0.1), 6000) == 2 * 54


# --- the CLI -------------------------------------------------------------------------------------------------
def test_cli_train_records_the_recommended_settings_it_used(capsys):
    assert cli.main(["train", "--model", "rf", "-K", "4", "--dataset", "drones", "--epochs", "1",
                     "--threads", "1", "--json"]) == 0
    captured = capsys.readouterr()
    out = _last_json(captured.out)
    assert out["recommended"]["applied"] == {"batch_size": 20, "lr": 0.1}  # epochs was given
    assert out["config"]["epochs"] == 1 and out["config"]["batch_size"] == 20 and out["config"]["lr"] == 0.1
    assert "recommended settings for rf models on drones" in captured.err


def test_cli_train_without_recommendation_fields_left_records_none(capsys):
    assert cli.main(["train", "--model", "dense", "--dataset", "drones", "--epochs", "1", "--batch-size", "50",
                     "--set", "lr=0.01", "--threads", "1", "--json"]) == 0
    out = _last_json(capsys.readouterr().out)
    assert out["recommended"]["applied"] == {} and out["config"]["batch_size"] == 50


def test_cli_says_when_plasticity_never_runs(capsys):
    assert cli.main(["train", "--model", "rf", "-K", "2", "--epochs", "1", "--batch-size", "6000",
                     "--threads", "1"]) == 0
    err = capsys.readouterr().err
    assert "never rewires" in err


def test_every_layer_of_a_network_rewires_on_the_same_schedule():
    from engine.core.model_base import TrainingContext
    from engine.config.models import build_model

    model = build_model(RunConfig(model="rf-input", resonators_per_chain=4, hidden=(6,)), 784, 10)
    ctx = TrainingContext(total_steps=80, steps_per_epoch=8, optimizer=model.make_optimizer(0.1),
                          train_x=torch.rand(64, 784), train_y=torch.randint(0, 10, (64,)),
                          generator=torch.Generator().manual_seed(0))
    model.begin_training(ctx)
    try:
        expected = rewiring_interval(PlasticityParams(), 80)
        assert len(model.plasticity) == 2 and expected < 100
        assert [p.interval for p in model.plasticity] == [expected, expected]
    finally:
        model.finish_training()
