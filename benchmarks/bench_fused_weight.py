"""The fused exact weight build against the eager one, side by side: forward and backward of W at a few shapes.

    python benchmarks/bench_fused_weight.py [--threads 1] [--repeats 20]

For each (chains C, resonators K, inputs N) shape, the mean time of one forward pass and one backward pass
(gradients for the input and resonance frequencies, as rf-input needs; ``--no-input-grad`` for rf) of
engine.layers.exact_weight.ExactWeight (eager tensor passes, the reference) and
engine.layers.fused_weight.FusedWeight (numba loops), timed in turns in one process, and the largest
difference of W and of the gradients relative to max|W| (or max|gradient|). Shapes: K = 10 (the reference
sweep's headline), the two-layer network's first layer (100 x 30 x 784) and K = N = 784.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.layers import fused_weight  # noqa: E402
from engine.layers.exact_weight import ExactWeight  # noqa: E402
from engine.layers.fused_weight import FusedWeight  # noqa: E402

SHAPES = ((10, 10, 784), (100, 30, 784), (10, 100, 784), (10, 784, 784))


def case(c: int, k: int, n: int, repeats: int, input_grad: bool) -> dict:
    gen = torch.Generator().manual_seed(0)
    f_in = (2.0 + 3.0 * torch.rand(n, generator=gen)).requires_grad_(input_grad)
    f_res = (2.0 + 3.0 * torch.rand(c, k, generator=gen)).requires_grad_()
    amp = torch.randn(c, k, generator=gen)
    g = torch.randn(c, n, generator=gen)
    alpha = 2e-3
    builds = {
        "eager": lambda: ExactWeight.apply(f_in, f_res, torch.full_like(f_res, alpha), amp, 0.0, True),
        "fused": lambda: FusedWeight.apply(f_in, f_res, alpha, amp, 0.0),
    }
    out, spent = {}, dict.fromkeys(builds, 0.0)
    for name, build in builds.items():
        f_in.grad = f_res.grad = None
        w = build()
        (w * g).sum().backward()
        out[name] = (w.detach(), None if f_in.grad is None else f_in.grad.clone(), f_res.grad.clone())
    for _ in range(repeats):
        for name, build in builds.items():  # in turns, so that a shared machine's load falls on both alike
            t0 = time.perf_counter()
            (build() * g).sum().backward()
            spent[name] += time.perf_counter() - t0

    def err(a, b):
        return float((a - b).abs().max() / b.abs().max()) if a is not None else 0.0

    eager, fused = out["eager"], out["fused"]
    return {
        "eager_ms": 1e3 * spent["eager"] / repeats,
        "fused_ms": 1e3 * spent["fused"] / repeats,
        "errors": [err(fused[i], eager[i]) for i in range(3)],
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--no-input-grad", action="store_true", help="resonance gradients only (rf, rf-frozen)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    if not fused_weight.available():
        print("numba does not import here: no fused build to time")
        return 1
    print(f"torch threads {torch.get_num_threads()}; forward + backward, mean of {args.repeats}")
    for c, k, n in SHAPES:
        r = case(c, k, n, args.repeats, not args.no_input_grad)
        e = ", ".join(f"{x:.1e}" for x in r["errors"])
        print(f"  C={c:3d} K={k:3d} N={n}: eager {r['eager_ms']:7.2f} ms  fused {r['fused_ms']:6.2f} ms  "
              f"{r['eager_ms'] / r['fused_ms']:4.1f}x  (W, input, resonance gradient differences: {e})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
