"""What the topology views draw: one :class:`DisplayState`, built from a live snapshot, a finished run's final
snapshot, an untrained preview or an imported topology file. Views never read engine objects directly.

Qt-free: the worker thread builds preview and import states here (:func:`state_from_model`), so no torch
model is ever built or read on the GUI thread.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from engine.physics import DeviceParams


def _is_rf_model(model: str) -> bool:
    from engine.models import get_spec

    try:
        return get_spec(model).is_rf
    except ValueError:
        return False


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
    class_names: tuple = ()  #: one name per chain (class); empty: "0" .. "C-1"
    image_shape: Optional[tuple] = None  #: (rows, columns) when the inputs are an image, else None

    def __post_init__(self) -> None:
        if self.class_names and len(self.class_names) != self.n_chains:
            self.class_names = ()
        if self.image_shape is not None:
            shape = tuple(int(s) for s in self.image_shape)
            self.image_shape = shape if len(shape) == 2 and shape[0] * shape[1] == self.n_inputs else None

    @property
    def is_rf(self) -> bool:
        """An RF network with resonators to draw (the model's registry entry says RF, and frequencies came)."""
        return self.resonator_freqs_ghz is not None and _is_rf_model(self.model)

    @property
    def n_chains(self) -> int:
        return int(self.weight.shape[0])

    @property
    def n_inputs(self) -> int:
        return int(self.weight.shape[1])

    @property
    def names(self) -> tuple:
        """One label per chain: the class names, else the chain numbers."""
        return tuple(self.class_names) if self.class_names else tuple(str(j) for j in range(self.n_chains))

    @classmethod
    def from_snapshot(cls, snap: Any, cfg: Any, label: str = "", live: bool = False, class_names=(),
                      image_shape=None) -> "DisplayState":
        """A state for an engine Snapshot (its arrays are already private copies)."""
        return cls(model=snap.model, weight=np.asarray(snap.weight, dtype=np.float32), params=cfg.device,
                   resonators_per_chain=snap.resonators_per_chain, label=label,
                   rewiring_events=int(snap.rewiring_events), input_freqs_ghz=snap.input_freqs_ghz,
                   resonator_freqs_ghz=snap.resonator_freqs_ghz, resonator_signs=snap.resonator_signs,
                   attached_input=snap.attached_input, live=live, class_names=tuple(class_names or ()),
                   image_shape=image_shape)


def state_from_model(model, cfg, label: str, rewiring_events: int = 0, class_names=(),
                     image_shape=None) -> DisplayState:
    """A DisplayState (numpy copies) for a built model: an untrained preview or a loaded topology.

    Runs in the worker thread (it reads torch tensors)."""
    import torch

    with torch.no_grad():
        w = model.effective_weight().detach().cpu().numpy().astype(np.float32, copy=True)
    extras = model.snapshot_extras() if hasattr(model, "snapshot_extras") else {}
    params = getattr(model, "params", None)
    if not isinstance(params, DeviceParams):
        params = cfg.device
    return DisplayState(model=cfg.model, weight=w, params=params, resonators_per_chain=cfg.resonators_per_chain,
                        label=label, rewiring_events=rewiring_events,
                        input_freqs_ghz=extras.get("input_freqs_ghz"),
                        resonator_freqs_ghz=extras.get("resonator_freqs_ghz"),
                        resonator_signs=extras.get("resonator_signs"),
                        attached_input=extras.get("attached_input"), class_names=tuple(class_names or ()),
                        image_shape=image_shape)
