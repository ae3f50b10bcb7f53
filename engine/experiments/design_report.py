"""The Pareto front of a design search and its files: ``pareto.csv``, ``pareto.json``, ``pareto.png`` and each
front member's topology file (``front/trial-NNNN.json`` and its lab CSV).

The front is Optuna's (the completed trials no other trial beats in every objective). Only then is each front
member's network evaluated on the test set, once, for the report: the test set never chooses anything.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any, Optional

import optuna
from optuna.trial import FrozenTrial, TrialState

from engine.core.files import atomic_write_bytes, atomic_write_text, dumps_json, json_safe
from engine.core.tables import write_csv
from engine.experiments.design import ATTR_ERROR, ATTR_RUN_ID, ATTR_SETTINGS, DesignPlan, finished, trial_topology
from engine.experiments.evaluation import evaluate_topology
from engine.io.topology import write_topology_pair

FRONT_FOLDER = "front"
FILES = ("pareto.csv", "pareto.json", "pareto.png")


def front_trials(study: optuna.Study, plan: DesignPlan) -> list[FrozenTrial]:
    """The Pareto front, best first in the first objective."""
    sign = -1.0 if plan.objectives[0].direction == "maximize" else 1.0
    return sorted(study.best_trials, key=lambda t: (sign * t.values[0], t.number))


def _topology_name(trial: FrozenTrial) -> str:
    return f"trial-{trial.number:04d}.json"


def front_rows(study: optuna.Study, plan: DesignPlan, dataset, networks: Optional[dict] = None, say=None) -> list:
    """One row per front member: its trial, searched settings, objectives and test accuracy (measured here)."""
    rows = []
    for t in front_trials(study, plan):
        topo = trial_topology(t, plan, networks or {})
        test_acc = evaluate_topology(topo, dataset, split="test")
        row: dict[str, Any] = {"trial": t.number}
        settings = t.user_attrs.get(ATTR_SETTINGS, {})
        for d in plan.dims:
            row[d.path] = settings.get(d.path)
        for o, v in zip(plan.objectives, t.values):
            row.setdefault(o.name, v)  # a searched setting keeps its value as set
        row["test_accuracy"] = test_acc
        row["run_id"] = t.user_attrs.get(ATTR_RUN_ID)
        row["topology"] = f"{FRONT_FOLDER}/{_topology_name(t)}"
        row["_topology"] = topo
        rows.append(row)
        if say is not None:
            say(f"front: trial {t.number}: test accuracy {100 * test_acc:.2f} %")
    return rows


def _columns(plan: DesignPlan) -> list[str]:
    cols = ["trial", *[d.path for d in plan.dims]]
    cols += [o.name for o in plan.objectives if o.name not in cols]
    return cols + ["test_accuracy", "run_id", "topology"]


def _cell(value: Any) -> Any:
    if isinstance(value, list):
        return "+".join(str(v) for v in value) if value else "0"
    if isinstance(value, float) and math.isinf(value):
        return "unlimited"
    return value


def trial_counts(study: optuna.Study) -> dict:
    trials = study.get_trials(deepcopy=False)
    return {
        "finished": len(finished(trials)),
        "complete": sum(t.state == TrialState.COMPLETE for t in trials),
        "pruned": sum(t.state == TrialState.PRUNED for t in trials),
        "failed": sum(t.state == TrialState.FAIL and ATTR_ERROR in t.user_attrs for t in trials),
    }


def _front_png(study: optuna.Study, plan: DesignPlan, rows: list) -> bytes:
    """The front against every other objective: all completed trials in grey, the front in colour."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # heavy, and only for this figure
    from matplotlib.figure import Figure

    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    first, others = plan.objectives[0], plan.objectives[1:]
    panels = others or [None]
    fig = Figure(figsize=(4.2 * len(panels), 3.6), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    front_numbers = {r["trial"] for r in rows}
    for i, o in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1)

        def xs(t: FrozenTrial, i: int = i, o: Any = o) -> float:
            return t.values[i + 1] if o is not None else t.number

        rest = [t for t in done if t.number not in front_numbers]
        front = sorted((t for t in done if t.number in front_numbers), key=xs)
        ax.scatter([xs(t) for t in rest], [t.values[0] for t in rest], s=14, color="0.7", label="trials")
        style = "o-" if len(plan.objectives) == 2 else "o"  # a line joins the front only where it is one curve
        ax.plot([xs(t) for t in front], [t.values[0] for t in front], style, color="tab:red", ms=5, label="front")
        ax.set_xlabel(o.name if o is not None else "trial")
        ax.set_ylabel(first.name)
        if o is not None and o.name.endswith(("resonators", "range")) and all(xs(t) > 0 for t in done):
            ax.set_xscale("log")
        ax.grid(alpha=0.3)
    fig.axes[0].legend(loc="best", fontsize="small")
    fig.suptitle(f"{plan.study_name}: Pareto front ({len(rows)} of {len(done)} completed trials)", fontsize="medium")
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def write_front(out_dir: Path, study: optuna.Study, plan: DesignPlan, rows: list) -> list[Path]:
    """``pareto.csv``, ``pareto.json``, ``pareto.png`` and the front's topology files into ``out_dir``; the
    topology files of trials no longer on the front are removed. Returns the paths written."""
    out_dir = Path(out_dir)
    front_dir = out_dir / FRONT_FOLDER
    front_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for r in rows:
        path = front_dir / Path(r["topology"]).name
        written += list(write_topology_pair(r["_topology"], path, path.with_suffix(".csv")))
    keep = {p.name for p in written}
    for old in front_dir.glob("trial-*.*"):
        if old.suffix in (".json", ".csv") and old.name not in keep:
            old.unlink()
    cols = _columns(plan)
    written.append(write_csv(out_dir / "pareto.csv", cols, [[_cell(r.get(c)) for c in cols] for r in rows]))
    doc = {
        "study": plan.study_name,
        "objectives": [o.describe() for o in plan.objectives],
        "space": [d.text for d in plan.dims],
        "trials": {"asked": plan.trials, **trial_counts(study)},
        "settings": plan.base,
        "test_accuracy": "measured once per front member after the search; the search scored on validation",
        "front": [{c: r.get(c) for c in cols} for r in rows],
    }
    written.append(atomic_write_text(out_dir / "pareto.json", dumps_json(json_safe(doc))))
    written.append(atomic_write_bytes(out_dir / "pareto.png", _front_png(study, plan, rows)))
    return written


__all__ = ["FILES", "FRONT_FOLDER", "front_rows", "front_trials", "trial_counts", "write_front"]
