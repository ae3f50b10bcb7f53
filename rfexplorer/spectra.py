"""Spectra for the views, computed from a snapshot's frequencies with engine.physics.resonators (no physics here).

The probe grid is uniform in comb units (one unit = one input spacing), so every linewidth gets the same
number of points whatever the frequency plan; the chain response is engine.physics.resonators.coupling_tensor summed
over the chain's resonators, exactly what RFPerceptron.chain_response evaluates.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from engine.physics import resonators as physics
from engine.physics.resonators import DeviceParams


def probe_frequencies_ghz(params: DeviceParams, n_inputs: int, n_resonators: int) -> np.ndarray:
    """Probe frequencies covering the tuning range, ~5 points per input spacing (fewer for long chains)."""
    lo, hi = physics.tuning_range_comb(params, n_inputs)
    per_spacing = 5 if n_resonators <= 64 else (3 if n_resonators <= 256 else 2)
    n = int((hi - lo) * per_spacing) + 1
    u = torch.linspace(lo, hi, n, dtype=torch.float64)
    return physics.comb_to_ghz(u, params, n_inputs).to(torch.float32).numpy()


def nominal_input_frequencies_ghz(params: DeviceParams, n_inputs: int) -> np.ndarray:
    return physics.input_frequencies_ghz(params, n_inputs).numpy()


@torch.no_grad()
def chain_response(resonator_freqs_ghz: np.ndarray, signs: Optional[np.ndarray], params: DeviceParams,
                   probe_ghz: np.ndarray) -> np.ndarray:
    """Voltage per µW of a probe tone, for each chain in ``resonator_freqs_ghz`` (C, K) -> (C, M)."""
    f_res = torch.as_tensor(np.asarray(resonator_freqs_ghz, dtype=np.float32))
    if f_res.ndim == 1:
        f_res = f_res.unsqueeze(0)
    s = None if signs is None else torch.as_tensor(np.asarray(signs, dtype=np.float32))
    f = torch.as_tensor(np.asarray(probe_ghz, dtype=np.float32))
    return physics.coupling_tensor(f, f_res, params, signs=s).sum(dim=1).numpy()


def comb_to_ghz(u, params: DeviceParams, n_inputs: int) -> np.ndarray:
    """engine.physics.resonators.comb_to_ghz for numpy arrays (float64)."""
    return physics.comb_to_ghz(torch.as_tensor(np.asarray(u, dtype=np.float64)), params, n_inputs).numpy()


def ghz_to_comb(f, params: DeviceParams, n_inputs: int) -> np.ndarray:
    """engine.physics.resonators.ghz_to_comb for numpy arrays (float64)."""
    return physics.ghz_to_comb(torch.as_tensor(np.asarray(f, dtype=np.float64)), params, n_inputs).numpy()


def tuning_bounds_comb(bounds_ghz: Optional[np.ndarray], params: DeviceParams, n_inputs: int,
                       shape: tuple) -> tuple[np.ndarray, np.ndarray]:
    """(lo, hi) comb bounds of each resonator, shaped ``shape`` (C, K): from a snapshot's (C, K, 2) bounds in
    GHz (a limited tuning range), or the band plus the tuning margin for all (unlimited)."""
    if bounds_ghz is None:
        lo, hi = physics.tuning_range_comb(params, n_inputs)
        return np.full(shape, float(lo)), np.full(shape, float(hi))
    b = np.asarray(bounds_ghz, dtype=np.float64)
    return ghz_to_comb(b[..., 0], params, n_inputs), ghz_to_comb(b[..., 1], params, n_inputs)


def set_point_levels(lo: np.ndarray, hi: np.ndarray, bits: int, view_lo: float, view_hi: float,
                     max_levels: int) -> Optional[tuple[np.ndarray, np.ndarray]]:
    """The set-point levels (engine.physics.resonators.quantise_comb: 2^bits levels evenly spaced over each device's
    [lo, hi], both ends included) that fall in the comb range [view_lo, view_hi]: (device index into the
    flattened lo, level position), or None when there are more than ``max_levels`` of them."""
    lo, hi = np.ravel(lo).astype(np.float64), np.ravel(hi).astype(np.float64)
    n_levels = 2 ** int(bits)
    step = (hi - lo) / float(n_levels - 1)
    first = np.clip(np.ceil((view_lo - lo) / step), 0, n_levels - 1).astype(np.int64)
    last = np.clip(np.floor((view_hi - lo) / step), -1, n_levels - 1).astype(np.int64)
    last = np.where((lo + first * step > view_hi) | (hi < view_lo), first - 1, last)
    counts = np.maximum(last - first + 1, 0)
    total = int(counts.sum())
    if total > max_levels:
        return None
    device = np.repeat(np.arange(lo.size), counts)
    offset = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    index = np.repeat(first, counts) + offset
    return device, lo[device] + index * step[device]
