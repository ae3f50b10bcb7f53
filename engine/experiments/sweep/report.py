"""What a sweep writes: the tidy CSV, the Markdown tables (accuracy against synapses removed, or against the
whole network's synapses for multilayer sweeps), ``sweep.json``, and the per-value table of ``sweep --vary``.

:func:`write_results` writes ``sweep.csv``, ``sweep_table.md`` and ``sweep.json`` into a folder as one group;
averages over seeds come from :func:`engine.io.results.aggregate`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional, Sequence

from engine.config.models import get_spec, list_models
from engine.config.run_config import removed_synapses_pct
from engine.core.files import atomic_write_files, atomic_write_text, dumps_json, json_safe
from engine.core.stats import mean_std
from engine.core.tables import csv_text
from engine.experiments.sweep.spec import SweepSpec
from engine.io.results import Aggregate, ResultRow, aggregate, software_versions, utc_now_iso

#: K of the reference comparison (1.28 % remaining synapses on MNIST).
REFERENCE_K = 10
#: Published margins at K = 10 (seed abstract), quoted in the Markdown table.
PAPER_RF_MINUS_SPARSE = 13.21
PAPER_DENSE_MINUS_RF_INPUT = 3.71


def sort_key(row: dict):
    """Rows in report order: model (registry order), hidden layers, K, seed."""
    order: dict[Optional[str], int] = {m: i for i, m in enumerate(list_models())}
    seed = row.get("seed")
    return (
        order.get(row.get("model"), len(order)),
        tuple(row.get("hidden") or ()),
        row.get("resonators_per_chain") or 0,
        seed if isinstance(seed, int) else -1,
    )


#: Per-value summary of a sweep with varied settings (the standard tables group by model, K and layers only).
VARY_FILE = "sweep_vary.csv"


def _at_path(mapping, path: str):
    for part in path.split("."):
        if not isinstance(mapping, dict) or part not in mapping:
            return None
        mapping = mapping[part]
    return mapping


def vary_table(rows: Sequence[dict], paths: Sequence[str]) -> tuple[list[str], list[list]]:
    """(columns, table): mean and sample std of the accuracy over seeds per model, K, hidden layers and value
    of each varied setting (read from each row's recorded config)."""
    groups: dict[tuple, list[float]] = {}
    order = {m: i for i, m in enumerate(list_models())}
    for row in rows:
        if row.get("test_accuracy") is None or row.get("error") is not None:
            continue
        cfg = row.get("config") or {}
        key = (
            row.get("model"),
            row.get("resonators_per_chain"),
            tuple(row.get("hidden") or ()),
            tuple(json.dumps(_at_path(cfg, p)) for p in paths),
        )
        groups.setdefault(key, []).append(float(row["test_accuracy"]))
    columns = ["model", "resonators_per_chain", "hidden", *paths, "mean", "std", "n"]
    table = []
    for (model, k, hidden, values), accs in sorted(
        groups.items(), key=lambda kv: (order.get(kv[0][0], len(order)), kv[0][1] or 0, kv[0][2], kv[0][3])
    ):
        table.append(
            [model, k, " ".join(map(str, hidden)), *[json.loads(v) for v in values], *mean_std(accs), len(accs)]
        )
    return columns, table


def write_vary_table(rows: Sequence[dict], paths: Sequence[str], out_dir) -> Path:
    """Write :func:`vary_table` to ``OUT/sweep_vary.csv`` (atomically); returns its path."""
    columns, table = vary_table(rows, paths)
    return atomic_write_text(Path(out_dir) / VARY_FILE, csv_text(columns, table))


def result_paths(out_dir) -> dict[str, Path]:
    """Where :func:`write_results` writes into ``out_dir``."""
    out = Path(out_dir)
    return {"csv": out / "sweep.csv", "json": out / "sweep.json", "md": out / "sweep_table.md"}


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
    flat = [_flatten(json_safe({k: v for k, v in r.items() if k not in _NOT_IN_CSV})) for r in rows]
    columns: list[str] = [c for c in ResultRow.CSV_COLUMNS if any(c in r for r in flat)]
    for r in flat:
        for k in r:
            if k not in columns:
                columns.append(k)
    return csv_text(columns, flat)


def _cell(agg: Optional[Aggregate]) -> str:
    if agg is None or agg.mean is None or agg.std is None:  # std is None exactly when mean is
        return "–" if agg is None else f"failed ({agg.n_failed})"
    text = f"{100 * agg.mean:.2f} ± {100 * agg.std:.2f}"
    return text + (" (n = 1)" if agg.n == 1 else "")


def markdown_table(
    rows: Sequence[dict], aggregated: Optional[Sequence[Aggregate]] = None, models: Optional[Sequence[str]] = None
) -> str:
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
        a.resonators_per_chain for a in agg
    )
    fixed = {m: next((a for a in agg if a.model == m), None) for m in no_k}
    ks = sorted(
        {a.resonators_per_chain for a in agg if a.model not in no_k} or {a.resonators_per_chain for a in agg},
        reverse=True,
    )
    datasets = sorted({str(a.dataset) for a in agg})
    evaluated = sorted({str(a.evaluated_on) for a in agg if a.evaluated_on}) or ["test"]
    seeds = sorted({s for a in agg for s in a.seeds})
    lines = [
        f"# Accuracy vs. synapses removed ({', '.join(datasets)})",
        "",
        f"Mean ± std {'/'.join(evaluated)} accuracy (%) over seeds {', '.join(map(str, seeds))}; "
        f"K resonators per chain = K weights per class; removed = 100 (1 − K/{n_inputs}).",
        "",
    ]
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
        lines.append(
            f"{get_spec(m).label} uses every synapse whatever K: it runs once per seed (recorded at "
            f"K = {n_inputs}) and is repeated on every row for reference."
        )
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
            out.append(
                f"- {get_spec(rf).label} − RigL ({rf} − rigl): {v - rigl:+.2f} points "
                f"({v:.2f} % vs {rigl:.2f} %); "
                f"paper: +{PAPER_RF_MINUS_SPARSE:.2f} points against its sparse-training baseline."
            )
        elif rf == "rf":
            out.append(f"- RF − RigL: not available (needs rf and rigl runs at K = {REFERENCE_K}).")
    d, rfi = mean("dense"), mean("rf-input")
    if d is not None and rfi is not None:
        out.append(
            f"- Dense − RF with trained inputs (dense − rf-input): {d - rfi:+.2f} points; "
            f"paper: +{PAPER_DENSE_MINUS_RF_INPUT:.2f} points."
        )
    return out


def network_table(rows: Sequence[dict], aggregated: Optional[Sequence[Aggregate]] = None) -> str:
    """Mean ± std accuracy (%) against the whole network's synapse count (resonators for RF, active weights
    for the baselines), one line per model and layer shape: how single-layer and multilayer networks compare
    at a given budget."""
    agg = [a for a in (aggregated if aggregated is not None else aggregate(rows)) if a.mean is not None]
    n_in = {str(r.get("dataset")): (int(r.get("n_inputs") or 0), int(r.get("n_classes") or 0)) for r in rows}
    evaluated = sorted({str(a.evaluated_on) for a in agg if a.evaluated_on}) or ["test"]
    lines = [
        "# Accuracy vs. synapses in the whole network",
        "",
        f"Mean ± std {'/'.join(evaluated)} accuracy (%) over seeds; synapses = resonators (RF) or active "
        f"weights (software baselines), all layers together.",
        "",
    ]
    for dataset in sorted({str(a.dataset) for a in agg}):
        n, c = n_in.get(dataset, (0, 0))
        lines += [
            f"## {dataset}",
            "",
            "| model | layers | K per layer | synapses | accuracy % | seeds |",
            "|---|---|---|---:|:---:|---:|",
        ]
        for a in sorted((a for a in agg if str(a.dataset) == dataset), key=lambda a: (a.synapses or 0, a.model)):
            shape = "-".join(str(v) for v in (n, *a.hidden, c))
            spec = get_spec(a.model)
            ks = ",".join(map(str, a.layer_ks or (a.resonators_per_chain,))) if spec.uses_k else "all"
            lines.append(f"| {spec.short_label} | {shape} | {ks} | {a.synapses or 0:,} | {_cell(a)} | {a.n} |")
        lines.append("")
    return "\n".join(lines) + "\n"


def sweep_document(rows: Sequence[dict], spec: Optional[SweepSpec] = None) -> dict:
    return {
        "format": "rfexplorer-sweep",
        "format_version": 1,
        "created": utc_now_iso(),
        "versions": software_versions(),
        "spec": spec.to_dict() if spec is not None else None,
        "aggregate": [a.to_dict() for a in aggregate(rows)],
        "rows": list(rows),
    }


def write_results(rows: Sequence[dict], out_dir, spec: Optional[SweepSpec] = None) -> dict[str, Path]:
    """Write ``sweep.csv``, ``sweep_table.md`` and ``sweep.json`` into ``out_dir`` (created if needed) as one
    group (:func:`engine.core.files.atomic_write_files`: all new, or all as they were; the JSON is renamed last).
    Returns {'csv': path, 'json': path, 'md': path}."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = result_paths(out)
    rows = sorted(rows, key=sort_key)
    doc = sweep_document(rows, spec)
    models = [m for m in spec.models] if spec is not None else None
    agg = aggregate(rows)
    multilayer = any(r.get("hidden") for r in rows)
    table = network_table(rows, agg) if multilayer else markdown_table(rows, agg, models)
    atomic_write_files(
        [
            (paths["csv"], rows_csv_text(rows).encode("utf-8")),
            (paths["md"], table.encode("utf-8")),
            (paths["json"], dumps_json(doc).encode("utf-8")),
        ]
    )
    return paths


__all__ = [
    "PAPER_DENSE_MINUS_RF_INPUT",
    "PAPER_RF_MINUS_SPARSE",
    "REFERENCE_K",
    "VARY_FILE",
    "markdown_table",
    "network_table",
    "result_paths",
    "rows_csv_text",
    "sort_key",
    "sweep_document",
    "vary_table",
    "write_results",
    "write_vary_table",
]
