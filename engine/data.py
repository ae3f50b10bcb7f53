"""Datasets as in-memory tensors: the embedded sets, MNIST-family sets through torchvision, and user files.

Every loader returns a :class:`Dataset` whose inputs are float32 in [0, 1], one row per sample (images are
flattened), and whose labels are int64 class numbers 0…C−1, so a whole epoch is a handful of tensor ops.
Nothing here downloads: a missing dataset raises :class:`DataNotFoundError` with one sentence saying where it
was looked for and how to get it.

Named datasets (:data:`DATASET_NAMES`)
    ``mnist-mini``: 6,000 + 1,000 MNIST digits embedded in the package (resources/make_mnist_mini.py).
    ``drones``: 702 + 298 radio spectra of 256 frequency bins, ten emitters (dx4e, dx6i, MTx, Nineeg, Parrot,
    q205, S500, tello, WiFi, wltoys), embedded in the package (resources/make_drones.py); no h5py needed.
    ``mnist``, ``fashion-mnist``, ``kmnist``: read from a data root in torchvision's layout
    (:func:`resolve_data_root`).

    The embedded files live in ``resources/data``; pyproject.toml installs that folder as the package
    ``engine._resources``, so they are found through :mod:`importlib.resources` in an installed wheel, and in
    the source tree (or an editable install made before that mapping existed) directly. Their array contents
    are checked against a recorded sha256 on every load.

User files (:func:`load_dataset_file`, or :func:`load_dataset` with a path)
    ``.npz``: arrays ``train_x`` (n, N), ``train_y`` (n,), ``test_x`` (m, N), ``test_y`` (m,); optional
    ``class_names`` (a string array with C entries) and ``image_shape`` (2 integers whose product is N, for
    inputs that are images). Read with ``allow_pickle=False``: object arrays are refused.

    ``.csv``: comma-separated numbers, one sample per row, the class label in the last column. A first row
    that is not all numbers is a header and is skipped; blank lines are skipped. The file is split into
    training and test sets by a fixed, stratified rule with no random draw: within each class, in file order,
    every 5th sample (the 5th, 10th, 15th, …) is a test sample and the others are training samples, so about
    20 % of each class is held out and the same file always gives the same split.

    ``.h5`` / ``.hdf5``: datasets ``X_train``, ``Y_train``, ``X_test``, ``Y_test`` at the file's root (the
    layout of the RF spintronic network papers' files), optional ``class_names``. Reading needs h5py, which
    is imported only then (``pip install 'rfexplorer[h5]'``).

    Labels are integer class numbers 0…C−1, where C is the largest label + 1 (whole-number float labels are
    accepted); every class must have training samples, and there must be at least 2.

Features are input powers
    Features must be finite and ≥ 0. They are mapped to [0, 1] by dividing every feature by the largest value
    of the training set (one global maximum, not one per feature, so 0 stays "no power" and the ratios between
    features are kept); test values above that maximum are clipped to 1. How it was done is recorded in
    :attr:`Dataset.scaling`, e.g. ``{"method": "global-max", "min": 0.0, "max": 3.2, "test_clipped": 0}``.
    MNIST-family uint8 images are divided by 255 as before (``{"method": "fixed", "max": 255}``).

A malformed user file raises :class:`DatasetFileError` (a ValueError) with one sentence naming the file and
the problem.

User files are untrusted
    Only regular files are opened (a FIFO, device or socket is refused from its ``stat``). What a file
    declares is checked against :mod:`engine.limits` before any array is allocated: an .npz archive's member
    count (its zip end record), each member's compression (stored or deflated only) and ``.npy`` header
    (shape, dtype; object dtypes and negative shapes refused, pickle never allowed) and the uncompressed size
    of them all; an HDF5 file's dataset shapes and dtypes; a CSV file's size on disk, then its rows, columns
    and record length while it is parsed. An HDF5 file is read as data only (:mod:`engine.safe_h5`: no
    external storage, external links or virtual datasets). Class names must be distinct, non-empty,
    printable and at most ``max_class_name_chars`` long, and a file name must be UTF-8 text, since a run
    records both; anything else is refused at load time rather than when the result is written.
"""
from __future__ import annotations

import array
import csv
import dataclasses
import hashlib
import io
import itertools
import math
import os
import stat
import struct
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Union

import numpy as np
import torch

from .limits import ENV_PREFIX, FileLimits, current_limits

PathLike = Union[str, os.PathLike]

#: Environment variable that names the data root (torchvision layout).
DATA_ENV_VAR = "RFEXPLORER_DATA"

#: The resources/ folder of a source checkout (absent in an installed wheel; see :func:`embedded_data_dir`).
RESOURCES_DIR = Path(__file__).resolve().parent.parent / "resources"
#: The package that pyproject.toml maps onto resources/data, so that wheels carry the embedded datasets.
RESOURCES_PACKAGE = "engine._resources"


def embedded_data_dir() -> Path:
    """The folder holding the embedded datasets: the installed ``engine._resources`` package when there is
    one (a wheel, or an editable install made with the current pyproject.toml), else resources/data of the
    source tree."""
    try:
        from importlib.resources import files

        root = files(RESOURCES_PACKAGE)
    except (ImportError, TypeError):  # not installed as a package: running from the source tree
        root = None
    if isinstance(root, Path) and (root / "mnist-mini.npz").is_file():
        return root
    return RESOURCES_DIR / "data"


@dataclass(frozen=True)
class _Embedded:
    file: str  #: file name in the embedded data folder
    keys: tuple[str, ...]  #: arrays covered by the content sha256, in hashing order
    sha256: str  #: content sha256 (see _content_sha256)
    maker: str  #: the script under resources/ that makes the file


#: The embedded subset shipped in ``resources/data``.
EMBEDDED_NAME = "mnist-mini"
#: The embedded drone RF-fingerprinting set (made from the group's h5 file by resources/make_drones.py).
DRONES_NAME = "drones"
MNIST_MINI_KEYS = ("train_images", "train_labels", "test_images", "test_labels")
DRONES_KEYS = ("train_x", "train_y", "test_x", "test_y", "class_names")
#: sha256 of the four arrays of mnist-mini.npz (see resources/make_mnist_mini.py); checked on load.
EMBEDDED_CONTENT_SHA256 = "1157b86f70c9293e786bee7c9e8c9901d98c7676c233eb29e5d52d44c72d034e"
#: sha256 of the five arrays of drones.npz (see resources/make_drones.py); checked on load.
DRONES_CONTENT_SHA256 = "dede9d8db69e61b2896b340da054a4ff56001b870a089d74b2b8e65994f946a4"
EMBEDDED_DATASETS = {
    EMBEDDED_NAME: _Embedded("mnist-mini.npz", MNIST_MINI_KEYS, EMBEDDED_CONTENT_SHA256, "make_mnist_mini.py"),
    DRONES_NAME: _Embedded("drones.npz", DRONES_KEYS, DRONES_CONTENT_SHA256, "make_drones.py"),
}
EMBEDDED_PATH = embedded_data_dir() / EMBEDDED_DATASETS[EMBEDDED_NAME].file
DRONES_PATH = EMBEDDED_PATH.parent / EMBEDDED_DATASETS[DRONES_NAME].file

#: dataset name -> torchvision class name (all share the MNIST IDX layout, 28x28 grey images, 10 classes).
TORCHVISION_DATASETS = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST", "kmnist": "KMNIST"}
DATASET_NAMES = (EMBEDDED_NAME, *TORCHVISION_DATASETS, DRONES_NAME)
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
        self.class_names = (tuple(str(c) for c in self.class_names) if self.class_names
                            else _default_class_names(self.train_y, self.test_y))

    @property
    def n_inputs(self) -> int:
        return int(self.train_x.shape[1])

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    def describe(self) -> str:
        if self.image_shape is not None:
            return f"{self.name}: {len(self.train_y):,} train / {len(self.test_y):,} test images"
        return (f"{self.name}: {len(self.train_y):,} train / {len(self.test_y):,} test samples of "
                f"{self.n_inputs:,} features")

    def validation_split(self, fraction: float = 0.1, seed: int = 0) -> "Dataset":
        """A dataset whose test part is a held-out slice of the training set (for tuning, never the test set)."""
        if not 0.0 < fraction < 1.0:
            raise ValueError(f"validation fraction must be in (0, 1), got {fraction}")
        n = len(self.train_y)
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
        n_val = max(1, int(round(n * fraction)))
        val, tr = perm[:n_val], perm[n_val:]
        return dataclasses.replace(self, name=f"{self.name}-val", train_x=self.train_x[tr],
                                   train_y=self.train_y[tr], test_x=self.train_x[val], test_y=self.train_y[val],
                                   source=self.source + " (validation split)", scaling=dict(self.scaling))


def default_user_data_dir() -> Path:
    """The per-user data folder, platformdirs' user data folder of rfexplorer plus ``data``: on Linux
    $XDG_DATA_HOME/rfexplorer/data (or ~/.local/share/rfexplorer/data), on macOS ~/Library/Application
    Support/rfexplorer/data, on Windows %LOCALAPPDATA%\\rfexplorer\\data."""
    from platformdirs import user_data_path

    return user_data_path("rfexplorer", appauthor=False) / "data"


def resolve_data_root(data_dir: PathLike | None = None) -> Path:
    """Where MNIST-family data is read: explicit argument, then $RFEXPLORER_DATA, then the per-user folder."""
    if data_dir:
        return Path(data_dir).expanduser()
    env = os.environ.get(DATA_ENV_VAR)
    if env:
        return Path(env).expanduser()
    return default_user_data_dir()


FIXED_255 = {"method": "fixed", "max": 255}


def _to_float(images: torch.Tensor | np.ndarray) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(images))
    return (t.reshape(t.shape[0], -1).to(torch.float32) / 255.0).contiguous()


def _content_sha256(arrays: dict[str, np.ndarray], keys: tuple[str, ...] = MNIST_MINI_KEYS) -> str:
    """sha256 over the named arrays' names, dtypes, shapes and bytes (independent of the npz compression)."""
    h = hashlib.sha256()
    for key in keys:
        a = np.ascontiguousarray(arrays[key])
        h.update(key.encode())
        h.update(str(a.dtype).encode() + str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------------------
# Checking and scaling arrays (user files and the embedded drones set)
# ---------------------------------------------------------------------------------------------------------

#: position(row, column or None) -> text such as "train_x[3, 7]" or "line 5, column 8"
Where = Callable[[int, Optional[int]], str]


def _array_where(key: str) -> Where:
    return lambda r, c: f"{key}[{r}]" if c is None else f"{key}[{r}, {c}]"


def display_text(text: str) -> str:
    """``text`` with the undecodable bytes of a file name (Python's surrogate escapes) shown as ``\\xNN``, so
    that it can be shown, and written as UTF-8, anywhere; text without them is returned unchanged."""
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a lone surrogate that is not an escaped byte
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _fail(path: PathLike, problem: str) -> DatasetFileError:
    return DatasetFileError(f"Dataset file {display_text(os.fspath(path))} {problem}.")


def _over(path: PathLike, what: str, field_name: str, limit: int) -> DatasetFileError:
    """``what`` (e.g. "has 12 samples in train_x") is over the limit ``field_name``: one sentence saying so."""
    return _fail(path, f"{what}, over the limit {field_name} = {limit:,} (set {ENV_PREFIX}{field_name.upper()} "
                       f"to raise it)")


def _quoted(text: str, limits: FileLimits) -> str:
    """repr() of a user's text, cut to the limit max_message_chars."""
    cut = text if len(text) <= limits.max_message_chars else text[:limits.max_message_chars] + "…"
    return repr(cut)


def _is_numeric(a: np.ndarray) -> bool:
    return a.dtype == np.bool_ or np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)


def _check_features(path: PathLike, x: np.ndarray, key: str, where: Where) -> np.ndarray:
    """x must be numeric, finite and >= 0 (input powers); returns it (bool as uint8)."""
    if not _is_numeric(x):
        raise _fail(path, f"has values in {key} that are not numbers (dtype {x.dtype})")
    if x.dtype == np.bool_:
        return x.astype(np.uint8)
    if np.issubdtype(x.dtype, np.floating):
        bad = ~np.isfinite(x)
        if bad.any():
            r, c = (int(i) for i in np.argwhere(bad)[0])
            what = "a NaN" if np.isnan(x[r, c]) else "an infinite value"
            raise _fail(path, f"has {what} at {where(r, c)}")
    if x.size and x.min() < 0:
        r, c = (int(i) for i in np.argwhere(x < 0)[0])
        raise _fail(path, f"has a negative value ({x[r, c]:g}) at {where(r, c)}, but features are input powers "
                          f"and must be at least 0")
    return x


def _check_labels(path: PathLike, y: np.ndarray, key: str, where: Where) -> np.ndarray:
    """y must hold whole numbers >= 0; returns int64."""
    if np.issubdtype(y.dtype, np.integer):
        labels = y.astype(np.int64)
    elif np.issubdtype(y.dtype, np.floating):
        bad = ~np.isfinite(y) | (y != np.round(y))
        if bad.any():
            r = int(np.flatnonzero(bad)[0])
            raise _fail(path, f"has a label that is not an integer ({y[r]:g}) at {where(r, None)}")
        if y.size and np.abs(y).max() > 2**53:
            r = int(np.argmax(np.abs(y)))
            raise _fail(path, f"has the label {y[r]:g} at {where(r, None)}, which is not a class number")
        labels = y.astype(np.int64)
    else:
        raise _fail(path, f"has labels in {key} that are not integers (dtype {y.dtype})")
    if labels.size and labels.min() < 0:
        r = int(np.flatnonzero(labels < 0)[0])
        raise _fail(path, f"has the label {labels[r]} at {where(r, None)}, outside the class numbers 0…C−1")
    return labels


def _as_labels_1d(path: PathLike, y: np.ndarray, key: str) -> np.ndarray:
    if y.ndim == 2 and y.shape[1] == 1:
        return y[:, 0]
    if y.ndim != 1:
        raise _fail(path, f"has {key} of shape {y.shape}, but labels must be a 1-D array of class numbers")
    return y


def _class_names_from(path: PathLike, names, n_classes: int, limits: FileLimits | None = None) -> tuple[str, ...]:
    limits = limits or current_limits()
    a = np.asarray(names)
    if a.size > limits.max_classes:
        raise _over(path, f"has {a.size:,} class_names", "max_classes", limits.max_classes)
    if a.dtype == object:  # h5py gives variable-length strings as bytes objects
        items = list(a.ravel())
    elif a.dtype.kind in "US":
        items = list(a.ravel()) if a.ndim <= 1 else None
    else:
        items = None
    if items is None or a.ndim > 1 or not all(isinstance(s, (str, bytes, np.str_, np.bytes_)) for s in items):
        raise _fail(path, "has class_names that are not a 1-D array of strings")
    try:
        out = tuple(s.decode("utf-8") if isinstance(s, bytes) else str(s) for s in items)
    except UnicodeDecodeError:
        raise _fail(path, "has class_names that are not UTF-8 text") from None
    if len(out) != n_classes:
        raise _fail(path, f"has {len(out)} class_names but its labels number {n_classes} classes "
                          f"(0…{n_classes - 1})")
    _check_class_names(path, out, limits)
    return out


def _check_class_names(path: PathLike, names: tuple[str, ...], limits: FileLimits) -> None:
    """Class names must be non-empty, printable, of bounded length and distinct (a result records them)."""
    first: dict[str, int] = {}
    for i, name in enumerate(names):
        where = f"class_names[{i}]"
        if len(name) > limits.max_class_name_chars:
            raise _over(path, f"has a class name of {len(name):,} characters at {where}", "max_class_name_chars",
                        limits.max_class_name_chars)
        if not name.strip():
            raise _fail(path, f"has an empty class name at {where}, but every class needs a name")
        if not name.isprintable():
            raise _fail(path, f"has a class name with a control or unprintable character at {where} "
                              f"({_quoted(name, limits)})")
        if name in first:
            raise _fail(path, f"has the class name {_quoted(name, limits)} twice (class_names[{first[name]}] and "
                              f"{where}), but class names must be distinct")
        first[name] = i


def _image_shape_from(path: PathLike, shape, n_inputs: int) -> tuple[int, int]:
    a = np.asarray(shape)
    if a.size > 8:
        raise _fail(path, f"has image_shape of {a.size:,} values, but it must be 2 positive integers (rows, columns)")
    if a.size != 2 or not _is_numeric(a) or a.dtype == np.bool_ or not np.all(np.isfinite(a)) \
            or np.any(a != np.round(a)) or np.any(a < 1):
        raise _fail(path, f"has image_shape {a.ravel().tolist()}, but it must be 2 positive integers "
                          f"(rows, columns)")
    rows, cols = (int(v) for v in a.ravel())
    if rows * cols != n_inputs:
        raise _fail(path, f"has image_shape {rows}x{cols} = {rows * cols} pixels, but its samples have "
                          f"{n_inputs} features")
    return rows, cols


def _scale_global_max(path: PathLike, train_x: np.ndarray, test_x: np.ndarray, keys: tuple[str, str]):
    """Divide by the training set's largest value; clip test values above it to 1."""
    top, low = float(train_x.max()), float(train_x.min())
    if top <= 0:
        raise _fail(path, f"has only zeros in {keys[0]}, so there is no input power to scale by")
    tr = train_x / top  # float64 division, then clipping in place: one temporary array, not two
    tr = np.minimum(tr, 1.0, out=tr).astype(np.float32)
    te = test_x / top
    clipped = int(np.count_nonzero(te > 1.0))
    te = np.minimum(te, 1.0, out=te).astype(np.float32)
    scaling = {"method": "global-max", "min": low, "max": top, "test_clipped": clipped}
    return torch.from_numpy(np.ascontiguousarray(tr)), torch.from_numpy(np.ascontiguousarray(te)), scaling


def dataset_from_arrays(path: PathLike, name: str, train_x, train_y, test_x, test_y, *, class_names=None,
                        image_shape=None, keys: tuple[str, str, str, str] = NPZ_KEYS, source: str = "",
                        limits: FileLimits | None = None) -> Dataset:
    """Check four arrays as read from ``path`` (``keys`` are their names in the file, for the messages), scale
    the features by the training maximum and return the :class:`Dataset`. Raises :class:`DatasetFileError`;
    ``limits`` (default :func:`~engine.limits.current_limits`) bound the samples, features and classes."""
    limits = limits or current_limits()
    kx, ky, kxt, kyt = keys
    arrays = {}
    for key, a in zip(keys, (train_x, train_y, test_x, test_y)):
        arrays[key] = np.asarray(a)
    for kxx, kyy, split in ((kx, ky, "training"), (kxt, kyt, "test")):
        x, y = arrays[kxx], _as_labels_1d(path, arrays[kyy], kyy)
        arrays[kyy] = y
        if x.ndim != 2:
            raise _fail(path, f"has {kxx} of shape {x.shape}, but it must be 2-D (samples x features)")
        if x.shape[0] == 0:
            raise _fail(path, f"has an empty {split} set ({kxx} has no rows)")
        if x.shape[0] != y.shape[0]:
            raise _fail(path, f"has {x.shape[0]} samples in {kxx} but {y.shape[0]} labels in {kyy}")
        if x.shape[0] > limits.max_samples:
            raise _over(path, f"has {x.shape[0]:,} samples in {kxx}", "max_samples", limits.max_samples)
        if x.shape[1] > limits.max_features:
            raise _over(path, f"has {x.shape[1]:,} features in {kxx}", "max_features", limits.max_features)
    if arrays[kx].shape[1] == 0:
        raise _fail(path, f"has no features in {kx} (0 columns)")
    if arrays[kx].shape[1] != arrays[kxt].shape[1]:
        raise _fail(path, f"has {arrays[kx].shape[1]} features per sample in {kx} but {arrays[kxt].shape[1]} "
                          f"in {kxt}")
    xs = {k: _check_features(path, arrays[k], k, _array_where(k)) for k in (kx, kxt)}
    ys = {k: _check_labels(path, arrays[k], k, _array_where(k)) for k in (ky, kyt)}
    n_classes = int(max(ys[ky].max(), ys[kyt].max())) + 1
    if n_classes < 2:
        raise _fail(path, "has only one class (all labels are 0), but at least 2 are needed")
    present = np.unique(ys[ky])  # sorted; no bincount, so a stray huge label cannot allocate a huge array
    if len(present) < 2:
        raise _fail(path, f"has only one class in {ky}, but at least 2 are needed")
    if len(present) != n_classes:
        gaps = np.flatnonzero(present != np.arange(len(present)))
        missing = int(gaps[0]) if len(gaps) else len(present)
        raise _fail(path, f"has labels up to {n_classes - 1} but no training sample of class {missing}; labels "
                          f"must number the classes 0…C−1 and every class needs training samples")
    if n_classes > limits.max_classes:
        raise _over(path, f"has {n_classes:,} classes", "max_classes", limits.max_classes)
    names = (_class_names_from(path, class_names, n_classes, limits) if class_names is not None
             else tuple(str(c) for c in range(n_classes)))
    n_inputs = int(arrays[kx].shape[1])
    shape = _image_shape_from(path, image_shape, n_inputs) if image_shape is not None else None
    tr_x, te_x, scaling = _scale_global_max(path, xs[kx], xs[kxt], (kx, kxt))
    return Dataset(name, tr_x, torch.from_numpy(ys[ky]), te_x, torch.from_numpy(ys[kyt]), image_shape=shape,
                   class_names=names, source=source or str(path), scaling=scaling)


# ---------------------------------------------------------------------------------------------------------
# Readers
# ---------------------------------------------------------------------------------------------------------

def _missing(path: PathLike, missing: list[str], needed: tuple[str, ...]) -> DatasetFileError:
    listed = missing[0] if len(missing) == 1 else ", ".join(missing[:-1]) + " and " + missing[-1]
    noun = "array" if len(missing) == 1 else "arrays"
    return _fail(path, f"has no {noun} named {listed} (it needs {', '.join(needed[:-1])} and {needed[-1]})")


#: The first bytes of a .npy file (a single array, not an archive).
_NPY_MAGIC = b"\x93NUMPY"
#: Errors of reading a zip member: damaged deflate data, bad CRC, unsupported compression or encryption.
_ZIP_ERRORS = (OSError, EOFError, zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError)
#: Characters one CSV record may have per column it is allowed (see :func:`_csv_records`).
CSV_CHARS_PER_COLUMN = 32


def _not_regular(path: PathLike, mode: int) -> DatasetFileError:
    if stat.S_ISFIFO(mode):
        kind = "a FIFO"
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        kind = "a device"
    elif stat.S_ISSOCK(mode):
        kind = "a socket"
    else:
        kind = "a special file"
    return _fail(path, f"is not a regular file (it is {kind}), so it is not read")


def _open_regular(path: Path) -> tuple[io.BufferedReader, os.stat_result]:
    """The file opened for binary reading, checked to be a regular file before anything is read from it (it is
    opened non-blocking, so a FIFO put there after the caller's check cannot block)."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise _fail(path, f"cannot be read ({exc.strerror or exc})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise _not_regular(path, st.st_mode)
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb"), st
    except BaseException:
        os.close(fd)
        raise


Declared = dict[str, tuple[tuple[int, ...], np.dtype]]  # array name -> (shape, dtype) as a file declares them


def _check_declared(path: PathLike, declared: Declared, keys: tuple[str, ...], limits: FileLimits) -> None:
    """Compare the shapes and dtypes a file declares (before any data is read) with ``limits``."""
    kx, _, kxt, _ = keys
    total = 0
    for key, (shape, dtype) in declared.items():
        count = math.prod(shape)
        if key in keys and shape and shape[0] > limits.max_samples:
            raise _over(path, f"declares {shape[0]:,} samples in {key}", "max_samples", limits.max_samples)
        if key in (kx, kxt) and len(shape) >= 2 and math.prod(shape[1:]) > limits.max_features:
            raise _over(path, f"declares {math.prod(shape[1:]):,} features per sample in {key}", "max_features",
                        limits.max_features)
        if key == "class_names":
            if count > limits.max_classes:
                raise _over(path, f"declares {count:,} class_names", "max_classes", limits.max_classes)
            most = limits.max_class_name_chars
            if dtype.kind == "U" and dtype.itemsize // 4 > most:
                raise _over(path, f"declares class names of up to {dtype.itemsize // 4:,} characters",
                            "max_class_name_chars", most)
            if dtype.kind == "S" and dtype.itemsize > 4 * most:  # UTF-8: up to 4 bytes a character
                raise _over(path, f"declares class names of up to {dtype.itemsize:,} bytes", "max_class_name_chars",
                            most)
        total += count * dtype.itemsize
    if total > limits.max_array_bytes:
        raise _over(path, f"declares {total:,} bytes of arrays (uncompressed)", "max_array_bytes",
                    limits.max_array_bytes)


def _npy_header(path: PathLike, zf: zipfile.ZipFile, key: str, info: zipfile.ZipInfo):
    """(shape, dtype, size of the header in bytes) from the .npy header of one archive member; reads only the
    header, and refuses object dtypes and negative shapes."""
    fmt = np.lib.format
    try:
        with zf.open(info) as member:
            try:
                version = fmt.read_magic(member)
                if version not in ((1, 0), (2, 0)):
                    raise _fail(path, f"has its array {key} in .npy format version {version[0]}.{version[1]}, "
                                      f"which is not read (save it with numpy's default format)")
                read_header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
                shape, _, dtype = read_header(member)
            except DatasetFileError:
                raise
            except (ValueError, TypeError, SyntaxError):
                raise _fail(path, f"has a damaged .npy header in its array {key}") from None
            header = member.tell()
    except _ZIP_ERRORS:
        raise _fail(path, f"is corrupt (its array {key} cannot be read)") from None
    if dtype.hasobject:
        raise _fail(path, f"has an array {key} of Python objects, which is not loaded (pickle is off); save it "
                          f"as a numeric or fixed-width string array")
    if any(d < 0 for d in shape):
        raise _fail(path, f"has a damaged .npy header in its array {key} (it declares the negative shape "
                          f"{tuple(shape)})")
    return tuple(int(d) for d in shape), dtype, header


def _npz_arrays(path: PathLike, zf: zipfile.ZipFile, limits: FileLimits) -> dict[str, np.ndarray]:
    """The arrays of an .npz archive that a dataset uses, their headers checked against ``limits`` first."""
    members: dict[str, zipfile.ZipInfo] = {}
    for info in zf.infolist():  # the archive's central directory: names and declared sizes, no data
        members.setdefault(info.filename[:-4] if info.filename.endswith(".npy") else info.filename, info)
    missing = [k for k in NPZ_KEYS if k not in members]
    if missing:
        raise _missing(path, missing, NPZ_KEYS)
    wanted = [k for k in (*NPZ_KEYS, "class_names", "image_shape") if k in members]
    for key in wanted:  # zipfile bounds what it inflates per read only for these two (bzip2 or lzma may explode)
        if members[key].compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise _fail(path, f"has its array {key} compressed with method {members[key].compress_type}, but only "
                              f"stored or deflated arrays are read (numpy's savez or savez_compressed)")
    headers = {k: _npy_header(path, zf, k, members[k]) for k in wanted}
    _check_declared(path, {k: (shape, dtype) for k, (shape, dtype, _) in headers.items()}, NPZ_KEYS, limits)
    arrays = {}
    for key in wanted:
        shape, dtype, header = headers[key]
        stored = members[key].file_size - header
        if stored < math.prod(shape) * dtype.itemsize:
            raise _fail(path, f"has a damaged array {key}: its header declares shape {shape} of "
                              f"{math.prod(shape) * dtype.itemsize:,} bytes but it holds {max(stored, 0):,}")
        try:
            with zf.open(members[key]) as member:
                arrays[key] = np.lib.format.read_array(member, allow_pickle=False)
        except (ValueError, *_ZIP_ERRORS):
            raise _fail(path, f"is corrupt (its array {key} cannot be read)") from None
    return arrays


def _check_zip_members(path: PathLike, fh, limits: FileLimits) -> None:
    """The member count that the zip's end record declares, checked before zipfile reads its directory."""
    try:
        end = zipfile._EndRecData(fh)  # the record zipfile itself reads first; absent in some future Python?
    except (AttributeError, OSError, struct.error):
        end = None
    finally:
        fh.seek(0)
    count = end[zipfile._ECD_ENTRIES_TOTAL] if end else 0
    if count > limits.max_archive_members:
        raise _over(path, f"declares {count:,} archive members", "max_archive_members", limits.max_archive_members)


def _read_npz(path: Path, limits: FileLimits) -> Dataset:
    fh, _ = _open_regular(path)
    with fh:
        if fh.read(len(_NPY_MAGIC)) == _NPY_MAGIC:
            raise _fail(path, "holds a single array, not an .npz archive of named arrays")
        fh.seek(0)
        _check_zip_members(path, fh, limits)
        try:
            zf = zipfile.ZipFile(fh)
        except (ValueError, *_ZIP_ERRORS):
            raise _fail(path, "is not a readable .npz archive") from None
        with zf:
            arrays = _npz_arrays(path, zf, limits)
    return dataset_from_arrays(path, display_text(path.name), *(arrays[k] for k in NPZ_KEYS),
                               class_names=arrays.get("class_names"), image_shape=arrays.get("image_shape"),
                               source=display_text(str(path.resolve())), limits=limits)


def _h5_declared(path: PathLike, dsets: dict, limits: FileLimits) -> None:
    """Check the shapes and dtypes of the HDF5 datasets (none of their data is read)."""
    declared: Declared = {}
    for key, dset in dsets.items():
        if dset is None:
            continue
        if dset.shape is None:
            raise _fail(path, f"has a dataset {key} with no data (an empty dataspace)")
        declared[key] = (tuple(int(d) for d in dset.shape), dset.dtype)
    for key in H5_KEYS[0::2]:
        if not _is_numeric(np.empty(0, declared[key][1])):
            raise _fail(path, f"has values in {key} that are not numbers (dtype {declared[key][1]})")
    for key in H5_KEYS[1::2]:
        kind = declared[key][1].kind
        if kind not in "iuf":
            raise _fail(path, f"has labels in {key} that are not integers (dtype {declared[key][1]})")
    _check_declared(path, declared, H5_KEYS, limits)


def _h5_class_names(h5py, path: PathLike, dset, limits: FileLimits):
    """The class_names dataset's values; variable-length strings are read one at a time, each bounded."""
    from . import safe_h5

    if dset is None:
        return None
    if safe_h5.string_kind(h5py, dset) != "vlen" or dset.ndim != 1:
        return dset[()]
    most = 4 * limits.max_class_name_chars  # UTF-8 takes at most 4 bytes a character
    names = []
    for i in range(dset.shape[0]):
        item = dset[i]
        if len(item) > most:
            raise _over(path, f"has a class name of {len(item):,} bytes at class_names[{i}]",
                        "max_class_name_chars", limits.max_class_name_chars)
        names.append(item)
    return np.array(names, dtype=object)


def _h5_arrays(h5py, path: PathLike, f, limits: FileLimits) -> tuple[dict, object]:
    """The four arrays and the class names (or None) of an open HDF5 file, read as data only and checked
    against ``limits`` before any is read."""
    from . import safe_h5

    try:
        dsets = {k: safe_h5.open_dataset(h5py, f, k) for k in (*H5_KEYS, "class_names")}
    except safe_h5.H5Problem as exc:
        raise _fail(path, str(exc)) from None
    missing = [k for k in H5_KEYS if dsets[k] is None]
    if missing:
        raise _missing(path, missing, H5_KEYS)
    _h5_declared(path, dsets, limits)
    arrays = {k: np.asarray(dsets[k][()]) for k in H5_KEYS}
    return arrays, _h5_class_names(h5py, path, dsets["class_names"], limits)


def _read_h5(path: Path, limits: FileLimits) -> Dataset:
    try:
        import h5py
    except ImportError:
        raise DatasetFileError(f"Reading the HDF5 dataset file {display_text(str(path))} needs h5py, which is not "
                               f"installed; install the h5 extra: pip install 'rfexplorer[h5]'.") from None
    try:
        f = h5py.File(path, "r")
    except (OSError, ValueError, RuntimeError):
        raise _fail(path, "is not a readable HDF5 file") from None
    with f:
        try:
            arrays, names = _h5_arrays(h5py, path, f, limits)
        except DatasetFileError:
            raise
        except (OSError, RuntimeError, TypeError, ValueError, KeyError):  # h5py's view of damaged metadata or data
            raise _fail(path, "is corrupt (an array cannot be read)") from None
    return dataset_from_arrays(path, display_text(path.name), *(arrays[k] for k in H5_KEYS), class_names=names,
                               keys=H5_KEYS, source=display_text(str(path.resolve())), limits=limits)


#: Lines of a .csv file parsed together by numpy's fast reader (see :func:`_csv_table`).
CSV_CHUNK_LINES = 8192


class _CsvRows:
    """Numeric CSV rows gathered into float64 blocks (8 bytes a number), bounded by the limits as they come."""

    def __init__(self, path: PathLike, limits: FileLimits):
        self.path, self.limits = path, limits
        self.blocks: list[np.ndarray] = []
        self.pending: list[list[float]] = []
        self.lines = array.array("q")
        self.header: Optional[bool] = None
        self.width = self.ref_line = 0

    def add(self, line_num: int, fields: list[str]) -> None:
        """One record as the csv module split it (the first one may be a header)."""
        path = self.path
        if not any(f.strip() for f in fields):
            return
        if self.header is None:  # the first row: a header unless it is all numbers
            self.header = not all(_is_float(f) for f in fields)
            self.width, self.ref_line = len(fields), line_num
            if self.width - 1 > self.limits.max_features:
                raise _over(path, f"has {self.width - 1:,} feature columns at line {line_num}", "max_features",
                            self.limits.max_features)
            if self.header:
                return
        try:
            values = [float(f) for f in fields]
        except ValueError:
            c = next(i for i, f in enumerate(fields) if not _is_float(f))
            raise _fail(path, f"has {fields[c].strip()[:40]!r} at line {line_num}, column {c + 1}, which is not a "
                              f"number") from None
        if len(fields) != self.width:
            raise _fail(path, f"has {len(fields)} columns at line {line_num} but {self.width} at line "
                              f"{self.ref_line}")
        self.pending.append(values)
        self.lines.append(line_num)
        self._bound(line_num)
        if len(self.pending) * self.width >= 1 << 16:
            self._flush()

    def add_block(self, block: np.ndarray, first_line: int) -> None:
        """Rows parsed by numpy from consecutive lines starting at ``first_line`` (no blank line among them)."""
        self._flush()
        self.blocks.append(block)
        self.lines.extend(range(first_line, first_line + len(block)))
        self._bound(first_line + len(block) - 1)

    def _bound(self, line_num: int) -> None:
        limits, most_rows = self.limits, 2 * self.limits.max_samples  # a training and a test split
        if len(self.lines) > most_rows:
            raise _over(self.path, f"has more than {most_rows:,} rows (two splits of max_samples)", "max_samples",
                        limits.max_samples)
        if len(self.lines) * self.width * 8 > limits.max_array_bytes:
            raise _over(self.path, f"has more than {limits.max_array_bytes:,} bytes of numbers by line {line_num}",
                        "max_array_bytes", limits.max_array_bytes)

    def _flush(self) -> None:
        if self.pending:
            self.blocks.append(np.asarray(self.pending, dtype=np.float64))
            self.pending = []

    def table(self) -> tuple[np.ndarray, np.ndarray]:
        self._flush()
        if not self.blocks:
            raise _fail(self.path, "has no samples")
        if self.width < 2:
            raise _fail(self.path, "has a single column, but it needs features and then the label in the last "
                                   "column")
        return np.concatenate(self.blocks), np.frombuffer(self.lines, dtype=np.int64)


def _csv_lines(path: PathLike, text: io.TextIOBase, limits: FileLimits, state: dict):
    """The lines of ``text``; one record (the caller resets ``state["chars"]`` after each) may have at most
    :data:`CSV_CHARS_PER_COLUMN` characters per column that max_features allows, counted *before* anything
    splits it, so a huge line is refused without building millions of fields."""
    most = CSV_CHARS_PER_COLUMN * (limits.max_features + 1)
    while True:
        line = text.readline(most + 1 - state["chars"])
        if not line:
            return
        state["chars"] += len(line)
        state["line"] += 1
        if state["chars"] > most:
            raise _fail(path, f"has a record of more than {most:,} characters at line {state['line']} (at most "
                              f"{CSV_CHARS_PER_COLUMN} per column of the limit max_features = "
                              f"{limits.max_features:,}; set {ENV_PREFIX}MAX_FEATURES to raise it)")
        yield line


def _csv_records(path: PathLike, lines, state: dict, rows: _CsvRows, offset: int, first_only: bool) -> None:
    """Parse ``lines`` with the csv module into ``rows`` (``offset``: lines before them); with ``first_only``,
    stop after the first non-blank record (the csv reader takes no line beyond the record it returns)."""
    reader = csv.reader(lines)
    try:
        for fields in reader:
            state["chars"] = 0
            rows.add(offset + reader.line_num, fields)
            if first_only and rows.header is not None:
                return
    except csv.Error as exc:
        raise _fail(path, f"is not valid CSV at line {offset + reader.line_num} ({exc})") from None


def _csv_table(path: PathLike, text: io.TextIOBase, limits: FileLimits) -> tuple[np.ndarray, np.ndarray]:
    """(float64 table, line number of each row) of the CSV ``text``. The first record goes through the csv
    module (it may be a header); then chunks of plain numeric lines go through numpy's C reader, and any chunk
    it does not take exactly (blank lines, a bad number, ragged rows) through the csv module, so messages and
    values are the same either way; from the first quote character on, all of it goes through the csv module
    (a quoted field may span lines)."""
    state = {"chars": 0, "line": 0}
    lines = _csv_lines(path, text, limits, state)
    rows = _CsvRows(path, limits)
    _csv_records(path, lines, state, rows, 0, first_only=True)
    while True:
        chunk: list[str] = []
        for line in lines:
            state["chars"] = 0
            chunk.append(line)
            if len(chunk) == CSV_CHUNK_LINES:
                break
        if not chunk:
            return rows.table()
        first = state["line"] - len(chunk) + 1
        if any('"' in line for line in chunk):
            _csv_records(path, itertools.chain(chunk, lines), state, rows, first - 1, first_only=False)
            return rows.table()
        block = None
        if all(line.strip() for line in chunk):
            try:
                block = np.loadtxt(chunk, delimiter=",", dtype=np.float64, comments=None, ndmin=2)
            except ValueError:
                block = None
        if block is not None and block.shape == (len(chunk), rows.width):
            rows.add_block(block, first)
        else:
            _csv_records(path, iter(chunk), state, rows, first - 1, first_only=False)


def _read_csv(path: Path, limits: FileLimits) -> Dataset:
    fh, st = _open_regular(path)
    with fh:
        if st.st_size > limits.max_csv_bytes:
            raise _over(path, f"has {st.st_size:,} bytes", "max_csv_bytes", limits.max_csv_bytes)
        text = io.TextIOWrapper(fh, encoding="utf-8-sig")
        try:
            table, lines = _csv_table(path, text, limits)
        except UnicodeDecodeError:
            raise _fail(path, "is not a UTF-8 text file") from None
        except OSError as exc:
            raise _fail(path, f"cannot be read ({exc.strerror or exc})") from None
    x = table[:, :-1]
    line_where: Where = lambda r, c: f"line {lines[r]}, column {c + 1}" if c is not None \
        else f"line {lines[r]}, last column"  # noqa: E731
    _check_features(path, x, "the features", line_where)
    y = _check_labels(path, table[:, -1], "the labels", line_where)
    test = np.zeros(len(y), dtype=bool)
    for c in np.unique(y):
        members = np.flatnonzero(y == c)
        test[members[CSV_TEST_EVERY - 1::CSV_TEST_EVERY]] = True
    if not test.any():
        raise _fail(path, f"has too few samples for a test set: every {CSV_TEST_EVERY}th sample of each class is "
                          f"held out for testing, and no class has {CSV_TEST_EVERY}")
    tr, te = np.flatnonzero(~test), np.flatnonzero(test)
    train_x, test_x = x[tr], x[te]
    del table, x  # the whole table is no longer needed: free it before scaling
    rule = f"every {CSV_TEST_EVERY}th sample of each class held out as the test set"
    return dataset_from_arrays(path, display_text(path.name), train_x, y[tr], test_x, y[te],
                               keys=("train_x", "train_y", "test_x", "test_y"),
                               source=f"{display_text(str(path.resolve()))} ({rule})", limits=limits)


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def is_dataset_file(name_or_path: PathLike) -> bool:
    """True if ``name_or_path`` is not a registered dataset name but names a file by one of the
    :data:`DATASET_FILE_SUFFIXES` (whether or not the file exists)."""
    if isinstance(name_or_path, str) and name_or_path in DATASET_NAMES:
        return False
    return Path(name_or_path).suffix.lower() in DATASET_FILE_SUFFIXES


def load_dataset_file(path: PathLike, limits: FileLimits | None = None) -> Dataset:
    """Load a user dataset file (.npz, .csv, .h5/.hdf5; see the module docstring for the layouts).

    The dataset's name is the file name; ``source`` is its absolute path (plus the split rule for .csv); bytes
    of a file name that are not UTF-8 are shown as ``\\xNN`` in both. What the file declares (its sizes,
    shapes and class names) is checked against ``limits`` (default: :func:`~engine.limits.current_limits`)
    before any array is allocated. Only regular files are read (a FIFO, device or socket is refused unopened);
    an HDF5 file is read as data only (:mod:`engine.safe_h5`). Raises :class:`DataNotFoundError` if there is
    no such file, :class:`DatasetFileError` if it is malformed or over a limit.
    """
    limits = limits or current_limits()
    p = Path(path).expanduser()
    suffix = p.suffix.lower()
    if suffix not in DATASET_FILE_SUFFIXES:
        raise _fail(p, f"is not a {', '.join(DATASET_FILE_SUFFIXES[:-1])} or {DATASET_FILE_SUFFIXES[-1]} file")
    try:
        st = os.stat(p)  # before any open: opening a FIFO would block
    except (FileNotFoundError, NotADirectoryError):
        raise DataNotFoundError(f"Dataset file {display_text(str(p))} does not exist.") from None
    except (OSError, ValueError) as exc:
        raise _fail(p, f"cannot be read ({getattr(exc, 'strerror', None) or exc})") from None
    if stat.S_ISDIR(st.st_mode):
        raise _fail(p, "is a folder, not a file")
    if not stat.S_ISREG(st.st_mode):
        raise _not_regular(p, st.st_mode)
    given = os.fspath(path)
    if isinstance(given, str) and display_text(given) != given:  # a run records the name as given, in UTF-8
        raise _fail(p, "has a name that is not UTF-8 text, which a result or topology file cannot record; rename "
                       "the file (or its folder)")
    if suffix == ".npz":
        return _read_npz(p, limits)
    if suffix == ".csv":
        return _read_csv(p, limits)
    return _read_h5(p, limits)


# ---------------------------------------------------------------------------------------------------------
# Named datasets
# ---------------------------------------------------------------------------------------------------------

def embedded_path(name: str = EMBEDDED_NAME) -> Path:
    """Where the embedded dataset ``name`` is read from."""
    return embedded_data_dir() / EMBEDDED_DATASETS[name].file


def load_embedded(path: PathLike | None = None, name: str = EMBEDDED_NAME) -> Dataset:
    """An embedded dataset (``mnist-mini`` by default, or ``drones``) from ``path`` (default: where it is
    installed), after checking its content sha256."""
    spec = EMBEDDED_DATASETS[name]
    path = Path(path) if path is not None else embedded_path(name)
    if not path.is_file():
        raise DataNotFoundError(f"The embedded dataset {name} is missing at {path}; restore it from git or run "
                                f"resources/{spec.maker}.")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in spec.keys}
    except (KeyError, ValueError, OSError, EOFError, zipfile.BadZipFile):
        raise ValueError(f"The embedded dataset {path} is corrupt (it cannot be read as {name}).") from None
    digest = _content_sha256(arrays, spec.keys)
    if spec.sha256 != digest:
        raise ValueError(f"The embedded dataset {path} is corrupt (content sha256 {digest[:12]}... does not "
                         f"match the recorded {spec.sha256[:12]}...).")
    if name == EMBEDDED_NAME:
        return Dataset(EMBEDDED_NAME, _to_float(arrays["train_images"]),
                       torch.as_tensor(arrays["train_labels"].astype(np.int64)),
                       _to_float(arrays["test_images"]), torch.as_tensor(arrays["test_labels"].astype(np.int64)),
                       image_shape=tuple(arrays["train_images"].shape[1:]), source=str(path),
                       scaling=dict(FIXED_255))
    return dataset_from_arrays(path, name, *(arrays[k] for k in NPZ_KEYS), class_names=arrays["class_names"],
                               source=str(path))


def load_torchvision(name: str, data_dir: PathLike | None = None) -> Dataset:
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
            f"{cls_name} was not found in {raw}; run `rfexplorer-cli data fetch {name} --data-dir {root}` to get "
            f"it, or point --data-dir / ${DATA_ENV_VAR} at a folder that has it.") from exc
    # MNIST's own names are "0 - zero" ...; the digits say it better. Fashion-MNIST and KMNIST keep theirs.
    names = tuple(str(c) for c in range(10)) if name == "mnist" else tuple(getattr(train, "classes", ()))
    return Dataset(name, _to_float(train.data), train.targets.to(torch.int64).clone(), _to_float(test.data),
                   test.targets.to(torch.int64).clone(), image_shape=tuple(train.data.shape[1:]),
                   class_names=names if len(names) == 10 else (), source=str(raw), scaling=dict(FIXED_255))


def load_dataset(name_or_path: PathLike, data_dir: PathLike | None = None) -> Dataset:
    """Load a dataset by name (one of :data:`DATASET_NAMES`) or from a user file (a path ending in one of
    :data:`DATASET_FILE_SUFFIXES`); ``data_dir`` is where MNIST-family sets are looked for."""
    if isinstance(name_or_path, str) and name_or_path in EMBEDDED_DATASETS:
        return load_embedded(name=name_or_path)
    if isinstance(name_or_path, str) and name_or_path in TORCHVISION_DATASETS:
        return load_torchvision(name_or_path, data_dir)
    if is_dataset_file(name_or_path):
        return load_dataset_file(name_or_path)
    text = os.fspath(name_or_path)
    if not isinstance(name_or_path, str) or os.sep in text or Path(text).exists():
        return load_dataset_file(text)  # raises: not a supported file type
    raise ValueError(f"unknown dataset {text!r}; choose one of: {', '.join(DATASET_NAMES)}, or give the path of "
                     f"a {', '.join(DATASET_FILE_SUFFIXES[:-1])} or {DATASET_FILE_SUFFIXES[-1]} file")


def available_datasets(data_dir: PathLike | None = None) -> list[str]:
    """Names of the named datasets that can be loaded right now (the embedded ones are always there)."""
    root = resolve_data_root(data_dir)
    names = []
    for name in DATASET_NAMES:
        if name in EMBEDDED_DATASETS:
            ok = embedded_path(name).is_file()
        else:
            raw = root / TORCHVISION_DATASETS[name] / "raw"
            ok = (raw / "train-images-idx3-ubyte").is_file() and (raw / "t10k-images-idx3-ubyte").is_file()
        if ok:
            names.append(name)
    return names
