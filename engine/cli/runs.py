"""``runs``: the run store (engine.io.store) from the command line: list, show, compare, export and delete the runs
that train, export, sweep, robustness, hardware-study, the app and design recorded.

Examples::

    rfexplorer-cli runs list --where model=rf-input --where device.tuning_bits=8 --limit 20
    rfexplorer-cli runs show 12
    rfexplorer-cli runs compare 12 15 17
    rfexplorer-cli runs export 12 --out exported/
    rfexplorer-cli runs delete --where source=sweep --yes
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional, Sequence

from engine.cli.common import EXIT_OK, CliError, info, positive_int
from engine.core.files import atomic_write_text, check_output_folder, dumps_json
from engine.core.messages import clipped
from engine.io.store import (
    RunRecord,
    RunStore,
    StoreError,
    differing_settings,
    open_store,
    sqlite_file,
    store_url,
    topology_of,
)
from engine.io.topology import csv_path_for, write_topology_pair

#: Runs ``list`` prints unless told otherwise.
DEFAULT_LIMIT = 50
#: Metrics ``show`` and ``compare`` print first, in this order (the others follow by name).
MAIN_METRICS = (
    "test_accuracy",
    "evaluated_on",
    "train_loss",
    "resonators_per_chain",
    "removed_synapses_pct",
    "synapses",
    "train_seconds",
    "epochs_completed",
    "rewiring_events",
    "cancelled",
    "error",
)
_NOT_SHOWN = (
    "confusion",
    "config",
    "history",
    "versions",
    "dataset_info",
    "model",
    "dataset",
    "seed",
    "epochs",
    "budget",
)


def _store_option(p) -> None:
    p.add_argument(
        "--store",
        default=None,
        metavar="PATH_OR_URL",
        help="the run store: a SQLite file or database URL (default: $RFEXPLORER_STORE, else the per-user one)",
    )
    p.add_argument("--json", action="store_true", help="make the last line of stdout one JSON object")


def _where_option(p, what: str) -> None:
    p.add_argument(
        "--where",
        action="append",
        default=[],
        metavar="PATH=VALUE",
        help=f"{what} whose setting PATH (model, dataset, device.alpha, plasticity.interval_steps, ... or source, "
        "status) equals VALUE; repeatable (all must hold)",
    )


def add_parser(sub) -> None:
    p = sub.add_parser(
        "runs",
        help="list, show, compare, export or delete recorded runs",
        description="The runs recorded in the run store (train, export, sweep, robustness, hardware-study, "
        "the app and design record every finished run unless given --no-store).",
    )
    rs = p.add_subparsers(dest="runs_command", metavar="ACTION", parser_class=type(p))
    q = rs.add_parser("list", help="list recorded runs, newest first", description="List recorded runs.")
    _where_option(q, "only runs")
    q.add_argument(
        "--limit", type=positive_int, default=DEFAULT_LIMIT, help=f"at most N runs (default {DEFAULT_LIMIT})"
    )
    q.add_argument("--all", action="store_true", help="every matching run (no limit)")
    _store_option(q)
    q = rs.add_parser("show", help="one run: settings, metrics, per-epoch history", description="Show one run.")
    q.add_argument("id", type=positive_int, metavar="ID")
    _store_option(q)
    q = rs.add_parser(
        "compare", help="settings that differ and metrics side by side", description="Compare recorded runs."
    )
    q.add_argument("ids", type=positive_int, nargs="+", metavar="ID")
    _store_option(q)
    q = rs.add_parser(
        "export",
        help="write a run's topology file (JSON and lab CSV) and its record (JSON)",
        description="Write run-ID.json (the trained network as a topology file), run-ID.csv and run-ID.record.json.",
    )
    q.add_argument("id", type=positive_int, metavar="ID")
    q.add_argument("--out", required=True, metavar="DIR", help="folder to write into (created if missing)")
    _store_option(q)
    q = rs.add_parser("delete", help="delete recorded runs", description="Delete runs by id or by filter.")
    q.add_argument("ids", type=positive_int, nargs="*", metavar="ID")
    _where_option(q, "also every run")
    q.add_argument("--yes", action="store_true", help="really delete (required)")
    _store_option(q)


def _open(args) -> RunStore:
    """The store named by --store (or the default); a SQLite file that does not exist is an error."""
    url = store_url(args.store)
    path = sqlite_file(url)
    if path is not None and not path.exists():
        raise StoreError(
            f"there is no run store at {clipped(path)} yet (train, sweep and the app make it on their first run)"
        )
    return open_store(url)


def _pct(value: Any) -> str:
    return f"{100 * value:.2f}" if isinstance(value, (int, float)) else "-"


def _k_text(rec: RunRecord) -> str:
    ks = rec.metrics.get("layer_ks") or []
    return ",".join(str(k) for k in ks) if ks else str(rec.metrics.get("resonators_per_chain", "-"))


def _list_line(rec: RunRecord) -> str:
    secs = f"{rec.train_seconds:.1f}" if isinstance(rec.train_seconds, (int, float)) else "-"
    return (
        f"{rec.id:>6}  {rec.created[:19]:<19}  {clipped(rec.source, 14):<14} {clipped(rec.model, 10):<10} "
        f"{clipped(rec.dataset, 16):<16} {_k_text(rec):>6} {_pct(rec.test_accuracy):>7} {secs:>8}  {rec.status}"
    )


def _cmd_list(args) -> int:
    store = _open(args)
    records = store.list(args.where, None if args.all else args.limit)
    total = store.count(args.where) if not args.all else len(records)
    if args.json:
        print(json.dumps({"store": store.shown, "total": total, "runs": [r.to_dict() for r in records]}), flush=True)
        return EXIT_OK
    head = f"{'id':>6}  {'created (UTC)':<19}  {'source':<14} {'model':<10} {'dataset':<16} {'K':>6} {'acc %':>7}"
    print(f"{head} {'seconds':>8}  status", flush=True)
    for rec in records:
        print(_list_line(rec))
    more = f" (the newest {len(records)} shown; --limit N or --all for more)" if total > len(records) else ""
    info(f"{total} run(s) in {store.shown}{more}")
    return EXIT_OK


def _value_text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (list, tuple)):
        return ",".join(_value_text(v) for v in value) or "[]"
    return clipped("null" if value is None else value, 120)


def _metric_names(records: Sequence[RunRecord]) -> list[str]:
    names = {k for r in records for k in r.metrics if k not in _NOT_SHOWN}
    return [m for m in MAIN_METRICS if m in names] + sorted(names - set(MAIN_METRICS))


def _history_lines(history: list) -> list[str]:
    if not history:
        return ["  (none)"]
    keys = [k for k in ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "test_accuracy") if k in history[0]]
    lines = ["  epoch  " + "  ".join(f"{k:>14}" for k in keys)]
    for h in history:
        lines.append(f"  {h.get('epoch', '-')!s:>5}  " + "  ".join(f"{_value_text(h.get(k)):>14}" for k in keys))
    return lines


def _cmd_show(args) -> int:
    rec = _open(args).get(args.id)
    if args.json:
        print(json.dumps(rec.to_dict()), flush=True)
        return EXIT_OK
    lines = [
        f"run {rec.id}: {clipped(rec.model)} on {clipped(rec.dataset)}, {rec.status}, "
        f"recorded by {clipped(rec.source)}",
        f"created {rec.created}, recorded {rec.recorded}; topology: {'yes' if rec.topology_json else 'no'}",
        "metrics:",
    ]
    lines += [f"  {m:<24} {_value_text(rec.metrics.get(m))}" for m in _metric_names([rec])]
    lines.append("per-epoch history:")
    lines += _history_lines(rec.history)
    lines.append("settings:")
    lines += [f"  {path:<40} {_value_text(v)}" for path, v in rec.settings().items()]
    lines.append("software:")
    lines += [f"  {k:<24} {clipped(v)}" for k, v in rec.versions.items()]
    print("\n".join(lines), flush=True)
    return EXIT_OK


def _cmd_compare(args) -> int:
    store = _open(args)
    records = [store.get(i) for i in dict.fromkeys(args.ids)]
    differing = differing_settings(records)
    metrics = _metric_names(records)
    if args.json:
        out = {
            "ids": [r.id for r in records],
            "settings": differing,
            "metrics": {m: [r.metrics.get(m) for r in records] for m in metrics},
        }
        print(json.dumps(out), flush=True)
        return EXIT_OK
    width = 14
    head = f"{'':<40}" + "".join(f"{'run ' + str(r.id):>{width}}" for r in records)
    lines = [head, "settings that differ:" if differing else "settings: all the same"]
    for p, vs in differing.items():
        lines.append(f"  {p:<38}" + "".join(f"{_value_text(v)[: width - 1]:>{width}}" for v in vs))
    lines.append("metrics:")
    for m in metrics:
        lines.append(f"  {m:<38}" + "".join(f"{_value_text(r.metrics.get(m))[: width - 1]:>{width}}" for r in records))
    print("\n".join(lines), flush=True)
    return EXIT_OK


def _cmd_export(args) -> int:
    store = _open(args)
    rec = store.get(args.id)
    folder = Path(args.out)
    folder.mkdir(parents=True, exist_ok=True)
    check_output_folder(folder, what="export folder")
    written: list[Path] = []
    if rec.topology_json is not None:
        topo = topology_of(rec.topology_json, f"run {rec.id} of the run store")  # every check of load_topology
        json_path = folder / f"run-{rec.id}.json"
        written += write_topology_pair(topo.document, json_path, csv_path_for(json_path))
    else:
        info(f"run {rec.id} holds no trained network (only its results): writing its record only")
    written.append(atomic_write_text(folder / f"run-{rec.id}.record.json", dumps_json(rec.to_dict())))
    for path in written:
        info(f"wrote {path}")
    if args.json:
        print(json.dumps({"id": rec.id, "files": [str(p) for p in written]}), flush=True)
    else:
        print("\n".join(str(p) for p in written), flush=True)
    return EXIT_OK


def _cmd_delete(args) -> int:
    if not args.ids and not args.where:
        raise CliError("runs delete needs run ids or --where filters (nothing was deleted)")
    store = _open(args)
    ids = list(args.ids)
    if args.where:
        ids += [r.id for r in store.list(args.where)]
    ids = sorted(set(ids))
    if not args.yes:
        raise CliError(f"this would delete {len(ids)} run(s); add --yes to delete them (nothing was deleted)")
    n = store.delete(ids) if ids else 0
    info(f"deleted {n} run(s) from {store.shown}")
    print(json.dumps({"deleted": ids}) if args.json else str(n), flush=True)
    return EXIT_OK


_ACTIONS = {"list": _cmd_list, "show": _cmd_show, "compare": _cmd_compare, "export": _cmd_export, "delete": _cmd_delete}


def cmd_runs(args) -> int:
    action: Optional[str] = getattr(args, "runs_command", None)
    if action is None:
        raise CliError("runs needs an action: list, show, compare, export or delete (see 'rfexplorer-cli runs --help')")
    return _ACTIONS[action](args)
