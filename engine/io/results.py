"""What runs produce: a :class:`RunResult` per run, flattened to one :class:`ResultRow` type for tables, and
:func:`aggregate`, the one place where rows are averaged over seeds.

Every result records the full resolved settings tree (``RunConfig.to_dict()``) and the software and machine
that produced it (:func:`software_versions`): float sums differ between CPUs and BLAS builds, so the same
seed reproduces digit for digit on one machine, not necessarily on another.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import functools
import math
import platform
import statistics
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional, Sequence, cast

from engine.config.run_config import RunConfig, remaining_synapses_pct, removed_synapses_pct
from engine.core.stats import mean_std


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _blas() -> str:
    import torch

    try:
        config = torch.__config__.show()
    except Exception:  # noqa: BLE001 - informational only
        return "unknown"
    for line in config.splitlines():
        line = line.strip()
        if line.startswith("- BLAS_INFO") or line.startswith("BLAS_INFO"):
            return line.split("=", 1)[-1].strip()
    for name in ("mkl", "openblas", "accelerate", "blis"):
        if name in config.lower():
            return name
    return "unknown"


@functools.lru_cache(maxsize=1)
def software_versions() -> dict[str, str]:
    """Versions of rfexplorer and the numerical stack, and the CPU and BLAS, recorded in every result."""
    import numpy
    import torch

    from engine import __version__

    try:  # the CPU kernels ATen dispatches to (DEFAULT, AVX2, AVX512, ...): float sums differ between them
        aten_cpu = str(torch.backends.cpu.get_cpu_capability())
    except Exception:  # noqa: BLE001 - informational only (older torch)
        aten_cpu = "unknown"
    return {
        "rfexplorer": __version__,
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "cpu": _cpu_name(),
        "blas": _blas(),
        "torch_threads": str(torch.get_num_threads()),
        "aten_cpu_capability": aten_cpu,
    }


def utc_now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def _utf8_text(text) -> str:
    """``str(text)`` with undecodable file-name bytes (surrogate escapes) shown as ``\\xNN``: valid UTF-8."""
    text = str(text)
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def dataset_record(ds) -> dict:
    """What a result records about its dataset: name, shape, class names, where it came from and how its
    features were scaled to input powers (texts made valid UTF-8, e.g. a file name with undecodable bytes)."""
    names = getattr(ds, "class_names", None) or [str(c) for c in range(ds.n_classes)]
    return {
        "name": _utf8_text(ds.name),
        "n_inputs": int(ds.n_inputs),
        "n_classes": int(ds.n_classes),
        "n_train": int(len(ds.train_y)),
        "n_test": int(len(ds.test_y)),
        "class_names": [_utf8_text(c) for c in names],
        "image_shape": list(ds.image_shape) if getattr(ds, "image_shape", None) else None,
        "scaling": dict(getattr(ds, "scaling", None) or {}),
        "source": _utf8_text(getattr(ds, "source", "")),
    }


@dataclass
class RunResult:
    """The outcome of one training run."""

    config: RunConfig
    """The resolved settings of the run."""
    test_accuracy: float  #: fraction in [0, 1], on the test set (or the validation split when configured)
    train_seconds: float
    epochs_completed: int
    history: list = field(default_factory=list)  #: [(epoch, loss, train_acc, test_acc), ...]
    rewiring_events: int = 0
    synapses: int = 0  #: synapses in use at the end (non-zero weights, or resonators)
    cancelled: bool = False
    n_inputs: int = 784
    n_classes: int = 10
    evaluated_on: str = "test"
    dataset_info: dict = field(default_factory=dict)
    versions: dict = field(default_factory=software_versions)
    created: str = field(default_factory=utc_now_iso)
    #: counts on the evaluated set (``evaluated_on``): row = true class, column = predicted; [C][C] ints
    confusion: Optional[list] = None
    #: one dict per epoch: epoch, train_loss, train_accuracy, then val_loss and val_accuracy (validation split) or
    #: test_accuracy (engine.training.loop); ``history`` keeps the tuples
    epoch_metrics: list = field(default_factory=list)
    model: Optional[Any] = field(default=None, repr=False, compare=False)
    """The trained module, with no training state left on it (not serialised)."""

    @property
    def resonators_per_chain(self) -> int:
        """K as recorded: the configured K, or N for models that use every input."""
        return self.config.resonators_per_chain if self.config.spec.uses_k else self.n_inputs

    @property
    def remaining_synapses_pct(self) -> float:
        return remaining_synapses_pct(self.resonators_per_chain, self.n_inputs)

    def row(self) -> "ResultRow":
        return ResultRow.from_result(self)

    def summary(self) -> dict:
        """One flat, JSON-safe row without the nested settings (the CLI's --json line)."""
        d = self.row().to_dict()
        for key in ("config", "versions", "history", "dataset_info", "confusion", "epoch_metrics"):
            d.pop(key, None)
        return d

    def to_dict(self) -> dict:
        return self.row().to_dict()


@dataclass(frozen=True)
class ResultRow:
    """One run as a row of a results table (sweeps, the app's session, CSV and JSON files).

    ``test_accuracy`` is None for a failed run, whose reason is in ``error``.
    """

    model: str
    dataset: str
    resonators_per_chain: int
    seed: int
    test_accuracy: Optional[float]
    n_inputs: int = 784
    n_classes: int = 10
    remaining_synapses_pct: float = 0.0
    removed_synapses_pct: float = 0.0
    evaluated_on: str = "test"
    epochs: int = 0
    epochs_completed: Optional[int] = None
    train_seconds: Optional[float] = None
    rewiring_events: Optional[int] = None
    synapses: Optional[int] = None
    budget: str = "per-output"
    cancelled: bool = False
    error: Optional[str] = None
    config: dict = field(default_factory=dict)
    versions: dict = field(default_factory=dict)
    created: str = ""
    history: list = field(default_factory=list)
    dataset_info: dict = field(default_factory=dict)
    hidden: tuple = ()
    """Hidden layer sizes (empty for a single-layer network)."""
    layer_ks: tuple = ()
    """K of every layer, first to last (multilayer networks; empty for a single layer)."""
    confusion: Optional[list] = None
    """Confusion matrix on the evaluated set: [true class][predicted class] counts (None: not recorded)."""
    epoch_metrics: list = field(default_factory=list)
    """Per-epoch train and evaluated-split loss and accuracy (:attr:`RunResult.epoch_metrics`)."""

    #: Columns of the CSV form, in order (config.* columns follow).
    CSV_COLUMNS = (
        "model",
        "dataset",
        "resonators_per_chain",
        "remaining_synapses_pct",
        "removed_synapses_pct",
        "test_accuracy",
        "evaluated_on",
        "seed",
        "epochs",
        "epochs_completed",
        "train_seconds",
        "rewiring_events",
        "synapses",
        "budget",
        "cancelled",
        "error",
        "n_inputs",
        "n_classes",
        "hidden",
        "layer_ks",
    )

    @property
    def ok(self) -> bool:
        """A finished, successful run with a finite accuracy."""
        acc = self.test_accuracy
        return self.error is None and not self.cancelled and isinstance(acc, (int, float)) and math.isfinite(acc)

    @classmethod
    def from_result(cls, result: RunResult) -> "ResultRow":
        cfg, k, n = result.config, result.resonators_per_chain, result.n_inputs
        return cls(
            model=cfg.model,
            dataset=cfg.dataset,
            resonators_per_chain=k,
            seed=cfg.seed,
            test_accuracy=round(float(result.test_accuracy), 6),
            n_inputs=n,
            n_classes=result.n_classes,
            remaining_synapses_pct=round(remaining_synapses_pct(k, n), 4),
            removed_synapses_pct=round(removed_synapses_pct(k, n), 4),
            evaluated_on=result.evaluated_on,
            epochs=cfg.epochs,
            epochs_completed=result.epochs_completed,
            train_seconds=round(result.train_seconds, 3),
            rewiring_events=result.rewiring_events,
            synapses=result.synapses,
            budget=cfg.budget.value,
            cancelled=result.cancelled,
            error=None,
            config=cfg.to_dict(),
            versions=dict(result.versions),
            created=result.created,
            history=[list(h) for h in result.history],
            dataset_info=dict(result.dataset_info),
            confusion=[list(r) for r in result.confusion] if result.confusion is not None else None,
            epoch_metrics=[dict(e) for e in result.epoch_metrics],
            **_layer_fields(cfg),
        )

    @classmethod
    def failed(cls, cfg: RunConfig, message: str, n_inputs: int, n_classes: int) -> "ResultRow":
        """The row of a run that failed (e.g. diverged): no accuracy, the reason in ``error``."""
        k = cfg.resonators_per_chain if cfg.spec.uses_k else n_inputs
        return cls(
            model=cfg.model,
            dataset=cfg.dataset,
            resonators_per_chain=k,
            seed=cfg.seed,
            test_accuracy=None,
            n_inputs=n_inputs,
            n_classes=n_classes,
            remaining_synapses_pct=round(remaining_synapses_pct(k, n_inputs), 4),
            removed_synapses_pct=round(removed_synapses_pct(k, n_inputs), 4),
            evaluated_on="validation" if cfg.validation_fraction > 0 else "test",
            epochs=cfg.epochs,
            budget=cfg.budget.value,
            error=message,
            config=cfg.resolved().to_dict(),
            versions=dict(software_versions()),
            created=utc_now_iso(),
            **_layer_fields(cfg),
        )

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ResultRow":
        """A row from its dict form; unknown keys are ignored (rows written by older versions load)."""
        if not isinstance(d, dict):
            raise ValueError("a result row must be a JSON object")
        names = {f.name for f in dataclasses.fields(cls)}
        missing = [k for k in ("model", "resonators_per_chain") if k not in d]
        if missing:
            raise ValueError(f"a result row is missing {', '.join(missing)}")
        values = {k: v for k, v in d.items() if k in names}
        values.setdefault("dataset", "")
        values.setdefault("seed", 0)
        values.setdefault("test_accuracy", None)
        for key in ("hidden", "layer_ks"):
            if key in values:
                values[key] = tuple(int(v) for v in values[key] or ())
        if "removed_synapses_pct" not in d and "n_inputs" in d:
            values["removed_synapses_pct"] = removed_synapses_pct(int(d["resonators_per_chain"]), int(d["n_inputs"]))
        return cls(**values)

    def with_(self, **changes) -> "ResultRow":
        return dataclasses.replace(self, **changes)


def _layer_fields(cfg: RunConfig) -> dict:
    """The row's layer columns: empty for a single-layer network."""
    if not cfg.hidden:
        return {}
    return {"hidden": tuple(cfg.hidden), "layer_ks": tuple(cfg.layer_ks)}


@dataclass(frozen=True)
class Aggregate:
    """Accuracy of one (dataset, model, K, budget, hidden layers) group over seeds: mean and sample std (std
    0 when n = 1)."""

    dataset: str
    model: str
    resonators_per_chain: int
    budget: str
    removed_synapses_pct: float
    remaining_synapses_pct: float
    evaluated_on: Optional[str]
    n: int
    """Successful runs averaged."""
    n_failed: int
    mean: Optional[float]
    std: Optional[float]
    """Sample standard deviation (ddof 1) over seeds; 0.0 for a single run; None without a successful run."""
    min: Optional[float]
    max: Optional[float]
    seeds: tuple
    mean_train_seconds: Optional[float]
    hidden: tuple = ()
    """Hidden layer sizes (empty: single layer)."""
    layer_ks: tuple = ()
    """K of every layer (multilayer networks)."""
    synapses: Optional[int] = None
    """Resonators (RF) or active weights (baselines) in the whole network."""

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["seeds"] = list(self.seeds)
        d["hidden"], d["layer_ks"] = list(self.hidden), list(self.layer_ks)
        return d


def as_rows(rows: Iterable[Any]) -> list[ResultRow]:
    """ResultRow objects from rows given as ResultRow, RunResult or dicts."""
    out = []
    for r in rows:
        if isinstance(r, ResultRow):
            out.append(r)
        elif isinstance(r, RunResult):
            out.append(r.row())
        else:
            out.append(ResultRow.from_dict(r))
    return out


def aggregate(rows: Iterable[Any], model_order: Sequence[str] = ()) -> list[Aggregate]:
    """Mean and sample std of the accuracy over seeds per (dataset, model, K, budget), successful runs only.

    Dense-style models (no K) are grouped at K = N. Groups come sorted by dataset, ``model_order`` (default:
    the registry's order), then K.
    """
    if not model_order:
        from engine.config.models import list_models

        model_order = list_models()
    order = {m: i for i, m in enumerate(model_order)}
    groups: dict[tuple, list[ResultRow]] = {}
    for row in as_rows(rows):
        budget = row.budget if _uses_budget(row.model) else ""
        groups.setdefault(
            (row.dataset, row.model, int(row.resonators_per_chain), budget, tuple(row.hidden), tuple(row.layer_ks)), []
        ).append(row)
    out = []
    for (dataset, model, k, budget, hidden, ks), group in sorted(
        groups.items(),
        key=lambda kv: (
            str(kv[0][0]),
            order.get(kv[0][1], len(order)),
            kv[0][1],
            kv[0][2],
            kv[0][3],
            kv[0][4],
            kv[0][5],
        ),
    ):
        good = [r for r in group if r.ok]
        accs = [float(cast(float, r.test_accuracy)) for r in good]  # r.ok: a finite number
        times = [
            float(r.train_seconds)
            for r in good
            if isinstance(r.train_seconds, (int, float)) and math.isfinite(r.train_seconds)
        ]
        first = group[0]
        mean, std = mean_std(accs) if accs else (None, None)
        out.append(
            Aggregate(
                dataset=dataset,
                model=model,
                resonators_per_chain=k,
                budget=budget,
                removed_synapses_pct=first.removed_synapses_pct,
                remaining_synapses_pct=first.remaining_synapses_pct,
                evaluated_on=good[0].evaluated_on if good else None,
                n=len(accs),
                n_failed=len(group) - len(accs),
                mean=mean,
                std=std,
                min=min(accs) if accs else None,
                max=max(accs) if accs else None,
                seeds=tuple(sorted(r.seed for r in good)),
                mean_train_seconds=statistics.fmean(times) if times else None,
                hidden=hidden,
                layer_ks=ks,
                synapses=first.synapses,
            )
        )
    return out


def _uses_budget(model: str) -> bool:
    from engine.config.models import get_spec

    try:
        spec = get_spec(model)
    except ValueError:
        return True
    return spec.family == "baseline" and spec.uses_k
