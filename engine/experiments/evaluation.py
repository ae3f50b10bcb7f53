"""Measuring a topology file's network on a dataset, after checking that the dataset is one it can classify.

    acc = evaluate_topology("rf.json")                    # on the recorded dataset and split
    acc = evaluate_topology(topo, dataset, split="test")  # on another dataset's test set

A dataset is refused (:class:`DatasetMismatchError`, a ValueError, one sentence) when its input count or class
count differs from the network's, or when both record class names and the names differ (a network trained on
digits must not be scored on clothing labels that happen to have ten classes too). Version-1 files record no
class names, so for them only the counts are compared.
"""

from __future__ import annotations

from typing import Any, Optional, Union

import torch

from engine.core.files import PathLike
from engine.core.metrics import accuracy
from engine.io.topology import Topology, load_topology

SPLITS = ("recorded", "test")


class DatasetMismatchError(ValueError):
    """A dataset that the topology's network cannot be evaluated on (the message is one sentence)."""


def _network(topology: Topology) -> str:
    return f"The network in {topology.source}" if topology.source is not None else "The network"


def _short(names, limit: int = 4) -> str:
    names = list(names)
    text = ", ".join(names[:limit])
    return text + (", …" if len(names) > limit else "")


def check_dataset(topology: Topology, dataset: Any) -> None:
    """Raise :class:`DatasetMismatchError` unless ``dataset`` has the network's input count, class count and
    (where both record them) class names."""
    name = getattr(dataset, "name", "the dataset")
    net = _network(topology)
    if int(dataset.n_inputs) != topology.n_inputs:
        raise DatasetMismatchError(
            f"{net} has {topology.n_inputs} inputs but dataset {name} has "
            f"{int(dataset.n_inputs)}, so it cannot be evaluated on it."
        )
    if int(dataset.n_classes) != topology.n_classes:
        raise DatasetMismatchError(
            f"{net} has {topology.n_classes} classes but dataset {name} has "
            f"{int(dataset.n_classes)}, so it cannot be evaluated on it."
        )
    names = getattr(dataset, "class_names", None)
    if names and topology.class_names_recorded:
        names = tuple(str(c) for c in names)
        if names != tuple(topology.class_names):
            c = next(i for i, (a, b) in enumerate(zip(topology.class_names, names)) if a != b)
            raise DatasetMismatchError(
                f"{net} was trained on classes {_short(topology.class_names)} but dataset {name} "
                f"has classes {_short(names)} (class {c} is {topology.class_names[c]!r} in the file and "
                f"{names[c]!r} in the dataset), so it cannot be evaluated on it."
            )


def evaluation_split(topology: Topology, dataset: Any, *, split: str = "recorded") -> tuple[torch.Tensor, torch.Tensor]:
    """The (x, y) the accuracy is measured on: the dataset's test set, or, for ``split='recorded'`` and a run
    that was evaluated on a validation split of the same dataset, that same split (same fraction and seed)."""
    if split not in SPLITS:
        raise ValueError(f"split must be 'recorded' or 'test' (got {split!r})")
    ds = dataset
    fraction = float(topology.setting("validation_fraction", 0.0) or 0.0)
    if split == "recorded" and topology.evaluated_on == "validation" and fraction > 0 and ds.name == topology.dataset:
        ds = ds.validation_split(fraction, seed=topology.config.seed)
    return ds.test_x, ds.test_y


def _is_dataset(obj: Any) -> bool:
    return all(hasattr(obj, a) for a in ("name", "test_x", "test_y", "n_inputs", "n_classes"))


def evaluate_topology(
    topology: Union[Topology, PathLike],
    dataset: Any = None,
    *,
    data_dir: Optional[PathLike] = None,
    split: str = "recorded",
) -> float:
    """Accuracy (fraction) of a topology's network on ``dataset``.

    ``topology``: a loaded :class:`Topology` or the path of a topology file. ``dataset``: an
    :class:`engine.data.Dataset` (or any object with ``name``, ``test_x``, ``test_y``, ``n_inputs``,
    ``n_classes`` and optionally ``class_names``), a dataset name or file path, or None for the recorded
    dataset (loaded from ``data_dir``, else the recorded run's data folder). With ``split='recorded'`` a run
    recorded on a validation split is evaluated on that same split, so the recorded accuracy is reproduced
    exactly; ``split='test'`` always uses the test set.

    Raises :class:`engine.io.topology.TopologyFileError` for a bad file and :class:`DatasetMismatchError` for a
    dataset the network cannot classify (see :func:`check_dataset`).
    """
    if split not in SPLITS:
        raise ValueError(f"split must be 'recorded' or 'test' (got {split!r})")
    if not isinstance(topology, Topology):
        topology = load_topology(topology)
    if dataset is None or isinstance(dataset, (str, bytes)) or hasattr(dataset, "__fspath__"):
        from engine.data import load_dataset

        ds = load_dataset(
            dataset if dataset is not None else topology.dataset,
            data_dir if data_dir is not None else topology.config.data_dir,
        )
    elif _is_dataset(dataset):
        ds = dataset
    else:
        raise TypeError(f"dataset must be a Dataset, a name, a path or None (got {type(dataset).__name__})")
    check_dataset(topology, ds)
    x, y = evaluation_split(topology, ds, split=split)
    return accuracy(topology.model, x, y)


__all__ = ["DatasetMismatchError", "SPLITS", "check_dataset", "evaluate_topology", "evaluation_split"]
