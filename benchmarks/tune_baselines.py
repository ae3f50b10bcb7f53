"""Tune the sparse baselines on a validation split of the MNIST training set, then measure them on the test set.

For every baseline a small grid of (optimizer, learning rate[, schedule knobs]) is trained at K resonators per
chain (K*C weights, per-output budget by default) for the full epoch budget, on 90 % of the training set, and
scored on the held-out 10 % (``RunConfig(validation_fraction=0.1)``), averaged over the tuning seeds. The best
mean validation accuracy wins, except that SGD + momentum replaces Adam (the project's default optimizer)
only when it is better by more than ``--switch-margin`` points. The test set is never looked at while
choosing. The chosen settings are then trained on the full training set and evaluated once on the test set.

    cd /work/main && .venv/bin/python benchmarks/tune_baselines.py            # full tuning + test (~12 min)
    .venv/bin/python benchmarks/tune_baselines.py --models prune rigl --tune-seeds 0
    .venv/bin/python benchmarks/tune_baselines.py --dataset mnist-mini --epochs 2   # smoke test

Runs one training at a time on one CPU thread.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from engine.baselines import BASELINES  # noqa: E402
from engine.config import RunConfig  # noqa: E402
from engine.data import load_dataset  # noqa: E402
from engine.training import run_training  # noqa: E402

#: Small grids: a few learning rates per optimizer; schedule knobs only where they matter (pruning).
ADAM_LRS = {"dense": (1e-3, 3e-3, 1e-2), "random": (3e-3, 1e-2, 3e-2), "prune": (1e-3, 3e-3, 1e-2),
            "rigl": (1e-2, 3e-2, 1e-1), "set": (1e-2, 3e-2, 1e-1)}
SGD_LRS = {"dense": (0.03, 0.1, 0.3), "random": (0.3, 1.0, 3.0), "prune": (0.1, 0.3, 1.0),
           "rigl": (0.3, 1.0, 3.0), "set": (0.1, 0.3, 1.0)}
SCHEDULES = {"prune": ({"begin_fraction": 0.1, "end_fraction": 0.5}, {"begin_fraction": 0.0, "end_fraction": 0.3},
                       {"begin_fraction": 0.2, "end_fraction": 0.7})}


def grid(model: str) -> list[dict]:
    """The settings tried for ``model``: dicts with 'optimizer', 'lr' and any schedule knobs."""
    out = []
    for sched in SCHEDULES.get(model, ({},)):
        for opt, lrs in (("adam", ADAM_LRS[model]), ("sgd", SGD_LRS[model])):
            out += [{"optimizer": opt, "lr": lr, **sched} for lr in lrs]
    return out


@contextlib.contextmanager
def knobs(model: str, **values):
    """Temporarily set the class-level defaults (optimizer, schedule knobs) of a baseline."""
    cls = BASELINES[model]
    saved = {k: cls.__dict__[k] for k in values if k in cls.__dict__}
    try:
        for k, v in values.items():
            if not hasattr(cls, k):
                raise AttributeError(f"{cls.__name__} has no knob {k!r}")
            setattr(cls, k, v)
        yield
    finally:
        for k in values:
            if k in saved:
                setattr(cls, k, saved[k])
            else:
                delattr(cls, k)


def train(model: str, setting: dict, args, ds, *, seed: int, validation: bool):
    setting = dict(setting)
    lr = setting.pop("lr")
    cfg = RunConfig(model=model, resonators_per_chain=args.k, dataset=args.dataset, data_dir=args.data_dir,
                    epochs=args.epochs, batch_size=args.batch_size, lr=lr, seed=seed, budget=args.budget,
                    validation_fraction=args.validation_fraction if validation else 0.0)
    with knobs(model, **setting):
        return run_training(cfg, dataset=ds)


def choose(rows: list, switch_margin: float):
    """The best row (setting, mean, std, accs) by mean validation accuracy; first of equals wins.

    Adam is the project's default optimizer (the RF models use it too), so SGD is chosen only when its best
    setting beats the best Adam setting by more than ``switch_margin`` percentage points.
    """
    best = {opt: max((r for r in rows if r[0]["optimizer"] == opt), key=lambda r: r[1], default=None)
            for opt in ("adam", "sgd")}
    if best["adam"] is None or (best["sgd"] is not None and best["sgd"][1] > best["adam"][1] + switch_margin):
        return best["sgd"]
    return best["adam"]


def describe(setting: dict) -> str:
    extra = ", ".join(f"{k}={v}" for k, v in setting.items() if k not in ("optimizer", "lr"))
    return f"{setting['optimizer']:<4} lr={setting['lr']:<6g}" + (f"  {extra}" if extra else "")


def mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=list(BASELINES), choices=list(BASELINES))
    p.add_argument("--k", type=int, default=10, help="resonators per chain K (budget K*C weights)")
    p.add_argument("--budget", default="per-output", choices=("per-output", "global"))
    p.add_argument("--dataset", default="mnist")
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--validation-fraction", type=float, default=0.1)
    p.add_argument("--tune-seeds", type=int, nargs="+", default=[0, 1],
                   help="seeds averaged while tuning (each also draws its own validation split)")
    p.add_argument("--test-seeds", type=int, nargs="+", default=[0], help="seeds of the final test runs")
    p.add_argument("--switch-margin", type=float, default=1.0,
                   help="choose SGD over Adam only if it wins by more than this (percentage points)")
    p.add_argument("--skip-test", action="store_true", help="tune only; do not touch the test set")
    p.add_argument("--json", type=Path, help="write all results to this JSON file")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    ds = load_dataset(args.dataset, args.data_dir)
    print(f"{ds.describe()}; K={args.k} ({args.k * ds.n_classes} weights, {args.budget} budget), "
          f"{args.epochs} epochs, batch {args.batch_size}; tuning on a {args.validation_fraction:.0%} validation "
          f"split, seeds {args.tune_seeds}", flush=True)

    report: dict = {"args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                    "tuning": {}, "chosen": {}, "test": {}}
    print(f"\n{'model':<7} {'setting':<56} {'validation accuracy (%)':>24}")
    for model in args.models:
        rows = []
        for setting in grid(model):
            accs = [100 * train(model, setting, args, ds, seed=s, validation=True).test_accuracy
                    for s in args.tune_seeds]
            m, sd = mean_std(accs)
            rows.append((setting, m, sd, accs))
            print(f"{model:<7} {describe(setting):<56} {m:>16.2f} ± {sd:<5.2f}", flush=True)
        best = choose(rows, args.switch_margin)
        report["tuning"][model] = [{"setting": s, "val_mean": m, "val_std": sd, "val": a} for s, m, sd, a in rows]
        report["chosen"][model] = {"setting": best[0], "val_mean": best[1], "val_std": best[2]}
        print(f"{model:<7} -> chosen: {describe(best[0])}  (validation {best[1]:.2f} ± {best[2]:.2f} %)\n",
              flush=True)

    print("\nChosen settings (validation accuracy, mean ± std over tuning seeds):")
    for model, c in report["chosen"].items():
        print(f"  {model:<7} {describe(c['setting']):<56} {c['val_mean']:.2f} ± {c['val_std']:.2f} %")
    print("  DEFAULT_LR = {" + ", ".join(f"'{m}': {c['setting']['lr']:g}" for m, c in report["chosen"].items())
          + "}")

    if not args.skip_test:
        print(f"\nTest accuracy with the chosen settings (full training set, seeds {args.test_seeds}):")
        print(f"  {'model':<7} {'test accuracy (%)':>20} {'s/epoch':>8} {'synapses':>9} {'rewired':>8}")
        for model, c in report["chosen"].items():
            results = [train(model, c["setting"], args, ds, seed=s, validation=False) for s in args.test_seeds]
            accs = [100 * r.test_accuracy for r in results]
            m, sd = mean_std(accs)
            spe = statistics.fmean(r.train_seconds / max(r.epochs_completed, 1) for r in results)
            report["test"][model] = {"test": accs, "mean": m, "std": sd, "seconds_per_epoch": spe,
                                     "synapses": results[0].synapses, "rewiring_events": results[0].rewiring_events}
            print(f"  {model:<7} {m:>12.2f} ± {sd:<5.2f} {spe:>8.2f} {results[0].synapses:>9} "
                  f"{results[0].rewiring_events:>8}", flush=True)

    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1))
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    t = time.perf_counter()
    rc = main()
    print(f"\n({time.perf_counter() - t:.0f} s)")
    sys.exit(rc)
