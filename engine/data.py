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
"""
from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import os
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Union

import numpy as np
import torch

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
    """The per-user data folder: $XDG_DATA_HOME/rfexplorer/data (or ~/.local/share/rfexplorer/data)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "rfexplorer" / "data"


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


def _fail(path: PathLike, problem: str) -> DatasetFileError:
    return DatasetFileError(f"Dataset file {path} {problem}.")


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


def _class_names_from(path: PathLike, names, n_classes: int) -> tuple[str, ...]:
    a = np.asarray(names)
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
    return out


def _image_shape_from(path: PathLike, shape, n_inputs: int) -> tuple[int, int]:
    a = np.asarray(shape)
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
    tr = np.minimum(train_x / top, 1.0).astype(np.float32)
    te = test_x / top
    clipped = int(np.count_nonzero(te > 1.0))
    te = np.minimum(te, 1.0).astype(np.float32)
    scaling = {"method": "global-max", "min": low, "max": top, "test_clipped": clipped}
    return torch.from_numpy(np.ascontiguousarray(tr)), torch.from_numpy(np.ascontiguousarray(te)), scaling


def dataset_from_arrays(path: PathLike, name: str, train_x, train_y, test_x, test_y, *, class_names=None,
                        image_shape=None, keys: tuple[str, str, str, str] = NPZ_KEYS, source: str = "") -> Dataset:
    """Check four arrays as read from ``path`` (``keys`` are their names in the file, for the messages), scale
    the features by the training maximum and return the :class:`Dataset`. Raises :class:`DatasetFileError`."""
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
    names = (_class_names_from(path, class_names, n_classes) if class_names is not None
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


def _read_npz(path: Path) -> Dataset:
    try:
        z = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile):
        raise _fail(path, "is not a readable .npz archive") from None
    if not isinstance(z, np.lib.npyio.NpzFile):
        raise _fail(path, "holds a single array, not an .npz archive of named arrays")
    with z:
        missing = [k for k in NPZ_KEYS if k not in z.files]
        if missing:
            raise _missing(path, missing, NPZ_KEYS)
        arrays = {}
        for key in (*NPZ_KEYS, "class_names", "image_shape"):
            if key not in z.files:
                continue
            try:
                arrays[key] = z[key]
            except ValueError:  # object arrays need pickle, which is off
                raise _fail(path, f"has an array {key} of Python objects, which is not loaded (pickle is "
                                  f"off); save it as a numeric or fixed-width string array") from None
            except (OSError, EOFError, zipfile.BadZipFile, zlib.error):
                raise _fail(path, f"is corrupt (its array {key} cannot be read)") from None
    return dataset_from_arrays(path, path.name, *(arrays[k] for k in NPZ_KEYS),
                               class_names=arrays.get("class_names"), image_shape=arrays.get("image_shape"),
                               source=str(path.resolve()))


def _read_h5(path: Path) -> Dataset:
    try:
        import h5py
    except ImportError:
        raise DatasetFileError(f"Reading the HDF5 dataset file {path} needs h5py, which is not installed; "
                               f"install the h5 extra: pip install 'rfexplorer[h5]'.") from None
    try:
        f = h5py.File(path, "r")
    except OSError:
        raise _fail(path, "is not a readable HDF5 file") from None
    with f:
        missing = [k for k in H5_KEYS if not isinstance(f.get(k), h5py.Dataset)]
        if missing:
            raise _missing(path, missing, H5_KEYS)
        try:
            arrays = {k: f[k][()] for k in H5_KEYS}
            names = f["class_names"][()] if isinstance(f.get("class_names"), h5py.Dataset) else None
        except (OSError, TypeError, ValueError):
            raise _fail(path, "is corrupt (an array cannot be read)") from None
    return dataset_from_arrays(path, path.name, *(np.asarray(arrays[k]) for k in H5_KEYS), class_names=names,
                               keys=H5_KEYS, source=str(path.resolve()))


def _read_csv(path: Path) -> Dataset:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise _fail(path, "is not a UTF-8 text file") from None
    except OSError as exc:
        raise _fail(path, f"cannot be read ({exc.strerror or exc})") from None
    rows: list[list[float]] = []
    lines: list[int] = []
    header: Optional[bool] = None
    width = ref_line = 0
    reader = csv.reader(io.StringIO(text))
    try:
        for fields in reader:
            if not any(f.strip() for f in fields):
                continue
            if header is None:  # the first row: a header unless it is all numbers
                header = not all(_is_float(f) for f in fields)
                width, ref_line = len(fields), reader.line_num
                if header:
                    continue
            try:
                values = [float(f) for f in fields]
            except ValueError:
                c = next(i for i, f in enumerate(fields) if not _is_float(f))
                raise _fail(path, f"has {fields[c].strip()[:40]!r} at line {reader.line_num}, column {c + 1}, "
                                  f"which is not a number") from None
            if len(fields) != width:
                raise _fail(path, f"has {len(fields)} columns at line {reader.line_num} but {width} at line "
                                  f"{ref_line}")
            rows.append(values)
            lines.append(reader.line_num)
    except csv.Error as exc:
        raise _fail(path, f"is not valid CSV at line {reader.line_num} ({exc})") from None
    if not rows:
        raise _fail(path, "has no samples")
    if width < 2:
        raise _fail(path, "has a single column, but it needs features and then the label in the last column")
    table = np.asarray(rows, dtype=np.float64)
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
    rule = f"every {CSV_TEST_EVERY}th sample of each class held out as the test set"
    return dataset_from_arrays(path, path.name, x[tr], y[tr], x[te], y[te], keys=("train_x", "train_y", "test_x",
                                                                                 "test_y"),
                               source=f"{path.resolve()} ({rule})")


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


def load_dataset_file(path: PathLike) -> Dataset:
    """Load a user dataset file (.npz, .csv, .h5/.hdf5; see the module docstring for the layouts).

    The dataset's name is the file name; ``source`` is its absolute path (plus the split rule for .csv).
    Raises :class:`DataNotFoundError` if there is no such file, :class:`DatasetFileError` if it is malformed.
    """
    p = Path(path).expanduser()
    suffix = p.suffix.lower()
    if suffix not in DATASET_FILE_SUFFIXES:
        raise _fail(p, f"is not a {', '.join(DATASET_FILE_SUFFIXES[:-1])} or {DATASET_FILE_SUFFIXES[-1]} file")
    if not p.exists():
        raise DataNotFoundError(f"Dataset file {p} does not exist.")
    if not p.is_file():
        raise _fail(p, "is a folder, not a file")
    if suffix == ".npz":
        return _read_npz(p)
    if suffix == ".csv":
        return _read_csv(p)
    return _read_h5(p)


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
            f"{cls_name} was not found in {raw}; get it with torchvision.datasets.{cls_name}(root='{root}', "
            f"download=True) on a connected machine, or point --data-dir / ${DATA_ENV_VAR} at a folder that "
            f"has it.") from exc
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
