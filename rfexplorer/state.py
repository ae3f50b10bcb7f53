"""What the topology views draw: one :class:`DisplayState`, built from a live snapshot, a finished run's final
snapshot, an untrained preview or an imported topology file. Views never read engine objects directly.

Qt-free: the worker thread builds preview and import states here (:func:`state_from_model`), so no torch
model is ever built or read on the GUI thread.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from engine.physics.resonators import DeviceParams


def _is_rf_model(model: str) -> bool:
    from engine.config.models import get_spec

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
    #: (C, K, 2) each resonator's reachable band (GHz) under a limited device.tuning_range; None: unlimited
    resonator_bounds_ghz: Optional[np.ndarray] = None
    live: bool = False
    class_names: tuple = ()  #: one name per chain (class); empty: "0" .. "C-1"
    image_shape: Optional[tuple] = None  #: (rows, columns) when the inputs are an image, else None
    #: multilayer RF networks: per layer, first to last, a dict of that layer's RF fields (engine Snapshot.layers);
    #: the fields above then describe the first layer (its rows are hidden neurons, not classes)
    layers: Optional[list] = None
    output_names: tuple = ()  #: the dataset's class names (the last layer's chains); default: class_names
    layer_index: int = 0  #: which layer of a multilayer network this state shows (see :meth:`for_layer`)

    def __post_init__(self) -> None:
        if not self.output_names:
            self.output_names = tuple(self.class_names or ())
        if self.layers and len(self.layers) > 1 and self.layer_index < len(self.layers) - 1:
            self.class_names = ()  # hidden chains are no classes (even when there are as many)
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

    # --- multilayer networks ----------------------------------------------------------------------------------
    @property
    def n_layers(self) -> int:
        return len(self.layers) if self.layers else 1

    @property
    def is_multilayer(self) -> bool:
        return self.n_layers > 1

    @property
    def layer_sizes(self) -> tuple:
        """(inputs, hidden..., outputs) of the network; (N, C) for a single layer."""
        if not self.is_multilayer:
            return (self.n_inputs, self.n_chains)
        return (self.n_inputs,) + tuple(int(np.shape(d["resonator_freqs_ghz"])[0]) for d in self.layers)

    def layer_title(self, layer: int) -> str:
        """'Layer 1 (784 inputs → 32)', 'Layer 2 (32 → classes)'."""
        sizes = self.layer_sizes
        src = f"{sizes[layer]:,} inputs" if layer == 0 else f"{sizes[layer]:,}"
        dst = "classes" if layer == len(sizes) - 2 else f"{sizes[layer + 1]:,}"
        return f"Layer {layer + 1} ({src} → {dst})"

    def for_layer(self, layer: int) -> "DisplayState":
        """The state of one layer, drawn like a single-layer network: layer 0 is this state (its own W and
        image shape); deeper layers have the previous layer's emitters as inputs and W computed from their
        frequencies with engine.physics.resonators (nominal devices). Only chains of the last layer carry class
        names."""
        if not self.is_multilayer:
            return self
        layer = int(max(0, min(self.n_layers - 1, layer)))
        last = layer == self.n_layers - 1
        names = self.output_names if last else ()
        if layer == self.layer_index:
            return self
        cache = self.__dict__.setdefault("_layer_cache", {})
        if layer in cache:
            return cache[layer]
        d = self.layers[layer]
        from . import spectra

        f_in = np.asarray(d["input_freqs_ghz"], dtype=np.float32)
        f_res = np.asarray(d["resonator_freqs_ghz"], dtype=np.float32)
        signs = d.get("resonator_signs")
        w = spectra.chain_response(f_res, signs, self.params, f_in).astype(np.float32)  # (C_l, N_l) V/µW
        st = DisplayState(model=self.model, weight=w, params=self.params, resonators_per_chain=int(f_res.shape[1]),
                          label=self.label, rewiring_events=self.rewiring_events, input_freqs_ghz=f_in,
                          resonator_freqs_ghz=f_res, resonator_signs=signs, attached_input=d.get("attached_input"),
                          resonator_bounds_ghz=d.get("resonator_bounds_ghz"), live=self.live, class_names=names,
                          image_shape=None, layers=self.layers, output_names=self.output_names, layer_index=layer)
        cache[layer] = st
        return st

    @classmethod
    def from_snapshot(cls, snap: Any, cfg: Any, label: str = "", live: bool = False, class_names=(),
                      image_shape=None) -> "DisplayState":
        """A state for an engine Snapshot (its arrays are already private copies)."""
        return cls(model=snap.model, weight=np.asarray(snap.weight, dtype=np.float32), params=cfg.device,
                   resonators_per_chain=snap.resonators_per_chain, label=label,
                   rewiring_events=int(snap.rewiring_events), input_freqs_ghz=snap.input_freqs_ghz,
                   resonator_freqs_ghz=snap.resonator_freqs_ghz, resonator_signs=snap.resonator_signs,
                   attached_input=snap.attached_input,
                   resonator_bounds_ghz=getattr(snap, "resonator_bounds_ghz", None), live=live,
                   class_names=tuple(class_names or ()), image_shape=image_shape, layers=getattr(snap, "layers", None))


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
                        attached_input=extras.get("attached_input"),
                        resonator_bounds_ghz=extras.get("resonator_bounds_ghz"), class_names=tuple(class_names or ()),
                        image_shape=image_shape, layers=extras.get("layers"))
