"""The string modes as enums (engine.core.enums): settings take plain strings, hold members, record plain strings;
the chip of an RF chain layer is a named tuple read by name."""

import dataclasses
import json

import pytest
import torch

from engine.config.run_config import BUDGETS, RunConfig, build_config
from engine.core.enums import (
    Budget,
    FrequencyPlan,
    HardwareRegime,
    InitLayout,
    LrSchedule,
    Parity,
    WeightBuild,
    member_of,
    values,
)
from engine.core.settings_tree import SettingError
from engine.layers.chain import WEIGHT_BUILDS, RFChainLayer
from engine.nets.baselines.masked import BUDGET_SHAPES, MaskedPerceptron
from engine.nets.hardware import set_regime
from engine.nets.rf_perceptron import RFParams
from engine.physics.resonators import FREQUENCY_PLANS, HARDWARE_REGIMES, NOMINAL_CHIP, PARITIES, Chip, DeviceParams

#: (enum, the plain strings it replaced, in their order)
MODES = [
    (HardwareRegime, ("ideal", "aware", "in-situ")),
    (WeightBuild, ("auto", "exact", "fft", "compiled", "fused")),
    (InitLayout, ("aligned", "random")),
    (LrSchedule, ("cosine", "constant")),
    (Budget, ("per-output", "global")),
    (FrequencyPlan, ("geometric", "linear")),
    (Parity, ("even", "odd")),
]

#: (settings path, a non-default value, the enum the field holds)
FIELDS = [
    ("hardware", "aware", HardwareRegime),
    ("lr_schedule", "constant", LrSchedule),
    ("budget", "global", Budget),
    ("device.plan", "linear", FrequencyPlan),
    ("device.parity", "odd", Parity),
    ("model_params.init_layout", "random", InitLayout),
    ("model_params.weight_build", "exact", WeightBuild),
]


def _get(cfg: RunConfig, path: str):
    value = cfg
    for part in path.split("."):
        value = getattr(value, part)
    return value


@pytest.mark.parametrize("mode, plain", MODES, ids=[m.__name__ for m, _ in MODES])
def test_every_mode_is_a_string_enum_of_the_old_values(mode, plain):
    assert values(mode) == plain and all(type(v) is str for v in values(mode))
    for member, text in zip(mode, plain):
        assert member == text and str(member) == text and f"{member}" == text and json.dumps(member) == f'"{text}"'
        assert member_of(mode, text) is member and member_of(mode, member) is member
    assert member_of(mode, "no-such-mode") is None and member_of(mode, 3) is None


def test_the_old_tuples_are_derived_from_the_enums():
    assert HARDWARE_REGIMES == values(HardwareRegime) and WEIGHT_BUILDS == values(WeightBuild)
    assert BUDGETS == BUDGET_SHAPES == values(Budget)
    assert FREQUENCY_PLANS == values(FrequencyPlan) and PARITIES == values(Parity)


@pytest.mark.parametrize("path, text, mode", FIELDS, ids=[f[0] for f in FIELDS])
def test_settings_take_plain_strings_and_hold_members(path, text, mode):
    cfg = build_config(overrides=[f"{path}={text}"])  # the command line's --set
    assert _get(cfg, path) is mode(text)
    mapping = cfg.to_dict()  # what results, JSON and CSV record
    head, _, tail = path.partition(".")
    recorded = mapping[head][tail] if tail else mapping[head]
    assert recorded == text and type(recorded) is str
    again = RunConfig.from_dict(json.loads(json.dumps(mapping)))  # a result file read back
    assert again == cfg and _get(again, path) is mode(text)


def test_defaults_are_members_and_recorded_as_plain_strings():
    cfg = RunConfig()
    assert cfg.hardware is HardwareRegime.IN_SITU and cfg.lr_schedule is LrSchedule.COSINE
    assert cfg.budget is Budget.PER_OUTPUT and cfg.device.plan is FrequencyPlan.GEOMETRIC
    assert cfg.device.parity is Parity.EVEN and cfg.model_params.weight_build is WeightBuild.AUTO

    def strings(tree):
        if isinstance(tree, dict):
            return [s for v in tree.values() for s in strings(v)]
        return [tree] if isinstance(tree, str) else []

    for tree in (cfg.to_dict(), cfg.device.to_dict()):
        assert strings(tree) and all(type(s) is str for s in strings(tree))
    assert '"hardware": "in-situ"' in json.dumps(cfg.to_dict())


def test_direct_construction_normalises_and_replace_keeps_members():
    cfg = RunConfig(hardware="ideal", budget="global", lr_schedule="constant", device=DeviceParams(plan="linear"))
    assert (cfg.hardware, cfg.budget, cfg.lr_schedule) == (HardwareRegime.IDEAL, Budget.GLOBAL, LrSchedule.CONSTANT)
    assert type(cfg.hardware) is HardwareRegime and type(cfg.device.plan) is FrequencyPlan
    assert type(cfg.with_(hardware="aware").hardware) is HardwareRegime
    assert type(RFParams(weight_build="fft", init_layout="random").weight_build) is WeightBuild
    assert type(dataclasses.replace(DeviceParams(), parity="odd").parity) is Parity


def test_bad_values_keep_their_one_sentence_errors():
    with pytest.raises(ValueError, match=r"^lr_schedule must be one of cosine, constant \(got 'x'\); hardware must "
                                         r"be one of ideal, aware, in-situ \(got 'y'\)$"):
        RunConfig(lr_schedule="x", hardware="y")
    with pytest.raises(SettingError, match=r"budget must be one of per-output, global \(got 'some'\)"):
        build_config(overrides=["budget=some"])
    with pytest.raises(SettingError, match=r"setting hardware must be text \(got 3\)"):
        RunConfig.from_dict({"hardware": 3})
    with pytest.raises(ValueError, match=r"frequency plan must be one of \('geometric', 'linear'\) \(got 'log'\)"):
        DeviceParams(plan="log")
    with pytest.raises(ValueError, match=r"model_params.weight_build must be one of auto, exact, fft, compiled"):
        RFParams(weight_build="fast")


def test_layers_and_baselines_hold_members():
    layer = RFChainLayer(12, 3, 4, DeviceParams(), weight_build="exact", init_layout="random")
    assert layer.weight_build is WeightBuild.EXACT and layer.regime is HardwareRegime.IN_SITU
    model = torch.nn.Sequential(layer)
    set_regime(model, "aware")
    assert layer.regime is HardwareRegime.AWARE
    with pytest.raises(ValueError, match=r"hardware must be one of ideal, aware, in-situ \(got 'nope'\)"):
        set_regime(model, "nope")
    masked = MaskedPerceptron(12, 3, 2, "global")
    assert masked.budget is Budget.GLOBAL and "budget='global'" in repr(masked)


def test_a_chip_is_read_by_name():
    params = DeviceParams(alpha_dtod=0.1, k_sd_dtod=0.1, freq_spread=0.01)
    layer = RFChainLayer(12, 3, 4, params, generator=torch.Generator().manual_seed(1))
    chip = layer.draw_chip(torch.Generator().manual_seed(2))
    assert isinstance(chip, Chip) and chip._fields == ("alpha", "k_sd", "freq_eps_r", "freq_eps_in")
    assert chip.alpha.shape == chip.k_sd.shape == chip.freq_eps_r.shape == (3, 4) and chip.freq_eps_in.shape == (12,)
    own = layer.own_chip
    assert own.alpha is layer.alpha_r and own.freq_eps_in is layer.freq_eps_in
    layer.set_chip(chip)
    assert layer.alpha_r is chip.alpha and layer.freq_eps_r is chip.freq_eps_r
    layer.set_chip(own)
    assert all(a is b for a, b in zip(layer.own_chip, own))
    layer.train()
    set_regime(torch.nn.Sequential(layer), "ideal")
    assert layer._chip() == NOMINAL_CHIP == Chip(None, None, None, None)
    set_regime(torch.nn.Sequential(layer), "aware")
    fresh = layer._chip()
    assert isinstance(fresh, Chip) and fresh is layer._chip() and not torch.equal(fresh.alpha, layer.alpha_r)
    layer.eval()
    assert all(a is b for a, b in zip(layer._chip(), own))
