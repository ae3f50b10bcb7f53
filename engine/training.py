"""The training loop shared by every model: seeded, vectorised, cancellable, reporting progress snapshots."""
from __future__ import annotations

import math
import time
from typing import Optional

import torch
import torch.nn.functional as F

from .config import RunConfig
from .data import Dataset, load_dataset
from .hardware import set_regime
from .model_base import PerceptronModel, TrainingContext
from .models import build_model
from .progress import CancelToken, DivergenceError, ProgressCallback, RunCancelled, Snapshot
from .compute import describe as describe_device
from .compute import resolve_device
from .results import RunResult, dataset_record, software_versions

#: Minimum time between two progress snapshots (s).
SNAPSHOT_INTERVAL_S = 0.1
EVAL_BATCH = 10_000


@torch.no_grad()
def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of correctly classified samples (model in eval mode, batched)."""
    was_training = model.training
    model.eval()
    correct = 0
    for i in range(0, len(y), EVAL_BATCH):
        correct += int((model(x[i:i + EVAL_BATCH]).argmax(1) == y[i:i + EVAL_BATCH]).sum())
    model.train(was_training)
    return correct / max(len(y), 1)


def planned_steps(cfg: RunConfig, n_train: int) -> int:
    """Optimizer steps of a run of ``cfg`` on a training set of ``n_train`` samples (less its validation part)."""
    if cfg.validation_fraction > 0:
        n_train -= max(1, int(round(n_train * cfg.validation_fraction)))  # as Dataset.validation_split
    return math.ceil(max(n_train, 0) / cfg.batch_size) * cfg.epochs


def make_snapshot(model: PerceptronModel, cfg: RunConfig, *, epoch: int, step: int, total_steps: int,
                  loss: float, train_acc: float, test_acc: Optional[float], elapsed: float,
                  history: list, final: bool = False) -> Snapshot:
    """A snapshot of the model's current state (copies only)."""
    with torch.no_grad():
        w = model.effective_weight().detach().cpu().numpy().astype("float32", copy=True)
        b = model.bias.detach().cpu().numpy().copy()
    eta = elapsed / step * (total_steps - step) if step else float("nan")
    return Snapshot(model=cfg.model, resonators_per_chain=cfg.resonators_per_chain, epoch=epoch,
                    epochs=cfg.epochs, step=step, total_steps=total_steps, loss=loss, train_accuracy=train_acc,
                    test_accuracy=test_acc, elapsed_s=elapsed, eta_s=0.0 if final else eta, weight=w, bias=b,
                    rewiring_events=model.rewiring_events, history=[tuple(h) for h in history], final=final,
                    **model.snapshot_extras())


def run_training(cfg: RunConfig, dataset: Optional[Dataset] = None, progress: Optional[ProgressCallback] = None,
                 cancel: Optional[CancelToken] = None, snapshot_interval_s: float = SNAPSHOT_INTERVAL_S
                 ) -> RunResult:
    """Train one model as configured and return its result.

    ``dataset`` avoids reloading when the caller already holds it (its name should match ``cfg.dataset``).
    ``progress`` receives snapshots at most every ``snapshot_interval_s`` and after every epoch. Setting
    ``cancel`` stops the run between two batches; the result then has ``cancelled=True`` and the accuracy of
    the model as it was. A NaN or infinite loss raises :class:`DivergenceError`.
    """
    cfg = cfg.resolved()
    ds = dataset if dataset is not None else load_dataset(cfg.dataset, cfg.data_dir)
    evaluated_on = "test"
    if cfg.validation_fraction > 0:
        ds = ds.validation_split(cfg.validation_fraction, seed=cfg.seed)
        evaluated_on = "validation"
    if cfg.spec.uses_k and cfg.resonators_per_chain > ds.n_inputs:
        raise ValueError(f"resonators per chain must be between 1 and {ds.n_inputs} for {ds.name} "
                         f"(got {cfg.resonators_per_chain})")
    # The run's own generators: one for the model (initialisation, then plasticity samples, stochastic
    # rounding, device noise) and one for shuffling; torch's global generator is never used.
    model_gen = torch.Generator().manual_seed(cfg.seed)
    shuffle_gen = torch.Generator().manual_seed(cfg.seed)
    device = resolve_device(cfg.compute_device)
    model = build_model(cfg, ds.n_inputs, ds.n_classes, model_gen).to(device)  # built on the CPU: same init
    set_regime(model, cfg.hardware)  # which chip and noise RF training passes see (see engine.hardware)
    train_x, train_y, test_x, test_y = (t.to(device) for t in (ds.train_x, ds.train_y, ds.test_x, ds.test_y))
    # On the CPU a NaN loss is caught at its step; on a GPU that would cost a host sync per step, so the
    # running sums stay on the device and are checked when a snapshot is due and at every epoch end.
    check_every_step = device.type == "cpu"
    lr = cfg.lr
    optimizer = model.make_optimizer(lr)
    n = len(ds.train_y)
    steps_per_epoch = math.ceil(n / cfg.batch_size)
    total_steps = steps_per_epoch * cfg.epochs
    if cfg.lr_schedule == "cosine":
        factor = lambda s: 0.5 * (1.0 + math.cos(math.pi * min(s, total_steps) / total_steps))  # noqa: E731
    else:
        factor = lambda s: 1.0  # noqa: E731
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    model.train()

    history: list = []
    step = 0
    test_acc: Optional[float] = None
    cancelled = False
    start = time.perf_counter()
    last_report = -1e9
    epoch = 0
    seen = 0
    # sums of loss x batch size and of correct answers this epoch: Python numbers on the CPU (reading a CPU
    # tensor costs nothing), device tensors elsewhere (reading them would wait for the device)
    loss_sum: float | torch.Tensor = 0.0
    correct: int | torch.Tensor = 0

    def running() -> tuple[float, float]:
        """(mean loss, accuracy) over the epoch so far; raises DivergenceError on a NaN or infinite loss."""
        mean_loss = float(loss_sum) / seen
        if not math.isfinite(mean_loss):
            raise DivergenceError(f"training diverged at epoch {epoch}, by step {step}: the loss became "
                                  f"{mean_loss}; lower the learning rate (now {lr:g}).")
        return mean_loss, int(correct) / seen

    def report(force: bool = False) -> None:
        """Send a snapshot if one is due (or ``force``); also called from inside long rewiring rounds."""
        nonlocal last_report
        now = time.perf_counter()
        if progress is None or seen == 0 or not (force or now - last_report >= snapshot_interval_s):
            return
        last_report = now
        mean_loss, train_acc = running()
        progress(make_snapshot(model, cfg, epoch=epoch, step=step, total_steps=total_steps,
                               loss=mean_loss, train_acc=train_acc, test_acc=test_acc,
                               elapsed=now - start, history=history))

    def stop_if_cancelled() -> None:
        if cancel is not None and cancel.is_set():
            raise RunCancelled

    def heartbeat() -> None:
        stop_if_cancelled()
        report()

    model.begin_training(TrainingContext(total_steps=total_steps, steps_per_epoch=steps_per_epoch,
                                         optimizer=optimizer, train_x=train_x, train_y=train_y,
                                         generator=model_gen, heartbeat=heartbeat))
    try:
        for epoch in range(1, cfg.epochs + 1):
            perm = torch.randperm(n, generator=shuffle_gen).to(device)
            if check_every_step:
                loss_sum, correct = 0.0, 0
            else:
                loss_sum = torch.zeros((), dtype=torch.float64, device=device)
                correct = torch.zeros((), dtype=torch.int64, device=device)
            seen = 0  # (all three read by report(), a closure)
            for i in range(0, n, cfg.batch_size):
                stop_if_cancelled()
                idx = perm[i:i + cfg.batch_size]
                x, y = torch.index_select(train_x, 0, idx), torch.index_select(train_y, 0, idx)
                logits = model(x)
                loss = F.cross_entropy(logits, y)
                if check_every_step:
                    loss_value = float(loss.detach())
                    if not math.isfinite(loss_value):
                        raise DivergenceError(
                            f"training diverged at epoch {epoch}, step {step}: the loss became {loss_value}; "
                            f"lower the learning rate (now {lr:g}).")
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                model.after_backward(step, x, y)
                optimizer.step()
                scheduler.step()
                step += 1
                model.after_step(step)
                hits = (logits.detach().argmax(1) == y).sum()
                if check_every_step:
                    loss_sum += loss_value * len(y)
                    correct += int(hits)
                else:
                    loss_sum.add_(loss.detach().double() * len(y))
                    correct.add_(hits)
                seen += len(y)
                report()
            model.after_epoch(epoch)
            mean_loss, train_acc = running()
            test_acc = accuracy(model, test_x, test_y)
            history.append((epoch, mean_loss, train_acc, test_acc))
            report(force=True)
    except RunCancelled:
        cancelled = True
    finally:
        model.finish_training()  # the returned model holds no training state (data, optimizer, sums)
    train_seconds = time.perf_counter() - start
    # a finished run was just evaluated after its last epoch; a cancelled one is evaluated as it stands
    final_acc = test_acc if (history and not cancelled) else accuracy(model, test_x, test_y)
    model.eval()
    model.to("cpu")  # results, exports and views read the trained model on the CPU
    result = RunResult(config=cfg, test_accuracy=final_acc, train_seconds=train_seconds,
                       epochs_completed=len(history), history=history, rewiring_events=model.rewiring_events,
                       synapses=model.synapse_count(), cancelled=cancelled, n_inputs=ds.n_inputs,
                       n_classes=ds.n_classes, evaluated_on=evaluated_on, dataset_info=dataset_record(ds),
                       versions={**software_versions(), "compute_device": describe_device(device)}, model=model)
    if progress is not None:
        last = history[-1] if history else (epoch, float("nan"), float("nan"), final_acc)
        progress(make_snapshot(model, cfg, epoch=max(epoch, 1), step=step, total_steps=total_steps,
                               loss=last[1], train_acc=last[2], test_acc=final_acc, elapsed=train_seconds,
                               history=history, final=True))
    return result
