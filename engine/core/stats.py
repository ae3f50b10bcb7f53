"""Summary statistics shared by the sweep, the hardware studies and the result aggregates."""

from __future__ import annotations

import statistics
from typing import Iterable


def mean_std(values: Iterable[float]) -> tuple[float, float]:
    """(mean, sample standard deviation with ddof 1) of ``values``; the std is 0.0 for a single value.

    Raises ValueError for no values."""
    vals = [float(v) for v in values]
    if not vals:
        raise ValueError("mean_std needs at least one value")
    return statistics.fmean(vals), (statistics.stdev(vals) if len(vals) > 1 else 0.0)


__all__ = ["mean_std"]
