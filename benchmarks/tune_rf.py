"""Tune the RF models on a validation split of full MNIST (never the test set).

    python benchmarks/tune_rf.py --models rf,rf-input --epochs 10 set lr=0.1 plasticity.fraction=0.3 ...

Each `set` group is one configuration; module-level knobs of engine.rf_perceptron / engine.plasticity can be
overridden as rf_perceptron.INITIAL_GAIN=0.5 or plasticity_module.GRID_STEP=0.5.
"""
from __future__ import annotations

import argparse
import ast
import dataclasses
import sys
import time

import torch

from engine import chain_layer as chain_mod
from engine import plasticity as plasticity_mod
from engine import rf_perceptron as rf_mod
from engine.config import RunConfig
from engine.data import load_dataset
from engine.training import run_training

MODULES = {"rf_perceptron": rf_mod, "plasticity_module": plasticity_mod, "chain_layer": chain_mod}


def parse_value(v: str):
    try:
        return ast.literal_eval(v)
    except (ValueError, SyntaxError):
        return v


def apply(cfg: RunConfig, assignments: list[str]) -> RunConfig:
    for a in assignments:
        key, value = a.split("=", 1)
        value = parse_value(value)
        head, _, tail = key.partition(".")
        if head in MODULES:
            setattr(MODULES[head], tail, value)
        elif head in ("device", "plasticity") and tail:
            cfg = cfg.with_(**{head: dataclasses.replace(getattr(cfg, head), **{tail: value})})
        else:
            cfg = cfg.with_(**{key: value})
    return cfg


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="rf,rf-input")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--dataset", default="mnist")
    ap.add_argument("--data-dir", default="../shared/data")
    ap.add_argument("--test", action="store_true", help="report test accuracy instead of validation")
    ap.add_argument("rest", nargs="*", help="'set' k=v ... groups")
    args = ap.parse_args()
    torch.set_num_threads(1)
    groups, cur = [], None
    for tok in args.rest:
        if tok == "set":
            cur = []
            groups.append(cur)
        else:
            cur.append(tok)
    groups = groups or [[]]
    ds = load_dataset(args.dataset, args.data_dir)
    defaults = {name: dict(vars(m)) for name, m in MODULES.items()}
    for g in groups:
        for model in args.models.split(","):
            for seed in [int(s) for s in args.seeds.split(",")]:
                for name, m in MODULES.items():  # restore module knobs between groups
                    for k, v in defaults[name].items():
                        if k.isupper():
                            setattr(m, k, v)
                cfg = RunConfig(model=model, resonators_per_chain=args.k, dataset=args.dataset,
                                epochs=args.epochs, seed=seed, validation_fraction=0.0 if args.test else 0.1)
                cfg = apply(cfg, g)
                t = time.time()
                r = run_training(cfg, ds)
                print(f"{model:9s} seed={seed} {' '.join(g) or '(defaults)':60s} "
                      f"{r.evaluated_on}={r.test_accuracy:.4f} epochs={[round(h[3], 3) for h in r.history]} train={r.history[-1][2]:.3f} "
                      f"{time.time() - t:.0f}s", flush=True)


if __name__ == "__main__":
    sys.exit(main())
