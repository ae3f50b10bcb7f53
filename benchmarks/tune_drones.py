"""Tune the RF models on the drone RF-fingerprinting set, on a validation split of its training set only.

    python benchmarks/tune_drones.py [--what single|multilayer|both|scaling] [--seeds 0,1] [--test-seeds 0,1,2]

For every setting of the grid, each seed trains on 80 % of the 702 training spectra and is scored on the other
20 % (``validation_fraction=0.2``, a seeded split); the test set is not touched. The setting with the best
mean validation accuracy is then trained on the full training set for every test seed and scored on the 298
test spectra: those are the figures the README reports. The table goes to stdout, the chosen settings and
their test accuracies as the last line (JSON).

``--what scaling`` compares input scalings for the single-layer setting chosen above (rf-input, K = 10, lr 0.1,
120 epochs, batches of 20), on the same validation splits: the shipped one (every feature divided by the
training set's largest value), each feature divided by its own training maximum, and the square root of the
shipped one (a compressed dynamic range). Each is computed from the training part of the split only.
"""
from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import time

import torch

from engine.config.run_config import build_config
from engine.data import load_dataset
from engine.training.loop import run_training

#: Single-layer rf-input at K = 10: learning rate x epochs x batch size.
SINGLE_GRID = {"lr": (0.1, 0.2, 0.4), "epochs": (60, 120), "batch_size": (20,)}
#: Two-layer rf-input 256-H-10: hidden width and K of each layer, learning rate.
MULTI_GRID = {"hidden": ((32,), (64,)), "ks": ((10, 32), (16, 32)), "lr": (0.1, 0.2), "epochs": (60,),
              "batch_size": (20,)}


def settings(grid: dict) -> list[dict]:
    keys = list(grid)
    out = []
    for values in itertools.product(*(grid[k] for k in keys)):
        s = dict(zip(keys, values))
        if "hidden" in s:
            k0, k1 = s.pop("ks")
            h = s["hidden"][0]
            s["resonators_per_chain"], s["layer_resonators"] = k0, (min(k1, h),)
        out.append(s)
    return out


def run(base: dict, ds, seed: int, validation: bool) -> float:
    cfg = build_config(base={**base, "dataset": "drones", "seed": seed,
                             "validation_fraction": 0.2 if validation else 0.0})
    return run_training(cfg, dataset=ds).test_accuracy


def _scaled(ds, how: str):
    """``ds`` with its features mapped by ``how``, using statistics of its training part only."""
    import dataclasses

    if how == "global-max":
        return ds
    if how == "per-feature-max":
        top = ds.train_x.max(dim=0).values.clamp_min(1e-12)
        f = lambda x: (x / top).clamp(0.0, 1.0)  # noqa: E731
    elif how == "sqrt":
        f = torch.sqrt
    else:
        raise ValueError(how)
    return dataclasses.replace(ds, train_x=f(ds.train_x).contiguous(), test_x=f(ds.test_x).contiguous(),
                               scaling={**ds.scaling, "tuning_transform": how})


def compare_scalings(ds, seeds) -> dict:
    base = {"model": "rf-input", "resonators_per_chain": 10, "lr": 0.1, "epochs": 120, "batch_size": 20,
            "dataset": "drones"}
    out = {}
    for how in ("global-max", "per-feature-max", "sqrt"):
        accs = []
        for seed in seeds:
            split = _scaled(ds.validation_split(0.2, seed=seed), how)
            accs.append(run_training(build_config(base={**base, "seed": seed}), dataset=split).test_accuracy)
        out[how] = accs
        print(f"scaling {how:<16} val {100 * statistics.fmean(accs):6.2f} % "
              f"({', '.join(f'{100 * a:.1f}' for a in accs)})", flush=True)
    return out


def tune(name: str, model_base: dict, grid: dict, ds, seeds, test_seeds) -> dict:
    rows = []
    for s in settings(grid):
        t = time.perf_counter()
        accs = [run({**model_base, **s}, ds, seed, True) for seed in seeds]
        rows.append((statistics.fmean(accs), s, accs))
        print(f"{name:<11} {json.dumps(s, default=list):<90} val {100 * rows[-1][0]:6.2f} % "
              f"({', '.join(f'{100 * a:.1f}' for a in accs)})  {time.perf_counter() - t:5.1f} s", flush=True)
    best_val, best, _ = max(rows, key=lambda r: r[0])
    tests = [run({**model_base, **best}, ds, seed, False) for seed in test_seeds]
    print(f"{name}: best on validation {100 * best_val:.2f} % with {json.dumps(best, default=list)}; test "
          f"{', '.join(f'{100 * a:.2f}' for a in tests)} % (mean {100 * statistics.fmean(tests):.2f})", flush=True)
    return {"name": name, "settings": {**model_base, **best}, "validation": best_val, "test": tests}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--what", choices=("single", "multilayer", "both", "scaling"), default="both")
    p.add_argument("--seeds", default="0,1", help="seeds of the validation runs")
    p.add_argument("--test-seeds", default="0,1,2", help="seeds of the final test runs")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    seeds = [int(s) for s in args.seeds.split(",")]
    test_seeds = [int(s) for s in args.test_seeds.split(",")]
    ds = load_dataset("drones")
    out = []
    if args.what == "scaling":
        print(json.dumps(compare_scalings(ds, seeds)))
        return 0
    if args.what in ("single", "both"):
        out.append(tune("single", {"model": "rf-input", "resonators_per_chain": 10}, SINGLE_GRID, ds, seeds,
                        test_seeds))
    if args.what in ("multilayer", "both"):
        out.append(tune("multilayer", {"model": "rf-input"}, MULTI_GRID, ds, seeds, test_seeds))
    print(json.dumps(out, default=list))
    return 0


if __name__ == "__main__":
    sys.exit(main())
