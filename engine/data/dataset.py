"""The in-memory :class:`Dataset`, the names of the named datasets and their labels, the dataset file suffixes,
and the errors every dataset loader raises (engine.data.named, engine.data.arrays, engine.data.user_files).

A :class:`Dataset` holds float32 inputs in [0, 1], one row per sample (images are flattened), and int64 class
numbers 0…C−1, so a whole epoch is a handful of tensor ops.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Optional, Union

import torch

PathLike = Union[str, os.PathLike]

#: The embedded subset shipped in ``resources/data``.
EMBEDDED_NAME = "mnist-mini"
#: The embedded drone RF-fingerprinting set (made from the group's h5 file by resources/make_drones.py).
DRONES_NAME = "drones"
#: dataset name -> torchvision class name (all share the MNIST IDX layout, 28x28 grey images, 10 classes).
TORCHVISION_DATASETS = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST", "kmnist": "KMNIST"}
DATASET_NAMES = (EMBEDDED_NAME, *TORCHVISION_DATASETS, DRONES_NAME)
#: How the app and the CLI name each dataset of :data:`DATASET_NAMES` for people.
DATASET_LABELS = {
    EMBEDDED_NAME: "MNIST subset (embedded)",
    "mnist": "MNIST",
    "fashion-mnist": "Fashion-MNIST",
    "kmnist": "KMNIST",
    DRONES_NAME: "Drone RF spectra (embedded)",
}
#: File name endings :func:`load_dataset` reads as user dataset files.
DATASET_FILE_SUFFIXES = (".npz", ".csv", ".h5", ".hdf5")
#: The .csv split: within each class, in file order, every CSV_TEST_EVERY-th sample is a test sample.
CSV_TEST_EVERY = 5
#: Names of the four arrays in a user .npz file and in an .h5 file.
NPZ_KEYS = ("train_x", "train_y", "test_x", "test_y")
H5_KEYS = ("X_train", "Y_train", "X_test", "Y_test")


class DataNotFoundError(FileNotFoundError):
    """A dataset is not where it was looked for (the message says where, and how to get it)."""


class DatasetFileError(ValueError):
    """A user dataset file cannot be used (the message is one sentence naming the file and the problem)."""


def _default_class_names(train_y: torch.Tensor, test_y: torch.Tensor) -> tuple[str, ...]:
    top = max(int(train_y.max()) if len(train_y) else -1, int(test_y.max()) if len(test_y) else -1)
    return tuple(str(c) for c in range(top + 1))


@dataclass
class Dataset:
    """A classification dataset held in memory."""

    name: str
    train_x: torch.Tensor  #: (n_train, n_inputs) float32 in [0, 1]
    train_y: torch.Tensor  #: (n_train,) int64 class labels 0…n_classes−1
    test_x: torch.Tensor  #: (n_test, n_inputs) float32 in [0, 1]
    test_y: torch.Tensor  #: (n_test,) int64
    image_shape: Optional[tuple[int, int]] = None  #: (rows, columns) when the inputs are images, else None
    class_names: tuple[str, ...] = ()  #: one per class; empty means "0".."C-1" with C = largest label + 1
    source: str = ""  #: where it was read from
    scaling: dict = field(default_factory=dict)  #: how raw features were mapped to [0, 1]

    def __post_init__(self) -> None:
        if self.image_shape is not None:
            self.image_shape = (int(self.image_shape[0]), int(self.image_shape[1]))
        self.class_names = (
            tuple(str(c) for c in self.class_names)
            if self.class_names
            else _default_class_names(self.train_y, self.test_y)
        )

    @property
    def n_inputs(self) -> int:
        return int(self.train_x.shape[1])

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    def describe(self) -> str:
        if self.image_shape is not None:
            return f"{self.name}: {len(self.train_y):,} train / {len(self.test_y):,} test images"
        return (
            f"{self.name}: {len(self.train_y):,} train / {len(self.test_y):,} test samples of "
            f"{self.n_inputs:,} features"
        )

    def validation_split(self, fraction: float = 0.1, seed: int = 0) -> "Dataset":
        """A dataset whose test part is a held-out slice of the training set (for tuning, never the test set)."""
        if not 0.0 < fraction < 1.0:
            raise ValueError(f"validation fraction must be in (0, 1), got {fraction}")
        n = len(self.train_y)
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
        n_val = max(1, int(round(n * fraction)))
        val, tr = perm[:n_val], perm[n_val:]
        return dataclasses.replace(
            self,
            name=f"{self.name}-val",
            train_x=self.train_x[tr],
            train_y=self.train_y[tr],
            test_x=self.train_x[val],
            test_y=self.train_y[val],
            source=self.source + " (validation split)",
            scaling=dict(self.scaling),
        )
