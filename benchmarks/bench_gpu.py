"""GPU speed: epoch times at K = 10, 100 and 784 on the GPU (and the CPU, for comparison), and the
throughput of the quick sweep's runs, when torch sees a GPU. Without one it says so and exits 0.

    python benchmarks/bench_gpu.py [--data-dir ../shared/data] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from engine.config.run_config import RunConfig  # noqa: E402
from engine.data import load_dataset  # noqa: E402
from engine.experiments.sweep.runner import SweepSpec  # noqa: E402
from engine.training.loop import run_training  # noqa: E402

MODELS = ("dense", "rf-frozen", "rf", "rf-input")


def epoch_seconds(model: str, k: int, ds, device: str, epochs: int) -> float:
    cfg = RunConfig(model=model, resonators_per_chain=k, dataset=ds.name, epochs=epochs, compute_device=device)
    run_training(cfg.with_(epochs=1), ds)  # warm-up: kernels, plans, allocator
    result = run_training(cfg, ds)
    return result.train_seconds / epochs


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--dataset", default="mnist")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--ks", default="10,100,784")
    ap.add_argument("--cpu", action="store_true", help="also time the CPU (1 thread) for comparison")
    ap.add_argument("--json", help="write the measurements to this file")
    args = ap.parse_args(argv)
    if not torch.cuda.is_available():
        print("bench_gpu: torch sees no GPU on this machine, so there is nothing to measure "
              f"(torch {torch.__version__}, CUDA build: {torch.version.cuda or 'none'}).")
        if args.json:
            Path(args.json).write_text(json.dumps({"gpu": None}))
        return 0
    name = torch.cuda.get_device_name(0)
    ds = load_dataset(args.dataset, args.data_dir)
    print(f"GPU: {name}; {ds.describe()}; {args.epochs} epoch(s) per timed run after a warm-up run")
    devices = ["cuda"] + (["cpu"] if args.cpu else [])
    if args.cpu:
        torch.set_num_threads(1)
    table = {}
    for k in (int(v) for v in args.ks.split(",")):
        for device in devices:
            row = {m: epoch_seconds(m, k, ds, device, args.epochs) for m in MODELS}
            table[f"{device} K={k}"] = row
            print(f"  {device:4s} K = {k:<4d} " + "  ".join(f"{m} {s:6.2f} s" for m, s in row.items()),
                  flush=True)
    quick = SweepSpec.quick()
    mini = load_dataset(quick.base.dataset)
    jobs = quick.jobs(mini.n_inputs)
    start = time.perf_counter()
    for cfg in jobs:
        run_training(cfg.with_(compute_device="cuda"), mini)
    elapsed = time.perf_counter() - start
    print(f"quick sweep on the GPU, one process: {len(jobs)} runs in {elapsed:.1f} s "
          f"({len(jobs) / elapsed * 60:.1f} runs per minute)")
    if args.json:
        Path(args.json).write_text(json.dumps({"gpu": name, "epoch_seconds": table,
                                               "quick_sweep": {"runs": len(jobs), "seconds": elapsed}}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
