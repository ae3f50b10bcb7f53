"""Tune the RF models on a validation split of the training set. Tune on validation, never on the test set.

    python benchmarks/tune_rf.py --models rf,rf-input --epochs 10 \\
        set lr=0.1 plasticity.fraction=0.3 model_params.initial_gain=0.5 \\
        set plasticity.grid_step=0.5 model_params.init_layout=random

Each ``set`` group is one configuration: a list of ``path=value`` overrides of the run's settings tree
(engine.config.run_config.RunConfig: ``lr``, ``epochs``, ``device.*``, ``plasticity.*``, ``model_params.*``, ...),
applied with engine.config.run_config.apply_overrides on top of the base run built from the options below; without
any group the defaults are trained. Every group is checked before the first run starts: a misspelt key or a
badly typed value stops the script with one sentence.

Accuracy is reported on a held-out split of the training set (``--validation-fraction``, 10 % by default).
``--test`` reports the test set instead: use it only to measure settings already chosen on validation,
never to choose them.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from engine.config.run_config import RunConfig, SettingError, apply_overrides  # noqa: E402
from engine.data import load_dataset  # noqa: E402
from engine.config.models import list_models  # noqa: E402
from engine.training.loop import run_training  # noqa: E402


def split_groups(tokens: list[str]) -> list[list[str]]:
    """``['set', 'a=1', 'b=2', 'set', 'c=3']`` -> ``[['a=1', 'b=2'], ['c=3']]``; no tokens: one empty group."""
    groups: list[list[str]] = []
    for tok in tokens:
        if tok == "set":
            groups.append([])
        elif not groups:
            raise SettingError(f"overrides must follow the word 'set' (got {tok!r} first)")
        else:
            groups[-1].append(tok)
    return groups or [[]]


def base_mapping(args, model: str, seed: int) -> dict:
    """The base run of the tuning (a nested settings mapping) before a group's overrides."""
    return {"model": model, "resonators_per_chain": args.k, "dataset": args.dataset, "data_dir": args.data_dir,
            "epochs": args.epochs, "seed": seed,
            "validation_fraction": 0.0 if args.test else args.validation_fraction}


def build(args, model: str, seed: int, overrides: list[str]) -> RunConfig:
    cfg = RunConfig.from_dict(apply_overrides(base_mapping(args, model, seed), overrides))
    if not args.test and cfg.validation_fraction <= 0:
        raise SettingError("validation_fraction must stay > 0 while tuning (use --test to measure chosen "
                           "settings on the test set)")
    return cfg


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="rf,rf-input", help=f"comma-separated, of: {', '.join(list_models('rf'))}")
    ap.add_argument("--k", type=int, default=10, help="resonators per chain K")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--seeds", default="0", help="comma-separated seeds")
    ap.add_argument("--dataset", default="mnist")
    ap.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--validation-fraction", type=float, default=0.1)
    ap.add_argument("--test", action="store_true",
                    help="report test accuracy instead of validation (only for settings already chosen)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("rest", nargs="*", metavar="set path=value ...", help="configurations to try")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    models = [m for m in args.models.split(",") if m]
    seeds = [int(s) for s in args.seeds.split(",") if s]
    try:
        groups = split_groups(args.rest)
        for g in groups:  # check every configuration before training any
            for model in models:
                build(args, model, seeds[0], g)
    except (SettingError, ValueError) as exc:
        print(f"tune_rf: {exc}", file=sys.stderr)
        return 2

    ds = load_dataset(args.dataset, args.data_dir)
    print(f"{ds.describe()}; K={args.k}, {args.epochs} epochs, "
          + ("TEST set" if args.test else f"{args.validation_fraction:.0%} validation split"), flush=True)
    for g in groups:
        label = " ".join(g) or "(defaults)"
        for model in models:
            for seed in seeds:
                cfg = build(args, model, seed, g)
                t = time.time()
                r = run_training(cfg, ds)
                print(f"{model:9s} seed={seed} {label:60s} "
                      f"{r.evaluated_on}={r.test_accuracy:.4f} epochs={[round(h[3], 3) for h in r.history]} "
                      f"train={r.history[-1][2]:.3f} lr={r.config.lr:g} {time.time() - t:.0f}s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
