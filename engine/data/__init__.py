"""Datasets as in-memory tensors: the public face of the dataset modules (import from here).

Every loader returns a :class:`Dataset` whose inputs are float32 in [0, 1], one row per sample (images are
flattened), and whose labels are int64 class numbers 0…C−1. Nothing here downloads (that is engine.data.fetch).
The code lives in four modules, each with its own docstring:

- :mod:`engine.data.dataset`: the :class:`Dataset` type, the dataset names and labels, the file suffixes and
  the errors (:class:`DataNotFoundError`, :class:`DatasetFileError`);
- :mod:`engine.data.named`: the named datasets (embedded ``mnist-mini`` and ``drones``; ``mnist``,
  ``fashion-mnist`` and ``kmnist`` in torchvision's layout under :func:`resolve_data_root`) and
  :func:`load_dataset`;
- :mod:`engine.data.user_files`: the untrusted user files (.npz, .csv, .h5/.hdf5: layouts, split rule and
  limits), :func:`load_dataset_file`;
- :mod:`engine.data.arrays`: checking a file's arrays and scaling its features (one global maximum).
"""

from __future__ import annotations

from engine.data.arrays import dataset_from_arrays, display_text
from engine.data.dataset import (
    CSV_TEST_EVERY,
    DATASET_FILE_SUFFIXES,
    DATASET_LABELS,
    DATASET_NAMES,
    DRONES_NAME,
    EMBEDDED_NAME,
    H5_KEYS,
    NPZ_KEYS,
    TORCHVISION_DATASETS,
    DataNotFoundError,
    Dataset,
    DatasetFileError,
    PathLike,
)
from engine.data.named import (
    DATA_ENV_VAR,
    DRONES_CONTENT_SHA256,
    DRONES_KEYS,
    DRONES_PATH,
    EMBEDDED_CONTENT_SHA256,
    EMBEDDED_DATASETS,
    EMBEDDED_PATH,
    FIXED_255,
    MNIST_MINI_KEYS,
    RESOURCES_DIR,
    RESOURCES_PACKAGE,
    available_datasets,
    default_user_data_dir,
    embedded_data_dir,
    embedded_path,
    load_dataset,
    load_embedded,
    load_torchvision,
    resolve_data_root,
)
from engine.data.user_files import CSV_CHARS_PER_COLUMN, CSV_CHUNK_LINES, has_dataset_suffix, load_dataset_file

__all__ = [
    "CSV_CHARS_PER_COLUMN",
    "CSV_CHUNK_LINES",
    "CSV_TEST_EVERY",
    "DATASET_FILE_SUFFIXES",
    "DATASET_LABELS",
    "DATASET_NAMES",
    "DATA_ENV_VAR",
    "DRONES_CONTENT_SHA256",
    "DRONES_KEYS",
    "DRONES_NAME",
    "DRONES_PATH",
    "DataNotFoundError",
    "Dataset",
    "DatasetFileError",
    "EMBEDDED_CONTENT_SHA256",
    "EMBEDDED_DATASETS",
    "EMBEDDED_NAME",
    "EMBEDDED_PATH",
    "FIXED_255",
    "H5_KEYS",
    "MNIST_MINI_KEYS",
    "NPZ_KEYS",
    "PathLike",
    "RESOURCES_DIR",
    "RESOURCES_PACKAGE",
    "TORCHVISION_DATASETS",
    "available_datasets",
    "dataset_from_arrays",
    "default_user_data_dir",
    "display_text",
    "embedded_data_dir",
    "embedded_path",
    "has_dataset_suffix",
    "load_dataset",
    "load_dataset_file",
    "load_embedded",
    "load_torchvision",
    "resolve_data_root",
]
