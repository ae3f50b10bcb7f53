"""Experiment: does it matter which pixel sits at which slot of the input frequency comb? (RF model, K = 10)

    python benchmarks/input_layouts.py [--layouts raster,hilbert,...] [--seeds 0] [--epochs 10]
    python benchmarks/input_layouts.py --dataset mnist-mini --epochs 1 --layouts snake --set lr=0.1

The frequency plan fixes the comb of input frequencies; the layout fixes which input oscillator (pixel)
emits at each of them. The engine uses raster order (pixel i at slot i). A resonator couples to the inputs
near its resonance with long 1/detuning tails, so comb neighbours always receive related weights, and the
layout changes what K resonators can express. Accuracy is on a 10 % validation split of the training set
(tune on validation, never on the test set).

A layout is a permutation ``order`` with ``order[slot] = pixel``; the chain layer's input comb positions are
its inverse. The engine has no setting for it, so this script defines the experiment's own model: the ``rf``
model whose params dataclass gains one field, ``input_order`` (:class:`LayoutParams`), and whose input comb
is laid out from the training data when training begins (:class:`LaidOutRFPerceptron`, the layouts
'correlation' and 'classpc*' read the training split, never the validation images). It is registered, in
this process only, as the model ``rf-layout`` through the registry's public ``register_model``, so every run
is an ordinary settings tree (``model=rf-layout``, ``model_params.input_order=hilbert``, plus any ``--set``
overrides) trained by engine.training.loop.run_training.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from engine.config.run_config import RunConfig, SettingError, apply_overrides  # noqa: E402
from engine.data import load_dataset  # noqa: E402
from engine.core.model_base import TrainingContext  # noqa: E402
from engine.config.models import get_spec, list_models, register_model  # noqa: E402
from engine.nets.rf_perceptron import RFParams, RFPerceptron  # noqa: E402
from engine.training.loop import run_training  # noqa: E402

LAYOUTS = ("raster", "column", "snake", "hilbert", "spiral", "correlation", "classpc", "classpc2")


def _image_side(n_inputs: int) -> int:
    side = int(round(math.sqrt(n_inputs)))
    if side * side != n_inputs:
        raise ValueError(f"layout needs a square image (got {n_inputs} inputs)")
    return side


def _hilbert_d2xy(order: int, d: int) -> tuple[int, int]:
    x = y = 0
    s, t = 1, d
    while s < (1 << order):
        rx = 1 & (t // 2)
        ry = 1 & (t ^ rx)
        if ry == 0:
            if rx == 1:
                x, y = s - 1 - x, s - 1 - y
            x, y = y, x
        x += s * rx
        y += s * ry
        t //= 4
        s *= 2
    return x, y


def layout_order(name: str, n_inputs: int, images: torch.Tensor | None = None,
                 labels: torch.Tensor | None = None) -> torch.Tensor:
    """Permutation (N,) of the input indices, in comb order."""
    if name == "raster":
        return torch.arange(n_inputs)
    side = _image_side(n_inputs)
    if name == "column":
        return torch.arange(n_inputs).view(side, side).t().reshape(-1)
    if name == "snake":
        rows = torch.arange(n_inputs).view(side, side)
        rows[1::2] = rows[1::2].flip(1)
        return rows.reshape(-1)
    if name == "hilbert":
        order = max(1, math.ceil(math.log2(side)))
        pts = (_hilbert_d2xy(order, d) for d in range(1 << (2 * order)))
        return torch.tensor([r * side + c for c, r in pts if r < side and c < side])
    if name == "spiral":
        r, c = torch.meshgrid(torch.arange(side), torch.arange(side), indexing="ij")
        dy, dx = r.flatten() - (side - 1) / 2, c.flatten() - (side - 1) / 2
        ring = torch.maximum(dy.abs(), dx.abs())
        angle = torch.atan2(dy, dx)
        key = ring * 10.0 + (angle + math.pi) / (2 * math.pi)
        return key.argsort()
    if name == "correlation":  # spectral seriation of the pixel correlations (Fiedler vector), dead pixels at the ends
        x = images.double()
        x = x - x.mean(0)
        std = x.square().mean(0).sqrt()
        live = std > 1e-3
        xs = x[:, live] / std[live]
        corr = (xs.t() @ xs) / len(xs)
        aff = corr.clamp_min(0.0)
        lap = torch.diag(aff.sum(1)) - aff
        deg = aff.sum(1).sqrt()
        nlap = lap / deg.view(-1, 1) / deg.view(1, -1)
        _, vecs = torch.linalg.eigh(nlap)
        fiedler = vecs[:, 1] / deg
        live_idx = torch.nonzero(live).flatten()[fiedler.argsort()]
        dead = torch.nonzero(~live).flatten()
        half = len(dead) // 2
        return torch.cat([dead[:half], live_idx, dead[half:]])
    if name in ("classpc", "classpc2"):  # by the class means' first principal direction, or the angle in the top two
        x, y = images, labels
        means = torch.stack([x[y == c].mean(0) for c in range(int(y.max()) + 1)]).double()
        means = means - means.mean(0)
        u, s_, vt = torch.linalg.svd(means, full_matrices=False)
        if name == "classpc":
            return vt[0].argsort()
        return torch.atan2(vt[1], vt[0]).argsort()
    raise ValueError(f"unknown input layout {name!r} (choose one of: {', '.join(LAYOUTS)})")


def input_comb_for(order: torch.Tensor) -> torch.Tensor:
    """Comb position of every input (N,), float: the inverse permutation of ``order``."""
    pos = torch.empty(len(order), dtype=torch.float32)
    pos[order] = torch.arange(len(order), dtype=torch.float32)
    return pos


# ---------------------------------------------------------------------------------------------------------
# The experiment's model: rf with a chosen input order
# ---------------------------------------------------------------------------------------------------------

MODEL = "rf-layout"


@dataclass(frozen=True)
class LayoutParams(RFParams):
    """RFParams plus the order of the pixels along the input comb."""

    input_order: str = "raster"
    """Which pixel emits at which comb slot: one of LAYOUTS."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.input_order not in LAYOUTS:
            raise ValueError(f"model_params.input_order must be one of {', '.join(LAYOUTS)} "
                             f"(got {self.input_order!r})")
        if self.input_order != "raster" and getattr(self, "weight_build", "auto") == "fft":
            raise ValueError("model_params.weight_build 'fft' needs the inputs at their nominal comb slots "
                             "(raster order); use 'auto' or 'exact' with another input_order")


class LaidOutRFPerceptron(RFPerceptron):
    """The rf model with its input comb positions permuted by ``input_order`` when training begins."""

    def setup_training(self, context: TrainingContext) -> None:
        order = layout_order(self.rf_params.input_order, self.n_inputs, context.train_x, context.train_y)
        with torch.no_grad():
            self.chains.input_comb.copy_(input_comb_for(order))
        super().setup_training(context)  # the plasticity caches its lineshapes from the laid-out comb


def _build(cfg: RunConfig, n_inputs: int, n_classes: int, generator: torch.Generator) -> LaidOutRFPerceptron:
    return LaidOutRFPerceptron(n_inputs, n_classes, cfg.resonators_per_chain, device=cfg.device,
                               params=cfg.model_params, plasticity=cfg.plasticity, train_inputs=False,
                               generator=generator)


def register() -> None:
    """Register ``rf-layout`` (a copy of the ``rf`` entry with this script's params and builder), once."""
    if MODEL not in list_models():
        register_model(dataclasses.replace(
            get_spec("rf"), name=MODEL, label="RF with a chosen input order (experiment)", short_label="RF layout",
            params_class=LayoutParams, builder=_build,
            description="RF network whose pixels are laid out along the input comb in a chosen order."))


def config(args, layout: str, seed: int) -> RunConfig:
    base = {"model": MODEL, "resonators_per_chain": args.k, "dataset": args.dataset, "data_dir": args.data_dir,
            "epochs": args.epochs, "seed": seed, "validation_fraction": 0.1}
    cfg = RunConfig.from_dict(apply_overrides(base, [*args.set, f"model_params.input_order={layout}"]))
    if cfg.validation_fraction <= 0:
        raise SettingError("validation_fraction must stay > 0: this experiment never reads the test set")
    return cfg


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--layouts", default=",".join(LAYOUTS))
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--k", type=int, default=10, help="resonators per chain K")
    ap.add_argument("--dataset", default="mnist")
    ap.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--set", action="append", default=[], metavar="PATH=VALUE",
                    help="an override of every run's settings tree, e.g. plasticity.fraction=0.2 (repeatable)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    register()
    layouts = [name for name in args.layouts.split(",") if name]
    seeds = [int(s) for s in args.seeds.split(",") if s]
    try:
        for name in layouts:
            config(args, name, seeds[0])
    except (SettingError, ValueError) as exc:
        print(f"input_layouts: {exc}", file=sys.stderr)
        return 2
    ds = load_dataset(args.dataset, args.data_dir)
    if any(name != "raster" for name in layouts) and math.isqrt(ds.n_inputs) ** 2 != ds.n_inputs:
        print(f"input_layouts: the layouts other than raster need square images ({ds.name} has {ds.n_inputs} "
              f"inputs)", file=sys.stderr)
        return 2
    for name in layouts:
        for seed in seeds:
            t = time.time()
            r = run_training(config(args, name, seed), ds)
            print(f"{name:12s} seed={seed} {r.evaluated_on}={r.test_accuracy:.4f} {time.time() - t:.0f}s",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
