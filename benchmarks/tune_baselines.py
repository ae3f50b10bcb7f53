"""Tune the sparse baselines on a validation split of the MNIST training set, then measure them on the test set.

For every baseline a small grid of settings is trained at K resonators per chain (K*C weights, per-output
budget by default) for the full epoch budget, on 90 % of the training set, and scored on the held-out 10 %
(``validation_fraction=0.1``), averaged over the tuning seeds. A setting is a list of ``path=value``
overrides of the run's settings tree (engine.config.run_config.RunConfig), applied with engine.config.run_config.apply_overrides:
``lr``, ``model_params.optimizer`` and, where they matter (pruning), schedule knobs such as
``model_params.begin_fraction``. ``--set`` adds overrides to every run (e.g. ``--set model_params.momentum=0.8``).
The best mean validation accuracy wins, except that SGD + momentum replaces Adam (the project's default
optimizer) only when it is better by more than ``--switch-margin`` points. The test set is never looked at
while choosing. The chosen settings are then trained on the full training set and evaluated once on the test
set. The chosen learning rates are printed as suggestions for the registry's ``default_lr`` in
engine/config/models.py, other knobs for the defaults of the model's params dataclass.

    cd /work/main && .venv/bin/python benchmarks/tune_baselines.py            # full tuning + test (~12 min)
    .venv/bin/python benchmarks/tune_baselines.py --models prune rigl --tune-seeds 0
    .venv/bin/python benchmarks/tune_baselines.py --dataset mnist-mini --epochs 2   # smoke test

Runs one training at a time on one CPU thread.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from engine.config.run_config import RunConfig, SettingError, apply_overrides  # noqa: E402
from engine.data import load_dataset  # noqa: E402
from engine.config.models import get_spec, list_models  # noqa: E402
from engine.training.loop import run_training  # noqa: E402

#: Small grids: a few learning rates per optimizer; schedule knobs only where they matter (pruning). A baseline
#: missing here gets the learning rates around its registry default (engine.config.models) with either optimizer.
ADAM_LRS = {"dense": (1e-3, 3e-3, 1e-2), "random": (3e-3, 1e-2, 3e-2), "prune": (1e-3, 3e-3, 1e-2),
            "rigl": (1e-2, 3e-2, 1e-1), "set": (1e-2, 3e-2, 1e-1)}
SGD_LRS = {"dense": (0.03, 0.1, 0.3), "random": (0.3, 1.0, 3.0), "prune": (0.1, 0.3, 1.0),
           "rigl": (0.3, 1.0, 3.0), "set": (0.1, 0.3, 1.0)}
#: Schedule knobs tried, as model_params fields (engine.nets.baselines: PruneParams, RigLParams, ...).
SCHEDULES = {"prune": ({"begin_fraction": 0.1, "end_fraction": 0.5}, {"begin_fraction": 0.0, "end_fraction": 0.3},
                       {"begin_fraction": 0.2, "end_fraction": 0.7})}
OPTIMIZER = "model_params.optimizer"


def grid(model: str, optimizers=("adam", "sgd"), lrs=None) -> list[dict]:
    """The settings tried for ``model``: dicts of settings-tree paths (``lr``, ``model_params.optimizer``,
    ``model_params.<schedule knob>``) to values. ``lrs`` replaces the grid's learning rates."""
    around = tuple(get_spec(model).default_lr * f for f in (1 / 3, 1.0, 3.0))
    table = {"adam": ADAM_LRS.get(model, around), "sgd": SGD_LRS.get(model, around)}
    out = []
    for sched in SCHEDULES.get(model, ({},)):
        knobs = {f"model_params.{k}": v for k, v in sched.items()}
        for opt in optimizers:
            out += [{OPTIMIZER: opt, "lr": lr, **knobs} for lr in (lrs or table[opt])]
    return out


def overrides(setting: dict) -> list[str]:
    """A setting as ``path=value`` overrides."""
    return [f"{path}={value}" for path, value in setting.items()]


def make_config(model: str, setting: dict, args, *, seed: int, validation: bool) -> RunConfig:
    """The settings tree of one run: the base run from the options, then ``--set``, then the setting."""
    base = {"model": model, "resonators_per_chain": args.k, "dataset": args.dataset, "data_dir": args.data_dir,
            "epochs": args.epochs, "batch_size": args.batch_size, "seed": seed, "budget": args.budget,
            "validation_fraction": args.validation_fraction if validation else 0.0}
    return RunConfig.from_dict(apply_overrides(base, [*args.set, *overrides(setting)]))


def train(model: str, setting: dict, args, ds, *, seed: int, validation: bool):
    return run_training(make_config(model, setting, args, seed=seed, validation=validation), dataset=ds)


def choose(rows: list, switch_margin: float):
    """The best row (setting, mean, std, accs) by mean validation accuracy; first of equals wins.

    Adam is the project's default optimizer (the RF models use it too), so SGD is chosen only when its best
    setting beats the best Adam setting by more than ``switch_margin`` percentage points.
    """
    best = {opt: max((r for r in rows if r[0][OPTIMIZER] == opt), key=lambda r: r[1], default=None)
            for opt in ("adam", "sgd")}
    if best["adam"] is None or (best["sgd"] is not None and best["sgd"][1] > best["adam"][1] + switch_margin):
        return best["sgd"]
    return best["adam"]


def short(path: str) -> str:
    return path.removeprefix("model_params.")


def describe(setting: dict) -> str:
    extra = ", ".join(f"{short(k)}={v}" for k, v in setting.items() if k not in (OPTIMIZER, "lr"))
    return f"{setting[OPTIMIZER]:<4} lr={setting['lr']:<6g}" + (f"  {extra}" if extra else "")


def suggestion(cfg: RunConfig) -> str:
    """What to change in the registry (default_lr) and in the params dataclass defaults to adopt ``cfg``."""
    spec = cfg.spec
    defaults = spec.params_class()
    parts = [f"default_lr={cfg.effective_lr:g}" + ("" if cfg.effective_lr == spec.default_lr
                                                   else f" (now {spec.default_lr:g})")]
    for f in dataclasses.fields(cfg.model_params):
        value, now = getattr(cfg.model_params, f.name), getattr(defaults, f.name)
        if value != now:
            parts.append(f"{spec.params_class.__name__}.{f.name}={value!r} (now {now!r})")
    return ", ".join(parts)


def mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=list_models("baseline"), choices=list_models("baseline"))
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
    p.add_argument("--optimizers", nargs="+", default=["adam", "sgd"], choices=("adam", "sgd"),
                   help="optimizers of the grid (model_params.optimizer)")
    p.add_argument("--lrs", type=float, nargs="+", help="learning rates to try instead of the grid's")
    p.add_argument("--set", action="append", default=[], metavar="PATH=VALUE",
                   help="an override of every run's settings tree, e.g. model_params.momentum=0.8 (repeatable)")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    try:  # every configuration is checked before the first run
        for model in args.models:
            for setting in grid(model, args.optimizers, args.lrs):
                make_config(model, setting, args, seed=args.tune_seeds[0], validation=True)
    except (SettingError, ValueError) as exc:
        print(f"tune_baselines: {exc}", file=sys.stderr)
        return 2

    ds = load_dataset(args.dataset, args.data_dir)
    print(f"{ds.describe()}; K={args.k} ({args.k * ds.n_classes} weights, {args.budget} budget), "
          f"{args.epochs} epochs, batch {args.batch_size}; tuning on a {args.validation_fraction:.0%} validation "
          f"split, seeds {args.tune_seeds}", flush=True)

    report: dict = {"args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                    "tuning": {}, "chosen": {}, "test": {}}
    print(f"\n{'model':<7} {'setting':<56} {'validation accuracy (%)':>24}")
    for model in args.models:
        rows = []
        for setting in grid(model, args.optimizers, args.lrs):
            accs = [100 * train(model, setting, args, ds, seed=s, validation=True).test_accuracy
                    for s in args.tune_seeds]
            m, sd = mean_std(accs)
            rows.append((setting, m, sd, accs))
            print(f"{model:<7} {describe(setting):<56} {m:>16.2f} ± {sd:<5.2f}", flush=True)
        best = choose(rows, args.switch_margin)
        report["tuning"][model] = [{"setting": s, "val_mean": m, "val_std": sd, "val": a} for s, m, sd, a in rows]
        report["chosen"][model] = {"setting": best[0], "overrides": [*args.set, *overrides(best[0])],
                                   "val_mean": best[1], "val_std": best[2]}
        print(f"{model:<7} -> chosen: {describe(best[0])}  (validation {best[1]:.2f} ± {best[2]:.2f} %)\n",
              flush=True)

    print("\nChosen settings (validation accuracy, mean ± std over tuning seeds):")
    for model, c in report["chosen"].items():
        print(f"  {model:<7} {describe(c['setting']):<56} {c['val_mean']:.2f} ± {c['val_std']:.2f} %")
    print("Suggested defaults (default_lr of the registry entries in engine/config/models.py; other knobs in the "
          "params dataclasses):")
    for model, c in report["chosen"].items():
        cfg = make_config(model, c["setting"], args, seed=args.tune_seeds[0], validation=True)
        print(f"  {model:<7} {suggestion(cfg)}")
    print("  default_lr = {" + ", ".join(f"'{m}': {c['setting']['lr']:g}" for m, c in report["chosen"].items())
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
                                     "synapses": results[0].synapses, "rewiring_events": results[0].rewiring_events,
                                     "config": results[0].config.to_dict()}
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
