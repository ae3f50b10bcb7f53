"""What if every resonator also had a trainable amplitude? A diagnostic, not a physical model.

    python benchmarks/what_if_free_amplitude.py [--models rf,rf-frozen] [--seeds 0,1] [--epochs 10]
    python benchmarks/what_if_free_amplitude.py --dataset mnist-mini --epochs 1 --models rf --seeds 0

In physics.md a resonator's peak rectified voltage is fixed (K_SD times the input power): training moves
its frequency only, so each resonator adds a fixed-amplitude dipole to its chain's weights, and only the
read-out gain, shared by all chains, scales them. This script gives every resonator a free positive scale
exp(log_amp) on top, trained with the frequencies, and reports accuracy on a 10 % validation split of the
training set (K = 10; tune on validation, never on the test set). Comparing it with benchmarks/tune_rf.py
shows how much of the gap between the RF model and a free-weight perceptron comes from the fixed amplitude.

The engine deliberately offers no such setting, so the experiment lives here. :class:`FreeAmplitudeChainLayer`
subclasses the engine's chain layer: couplings and W include the amplitudes, and W is built by plain
autograd (slower than the engine's fused build; ``model_params.weight_build`` is therefore ignored). For each
model named in ``--models`` (an RF registry entry), a variant ``<model>-free-amp`` is registered in this
process only, through the registry's public ``register_model``: it builds the model exactly as the original
entry does (same settings tree: ``device``, ``plasticity``, ``model_params`` of RFParams, same initial
layout from the same generator), then swaps its chain layer for a free-amplitude copy (amplitudes start at
1). Runs are then ordinary settings trees trained by engine.training.loop.run_training; ``--set`` overrides any
setting of every run (e.g. ``--set model_params.initial_gain=0.5``). Nothing in engine/ is changed.

When a resonator jumps (structural plasticity), it keeps its amplitude; the plasticity's candidate sites are
evaluated with amplitude 1, the drop candidates with their own amplitude.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path
from typing import Optional

import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from engine.layers.chain import RFChainLayer  # noqa: E402
from engine.config.run_config import RunConfig, SettingError, apply_overrides  # noqa: E402
from engine.data import load_dataset  # noqa: E402
from engine.config.models import get_spec, list_models, register_model  # noqa: E402
from engine.training.loop import run_training  # noqa: E402

SUFFIX = "-free-amp"


class FreeAmplitudeChainLayer(RFChainLayer):
    """An RF chain layer whose every resonator has a trainable log-amplitude (C, K) scaling its coupling."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.log_amp = nn.Parameter(torch.zeros(self.n_chains, self.n_resonators))

    @classmethod
    def from_layer(cls, layer: RFChainLayer) -> "FreeAmplitudeChainLayer":
        """A free-amplitude copy of ``layer``: same positions, device spreads and generator; amplitudes 1."""
        # a throw-away generator for the construction, so that the model's generator is not advanced
        new = cls(layer.n_inputs, layer.n_chains, layer.n_resonators, layer.params,
                  train_inputs=layer.input_comb.requires_grad, resonator_comb=layer.resonator_comb.detach(),
                  input_comb=layer.input_comb.detach(), generator=torch.Generator().manual_seed(0))
        new.alpha_r = layer.alpha_r
        new.k_sd_r = layer.k_sd_r
        new.generator = layer.generator
        return new

    def amplitudes(self) -> torch.Tensor:
        return self.log_amp.exp()

    def coupling(self, f_in: Optional[torch.Tensor] = None) -> torch.Tensor:
        return super().coupling(f_in) * self.amplitudes().unsqueeze(-1)

    def weight(self) -> torch.Tensor:
        return self.coupling().sum(dim=1)


def register_variant(model: str) -> str:
    """Register ``<model>-free-amp`` (once) and return its name."""
    name = model + SUFFIX
    if name in list_models():
        return name
    base = get_spec(model)
    if not base.is_rf:
        raise ValueError(f"model {model!r} is not an RF model (choose among: {', '.join(list_models('rf'))})")

    def build(cfg, n_inputs, n_classes, generator):
        m = base.builder(cfg, n_inputs, n_classes, generator)
        m.chains = FreeAmplitudeChainLayer.from_layer(m.chains)
        return m

    register_model(dataclasses.replace(
        base, name=name, label=f"{base.label}, free amplitudes (diagnostic)",
        short_label=f"{base.short_label} free amp.", builder=build,
        description=f"{base.description} Every resonator also has a free trainable amplitude (not physical)."))
    return name


def config(args, model: str, seed: int) -> RunConfig:
    base = {"model": register_variant(model), "resonators_per_chain": args.k, "dataset": args.dataset,
            "data_dir": args.data_dir, "epochs": args.epochs, "seed": seed, "validation_fraction": 0.1}
    cfg = RunConfig.from_dict(apply_overrides(base, args.set))
    if cfg.validation_fraction <= 0:
        raise SettingError("validation_fraction must stay > 0: this experiment never reads the test set")
    return cfg


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="rf,rf-frozen", help="comma-separated RF models")
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--k", type=int, default=10, help="resonators per chain K")
    ap.add_argument("--dataset", default="mnist")
    ap.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--set", action="append", default=[], metavar="PATH=VALUE",
                    help="an override of every run's settings tree, e.g. plasticity.fraction=0.2 (repeatable)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    models = [m for m in args.models.split(",") if m]
    seeds = [int(s) for s in args.seeds.split(",") if s]
    try:
        for model in models:
            config(args, model, seeds[0])
    except (SettingError, ValueError) as exc:
        print(f"what_if_free_amplitude: {exc}", file=sys.stderr)
        return 2
    ds = load_dataset(args.dataset, args.data_dir)
    for model in models:
        for seed in seeds:
            t = time.time()
            r = run_training(config(args, model, seed), ds)
            amp = r.model.chains.amplitudes().detach()
            print(f"{model:9s} seed={seed} {r.evaluated_on}={r.test_accuracy:.4f} train={r.history[-1][2]:.4f} "
                  f"amplitudes {float(amp.min()):.3g}..{float(amp.max()):.3g} {time.time() - t:.0f}s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
