"""`make bench`: the engine speed and the app responsiveness benchmarks, each in its own process.

Writes results/bench/*.json (or ``--out``) and exits non-zero if a target is missed.

    python benchmarks/run_all.py                                   # what `make bench` runs
    python benchmarks/run_all.py --only engine --quick --out /tmp/bench   # a smoke test (mnist-mini, 1 epoch)

``--quick`` times one epoch of the embedded mnist-mini set once: it checks that the benchmarks run, its
timings are not the targets' (those are for full MNIST).
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE.parent / "results" / "bench"

#: script -> its extra arguments for `make bench`, and for --quick.
BENCHES = {
    "engine": ("bench_engine.py", ["--threads", "1"],
               ["--dataset", "mnist-mini", "--epochs", "1", "--repeats", "1", "--ks", "10", "--no-sweep"]),
    "moving_inputs": ("bench_moving_inputs.py", ["--threads", "1"], ["--dataset", "mnist-mini", "--ks", "100"]),
    "multilayer": ("bench_multilayer.py", ["--threads", "1"], ["--dataset", "mnist-mini"]),
    "run_batches": ("bench_run_batches.py", ["--threads", "1"], ["--dataset", "mnist-mini", "--ks", "3,30"]),
    "gpu": ("bench_gpu.py", [], ["--dataset", "mnist-mini", "--epochs", "1", "--ks", "10"]),
    "app": ("bench_app.py", [], ["--dataset", "mnist-mini", "--epochs", "1", "--repeats", "1"]),
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="+", choices=list(BENCHES), default=list(BENCHES), help="benchmarks to run")
    ap.add_argument("--quick", action="store_true", help="one epoch of mnist-mini, once (a smoke test)")
    ap.add_argument("--out", type=Path, default=OUT, help="folder of the JSON files (default results/bench)")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    status = 0
    for key in args.only:
        script, extra, quick = BENCHES[key]
        name = script.removesuffix(".py")
        cmd = [sys.executable, str(HERE / script), *extra, *(quick if args.quick else []),
               "--json", str(args.out / f"{name}.json")]
        print(f"$ {' '.join(cmd[1:])}", flush=True)
        status |= subprocess.call(cmd, cwd=HERE.parent)
    print("all targets met" if status == 0 else "some targets missed (see above)")
    return status


if __name__ == "__main__":
    sys.exit(main())
