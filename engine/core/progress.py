"""What a training run reports while it runs, and how it is asked to pause or stop.

Snapshots hold copies of numpy arrays, never views of live tensors, so another thread (the GUI) can keep and
draw them while training goes on.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np


class CancelToken:
    """Cooperative cancellation: the training loop checks :meth:`is_set` between batches."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def set(self) -> None:
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Wait until set or ``timeout`` (s) passed; whether it is set (a paused run waits on it)."""
        return self._event.wait(timeout)


class PauseControl:
    """Cooperative pause of a training run: while :meth:`is_set`, the loop waits between two batches (polling
    every :data:`PAUSE_POLL_S`, so without burning CPU, and still stopping when cancelled). :meth:`step` runs
    on to the end of the current epoch and pauses there (:meth:`epoch_ended`, called by the loop).

    ``paused`` and ``stepping`` are any two events with ``set``, ``clear`` and ``is_set`` (threading.Event by
    default; the app passes multiprocessing Events, so that its GUI process pauses a run in its engine process).
    The loop itself only calls :meth:`is_set` and, if the object has it, :meth:`epoch_ended`: any object with
    ``is_set()`` pauses a run.
    """

    def __init__(self, paused=None, stepping=None) -> None:
        self._paused = paused if paused is not None else threading.Event()
        self._stepping = stepping if stepping is not None else threading.Event()

    def pause(self) -> None:
        self._stepping.clear()
        self._paused.set()

    def resume(self) -> None:
        self._stepping.clear()
        self._paused.clear()

    def step(self) -> None:
        """Run until the end of the current epoch, then pause."""
        self._stepping.set()
        self._paused.clear()

    def reset(self) -> None:
        """Neither paused nor stepping (before a new run)."""
        self.resume()

    def is_set(self) -> bool:
        return self._paused.is_set()

    @property
    def stepping(self) -> bool:
        return self._stepping.is_set()

    def epoch_ended(self) -> None:
        """An epoch ended: a run that was stepping pauses now."""
        if self._stepping.is_set():
            self._stepping.clear()
            self._paused.set()


#: How often a paused run looks at its pause and cancel tokens (s).
PAUSE_POLL_S = 0.05


class RunCancelled(Exception):
    """Raised inside the engine when a run was cancelled; :func:`engine.training.loop.run_training` catches it."""


class DivergenceError(RuntimeError):
    """The loss became NaN or infinite: the run stops with this message instead of producing garbage."""


@dataclass
class Snapshot:
    """The state of a run at one moment (all arrays are private copies)."""

    model: str
    resonators_per_chain: int
    epoch: int  #: current epoch, 1-based
    epochs: int
    step: int  #: optimizer steps done so far
    total_steps: int
    loss: float  #: running mean of the training loss over the current epoch
    train_accuracy: float  #: running accuracy over the current epoch (fraction)
    test_accuracy: Optional[float]  #: accuracy at the end of the last finished epoch (None before)
    elapsed_s: float
    eta_s: float
    weight: np.ndarray  #: (C, N) effective weight matrix (float32)
    bias: np.ndarray  #: (C,)
    rewiring_events: int
    history: list = field(default_factory=list)  #: [(epoch, loss, train_acc, test_acc), ...] finished epochs
    # RF models only (None for baselines):
    input_freqs_ghz: Optional[np.ndarray] = None  #: (N,)
    resonator_freqs_ghz: Optional[np.ndarray] = None  #: (C, K)
    resonator_signs: Optional[np.ndarray] = None  #: (K,) chain sign s_k
    attached_input: Optional[np.ndarray] = None  #: (C, K) index of the input each resonator couples to most
    attached_coupling: Optional[np.ndarray] = None  #: (C, K) that coupling (signed, V/µW)
    gain: Optional[float] = None  #: read-out gain (scores = gain * V + b)
    #: (C, K, 2) each resonator's reachable band (GHz) under a limited device.tuning_range; None when unlimited
    resonator_bounds_ghz: Optional[np.ndarray] = None
    #: multilayer RF networks: per layer, first to last, a dict with the RF fields above for that layer
    #: (layer l's inputs are layer l-1's emitters); the fields above then describe the first layer
    layers: Optional[list] = None
    final: bool = False  #: True for the last snapshot of a run
    paused: bool = False  #: the run is paused (engine.core.progress.PauseControl) after this snapshot

    @property
    def progress(self) -> float:
        return self.step / max(self.total_steps, 1)


ProgressCallback = Callable[[Snapshot], None]
