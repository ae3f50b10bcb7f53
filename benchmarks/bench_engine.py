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
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from engine.config import RunConfig, removed_synapses_pct  # noqa: E402
from engine.data import load_dataset  # noqa: E402
from engine.models import list_models  # noqa: E402
from engine.training import run_training  # noqa: E402

TARGET_RATIO = 3.0
TARGET_SECONDS = 1.5


def bench_config(model: str, ds, epochs: int, k: int, seed: int) -> RunConfig:
    """The settings tree of one timed run (every other setting at its default)."""
    return RunConfig(model=model, resonators_per_chain=k, dataset=ds.name, epochs=epochs, seed=seed)


def epoch_seconds(model: str, ds, epochs: int, repeats: int, k: int = 10) -> tuple[float, RunConfig]:
    """Best training time per epoch over ``repeats`` runs (seeds 0, 1, ...), and the first run's resolved
    settings tree."""
    best, config = float("inf"), None
    for seed in range(repeats):
        r = run_training(bench_config(model, ds, epochs, k, seed), ds)
        best = min(best, r.train_seconds / epochs)
        config = config or r.config
    return best, config


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--dataset", default="mnist")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--k", type=int, default=10, help="resonators per chain K of the RF models")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own choice)")
    ap.add_argument("--json", help="write the measurements to this file")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    ds = load_dataset(args.dataset, args.data_dir)
    measured = {m: epoch_seconds(m, ds, args.epochs, args.repeats, args.k) for m in ("dense", *list_models("rf"))}
    rows = {m: sec for m, (sec, _) in measured.items()}
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
            json.dump({"seconds_per_epoch": rows, "threads": torch.get_num_threads(), "dataset": ds.name,
                       "resonators_per_chain": args.k,
                       "removed_synapses_pct": removed_synapses_pct(args.k, ds.n_inputs),
                       "configs": {m: cfg.to_dict() for m, (_, cfg) in measured.items()}}, fh, indent=2)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
