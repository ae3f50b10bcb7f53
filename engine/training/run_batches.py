"""Runs trained together: software baselines that differ only in seed and K, as one batch of runs.

A sweep trains every sparse baseline at every K for every seed, and at K = 10 a baseline's step is a few
microseconds of arithmetic under some forty tensor operations. :func:`run_batch` trains R such runs in
lockstep with the operations paid once per step: the R weight matrices, biases and masks are stacked into
(R, C, N), (R, C) and (R, C, N) tensors, each member model's own ``weight``, ``bias`` and ``mask`` become views
of its slice, one optimizer steps the stacked tensors, and one loss (the sum of the members' mean
cross-entropies) is differentiated, which gives every member the gradient of its own loss.

What stays each member's own, so that a member trains as the same run alone would:

- its model, built from its own seed's generator (the same initial weights and mask), which also draws its
  topology updates (RigL's rounding, SET's regrowth);
- its data order: members of one seed share the permutation a run of that seed draws (shuffling depends on the
  seed only), and with a validation split each seed has its own split, as a run alone;
- its hooks: ``after_backward`` with its own batch, :meth:`MaskedPerceptron.update_topology` after the shared
  masking step, ``after_epoch``; they see the optimizer state of their slice only (:class:`_MemberOptimizer`);
- its history, evaluation, divergence and result. A member whose loss stops being finite is reported as a
  :class:`DivergenceError` (the message a run alone raises); its slice goes on in the batch, touching no other.

The optimizers are elementwise (Adam, SGD with momentum), so stepping the stacked tensors computes each
member's update as its own optimizer would. The only differences from training alone are the rounding of the
batched products; ``tests/test_run_batches.py`` checks members against runs alone. A member's
``train_seconds`` is its share of the batch's time (the batch's time over R).
"""

from __future__ import annotations

import json
import math
import time
from typing import Optional, Sequence, Union, cast

import numpy as np
import torch
from torch import nn

from engine.config.models import build_model
from engine.config.run_config import RunConfig
from engine.core.compute import resolve_device
from engine.core.metrics import accuracy_of, confusion_matrix
from engine.core.model_base import TrainingContext
from engine.core.progress import CancelToken, DivergenceError, RunCancelled
from engine.data import Dataset
from engine.io.results import RunResult
from engine.nets.baselines import DensePerceptron, MaskedPerceptron
from engine.nets.baselines.optim import make_optimizer
from engine.training.loop import (
    divergence_message,
    epoch_record,
    lr_factor,
    prepared_dataset,
    run_result,
    validation_loss,
)

#: The models whose runs can train together: one stacked linear layer each.
BATCHED_MODELS = ("dense", "prune", "random", "rigl", "set")
#: Most runs in one batch (a sweep's 7 K x 3 seeds of one baseline make 21).
MAX_BATCH = 32


def batch_key(cfg: RunConfig) -> Optional[str]:
    """What runs must share to train together: every setting but the seed and K (None: ``cfg`` trains alone,
    as a model other than a single-layer software baseline does)."""
    cfg = cfg.resolved()
    if cfg.model not in BATCHED_MODELS or cfg.is_multilayer:
        return None
    return json.dumps(cfg.with_(seed=0, resonators_per_chain=1).to_dict(), sort_keys=True, default=str)


def group_runs(cfgs: Sequence[RunConfig], max_size: int = MAX_BATCH) -> list[Union[RunConfig, tuple[RunConfig, ...]]]:
    """The jobs of ``cfgs``: runs that can train together gathered into tuples of at most ``max_size`` (at the
    place of their first run), every other run as it is."""
    jobs: list[Union[RunConfig, list[RunConfig]]] = []
    open_: dict[str, list[RunConfig]] = {}
    for cfg in cfgs:
        key = batch_key(cfg)
        if key is None:
            jobs.append(cfg)
            continue
        group = open_.get(key)
        if group is None or len(group) >= max_size:
            group = open_[key] = []
            jobs.append(group)
        group.append(cfg)
    return [tuple(j) if isinstance(j, list) else j for j in jobs]


class _MemberOptimizer:
    """What a member's hooks see of the batch's optimizer: its ``state``, keyed by the member's own parameters
    and holding its slices of the stacked state tensors (read again at each access: Adam makes its state at the
    first step)."""

    def __init__(self, optimizer: torch.optim.Optimizer, pairs: Sequence[tuple[nn.Parameter, nn.Parameter]], r: int):
        self.optimizer, self.pairs, self.r = optimizer, pairs, r

    @property
    def state(self) -> dict:
        out = {}
        for own, stacked in self.pairs:
            state = self.optimizer.state.get(stacked, {})
            out[own] = {
                k: (v[self.r] if torch.is_tensor(v) and v.shape == stacked.shape else v) for k, v in state.items()
            }
        return out


class _Seed:
    """The data of the members of one seed: its (split) dataset on the device and its shuffling generator."""

    def __init__(self, cfg: RunConfig, dataset: Dataset, device: torch.device, first: int) -> None:
        self.ds, self.evaluated_on = prepared_dataset(cfg, dataset)
        self.train_x, self.train_y, self.test_x, self.test_y = (
            t.to(device) for t in (self.ds.train_x, self.ds.train_y, self.ds.test_x, self.ds.test_y)
        )
        self.shuffle_gen = torch.Generator().manual_seed(cfg.seed)
        self.first, self.count = first, 0  # the members' slice of the batch
        self.perm = torch.empty(0, dtype=torch.long)
        self.x = self.y = torch.empty(0)


class _Member:
    """One run of the batch: its config, model, seed's data and its epoch's running sums and history."""

    def __init__(self, cfg: RunConfig, model: Union[DensePerceptron, MaskedPerceptron], seed: _Seed) -> None:
        self.cfg, self.model, self.seed = cfg, model, seed
        self.history: list = []
        self.epoch_metrics: list = []
        self.error: Optional[str] = None
        self.confusion: Optional[np.ndarray] = None  # the last evaluation's counts
        self.loss_sum, self.correct, self.seen = 0.0, 0, 0

    def diverged(self, where: str, value: float) -> None:
        if self.error is None:
            self.error = divergence_message(where, value, self.cfg)


class _Batch:
    """R runs of one :func:`batch_key`, stacked; :func:`run_batch` is its public face."""

    def __init__(self, cfgs: Sequence[RunConfig], dataset: Dataset, cancel: Optional[CancelToken]) -> None:
        self.cancel = cancel
        keys = {batch_key(c) for c in cfgs}
        if len(keys) != 1 or None in keys:
            raise ValueError("runs train together only when they are software baselines that differ in seed and K")
        self.order = sorted(range(len(cfgs)), key=lambda i: cfgs[i].seed)  # members of one seed side by side
        cfgs = [cfgs[i].resolved() for i in self.order]
        self.cfg = cfg = cfgs[0]
        self.device = resolve_device(cfg.compute_device)
        self.seeds: list[_Seed] = []
        self.members: list[_Member] = []
        for i, c in enumerate(cfgs):
            if not self.seeds or c.seed != cfgs[self.seeds[-1].first].seed:
                self.seeds.append(_Seed(c, dataset, self.device, i))
            seed = self.seeds[-1]
            seed.count += 1
            model = build_model(c, seed.ds.n_inputs, seed.ds.n_classes, torch.Generator().manual_seed(c.seed))
            if not isinstance(model, (DensePerceptron, MaskedPerceptron)):
                raise TypeError(f"model {c.model!r} cannot train in a batch")
            self.members.append(_Member(c, model.to(self.device), seed))
        self._stack()
        ds = self.seeds[0].ds
        self.n_classes, self.n = ds.n_classes, len(self.seeds[0].train_y)
        self.steps_per_epoch = math.ceil(self.n / cfg.batch_size)
        self.total_steps = self.steps_per_epoch * cfg.epochs
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lr_factor(cfg.lr_schedule, self.total_steps))
        self.step = self.epoch = 0
        self.start = time.perf_counter()

    def _stack(self) -> None:
        """Stack the members' weights, biases and masks, make each member's own a view of its slice, and build
        the one optimizer."""
        models = [m.model for m in self.members]
        self.weight = nn.Parameter(torch.stack([m.weight.detach() for m in models]))
        self.bias = nn.Parameter(torch.stack([m.bias.detach() for m in models]))
        masked = isinstance(models[0], MaskedPerceptron)
        self.mask = torch.stack([cast(MaskedPerceptron, m).mask for m in models]) if masked else None
        for r, model in enumerate(models):
            model.weight = nn.Parameter(self.weight.data[r])
            model.bias = nn.Parameter(self.bias.data[r])
            if self.mask is not None:
                model.mask = self.mask[r]
        params = models[0].params
        self.optimizer = make_optimizer(
            [self.weight, self.bias], params.optimizer, self.cfg.effective_lr, params.momentum
        )

    def stop_if_cancelled(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise RunCancelled

    def _begin(self) -> None:
        for r, m in enumerate(self.members):
            own = [(m.model.weight, self.weight), (m.model.bias, self.bias)]
            m.model.train()
            m.model.begin_training(
                TrainingContext(
                    total_steps=self.total_steps,
                    steps_per_epoch=self.steps_per_epoch,
                    optimizer=cast(torch.optim.Optimizer, _MemberOptimizer(self.optimizer, own, r)),
                    train_x=m.seed.train_x,
                    train_y=m.seed.train_y,
                    generator=m.model.generator,
                    heartbeat=self.stop_if_cancelled,
                )
            )

    def _scores(self) -> torch.Tensor:
        """(R, C, B): every member's scores for its seed's batch, classes before samples (a softmax over the
        classes then runs along contiguous samples, about twenty times faster than over rows of C scores),
        one product per seed. The weight is multiplied by the mask, as a member alone does: no gradient reaches
        a masked weight (one would reach the optimizer state, where a gradient that overflows could not be
        cleared by multiplying with the mask)."""
        w = self.weight * self.mask if self.mask is not None else self.weight
        n_in = w.shape[2]
        parts = []
        for s in self.seeds:
            lo, hi = s.first, s.first + s.count
            z = torch.addmm(self.bias[lo:hi].reshape(-1, 1), w[lo:hi].reshape(-1, n_in), s.x.t())
            parts.append(z.view(s.count, -1, len(s.y)))
        return torch.cat(parts)

    def _train_batch(self, i: int) -> None:
        batch = self.cfg.batch_size
        for s in self.seeds:
            idx = s.perm[i : i + batch]
            s.x, s.y = torch.index_select(s.train_x, 0, idx), torch.index_select(s.train_y, 0, idx)
        scores = self._scores()  # (R, C, B)
        y = torch.cat([s.y.expand(s.count, -1) for s in self.seeds])  # (R, B)
        labels = y.unsqueeze(1)  # (R, 1, B)
        picked = torch.log_softmax(scores, 1).gather(1, labels).squeeze(1)  # (R, B)
        losses = picked.mean(1).neg()  # each member's mean cross-entropy
        values = losses.detach().tolist()
        for m, value in zip(self.members, values):
            if not math.isfinite(value):
                m.diverged(f"epoch {self.epoch}, step {self.step}", value)
        self.optimizer.zero_grad(set_to_none=True)
        losses.sum().backward()
        for m in self.members:
            m.model.after_backward(self.step, m.seed.x, m.seed.y)
        self.optimizer.step()
        self.scheduler.step()
        self.step += 1
        self._apply_masks()
        for m in self.members:
            if isinstance(m.model, MaskedPerceptron):
                m.model.update_topology(self.step)
        # right answers: the label's score is the largest (ties, which argmax would settle by the first class,
        # aside); a maximum over the classes runs along the samples, where argmax over them does not vectorise
        scores = scores.detach()
        hits = (scores.amax(1, keepdim=True) == scores.gather(1, labels)).sum((1, 2)).tolist()
        b_ = y.shape[1]
        for m, value, hit in zip(self.members, values, hits):
            m.loss_sum += value * b_
            m.correct += hit
            m.seen += b_

    @torch.no_grad()
    def _apply_masks(self) -> None:
        """Every member's MaskedPerceptron.apply_mask at once: weights and optimizer state zero where masked."""
        if self.mask is None:
            return
        self.weight.mul_(self.mask)
        for value in self.optimizer.state.get(self.weight, {}).values():
            if torch.is_tensor(value) and value.shape == self.weight.shape:
                value.mul_(self.mask)

    def _train_epoch(self) -> None:
        for s in self.seeds:
            s.perm = torch.randperm(self.n, generator=s.shuffle_gen).to(self.device)
        for m in self.members:
            m.loss_sum, m.correct, m.seen = 0.0, 0, 0
        for i in range(0, self.n, self.cfg.batch_size):
            self.stop_if_cancelled()
            self._train_batch(i)
        for m in self.members:
            m.model.after_epoch(self.epoch)
            self._end_epoch(m)

    def _end_epoch(self, m: _Member) -> None:
        mean_loss, train_acc = m.loss_sum / m.seen, m.correct / m.seen
        if not math.isfinite(mean_loss):
            m.diverged(f"epoch {self.epoch}, by step {self.step}", mean_loss)
        m.confusion = confusion_matrix(m.model, m.seed.test_x, m.seed.test_y, self.n_classes)
        test_acc = accuracy_of(m.confusion)
        m.history.append((self.epoch, mean_loss, train_acc, test_acc))
        eval_loss = None
        if self.cfg.validation_fraction > 0:
            eval_loss = validation_loss(m.model, m.seed.test_x, m.seed.test_y, m.model.generator)
        m.epoch_metrics.append(epoch_record(self.cfg, self.epoch, mean_loss, train_acc, test_acc, eval_loss))

    def train(self) -> bool:
        """Every epoch, until done or cancelled; returns whether the batch was cancelled."""
        self._begin()
        try:
            for epoch in range(1, self.cfg.epochs + 1):
                self.epoch = epoch
                self._train_epoch()
        except RunCancelled:
            return True
        finally:
            for m in self.members:
                m.model.finish_training()
                self._detach(m.model)
        return False

    @staticmethod
    @torch.no_grad()
    def _detach(model: Union[DensePerceptron, MaskedPerceptron]) -> None:
        """Give a member its own tensors again (copies of its slices)."""
        model.weight = nn.Parameter(model.weight.detach().clone())
        model.bias = nn.Parameter(model.bias.detach().clone())
        if isinstance(model, MaskedPerceptron):
            model.mask = model.mask.clone()

    def results(self, cancelled: bool) -> list[Union[RunResult, DivergenceError]]:
        seconds = (time.perf_counter() - self.start) / len(self.members)
        out: list[Union[RunResult, DivergenceError]] = []
        for m in self.members:
            if m.error is not None:
                out.append(DivergenceError(m.error))
                continue
            if not m.history or cancelled or m.confusion is None:
                m.confusion = confusion_matrix(m.model, m.seed.test_x, m.seed.test_y, self.n_classes)
            out.append(
                run_result(
                    m.cfg,
                    m.model,
                    m.seed.ds,
                    m.seed.evaluated_on,
                    self.device,
                    m.confusion,
                    m.history,
                    m.epoch_metrics,
                    seconds,
                    cancelled,
                )
            )
        back = [out[0]] * len(out)  # in the order the configs came
        for place, i in enumerate(self.order):
            back[i] = out[place]
        return back


def run_batch(
    cfgs: Sequence[RunConfig], dataset: Dataset, cancel: Optional[CancelToken] = None
) -> list[Union[RunResult, DivergenceError]]:
    """Train the runs ``cfgs`` (one :func:`batch_key`) together on ``dataset``; for each, in order, its result
    or the :class:`DivergenceError` it would have raised alone. Setting ``cancel`` stops the batch between two
    steps: every result then has ``cancelled=True``."""
    batch = _Batch(cfgs, dataset, cancel)
    cancelled = batch.train()
    return batch.results(cancelled)


__all__ = ["BATCHED_MODELS", "MAX_BATCH", "batch_key", "group_runs", "run_batch"]
