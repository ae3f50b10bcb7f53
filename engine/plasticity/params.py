"""Structural plasticity settings of the RF models (``RunConfig.plasticity``): when rewiring rounds happen and
how candidate jumps are chosen. A leaf module: the plasticity code (engine.plasticity.rounds), the RF models and the
run configuration (engine.config.run_config, which re-exports :class:`PlasticityParams`) all read it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PlasticityParams:
    """Structural plasticity of the RF models: when rewiring rounds happen and how candidate jumps are chosen.

    Comb units are input spacings (see engine.physics.resonators). Defaults are the tuned values of the reference sweep.
    """

    interval_steps: int = 100
    """Optimizer steps between two rewiring rounds, at most (0 disables rewiring); short runs rewire more often
    (``min_rounds``)."""
    min_rounds: int = 4
    """Rounds a run gets at least, in rounds: the interval shrinks to (end_fraction x total steps - 1) //
    min_rounds steps when that is shorter (0: always interval_steps). 4 keeps every reference run's schedule
    (full MNIST at 10 epochs, drones at 120 epochs of batches of 20, benchmarks/golden_hardware.py) unchanged."""
    fraction: float = 0.3
    """Initial fraction of each chain's resonators that may jump at a round (cosine-decayed to 0)."""
    end_fraction: float = 0.75
    """Rewiring stops after this fraction of the total training steps."""
    grid_step: float = 0.25
    """Resolution of the landing grid for resonator jumps (comb units)."""
    sample_size: int = 4096
    """Training samples drawn afresh at every round to evaluate resonator swaps exactly."""
    candidates: int = 8
    """Candidate landing sites proposed per chain and per chain sign."""
    candidate_separation: float = 2.0
    """Minimum distance between two candidate sites of one chain and sign (comb units)."""
    drop_candidates: int = 10
    """Resonators per chain considered for a jump at a round (those whose voltage varies least)."""
    min_improvement: float = 1e-4
    """A resonator swap must lower the sampled mean loss by at least this much (nats)."""
    input_sample_size: int = 4096
    """Training samples drawn afresh at every round to model and check input-oscillator jumps (rf-input)."""
    input_grid_step: float = 0.5
    """Resolution of the landing grid for input-oscillator jumps (comb units)."""
    input_fraction: float = 1.0
    """Largest fraction of the input oscillators considered for a jump at one round (cosine-decayed)."""
    input_sites: int = 4
    """Best predicted sites per input oscillator that are checked exactly."""
    input_min_improvement: float = 1e-5
    """An input jump must lower the sampled mean loss by at least this much (nats)."""
    heartbeat_every: int = 64
    """Input oscillators checked between two progress reports / cancellation checks inside a round."""
    hidden_sample_size: int = 1024
    """Multilayer networks: training samples drawn at every round to evaluate a hidden layer's swaps."""
    hidden_drop_candidates: int = 4
    """Multilayer networks: resonators per hidden chain considered for a jump at a round."""
    network_input_fraction: float = 0.25
    """Multilayer rf-input: largest fraction of the input oscillators checked for a jump at one round
    (cosine-decayed); the ones with the largest predicted gains."""

    def __post_init__(self) -> None:
        problems = []
        for name in ("interval_steps", "min_rounds"):
            if getattr(self, name) < 0:
                problems.append(f"plasticity.{name} must be >= 0 (got {getattr(self, name)})")
        for name in (
            "sample_size",
            "candidates",
            "drop_candidates",
            "input_sample_size",
            "input_sites",
            "heartbeat_every",
            "hidden_sample_size",
            "hidden_drop_candidates",
        ):
            if getattr(self, name) < 1:
                problems.append(f"plasticity.{name} must be >= 1 (got {getattr(self, name)})")
        for name in ("grid_step", "input_grid_step"):
            if not getattr(self, name) > 0:
                problems.append(f"plasticity.{name} must be > 0 (got {getattr(self, name)})")
        for name in ("fraction", "end_fraction", "input_fraction", "network_input_fraction"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                problems.append(f"plasticity.{name} must be in [0, 1] (got {getattr(self, name)})")
        for name in ("candidate_separation", "min_improvement", "input_min_improvement"):
            if getattr(self, name) < 0:
                problems.append(f"plasticity.{name} must be >= 0 (got {getattr(self, name)})")
        if problems:
            raise ValueError("; ".join(problems))
