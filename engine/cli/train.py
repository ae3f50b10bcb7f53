"""``train``, ``export`` and ``evaluate``: one model trained (and written as a topology file), a topology file
re-exported to CSV, and a topology file's network measured against its recorded accuracy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional, Sequence

from engine.cli.common import (
    EXIT_MISMATCH,
    EXIT_OK,
    CliError,
    Interrupted,
    add_common,
    add_data_options,
    add_split_option,
    cancel_on_sigint,
    info,
    record_runs,
    run_store_of,
    set_threads,
    usable_cores,
)
from engine.cli.run_options import add_run_options, apply_sparsity, config_from_args, flag_changes
from engine.config.run_config import remaining_synapses_pct
from engine.core.files import check_output_file, json_safe
from engine.core.messages import clipped
from engine.core.metrics import confusion_matrix
from engine.core.progress import CancelToken
from engine.core.progress_bar import ProgressBar
from engine.data.named import load_dataset
from engine.experiments.confusion_figure import write_confusion_png
from engine.experiments.evaluation import evaluate_topology, evaluation_split
from engine.experiments.recommended import describe_applied, plasticity_note
from engine.io.store import epoch_history
from engine.io.topology import csv_path_for, export_result, load_topology, write_topology_csv
from engine.training import loop as training  # run_training is looked up at each run (tests replace it)


def add_parsers(sub) -> None:
    """The ``train`` and ``export`` commands."""
    p = sub.add_parser(
        "train",
        help="train one model and print its test accuracy",
        description="Train one model; one line per epoch on stderr.",
    )
    add_run_options(p)
    p.add_argument(
        "--export",
        default=None,
        metavar="FILE",
        help="write the trained topology to FILE (JSON) and FILE with a .csv suffix",
    )
    add_confusion_option(p)
    add_common(p)

    p = sub.add_parser(
        "export",
        help="train then export a topology, or re-export a topology file to CSV",
        description="Train a model and write OUTPUT (JSON) plus OUTPUT.csv, or with --from, "
        "write the CSV of an existing topology file (to OUTPUT, default: next to it).",
    )
    p.add_argument(
        "output",
        nargs="?",
        default=None,
        metavar="OUTPUT",
        help="JSON file to write (training), or CSV file to write (--from)",
    )
    p.add_argument(
        "--from",
        dest="source",
        default=None,
        metavar="TOPOLOGY",
        help="an existing topology JSON file to re-export instead of training",
    )
    add_run_options(p)
    add_confusion_option(p)
    add_common(p)


def add_confusion_option(p) -> None:
    p.add_argument(
        "--confusion",
        default=None,
        metavar="PNG",
        help="also draw the confusion matrix (rows: true class, columns: predicted; counts, coloured by the "
        "fraction of the true class) on the evaluated set to PNG",
    )


def _confusion_path(args) -> Optional[Path]:
    """The checked ``--confusion`` file (before any long work), or None."""
    if not getattr(args, "confusion", None):
        return None
    path = Path(args.confusion)
    if path.suffix.lower() != ".png":
        raise CliError(f"the confusion matrix file {path} must end in .png")
    return check_output_file(path, what="confusion matrix file")


def _write_confusion(args, path: Optional[Path], counts, class_names, title: str) -> None:
    if path is None:
        return
    write_confusion_png(path, counts, class_names, title=title)
    args.confusion_written = str(path)
    info(f"wrote the confusion matrix to {path}")


def _train_confusion(args, path: Optional[Path], result) -> None:
    """The --confusion figure of a finished run: its recorded matrix on the set it was evaluated on."""
    k = result.resonators_per_chain
    where = "validation split" if result.evaluated_on == "validation" else "test set"
    title = f"{result.config.model}, K = {k}, seed {result.config.seed}: {clipped(result.config.dataset, 60)} {where}"
    _write_confusion(args, path, result.confusion, result.dataset_info.get("class_names"), title)


def add_evaluate_parser(sub) -> None:
    p = sub.add_parser(
        "evaluate",
        help="evaluate a topology file and compare with its recorded accuracy",
        description="Rebuild the network of a topology file and measure its accuracy.",
    )
    p.add_argument("file", metavar="FILE", help="topology JSON file (written by train --export or export)")
    add_data_options(p, "dataset (default: the recorded one)")
    add_split_option(p)
    p.add_argument(
        "--check", action="store_true", help="exit with status 1 if the accuracy differs from the recorded one"
    )
    add_confusion_option(p)
    add_common(p)


def _epoch_printer(cfg, bar=None):
    state = {"epochs": 0}
    label = "val" if cfg.validation_fraction > 0 else "test"
    say = bar.write if bar is not None else info

    def progress(snap) -> None:
        if len(snap.history) > state["epochs"]:
            new = snap.history[state["epochs"] :]
            for epoch, loss, train_acc, test_acc in new:
                say(
                    f"epoch {epoch}/{snap.epochs}  loss {loss:.4f}  train {100 * train_acc:.2f} %  "
                    f"{label} {100 * test_acc:.2f} %  {snap.elapsed_s:.1f} s"
                )
            state["epochs"] = len(snap.history)
            if bar is not None:
                _, loss, _, test_acc = new[-1]
                bar.update(len(new), postfix=f"loss {loss:.4f}, {label} {100 * test_acc:.2f} %")

    return progress


def _describe_run(cfg, ds) -> str:
    if cfg.hidden:
        shape = "-".join(str(n) for n in (ds.n_inputs, *cfg.hidden, ds.n_classes))
        ks = ",".join(str(v) for v in cfg.layer_ks) if cfg.spec.uses_k else "all"
        return f"{ds.describe()}; model {cfg.model}, layers {shape}, K = {ks}, {cfg.epochs} epoch(s), seed {cfg.seed}"
    k = cfg.resonators_per_chain if cfg.spec.uses_k else ds.n_inputs
    return (
        f"{ds.describe()}; model {cfg.model}, K = {k} ({remaining_synapses_pct(k, ds.n_inputs):.2f} % of "
        f"synapses), {cfg.epochs} epoch(s), seed {cfg.seed}"
    )


def _train(args):
    """Train as configured by ``args``; returns the RunResult (raises Interrupted if cancelled)."""
    args.recommended = {}  # (recorded by --json)
    cfg = config_from_args(args, recommended=args.recommended)
    ds = load_dataset(cfg.dataset, cfg.data_dir)
    cfg = apply_sparsity(args, cfg, ds.n_inputs)
    for line in (describe_applied(args.recommended), plasticity_note(cfg, len(ds.train_y))):
        if line:
            info(line)
    info(_describe_run(cfg, ds))
    token = CancelToken()
    with (
        cancel_on_sigint(token),
        ProgressBar(cfg.epochs, desc="train", unit="epoch", quiet=getattr(args, "quiet", False)) as bar,
    ):
        # epoch lines only: no mid-epoch snapshots (they copy W and the attachments, which costs at large K)
        result = training.run_training(
            cfg, dataset=ds, progress=_epoch_printer(cfg, bar), cancel=token, snapshot_interval_s=float("inf")
        )
    if result.cancelled:
        raise Interrupted
    return result


def _export_paths(path: str) -> tuple[Path, Path]:
    p = Path(path)
    if p.suffix.lower() == ".csv":
        raise CliError(f"the export file {p} must be the JSON file, not the .csv (the CSV is written next to it)")
    # before training: an existing folder where files can be created, a usable name, not a folder nor a symbolic
    # link (OutputPathError, one sentence)
    return check_output_file(p, what="export file"), check_output_file(csv_path_for(p), what="export CSV")


def _report_train(args, result, exported: Optional[tuple] = None, run_ids: Sequence[int] = ()) -> None:
    s = result.summary()
    where = "validation" if result.evaluated_on == "validation" else "test"
    if result.config.hidden:
        shape = "-".join(str(n) for n in (result.n_inputs, *result.config.hidden, result.n_classes))
        info(
            f"{s['model']} {shape} ({result.synapses} synapses): "
            f"{where} accuracy {100 * result.test_accuracy:.2f} % in {result.train_seconds:.1f} s"
        )
    else:
        info(
            f"{s['model']} K={s['resonators_per_chain']} ({s['remaining_synapses_pct']:.2f} % of synapses): "
            f"{where} accuracy {100 * result.test_accuracy:.2f} % in {result.train_seconds:.1f} s"
        )
    if exported:
        info(f"wrote {exported[0]}" + (f" and {exported[1]}" if exported[1] else ""))
    if run_ids:
        info(f"recorded as run {run_ids[0]} (rfexplorer-cli runs show {run_ids[0]})")
    if args.json:
        out = dict(s)
        out["test_accuracy"] = float(result.test_accuracy)
        out["config"] = result.config.to_dict()
        out["versions"] = dict(result.versions)
        # per epoch: train loss and accuracy, then val_loss and val_accuracy (validation split) or test_accuracy
        out["history"] = json_safe(epoch_history(result.history, result.evaluated_on, result.epoch_metrics))
        out["run_id"] = run_ids[0] if run_ids else None
        # the settings taken from the dataset's recommendation, not given by the user (engine.experiments.recommended)
        out["recommended"] = getattr(args, "recommended", None) or None
        if exported:
            out["export"] = str(exported[0])
            out["export_csv"] = str(exported[1]) if exported[1] else None
        if getattr(args, "confusion_written", None):
            out["confusion_png"] = args.confusion_written
        print(json.dumps(out), flush=True)
    else:
        print(f"{100 * result.test_accuracy:.2f}", flush=True)


def cmd_train(args) -> int:
    set_threads(args.threads or usable_cores())
    paths = _export_paths(args.export) if args.export else None
    confusion = _confusion_path(args)
    store = run_store_of(args)
    result = _train(args)
    exported = export_result(result, paths[0], csv_path=paths[1]) if paths else None
    _train_confusion(args, confusion, result)
    _report_train(args, result, exported, record_runs(store, [result], "cli"))
    return EXIT_OK


def _reexport(args) -> int:
    """``export --from TOPOLOGY [OUTPUT]``: the CSV of an existing topology file."""
    if flag_changes(args) or args.sparsity is not None or args.config or args.overrides:
        raise CliError("--from re-exports an existing file, so training options cannot be given with it")
    topo = load_topology(args.source)
    out = Path(args.output) if args.output else csv_path_for(args.source)
    if out.suffix.lower() == ".json":
        raise CliError(f"the CSV output {out} must not end in .json")
    if out.resolve() == Path(args.source).resolve():
        raise CliError("the CSV output would overwrite the topology file")
    write_topology_csv(topo, out)
    info(f"wrote {out} ({topo.kind}, model {topo.model_name})")
    if args.json:
        print(
            json.dumps({"source": str(args.source), "csv": str(out), "kind": topo.kind, "model": topo.model_name}),
            flush=True,
        )
    else:
        print(str(out), flush=True)
    return EXIT_OK


def cmd_export(args) -> int:
    set_threads(args.threads or usable_cores())
    if args.source:
        return _reexport(args)
    if not args.output:
        raise CliError("export needs an OUTPUT file to write (or --from TOPOLOGY to re-export a file)")
    paths = _export_paths(args.output)
    confusion = _confusion_path(args)
    store = run_store_of(args)
    result = _train(args)
    exported = export_result(result, paths[0], csv_path=paths[1])
    _train_confusion(args, confusion, result)
    _report_train(args, result, exported, record_runs(store, [result], "cli"))
    return EXIT_OK


def _compare_text(acc: float, recorded: float, matches: bool) -> str:
    if acc == recorded:
        return "identical)"
    return "the same to 6 decimals)" if matches else f"differs by {100 * (acc - recorded):+.2f} points)"


def cmd_evaluate(args) -> int:
    set_threads(args.threads or usable_cores())
    confusion = _confusion_path(args)
    topo = load_topology(args.file)
    name = args.dataset or topo.dataset
    ds = load_dataset(name, args.data_dir if args.data_dir is not None else topo.config.data_dir)
    acc = evaluate_topology(topo, ds, split=args.split)
    shown_name = clipped(name, 200)  # names from the file are printed escaped (no terminal sequences)
    recorded = topo.recorded_accuracy
    comparable = (
        recorded is not None and name == topo.dataset and (args.split == "recorded" or topo.evaluated_on == "test")
    )
    where = (
        "validation split"
        if (args.split == "recorded" and topo.evaluated_on == "validation" and name == topo.dataset)
        else "test set"
    )
    line = f"{topo.model_name} (K={topo.resonators_per_chain}): accuracy {100 * acc:.2f} % on {shown_name} {where}"
    # Files store the accuracy at full precision; allow for one rounded to 6 decimals (RunResult.summary()).
    matches = comparable and recorded is not None and abs(acc - recorded) <= 5e-7
    if comparable and recorded is not None:  # comparable implies recorded
        line += f"; recorded {100 * recorded:.2f} % (" + _compare_text(acc, recorded, matches)
    elif recorded is not None:
        line += (
            f"; recorded {100 * recorded:.2f} % on {clipped(topo.dataset, 200)} {topo.evaluated_on} (not comparable)"
        )
    info(line)
    if confusion is not None:  # on the same samples as the accuracy (checked against the network by evaluate)
        counts = confusion_matrix(topo.model, *evaluation_split(topo, ds, split=args.split), topo.n_classes)
        names = getattr(ds, "class_names", None) or topo.class_names
        title = f"{topo.model_name}, K = {topo.resonators_per_chain}: {shown_name} {where}"
        _write_confusion(args, confusion, counts, names, title)
    if args.json:
        print(
            json.dumps(
                {
                    "file": str(args.file),
                    "kind": topo.kind,
                    "model": topo.model_name,
                    "resonators_per_chain": topo.resonators_per_chain,
                    "dataset": name,
                    "split": where.replace(" set", "").replace(" split", ""),
                    "test_accuracy": acc,
                    "recorded_accuracy": recorded,
                    "matches_recorded": matches if comparable else None,
                    "confusion_png": getattr(args, "confusion_written", None),
                }
            ),
            flush=True,
        )
    else:
        print(f"{100 * acc:.2f}", flush=True)
    if args.check and comparable and not matches:
        return EXIT_MISMATCH
    return EXIT_OK
