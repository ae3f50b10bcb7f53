"""The training loop shared by every model: seeded, vectorised, cancellable and pausable, reporting progress
snapshots."""

from __future__ import annotations

import math
import time
from typing import Optional, cast

import numpy as np
import torch
import torch.nn.functional as F

from engine.config.models import build_model
from engine.config.run_config import RunConfig
from engine.core.compute import describe as describe_device
from engine.core.compute import resolve_device
from engine.core.enums import LrSchedule
from engine.core.metrics import EVAL_BATCH, accuracy_of, confusion_matrix
from engine.core.model_base import PerceptronModel, TrainingContext
from engine.core.progress import (
    PAUSE_POLL_S,
    CancelToken,
    DivergenceError,
    PauseControl,
    ProgressCallback,
    RunCancelled,
    Snapshot,
)
from engine.data import Dataset, load_dataset
from engine.io.results import RunResult, dataset_record, software_versions
from engine.nets.hardware import set_regime

#: Minimum time between two progress snapshots (s).
SNAPSHOT_INTERVAL_S = 0.1


def planned_steps(cfg: RunConfig, n_train: int) -> int:
    """Optimizer steps of a run of ``cfg`` on a training set of ``n_train`` samples (less its validation part)."""
    if cfg.validation_fraction > 0:
        n_train -= max(1, int(round(n_train * cfg.validation_fraction)))  # as Dataset.validation_split
    return math.ceil(max(n_train, 0) / cfg.batch_size) * cfg.epochs


def make_snapshot(
    model: PerceptronModel,
    cfg: RunConfig,
    *,
    epoch: int,
    step: int,
    total_steps: int,
    loss: float,
    train_acc: float,
    test_acc: Optional[float],
    elapsed: float,
    history: list,
    final: bool = False,
) -> Snapshot:
    """A snapshot of the model's current state (copies only)."""
    with torch.no_grad():
        w = model.effective_weight().detach().cpu().numpy().astype("float32", copy=True)
        b = model.bias.detach().cpu().numpy().copy()  # type: ignore[operator]  # torch types it Tensor | Module
    eta = elapsed / step * (total_steps - step) if step else float("nan")
    return Snapshot(
        model=cfg.model,
        resonators_per_chain=cfg.resonators_per_chain,
        epoch=epoch,
        epochs=cfg.epochs,
        step=step,
        total_steps=total_steps,
        loss=loss,
        train_accuracy=train_acc,
        test_accuracy=test_acc,
        elapsed_s=elapsed,
        eta_s=0.0 if final else eta,
        weight=w,
        bias=b,
        rewiring_events=model.rewiring_events,
        history=[tuple(h) for h in history],
        final=final,
        **model.snapshot_extras(),
    )


def lr_factor(schedule: LrSchedule, total_steps: int):
    """The learning-rate multiplier of step ``s`` for LambdaLR: cosine decay to 0 over the run, or constant."""
    if schedule == LrSchedule.COSINE:
        return lambda s: 0.5 * (1.0 + math.cos(math.pi * min(s, total_steps) / total_steps))
    return lambda s: 1.0


def prepared_dataset(cfg: RunConfig, dataset: Optional[Dataset]) -> tuple[Dataset, str]:
    """The data a run of the resolved ``cfg`` trains and is evaluated on, and which split it is evaluated on
    ('test', or 'validation' with a validation fraction); ValueError for a K the data cannot hold."""
    ds = dataset if dataset is not None else load_dataset(cfg.dataset, cfg.data_dir)
    evaluated_on = "test"
    if cfg.validation_fraction > 0:
        ds = ds.validation_split(cfg.validation_fraction, seed=cfg.seed)
        evaluated_on = "validation"
    if cfg.spec.uses_k and cfg.resonators_per_chain > ds.n_inputs:
        raise ValueError(
            f"resonators per chain must be between 1 and {ds.n_inputs} for {ds.name} (got {cfg.resonators_per_chain})"
        )
    return ds, evaluated_on


def divergence_message(where: str, value: float, cfg: RunConfig) -> str:
    """What a run whose loss became ``value`` (not finite) at ``where`` ("epoch 2, step 130") is told."""
    return f"training diverged at {where}: the loss became {value}; lower the learning rate (now {cfg.lr:g})."


@torch.no_grad()
def validation_loss(model: PerceptronModel, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> float:
    """Mean cross-entropy of ``model`` in eval mode on (x, y), batched as the accuracy. The model's generator is
    restored afterwards: the accuracy pass that follows sees the same read-out noise and the training run is
    unchanged."""
    state, was_training = generator.get_state(), model.training
    model.eval()
    total = 0.0
    for i in range(0, len(y), EVAL_BATCH):
        total += float(F.cross_entropy(model(x[i : i + EVAL_BATCH]), y[i : i + EVAL_BATCH], reduction="sum"))
    model.train(was_training)
    generator.set_state(state)
    return total / max(len(y), 1)


def epoch_record(
    cfg: RunConfig,
    epoch: int,
    train_loss: float,
    train_acc: float,
    eval_acc: Optional[float],
    eval_loss: Optional[float],
) -> dict:
    """An epoch's entry of ``RunResult.epoch_metrics``: val_* with a validation split, else test_accuracy."""
    entry: dict[str, Optional[float]] = {"epoch": epoch, "train_loss": train_loss, "train_accuracy": train_acc}
    if cfg.validation_fraction > 0:
        entry.update(val_loss=eval_loss, val_accuracy=eval_acc)
    else:
        entry["test_accuracy"] = eval_acc
    return entry


def run_result(
    cfg: RunConfig,
    model: PerceptronModel,
    ds: Dataset,
    evaluated_on: str,
    device: torch.device,
    confusion: np.ndarray,
    history: list,
    epoch_metrics: list,
    train_seconds: float,
    cancelled: bool,
) -> RunResult:
    """A run's result from its last evaluation's counts, with the model in eval mode moved to the CPU (results,
    exports and views read the trained model there)."""
    model.eval()
    model.to("cpu")
    return RunResult(
        config=cfg,
        test_accuracy=accuracy_of(confusion),
        train_seconds=train_seconds,
        epochs_completed=len(history),
        history=history,
        rewiring_events=model.rewiring_events,
        synapses=model.synapse_count(),
        cancelled=cancelled,
        n_inputs=ds.n_inputs,
        n_classes=ds.n_classes,
        evaluated_on=evaluated_on,
        dataset_info=dataset_record(ds),
        versions={**software_versions(), "compute_device": describe_device(device)},
        confusion=confusion.tolist(),
        epoch_metrics=list(epoch_metrics),
        model=model,
    )


class _Trainer:
    """The state of one training run: model, data on the device, optimizer and schedule, step and epoch
    counters, the epoch's running sums and the history. :func:`run_training` is its public face."""

    def __init__(
        self,
        cfg: RunConfig,
        ds: Dataset,
        progress: Optional[ProgressCallback],
        cancel: Optional[CancelToken],
        snapshot_interval_s: float,
        pause: Optional[PauseControl] = None,
    ) -> None:
        self.cfg, self.progress, self.cancel, self.snapshot_interval_s = cfg, progress, cancel, snapshot_interval_s
        self.pause = pause
        # The run's own generators: one for the model (initialisation, then plasticity samples, stochastic
        # rounding, device noise) and one for shuffling; torch's global generator is never used.
        self.model_gen = torch.Generator().manual_seed(cfg.seed)
        self.shuffle_gen = torch.Generator().manual_seed(cfg.seed)
        self.device = device = resolve_device(cfg.compute_device)
        self.model = build_model(cfg, ds.n_inputs, ds.n_classes, self.model_gen).to(device)  # CPU-built: same init
        self.n_classes = ds.n_classes
        set_regime(self.model, cfg.hardware)  # which chip and noise RF training passes see (see engine.nets.hardware)
        self.train_x, self.train_y, self.test_x, self.test_y = (
            t.to(device) for t in (ds.train_x, ds.train_y, ds.test_x, ds.test_y)
        )
        # On the CPU a NaN loss is caught at its step; on a GPU that would cost a host sync per step, so the
        # running sums stay on the device and are checked when a snapshot is due and at every epoch end.
        self.check_every_step = device.type == "cpu"
        self.optimizer = self.model.make_optimizer(cfg.effective_lr)  # cfg.lr: run configs arrive resolved
        self.n = len(ds.train_y)
        self.steps_per_epoch = math.ceil(self.n / cfg.batch_size)
        self.total_steps = self.steps_per_epoch * cfg.epochs
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lr_factor(cfg.lr_schedule, self.total_steps))
        self.model.train()
        self.history: list = []
        self.epoch_metrics: list = []  # one dict per epoch (see _epoch_record)
        self.step = 0
        self.epoch = 0
        self.test_acc: Optional[float] = None
        self.confusion: Optional[np.ndarray] = None  # the last evaluation's counts, true x predicted
        self.start = time.perf_counter()
        self.paused_s = 0.0  # time spent paused (not training time)
        self.last_report = -1e9
        # this epoch's samples seen, sum of loss x batch size and correct answers: Python numbers on the CPU
        # (reading a CPU tensor costs nothing), device tensors elsewhere (reading them would wait for the device)
        self.seen = 0
        self.loss_sum: float | torch.Tensor = 0.0
        self.correct: int | torch.Tensor = 0

    def running(self) -> tuple[float, float]:
        """(mean loss, accuracy) over the epoch so far; raises DivergenceError on a NaN or infinite loss."""
        mean_loss = float(self.loss_sum) / self.seen
        if not math.isfinite(mean_loss):
            raise DivergenceError(divergence_message(f"epoch {self.epoch}, by step {self.step}", mean_loss, self.cfg))
        return mean_loss, int(self.correct) / self.seen

    def report(self, force: bool = False, paused: bool = False) -> None:
        """Send a snapshot if one is due (or ``force``); also called from inside long rewiring rounds."""
        now = time.perf_counter()
        due = force or now - self.last_report >= self.snapshot_interval_s
        if self.progress is None or self.seen == 0 or not due:
            return
        self.last_report = now
        mean_loss, train_acc = self.running()
        snap = make_snapshot(
            self.model,
            self.cfg,
            epoch=self.epoch,
            step=self.step,
            total_steps=self.total_steps,
            loss=mean_loss,
            train_acc=train_acc,
            test_acc=self.test_acc,
            elapsed=now - self.start - self.paused_s,
            history=self.history,
        )
        snap.paused = paused
        self.progress(snap)

    def stop_if_cancelled(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise RunCancelled

    def wait_while_paused(self) -> None:
        """Between two batches: while the pause token is set, wait (a snapshot with ``paused`` first), still
        stopping if cancelled; the time spent paused does not count as training time."""
        if self.pause is None or not self.pause.is_set():
            return
        self.report(force=True, paused=True)
        began = time.perf_counter()
        wait = getattr(self.cancel, "wait", None)  # an Event returns at once when set: cancelling is prompt
        while self.pause.is_set():
            self.stop_if_cancelled()
            if wait is not None:
                wait(PAUSE_POLL_S)
            else:
                time.sleep(PAUSE_POLL_S)
        self.stop_if_cancelled()
        self.paused_s += time.perf_counter() - began
        self.report(force=True)

    def heartbeat(self) -> None:
        """Called by the model during long work inside a step: stop if cancelled, report if due."""
        self.stop_if_cancelled()
        self.report()

    def _reset_sums(self) -> None:
        if self.check_every_step:
            self.loss_sum, self.correct = 0.0, 0
        else:
            self.loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
            self.correct = torch.zeros((), dtype=torch.int64, device=self.device)
        self.seen = 0

    def _train_batch(self, idx: torch.Tensor) -> None:
        """One optimizer step on the samples ``idx``, added to the epoch's running sums."""
        model = self.model
        x, y = torch.index_select(self.train_x, 0, idx), torch.index_select(self.train_y, 0, idx)
        self.optimizer.zero_grad(set_to_none=True)
        by_hand = model.training_step(x, y)  # scores and loss with the gradients set, or None: autograd
        if by_hand is None:
            logits = model(x)
            loss = F.cross_entropy(logits, y)
        else:
            logits, loss = by_hand
        if self.check_every_step:
            loss_value = float(loss.detach())
            if not math.isfinite(loss_value):
                raise DivergenceError(divergence_message(f"epoch {self.epoch}, step {self.step}", loss_value, self.cfg))
        if by_hand is None:
            loss.backward()
        model.after_backward(self.step, x, y)
        self.optimizer.step()
        self.scheduler.step()
        self.step += 1
        model.after_step(self.step)
        hits = (logits.detach().argmax(1) == y).sum()
        if self.check_every_step:
            self.loss_sum += loss_value * len(y)
            self.correct += int(hits)
        else:
            # device tensors whenever the check is not per step (see _reset_sums)
            cast(torch.Tensor, self.loss_sum).add_(loss.detach().double() * len(y))
            cast(torch.Tensor, self.correct).add_(hits)
        self.seen += len(y)

    def _train_epoch(self) -> None:
        """One pass over the shuffled training set, then the epoch's evaluation and a forced snapshot."""
        perm = torch.randperm(self.n, generator=self.shuffle_gen).to(self.device)
        self._reset_sums()
        for i in range(0, self.n, self.cfg.batch_size):
            self.stop_if_cancelled()
            self._train_batch(perm[i : i + self.cfg.batch_size])
            self.report()
            if i + self.cfg.batch_size < self.n:  # the last batch's pause point is the epoch's end
                self.wait_while_paused()
        self.model.after_epoch(self.epoch)
        mean_loss, train_acc = self.running()
        eval_loss = self._validation_loss()
        # the same forward passes as accuracy(): the matrix comes free, and the accuracy is its trace over its sum
        self.confusion = confusion_matrix(self.model, self.test_x, self.test_y, self.n_classes)
        self.test_acc = accuracy_of(self.confusion)
        self.history.append((self.epoch, mean_loss, train_acc, self.test_acc))
        self.epoch_metrics.append(self._epoch_record(mean_loss, train_acc, eval_loss))
        self.report(force=True)
        if self.epoch < self.cfg.epochs and self.pause is not None:
            epoch_ended = getattr(self.pause, "epoch_ended", None)  # a stepping run pauses here
            if epoch_ended is not None:
                epoch_ended()
            self.wait_while_paused()

    def _validation_loss(self) -> Optional[float]:
        """Mean cross-entropy on the validation split (None without one); see :func:`validation_loss`."""
        if self.cfg.validation_fraction <= 0:
            return None
        return validation_loss(self.model, self.test_x, self.test_y, self.model_gen)

    def _epoch_record(self, train_loss: float, train_acc: float, eval_loss: Optional[float]) -> dict:
        return epoch_record(self.cfg, self.epoch, train_loss, train_acc, self.test_acc, eval_loss)

    def train(self) -> bool:
        """Every epoch, until done or cancelled; returns whether the run was cancelled."""
        self.model.begin_training(
            TrainingContext(
                total_steps=self.total_steps,
                steps_per_epoch=self.steps_per_epoch,
                optimizer=self.optimizer,
                train_x=self.train_x,
                train_y=self.train_y,
                generator=self.model_gen,
                heartbeat=self.heartbeat,
            )
        )
        try:
            for epoch in range(1, self.cfg.epochs + 1):
                self.epoch = epoch
                self._train_epoch()
        except RunCancelled:
            return True
        finally:
            self.model.finish_training()  # the returned model holds no training state (data, optimizer, sums)
        return False

    def result(self, ds: Dataset, evaluated_on: str, cancelled: bool) -> RunResult:
        """The run's result (model moved to the CPU), after a final snapshot to ``progress``."""
        model, history = self.model, self.history
        train_seconds = time.perf_counter() - self.start - self.paused_s
        # a finished run was just evaluated after its last epoch; a cancelled one is evaluated as it stands
        if not history or cancelled or self.confusion is None:  # an epoch's end sets it
            self.confusion = confusion_matrix(model, self.test_x, self.test_y, self.n_classes)
        result = run_result(
            self.cfg,
            model,
            ds,
            evaluated_on,
            self.device,
            self.confusion,
            history,
            self.epoch_metrics,
            train_seconds,
            cancelled,
        )
        final_acc = result.test_accuracy
        if self.progress is not None:
            last = history[-1] if history else (self.epoch, float("nan"), float("nan"), final_acc)
            self.progress(
                make_snapshot(
                    model,
                    self.cfg,
                    epoch=max(self.epoch, 1),
                    step=self.step,
                    total_steps=self.total_steps,
                    loss=last[1],
                    train_acc=last[2],
                    test_acc=final_acc,
                    elapsed=train_seconds,
                    history=history,
                    final=True,
                )
            )
        return result


def run_training(
    cfg: RunConfig,
    dataset: Optional[Dataset] = None,
    progress: Optional[ProgressCallback] = None,
    cancel: Optional[CancelToken] = None,
    snapshot_interval_s: float = SNAPSHOT_INTERVAL_S,
    pause: Optional[PauseControl] = None,
) -> RunResult:
    """Train one model as configured and return its result.

    ``dataset`` avoids reloading when the caller already holds it (its name should match ``cfg.dataset``).
    ``progress`` receives snapshots at most every ``snapshot_interval_s`` and after every epoch. Setting
    ``cancel`` stops the run between two batches; the result then has ``cancelled=True`` and the accuracy of
    the model as it was. While ``pause`` is set (a :class:`PauseControl`, or any object with ``is_set()``) the
    run waits between two batches, still honouring ``cancel``; a PauseControl's ``step()`` runs to the end of
    the epoch and pauses there. Pausing changes no result, and time paused is not training time. A NaN or
    infinite loss raises :class:`DivergenceError`.
    """
    cfg = cfg.resolved()
    ds, evaluated_on = prepared_dataset(cfg, dataset)
    trainer = _Trainer(cfg, ds, progress, cancel, snapshot_interval_s, pause)
    cancelled = trainer.train()
    return trainer.result(ds, evaluated_on, cancelled)
