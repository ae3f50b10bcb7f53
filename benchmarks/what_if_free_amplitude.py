"""What if every resonator also had a trainable amplitude? A diagnostic, not a physical model.

    python benchmarks/what_if_free_amplitude.py [--models rf,rf-frozen] [--seeds 0,1] [--epochs 10]

In physics.md a resonator's peak rectified voltage is fixed (K_SD times the input power): training moves
its frequency only, so each resonator adds a fixed-amplitude dipole to its chain's weights, and only the
read-out gain, shared by all chains, scales them. This script gives every resonator a free positive scale
exp(log_amp) on top, trained with the frequencies, and reports accuracy on a 10 % validation split of full
MNIST (K = 10). Comparing it with benchmarks/tune_rf.py shows how much of the gap between the RF model and
a free-weight perceptron comes from the fixed amplitude. Nothing in engine/ is changed on disk: the chain
layer is patched in this process only, through plain autograd (slower than the engine's fused build).
"""
from __future__ import annotations

import argparse
import sys
import time

import torch
from torch import nn

from engine import chain_layer, physics
from engine.config import RunConfig
from engine.data import load_dataset
from engine.training import run_training


def patch_free_amplitude() -> None:
    """Give RFChainLayer a (C, K) trainable log-amplitude; couplings and W include it."""
    init = chain_layer.RFChainLayer.__init__

    def __init__(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self.log_amp = nn.Parameter(torch.zeros(self.n_chains, self.n_resonators))

    def coupling(self, f_in=None):
        f = self.input_freqs_ghz() if f_in is None else f_in
        c = physics.coupling_tensor(f, self.resonator_freqs_ghz(), self.params, self.alpha_r, self.k_sd_r,
                                    self.signs)
        return c * self.log_amp.exp().unsqueeze(-1)

    chain_layer.RFChainLayer.__init__ = __init__
    chain_layer.RFChainLayer.coupling = coupling
    chain_layer.RFChainLayer.weight = lambda self: self.coupling().sum(dim=1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="rf,rf-frozen")
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--data-dir", default="../shared/data")
    args = ap.parse_args()
    torch.set_num_threads(1)
    patch_free_amplitude()
    ds = load_dataset("mnist", args.data_dir)
    for model in args.models.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            cfg = RunConfig(model=model, resonators_per_chain=10, dataset="mnist", epochs=args.epochs, seed=seed,
                            validation_fraction=0.1)
            t = time.time()
            r = run_training(cfg, ds)
            amp = r.model.chains.log_amp.detach().exp()
            print(f"{model:9s} seed={seed} validation={r.test_accuracy:.4f} train={r.history[-1][2]:.4f} "
                  f"amplitudes {float(amp.min()):.3g}..{float(amp.max()):.3g} {time.time() - t:.0f}s", flush=True)


if __name__ == "__main__":
    sys.exit(main())
