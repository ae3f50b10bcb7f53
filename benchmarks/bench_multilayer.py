"""Epoch time of the two-layer MNIST network (784-100-10, K = 30, 100: 4,000 resonators), side by side.

    python benchmarks/bench_multilayer.py [--dataset mnist --data-dir ../shared/data] [--threads 1] [--json F]

Target (issue 10): an epoch of ``rf`` at that shape takes at most 4 s on this 2-core machine. Reported in one
run, each one epoch after a warm-up epoch: ``rf-frozen`` and ``rf`` with the eager exact build and with the
compiled build (``model_params.weight_build=compiled``: its compile time is reported separately), ``rf-input``
(compiled), and the dense software MLP of the same shape; times are also given as ratios to the dense MLP.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import torch

from engine.config.run_config import build_config
from engine.data import load_dataset
from engine.training.loop import run_training

TARGET_S = 4.0
SHAPE = {"hidden": (100,), "resonators_per_chain": 30, "layer_resonators": (100,)}


def epoch_seconds(model: str, ds, build: str | None, epochs: int) -> tuple[float, float]:
    """(seconds per epoch, seconds of the first epoch) over ``epochs`` epochs after the first."""
    base = {"model": model, "dataset": ds.name, "epochs": epochs + 1, **SHAPE}
    if build is not None:
        base["model_params.weight_build"] = build
    cfg = build_config(base=base)
    marks: list[float] = []
    start = time.perf_counter()

    def progress(snap) -> None:
        if len(snap.history) > len(marks):
            marks.append(time.perf_counter() - start)

    run_training(cfg, dataset=ds, progress=progress, snapshot_interval_s=float("inf"))
    return (marks[-1] - marks[0]) / epochs, marks[0]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="mnist")
    p.add_argument("--data-dir", default="../shared/data")
    p.add_argument("--epochs", type=int, default=1, help="timed epochs after the warm-up epoch")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    ds = load_dataset(args.dataset, args.data_dir)
    rows = []
    for model, build in (("dense", None), ("rf-frozen", "exact"), ("rf-frozen", "compiled"), ("rf", "exact"),
                         ("rf", "compiled"), ("rf-input", "compiled")):
        per_epoch, first = epoch_seconds(model, ds, build, args.epochs)
        rows.append({"model": model, "weight_build": build, "epoch_s": round(per_epoch, 3),
                     "first_epoch_s": round(first, 3)})
        print(f"{model:<10} {build or '-':<9} {per_epoch:7.2f} s/epoch (first epoch, with any compiling: "
              f"{first:.1f} s)", flush=True)
    dense = rows[0]["epoch_s"]
    for r in rows:
        r["vs_dense"] = round(r["epoch_s"] / dense, 2)
    best_rf = min(r["epoch_s"] for r in rows if r["model"] == "rf")
    met = best_rf <= TARGET_S
    print(f"\n| model | weight build | s/epoch | × dense MLP |\n|---|---|---:|---:|")
    for r in rows:
        print(f"| {r['model']} | {r['weight_build'] or '–'} | {r['epoch_s']:.2f} | {r['vs_dense']:.2f} |")
    print(f"\nrf 784-100-10 (K = 30, 100) on {ds.name}: {best_rf:.2f} s/epoch; target <= {TARGET_S} s: "
          f"{'met' if met else 'MISSED'}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"rows": rows, "target_s": TARGET_S, "met": met, "threads": args.threads}, fh, indent=1)
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
