"""The settings tree (TOML, --set, recording), the model registry, and training state that ends with training."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from engine import cli
from engine.nets.baselines import RigLParams
from engine.config.run_config import PlasticityParams, RunConfig, apply_overrides, build_config
from engine.config.models import ModelSpec, get_model, get_spec, list_models
from engine.physics.resonators import DeviceParams
from engine.nets.rf_perceptron import RFParams
from engine.core.settings_tree import SettingError
from engine.training.loop import run_training

DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """Small runs on one thread."""


# --- the tree ------------------------------------------------------------------------------------------------

def test_defaults_fill_the_models_own_parameters():
    assert isinstance(RunConfig().model_params, RFParams)
    cfg = RunConfig(model="rigl")
    assert cfg.model_params == RigLParams() and cfg.spec.name == "rigl"
    # changing the model resets parameters of the old model's type
    assert isinstance(RunConfig().with_(model="set").model_params, get_spec("set").params_class)
    with pytest.raises(ValueError, match="model_params of model 'rf' must be RFParams"):
        RunConfig(model="rf", model_params=RigLParams())


def test_round_trip_through_a_dict_and_json():
    cfg = RunConfig(model="rf-input", resonators_per_chain=7, device=DeviceParams(alpha=0.004, phi=0.2),
                    plasticity=PlasticityParams(interval_steps=50, candidates=4),
                    model_params=RFParams(initial_gain=0.5))
    assert RunConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


def test_version_1_config_dicts_still_load():
    doc = json.loads((DATA / "topology_v1_rf-input.json").read_text())
    cfg = RunConfig.from_dict(doc["config"])  # flat v1 layout: no model_params, three plasticity fields
    assert cfg.model == "rf-input" and cfg.resonators_per_chain == 5 and cfg.model_params == RFParams()
    assert cfg.plasticity == PlasticityParams()


def test_toml_file_and_overrides(tmp_path):
    toml = tmp_path / "run.toml"
    toml.write_text('model = "rigl"\nepochs = 2\n[device]\nalpha = 0.004\n[model_params]\nalpha = 0.2\n'
                    '[plasticity]\ninterval_steps = 25\n')
    with pytest.raises(SettingError, match=r"unknown setting model_params\.alpha"):
        build_config(toml, ["model=set"])  # the file's RigL parameters do not fit SET: said, not dropped
    cfg = build_config(toml, ["plasticity.fraction=0.5", "device.readout_noise_v=0.01", "lr=none"])
    assert cfg.model == "rigl" and cfg.epochs == 2 and cfg.device.alpha == 0.004
    assert cfg.model_params.alpha == 0.2 and cfg.plasticity.interval_steps == 25
    assert cfg.plasticity.fraction == 0.5 and cfg.device.readout_noise_v == 0.01 and cfg.lr is None


@pytest.mark.parametrize("override,message", [
    ("plasticity.interval_step=5", "unknown setting plasticity.interval_step"),
    ("plasticity.interval_steps=abc", "setting plasticity.interval_steps must be a whole number"),
    ("device.alpha=fast", "setting device.alpha must be a number"),
    ("epochs.count=3", "unknown setting epochs.count"),
    ("model_params.zeta=0.1", "unknown setting model_params.zeta"),  # rf has no zeta
    ("frobnicate=1", "unknown setting frobnicate"),
    ("nothing", "path.to.field=value"),
])
def test_bad_overrides_name_the_key(override, message):
    with pytest.raises(SettingError, match=message.replace(".", r"\.")):
        apply_overrides({}, [override])


def test_bad_toml_types_name_the_key(tmp_path):
    toml = tmp_path / "run.toml"
    toml.write_text('[plasticity]\ninterval_steps = "often"\n')
    with pytest.raises(SettingError, match=r"setting plasticity\.interval_steps must be a whole number"):
        build_config(toml)
    toml.write_text('[plasticity]\nspeed = 3\n')
    with pytest.raises(SettingError, match=r"unknown setting plasticity\.speed"):
        build_config(toml)
    toml.write_text("epochs = [")
    with pytest.raises(SettingError, match="not valid TOML"):
        build_config(toml)


def test_cli_config_and_set_are_recorded_in_the_json_line(tmp_path, capsys):
    toml = tmp_path / "run.toml"
    toml.write_text('model = "rf"\nresonators_per_chain = 4\nepochs = 1\n[plasticity]\ninterval_steps = 20\n')
    assert cli.main(["train", "--config", str(toml), "--set", "model_params.initial_gain=0.5", "--seed", "2",
                     "--threads", "1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    cfg = out["config"]
    assert cfg["plasticity"]["interval_steps"] == 20 and cfg["model_params"]["initial_gain"] == 0.5
    assert cfg["seed"] == 2 and cfg["resonators_per_chain"] == 4 and cfg["lr"] == get_spec("rf").default_lr
    assert RunConfig.from_dict(cfg).plasticity.interval_steps == 20  # the recorded tree rebuilds the run
    versions = out["versions"]
    assert {"rfexplorer", "torch", "numpy", "python", "cpu", "blas"} <= set(versions)


@pytest.mark.parametrize("argv,message", [
    (["--set", "plasticity.interval_step=5"], "Unknown setting plasticity.interval_step"),
    (["--set", "device.alpha=abc"], "Setting device.alpha must be a number"),
    (["--model", "rigl", "--set", "model_params.initial_gain=1"], "Unknown setting model_params.initial_gain"),
])
def test_cli_bad_settings_exit_2_with_one_sentence(capsys, argv, message):
    assert cli.main(["train", "--epochs", "1", *argv]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("rfexplorer-cli: error:")]
    assert len(err) == 1 and message in err[0], err


def test_sweep_refuses_model_params_overrides(capsys):
    assert cli.main(["sweep", "--quick", "--set", "model_params.alpha=0.1"]) == 2
    assert "model_params cannot be set" in capsys.readouterr().err


# --- the registry --------------------------------------------------------------------------------------------

def test_registry_lists_every_model_with_its_metadata():
    names = list_models()
    assert names[:3] == ["rf", "rf-input", "rf-frozen"] and set(list_models("baseline")) == {
        "dense", "prune", "random", "rigl", "set"}
    labels = [get_spec(n).label for n in names]
    assert len(set(labels)) == len(labels)
    for name in names:
        spec = get_spec(name)
        assert isinstance(spec, ModelSpec) and spec.default_lr > 0
        model = get_model(name, 30, 3, resonators_per_chain=4, generator=torch.Generator().manual_seed(0))
        assert model.effective_weight().shape == (3, 30)
    assert not get_spec("dense").uses_k and get_spec("rf").is_rf and not get_spec("rf-frozen").trains_topology
    with pytest.raises(ValueError, match="unknown model 'mlp'"):
        get_spec("mlp")


def test_cli_lists_models(capsys):
    assert cli.main(["models", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [m["name"] for m in out["models"]] == list_models()


# --- randomness and training state ---------------------------------------------------------------------------

@pytest.mark.parametrize("model", ["rf-input", "rigl", "set"])
def test_runs_use_their_own_generators_only(mini, model):
    cfg = RunConfig(model=model, resonators_per_chain=5, epochs=1, seed=4,
                    device=DeviceParams(readout_noise_v=0.001) if model == "rf-input" else DeviceParams())
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a = run_training(cfg, mini)
    assert torch.equal(torch.get_rng_state(), before), "the run consumed torch's global generator"
    torch.manual_seed(999)  # a different global state changes nothing
    b = run_training(cfg, mini)
    assert a.test_accuracy == b.test_accuracy and a.rewiring_events == b.rewiring_events
    assert torch.equal(a.model.effective_weight(), b.model.effective_weight())


@pytest.mark.parametrize("model", ["rf", "rf-input", "rigl", "prune"])
def test_training_state_ends_with_training(mini, model):
    result = run_training(RunConfig(model=model, resonators_per_chain=5, epochs=1), mini)
    m = result.model
    assert m.context is None and m.optimizer is None
    if get_spec(model).is_rf:
        assert m.plasticity is None and m._weight is None
    # nothing on the model refers to the training tensors any more
    big = [name for name, v in vars(m).items() if torch.is_tensor(v) and v.numel() >= mini.train_x.numel()]
    assert big == []
    assert result.config.lr == get_spec(model).default_lr  # the resolved tree is recorded


# --- the compute device ----------------------------------------------------------------------------------------

@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_exits_2_with_one_sentence(capsys):
    assert cli.main(["train", "--device", "cuda", "--epochs", "1"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(err) == 1 and "no GPU" in err[0]


def test_auto_device_trains_where_torch_can_and_records_it(mini):
    result = run_training(RunConfig(model="rf", resonators_per_chain=5, epochs=1, compute_device="auto"), mini)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert result.versions["compute_device"].startswith(expected)
    assert all(p.device.type == "cpu" for p in result.model.parameters())  # handed back on the CPU
    with pytest.raises(ValueError, match="compute_device must be one of"):
        RunConfig(compute_device="tpu")
