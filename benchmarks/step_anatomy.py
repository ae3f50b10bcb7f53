"""Where an epoch's time goes at small K: the training step and the rewiring rounds, measured apart.

    python benchmarks/step_anatomy.py [--data-dir ../shared/data] [--k 10] [--steps 2000] [--threads 1]
                                      [--weight-build auto] [--compiled]

For dense, rf-frozen, rf and rf-input at one K on full MNIST (batch 100): the mean time of one training step
(forward, loss, backward, optimizer step, on the same batch, after a warm-up) and, inside it, of the RF weight
build's forward pass (where a plain layer's voltages are one node, engine.layers.chain.plain_voltages, that node's
forward: W and P W^T); then, from one real 1-epoch run of rf and rf-input, the number and mean time of the
resonator rewiring rounds and input-jump rounds. A diagnostic for the issue "Speed at every K" (the ratios
it sets are measured by bench_engine.py); times depend on the machine's load, so run it on a quiet machine.
``--compiled`` adds the step of dense and rf-frozen with the forward pass and loss compiled by torch.compile:
what fusing the eager operations of a step would give. ``--phases`` splits each model's step into its
forward pass, loss, backward pass, optimizer step and after-step hook (CPU time of this process, so less
sensitive to other processes on a shared machine) and counts the tensor operations (aten calls, backward
included) of one step.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.config.models import build_model  # noqa: E402
from engine.config.run_config import RunConfig  # noqa: E402
from engine.data import load_dataset  # noqa: E402
from engine.layers.chain import WEIGHT_BUILDS  # noqa: E402
from engine.nets.rf_perceptron import RFParams  # noqa: E402
from engine.plasticity import rounds as plasticity  # noqa: E402
from engine.training.loop import run_training  # noqa: E402

MODELS = ("dense", "rf-frozen", "rf", "rf-input")


def _trainer(model_name: str, k: int, ds, weight_build: str = "auto"):
    """(model in training mode, its optimizer, one batch x, y) for a step-time measurement."""
    params = RFParams(weight_build=weight_build) if model_name.startswith("rf") else None
    cfg = RunConfig(model=model_name, resonators_per_chain=k, epochs=1, model_params=params).resolved()
    model = build_model(cfg, ds.n_inputs, ds.n_classes, torch.Generator().manual_seed(0))
    model.train()
    return model, model.make_optimizer(cfg.lr), ds.train_x[:cfg.batch_size], ds.train_y[:cfg.batch_size]


def _timed_steps(model, optimizer, loss_of, steps: int, on_warm=None) -> tuple[float, float]:
    """(mean ms of ``steps`` training steps after 50 warm-up steps, seconds the warm-up took); a step is
    loss_of(), backward, an optimizer step and the model's after_step hook. ``on_warm`` is called between."""
    def step():
        loss = loss_of()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        model.after_step(1)

    t0 = time.perf_counter()
    for _ in range(50):
        step()
    warm = time.perf_counter() - t0
    if on_warm is not None:
        on_warm()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return 1e3 * (time.perf_counter() - t0) / steps, warm


def step_times(model_name: str, k: int, ds, steps: int, weight_build: str = "auto") -> tuple[float, float | None]:
    """(mean step time, mean weight-build forward time inside it), in ms; the second is None for dense."""
    model, optimizer, x, y = _trainer(model_name, k, ds, weight_build)
    chains = getattr(model, "chains", None)
    spent = [0.0]
    if chains is not None:
        build = chains.weight

        plain = chains.plain_voltages

        def timed_weight():
            t = time.perf_counter()
            w = build()
            spent[0] += time.perf_counter() - t
            return w

        def timed_plain(*args, **kwargs):  # the plain path builds W and multiplies it in one node
            t = time.perf_counter()
            v = plain(*args, **kwargs)
            spent[0] += time.perf_counter() - t
            return v
        chains.weight = timed_weight
        chains.plain_voltages = timed_plain

    def forget_warm_up():
        spent[0] = 0.0

    step_ms, _ = _timed_steps(model, optimizer, lambda: F.cross_entropy(model(x), y), steps,
                              on_warm=forget_warm_up)
    return step_ms, (1e3 * spent[0] / steps if chains is not None else None)


def compiled_step_time(model_name: str, k: int, ds, steps: int) -> tuple[float, float]:
    """(mean step time in ms, compile time in s) with the forward pass and the loss compiled as one
    ``torch.compile`` graph (its backward compiled by AOTAutograd); the optimizer step stays eager. A probe of
    what fusing the step would give, not a training path: rf's plasticity reads dLoss/dW through
    ``retain_grad``, which a compiled graph does not offer, so it is measured for models without it."""
    model, optimizer, x, y = _trainer(model_name, k, ds)
    loss_of = torch.compile(lambda xb, yb: F.cross_entropy(model(xb), yb), dynamic=False)
    return _timed_steps(model, optimizer, lambda: loss_of(x, y), steps)


def phase_times(model_name: str, k: int, ds, steps: int) -> tuple[dict, int]:
    """({phase: mean µs of CPU time per step}, aten operations in one step) after 50 warm-up steps."""
    from torch.utils._python_dispatch import TorchDispatchMode  # a benchmark-only probe of torch internals

    model, optimizer, x, y = _trainer(model_name, k, ds)
    spent = dict.fromkeys(("forward", "loss", "backward", "optimizer", "after_step"), 0.0)

    def step(timed: bool) -> None:
        marks = [time.process_time()]
        out = model(x)
        marks.append(time.process_time())
        loss = F.cross_entropy(out, y)
        marks.append(time.process_time())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        marks.append(time.process_time())
        optimizer.step()
        marks.append(time.process_time())
        model.after_step(1)
        marks.append(time.process_time())
        if timed:
            for i, name in enumerate(spent):
                spent[name] += marks[i + 1] - marks[i]

    class Count(TorchDispatchMode):
        calls = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            Count.calls += 1
            return func(*args, **(kwargs or {}))

    for _ in range(50):
        step(False)
    for _ in range(steps):
        step(True)
    with Count():
        step(False)
    return {name: 1e6 * t / steps for name, t in spent.items()}, Count.calls


def round_times(model_name: str, k: int, ds) -> dict:
    """Rounds of a real 1-epoch run: count and mean ms of resonator rounds and of input-jump rounds."""
    spent = {"rewire": [], "rewire_inputs": []}
    originals = {name: getattr(plasticity.StructuralPlasticity, name) for name in spent}

    def wrap(name):
        original = originals[name]

        def timed(self, *args):
            t = time.perf_counter()
            out = original(self, *args)
            spent[name].append(time.perf_counter() - t)
            return out
        return timed

    for name in spent:
        setattr(plasticity.StructuralPlasticity, name, wrap(name))
    try:
        result = run_training(RunConfig(model=model_name, resonators_per_chain=k, epochs=1), dataset=ds)
    finally:
        for name, original in originals.items():
            setattr(plasticity.StructuralPlasticity, name, original)
    out = {"epoch_s": result.train_seconds}
    for name, times in spent.items():
        out[name] = (len(times), 1e3 * sum(times) / max(len(times), 1), sum(times))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--weight-build", default="auto", choices=WEIGHT_BUILDS,
                    help="the RF models' weight build for the step times (model_params.weight_build)")
    ap.add_argument("--phases", action="store_true",
                    help="also split each model's step into its phases and count its tensor operations")
    ap.add_argument("--compiled", action="store_true",
                    help="also time dense and rf-frozen steps with the forward pass and loss compiled")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    ds = load_dataset("mnist", args.data_dir)
    print(f"one training step on one batch of 100, K = {args.k}, {args.steps} steps, {args.threads} thread(s), "
          f"weight build {args.weight_build}:")
    for name in MODELS:
        step_ms, build_ms = step_times(name, args.k, ds, args.steps, args.weight_build)
        extra = "" if build_ms is None else f"  (weight build forward {build_ms:.2f} ms, with P W^T on the plain path)"
        print(f"  {name:10s} {step_ms:6.2f} ms per step{extra}")
    if args.phases:
        print("the step's phases (µs of CPU time per step) and its tensor operations (aten calls):")
        for name in MODELS:
            phases, ops = phase_times(name, args.k, ds, args.steps)
            cells = "  ".join(f"{phase} {us:5.0f}" for phase, us in phases.items())
            print(f"  {name:10s} {cells}  total {sum(phases.values()):5.0f} µs; {ops} operations")
    if args.compiled:
        print("the same step with the forward pass and loss as one torch.compile graph (a probe, not a training "
              "path):")
        for name in ("dense", "rf-frozen"):
            step_ms, warm = compiled_step_time(name, args.k, ds, args.steps)
            print(f"  {name:10s} {step_ms:6.2f} ms per step  (first 50 steps, compiling included: {warm:.1f} s)")
    print("rewiring rounds in a 1-epoch run:")
    for name in ("rf", "rf-input"):
        r = round_times(name, args.k, ds)
        parts = [f"epoch {r['epoch_s']:.2f} s"]
        for key, label in (("rewire", "resonator rounds"), ("rewire_inputs", "input rounds")):
            n, mean_ms, total = r[key]
            if n:
                parts.append(f"{n} {label}, {mean_ms:.0f} ms each ({total:.2f} s)")
        print(f"  {name:10s} " + "; ".join(parts))


if __name__ == "__main__":
    main()
