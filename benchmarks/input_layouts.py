"""Experiment: does it matter which pixel sits at which slot of the input frequency comb? (RF model, K = 10)

    python benchmarks/input_layouts.py [--layouts raster,hilbert,...] [--seeds 0] [--epochs 10]

The frequency plan fixes the comb of input frequencies; the layout fixes which input oscillator (pixel)
emits at each of them. The engine uses raster order (pixel i at slot i). A resonator couples to the inputs
near its resonance with long 1/detuning tails, so comb neighbours always receive related weights, and the
layout changes what K resonators can express. Accuracy is on a 10 % validation split of full MNIST.

A layout is a permutation ``order`` with ``order[slot] = pixel``; the chain layer's input comb positions are
its inverse.
"""
from __future__ import annotations

import argparse
import math
import sys
import time

import torch

from engine import rf_perceptron
from engine.config import RunConfig
from engine.data import load_dataset
from engine.training import run_training

LAYOUTS = ("raster", "column", "snake", "hilbert", "spiral", "correlation", "classpc", "classpc2")


def _image_side(n_inputs: int) -> int:
    side = int(round(math.sqrt(n_inputs)))
    if side * side != n_inputs:
        raise ValueError(f"layout needs a square image (got {n_inputs} inputs)")
    return side


def _hilbert_d2xy(order: int, d: int) -> tuple[int, int]:
    x = y = 0
    s, t = 1, d
    while s < (1 << order):
        rx = 1 & (t // 2)
        ry = 1 & (t ^ rx)
        if ry == 0:
            if rx == 1:
                x, y = s - 1 - x, s - 1 - y
            x, y = y, x
        x += s * rx
        y += s * ry
        t //= 4
        s *= 2
    return x, y


def layout_order(name: str, n_inputs: int, images: torch.Tensor | None = None,
                 labels: torch.Tensor | None = None) -> torch.Tensor:
    """Permutation (N,) of the input indices, in comb order."""
    if name == "raster":
        return torch.arange(n_inputs)
    side = _image_side(n_inputs)
    if name == "column":
        return torch.arange(n_inputs).view(side, side).t().reshape(-1)
    if name == "snake":
        rows = torch.arange(n_inputs).view(side, side)
        rows[1::2] = rows[1::2].flip(1)
        return rows.reshape(-1)
    if name == "hilbert":
        order = max(1, math.ceil(math.log2(side)))
        pts = (_hilbert_d2xy(order, d) for d in range(1 << (2 * order)))
        return torch.tensor([r * side + c for c, r in pts if r < side and c < side])
    if name == "spiral":
        r, c = torch.meshgrid(torch.arange(side), torch.arange(side), indexing="ij")
        dy, dx = r.flatten() - (side - 1) / 2, c.flatten() - (side - 1) / 2
        ring = torch.maximum(dy.abs(), dx.abs())
        angle = torch.atan2(dy, dx)
        key = ring * 10.0 + (angle + math.pi) / (2 * math.pi)
        return key.argsort()
    if name == "correlation":  # spectral seriation of the pixel correlations (Fiedler vector), dead pixels at the ends
        x = images.double()
        x = x - x.mean(0)
        std = x.square().mean(0).sqrt()
        live = std > 1e-3
        xs = x[:, live] / std[live]
        corr = (xs.t() @ xs) / len(xs)
        aff = corr.clamp_min(0.0)
        lap = torch.diag(aff.sum(1)) - aff
        deg = aff.sum(1).sqrt()
        nlap = lap / deg.view(-1, 1) / deg.view(1, -1)
        _, vecs = torch.linalg.eigh(nlap)
        fiedler = vecs[:, 1] / deg
        live_idx = torch.nonzero(live).flatten()[fiedler.argsort()]
        dead = torch.nonzero(~live).flatten()
        half = len(dead) // 2
        return torch.cat([dead[:half], live_idx, dead[half:]])
    if name in ("classpc", "classpc2"):  # by the class means' first principal direction, or the angle in the top two
        x, y = images, labels
        means = torch.stack([x[y == c].mean(0) for c in range(int(y.max()) + 1)]).double()
        means = means - means.mean(0)
        u, s_, vt = torch.linalg.svd(means, full_matrices=False)
        if name == "classpc":
            return vt[0].argsort()
        return torch.atan2(vt[1], vt[0]).argsort()
    raise ValueError(f"unknown input layout {name!r} (choose one of: {', '.join(LAYOUTS)})")


def input_comb_for(order: torch.Tensor) -> torch.Tensor:
    """Comb position of every input (N,), float: the inverse permutation of ``order``."""
    pos = torch.empty(len(order), dtype=torch.float32)
    pos[order] = torch.arange(len(order), dtype=torch.float32)
    return pos


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--layouts", default=",".join(LAYOUTS))
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--data-dir", default="../shared/data")
    args = ap.parse_args()
    torch.set_num_threads(1)
    ds = load_dataset("mnist", args.data_dir)
    original = rf_perceptron.RFPerceptron.attach_data
    for name in args.layouts.split(","):
        def attach(self, train_x, train_y, _name=name):
            with torch.no_grad():
                self.chains.input_comb.copy_(input_comb_for(layout_order(_name, self.n_inputs, train_x, train_y)))
            original(self, train_x, train_y)
        rf_perceptron.RFPerceptron.attach_data = attach
        for seed in (int(s) for s in args.seeds.split(",")):
            cfg = RunConfig(model="rf", resonators_per_chain=10, dataset="mnist", epochs=args.epochs, seed=seed,
                            validation_fraction=0.1)
            t = time.time()
            r = run_training(cfg, ds)
            print(f"{name:12s} seed={seed} validation={r.test_accuracy:.4f} {time.time() - t:.0f}s", flush=True)
    rf_perceptron.RFPerceptron.attach_data = original


if __name__ == "__main__":
    sys.exit(main())
