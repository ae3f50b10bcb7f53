"""The hardware study (engine.experiments.hardware_study, ``rfexplorer-cli hardware-study``, ``make reproduce-hardware``)."""
import json

import pytest

from engine.experiments.hardware_study import StudySpec, chip_conclusion, run_study, study_series, verdicts

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_spec(**changes) -> StudySpec:
    spec = StudySpec.quick(models=("rf",), seeds=(0,), epochs=1, ranges=(0.05,), bits=(6,), jitters=(0.5,),
                           trained_jitters=(0.5,), spreads=(0.01,), trained_spreads=(0.01,), chips=2)
    from dataclasses import replace

    return replace(spec, **changes) if changes else spec


def test_jobs_cover_every_part_with_the_right_settings():
    jobs = StudySpec().jobs()
    parts = {}
    for j in jobs:
        parts.setdefault((j.config.model, j.part), []).append(j)
    # per model and seed: nominal, 6 ranges, 5 bits, 3 aware jitters, 4 aware + 4 in-situ spreads
    assert len(jobs) == 2 * 3 * (1 + 6 + 5 + 3 + 4 + 4)
    assert jobs[0].config.model == "rf-input"  # the longest runs first
    nominal = parts[("rf", "nominal")][0]
    assert nominal.config.device == type(nominal.config.device)()  # every knob at its default
    by_name = {e["name"]: e for e in nominal.evaluations}
    assert by_name["jitter"]["values"][0] == 0.0 and by_name["jitter"]["knob"] == "freq_jitter_lw"
    assert by_name["spread"]["fixed"] == {"calibrated": False} and by_name["spread"]["repeats"] == 3
    aware = parts[("rf-input", "spread-aware")][0]
    assert aware.config.hardware == "aware" and aware.config.device.calibrated is False
    assert aware.config.device.freq_spread == aware.level
    insitu = parts[("rf", "spread-in-situ")][0]
    assert insitu.config.hardware == "in-situ" and not insitu.evaluations
    assert {j.config.device.tuning_range for j in parts[("rf", "range")]} == {0.01, 0.02, 0.05, 0.1, 0.2, 0.5}
    assert len({j.key() for j in jobs}) == len(jobs)


def test_spec_rejects_untrained_evaluation_levels():
    with pytest.raises(ValueError, match="trained jitter"):
        StudySpec(jitters=(0.1,), trained_jitters=(0.2,))
    with pytest.raises(ValueError, match="chips"):
        StudySpec(chips=0)


def _row(model, part, level, acc, evaluations=()):
    return {"model": model, "part": part, "level": level, "test_accuracy": acc, "seed": 0,
            "evaluations": [{"name": n, "value": v, "mean": m} for n, v, m in evaluations]}


def test_series_verdicts_and_conclusion_from_rows():
    spec = StudySpec(models=("rf-input",), seeds=(0,), ranges=(0.01, 0.05, 0.2), bits=(4, 8), jitters=(0.5,),
                     trained_jitters=(0.5,), spreads=(0.01,), trained_spreads=(0.01,))
    rows = [
        _row("rf-input", "nominal", None, 0.90, [("jitter", 0.0, 0.90), ("jitter", 0.5, 0.70),
                                                 ("spread", 0.0, 0.90), ("spread", 0.01, 0.30)]),
        _row("rf-input", "range", 0.01, 0.50), _row("rf-input", "range", 0.05, 0.895),
        _row("rf-input", "range", 0.2, 0.90),
        _row("rf-input", "bits", 4, 0.85), _row("rf-input", "bits", 8, 0.893),
        _row("rf-input", "jitter-aware", 0.5, 0.82, [("jitter", 0.5, 0.82)]),
        _row("rf-input", "spread-aware", 0.01, 0.40, [("spread", 0.01, 0.40)]),
        _row("rf-input", "spread-in-situ", 0.01, 0.88),
    ]
    series = study_series(rows, spec)
    found = {(s["panel"], s["regime"]): s for s in series}
    assert found[("range", "trained")]["levels"] == [0.01, 0.05, 0.2, None]
    assert found[("spread", "in-situ")]["mean"] == [0.90, 0.88]
    checks = {(c["panel"], c["level"]): c for c in verdicts(series, spec)}
    jit = checks[("jitter", 0.5)]
    assert jit["ideal_loss_points"] == pytest.approx(20.0)
    assert jit["recovered_fraction"] == pytest.approx(0.6) and jit["recovers_half"]
    spread = checks[("spread", 0.01)]
    assert spread["aware_at_least_ideal"] and not spread["recovers_half"]
    conclusion = chip_conclusion(series, spec)
    assert conclusion["range"]["smallest_within"] == 0.05  # 0.5 points below; 1 % loses 40 points
    assert conclusion["bits"]["smallest_within"] == 8  # 4 bits loses 5 points


def test_a_tiny_study_runs_writes_its_files_and_resumes(mini, tmp_path):
    spec = tiny_spec()
    doc = run_study(spec, dataset=mini, out_dir=tmp_path)
    assert doc["runs"] == len(spec.jobs()) == 6
    written = json.loads((tmp_path / "hardware.json").read_text())
    assert written["format"] == "rfexplorer-hardware-study"
    panels = {(s["panel"], s["regime"]) for s in written["series"]}
    assert panels == {("range", "trained"), ("bits", "trained"), ("jitter", "ideal"), ("jitter", "aware"),
                      ("spread", "ideal"), ("spread", "aware"), ("spread", "in-situ")}
    for s in written["series"]:
        assert all(0.0 <= m <= 1.0 for m in s["mean"])
    table = (tmp_path / "hardware_tables.md").read_text()
    assert "| unlimited |" in table and "| continuous |" in table and "rf in-situ" in table
    assert len((tmp_path / "rows.jsonl").read_text().splitlines()) == 6
    plans = []
    again = run_study(spec, dataset=mini, out_dir=tmp_path, on_plan=lambda total, done: plans.append((total, done)))
    assert plans == [(6, 6)]
    assert again["series"] == doc["series"]


def test_the_nominal_network_loses_accuracy_on_uncalibrated_chips_only(mini):
    """The spread evaluation of the study fixes calibrated = False: calibrated chips (no bits) trim the offsets."""
    from engine.nets.hardware import robustness
    from engine.training.loop import run_training

    result = run_training(tiny_spec().base().with_(model="rf", epochs=1), dataset=mini)
    x, y = mini.test_x, mini.test_y
    clean = robustness(result.model, x, y, "freq_spread", [0.0], 1)[0]["mean"]
    trimmed = robustness(result.model, x, y, "freq_spread", [0.02], 2)[0]["mean"]
    raw = robustness(result.model, x, y, "freq_spread", [0.02], 2, fixed={"calibrated": False})[0]["mean"]
    assert trimmed == pytest.approx(clean)
    assert raw < clean - 0.1
    assert result.model.params.calibrated is True  # left as it was


def test_cli_rejects_a_software_model(capsys):
    from engine.cli import main

    assert main(["hardware-study", "--quick", "--models", "dense", "--out", "unused"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "RF models" in err[0]


def test_the_figure_draws_a_study_and_refuses_other_files(mini, tmp_path, app_env):
    from rfexplorer.figures import FigureError
    from rfexplorer.hardware_figure import render_hardware_png

    run_study(tiny_spec(), dataset=mini, out_dir=tmp_path)
    png = render_hardware_png(tmp_path / "hardware.json", tmp_path / "hardware.png")
    from PySide6.QtGui import QImage

    image = QImage(str(png))
    assert image.width() > 1000 and image.height() > 800
    (tmp_path / "other.json").write_text('{"format": "rfexplorer-robustness", "rows": []}')
    with pytest.raises(FigureError, match="not a hardware study"):
        render_hardware_png(tmp_path / "other.json", tmp_path / "other.png")
