"""The hardware study of the README (``make reproduce-hardware``): what an RF chip needs for the reference result.

For each model (``rf``, ``rf-input``) and seed it trains:

- the nominal network (every knob at its default); it is then evaluated, as the ``ideal`` regime deploys it,
  with cycle-to-cycle frequency jitter at every jitter level and on ``chips`` fresh uncalibrated chips at every
  fabrication-spread level;
- one network per tuning range and per number of tuning bits (design constraints, in force during training);
- one ``aware`` network per trained jitter level, evaluated at its level with the same noise draws as the
  nominal one (common random numbers);
- one ``aware`` and one ``in-situ`` network per trained spread level of uncalibrated chips; the aware one is
  evaluated on the same fresh chips as the nominal one, the in-situ one on the chip it was trained on.

Runs go to the sweep's local backend (:class:`engine.sweep_pool.LocalBackend`), each finished job is appended to
``OUT/rows.jsonl`` as it comes, and a later study into the same folder skips the jobs already there (as
``sweep`` does). The tables (``hardware_tables.md``), a long-format ``hardware.csv`` and ``hardware.json``
(the series the figure draws, the verdicts on the issue's targets and the chip conclusion) are written from
the rows at the end. Accuracies are means over seeds of each seed's mean (over chips, where there are
several), ± the std over seeds.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from .config import RunConfig
from .data import load_dataset
from .files import atomic_write_files, check_output_folder, dumps_json, json_safe, refuse_symlink
from .hardware import robustness
from .progress import CancelToken
from .results import dataset_record, software_versions, utc_now_iso
from .stats import mean_std
from .sweep_backend import train_row
from .sweep_log import RowLog, dataset_identity, read_rows_log
from .sweep_pool import LocalBackend
from .sweep_spec import settings_key
from .tables import csv_text

#: The parts of the study, in the order of the README's tables.
PANELS = ("range", "bits", "jitter", "spread")
#: The study's row log (one finished job per line), as in a sweep folder.
ROWS_FILE = "rows.jsonl"
#: How close to the ideal device (in accuracy points) the chip conclusion asks ``rf-input`` to stay.
WITHIN_POINTS = 1.0
#: Where the ``ideal`` regime loses at least this many points, ``aware`` must recover half of the loss.
LOSS_POINTS = 10.0


@dataclass(frozen=True)
class StudySpec:
    """The levels of the hardware study. Defaults: ``make reproduce-hardware`` (full MNIST, K = 10, 3 seeds)."""

    dataset: str = "mnist"
    """Dataset name or file."""
    data_dir: Optional[str] = None
    """Folder holding datasets in torchvision's layout."""
    models: tuple[str, ...] = ("rf", "rf-input")
    """RF models studied."""
    resonators_per_chain: int = 10
    """K of every network."""
    seeds: tuple[int, ...] = (0, 1, 2)
    """Training seeds (one network per seed and setting)."""
    epochs: int = 10
    """Training epochs of every run."""
    ranges: tuple[float, ...] = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5)
    """device.tuning_range levels trained (relative half-width); the nominal network is 'unlimited'."""
    bits: tuple[int, ...] = (4, 6, 8, 10, 12)
    """device.tuning_bits levels trained; the nominal network is 'continuous'."""
    jitters: tuple[float, ...] = (0.05, 0.1, 0.2, 0.3, 0.5)
    """device.freq_jitter_lw levels (linewidths) at which the nominal (ideal) network is evaluated."""
    trained_jitters: tuple[float, ...] = (0.1, 0.2, 0.5)
    """Jitter levels at which an 'aware' network is trained (a subset of ``jitters``)."""
    spreads: tuple[float, ...] = (0.0001, 0.0003, 0.001, 0.003, 0.01)
    """device.freq_spread levels (relative std, uncalibrated) at which the nominal network is evaluated."""
    trained_spreads: tuple[float, ...] = (0.0001, 0.001, 0.003, 0.01)
    """Spread levels at which 'aware' and 'in-situ' networks are trained (a subset of ``spreads``)."""
    chips: int = 3
    """Fresh chips per spread level (per trained network) for the ideal and aware evaluations."""
    workers: int = 1
    """Worker processes (1 = run in the calling thread)."""

    def __post_init__(self) -> None:
        for name in ("models", "seeds", "ranges", "bits", "jitters", "trained_jitters", "spreads", "trained_spreads"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        problems = []
        if not set(self.trained_jitters) <= set(self.jitters):
            problems.append("every trained jitter level must also be an evaluated one (jitters)")
        if not set(self.trained_spreads) <= set(self.spreads):
            problems.append("every trained spread level must also be an evaluated one (spreads)")
        if self.chips < 1:
            problems.append(f"chips must be >= 1 (got {self.chips})")
        if self.workers < 1:
            problems.append(f"workers must be >= 1 (got {self.workers})")
        if not self.models or not self.seeds:
            problems.append("the study needs at least one model and one seed")
        if problems:
            raise ValueError("; ".join(problems))

    @classmethod
    def quick(cls, **changes) -> "StudySpec":
        """A few minutes on 2 cores: mnist-mini, 3 epochs, 2 seeds and fewer levels (for trying it out)."""
        spec = cls(dataset="mnist-mini", seeds=(0, 1), epochs=3, ranges=(0.02, 0.1), bits=(4, 8),
                   jitters=(0.2, 0.5), trained_jitters=(0.5,), spreads=(0.001, 0.01), trained_spreads=(0.01,),
                   chips=2)
        return replace(spec, **changes) if changes else spec

    def base(self) -> RunConfig:
        return RunConfig(dataset=self.dataset, data_dir=self.data_dir, epochs=self.epochs,
                         resonators_per_chain=self.resonators_per_chain)

    def jobs(self) -> list["StudyJob"]:
        """Every training run of the study with its evaluations, longest first (rf-input before rf)."""
        out: list[StudyJob] = []
        base = self.base()
        uncal = {"calibrated": False}
        for model in self.models:
            for seed in self.seeds:
                cfg = base.with_(model=model, seed=seed)
                dev = cfg.device
                out.append(StudyJob("nominal", None, cfg, (
                    _evaluation("jitter", "freq_jitter_lw", (0.0, *self.jitters), 1),
                    _evaluation("spread", "freq_spread", (0.0, *self.spreads), self.chips, uncal))))
                for r in self.ranges:
                    out.append(StudyJob("range", r, cfg.with_(device=replace(dev, tuning_range=r))))
                for b in self.bits:
                    out.append(StudyJob("bits", b, cfg.with_(device=replace(dev, tuning_bits=b))))
                for v in self.trained_jitters:
                    out.append(StudyJob("jitter-aware", v, cfg.with_(hardware="aware",
                                                                     device=replace(dev, freq_jitter_lw=v)),
                                        (_evaluation("jitter", "freq_jitter_lw", (v,), 1),)))
                for v in self.trained_spreads:
                    chip = replace(dev, freq_spread=v, calibrated=False)
                    out.append(StudyJob("spread-aware", v, cfg.with_(hardware="aware", device=chip),
                                        (_evaluation("spread", "freq_spread", (v,), self.chips, uncal),)))
                    out.append(StudyJob("spread-in-situ", v, cfg.with_(hardware="in-situ", device=chip)))
        order = {m: i for i, m in enumerate(self.models)}
        return sorted(out, key=lambda j: (j.config.model != "rf-input", order[j.config.model], j.part,
                                          str(j.level), j.config.seed))

    def to_dict(self) -> dict:
        return json_safe({name: getattr(self, name) for name in self.__dataclass_fields__})


def _evaluation(name: str, knob: str, values: Sequence, repeats: int, fixed: Optional[dict] = None) -> dict:
    return {"name": name, "knob": knob, "values": list(values), "repeats": int(repeats), "fixed": dict(fixed or {})}


@dataclass(frozen=True)
class StudyJob:
    """One training run of the study and the robustness evaluations made on the trained network."""

    part: str
    """'nominal', 'range', 'bits', 'jitter-aware', 'spread-aware' or 'spread-in-situ'."""
    level: Any
    """The knob's level this run was trained at (None for the nominal run)."""
    config: RunConfig
    evaluations: tuple = field(default_factory=tuple)

    def key(self) -> str:
        return json.dumps({"part": self.part, "level": self.level, "settings": settings_key(self.config),
                           "evaluations": json_safe(list(self.evaluations))}, sort_keys=True)


def evaluate_job(job: StudyJob, model, x, y) -> list[dict]:
    """The robustness rows of ``job``'s evaluations of the trained ``model`` on (x, y), seeds 0…repeats−1."""
    rows = []
    for ev in job.evaluations:
        for row in robustness(model, x, y, ev["knob"], ev["values"], ev["repeats"], seed=0, fixed=ev["fixed"]):
            rows.append({"name": ev["name"], **row})
    return rows


def run_job(job: StudyJob, dataset, cancel=None) -> dict:
    """Train ``job``'s network and evaluate it: its sweep-style result row with ``part``, ``level``, ``key``
    and ``evaluations`` added (``_cancelled`` True when cut short)."""
    row, result = train_row(job.config, dataset, cancel)
    row.update(part=job.part, level=job.level, key=job.key(), evaluations=[])
    if result is not None and (result.cancelled or (cancel is not None and cancel.is_set())):
        row["_cancelled"] = True
        return row
    if result is not None:
        row["evaluations"] = evaluate_job(job, result.model, dataset.test_x, dataset.test_y)
    return row


def run_study(spec: StudySpec, dataset=None, out_dir=None, on_result: Optional[Callable[[dict], None]] = None,
              cancel: Optional[CancelToken] = None, on_plan: Optional[Callable[[int, int], None]] = None) -> dict:
    """Run the study and return its document (see :func:`study_document`); with ``out_dir``, resume from and
    append to ``out_dir/rows.jsonl`` and write the summary files at the end (also when interrupted)."""
    if out_dir is not None:  # before any data is loaded or any run starts
        check_output_folder(out_dir)
        refuse_symlink(Path(out_dir) / ROWS_FILE)
    if dataset is None:
        dataset = load_dataset(spec.dataset, spec.data_dir)
    jobs = spec.jobs()
    rows: list[dict] = []
    log = None
    todo = jobs
    if out_dir is not None:
        out = Path(out_dir)
        if out.exists() and not out.is_dir():
            raise ValueError(f"the output folder {out} is a file")
        logged, _notes = read_rows_log(out / ROWS_FILE)
        wanted = {j.key() for j in jobs}
        same_data = dataset_identity(dataset_record(dataset))
        done = {r["key"]: r for r in logged
                if isinstance(r, dict) and r.get("key") in wanted and r.get("test_accuracy") is not None
                and dataset_identity(r.get("dataset_info") or {}) == same_data}
        rows.extend(done.values())
        todo = [j for j in jobs if j.key() not in done]
        log = RowLog(out / ROWS_FILE) if todo else None
    if on_plan is not None:
        on_plan(len(jobs), len(jobs) - len(todo))

    def deliver(row: dict) -> None:
        if log is not None:
            log.append(row)
        row = json.loads(json.dumps(json_safe(row)))
        rows.append(row)
        if on_result is not None:
            on_result(row)

    try:  # run_job is read here, at call time: a test may stand in for it
        LocalBackend(spec.workers, threads=1, run_job=run_job).run(todo, dataset, deliver, cancel)
    finally:
        if log is not None:
            log.close()
    doc = study_document(rows, spec, dataset)
    if out_dir is not None and rows:
        write_study(doc, out_dir)
    return doc


# ---------------------------------------------------------------------------------------------------------
# Summaries
# ---------------------------------------------------------------------------------------------------------

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
        return [r for r in ok if r.get("model") == model and r.get("part") == part
                and (part == "nominal" or _same(r.get("level"), level))]

    series = []

    def add(panel: str, model: str, regime: str, points: list[tuple[Any, list[float]]]) -> None:
        pts = [(level, _stats(vals)) for level, vals in points if vals]
        if pts:
            series.append({"panel": panel, "model": model, "regime": regime, "levels": [p[0] for p in pts],
                           "mean": [p[1]["mean"] for p in pts], "std": [p[1]["std"] for p in pts],
                           "n": [p[1]["n"] for p in pts]})

    for model in spec.models:
        nominal = runs(model, "nominal")
        base_acc = [r["test_accuracy"] for r in nominal]
        add("range", model, "trained", [(r, [x["test_accuracy"] for x in runs(model, "range", r)])
                                        for r in spec.ranges] + [(None, base_acc)])
        add("bits", model, "trained", [(b, [x["test_accuracy"] for x in runs(model, "bits", b)])
                                       for b in spec.bits] + [(None, base_acc)])
        levels = (0.0, *spec.jitters)
        ideal_jitter = [(v, _evaluated(nominal, "jitter", v)) for v in levels]
        add("jitter", model, "ideal", ideal_jitter)
        add("jitter", model, "aware", [ideal_jitter[0]] + [
            (v, _evaluated(runs(model, "jitter-aware", v), "jitter", v)) for v in spec.trained_jitters])
        levels = (0.0, *spec.spreads)
        ideal_spread = [(v, _evaluated(nominal, "spread", v)) for v in levels]
        add("spread", model, "ideal", ideal_spread)
        add("spread", model, "aware", [ideal_spread[0]] + [
            (v, _evaluated(runs(model, "spread-aware", v), "spread", v)) for v in spec.trained_spreads])
        add("spread", model, "in-situ", [ideal_spread[0]] + [
            (v, [r["test_accuracy"] for r in runs(model, "spread-in-situ", v)]) for v in spec.trained_spreads])
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
                row = {"model": model, "panel": panel, "level": level, "ideal": i, "aware": a,
                       "ideal_loss_points": loss, "aware_gain_points": gain, "aware_at_least_ideal": a >= i}
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
        out[panel] = {"ideal": ideal, "smallest_within": ok,
                      "levels": {str(lv): m for lv, m in finite}}
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
    titles = {"range": "Tuning range (relative half-width around the fabricated frequency)",
              "bits": "Tuning resolution (bits per device, across its range; unlimited range)",
              "jitter": "Frequency jitter at every read-out (std, in linewidths)",
              "spread": f"Uncalibrated fabrication spread (relative std; ideal and aware on {spec.chips} fresh "
                        f"chips per network, in-situ on its own chip)"}
    lines = [f"Hardware study: {spec.dataset}, K = {spec.resonators_per_chain}, {spec.epochs} epochs, seeds "
             f"{', '.join(map(str, spec.seeds))}; test accuracy (%), mean ± std over seeds.", ""]
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
        text = (f"- {c['model']}, {c['panel']} {level}: ideal {100 * c['ideal']:.2f} % (loses "
                f"{c['ideal_loss_points']:.2f} points), aware {100 * c['aware']:.2f} % "
                f"({c['aware_gain_points']:+.2f} points): aware {'>=' if c['aware_at_least_ideal'] else '<'} ideal")
        if "recovered_fraction" in c:
            text += (f"; recovers {100 * c['recovered_fraction']:.0f} % of the loss "
                     f"({'at least half' if c['recovers_half'] else 'less than half'})")
        lines.append(text)
    for panel in ("range", "bits"):
        part = conclusion.get(panel)
        if not part:
            continue
        best = part["smallest_within"]
        what = "tuning range" if panel == "range" else "tuning bits"
        lines.append(f"- {conclusion['model']}: the smallest {what} within {conclusion['within_points']:g} point of "
                     f"the ideal device ({100 * part['ideal']:.2f} %): "
                     f"{_pct(best, panel) if best is not None else 'none of the levels studied'}")
    return "\n".join(lines)


def study_document(rows: Sequence[dict], spec: StudySpec, dataset=None) -> dict:
    series = study_series(rows, spec)
    checks = verdicts(series, spec)
    conclusion = chip_conclusion(series, spec)
    return {"format": "rfexplorer-hardware-study", "created": utc_now_iso(), "versions": software_versions(),
            "spec": spec.to_dict(), "dataset": dataset_record(dataset) if dataset is not None else None,
            "runs": len([r for r in rows if r.get("test_accuracy") is not None]),
            "train_seconds": sum(float(r.get("train_seconds") or 0.0) for r in rows),
            "series": series, "verdicts": checks, "conclusion": conclusion,
            "tables": study_tables(series, spec), "verdict_text": verdict_lines(checks, conclusion)}


def study_csv(series: Sequence[dict]) -> str:
    header = ["panel", "model", "regime", "level", "mean", "std", "n_seeds"]
    table = [[s["panel"], s["model"], s["regime"], "" if lv is None else lv, m, sd, n]
             for s in series for lv, m, sd, n in zip(s["levels"], s["mean"], s["std"], s["n"])]
    return csv_text(header, table)


def write_study(doc: dict, out_dir) -> dict[str, Path]:
    """Write hardware.json, hardware.csv and hardware_tables.md (atomically) into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "hardware.json", "csv": out / "hardware.csv", "md": out / "hardware_tables.md"}
    atomic_write_files([(paths["csv"], study_csv(doc["series"]).encode("utf-8")),  # one group, the JSON last
                        (paths["md"], (doc["tables"] + "\n" + doc["verdict_text"] + "\n").encode("utf-8")),
                        (paths["json"], dumps_json(doc).encode("utf-8"))])
    return paths


__all__ = ["PANELS", "StudyJob", "StudySpec", "chip_conclusion", "run_job", "run_study", "study_document",
           "study_series", "study_tables", "verdicts", "write_study"]
