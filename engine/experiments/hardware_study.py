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

Runs go to the sweep's local backend (:class:`engine.experiments.sweep.pool.LocalBackend`), each finished job is
appended to
``OUT/rows.jsonl`` as it comes, and a later study into the same folder skips the jobs already there (as
``sweep`` does). The tables (``hardware_tables.md``), a long-format ``hardware.csv`` and ``hardware.json``
(the series the figure draws, the verdicts on the issue's targets and the chip conclusion) are written from
the rows at the end by :mod:`engine.experiments.hardware_report`. Accuracies are means over seeds of each seed's mean
(over chips, where there are several), ± the std over seeds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from engine.config.run_config import RunConfig
from engine.core.files import check_output_folder, json_safe, refuse_symlink
from engine.core.progress import CancelToken
from engine.data import load_dataset
from engine.experiments.hardware_report import (
    LOSS_POINTS,
    PANELS,
    WITHIN_POINTS,
    chip_conclusion,
    study_csv,
    study_document,
    study_series,
    study_tables,
    verdict_lines,
    verdicts,
    write_study,
)
from engine.experiments.sweep.backend import train_row
from engine.experiments.sweep.log import RowLog, dataset_identity, read_rows_log
from engine.experiments.sweep.pool import LocalBackend
from engine.experiments.sweep.spec import settings_key
from engine.io.results import dataset_record
from engine.io.store import RunStore, row_recorder
from engine.nets.hardware import robustness

#: The study's row log (one finished job per line), as in a sweep folder.
ROWS_FILE = "rows.jsonl"


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
        spec = cls(
            dataset="mnist-mini",
            seeds=(0, 1),
            epochs=3,
            ranges=(0.02, 0.1),
            bits=(4, 8),
            jitters=(0.2, 0.5),
            trained_jitters=(0.5,),
            spreads=(0.001, 0.01),
            trained_spreads=(0.01,),
            chips=2,
        )
        return replace(spec, **changes) if changes else spec

    def base(self) -> RunConfig:
        return RunConfig(
            dataset=self.dataset,
            data_dir=self.data_dir,
            epochs=self.epochs,
            resonators_per_chain=self.resonators_per_chain,
        )

    def jobs(self) -> list["StudyJob"]:
        """Every training run of the study with its evaluations, longest first (rf-input before rf)."""
        out: list[StudyJob] = []
        base = self.base()
        uncal = {"calibrated": False}
        for model in self.models:
            for seed in self.seeds:
                cfg = base.with_(model=model, seed=seed)
                dev = cfg.device
                out.append(
                    StudyJob(
                        "nominal",
                        None,
                        cfg,
                        (
                            _evaluation("jitter", "freq_jitter_lw", (0.0, *self.jitters), 1),
                            _evaluation("spread", "freq_spread", (0.0, *self.spreads), self.chips, uncal),
                        ),
                    )
                )
                for r in self.ranges:
                    out.append(StudyJob("range", r, cfg.with_(device=replace(dev, tuning_range=r))))
                for b in self.bits:
                    out.append(StudyJob("bits", b, cfg.with_(device=replace(dev, tuning_bits=b))))
                for v in self.trained_jitters:
                    out.append(
                        StudyJob(
                            "jitter-aware",
                            v,
                            cfg.with_(hardware="aware", device=replace(dev, freq_jitter_lw=v)),
                            (_evaluation("jitter", "freq_jitter_lw", (v,), 1),),
                        )
                    )
                for v in self.trained_spreads:
                    chip = replace(dev, freq_spread=v, calibrated=False)
                    out.append(
                        StudyJob(
                            "spread-aware",
                            v,
                            cfg.with_(hardware="aware", device=chip),
                            (_evaluation("spread", "freq_spread", (v,), self.chips, uncal),),
                        )
                    )
                    out.append(StudyJob("spread-in-situ", v, cfg.with_(hardware="in-situ", device=chip)))
        order = {m: i for i, m in enumerate(self.models)}
        return sorted(
            out,
            key=lambda j: (j.config.model != "rf-input", order[j.config.model], j.part, str(j.level), j.config.seed),
        )

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
        return json.dumps(
            {
                "part": self.part,
                "level": self.level,
                "settings": settings_key(self.config),
                "evaluations": json_safe(list(self.evaluations)),
            },
            sort_keys=True,
        )


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


def run_study(
    spec: StudySpec,
    dataset=None,
    out_dir=None,
    on_result: Optional[Callable[[dict], None]] = None,
    cancel: Optional[CancelToken] = None,
    on_plan: Optional[Callable[[int, int], None]] = None,
    store: Optional[RunStore] = None,
) -> dict:
    """Run the study and return its document (see :func:`study_document`); with ``out_dir``, resume from and
    append to ``out_dir/rows.jsonl`` and write the summary files at the end (also when interrupted). ``store``
    records each finished training run (source "hardware-study", with its part, level and evaluations)."""
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
        done = {
            r["key"]: r
            for r in logged
            if isinstance(r, dict)
            and r.get("key") in wanted
            and r.get("test_accuracy") is not None
            and dataset_identity(r.get("dataset_info") or {}) == same_data
        }
        rows.extend(done.values())
        todo = [j for j in jobs if j.key() not in done]
        log = RowLog(out / ROWS_FILE) if todo else None
    if on_plan is not None:
        on_plan(len(jobs), len(jobs) - len(todo))

    recorder = row_recorder(store, "hardware-study", extra_keys=("part", "level", "evaluations"))

    def deliver(row: dict) -> None:
        if log is not None:
            log.append(row)
        row = json.loads(json.dumps(json_safe(row)))
        if recorder is not None:
            recorder(row)
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


__all__ = [
    "LOSS_POINTS",
    "PANELS",
    "ROWS_FILE",
    "WITHIN_POINTS",
    "StudyJob",
    "StudySpec",
    "chip_conclusion",
    "run_job",
    "run_study",
    "study_csv",
    "study_document",
    "study_series",
    "study_tables",
    "verdict_lines",
    "verdicts",
    "write_study",
]
