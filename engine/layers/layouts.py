"""Where an RF chain layer's resonators start: the initial comb positions (C, K) of its layouts."""

from __future__ import annotations

import torch

from engine.core.enums import InitLayout


def tiled_resonator_comb(n_inputs: int, n_chains: int, n_resonators: int) -> torch.Tensor:
    """The fabricated layout under a limited tuning range (device.tuning_range): resonator k of every chain at
    (k + 1/2) (N - 1) / K, so the K reachable windows are spread evenly over the band and shared by the chains
    (as in the 'aligned' layout). Deterministic, so a network read from a file recovers its fabricated
    frequencies, which set its tuning ranges and set-point levels."""
    sites = (torch.arange(n_resonators, dtype=torch.float64) + 0.5) * ((n_inputs - 1) / n_resonators)
    return sites.to(torch.float32).view(1, -1).expand(n_chains, -1).clone()


def initial_resonator_comb(
    n_inputs: int,
    n_chains: int,
    n_resonators: int,
    generator: torch.Generator,
    layout: InitLayout = InitLayout.ALIGNED,
    jitter: float = 2.0,
) -> torch.Tensor:
    """Initial comb positions (C, K) of the resonators. 'random': uniform over the band, independently per
    chain; 'aligned': the chains share K random sites, each resonator within ``jitter`` spacings (std) of it."""
    if layout == InitLayout.ALIGNED:
        sites = torch.rand(1, n_resonators, generator=generator) * (n_inputs - 1)
        return (sites + jitter * torch.randn(n_chains, n_resonators, generator=generator)).clamp(0, n_inputs - 1)
    if layout == InitLayout.RANDOM:
        return torch.rand(n_chains, n_resonators, generator=generator) * (n_inputs - 1)
    raise ValueError(f"initial layout must be one of {', '.join(InitLayout)} (got {layout!r})")


def fabricated(
    n_inputs: int,
    n_chains: int,
    n_resonators: int,
    generator: torch.Generator,
    limited: bool,
    layout: InitLayout = InitLayout.ALIGNED,
    jitter: float = 2.0,
) -> torch.Tensor:
    """The resonators' starting comb positions (C, K): :func:`tiled_resonator_comb` under a limited tuning range
    (``limited``), else :func:`initial_resonator_comb` in ``layout``, drawn from ``generator``."""
    if limited:
        return tiled_resonator_comb(n_inputs, n_chains, n_resonators)
    return initial_resonator_comb(n_inputs, n_chains, n_resonators, generator, layout, jitter)


__all__ = ["fabricated", "initial_resonator_comb", "tiled_resonator_comb"]
