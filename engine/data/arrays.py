"""Checking and scaling the arrays of a user dataset file (and of the embedded drones set): shapes, finite
non-negative features (input powers), whole-number labels 0…C−1, class names and image shapes, all bounded by
:mod:`engine.core.limits`; then one global maximum maps the features to [0, 1] (:func:`dataset_from_arrays`).

Every problem is a :class:`~engine.data.dataset.DatasetFileError` with one sentence naming the file.
"""

from __future__ import annotations

import os
from typing import Callable, Optional

import numpy as np
import torch

from engine.core.limits import ENV_PREFIX, FileLimits, current_limits
from engine.data.dataset import NPZ_KEYS, Dataset, DatasetFileError, PathLike

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


def file_error(path: PathLike, problem: str) -> DatasetFileError:
    return DatasetFileError(f"Dataset file {display_text(os.fspath(path))} {problem}.")


def over_limit(path: PathLike, what: str, field_name: str, limit: int) -> DatasetFileError:
    """``what`` (e.g. "has 12 samples in train_x") is over the limit ``field_name``: one sentence saying so."""
    return file_error(
        path, f"{what}, over the limit {field_name} = {limit:,} (set {ENV_PREFIX}{field_name.upper()} to raise it)"
    )


def _quoted(text: str, limits: FileLimits) -> str:
    """repr() of a user's text, cut to the limit max_message_chars."""
    cut = text if len(text) <= limits.max_message_chars else text[: limits.max_message_chars] + "…"
    return repr(cut)


def is_numeric(a: np.ndarray) -> bool:
    return a.dtype == np.bool_ or np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)


def check_features(path: PathLike, x: np.ndarray, key: str, where: Where) -> np.ndarray:
    """x must be numeric, finite and >= 0 (input powers); returns it (bool as uint8)."""
    if not is_numeric(x):
        raise file_error(path, f"has values in {key} that are not numbers (dtype {x.dtype})")
    if x.dtype == np.bool_:
        return x.astype(np.uint8)
    if np.issubdtype(x.dtype, np.floating):
        bad = ~np.isfinite(x)
        if bad.any():
            r, c = (int(i) for i in np.argwhere(bad)[0])
            what = "a NaN" if np.isnan(x[r, c]) else "an infinite value"
            raise file_error(path, f"has {what} at {where(r, c)}")
    if x.size and x.min() < 0:
        r, c = (int(i) for i in np.argwhere(x < 0)[0])
        raise file_error(
            path,
            f"has a negative value ({x[r, c]:g}) at {where(r, c)}, but features are input powers "
            f"and must be at least 0",
        )
    return x


def check_labels(path: PathLike, y: np.ndarray, key: str, where: Where) -> np.ndarray:
    """y must hold whole numbers >= 0; returns int64."""
    if np.issubdtype(y.dtype, np.integer):
        labels = y.astype(np.int64)
    elif np.issubdtype(y.dtype, np.floating):
        bad = ~np.isfinite(y) | (y != np.round(y))
        if bad.any():
            r = int(np.flatnonzero(bad)[0])
            raise file_error(path, f"has a label that is not an integer ({y[r]:g}) at {where(r, None)}")
        if y.size and np.abs(y).max() > 2**53:
            r = int(np.argmax(np.abs(y)))
            raise file_error(path, f"has the label {y[r]:g} at {where(r, None)}, which is not a class number")
        labels = y.astype(np.int64)
    else:
        raise file_error(path, f"has labels in {key} that are not integers (dtype {y.dtype})")
    if labels.size and labels.min() < 0:
        r = int(np.flatnonzero(labels < 0)[0])
        raise file_error(path, f"has the label {labels[r]} at {where(r, None)}, outside the class numbers 0…C−1")
    return labels


def _as_labels_1d(path: PathLike, y: np.ndarray, key: str) -> np.ndarray:
    if y.ndim == 2 and y.shape[1] == 1:
        return y[:, 0]
    if y.ndim != 1:
        raise file_error(path, f"has {key} of shape {y.shape}, but labels must be a 1-D array of class numbers")
    return y


def _class_names_from(path: PathLike, names, n_classes: int, limits: FileLimits | None = None) -> tuple[str, ...]:
    limits = limits or current_limits()
    a = np.asarray(names)
    if a.size > limits.max_classes:
        raise over_limit(path, f"has {a.size:,} class_names", "max_classes", limits.max_classes)
    items: Optional[list]
    if a.dtype == object:  # h5py gives variable-length strings as bytes objects
        items = list(a.ravel())
    elif a.dtype.kind in "US":
        items = list(a.ravel()) if a.ndim <= 1 else None
    else:
        items = None
    if items is None or a.ndim > 1 or not all(isinstance(s, (str, bytes, np.str_, np.bytes_)) for s in items):
        raise file_error(path, "has class_names that are not a 1-D array of strings")
    try:
        out = tuple(s.decode("utf-8") if isinstance(s, bytes) else str(s) for s in items)
    except UnicodeDecodeError:
        raise file_error(path, "has class_names that are not UTF-8 text") from None
    if len(out) != n_classes:
        raise file_error(
            path, f"has {len(out)} class_names but its labels number {n_classes} classes (0…{n_classes - 1})"
        )
    _check_class_names(path, out, limits)
    return out


def _check_class_names(path: PathLike, names: tuple[str, ...], limits: FileLimits) -> None:
    """Class names must be non-empty, printable, of bounded length and distinct (a result records them)."""
    first: dict[str, int] = {}
    for i, name in enumerate(names):
        where = f"class_names[{i}]"
        if len(name) > limits.max_class_name_chars:
            raise over_limit(
                path,
                f"has a class name of {len(name):,} characters at {where}",
                "max_class_name_chars",
                limits.max_class_name_chars,
            )
        if not name.strip():
            raise file_error(path, f"has an empty class name at {where}, but every class needs a name")
        if not name.isprintable():
            raise file_error(
                path, f"has a class name with a control or unprintable character at {where} ({_quoted(name, limits)})"
            )
        if name in first:
            raise file_error(
                path,
                f"has the class name {_quoted(name, limits)} twice (class_names[{first[name]}] and "
                f"{where}), but class names must be distinct",
            )
        first[name] = i


def _image_shape_from(path: PathLike, shape, n_inputs: int) -> tuple[int, int]:
    a = np.asarray(shape)
    if a.size > 8:
        raise file_error(
            path, f"has image_shape of {a.size:,} values, but it must be 2 positive integers (rows, columns)"
        )
    if (
        a.size != 2
        or not is_numeric(a)
        or a.dtype == np.bool_
        or not np.all(np.isfinite(a))
        or np.any(a != np.round(a))
        or np.any(a < 1)
    ):
        raise file_error(
            path, f"has image_shape {a.ravel().tolist()}, but it must be 2 positive integers (rows, columns)"
        )
    rows, cols = (int(v) for v in a.ravel())
    if rows * cols != n_inputs:
        raise file_error(
            path, f"has image_shape {rows}x{cols} = {rows * cols} pixels, but its samples have {n_inputs} features"
        )
    return rows, cols


def _scale_global_max(path: PathLike, train_x: np.ndarray, test_x: np.ndarray, keys: tuple[str, str]):
    """Divide by the training set's largest value; clip test values above it to 1."""
    top, low = float(train_x.max()), float(train_x.min())
    if top <= 0:
        raise file_error(path, f"has only zeros in {keys[0]}, so there is no input power to scale by")
    tr = _divided(train_x, top)
    tr = np.minimum(tr, 1.0, out=tr).astype(np.float32, copy=False)
    te = _divided(test_x, top)
    clipped = int(np.count_nonzero(te > 1.0))
    te = np.minimum(te, 1.0, out=te).astype(np.float32, copy=False)
    scaling = {"method": "global-max", "min": low, "max": top, "test_clipped": clipped}
    return torch.from_numpy(np.ascontiguousarray(tr)), torch.from_numpy(np.ascontiguousarray(te)), scaling


#: dtypes whose every value float32 holds exactly: dividing them in float32 gives the same bits as dividing in
#: float64 and rounding (53 >= 2 * 24 + 2 bits, so the double rounding is harmless), at half the memory
_EXACT_IN_FLOAT32 = (np.float32, np.float16, np.uint8, np.int8, np.uint16, np.int16, np.bool_)


def _divided(x: np.ndarray, top: float) -> np.ndarray:
    """``x / top`` as a new array: in float32 where that is exact (one 4-byte copy, e.g. 1.25 GB rather than
    2.5 GB for 300 MB of uint8 pixels), else in float64."""
    if x.dtype.type in _EXACT_IN_FLOAT32:
        out = x.astype(np.float32)
        return np.divide(out, np.float32(top), out=out)
    return x / top


def dataset_from_arrays(
    path: PathLike,
    name: str,
    train_x,
    train_y,
    test_x,
    test_y,
    *,
    class_names=None,
    image_shape=None,
    keys: tuple[str, str, str, str] = NPZ_KEYS,
    source: str = "",
    limits: FileLimits | None = None,
) -> Dataset:
    """Check four arrays as read from ``path`` (``keys`` are their names in the file, for the messages), scale
    the features by the training maximum and return the :class:`Dataset`. Raises :class:`DatasetFileError`;
    ``limits`` (default :func:`~engine.core.limits.current_limits`) bound the samples, features and classes."""
    limits = limits or current_limits()
    kx, ky, kxt, kyt = keys
    arrays = {}
    for key, a in zip(keys, (train_x, train_y, test_x, test_y)):
        arrays[key] = np.asarray(a)
    for kxx, kyy, split in ((kx, ky, "training"), (kxt, kyt, "test")):
        x, y = arrays[kxx], _as_labels_1d(path, arrays[kyy], kyy)
        arrays[kyy] = y
        if x.ndim != 2:
            raise file_error(path, f"has {kxx} of shape {x.shape}, but it must be 2-D (samples x features)")
        if x.shape[0] == 0:
            raise file_error(path, f"has an empty {split} set ({kxx} has no rows)")
        if x.shape[0] != y.shape[0]:
            raise file_error(path, f"has {x.shape[0]} samples in {kxx} but {y.shape[0]} labels in {kyy}")
        if x.shape[0] > limits.max_samples:
            raise over_limit(path, f"has {x.shape[0]:,} samples in {kxx}", "max_samples", limits.max_samples)
        if x.shape[1] > limits.max_features:
            raise over_limit(path, f"has {x.shape[1]:,} features in {kxx}", "max_features", limits.max_features)
    if arrays[kx].shape[1] == 0:
        raise file_error(path, f"has no features in {kx} (0 columns)")
    if arrays[kx].shape[1] != arrays[kxt].shape[1]:
        raise file_error(
            path, f"has {arrays[kx].shape[1]} features per sample in {kx} but {arrays[kxt].shape[1]} in {kxt}"
        )
    xs = {k: check_features(path, arrays[k], k, _array_where(k)) for k in (kx, kxt)}
    ys = {k: check_labels(path, arrays[k], k, _array_where(k)) for k in (ky, kyt)}
    n_classes = int(max(ys[ky].max(), ys[kyt].max())) + 1
    if n_classes < 2:
        raise file_error(path, "has only one class (all labels are 0), but at least 2 are needed")
    present = np.unique(ys[ky])  # sorted; no bincount, so a stray huge label cannot allocate a huge array
    if len(present) < 2:
        raise file_error(path, f"has only one class in {ky}, but at least 2 are needed")
    if len(present) != n_classes:
        gaps = np.flatnonzero(present != np.arange(len(present)))
        missing = int(gaps[0]) if len(gaps) else len(present)
        raise file_error(
            path,
            f"has labels up to {n_classes - 1} but no training sample of class {missing}; labels "
            f"must number the classes 0…C−1 and every class needs training samples",
        )
    if n_classes > limits.max_classes:
        raise over_limit(path, f"has {n_classes:,} classes", "max_classes", limits.max_classes)
    names = (
        _class_names_from(path, class_names, n_classes, limits)
        if class_names is not None
        else tuple(str(c) for c in range(n_classes))
    )
    n_inputs = int(arrays[kx].shape[1])
    shape = _image_shape_from(path, image_shape, n_inputs) if image_shape is not None else None
    tr_x, te_x, scaling = _scale_global_max(path, xs[kx], xs[kxt], (kx, kxt))
    return Dataset(
        name,
        tr_x,
        torch.from_numpy(ys[ky]),
        te_x,
        torch.from_numpy(ys[kyt]),
        image_shape=shape,
        class_names=names,
        source=source or str(path),
        scaling=scaling,
    )
