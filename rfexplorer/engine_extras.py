"""The app's single door to the optional engine modules (engine.export, engine.sweep).

They are imported lazily, so the app starts (and its other features work) even where a module is missing;
the menu items that need one are disabled with a tooltip saying why.
"""
from __future__ import annotations

import importlib
from typing import Any, Optional


class FeatureUnavailable(RuntimeError):
    """An engine module the feature needs cannot be imported."""


def _module(name: str):
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise FeatureUnavailable(f"{name} is not available ({exc}).") from exc


def has_export() -> bool:
    try:
        _module("engine.export")
        return True
    except FeatureUnavailable:
        return False


def has_sweep() -> bool:
    try:
        _module("engine.sweep")
        return True
    except FeatureUnavailable:
        return False


def export_module():
    return _module("engine.export")


def sweep_module():
    return _module("engine.sweep")


def topology_error_types() -> tuple:
    """Exceptions that mean 'this file is not a readable topology' (shown as a dialog, never a crash)."""
    types: list = [ValueError, KeyError, TypeError, OSError, UnicodeDecodeError]
    try:
        types.insert(0, export_module().TopologyFileError)
    except (FeatureUnavailable, AttributeError):
        pass
    return tuple(types)


def export_run(result: Any, path) -> tuple:
    """Write a finished run's topology: JSON at ``path`` plus its CSV sibling; returns the paths written."""
    mod = export_module()
    if hasattr(mod, "export_result"):
        out = mod.export_result(result, path)
    else:  # older name
        out = mod.export_topology(result, path)
    if isinstance(out, (tuple, list)):
        return tuple(p for p in out if p)
    return (out,) if out else (path,)


def load_topology(path):
    return export_module().load_topology(path)


def evaluate_topology(topology: Any, dataset: Any) -> float:
    return float(export_module().evaluate_topology(topology, dataset))


def run_sweep(spec: Any, dataset: Optional[Any] = None, on_result=None, cancel=None) -> list:
    return sweep_module().run_sweep(spec, dataset=dataset, on_result=on_result, cancel=cancel)
