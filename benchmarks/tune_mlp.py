"""Tune the learning rate of the multilayer software baselines (engine/nets/baselines/mlp.py) on a validation split.

For every shape and model a small grid of learning rates (with the model's default optimizer: Adam for dense
and RigL, SGD + momentum for pruning; extended by factors of 3 while the best is at an edge, at most twice) is
trained on 90 % of the training set and scored on the held-out 10 %
(``Dataset.validation_split(0.1, seed)``: a seeded permutation of the training set, the same split
``run_training`` takes with ``validation_fraction=0.1``), averaged over the tuning seeds (seed s: split s,
initialisation s, shuffling s). The best mean validation accuracy wins; the test set is never looked at while
choosing. The chosen learning rate is then trained on the full training set with the test seeds and evaluated
once on the test set.

Shapes (``--shapes``):

    mnist          784-100-10, ks (30, 100) (4,000 weights), 10 epochs, batch 100, tuning seed 0
    drones-dense   256-128-10, ks (256, 128) (every weight: prune and RigL train a dense network), 100 epochs,
                   batch 20, tuning seeds 0 1 2 (70 validation samples: one seed is too noisy)
    drones-sparse  256-128-10, ks (10, 10), 100 epochs, batch 20, tuning seeds 0 1 2

    cd /work/main && .venv/bin/python benchmarks/tune_mlp.py                       # everything (~6 min)
    .venv/bin/python benchmarks/tune_mlp.py --shapes drones-sparse --models rigl --no-test
    .venv/bin/python benchmarks/tune_mlp.py --models prune --optimizer adam   # the other optimizer
    .venv/bin/python benchmarks/tune_mlp.py --shapes mnist --epochs 1 --dataset-override mnist-mini  # smoke

The training loop mirrors engine.training.loop.run_training (same hook order, the model's own generator, a separate
shuffling generator seeded alike). Runs one training at a time on one CPU thread.
"""
from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from engine.nets.baselines import DenseParams, PruneParams, RigLParams  # noqa: E402
from engine.nets.baselines.mlp import DenseMLP, PrunedMLP, RigLMLP  # noqa: E402
from engine.data import Dataset, load_dataset  # noqa: E402
from engine.core.model_base import TrainingContext  # noqa: E402

MODELS = {"dense": DenseMLP, "prune": PrunedMLP, "rigl": RigLMLP}
#: Learning rates tried per model (its default optimizer: Adam for dense and RigL, SGD + momentum for prune).
LRS = {"dense": (3e-4, 1e-3, 3e-3, 1e-2), "prune": (0.01, 0.03, 0.1, 0.3), "rigl": (1e-3, 3e-3, 1e-2, 3e-2)}
#: When the best learning rate is at an edge of the grid, up to this many more are tried beyond it (x3 apart).
MAX_EXTEND = 2


@dataclass(frozen=True)
class Shape:
    """One network shape and its training budget."""

    dataset: str
    """Dataset name for engine.data.load_dataset."""
    hidden: tuple[int, ...]
    """Hidden widths."""
    ks: tuple[int, ...]
    """Fan-in budget per layer (weights per neuron)."""
    epochs: int
    """Training epochs."""
    batch: int
    """Batch size (samples)."""
    tune_seeds: tuple[int, ...]
    """Seeds averaged while tuning (each: its own validation split, initialisation and shuffling)."""


SHAPES = {"mnist": Shape("mnist", (100,), (30, 100), 10, 100, (0,)),
          "drones-dense": Shape("drones", (128,), (256, 128), 100, 20, (0, 1, 2)),
          "drones-sparse": Shape("drones", (128,), (10, 10), 100, 20, (0, 1, 2))}


#: Learning rates tried per optimizer when ``--optimizer`` overrides the model's default.
OPTIMIZER_LRS = {"adam": (1e-3, 3e-3, 1e-2, 3e-2), "sgd": (0.01, 0.03, 0.1, 0.3)}


def build(model: str, ds: Dataset, shape: Shape, seed: int, optimizer: str | None = None):
    """The model ``model`` for ``ds`` in ``shape``, initialised from a generator seeded ``seed``; ``optimizer``
    ('adam', 'sgd') replaces its default optimizer."""
    gen = torch.Generator().manual_seed(seed)
    params = None
    if optimizer is not None:
        params_class = {"dense": DenseParams, "prune": PruneParams, "rigl": RigLParams}[model]
        params = params_class(optimizer=optimizer)
    if model == "dense":
        return DenseMLP(ds.n_inputs, ds.n_classes, shape.hidden, params=params, generator=gen)
    return MODELS[model](ds.n_inputs, ds.n_classes, shape.hidden, shape.ks, params=params, generator=gen)


@torch.no_grad()
def accuracy(model, x: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of ``x`` classified as ``y`` (eval mode)."""
    model.eval()
    return float((model(x).argmax(1) == y).float().mean())


def train(model, ds: Dataset, epochs: int, batch: int, lr: float, seed: int) -> float:
    """Train on ``ds.train_*`` as run_training does; the accuracy on ``ds.test_*`` (NaN if the loss diverged)."""
    optimizer = model.make_optimizer(lr)
    n = len(ds.train_y)
    steps_per_epoch = math.ceil(n / batch)
    shuffle = torch.Generator().manual_seed(seed)
    model.train()
    model.begin_training(TrainingContext(total_steps=steps_per_epoch * epochs, steps_per_epoch=steps_per_epoch,
                                         optimizer=optimizer, train_x=ds.train_x, train_y=ds.train_y,
                                         generator=model.generator))
    step = 0
    try:
        for epoch in range(1, epochs + 1):
            perm = torch.randperm(n, generator=shuffle)
            for i in range(0, n, batch):
                idx = perm[i:i + batch]
                x, y = torch.index_select(ds.train_x, 0, idx), torch.index_select(ds.train_y, 0, idx)
                loss = F.cross_entropy(model(x), y)
                if not math.isfinite(float(loss.detach())):
                    return float("nan")
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                model.after_backward(step, x, y)
                optimizer.step()
                step += 1
                model.after_step(step)
            model.after_epoch(epoch)
    finally:
        model.finish_training()
    return accuracy(model, ds.test_x, ds.test_y)


def extension(results: dict[float, list[float]], grid_size: int) -> list[float]:
    """The next learning rate to try when the best so far lies at an edge of the learning rates tried (empty if
    none, or if ``MAX_EXTEND`` were already added to the ``grid_size`` of the grid)."""
    tried = sorted(results)
    score = {lr: statistics.fmean(a) if all(math.isfinite(v) for v in a) else -1.0 for lr, a in results.items()}
    best = max(tried, key=score.get)
    if len(tried) >= grid_size + MAX_EXTEND:
        return []
    if best == tried[0]:
        return [tried[0] / 3]
    if best == tried[-1]:
        return [tried[-1] * 3]
    return []


def mean_sd(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value)."""
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def fmt(values: list[float]) -> str:
    """'mean +- sd (n)' in percent."""
    m, s = mean_sd(values)
    return f"{100 * m:6.2f} +- {100 * s:4.2f} ({len(values)})"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shapes", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--optimizer", choices=("adam", "sgd"), default=None,
                        help="train every model with this optimizer (default: each model's own)")
    parser.add_argument("--test-seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--no-test", action="store_true", help="tune only (never train for the test set)")
    parser.add_argument("--epochs", type=int, default=None, help="override every shape's epochs (smoke tests)")
    parser.add_argument("--dataset-override", default=None, help="use this dataset for every shape (smoke tests)")
    parser.add_argument("--data-dir", default="/work/shared/data")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    datasets: dict[str, Dataset] = {}
    chosen = []
    start = time.perf_counter()
    for shape_name in args.shapes:
        shape = SHAPES[shape_name]
        if args.epochs is not None:
            shape = Shape(shape.dataset, shape.hidden, shape.ks, args.epochs, shape.batch, shape.tune_seeds)
        name = args.dataset_override or shape.dataset
        ds = datasets.setdefault(name, load_dataset(name, args.data_dir))
        splits = {s: ds.validation_split(0.1, seed=s) for s in shape.tune_seeds}
        print(f"\n## {shape_name}: {ds.n_inputs}-{'-'.join(map(str, shape.hidden))}-{ds.n_classes}, ks {shape.ks}, "
              f"{shape.epochs} epochs, batch {shape.batch}; validation: 10 % of {len(ds.train_y)} train, "
              f"seeds {shape.tune_seeds}", flush=True)
        print(f"{'model':6} {'optimizer':9} {'lr':>7}  {'val acc % (seeds)':>22}  {'synapses':>8}  {'s/run':>6}")
        for model in args.models:
            results = {}
            grid = LRS[model] if args.optimizer is None else OPTIMIZER_LRS[args.optimizer]
            lrs = list(grid)
            while lrs:
                lr = lrs.pop(0)
                t = time.perf_counter()
                accs = []
                for s in shape.tune_seeds:
                    net = build(model, splits[s], shape, s, args.optimizer)
                    accs.append(train(net, splits[s], shape.epochs, shape.batch, lr, s))
                results[lr] = accs
                per_run = (time.perf_counter() - t) / len(accs)
                print(f"{model:6} {net.params.optimizer:9} {lr:7.0e}  {fmt(accs):>22}  {net.synapse_count():8d}  "
                      f"{per_run:6.1f}", flush=True)
                if not lrs:  # the best at an edge of the grid: extend it that way (x3), at most MAX_EXTEND times
                    lrs = extension(results, len(grid))
            finite = {lr: a for lr, a in results.items() if all(math.isfinite(v) for v in a)}
            best = max(finite, key=lambda lr: statistics.fmean(finite[lr]))
            chosen.append((shape_name, shape, name, model, net.params.optimizer, best, finite[best]))
    if not args.no_test:
        print("\n## chosen settings, trained on the full training set, evaluated on the test set")
        print(f"{'shape':14} {'model':6} {'optimizer':9} {'lr':>7}  {'val acc %':>22}  {'test acc % (seeds)':>22}")
        for shape_name, shape, name, model, opt, lr, val in chosen:
            ds = datasets[name]
            tests = [train(build(model, ds, shape, s, args.optimizer), ds, shape.epochs, shape.batch, lr, s)
                     for s in args.test_seeds]
            print(f"{shape_name:14} {model:6} {opt:9} {lr:7.0e}  {fmt(val):>22}  {fmt(tests):>22}", flush=True)
    else:
        print("\n## chosen settings (validation)")
        for shape_name, shape, name, model, opt, lr, val in chosen:
            print(f"{shape_name:14} {model:6} {opt:9} {lr:7.0e}  {fmt(val):>22}")
    print(f"\ntotal {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
