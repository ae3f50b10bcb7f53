"""What a finished run returns: its accuracy, its timing, its full config and the software that produced it."""
from __future__ import annotations

import datetime as _dt
import platform
from dataclasses import dataclass, field
from typing import Any, Optional

from .config import RunConfig, remaining_synapses_pct


def software_versions() -> dict[str, str]:
    """Versions of rfexplorer and the numerical stack, recorded in every result and export."""
    import numpy
    import torch

    from . import __version__

    return {"rfexplorer": __version__, "torch": torch.__version__, "numpy": numpy.__version__,
            "python": platform.python_version()}


def utc_now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


@dataclass
class RunResult:
    """The outcome of one training run."""

    config: RunConfig
    test_accuracy: float  #: fraction in [0, 1], on the test set (or the validation split when configured)
    train_seconds: float
    epochs_completed: int
    history: list = field(default_factory=list)  #: [(epoch, loss, train_acc, test_acc), ...]
    rewiring_events: int = 0
    synapses: int = 0  #: synapses in use at the end (non-zero weights, or resonators)
    cancelled: bool = False
    n_inputs: int = 784
    evaluated_on: str = "test"
    versions: dict = field(default_factory=software_versions)
    created: str = field(default_factory=utc_now_iso)
    model: Optional[Any] = field(default=None, repr=False, compare=False)  #: the trained module (not serialised)

    @property
    def remaining_synapses_pct(self) -> float:
        return remaining_synapses_pct(self.config.resonators_per_chain, self.n_inputs)

    def summary(self) -> dict:
        """One flat, JSON-safe row (the CLI's --json line and the sweep tables)."""
        cfg = self.config
        return {
            "model": cfg.model,
            "dataset": cfg.dataset,
            "resonators_per_chain": cfg.resonators_per_chain,
            "remaining_synapses_pct": round(self.remaining_synapses_pct, 4),
            "removed_synapses_pct": round(100.0 - self.remaining_synapses_pct, 4),
            "test_accuracy": round(float(self.test_accuracy), 6),
            "evaluated_on": self.evaluated_on,
            "seed": cfg.seed,
            "epochs": cfg.epochs,
            "epochs_completed": self.epochs_completed,
            "train_seconds": round(self.train_seconds, 3),
            "rewiring_events": self.rewiring_events,
            "synapses": self.synapses,
            "budget": cfg.budget,
            "cancelled": self.cancelled,
        }

    def to_dict(self) -> dict:
        d = self.summary()
        d.update(config=self.config.to_dict(), history=[list(h) for h in self.history],
                 versions=self.versions, created=self.created)
        return d
