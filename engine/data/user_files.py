"""Reading untrusted user dataset files (.npz, .csv, .h5/.hdf5) into a :class:`~engine.data.dataset.Dataset`,
with every size a file declares checked against :mod:`engine.core.limits` before anything is allocated.

User files (:func:`load_dataset_file`, or :func:`engine.data.named.load_dataset` with a path)
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

User files are untrusted
    Only regular files are opened (a FIFO, device or socket is refused from its ``stat``). What a file
    declares is checked against :mod:`engine.core.limits` before any array is allocated: an .npz archive's member
    count (its zip end record), each member's compression (stored or deflated only) and ``.npy`` header
    (shape, dtype; object dtypes and negative shapes refused, pickle never allowed) and the uncompressed size
    of them all; an HDF5 file's dataset shapes and dtypes; a CSV file's size on disk, then its rows, columns
    and record length while it is parsed. An HDF5 file is read as data only (:mod:`engine.data.safe_h5`: no
    external storage, external links or virtual datasets). Class names must be distinct, non-empty,
    printable and at most ``max_class_name_chars`` long, and a file name must be UTF-8 text, since a run
    records both; anything else is refused at load time rather than when the result is written.

The CSV parser is :mod:`engine.data.csv_files`; this module opens every file and reads .npz and HDF5 files.
"""

from __future__ import annotations

import io
import math
import os
import stat
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from engine.core.limits import FileLimits, current_limits
from engine.data import safe_h5
from engine.data.arrays import (
    dataset_from_arrays,
    display_text,
    file_error,
    is_numeric,
    over_limit,
)
from engine.data.csv_files import CSV_CHARS_PER_COLUMN, CSV_CHUNK_LINES, read_csv
from engine.data.dataset import (
    DATASET_FILE_SUFFIXES,
    DATASET_NAMES,
    H5_KEYS,
    NPZ_KEYS,
    DataNotFoundError,
    Dataset,
    DatasetFileError,
    PathLike,
)


def _missing(path: PathLike, missing: list[str], needed: tuple[str, ...]) -> DatasetFileError:
    listed = missing[0] if len(missing) == 1 else ", ".join(missing[:-1]) + " and " + missing[-1]
    noun = "array" if len(missing) == 1 else "arrays"
    return file_error(path, f"has no {noun} named {listed} (it needs {', '.join(needed[:-1])} and {needed[-1]})")


#: The first bytes of a .npy file (a single array, not an archive).
_NPY_MAGIC = b"\x93NUMPY"
#: Errors of reading a zip member: damaged deflate data, bad CRC, unsupported compression or encryption.
_ZIP_ERRORS = (OSError, EOFError, zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError)


def _not_regular(path: PathLike, mode: int) -> DatasetFileError:
    if stat.S_ISFIFO(mode):
        kind = "a FIFO"
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        kind = "a device"
    elif stat.S_ISSOCK(mode):
        kind = "a socket"
    else:
        kind = "a special file"
    return file_error(path, f"is not a regular file (it is {kind}), so it is not read")


def _open_regular(path: Path) -> tuple[io.BufferedReader, os.stat_result]:
    """The file opened for binary reading, checked to be a regular file before anything is read from it (it is
    opened non-blocking, so a FIFO put there after the caller's check cannot block)."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise file_error(path, f"cannot be read ({exc.strerror or exc})") from None
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
            raise over_limit(path, f"declares {shape[0]:,} samples in {key}", "max_samples", limits.max_samples)
        if key in (kx, kxt) and len(shape) >= 2 and math.prod(shape[1:]) > limits.max_features:
            raise over_limit(
                path,
                f"declares {math.prod(shape[1:]):,} features per sample in {key}",
                "max_features",
                limits.max_features,
            )
        if key == "class_names":
            if count > limits.max_classes:
                raise over_limit(path, f"declares {count:,} class_names", "max_classes", limits.max_classes)
            most = limits.max_class_name_chars
            if dtype.kind == "U" and dtype.itemsize // 4 > most:
                raise over_limit(
                    path,
                    f"declares class names of up to {dtype.itemsize // 4:,} characters",
                    "max_class_name_chars",
                    most,
                )
            if dtype.kind == "S" and dtype.itemsize > 4 * most:  # UTF-8: up to 4 bytes a character
                raise over_limit(
                    path, f"declares class names of up to {dtype.itemsize:,} bytes", "max_class_name_chars", most
                )
        total += count * dtype.itemsize
        if key in (kx, kxt):
            total += count * 4  # the float32 features the reader makes of them (engine.data.arrays)
    if total > limits.max_array_bytes:
        raise over_limit(
            path,
            f"would take {total:,} bytes once loaded (arrays and their float32 features)",
            "max_array_bytes",
            limits.max_array_bytes,
        )


def _npy_header(path: PathLike, zf: zipfile.ZipFile, key: str, info: zipfile.ZipInfo):
    """(shape, dtype, size of the header in bytes) from the .npy header of one archive member; reads only the
    header, and refuses object dtypes and negative shapes."""
    fmt = np.lib.format
    try:
        with zf.open(info) as member:
            try:
                version = fmt.read_magic(member)
                if version not in ((1, 0), (2, 0)):
                    raise file_error(
                        path,
                        f"has its array {key} in .npy format version {version[0]}.{version[1]}, "
                        f"which is not read (save it with numpy's default format)",
                    )
                read_header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
                shape, _, dtype = read_header(member)
            except DatasetFileError:
                raise
            except (ValueError, TypeError, SyntaxError):
                raise file_error(path, f"has a damaged .npy header in its array {key}") from None
            header = member.tell()
    except _ZIP_ERRORS:
        raise file_error(path, f"is corrupt (its array {key} cannot be read)") from None
    if dtype.hasobject:
        raise file_error(
            path,
            f"has an array {key} of Python objects, which is not loaded (pickle is off); save it "
            f"as a numeric or fixed-width string array",
        )
    if any(d < 0 for d in shape):
        raise file_error(
            path, f"has a damaged .npy header in its array {key} (it declares the negative shape {tuple(shape)})"
        )
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
            raise file_error(
                path,
                f"has its array {key} compressed with method {members[key].compress_type}, but only "
                f"stored or deflated arrays are read (numpy's savez or savez_compressed)",
            )
    headers = {k: _npy_header(path, zf, k, members[k]) for k in wanted}
    _check_declared(path, {k: (shape, dtype) for k, (shape, dtype, _) in headers.items()}, NPZ_KEYS, limits)
    arrays = {}
    for key in wanted:
        shape, dtype, header = headers[key]
        stored = members[key].file_size - header
        if stored < math.prod(shape) * dtype.itemsize:
            raise file_error(
                path,
                f"has a damaged array {key}: its header declares shape {shape} of "
                f"{math.prod(shape) * dtype.itemsize:,} bytes but it holds {max(stored, 0):,}",
            )
        try:
            with zf.open(members[key]) as member:
                arrays[key] = np.lib.format.read_array(member, allow_pickle=False)
        except (ValueError, *_ZIP_ERRORS):
            raise file_error(path, f"is corrupt (its array {key} cannot be read)") from None
    return arrays


def _check_zip_members(path: PathLike, fh, limits: FileLimits) -> None:
    """The member count that the zip's end record declares, checked before zipfile reads its directory."""
    try:
        # the record zipfile itself reads first (private API: typeshed omits it; absent in some future Python?)
        end = zipfile._EndRecData(fh)  # type: ignore[attr-defined]
    except (AttributeError, OSError, struct.error):
        end = None
    finally:
        fh.seek(0)
    count = end[zipfile._ECD_ENTRIES_TOTAL] if end else 0  # type: ignore[attr-defined]  # private, as above
    if count > limits.max_archive_members:
        raise over_limit(path, f"declares {count:,} archive members", "max_archive_members", limits.max_archive_members)


def _read_npz(path: Path, limits: FileLimits) -> Dataset:
    fh, _ = _open_regular(path)
    with fh:
        if fh.read(len(_NPY_MAGIC)) == _NPY_MAGIC:
            raise file_error(path, "holds a single array, not an .npz archive of named arrays")
        fh.seek(0)
        _check_zip_members(path, fh, limits)
        try:
            zf = zipfile.ZipFile(fh)
        except (ValueError, *_ZIP_ERRORS):
            raise file_error(path, "is not a readable .npz archive") from None
        with zf:
            arrays = _npz_arrays(path, zf, limits)
    return dataset_from_arrays(
        path,
        display_text(path.name),
        *(arrays[k] for k in NPZ_KEYS),
        class_names=arrays.get("class_names"),
        image_shape=arrays.get("image_shape"),
        source=display_text(str(path.resolve())),
        limits=limits,
    )


def _h5_declared(path: PathLike, dsets: dict, limits: FileLimits) -> None:
    """Check the shapes and dtypes of the HDF5 datasets (none of their data is read)."""
    declared: Declared = {}
    for key, dset in dsets.items():
        if dset is None:
            continue
        if dset.shape is None:
            raise file_error(path, f"has a dataset {key} with no data (an empty dataspace)")
        declared[key] = (tuple(int(d) for d in dset.shape), dset.dtype)
    for key in H5_KEYS[0::2]:
        if not is_numeric(np.empty(0, declared[key][1])):
            raise file_error(path, f"has values in {key} that are not numbers (dtype {declared[key][1]})")
    for key in H5_KEYS[1::2]:
        kind = declared[key][1].kind
        if kind not in "iuf":
            raise file_error(path, f"has labels in {key} that are not integers (dtype {declared[key][1]})")
    _check_declared(path, declared, H5_KEYS, limits)


def _h5_class_names(h5py, path: PathLike, dset, limits: FileLimits):
    """The class_names dataset's values; variable-length strings are read one at a time, each bounded."""
    if dset is None:
        return None
    if safe_h5.string_kind(h5py, dset) != "vlen" or dset.ndim != 1:
        return dset[()]
    most = 4 * limits.max_class_name_chars  # UTF-8 takes at most 4 bytes a character
    names = []
    for i in range(dset.shape[0]):
        item = dset[i]
        if len(item) > most:
            raise over_limit(
                path,
                f"has a class name of {len(item):,} bytes at class_names[{i}]",
                "max_class_name_chars",
                limits.max_class_name_chars,
            )
        names.append(item)
    return np.array(names, dtype=object)


def _h5_arrays(h5py, path: PathLike, f, limits: FileLimits) -> tuple[dict, object]:
    """The four arrays and the class names (or None) of an open HDF5 file, read as data only and checked
    against ``limits`` before any is read."""
    try:
        dsets: dict[str, Any] = {k: safe_h5.open_dataset(h5py, f, k) for k in (*H5_KEYS, "class_names")}  # h5py
    except safe_h5.H5Problem as exc:
        raise file_error(path, str(exc)) from None
    missing = [k for k in H5_KEYS if dsets[k] is None]
    if missing:
        raise _missing(path, missing, H5_KEYS)
    _h5_declared(path, dsets, limits)
    arrays = {k: np.asarray(dsets[k][()]) for k in H5_KEYS}
    return arrays, _h5_class_names(h5py, path, dsets["class_names"], limits)


def _read_h5(path: Path, limits: FileLimits) -> Dataset:
    try:
        import h5py  # optional (the h5 extra), and only user .h5 files need it
    except ImportError:
        raise DatasetFileError(
            f"Reading the HDF5 dataset file {display_text(str(path))} needs h5py, which is not "
            f"installed; install the h5 extra: pip install 'rfexplorer[h5]'."
        ) from None
    try:
        f = h5py.File(path, "r")
    except (OSError, ValueError, RuntimeError):
        raise file_error(path, "is not a readable HDF5 file") from None
    with f:
        try:
            arrays, names = _h5_arrays(h5py, path, f, limits)
        except DatasetFileError:
            raise
        except (OSError, RuntimeError, TypeError, ValueError, KeyError):  # h5py's view of damaged metadata or data
            raise file_error(path, "is corrupt (an array cannot be read)") from None
    return dataset_from_arrays(
        path,
        display_text(path.name),
        *(arrays[k] for k in H5_KEYS),
        class_names=names,
        keys=H5_KEYS,
        source=display_text(str(path.resolve())),
        limits=limits,
    )


def has_dataset_suffix(name_or_path: PathLike) -> bool:
    """True if ``name_or_path`` is not a registered dataset name but names a file by one of the
    :data:`DATASET_FILE_SUFFIXES` (whether or not the file exists)."""
    if isinstance(name_or_path, str) and name_or_path in DATASET_NAMES:
        return False
    return Path(name_or_path).suffix.lower() in DATASET_FILE_SUFFIXES


def load_dataset_file(path: PathLike, limits: FileLimits | None = None) -> Dataset:
    """Load a user dataset file (.npz, .csv, .h5/.hdf5; see the module docstring for the layouts).

    The dataset's name is the file name; ``source`` is its absolute path (plus the split rule for .csv); bytes
    of a file name that are not UTF-8 are shown as ``\\xNN`` in both. What the file declares (its sizes,
    shapes and class names) is checked against ``limits`` (default: :func:`~engine.core.limits.current_limits`)
    before any array is allocated. Only regular files are read (a FIFO, device or socket is refused unopened);
    an HDF5 file is read as data only (:mod:`engine.data.safe_h5`). Raises :class:`DataNotFoundError` if there is
    no such file, :class:`DatasetFileError` if it is malformed or over a limit.
    """
    limits = limits or current_limits()
    p = Path(path).expanduser()
    suffix = p.suffix.lower()
    if suffix not in DATASET_FILE_SUFFIXES:
        raise file_error(p, f"is not a {', '.join(DATASET_FILE_SUFFIXES[:-1])} or {DATASET_FILE_SUFFIXES[-1]} file")
    try:
        st = os.stat(p)  # before any open: opening a FIFO would block
    except (FileNotFoundError, NotADirectoryError):
        raise DataNotFoundError(f"Dataset file {display_text(str(p))} does not exist.") from None
    except (OSError, ValueError) as exc:
        raise file_error(p, f"cannot be read ({getattr(exc, 'strerror', None) or exc})") from None
    if stat.S_ISDIR(st.st_mode):
        raise file_error(p, "is a folder, not a file")
    if not stat.S_ISREG(st.st_mode):
        raise _not_regular(p, st.st_mode)
    given = os.fspath(path)
    if isinstance(given, str) and display_text(given) != given:  # a run records the name as given, in UTF-8
        raise file_error(
            p,
            "has a name that is not UTF-8 text, which a result or topology file cannot record; rename "
            "the file (or its folder)",
        )
    if suffix == ".npz":
        return _read_npz(p, limits)
    if suffix == ".csv":
        fh, st = _open_regular(p)
        return read_csv(p, fh, st.st_size, limits)
    return _read_h5(p, limits)


__all__ = ["CSV_CHARS_PER_COLUMN", "CSV_CHUNK_LINES", "has_dataset_suffix", "load_dataset_file"]
