"""Spectra for the views, computed from a snapshot's frequencies with engine.physics (no physics here).

The probe grid is uniform in comb units (one unit = one input spacing), so every linewidth gets the same
number of points whatever the frequency plan; the chain response is engine.physics.coupling_tensor summed
over the chain's resonators, exactly what RFPerceptron.chain_response evaluates.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from engine import physics
from engine.physics import DeviceParams


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
