"""``robustness``: a trained RF topology's accuracy on fresh chips and noise draws as one device knob varies
(engine.nets.hardware.robustness); writes robustness.csv and robustness.json, and robustness.png where the app's
figure tool can run.

The PNG is drawn by ``python -m rfexplorer.robustness_figure`` in a separate process: the figure is drawn with
pyqtgraph (Qt), which the engine never imports. The figure is optional: without the app or PySide6 (an engine-only
install), or with ``--no-figure``, the CSV and JSON are still written and a note says why there is no PNG.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

from engine.cli.common import (
    EXIT_OK,
    CliError,
    add_data_options,
    add_quiet,
    add_split_option,
    add_store_options,
    info,
    nonneg_int,
    output_folder,
    positive_int,
    run_store_of,
    set_threads,
    usable_cores,
)
from engine.config.run_config import remaining_synapses_pct, removed_synapses_pct
from engine.core.files import atomic_write_files, check_output_folder, dumps_json
from engine.core.progress_bar import ProgressBar
from engine.core.settings_tree import set_path
from engine.core.tables import csv_text
from engine.data.named import load_dataset
from engine.experiments.evaluation import check_dataset, evaluation_split
from engine.io.results import ResultRow, software_versions, utc_now_iso
from engine.io.store import StoreError
from engine.io.topology import load_topology
from engine.nets import hardware  # hardware.robustness is looked up at each run (tests replace it)

#: The app's module that draws the PNG from robustness.json (run as a program, never imported here).
FIGURE_TOOL = "rfexplorer.robustness_figure"


def add_parser(sub) -> None:
    p = sub.add_parser(
        "robustness",
        help="accuracy of a trained RF topology on fresh chips as a device knob varies",
        description="Evaluate the network of a topology file on --repeats fresh chips and noise draws "
        "at each value of one device setting; writes robustness.csv, robustness.json and "
        "robustness.png into --out. The last line of stdout is a JSON object whose 'rows' "
        "hold knob, value, mean, std and n for every value.",
    )
    p.add_argument("file", metavar="TOPOLOGY", help="topology JSON file of an RF network")
    p.add_argument(
        "--knob",
        required=True,
        metavar="NAME",
        help="the device setting to vary: freq_spread, calibrated, tuning_bits, freq_jitter_lw, "
        "power_noise, readout_noise_v, alpha_dtod or k_sd_dtod (device. prefix optional)",
    )
    p.add_argument("--values", required=True, metavar="V1,V2,...", help="comma-separated values of the knob")
    p.add_argument("--repeats", type=positive_int, default=5, help="fresh chips / noise draws per value (default 5)")
    p.add_argument("--seed", type=nonneg_int, default=0, help="repeat r draws from seed + r (default 0)")
    p.add_argument(
        "--out", default="robustness-results", metavar="DIR", help="output folder (default: robustness-results)"
    )
    add_data_options(p, "dataset (default: the recorded one)")
    add_split_option(p)
    p.add_argument("--no-figure", action="store_true", help="do not draw robustness.png")
    p.add_argument("--threads", type=positive_int, default=None, help="torch threads")
    add_quiet(p)
    add_store_options(p)


def robustness_png(json_path: Path, png_path: Path) -> Optional[str]:
    """Draw the robustness PNG with the app's offscreen figure tool, run as a separate program so the engine
    never imports Qt; None, with a note, where it cannot run (no app, no PySide6)."""
    if importlib.util.find_spec(FIGURE_TOOL.split(".")[0]) is None:
        info("note: robustness.png was not drawn (the rfexplorer app is not installed); the CSV and JSON are written")
        return None
    env = {**os.environ, "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen")}
    try:
        proc = subprocess.run(
            [sys.executable, "-m", FIGURE_TOOL, str(json_path), str(png_path)],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        info(f"note: robustness.png was not drawn ({exc}); the CSV and JSON are written")
        return None
    if proc.returncode != 0 or not png_path.exists():
        why = (proc.stderr.strip().splitlines() or ["the figure tool failed"])[-1]
        info(f"note: robustness.png was not drawn ({why}); the CSV and JSON are written")
        return None
    return str(png_path)


def _write(args, topo, name: str, knob: str, rows: list, out_dir: Path) -> dict:
    """robustness.csv and robustness.json (a pair, the JSON last), then the PNG; {kind: path}."""
    out_dir.mkdir(parents=True, exist_ok=True)
    header = ["knob", "value", "mean", "std", "n", "accuracies"]
    table = [
        [r["knob"], r["value"], r["mean"], r["std"], r["n"], " ".join(f"{a:.6f}" for a in r["accuracies"])]
        for r in rows
    ]
    files = {"csv": str(out_dir / "robustness.csv"), "json": str(out_dir / "robustness.json")}
    doc = {
        "format": "rfexplorer-robustness",
        "file": str(args.file),
        "model": topo.model_name,
        "dataset": name,
        "split": args.split,
        "knob": knob,
        "repeats": args.repeats,
        "seed": args.seed,
        "physics": topo.model.params.to_dict(),
        "rows": rows,
    }
    atomic_write_files(
        [(files["csv"], csv_text(header, table).encode("utf-8")), (files["json"], dumps_json(doc).encode("utf-8"))]
    )
    if not args.no_figure:
        png = robustness_png(Path(files["json"]), out_dir / "robustness.png")
        if png is not None:
            files["png"] = png
    return files


def _record(store, args, topo, name: str, knob: str, rows: list) -> list:
    """One run-store record per value of the knob: the network's settings with ``device.<knob>`` at that value,
    the mean accuracy over the fresh chips as its accuracy, std, n and every accuracy as metrics."""
    if store is None:
        return []
    document = dumps_json(topo.document)
    items = []
    for r in rows:
        config = set_path(topo.config.to_dict(), f"device.{knob}", r["value"])
        row = ResultRow(
            model=topo.model_name,
            dataset=name,
            resonators_per_chain=topo.resonators_per_chain,
            seed=args.seed,
            test_accuracy=r["mean"],
            n_inputs=topo.n_inputs,
            n_classes=topo.n_classes,
            remaining_synapses_pct=round(remaining_synapses_pct(topo.resonators_per_chain, topo.n_inputs), 4),
            removed_synapses_pct=round(removed_synapses_pct(topo.resonators_per_chain, topo.n_inputs), 4),
            evaluated_on=topo.evaluated_on if args.split == "recorded" else "test",
            config=config,
            versions=software_versions(),
            created=utc_now_iso(),
        )
        extra = {"accuracy_std": r["std"], "repeats": r["n"], "accuracies": r["accuracies"], "knob": knob}
        items.append((row, document, {**extra, "knob_value": r["value"], "topology_file": str(args.file)}))
    try:
        return store.record_many(items, source="robustness")
    except StoreError as exc:
        info(f"warning: the results were not recorded in the run store: {exc}")
        return []


def cmd_robustness(args) -> int:
    set_threads(args.threads or usable_cores())
    knob = args.knob[len("device.") :] if args.knob.startswith("device.") else args.knob
    values = hardware.parse_knob_values(knob, args.values)
    out_dir = output_folder(args.out)
    check_output_folder(out_dir)  # before the evaluations, not after
    store = run_store_of(args)
    topo = load_topology(args.file)
    if not getattr(topo.model, "is_rf", False):
        raise CliError(f"{args.file} holds a {topo.model_name} network; robustness needs an RF network")
    name = args.dataset or topo.dataset
    ds = load_dataset(name, args.data_dir if args.data_dir is not None else topo.config.data_dir)
    check_dataset(topo, ds)
    x, y = evaluation_split(topo, ds, split=args.split)
    info(
        f"robustness of {topo.model_name} ({args.file}) on {name}: device.{knob} in "
        f"{', '.join(map(str, values))}, {args.repeats} chip(s) each, seeds {args.seed}..{args.seed + args.repeats - 1}"
    )
    start = time.perf_counter()
    with ProgressBar(len(values) * args.repeats, desc="robustness", unit="chip", quiet=args.quiet) as bar:

        def on_eval(value, r, acc):
            bar.update(1, postfix=f"{knob}={value}: {100 * acc:.2f} %")

        rows = hardware.robustness(topo.model, x, y, knob, values, args.repeats, seed=args.seed, on_eval=on_eval)
    for row in rows:
        info(f"{knob} = {row['value']}: {100 * row['mean']:.2f} ± {100 * row['std']:.2f} % (n = {row['n']})")
    files = _write(args, topo, name, knob, rows, out_dir)
    run_ids = _record(store, args, topo, name, knob, rows)
    if run_ids:
        info(f"recorded as runs {run_ids[0]}..{run_ids[-1]} (rfexplorer-cli runs list --where source=robustness)")
    info(f"wrote {', '.join(files.values())} in {time.perf_counter() - start:.1f} s")
    summary = [{"knob": r["knob"], "value": r["value"], "mean": r["mean"], "std": r["std"], "n": r["n"]} for r in rows]
    print(
        json.dumps({"file": str(args.file), "knob": knob, "out": str(out_dir), "files": files, "rows": summary}),
        flush=True,
    )
    return EXIT_OK
