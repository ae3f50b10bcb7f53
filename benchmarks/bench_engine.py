"""Engine speed: one epoch of RF training at K = 10 over full MNIST against one epoch of the dense perceptron.

    python benchmarks/bench_engine.py [--data-dir ../shared/data] [--epochs 3] [--repeats 2]

Targets (issue 3): an RF epoch takes at most 3x a dense epoch, and at most 1.5 s on a 2-core machine.
Each model trains --epochs epochs (the plasticity schedule of a multi-epoch run, rewiring included); the time
per epoch is the run's training time divided by its epochs, best of --repeats, all in this one process.
"""
from __future__ import annotations

import argparse
import json
import sys

import torch

from engine.config import RunConfig
from engine.data import load_dataset
from engine.training import run_training

TARGET_RATIO = 3.0
TARGET_SECONDS = 1.5


def epoch_seconds(model: str, ds, epochs: int, repeats: int, k: int = 10) -> float:
    best = float("inf")
    for seed in range(repeats):
        r = run_training(RunConfig(model=model, resonators_per_chain=k, dataset=ds.name, epochs=epochs,
                                   seed=seed), ds)
        best = min(best, r.train_seconds / epochs)
    return best


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default="../shared/data")
    ap.add_argument("--dataset", default="mnist")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own choice)")
    ap.add_argument("--json", help="write the measurements to this file")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    ds = load_dataset(args.dataset, args.data_dir)
    rows = {m: epoch_seconds(m, ds, args.epochs, args.repeats) for m in ("dense", "rf", "rf-input", "rf-frozen")}
    ok = True
    print(f"engine speed, {ds.describe()}, batch 100, torch threads {torch.get_num_threads()}")
    for model, sec in rows.items():
        ratio = sec / rows["dense"]
        verdict = ""
        if model == "rf":
            passed = ratio <= TARGET_RATIO and sec <= TARGET_SECONDS
            ok &= passed
            verdict = f"  target <= {TARGET_RATIO:g}x dense and <= {TARGET_SECONDS:g} s: {'PASS' if passed else 'FAIL'}"
        print(f"  {model:10s} {sec:6.3f} s/epoch  {ratio:4.2f}x dense{verdict}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"seconds_per_epoch": rows, "threads": torch.get_num_threads(), "dataset": ds.name}, fh,
                      indent=2)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
