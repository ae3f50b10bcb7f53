"""What the topology views draw: one :class:`DisplayState`, built from a live snapshot, a finished run's final
snapshot, or an imported topology file. Views never read engine objects directly."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from engine.config import RF_MODELS
from engine.physics import DeviceParams


@dataclass
class DisplayState:
    model: str
    weight: np.ndarray  #: (C, N) effective weight (V/µW for RF models)
    params: DeviceParams
    resonators_per_chain: int
    label: str = ""
    rewiring_events: int = 0
    input_freqs_ghz: Optional[np.ndarray] = None  #: (N,)
    resonator_freqs_ghz: Optional[np.ndarray] = None  #: (C, K)
    resonator_signs: Optional[np.ndarray] = None  #: (K,)
    attached_input: Optional[np.ndarray] = None  #: (C, K)
    live: bool = False

    @property
    def is_rf(self) -> bool:
        return self.model in RF_MODELS and self.resonator_freqs_ghz is not None

    @property
    def n_chains(self) -> int:
        return int(self.weight.shape[0])

    @property
    def n_inputs(self) -> int:
        return int(self.weight.shape[1])

    @classmethod
    def from_snapshot(cls, snap: Any, cfg: Any, label: str = "", live: bool = False) -> "DisplayState":
        return cls(model=snap.model, weight=np.asarray(snap.weight, dtype=np.float32), params=cfg.device,
                   resonators_per_chain=snap.resonators_per_chain, label=label,
                   rewiring_events=int(snap.rewiring_events), input_freqs_ghz=snap.input_freqs_ghz,
                   resonator_freqs_ghz=snap.resonator_freqs_ghz, resonator_signs=snap.resonator_signs,
                   attached_input=snap.attached_input, live=live)
