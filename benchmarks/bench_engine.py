"""Engine speed, side by side in one run: RF models against the dense perceptron and against a
reference-style pipeline (benchmarks/reference_style.py), at K = 10 and K = 784, and the reference sweep's
RF rows with the exact weight build against the default (FFT where it applies).

    python benchmarks/bench_engine.py [--data-dir ../shared/data] [--threads 1] [--json out.json]

Targets (issue "Speed at every K"), all as ratios or times measured in this one process:
- K = 784: an epoch of rf-frozen and of rf takes <= 3.0 s and is >= 5x faster than the reference style;
- K = 10: an rf epoch costs <= 2x a dense epoch, an rf-input epoch <= 3.5x (plasticity rounds included).
The time per epoch is a run's training time divided by its epochs (--epochs at K = 10, so the rewiring
schedule of a multi-epoch run is included; 1 epoch at K = 784), best of --repeats.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
for p in (ROOT, ROOT / "benchmarks"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from engine.config.run_config import RunConfig  # noqa: E402
from engine.data import load_dataset  # noqa: E402
from engine.nets.rf_perceptron import RFParams  # noqa: E402
from engine.training.loop import run_training  # noqa: E402

import reference_style  # noqa: E402

MODELS = ("dense", "rf-frozen", "rf", "rf-input")
TARGETS = {  # (K, model) -> (max seconds or None, max ratio to dense or None, min speed-up over reference)
    (784, "rf-frozen"): (3.0, None, 5.0),
    (784, "rf"): (3.0, None, 5.0),
    (10, "rf"): (None, 2.0, None),
    (10, "rf-input"): (None, 3.5, None),
}
#: The reference sweep's rows whose weight build changed (RF models without input training, K >= 64).
SWEEP_SAMPLE = [(m, k) for m in ("rf-frozen", "rf") for k in (100, 392, 784)]


def epoch_seconds(model: str, ds, k: int, epochs: int, repeats: int, build: str = "auto") -> float:
    best = float("inf")
    for seed in range(repeats):
        cfg = RunConfig(model=model, resonators_per_chain=k, dataset=ds.name, epochs=epochs, seed=seed)
        if cfg.spec.is_rf:
            cfg = cfg.with_(model_params=RFParams(weight_build=build))
        r = run_training(cfg, ds)
        best = min(best, r.train_seconds / epochs)
    return best


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--dataset", default="mnist")
    ap.add_argument("--epochs", type=int, default=2, help="epochs per timed run at K = 10")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--reference-steps", type=int, default=150,
                    help="steps timed for the reference style at K = 784 (scaled to an epoch)")
    ap.add_argument("--ks", default="10,784")
    ap.add_argument("--no-sweep", action="store_true", help="skip the sweep-sample comparison")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own choice)")
    ap.add_argument("--json", help="write the measurements to this file")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    ds = load_dataset(args.dataset, args.data_dir)
    ks = [int(k) for k in args.ks.split(",")]
    print(f"engine speed, {ds.describe()}, batch 100, torch threads {torch.get_num_threads()}", flush=True)
    table: dict = {}
    for k in ks:
        epochs = args.epochs if k <= 100 else 1
        row = {m: epoch_seconds(m, ds, k, epochs, args.repeats) for m in MODELS}
        if ds.name == "mnist":
            steps = None if k <= 100 else args.reference_steps
            row["reference-style"] = reference_style.epoch_seconds(args.data_dir, k, max_steps=steps)
        table[k] = row
        cells = "  ".join(f"{m} {s:6.2f} s ({s / row['dense']:4.1f}x dense)" for m, s in row.items())
        print(f"  K = {k:<4d} {cells}", flush=True)
    ok = True
    print("targets:")
    for (k, model), (max_s, max_ratio, min_speedup) in TARGETS.items():
        if k not in table:
            continue
        sec = table[k][model]
        checks, passed = [], True
        if max_s is not None:
            checks.append(f"{sec:.2f} s <= {max_s:g} s")
            passed &= sec <= max_s
        if max_ratio is not None:
            ratio = sec / table[k]["dense"]
            checks.append(f"{ratio:.2f}x dense <= {max_ratio:g}x")
            passed &= ratio <= max_ratio
        if min_speedup is not None and "reference-style" in table[k]:
            speedup = table[k]["reference-style"] / sec
            checks.append(f"{speedup:.1f}x faster than the reference style >= {min_speedup:g}x")
            passed &= speedup >= min_speedup
        ok &= passed
        print(f"  K = {k:<4d} {model:10s} {'; '.join(checks)}: {'PASS' if passed else 'FAIL'}")
    sweep = None
    if not args.no_sweep:
        times = {b: sum(epoch_seconds(m, ds, k, 1, 1, build=b) for m, k in SWEEP_SAMPLE) for b in ("exact", "auto")}
        sweep = {"rows": SWEEP_SAMPLE, "seconds": times, "speedup": times["exact"] / times["auto"]}
        print(f"reference sweep's RF rows at K >= 100 (1 epoch each): exact build {times['exact']:.1f} s, "
              f"default {times['auto']:.1f} s ({sweep['speedup']:.1f}x)")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"seconds_per_epoch": {str(k): v for k, v in table.items()}, "sweep_sample": sweep,
                       "threads": torch.get_num_threads(), "dataset": ds.name, "all_targets_met": ok}, fh, indent=2)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
