"""Training input frequencies at every K: rf-input against rf, side by side in one run (issue "fast at every shape").

    python benchmarks/bench_moving_inputs.py [--data-dir ../shared/data] [--ks 100,300,784] [--threads 1]
                                             [--seeds 0] [--exact] [--calibrate] [--json out.json]

For each K, one epoch on full MNIST (batch 100) of rf (resonances trained; the comb FFT build of
engine.layers.fast_weight) and of rf-input (input frequencies trained too; the inputs move off the comb, so
the default build is the log-frequency grid of engine.layers.grid_weight), and with ``--exact`` of rf-input
on the exact C·K·N build it replaced. Seconds per epoch are the runs' training time, plasticity rounds
included, the best over ``--seeds``; accuracies are the mean and sample std over the seeds (the seed-to-seed
spread that a build's accuracy must stay within). Targets: rf-input at K = 784 <= 3.0 s and <= 1.5x rf at
every K >= 100. The machine's load average is printed before and after (timings are ratios measured here).

``--calibrate`` instead times the grid and exact builds alone (forward and backward) over a few shapes, side by
side, against the cost model that 'auto' uses to choose between them (engine.layers.grid_weight).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.config.run_config import RunConfig  # noqa: E402
from engine.data import load_dataset  # noqa: E402
from engine.layers import fused_weight, grid_weight  # noqa: E402
from engine.layers.chain import RFChainLayer  # noqa: E402
from engine.nets.rf_perceptron import RFParams  # noqa: E402
from engine.physics.resonators import DeviceParams  # noqa: E402
from engine.training.loop import run_training  # noqa: E402

MAX_SECONDS_784 = 3.0
MAX_RATIO = 1.5


def load() -> str:
    return "load average %.2f %.2f %.2f" % os.getloadavg()


def one_epoch(model: str, ds, k: int, seeds: list[int], build: str) -> tuple[float, float, float]:
    """(best seconds per epoch, mean test accuracy, its sample std) over the seeds."""
    secs, accs = [], []
    for seed in seeds:
        cfg = RunConfig(model=model, resonators_per_chain=k, dataset=ds.name, epochs=1, seed=seed,
                        model_params=RFParams(weight_build=build))
        r = run_training(cfg, ds)
        secs.append(r.train_seconds)
        accs.append(r.test_accuracy)
    return min(secs), statistics.fmean(accs), statistics.stdev(accs) if len(accs) > 1 else 0.0


def _build_seconds(layers: list[RFChainLayer], repeats: int = 20) -> list[float]:
    """Fastest seconds of a weight build (forward and backward) of each layer, timed in turns (so that a
    shared machine's load falls on all alike; the minimum is the least disturbed)."""
    g = torch.randn(layers[0].n_chains, layers[0].n_inputs)

    def step(layer):
        layer.zero_grad(set_to_none=True)
        (layer.weight() * g).sum().backward()

    best = [float("inf")] * len(layers)
    for r in range(repeats + 2):
        for i, layer in enumerate(layers):
            t0 = time.perf_counter()
            step(layer)
            if r >= 2:  # after two warm-up rounds
                best[i] = min(best[i], time.perf_counter() - t0)
    return best


def calibrate(chains: int = 10) -> None:
    """Time the grid build and the exact formula of rf-input layers over a few shapes, side by side, against
    the cost model's predictions and the choice 'auto' makes. The exact formula is the build 'auto' would use
    instead: the fused loops (engine.layers.fused_weight) where numba imports, else the eager build; the eager
    build is timed too, for reference."""
    shapes = ((784, 784, 0.005), (784, 150, 0.005), (784, 100, 0.005), (784, 64, 0.005), (256, 300, 0.01),
              (100, 50, 0.002), (784, 300, 0.02), (100, 100, 0.05))
    right = 0
    for n, k, alpha in shapes:
        dev = DeviceParams(alpha=alpha)
        grid_layer = RFChainLayer(n, chains, k, dev, train_inputs=True, weight_build="fft")
        eager_layer = RFChainLayer(n, chains, k, dev, train_inputs=True, weight_build="exact")
        fused = fused_weight.available()
        exact_layer = RFChainLayer(n, chains, k, dev, train_inputs=True, weight_build="fused") if fused else eager_layer
        t_grid, t_exact, t_eager = _build_seconds([grid_layer, exact_layer, eager_layer])
        build = grid_layer.grid_build()
        f = build.grid.fft_size
        model_grid = grid_weight.OVERHEAD_NS + chains * (
            f * math.log2(f) * grid_weight.FFT_NS + (n + k) * build.grid.points * grid_weight.STENCIL_NS)
        exact_ns = grid_layer._exact_ns()
        model_exact = chains * n * k * exact_ns
        auto = "grid" if build.cheaper_than_exact(chains, n, k, exact_ns) else "exact"
        faster = "grid" if t_grid < t_exact else "exact"
        right += auto == faster
        print(f"  N={n:4d} K={k:4d} alpha={alpha}: grid build {t_grid * 1e3:6.2f} ms (model {model_grid / 1e6:5.2f}, "
              f"F={f}), exact formula ({'fused' if fused else 'eager'}) {t_exact * 1e3:6.2f} ms (model "
              f"{model_exact / 1e6:5.2f}; eager {t_eager * 1e3:6.2f} ms); auto: {auto}, faster: {faster}", flush=True)
    print(f"auto chose the faster build for {right} of {len(shapes)} shapes")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--dataset", default="mnist", help="dataset name (the targets are for full MNIST)")
    ap.add_argument("--ks", default="100,300,784")
    ap.add_argument("--seeds", default="0", help="comma-separated seeds (accuracy spread needs several)")
    ap.add_argument("--exact", action="store_true", help="also time rf-input on the exact build")
    ap.add_argument("--calibrate", action="store_true", help="time the builds alone against the cost model")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    ap.add_argument("--json", help="write the measurements to this file")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"torch threads {torch.get_num_threads()}; {load()}", flush=True)
    if args.calibrate:
        calibrate()
        print(load())
        return 0
    ds = load_dataset(args.dataset, args.data_dir)
    seeds = [int(s) for s in args.seeds.split(",")]
    runs = [("rf", "auto"), ("rf-input", "auto")] + ([("rf-input", "exact")] if args.exact else [])
    table: dict = {}
    ok = True
    for k in (int(k) for k in args.ks.split(",")):
        row = {f"{m}/{b}": one_epoch(m, ds, k, seeds, b) for m, b in runs}
        table[k] = row
        ratio = row["rf-input/auto"][0] / row["rf/auto"][0]
        passed = ratio <= MAX_RATIO and (k != 784 or row["rf-input/auto"][0] <= MAX_SECONDS_784)
        ok &= passed
        cells = "  ".join(f"{name} {s:6.2f} s (acc {a:.4f} ± {sd:.4f})" for name, (s, a, sd) in row.items())
        print(f"  K = {k:<4d} {cells}  rf-input/rf {ratio:.2f}x: {'PASS' if passed else 'FAIL'}", flush=True)
    print(f"{load()}; targets: rf-input <= {MAX_RATIO}x rf at every K, <= {MAX_SECONDS_784} s at K = 784: "
          f"{'all met' if ok else 'NOT met'}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"epoch_seconds_accuracy_std": {str(k): v for k, v in table.items()}, "seeds": seeds,
                       "threads": torch.get_num_threads(), "all_targets_met": ok}, fh, indent=2)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
