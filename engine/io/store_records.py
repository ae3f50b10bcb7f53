"""What the run store keeps of one run: :class:`RunRecord` (a recorded run, read back), the ``runs`` columns of a
result (:func:`record_values`), the per-epoch history as objects (:func:`epoch_history`) and the settings that
differ between records (:func:`differing_settings`). The store itself is :mod:`engine.io.store`."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Mapping, Optional, Sequence, Union

from engine.core.files import dumps_json, json_safe
from engine.io.results import ResultRow, RunResult, utc_now_iso
from engine.io.store_query import StoreError, flatten
from engine.io.store_schema import status_of
from engine.io.topology import result_document

#: What recorded a run.
SOURCES = ("cli", "sweep", "ray", "app", "robustness", "hardware-study", "design")
#: Keys of a ResultRow that are not metrics (kept in their own fields of a record).
_NOT_METRICS = ("config", "versions", "history", "dataset_info", "created", "epoch_metrics")

ResultLike = Union[RunResult, ResultRow]
_MISSING = object()


@dataclass
class RunRecord:
    """One recorded run. ``list`` fills the summary and ``metrics`` (``full=True``: everything but the topology);
    ``get`` fills everything, the topology text included."""

    id: int
    created: str
    recorded: str
    source: str
    model: str
    dataset: str
    status: str  #: ok, failed or cancelled
    test_accuracy: Optional[float]
    evaluated_on: Optional[str]
    train_seconds: Optional[float]
    synapses: Optional[int]
    error: Optional[str]
    metrics: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)  #: the resolved settings tree
    history: list = field(default_factory=list)  #: one dict per epoch
    versions: dict = field(default_factory=dict)
    dataset_info: dict = field(default_factory=dict)
    topology_json: Optional[str] = field(default=None, repr=False)

    def settings(self) -> dict[str, Any]:
        """The settings tree flattened to {dotted path: value}."""
        return dict(flatten(self.config))

    def to_dict(self, *, topology: bool = False) -> dict:
        """The record as a JSON-safe dict (the topology text only if asked)."""
        d = asdict(self)
        if not topology:
            d.pop("topology_json")
        return json_safe(d)

    def to_row(self) -> ResultRow:
        """The record as a result row (the app's session, CSV and JSON tables)."""
        d = {k: v for k, v in self.metrics.items() if k not in _NOT_METRICS}
        d.update(config=self.config, versions=self.versions, dataset_info=self.dataset_info, created=self.created)
        d.setdefault("model", self.model)
        d.setdefault("dataset", self.dataset)
        d.setdefault("resonators_per_chain", self.config.get("resonators_per_chain", 0))
        d.setdefault("seed", self.config.get("seed", 0))
        d["history"] = [_history_tuple(h) for h in self.history]
        return ResultRow.from_dict(d)


def _history_tuple(h: Mapping) -> list:
    """An epoch object as the (epoch, loss, train accuracy, evaluated accuracy) row of RunResult.history."""
    evaluated = h.get("val_accuracy", h.get("test_accuracy"))
    return [h.get("epoch"), h.get("train_loss"), h.get("train_accuracy"), evaluated]


def epoch_history(history: Iterable, evaluated_on: str = "test", detail: Iterable = ()) -> list[dict]:
    """Per-epoch objects: the run's detailed epoch metrics when it has them, else its history rows
    (epoch, train loss, train accuracy, accuracy on the evaluated split)."""
    detail = [dict(d) for d in detail or ()]
    if detail:
        return detail
    prefix = "val" if evaluated_on == "validation" else "test"
    out = []
    for h in history or ():
        epoch, loss, train_acc, acc = (list(h) + [None] * 4)[:4]
        out.append({"epoch": epoch, "train_loss": loss, "train_accuracy": train_acc, f"{prefix}_accuracy": acc})
    return out


def _dumps(value: Any) -> str:
    return json.dumps(json_safe(value), separators=(",", ":"), allow_nan=False)


def loads(text: Optional[str], default: Any) -> Any:
    if not text:
        return default
    try:
        return json.loads(text)
    except ValueError:
        return default


def auto_topology(result: RunResult) -> Optional[str]:
    """The topology-file JSON of a trained result (None without a model, or for one that cannot be written)."""
    if result.model is None or result.cancelled:
        return None
    try:
        return dumps_json(result_document(result))
    except ValueError:  # a model without a topology form
        return None


def record_values(
    item: ResultLike, *, source: str, metrics: Optional[Mapping] = None, recorded: Optional[str] = None
) -> dict:
    """The ``runs`` columns of one result (everything but the id)."""
    if source not in SOURCES:
        raise StoreError(f"unknown run source {source!r} (one of {', '.join(SOURCES)})")
    if isinstance(item, RunResult):
        row = item.row()
        config = item.config.resolved().to_dict()
        detail = getattr(item, "epoch_metrics", ())
    elif isinstance(item, ResultRow):
        row, config, detail = item, dict(item.config), getattr(item, "epoch_metrics", ())
    else:
        raise TypeError(f"a run store records a RunResult or a ResultRow, not {type(item).__name__}")
    m = {k: v for k, v in row.to_dict().items() if k not in _NOT_METRICS}
    history = epoch_history(row.history, row.evaluated_on, detail)
    if history and history[-1].get("train_loss") is not None:
        m["train_loss"] = history[-1]["train_loss"]
    if isinstance(item, RunResult) and math.isfinite(float(item.test_accuracy)):
        m["test_accuracy"] = float(item.test_accuracy)  # full precision (the row rounds to 6 decimals)
    m.update(metrics or {})
    m = json_safe(m)
    return {
        "created": row.created or utc_now_iso(),
        "recorded": recorded or utc_now_iso(),
        "source": source,
        "model": str(row.model),
        "dataset": str(row.dataset)[:500],
        "status": status_of(m),
        "test_accuracy": m.get("test_accuracy"),
        "evaluated_on": m.get("evaluated_on"),
        "train_seconds": m.get("train_seconds"),
        "synapses": m.get("synapses"),
        "error": m.get("error"),
        "config": _dumps(config),
        "metrics": _dumps(m),
        "history": _dumps(history),
        "versions": _dumps(row.versions),
        "dataset_info": _dumps(row.dataset_info),
    }


def differing_settings(records: Sequence[RunRecord]) -> dict[str, list]:
    """{settings path: each record's value (None where it lacks the path)} of the paths whose values differ."""
    flat = [r.settings() for r in records]
    paths = sorted({p for f in flat for p in f})
    out = {}
    for path in paths:
        values = [f.get(path, _MISSING) for f in flat]
        if any(v != values[0] for v in values):
            out[path] = [None if v is _MISSING else v for v in values]
    return out
