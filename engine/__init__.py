"""rfexplorer's Qt-free engine: RF spintronic perceptrons, sparse baselines, sweeps and exports.

The public interface the app and scripts use:
- :class:`engine.config.RunConfig` (with :class:`engine.physics.DeviceParams`) — a run's settings in;
- :func:`engine.training.run_training` — trains, reporting :class:`engine.progress.Snapshot` copies to a
  callback and honouring a :class:`engine.progress.CancelToken`;
- :class:`engine.results.RunResult` — accuracy, timing, config and versions out.
This package never imports Qt, pyqtgraph or the app.
"""
__version__ = "0.1.0"
