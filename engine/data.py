"""Datasets as in-memory tensors: MNIST-family sets through torchvision, plus the embedded ``mnist-mini``.

Every loader returns a :class:`Dataset` whose images are float32 in [0, 1], flattened to (n, 784), so a whole
epoch is a handful of tensor ops. Nothing here downloads: a missing dataset raises
:class:`DataNotFoundError` with one sentence saying where it was looked for and how to get it.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

#: Environment variable that names the data root (torchvision layout).
DATA_ENV_VAR = "RFEXPLORER_DATA"

#: The embedded subset shipped in ``resources/data``.
EMBEDDED_NAME = "mnist-mini"
RESOURCES_DIR = Path(__file__).resolve().parent.parent / "resources"
EMBEDDED_PATH = RESOURCES_DIR / "data" / "mnist-mini.npz"
#: sha256 of the four arrays of mnist-mini.npz (see resources/make_mnist_mini.py); checked on load.
EMBEDDED_CONTENT_SHA256 = "1157b86f70c9293e786bee7c9e8c9901d98c7676c233eb29e5d52d44c72d034e"

#: dataset name -> torchvision class name (all share the MNIST IDX layout, 28x28 grey images, 10 classes).
TORCHVISION_DATASETS = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST", "kmnist": "KMNIST"}
DATASET_NAMES = (EMBEDDED_NAME, *TORCHVISION_DATASETS)


class DataNotFoundError(FileNotFoundError):
    """A dataset is not where it was looked for (the message says where, and how to get it)."""


@dataclass
class Dataset:
    """A classification dataset held in memory."""

    name: str
    train_x: torch.Tensor  #: (n_train, n_inputs) float32 in [0, 1]
    train_y: torch.Tensor  #: (n_train,) int64 class labels
    test_x: torch.Tensor  #: (n_test, n_inputs) float32 in [0, 1]
    test_y: torch.Tensor  #: (n_test,) int64
    image_shape: tuple[int, int] = (28, 28)
    n_classes: int = 10
    source: str = ""  #: where it was read from

    @property
    def n_inputs(self) -> int:
        return int(self.train_x.shape[1])

    def describe(self) -> str:
        return f"{self.name}: {len(self.train_y):,} train / {len(self.test_y):,} test images"

    def validation_split(self, fraction: float = 0.1, seed: int = 0) -> "Dataset":
        """A dataset whose test part is a held-out slice of the training set (for tuning, never the test set)."""
        if not 0.0 < fraction < 1.0:
            raise ValueError(f"validation fraction must be in (0, 1), got {fraction}")
        n = len(self.train_y)
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
        n_val = max(1, int(round(n * fraction)))
        val, tr = perm[:n_val], perm[n_val:]
        return Dataset(f"{self.name}-val", self.train_x[tr], self.train_y[tr], self.train_x[val],
                       self.train_y[val], self.image_shape, self.n_classes, self.source + " (validation split)")


def default_user_data_dir() -> Path:
    """The per-user data folder: $XDG_DATA_HOME/rfexplorer/data (or ~/.local/share/rfexplorer/data)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "rfexplorer" / "data"


def resolve_data_root(data_dir: str | os.PathLike | None = None) -> Path:
    """Where MNIST-family data is read: explicit argument, then $RFEXPLORER_DATA, then the per-user folder."""
    if data_dir:
        return Path(data_dir).expanduser()
    env = os.environ.get(DATA_ENV_VAR)
    if env:
        return Path(env).expanduser()
    return default_user_data_dir()


def _to_float(images: torch.Tensor | np.ndarray) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(images))
    return (t.reshape(t.shape[0], -1).to(torch.float32) / 255.0).contiguous()


def _content_sha256(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for key in ("train_images", "train_labels", "test_images", "test_labels"):
        a = np.ascontiguousarray(arrays[key])
        h.update(key.encode())
        h.update(str(a.dtype).encode() + str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def load_embedded(path: Path = EMBEDDED_PATH) -> Dataset:
    """The class-balanced MNIST subset committed under resources/data (made by resources/make_mnist_mini.py)."""
    if not path.is_file():
        raise DataNotFoundError(f"The embedded dataset is missing at {path}; restore it from git or run "
                                f"resources/make_mnist_mini.py.")
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in ("train_images", "train_labels", "test_images", "test_labels")}
    digest = _content_sha256(arrays)
    if EMBEDDED_CONTENT_SHA256 != digest:
        raise ValueError(f"The embedded dataset {path} is corrupt (content sha256 {digest[:12]}... does not "
                         f"match the recorded {EMBEDDED_CONTENT_SHA256[:12]}...).")
    return Dataset(EMBEDDED_NAME, _to_float(arrays["train_images"]),
                   torch.as_tensor(arrays["train_labels"].astype(np.int64)),
                   _to_float(arrays["test_images"]), torch.as_tensor(arrays["test_labels"].astype(np.int64)),
                   source=str(path))


def load_torchvision(name: str, data_dir: str | os.PathLike | None = None) -> Dataset:
    """Load an MNIST-family dataset from a root folder in torchvision's layout, without downloading."""
    import torchvision.datasets as tvd

    cls_name = TORCHVISION_DATASETS[name]
    root = resolve_data_root(data_dir)
    raw = root / cls_name / "raw"
    try:
        train = getattr(tvd, cls_name)(root=str(root), train=True, download=False)
        test = getattr(tvd, cls_name)(root=str(root), train=False, download=False)
    except RuntimeError as exc:  # torchvision: "Dataset not found. You can use download=True ..."
        raise DataNotFoundError(
            f"{cls_name} was not found in {raw}; get it with torchvision.datasets.{cls_name}(root='{root}', "
            f"download=True) on a connected machine, or point --data-dir / ${DATA_ENV_VAR} at a folder that "
            f"has it.") from exc
    return Dataset(name, _to_float(train.data), train.targets.to(torch.int64).clone(), _to_float(test.data),
                   test.targets.to(torch.int64).clone(), source=str(raw))


def load_dataset(name: str, data_dir: str | os.PathLike | None = None) -> Dataset:
    """Load a dataset by name (one of :data:`DATASET_NAMES`)."""
    if name == EMBEDDED_NAME:
        return load_embedded()
    if name not in TORCHVISION_DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASET_NAMES)}")
    return load_torchvision(name, data_dir)


def available_datasets(data_dir: str | os.PathLike | None = None) -> list[str]:
    """Names of the datasets that can be loaded right now (the embedded one is always there)."""
    root = resolve_data_root(data_dir)
    names = [EMBEDDED_NAME] if EMBEDDED_PATH.is_file() else []
    for name, cls_name in TORCHVISION_DATASETS.items():
        raw = root / cls_name / "raw"
        if (raw / "train-images-idx3-ubyte").is_file() and (raw / "t10k-images-idx3-ubyte").is_file():
            names.append(name)
    return names
