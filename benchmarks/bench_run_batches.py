"""Software baselines trained together against one at a time, side by side in one run (issue "fast at every shape",
lead 4: sweeps by the batch).

    python benchmarks/bench_run_batches.py [--data-dir ../shared/data] [--models rigl,set] [--ks 1,3,10,30,100,392,784]
                                           [--seeds 0,1,2] [--epochs 1] [--threads 1] [--json out.json]

For each model, after a warm-up, the runs of a sweep (every K for every seed) are trained once one at a time
(engine.training.loop.run_training) and once together as one batch (engine.training.run_batches.run_batch).
Printed: the seconds of each way, the speed-up, and the largest difference of a run's test accuracy between
the two ways (the batch's only difference is the rounding of its products, so at most a tie between two scores).
Target: together at least 3x faster than one at a time, every accuracy within 0.2 points.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.config.run_config import RunConfig  # noqa: E402
from engine.data import load_dataset  # noqa: E402
from engine.training.loop import run_training  # noqa: E402
from engine.training.run_batches import run_batch  # noqa: E402

SPEEDUP_TARGET = 3.0
ACCURACY_TOLERANCE = 0.002


def ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--dataset", default="mnist", help="dataset name (the target is for full MNIST)")
    ap.add_argument("--models", default="rigl,set")
    ap.add_argument("--ks", type=ints, default=[1, 3, 10, 30, 100, 392, 784])
    ap.add_argument("--seeds", type=ints, default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", default=None, help="write the measurements to this file")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    ds = load_dataset(args.dataset, args.data_dir)
    print(f"torch threads {args.threads}; {ds.name}: {len(ds.train_y):,} training images, {args.epochs} epoch(s)")
    rows, ok = [], True
    for model in args.models.split(","):
        base = RunConfig(model=model, dataset=args.dataset, data_dir=args.data_dir, epochs=args.epochs)
        cfgs = [base.with_(resonators_per_chain=min(k, ds.n_inputs), seed=s) for k in args.ks for s in args.seeds]
        run_training(cfgs[0].with_(epochs=1), dataset=ds)  # warm-up: first calls, kernels, allocator
        run_batch([c.with_(epochs=1) for c in cfgs[:2]], ds)
        began = time.perf_counter()
        alone = [run_training(cfg, dataset=ds).test_accuracy for cfg in cfgs]
        alone_s = time.perf_counter() - began
        began = time.perf_counter()
        together = [r.test_accuracy for r in run_batch(cfgs, ds)]  # type: ignore[union-attr]
        together_s = time.perf_counter() - began
        speedup = alone_s / together_s
        worst = max(abs(a - b) for a, b in zip(alone, together))
        passed = speedup >= SPEEDUP_TARGET and worst <= ACCURACY_TOLERANCE
        ok &= passed
        print(
            f"  {model:5s} {len(cfgs)} runs  one at a time {alone_s:6.2f} s  together {together_s:6.2f} s  "
            f"{speedup:4.1f}x  largest accuracy difference {100 * worst:.2f} points: {'PASS' if passed else 'FAIL'}"
        )
        rows.append(dict(model=model, runs=len(cfgs), alone_s=alone_s, together_s=together_s, speedup=speedup,
                         largest_accuracy_difference=worst, passed=passed))
    print(f"target: together >= {SPEEDUP_TARGET:g}x faster, accuracies within {100 * ACCURACY_TOLERANCE:g} points: "
          f"{'met' if ok else 'NOT met'}")
    if args.json:
        Path(args.json).write_text(json.dumps({"threads": args.threads, "dataset": ds.name, "rows": rows}, indent=1))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
