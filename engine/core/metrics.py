"""How a trained network is scored: the accuracy of a model on a labelled set, evaluated in batches.

A leaf of the engine (it imports only torch), so that training, the hardware studies and the evaluation
tools can all use it without importing one another.
"""

from __future__ import annotations

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


__all__ = ["EVAL_BATCH", "accuracy"]
