"""The reference sweep: test accuracy against the percentage of synapses removed, for every model and seed.

This reproduces the layout of the reference work's Figure 1b (see docs/physics.md): x axis 100 (1 - K/N) %
removed, one curve per model, mean ± std over seeds. Models that do not use K (dense) run once per seed and
are recorded at K = N (0 % removed). Rows are :class:`engine.results.ResultRow` dicts; averaging is
:func:`engine.results.aggregate`.

Runs go to a process pool (``spawn`` context, one torch thread per worker, the dataset loaded once per
worker) when ``spec.workers > 1``, longest runs first; otherwise they run one after the other in the calling
thread. Results are reported through ``on_result`` in the calling thread as each run finishes.

Resuming: given an output folder, each finished row is appended to ``OUT/rows.jsonl`` (one JSON line, flushed
and fsynced) as soon as it is reported, and a later sweep into the same folder skips the runs whose row is
already there with the same resolved settings and dataset (failed rows are run again). The summary files
(``sweep.csv``, ``sweep.json``, ``sweep_table.md``) are rewritten atomically from the sweep's rows at the end,
also when the sweep is interrupted.
"""
from __future__ import annotations

import concurrent.futures as cf
import json
import multiprocessing
import os
import signal
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Optional, Sequence

from .config import RunConfig, removed_synapses_pct
from .files import (atomic_write_files, atomic_write_text, check_output_folder, dumps_json, json_safe, open_nofollow,
                    read_bytes_nofollow, refuse_symlink)
from .models import get_spec, list_models
from .progress import CancelToken, DivergenceError
from .results import Aggregate, ResultRow, RunResult, aggregate, dataset_record, software_versions, utc_now_iso
from .tables import csv_text

#: Levels of the reference sweep: K = 1 ... 784 on a roughly logarithmic grid that includes K = 10 (98.72 %
#: removed). `make reproduce` (3 seeds, 10 epochs, 8 models) takes about 20 minutes on 2 cores.
DEFAULT_KS = (1, 3, 10, 30, 100, 392, 784)
DEFAULT_SEEDS = (0, 1, 2)
#: K of the reference comparison (1.28 % remaining synapses on MNIST).
REFERENCE_K = 10
#: Published margins at K = 10 (seed abstract), quoted in the Markdown table.
PAPER_RF_MINUS_SPARSE = 13.21
PAPER_DENSE_MINUS_RF_INPUT = 3.71
SPAWN_METHOD = "spawn"
#: Models of the multilayer sweep (SweepSpec.multilayer).
MULTILAYER_MODELS = ("rf-input", "rf", "dense", "prune", "rigl")

ResultCallback = Callable[[dict], None]
NoteCallback = Callable[[str], None]
#: The row log of a sweep folder: one finished run per line, appended as runs finish.
ROWS_FILE = "rows.jsonl"
#: Where runs execute: "local" (this thread or a process pool) or "ray" (engine/sweep_ray.py).
BACKENDS = ("local", "ray")


@dataclass(frozen=True)
class SweepSpec:
    """What to sweep: models x K x seeds, each run configured as ``base`` with model, K and seed replaced."""

    models: tuple[str, ...] = field(default_factory=lambda: tuple(list_models()))
    ks: tuple[int, ...] = DEFAULT_KS
    seeds: tuple[int, ...] = DEFAULT_SEEDS
    base: RunConfig = field(default_factory=RunConfig)
    """Dataset, data folder, epochs, batch size, learning rate, budget, device and plasticity of every run."""
    workers: int = 1
    """Worker processes (1 = run in the calling thread)."""
    threads_per_worker: int = 1
    """torch threads in each worker process (the in-process path leaves the caller's setting alone)."""
    model_settings: dict = field(default_factory=dict)
    """Per model, settings changed on top of ``base`` before the variants (``{model: {dotted.path: value}}``),
    e.g. a learning rate tuned for one model on this dataset."""
    variants: tuple = ({},)
    """Settings changed on top of ``base`` (``{dotted.path: value}``), each swept with every model, K and seed.
    A variant that sets ``resonators_per_chain`` runs at that K only; one with hidden layers skips the models
    that have no multilayer version."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "models", tuple(self.models))
        object.__setattr__(self, "variants", tuple(dict(v) for v in self.variants) or ({},))
        object.__setattr__(self, "model_settings", {m: dict(v) for m, v in dict(self.model_settings).items()})
        object.__setattr__(self, "ks", tuple(sorted(set(int(k) for k in self.ks))))
        object.__setattr__(self, "seeds", tuple(dict.fromkeys(int(s) for s in self.seeds)))
        problems = []
        unknown = [m for m in self.models if m not in list_models()]
        if unknown:
            problems.append(f"unknown model(s) {', '.join(map(repr, unknown))} "
                            f"(choose from: {', '.join(list_models())})")
        if len(set(self.models)) != len(self.models):
            problems.append("a model is listed twice")
        if not self.models:
            problems.append("no model to sweep")
        if not self.ks:
            problems.append("no K to sweep")
        bad = [k for k in self.ks if k < 1]
        if bad:
            problems.append(f"resonators per chain must be >= 1 (got {', '.join(map(str, bad))})")
        if not self.seeds:
            problems.append("no seed to sweep")
        if self.workers < 1:
            problems.append(f"workers must be >= 1 (got {self.workers})")
        if self.threads_per_worker < 1:
            problems.append(f"threads per worker must be >= 1 (got {self.threads_per_worker})")
        if not problems:
            for model, settings in self.model_settings.items():
                if model not in self.models:
                    problems.append(f"model_settings names {model!r}, which is not swept")
                    continue
                try:
                    self._apply(self.base.with_(model=model), settings)
                except ValueError as exc:
                    problems.append(f"settings of {model}: {exc}")
            for variant in self.variants:
                try:
                    self._apply(self.base, variant)
                except ValueError as exc:
                    problems.append(f"sweep variant {variant}: {exc}")
        if problems:
            raise ValueError("; ".join(problems))

    @staticmethod
    def _apply(cfg: RunConfig, variant: dict) -> RunConfig:
        """``cfg`` with a variant's settings changed (validated)."""
        if not variant:
            return cfg
        from .settings_tree import set_path

        mapping = cfg.to_dict()
        for path, value in variant.items():
            mapping = set_path(mapping, path, value)
        return RunConfig.from_dict(mapping)

    # --- presets -----------------------------------------------------------------------------------------------
    @classmethod
    def quick(cls, **changes) -> "SweepSpec":
        """A few minutes on 2 cores: mnist-mini, K in (1, 10, 100, 784), 3 seeds, 3 epochs."""
        spec = cls(ks=(1, 10, 100, 784), seeds=DEFAULT_SEEDS, base=RunConfig(dataset="mnist-mini", epochs=3))
        return replace(spec, **changes) if changes else spec

    @classmethod
    def full(cls, **changes) -> "SweepSpec":
        """The reference sweep: full MNIST, every K of :data:`DEFAULT_KS`, 3 seeds, 10 epochs (about 20 minutes on 2 cores)."""
        spec = cls(ks=DEFAULT_KS, seeds=DEFAULT_SEEDS, base=RunConfig(dataset="mnist", epochs=10))
        return replace(spec, **changes) if changes else spec

    @classmethod
    def multilayer(cls, dataset: str = "mnist", **changes) -> "SweepSpec":
        """Single-layer against multilayer networks at comparable synapse counts (``make reproduce-multilayer``):
        RF with trained inputs, RF, and the dense, pruned and RigL software networks, 3 seeds.

        MNIST (10 epochs): one layer at K = 10 and 40, and 784-50-10 (K = 20, 50) and 784-100-10 (K = 30, 100),
        i.e. 100, 400, 1,500 and 4,000 resonators. drones (120 epochs, batches of 20, learning rates tuned on
        validation splits): one layer at K = 10, and 256-32-10 (K = 20, 32), i.e. 100 and 960 resonators."""
        settings: dict = {}
        if dataset == "drones":
            base = RunConfig(dataset="drones", epochs=120, batch_size=20)
            variants = ({"resonators_per_chain": 10},
                        {"hidden": [32], "resonators_per_chain": 20, "layer_resonators": [32]})
            # learning rates chosen on validation splits of the drones training set (benchmarks/tune_drones.py
            # for RF, benchmarks/tune_mlp.py for the software networks)
            settings = {"rf-input": {"lr": 0.1}, "rf": {"lr": 0.1}, "dense": {"lr": 1e-2},
                        "prune": {"lr": 0.3}, "rigl": {"lr": 3e-2}}
        else:
            base = RunConfig(dataset=dataset, epochs=10)
            variants = ({"resonators_per_chain": 10}, {"resonators_per_chain": 40},
                        {"hidden": [50], "resonators_per_chain": 20, "layer_resonators": [50]},
                        {"hidden": [100], "resonators_per_chain": 30, "layer_resonators": [100]})
        spec = cls(models=MULTILAYER_MODELS, ks=(10,), seeds=DEFAULT_SEEDS, base=base, variants=variants,
                   model_settings=settings)
        return replace(spec, **changes) if changes else spec

    # --- jobs --------------------------------------------------------------------------------------------------
    def jobs(self, n_inputs: Optional[int] = None) -> list[RunConfig]:
        """The run configs, longest first (RF runs cost ~ K). Models that do not use K run once per seed, at
        K = ``n_inputs`` (default: the largest K of the sweep)."""
        configs: dict[str, RunConfig] = {}
        for model in self.models:
            spec = get_spec(model)
            for variant in self.variants:
                if variant.get("hidden") and not spec.supports_hidden:
                    continue
                base = self._apply(self._apply(self.base.with_(model=model), self.model_settings.get(model, {})),
                                   variant)
                if not spec.uses_k:  # one run per seed and layer shape, recorded at K = N
                    ks, extra = (n_inputs or max(self.ks),), {"layer_resonators": ()}
                elif "resonators_per_chain" in variant:
                    ks, extra = (base.resonators_per_chain,), {}
                else:
                    ks, extra = self.ks, {}
                for k in ks:
                    for seed in self.seeds:
                        cfg = base.with_(resonators_per_chain=k, seed=seed, **extra)
                        configs.setdefault(settings_key(cfg), cfg)
        order = {m: i for i, m in enumerate(list_models())}
        return sorted(configs.values(), key=lambda c: (-estimated_cost(c), order[c.model], c.resonators_per_chain,
                                                       c.hidden, c.seed))

    def to_dict(self) -> dict:
        return {"models": list(self.models), "ks": list(self.ks), "seeds": list(self.seeds),
                "base": self.base.to_dict(), "workers": self.workers, "threads_per_worker": self.threads_per_worker,
                "variants": [json_safe(v) for v in self.variants], "model_settings": json_safe(self.model_settings)}

    @classmethod
    def from_dict(cls, d: dict) -> "SweepSpec":
        d = dict(d)
        if isinstance(d.get("base"), dict):
            d["base"] = RunConfig.from_dict(d["base"])
        return cls(**d)


def estimated_cost(cfg: RunConfig) -> float:
    """Relative run time, for ordering only: an RF step builds a (C, K, N) coupling tensor, so it costs ~ K
    (summed over the layers, in units of a 10-chain layer)."""
    if not cfg.spec.is_rf:
        return (1.0 + sum(cfg.hidden) / 50.0) * cfg.epochs
    outs = (*cfg.hidden, 10)
    per_epoch = 1.0 + sum(k * c / 10.0 for k, c in zip(cfg.layer_ks, outs)) / 5.0
    return per_epoch * cfg.epochs


# ---------------------------------------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------------------------------------

def result_row(result) -> dict:
    """One sweep row: the run's :class:`ResultRow` as a dict (``error`` None when it succeeded)."""
    return result.row().to_dict()


def failed_row(cfg: RunConfig, message: str, n_inputs: int, n_classes: int) -> dict:
    """The row of a run that failed (e.g. diverged): no accuracy, the reason in ``error``."""
    return ResultRow.failed(cfg, message, n_inputs, n_classes).to_dict()


# Worker-process state (set by _worker_init in each pool process).
_WORKER_DATASET = None
_WORKER_CANCEL = None


def _worker_init(dataset, threads: int, cancel_event) -> None:
    global _WORKER_DATASET, _WORKER_CANCEL
    try:  # Ctrl-C goes to the whole process group: the parent decides, workers stop through cancel_event
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    except (ValueError, OSError):
        pass
    import torch

    torch.set_num_threads(max(1, int(threads)))
    _WORKER_DATASET = dataset
    _WORKER_CANCEL = cancel_event


def train_row(cfg: RunConfig, dataset, cancel=None) -> tuple[dict, Optional[RunResult]]:
    """Train one run of a sweep: (its row, its result), or (a failed row, None) when the run diverged."""
    from .training import run_training

    try:
        result = run_training(cfg, dataset=dataset, cancel=cancel)
    except DivergenceError as exc:
        return failed_row(cfg, str(exc), dataset.n_inputs, dataset.n_classes), None
    return result_row(result), result


def _worker_run(cfg: RunConfig) -> dict:
    row, result = train_row(cfg, _WORKER_DATASET, _WORKER_CANCEL)
    row["_cancelled"] = result is not None and result.cancelled
    return row


def _sort_key(row: dict):
    order = {m: i for i, m in enumerate(list_models())}
    seed = row.get("seed")
    return (order.get(row.get("model"), len(order)), tuple(row.get("hidden") or ()),
            row.get("resonators_per_chain") or 0, seed if isinstance(seed, int) else -1)


# ---------------------------------------------------------------------------------------------------------
# The row log (rows.jsonl) and resuming
# ---------------------------------------------------------------------------------------------------------

def _canonical(value) -> str:
    """Settings as comparable text: JSON-safe, keys sorted (a row read back from JSON compares equal)."""
    return json.dumps(json_safe(value), sort_keys=True, separators=(",", ":"))


def settings_key(cfg: RunConfig) -> str:
    """What identifies a run's settings: its resolved settings tree, canonically serialised."""
    return _canonical(cfg.resolved().to_dict())


#: The parts of :func:`engine.results.dataset_record` that identify the data (not where it was read from).
_DATASET_IDENTITY = ("name", "n_inputs", "n_classes", "n_train", "n_test", "class_names", "image_shape",
                     "scaling")


def dataset_identity(record: dict) -> str:
    record = record or {}
    return _canonical({k: record.get(k) for k in _DATASET_IDENTITY})


def read_rows_log(path) -> tuple[list[dict], list[str]]:
    """The rows of a ``rows.jsonl`` file and notes about lines that were skipped (a last line cut short by a
    crash, or a line that is not a JSON object). A missing file gives no rows; a symbolic link is refused
    (:class:`engine.files.UnsafeOutputError`), never followed."""
    path = Path(path)
    try:
        data = read_bytes_nofollow(path)
    except FileNotFoundError:
        return [], []
    rows: list[dict] = []
    notes: list[str] = []
    lines = data.split(b"\n")
    complete = data.endswith(b"\n")
    last = len(lines) - (2 if complete else 1)  # index of the last non-empty-by-position line
    for i, raw in enumerate(lines):
        if not raw.strip():
            continue
        try:
            row = json.loads(raw.decode("utf-8"))
            if not isinstance(row, dict):
                raise ValueError("not a JSON object")
        except (ValueError, UnicodeDecodeError):
            where = "last line" if i >= last else f"line {i + 1}"
            notes.append(f"ignored the {where} of {path} (incomplete or not a result row)")
            continue
        rows.append(row)
    return rows, notes


class RowLog:
    """Appends rows to a ``rows.jsonl`` file, one JSON line each, flushed and fsynced before returning, so an
    interrupted sweep loses no finished row and never leaves a half-written line behind a complete one. The file
    is opened once, with O_NOFOLLOW: a symbolic link planted in its place is refused
    (:class:`engine.files.UnsafeOutputError`), so nothing outside the output folder is ever written."""

    def __init__(self, path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = open_nofollow(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT)
        try:
            self._repair_tail(fd)
        except BaseException:
            os.close(fd)
            raise
        self._file = os.fdopen(fd, "ab")

    def _repair_tail(self, fd: int) -> None:
        """A last line without its newline (a crash mid-write) is cut off, or ended if it is a whole row,
        so the next row starts on a line of its own."""
        size = os.fstat(fd).st_size
        if size == 0:
            return
        start = max(0, size - (1 << 16))
        while True:  # read back from the end until the last newline (or the start) is in view
            os.lseek(fd, start, os.SEEK_SET)
            data = b""
            while len(data) < size - start:
                chunk = os.read(fd, size - start - len(data))
                if not chunk:
                    break
                data += chunk
            if data.endswith(b"\n"):
                return
            if b"\n" in data or start == 0:
                break
            start = max(0, start - (1 << 20))
        cut = data.rfind(b"\n") + 1
        try:
            ok = isinstance(json.loads(data[cut:].decode("utf-8")), dict)
        except (ValueError, UnicodeDecodeError):
            ok = False
        if ok:
            os.write(fd, b"\n")  # O_APPEND: at the end
        else:
            os.ftruncate(fd, start + cut)
        os.fsync(fd)

    def append(self, row: dict) -> None:
        line = json.dumps(json_safe(row), allow_nan=False, separators=(",", ":")) + "\n"
        self._file.write(line.encode("utf-8"))
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()

    def __enter__(self) -> "RowLog":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _is_done(row: dict) -> bool:
    try:
        return ResultRow.from_dict(row).ok
    except (TypeError, ValueError):  # not a result row
        return False


def finished_rows(jobs: Sequence[RunConfig], logged: Sequence[dict], dataset) -> dict[int, dict]:
    """Which of ``jobs`` already have a successful row in ``logged`` with the same resolved settings and the
    same dataset: {job index: row} (the last matching row wins)."""
    wanted = dataset_identity(dataset_record(dataset))
    by_key: dict[str, dict] = {}
    for row in logged:
        if not _is_done(row) or not isinstance(row.get("config"), dict):
            continue
        if dataset_identity(row.get("dataset_info") or {}) != wanted:
            continue
        try:  # a row written before a setting existed records no value for it: its default applies
            key = settings_key(RunConfig.from_dict(row["config"]))
        except (TypeError, ValueError):
            key = _canonical(row["config"])
        by_key[key] = row
    found = {}
    for i, cfg in enumerate(jobs):
        row = by_key.get(settings_key(cfg))
        if row is not None:
            found[i] = row
    return found


# ---------------------------------------------------------------------------------------------------------
# --vary: settings swept on top of the presets' variants
# ---------------------------------------------------------------------------------------------------------

#: Per-value summary of a sweep with varied settings (the standard tables group by model, K and layers only).
VARY_FILE = "sweep_vary.csv"


def vary_variants(variants: Sequence[dict], vary: Sequence[tuple[str, Sequence]]) -> tuple[dict, ...]:
    """Every variant of ``variants`` combined with every point of the cross product of ``vary``
    ([(dotted path, values)]): the SweepSpec.variants of ``sweep --vary``."""
    import itertools

    combos = [dict(zip([p for p, _ in vary], point)) for point in itertools.product(*[list(v) for _, v in vary])]
    return tuple({**dict(v), **c} for v in (variants or ({},)) for c in combos)


def _at_path(mapping, path: str):
    for part in path.split("."):
        if not isinstance(mapping, dict) or part not in mapping:
            return None
        mapping = mapping[part]
    return mapping


def vary_table(rows: Sequence[dict], paths: Sequence[str]) -> tuple[list[str], list[list]]:
    """(columns, table): mean and sample std of the accuracy over seeds per model, K, hidden layers and value
    of each varied setting (read from each row's recorded config)."""
    import statistics

    groups: dict[tuple, list[float]] = {}
    order = {m: i for i, m in enumerate(list_models())}
    for row in rows:
        if row.get("test_accuracy") is None or row.get("error") is not None:
            continue
        cfg = row.get("config") or {}
        key = (row.get("model"), row.get("resonators_per_chain"), tuple(row.get("hidden") or ()),
               tuple(json.dumps(_at_path(cfg, p)) for p in paths))
        groups.setdefault(key, []).append(float(row["test_accuracy"]))
    columns = ["model", "resonators_per_chain", "hidden", *paths, "mean", "std", "n"]
    table = []
    for (model, k, hidden, values), accs in sorted(groups.items(), key=lambda kv: (
            order.get(kv[0][0], len(order)), kv[0][1] or 0, kv[0][2], kv[0][3])):
        table.append([model, k, " ".join(map(str, hidden)), *[json.loads(v) for v in values],
                      statistics.fmean(accs), statistics.stdev(accs) if len(accs) > 1 else 0.0, len(accs)])
    return columns, table


def write_vary_table(rows: Sequence[dict], paths: Sequence[str], out_dir) -> Path:
    """Write :func:`vary_table` to ``OUT/sweep_vary.csv`` (atomically); returns its path."""
    columns, table = vary_table(rows, paths)
    return atomic_write_text(Path(out_dir) / VARY_FILE, csv_text(columns, table))


def result_paths(out_dir) -> dict[str, Path]:
    """Where :func:`write_results` writes into ``out_dir``."""
    out = Path(out_dir)
    return {"csv": out / "sweep.csv", "json": out / "sweep.json", "md": out / "sweep_table.md"}


def run_sweep(spec: SweepSpec, dataset=None, on_result: Optional[ResultCallback] = None,
              cancel: Optional[CancelToken] = None, out_dir=None, on_note: Optional[NoteCallback] = None,
              on_plan: Optional[Callable[[int, int], None]] = None, backend: str = "local",
              address: Optional[str] = None, max_retries: Optional[int] = None) -> list[dict]:
    """Run every job of ``spec`` and return the rows (sorted by model, K, seed).

    ``dataset`` (an :class:`engine.data.Dataset` of ``spec.base.dataset``) avoids loading it again; worker
    processes receive a copy of it. ``on_result(row)`` is called in the calling thread as each run finishes.
    Setting ``cancel`` stops submitting runs, cancels those not started and stops running ones at their next
    batch; the runs cut short are not reported, and the rows finished so far are returned. A run that diverges
    gives a row with ``test_accuracy`` None and the reason in ``error`` (the sweep goes on).

    With ``out_dir``, each reported row is first appended to ``out_dir/rows.jsonl``; runs already there with
    the same resolved settings and dataset are skipped (their rows are returned, not reported again; failed
    rows are run again; rows of other settings stay in the file but are not part of this sweep), and
    ``sweep.csv``, ``sweep.json`` and ``sweep_table.md`` are written from the returned rows at the end, also
    when interrupted. ``on_note(text)`` receives what a person should know (how many runs were skipped, lines
    of the file that were ignored); ``on_plan(n_jobs, n_already_done)`` is called once before any run.

    ``backend`` is ``"local"`` (the default: this thread or a process pool) or ``"ray"`` (one Ray task per
    run, see :mod:`engine.sweep_ray`; ``address`` joins a running cluster, none starts a local instance;
    ``max_retries`` (default 3) is how often a run whose worker or node died is started again).
    """
    from .data import load_dataset

    if backend not in BACKENDS:
        raise ValueError(f"unknown sweep backend {backend!r} (choose from: {', '.join(BACKENDS)})")
    if backend == "ray":
        from .sweep_ray import import_ray, max_retries_setting

        max_retries = max_retries_setting(max_retries)
        import_ray()  # says how to install Ray before any data is loaded
    if out_dir is not None:  # before any data is loaded or any run starts
        check_output_folder(out_dir)
        refuse_symlink(Path(out_dir) / ROWS_FILE)

    base = spec.base
    if dataset is None:
        # loaded here once even for a pool (workers get a copy): N and C are needed, and a missing or
        # malformed dataset is reported before any worker starts
        dataset = load_dataset(base.dataset, base.data_dir)
    jobs = spec.jobs(dataset.n_inputs)
    if dataset.n_inputs < max(c.resonators_per_chain for c in jobs):
        raise ValueError(f"resonators per chain must be between 1 and {dataset.n_inputs} for {dataset.name}")
    rows: list[dict] = []
    log: Optional[RowLog] = None
    todo = list(jobs)
    if out_dir is not None:
        out = Path(out_dir)
        if out.exists() and not out.is_dir():
            raise ValueError(f"the output folder {out} is a file")
        log_path = out / ROWS_FILE
        logged, notes = read_rows_log(log_path)
        for text in notes:
            if on_note is not None:
                on_note(text)
        done = finished_rows(jobs, logged, dataset)
        if done and on_note is not None:
            on_note(f"resuming: {len(done)} of {len(jobs)} runs already done in {log_path}")
        rows.extend(done.values())
        todo = [cfg for i, cfg in enumerate(jobs) if i not in done]
        if todo:
            log = RowLog(log_path)
    if on_plan is not None:
        on_plan(len(jobs), len(jobs) - len(todo))

    def deliver(row: dict) -> None:
        if log is not None:
            log.append(row)
            row = json.loads(json.dumps(json_safe(row)))  # as it reads back from the file
        rows.append(row)
        if on_result is not None:
            on_result(row)

    try:
        if not todo:
            pass
        elif backend == "ray":
            from .sweep_ray import run_ray

            run_ray(spec, todo, dataset, deliver, cancel, address=address, max_retries=max_retries)
        elif spec.workers == 1:
            for cfg in todo:
                if cancel is not None and cancel.is_set():
                    break
                row, result = train_row(cfg, dataset, cancel)
                if result is not None and result.cancelled:
                    break
                deliver(row)
        else:
            _run_pool(todo, dataset, deliver, cancel, workers=spec.workers, threads=spec.threads_per_worker)
    finally:
        if log is not None:
            log.close()
        if out_dir is not None and rows:
            write_results(rows, out_dir, spec)
    return sorted(rows, key=_sort_key)


@contextmanager
def _sigint_ignored_in_children():
    """Ignore SIGINT while submitting (which may spawn workers): a spawned process inherits the ignored
    disposition from its first instruction, so Ctrl-C never prints a traceback from a starting worker. The
    parent decides what Ctrl-C means and stops the workers through their cancel event."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    try:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except (ValueError, OSError):
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _run_pool(jobs: list, dataset, deliver, cancel, *, workers: int, threads: int,
              run_job: Optional[Callable[[object], dict]] = None) -> None:
    """Run ``jobs`` in a pool of ``workers`` spawned processes (``threads`` torch threads each, a copy of
    ``dataset`` in each), ``deliver``-ing each row in this thread as it comes. ``run_job(job) -> row`` runs in
    a worker (a module-level function; default: train one RunConfig); it reads the worker's dataset and cancel
    event from this module (set by ``_worker_init``); a row with ``_cancelled`` true is dropped."""
    run_job = _worker_run if run_job is None else run_job
    ctx = multiprocessing.get_context(SPAWN_METHOD)
    stop = ctx.Event()
    workers = min(workers, len(jobs))
    pool = cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_worker_init,
                                  initargs=(dataset, threads, stop))
    pending = list(jobs)
    running: set = set()
    try:
        while pending or running:
            if cancel is not None and cancel.is_set():
                stop.set()
                pending.clear()
            while pending and len(running) < workers:
                with _sigint_ignored_in_children():
                    running.add(pool.submit(run_job, pending.pop(0)))
            if not running:
                break
            done, running = cf.wait(running, timeout=0.2, return_when=cf.FIRST_COMPLETED)
            for fut in done:
                try:
                    row = fut.result()
                except cf.process.BrokenProcessPool as exc:
                    raise RuntimeError(
                        "a sweep worker process stopped unexpectedly (killed, out of memory, or a script that "
                        "starts a sweep without an \"if __name__ == '__main__':\" guard)") from exc
                if row.pop("_cancelled", False):  # cut short by the cancel request: not a result
                    continue
                deliver(row)
    except BaseException:
        stop.set()
        for fut in running:
            fut.cancel()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True, cancel_futures=True)


# ---------------------------------------------------------------------------------------------------------
# Aggregating and writing
# ---------------------------------------------------------------------------------------------------------

def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


#: Row fields left out of sweep.csv: long records, and where a run ran (the Ray backend's ``ray_node``), which
#: is not a result (it stays in rows.jsonl and sweep.json).
_NOT_IN_CSV = ("history", "versions", "dataset_info", "ray_node")


def rows_csv_text(rows: Sequence[dict]) -> str:
    """The tidy CSV: one row per run, the summary columns then the config flattened as ``config.<name>``."""
    flat = [_flatten(json_safe({k: v for k, v in r.items() if k not in _NOT_IN_CSV}))
            for r in rows]
    columns: list[str] = [c for c in ResultRow.CSV_COLUMNS if any(c in r for r in flat)]
    for r in flat:
        for k in r:
            if k not in columns:
                columns.append(k)
    return csv_text(columns, flat)


def _cell(agg: Optional[Aggregate]) -> str:
    if agg is None or agg.mean is None:
        return "–" if agg is None else f"failed ({agg.n_failed})"
    text = f"{100 * agg.mean:.2f} ± {100 * agg.std:.2f}"
    return text + (" (n = 1)" if agg.n == 1 else "")


def markdown_table(rows: Sequence[dict], aggregated: Optional[Sequence[Aggregate]] = None,
                   models: Optional[Sequence[str]] = None) -> str:
    """Mean ± std test accuracy (%) over seeds: removed-% as rows, models as columns, plus the RF − RigL
    margin at K = 10."""
    agg = list(aggregated) if aggregated is not None else aggregate(rows)
    if models is None:
        present = {a.model for a in agg}
        models = [m for m in list_models() if m in present]
    no_k = {m for m in models if not get_spec(m).uses_k}
    by = {(a.model, a.resonators_per_chain): a for a in agg}
    removed = {a.resonators_per_chain: a.removed_synapses_pct for a in agg}
    n_inputs = max((int(r.get("n_inputs", 0) or 0) for r in rows), default=0) or max(
        a.resonators_per_chain for a in agg)
    fixed = {m: next((a for a in agg if a.model == m), None) for m in no_k}
    ks = sorted({a.resonators_per_chain for a in agg if a.model not in no_k} or
                {a.resonators_per_chain for a in agg}, reverse=True)
    datasets = sorted({str(a.dataset) for a in agg})
    evaluated = sorted({str(a.evaluated_on) for a in agg if a.evaluated_on}) or ["test"]
    seeds = sorted({s for a in agg for s in a.seeds})
    lines = [f"# Accuracy vs. synapses removed ({', '.join(datasets)})", "",
             f"Mean ± std {'/'.join(evaluated)} accuracy (%) over seeds {', '.join(map(str, seeds))}; "
             f"K resonators per chain = K weights per class; removed = 100 (1 − K/{n_inputs}).", ""]
    header = ["removed %", "K", *models]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join(["---:"] * 2 + [":---:"] * len(models)) + "|")
    for k in ks:
        cells = [f"{removed[k]:.2f}", str(k)]
        for m in models:
            cells.append(_cell(fixed[m] if m in no_k else by.get((m, k))))
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    for m in sorted(no_k):
        lines.append(f"{get_spec(m).label} uses every synapse whatever K: it runs once per seed (recorded at "
                     f"K = {n_inputs}) and is repeated on every row for reference.")
        lines.append("")
    lines.append(f"## Margins at K = {REFERENCE_K} ({removed_synapses_pct(REFERENCE_K, n_inputs):.2f} % removed)")
    lines.append("")
    lines.extend(_margin_lines(by, fixed.get("dense")))
    return "\n".join(lines) + "\n"


def _margin_lines(by: dict, dense: Optional[Aggregate]) -> list[str]:
    def mean(model: str) -> Optional[float]:
        a = dense if model == "dense" else by.get((model, REFERENCE_K))
        return None if a is None or a.mean is None else 100.0 * a.mean

    out = []
    rigl = mean("rigl")
    for rf in ("rf", "rf-input"):
        v = mean(rf)
        if v is not None and rigl is not None:
            out.append(f"- {get_spec(rf).label} − RigL ({rf} − rigl): {v - rigl:+.2f} points "
                       f"({v:.2f} % vs {rigl:.2f} %); "
                       f"paper: +{PAPER_RF_MINUS_SPARSE:.2f} points against its sparse-training baseline.")
        elif rf == "rf":
            out.append(f"- RF − RigL: not available (needs rf and rigl runs at K = {REFERENCE_K}).")
    d, rfi = mean("dense"), mean("rf-input")
    if d is not None and rfi is not None:
        out.append(f"- Dense − RF with trained inputs (dense − rf-input): {d - rfi:+.2f} points; "
                   f"paper: +{PAPER_DENSE_MINUS_RF_INPUT:.2f} points.")
    return out


def network_table(rows: Sequence[dict], aggregated: Optional[Sequence[Aggregate]] = None) -> str:
    """Mean ± std accuracy (%) against the whole network's synapse count (resonators for RF, active weights
    for the baselines), one line per model and layer shape: how single-layer and multilayer networks compare
    at a given budget."""
    agg = [a for a in (aggregated if aggregated is not None else aggregate(rows)) if a.mean is not None]
    n_in = {str(r.get("dataset")): (int(r.get("n_inputs") or 0), int(r.get("n_classes") or 0)) for r in rows}
    evaluated = sorted({str(a.evaluated_on) for a in agg if a.evaluated_on}) or ["test"]
    lines = ["# Accuracy vs. synapses in the whole network", "",
             f"Mean ± std {'/'.join(evaluated)} accuracy (%) over seeds; synapses = resonators (RF) or active "
             f"weights (software baselines), all layers together.", ""]
    for dataset in sorted({str(a.dataset) for a in agg}):
        n, c = n_in.get(dataset, (0, 0))
        lines += [f"## {dataset}", "", "| model | layers | K per layer | synapses | accuracy % | seeds |",
                  "|---|---|---|---:|:---:|---:|"]
        for a in sorted((a for a in agg if str(a.dataset) == dataset),
                        key=lambda a: (a.synapses or 0, a.model)):
            shape = "-".join(str(v) for v in (n, *a.hidden, c))
            spec = get_spec(a.model)
            ks = ",".join(map(str, a.layer_ks or (a.resonators_per_chain,))) if spec.uses_k else "all"
            lines.append(f"| {spec.short_label} | {shape} | {ks} | {a.synapses or 0:,} | {_cell(a)} | {a.n} |")
        lines.append("")
    return "\n".join(lines) + "\n"


def sweep_document(rows: Sequence[dict], spec: Optional[SweepSpec] = None) -> dict:
    return {"format": "rfexplorer-sweep", "format_version": 1, "created": utc_now_iso(),
            "versions": software_versions(), "spec": spec.to_dict() if spec is not None else None,
            "aggregate": [a.to_dict() for a in aggregate(rows)], "rows": list(rows)}


def write_results(rows: Sequence[dict], out_dir, spec: Optional[SweepSpec] = None) -> dict[str, Path]:
    """Write ``sweep.csv``, ``sweep_table.md`` and ``sweep.json`` into ``out_dir`` (created if needed) as one
    group (:func:`engine.files.atomic_write_files`: all new, or all as they were; the JSON is renamed last).
    Returns {'csv': path, 'json': path, 'md': path}."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = result_paths(out)
    rows = sorted(rows, key=_sort_key)
    doc = sweep_document(rows, spec)
    models = [m for m in spec.models] if spec is not None else None
    agg = aggregate(rows)
    multilayer = any(r.get("hidden") for r in rows)
    table = network_table(rows, agg) if multilayer else markdown_table(rows, agg, models)
    atomic_write_files([(paths["csv"], rows_csv_text(rows).encode("utf-8")), (paths["md"], table.encode("utf-8")),
                        (paths["json"], dumps_json(doc).encode("utf-8"))])
    return paths


__all__ = ["BACKENDS", "DEFAULT_KS", "DEFAULT_SEEDS", "ROWS_FILE", "RowLog", "SweepSpec",
           "dataset_identity", "estimated_cost", "failed_row", "finished_rows", "read_rows_log", "result_paths",
           "settings_key", "markdown_table", "network_table", "result_row", "rows_csv_text", "run_sweep",
           "sweep_document", "write_results"]
