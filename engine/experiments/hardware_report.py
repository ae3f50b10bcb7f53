"""The report of the hardware study (:mod:`engine.experiments.hardware_study`): from the study's result rows, the series
the figure draws (one curve per panel, model and regime, mean ± std over seeds), the verdicts on the issue's
targets, the chip conclusion, the README's Markdown tables, a long-format CSV and the study document, and the
atomic writing of ``hardware.json``, ``hardware.csv`` and ``hardware_tables.md``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Sequence

from engine.core.files import atomic_write_files, dumps_json
from engine.core.stats import mean_std
from engine.core.tables import csv_text
from engine.io.results import dataset_record, software_versions, utc_now_iso

if TYPE_CHECKING:  # annotations only: engine.experiments.hardware_study imports this module
    from engine.experiments.hardware_study import StudySpec

#: The parts of the study, in the order of the README's tables.
PANELS = ("range", "bits", "jitter", "spread")
#: How close to the ideal device (in accuracy points) the chip conclusion asks ``rf-input`` to stay.
WITHIN_POINTS = 1.0
#: Where the ``ideal`` regime loses at least this many points, ``aware`` must recover half of the loss.
LOSS_POINTS = 10.0


def _stats(values: Sequence[float]) -> dict:
    vals = [float(v) for v in values]
    mean, std = mean_std(vals)
    return {"mean": mean, "std": std, "n": len(vals)}


def _evaluated(rows: Sequence[dict], name: str, value) -> list[float]:
    """The mean accuracies of ``rows``' networks at ``value`` of evaluation ``name`` (those that have it)."""
    return [m for m in (_eval_mean(r, name, value) for r in rows) if m is not None]


def _eval_mean(row: dict, name: str, value) -> Optional[float]:
    """A trained network's mean accuracy over its repeats at ``value`` of evaluation ``name``."""
    for ev in row.get("evaluations") or []:
        if ev.get("name") == name and _same(ev.get("value"), value):
            return float(ev["mean"])
    return None


def _same(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return abs(float(a) - float(b)) <= 1e-12 * max(1.0, abs(float(b)))


def study_series(rows: Sequence[dict], spec: StudySpec) -> list[dict]:
    """The study's curves: one per (panel, model, regime), each with its levels and mean ± std over seeds."""
    ok = [r for r in rows if r.get("test_accuracy") is not None]

    def runs(model: str, part: str, level=None) -> list[dict]:
        return [
            r
            for r in ok
            if r.get("model") == model and r.get("part") == part and (part == "nominal" or _same(r.get("level"), level))
        ]

    series = []

    def add(panel: str, model: str, regime: str, points: list[tuple[Any, list[float]]]) -> None:
        pts = [(level, _stats(vals)) for level, vals in points if vals]
        if pts:
            series.append(
                {
                    "panel": panel,
                    "model": model,
                    "regime": regime,
                    "levels": [p[0] for p in pts],
                    "mean": [p[1]["mean"] for p in pts],
                    "std": [p[1]["std"] for p in pts],
                    "n": [p[1]["n"] for p in pts],
                }
            )

    for model in spec.models:
        nominal = runs(model, "nominal")
        base_acc = [r["test_accuracy"] for r in nominal]
        add(
            "range",
            model,
            "trained",
            [(r, [x["test_accuracy"] for x in runs(model, "range", r)]) for r in spec.ranges] + [(None, base_acc)],
        )
        add(
            "bits",
            model,
            "trained",
            [(b, [x["test_accuracy"] for x in runs(model, "bits", b)]) for b in spec.bits] + [(None, base_acc)],
        )
        levels = (0.0, *spec.jitters)
        ideal_jitter = [(v, _evaluated(nominal, "jitter", v)) for v in levels]
        add("jitter", model, "ideal", ideal_jitter)
        add(
            "jitter",
            model,
            "aware",
            [ideal_jitter[0]]
            + [(v, _evaluated(runs(model, "jitter-aware", v), "jitter", v)) for v in spec.trained_jitters],
        )
        levels = (0.0, *spec.spreads)
        ideal_spread = [(v, _evaluated(nominal, "spread", v)) for v in levels]
        add("spread", model, "ideal", ideal_spread)
        add(
            "spread",
            model,
            "aware",
            [ideal_spread[0]]
            + [(v, _evaluated(runs(model, "spread-aware", v), "spread", v)) for v in spec.trained_spreads],
        )
        add(
            "spread",
            model,
            "in-situ",
            [ideal_spread[0]]
            + [(v, [r["test_accuracy"] for r in runs(model, "spread-in-situ", v)]) for v in spec.trained_spreads],
        )
    return series


def _find(series: Sequence[dict], panel: str, model: str, regime: str) -> Optional[dict]:
    for s in series:
        if (s["panel"], s["model"], s["regime"]) == (panel, model, regime):
            return s
    return None


def _at(s: Optional[dict], level) -> Optional[float]:
    if s is None:
        return None
    for lv, m in zip(s["levels"], s["mean"]):
        if _same(lv, level):
            return m
    return None


def verdicts(series: Sequence[dict], spec: StudySpec) -> list[dict]:
    """The issue's targets, level by level: ``aware`` at least as accurate as ``ideal`` at every jitter and
    spread level, and, where ``ideal`` loses >= 10 points, ``aware`` recovering at least half of the loss."""
    out = []
    for model in spec.models:
        for panel in ("jitter", "spread"):
            ideal, aware = _find(series, panel, model, "ideal"), _find(series, panel, model, "aware")
            if ideal is None or aware is None:
                continue
            clean = _at(ideal, 0.0)
            for level in aware["levels"]:
                if _same(level, 0.0):
                    continue
                i, a = _at(ideal, level), _at(aware, level)
                if i is None or a is None or clean is None:
                    continue
                loss = 100.0 * (clean - i)
                gain = 100.0 * (a - i)
                row = {
                    "model": model,
                    "panel": panel,
                    "level": level,
                    "ideal": i,
                    "aware": a,
                    "ideal_loss_points": loss,
                    "aware_gain_points": gain,
                    "aware_at_least_ideal": a >= i,
                }
                if loss >= LOSS_POINTS:
                    row["recovered_fraction"] = gain / loss
                    row["recovers_half"] = gain >= 0.5 * loss
                out.append(row)
    return out


def chip_conclusion(series: Sequence[dict], spec: StudySpec, model: str = "rf-input") -> dict:
    """The smallest tuning range and the fewest tuning bits (among the trained levels) from which on every
    larger level keeps ``model`` within 1 point of the ideal device (unlimited range, continuous tuning)."""
    out: dict = {"model": model, "within_points": WITHIN_POINTS}
    for panel in ("range", "bits"):
        s = _find(series, panel, model, "trained")
        ideal = _at(s, None)
        if s is None or ideal is None:
            continue
        finite = sorted((lv, m) for lv, m in zip(s["levels"], s["mean"]) if lv is not None)
        ok = None
        for lv, m in reversed(finite):  # from the largest level down, while within 1 point
            if 100.0 * (ideal - m) <= WITHIN_POINTS:
                ok = lv
            else:
                break
        out[panel] = {"ideal": ideal, "smallest_within": ok, "levels": {str(lv): m for lv, m in finite}}
    return out


def _pct(level, panel: str) -> str:
    if level is None:
        return "unlimited" if panel == "range" else "continuous"
    if panel in ("range", "spread"):
        return f"{100 * float(level):g} %"
    if panel == "jitter":
        return f"{float(level):g}"
    return f"{int(level)}"


def _cell(s: Optional[dict], level) -> str:
    if s is None:
        return "–"
    for lv, m, sd in zip(s["levels"], s["mean"], s["std"]):
        if _same(lv, level):
            return f"{100 * m:.2f} ± {100 * sd:.2f}"
    return "–"


def study_tables(series: Sequence[dict], spec: StudySpec) -> str:
    """The README's tables (Markdown): accuracy (%) against each knob, mean ± std over seeds."""
    titles = {
        "range": "Tuning range (relative half-width around the fabricated frequency)",
        "bits": "Tuning resolution (bits per device, across its range; unlimited range)",
        "jitter": "Frequency jitter at every read-out (std, in linewidths)",
        "spread": f"Uncalibrated fabrication spread (relative std; ideal and aware on {spec.chips} fresh "
        f"chips per network, in-situ on its own chip)",
    }
    lines = [
        f"Hardware study: {spec.dataset}, K = {spec.resonators_per_chain}, {spec.epochs} epochs, seeds "
        f"{', '.join(map(str, spec.seeds))}; test accuracy (%), mean ± std over seeds.",
        "",
    ]
    for panel in PANELS:
        regimes = [s["regime"] for s in series if s["panel"] == panel and s["model"] == spec.models[0]]
        cols = [(m, r) for m in spec.models for r in regimes]
        levels: list = []
        for s in series:
            if s["panel"] == panel:
                for lv in s["levels"]:
                    if not any(_same(lv, x) for x in levels):
                        levels.append(lv)
        levels.sort(key=lambda v: (v is None, v if v is not None else 0.0))
        lines.append(f"**{titles[panel]}**")
        lines.append("")
        head = [panel] + [m if r == "trained" else f"{m} {r}" for m, r in cols]
        lines.append("| " + " | ".join(head) + " |")
        lines.append("| " + " | ".join(["---"] * len(head)) + " |")
        for lv in levels:
            cells = [_cell(_find(series, panel, m, r), lv) for m, r in cols]
            lines.append("| " + " | ".join([_pct(lv, panel)] + cells) + " |")
        lines.append("")
    return "\n".join(lines)


def verdict_lines(checks: Sequence[dict], conclusion: dict) -> str:
    lines = []
    for c in checks:
        level = _pct(c["level"], c["panel"])
        text = (
            f"- {c['model']}, {c['panel']} {level}: ideal {100 * c['ideal']:.2f} % (loses "
            f"{c['ideal_loss_points']:.2f} points), aware {100 * c['aware']:.2f} % "
            f"({c['aware_gain_points']:+.2f} points): aware {'>=' if c['aware_at_least_ideal'] else '<'} ideal"
        )
        if "recovered_fraction" in c:
            text += (
                f"; recovers {100 * c['recovered_fraction']:.0f} % of the loss "
                f"({'at least half' if c['recovers_half'] else 'less than half'})"
            )
        lines.append(text)
    for panel in ("range", "bits"):
        part = conclusion.get(panel)
        if not part:
            continue
        best = part["smallest_within"]
        what = "tuning range" if panel == "range" else "tuning bits"
        lines.append(
            f"- {conclusion['model']}: the smallest {what} within {conclusion['within_points']:g} point of "
            f"the ideal device ({100 * part['ideal']:.2f} %): "
            f"{_pct(best, panel) if best is not None else 'none of the levels studied'}"
        )
    return "\n".join(lines)


def study_document(rows: Sequence[dict], spec: StudySpec, dataset=None) -> dict:
    series = study_series(rows, spec)
    checks = verdicts(series, spec)
    conclusion = chip_conclusion(series, spec)
    return {
        "format": "rfexplorer-hardware-study",
        "created": utc_now_iso(),
        "versions": software_versions(),
        "spec": spec.to_dict(),
        "dataset": dataset_record(dataset) if dataset is not None else None,
        "runs": len([r for r in rows if r.get("test_accuracy") is not None]),
        "train_seconds": sum(float(r.get("train_seconds") or 0.0) for r in rows),
        "series": series,
        "verdicts": checks,
        "conclusion": conclusion,
        "tables": study_tables(series, spec),
        "verdict_text": verdict_lines(checks, conclusion),
    }


def study_csv(series: Sequence[dict]) -> str:
    header = ["panel", "model", "regime", "level", "mean", "std", "n_seeds"]
    table = [
        [s["panel"], s["model"], s["regime"], "" if lv is None else lv, m, sd, n]
        for s in series
        for lv, m, sd, n in zip(s["levels"], s["mean"], s["std"], s["n"])
    ]
    return csv_text(header, table)


def write_study(doc: dict, out_dir) -> dict[str, Path]:
    """Write hardware.json, hardware.csv and hardware_tables.md (atomically) into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "hardware.json", "csv": out / "hardware.csv", "md": out / "hardware_tables.md"}
    atomic_write_files(
        [
            (paths["csv"], study_csv(doc["series"]).encode("utf-8")),  # one group, the JSON last
            (paths["md"], (doc["tables"] + "\n" + doc["verdict_text"] + "\n").encode("utf-8")),
            (paths["json"], dumps_json(doc).encode("utf-8")),
        ]
    )
    return paths


__all__ = [
    "LOSS_POINTS",
    "PANELS",
    "WITHIN_POINTS",
    "chip_conclusion",
    "study_csv",
    "study_document",
    "study_series",
    "study_tables",
    "verdict_lines",
    "verdicts",
    "write_study",
]
