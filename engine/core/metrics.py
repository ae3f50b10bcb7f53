"""How a trained network is scored: the accuracy of a model on a labelled set, evaluated in batches.

A leaf of the engine (it imports only torch and numpy), so that training, the hardware studies and the evaluation
tools can all use it without importing one another.
"""

from __future__ import annotations

import numpy as np
import torch

#: Samples evaluated per forward pass.
EVAL_BATCH = 10_000


@torch.no_grad()
def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of correctly classified samples (model in eval mode, batched)."""
    was_training = model.training
    model.eval()
    correct = 0
    for i in range(0, len(y), EVAL_BATCH):
        correct += int((model(x[i : i + EVAL_BATCH]).argmax(1) == y[i : i + EVAL_BATCH]).sum())
    model.train(was_training)
    return correct / max(len(y), 1)


@torch.no_grad()
def confusion_matrix(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, n_classes: int) -> np.ndarray:
    """(n_classes, n_classes) int64 counts: row = true class, column = predicted class (model in eval mode,
    batched as :func:`accuracy`, so the same forward passes; its trace over its sum is the accuracy)."""
    was_training = model.training
    model.eval()
    counts = torch.zeros(n_classes * n_classes, dtype=torch.int64, device=y.device)
    for i in range(0, len(y), EVAL_BATCH):
        logits = model(x[i : i + EVAL_BATCH])
        if logits.shape[1] != n_classes:
            raise ValueError(f"the network has {logits.shape[1]} outputs but the data has {n_classes} classes")
        pred = logits.argmax(1)
        counts += torch.bincount(y[i : i + EVAL_BATCH].long() * n_classes + pred, minlength=n_classes * n_classes)
    model.train(was_training)
    return counts.cpu().numpy().reshape(n_classes, n_classes)


def accuracy_of(confusion: np.ndarray) -> float:
    """The accuracy a confusion matrix records: correct answers (its trace) over all samples."""
    return int(np.trace(confusion)) / max(int(confusion.sum()), 1)


__all__ = ["EVAL_BATCH", "accuracy", "accuracy_of", "confusion_matrix"]
