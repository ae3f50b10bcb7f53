"""rfexplorer's Qt-free engine: RF spintronic perceptrons, sparse baselines, sweeps and exports.

The public interface the app and scripts use:
- :class:`engine.config.run_config.RunConfig` (with :class:`engine.physics.resonators.DeviceParams`) — a run's
settings in;
- :func:`engine.training.loop.run_training` — trains, reporting :class:`engine.core.progress.Snapshot` copies to a
  callback and honouring a :class:`engine.core.progress.CancelToken`;
- :class:`engine.io.results.RunResult` — accuracy, timing, config and versions out.
This package never imports Qt, pyqtgraph or the app.

The names most scripts need are importable from ``engine`` itself, loaded on first use (so ``import engine``
stays cheap): ``RunConfig``, ``train``, ``evaluate``, ``load_topology``, ``list_models``, ``get_model``,
``run_sweep`` and ``SweepSpec`` (``engine.experiments.sweep.runner`` is the sweep module itself, which holds both).
The version
below is the project's only one (pyproject.toml reads it).
"""

from importlib import import_module

__version__ = "0.1.0"

#: public name -> (module, attribute)
_PUBLIC = {
    "RunConfig": ("engine.config.run_config", "RunConfig"),
    "train": ("engine.training.loop", "run_training"),
    "evaluate": ("engine.experiments.evaluation", "evaluate_topology"),
    "load_topology": ("engine.io.topology", "load_topology"),
    "list_models": ("engine.config.models", "list_models"),
    "get_model": ("engine.config.models", "get_model"),
    "run_sweep": ("engine.experiments.sweep.runner", "run_sweep"),
    "SweepSpec": ("engine.experiments.sweep.runner", "SweepSpec"),
}

# Literal strings, so that linters and type checkers can read it; tests/test_lint.py checks it names _PUBLIC.
__all__ = [
    "__version__",
    "RunConfig",
    "train",
    "evaluate",
    "load_topology",
    "list_models",
    "get_model",
    "run_sweep",
    "SweepSpec",
]


def __getattr__(name: str):
    """Load a public name from its module the first time it is asked for (PEP 562)."""
    try:
        module, attribute = _PUBLIC[name]
    except KeyError:
        raise AttributeError(f"module 'engine' has no attribute {name!r}") from None
    return getattr(import_module(module), attribute)
