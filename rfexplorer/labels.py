"""Names of models and runs for menus, legends and the status line, all from the engine's model registry.

Qt-free (the worker thread labels previews and imports with it).
"""
from __future__ import annotations

from typing import Iterable, Optional


def model_spec(model: str):
    """The model's registry entry (engine.config.models.ModelSpec), or None for a name the registry does not know."""
    from engine.config.models import get_spec

    try:
        return get_spec(model)
    except ValueError:
        return None


def model_label(model: str, short: bool = False) -> str:
    """The registry's label (or short label) of a model; the name itself for an unknown model."""
    spec = model_spec(model)
    if spec is None:
        return model
    return spec.short_label if short else spec.label


def model_order(models: Iterable[str]) -> list[str]:
    """``models`` in the registry's order, unknown names last (in the order given)."""
    from engine.config.models import list_models

    present = list(dict.fromkeys(models))
    known = list_models()
    return [m for m in known if m in present] + [m for m in present if m not in known]


def uses_k(model: str) -> bool:
    spec = model_spec(model)
    return True if spec is None else spec.uses_k


def describe_config(cfg, n_inputs: Optional[int] = None) -> str:
    """A short human name for a run: 'RF K=10 (98.72 % removed)' (the percentage needs the input count)."""
    from engine.config.run_config import removed_synapses_pct

    label = model_label(cfg.model, short=True)
    if not uses_k(cfg.model):
        return label
    text = f"{label} K={cfg.resonators_per_chain}"
    if n_inputs:
        k = min(cfg.resonators_per_chain, n_inputs)
        text += f" ({removed_synapses_pct(k, n_inputs):.2f} % removed)"
    hidden = tuple(getattr(cfg, "hidden", ()) or ())
    if hidden:  # a multilayer network: its hidden sizes and every layer's K
        ks = "/".join(str(k) for k in cfg.layer_ks)
        text += f", hidden {','.join(str(h) for h in hidden)} (K {ks})"
    return text
