"""A reference-style RF training pipeline, kept only as a speed baseline for benchmarks/bench_engine.py.

It trains the same RF perceptron the way a straightforward simulator does, as the group's public simulator
works: a torchvision DataLoader that converts every image with a per-sample transform, and at every step the
full (C, K, N) tensor of resonator responses built through plain autograd from engine.physics.resonators (no fused
kernel, no FFT build, frequencies trained in GHz). No plasticity: this is the cost of the gradient steps
alone, so it flatters the reference side when compared with rf (which also rewires).
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from engine.physics import resonators as physics
from engine.physics.resonators import DeviceParams


class ReferenceStyleRF(nn.Module):
    """C chains of K resonators; W rebuilt from the (C, K, N) coupling tensor at every forward."""

    def __init__(self, n_inputs: int, n_classes: int, k: int, params: DeviceParams, seed: int = 0) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.params = params
        self.register_buffer("f_in", physics.input_frequencies_ghz(params, n_inputs))
        comb = torch.rand(n_classes, k, generator=gen) * (n_inputs - 1)
        self.f_res = nn.Parameter(physics.comb_to_ghz(comb, params, n_inputs))
        self.bias = nn.Parameter(torch.zeros(n_classes))
        self.log_gain = nn.Parameter(torch.tensor(math.log(0.3 / (params.k_sd * params.p_max_uw))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = physics.coupling_tensor(self.f_in, self.f_res, self.params).sum(dim=1)  # (C, N)
        return torch.exp(self.log_gain) * (self.params.p_max_uw * x @ w.t()) + self.bias


def epoch_seconds(data_root: str | Path, k: int, batch_size: int = 100, lr: float = 0.01,
                  max_steps: int | None = None) -> float:
    """Seconds for one epoch over MNIST's training set (or ``max_steps`` steps, scaled to an epoch)."""
    from torch.utils.data import DataLoader
    from torchvision import datasets, transforms

    train = datasets.MNIST(str(data_root), train=True, download=False, transform=transforms.ToTensor())
    loader = DataLoader(train, batch_size=batch_size, shuffle=True,
                        generator=torch.Generator().manual_seed(0))
    model = ReferenceStyleRF(28 * 28, 10, k, DeviceParams())
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    steps = 0
    start = time.perf_counter()
    for x, y in loader:
        loss = F.cross_entropy(model(x.view(len(x), -1)), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        steps += 1
        if max_steps is not None and steps >= max_steps:
            break
    elapsed = time.perf_counter() - start
    return elapsed * len(loader) / steps
