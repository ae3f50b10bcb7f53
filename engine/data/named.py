"""The named datasets (:data:`~engine.data.dataset.DATASET_NAMES`): the embedded ones, the MNIST family read
from a data root in torchvision's layout, and :func:`load_dataset`, which also reads user files
(engine.data.user_files). Nothing here downloads (that is engine.data.fetch): a missing dataset raises
:class:`~engine.data.dataset.DataNotFoundError` with one sentence saying where it was looked for and how to get
it.

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
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import numpy as np
import torch
from platformdirs import user_data_path

from engine.data.arrays import dataset_from_arrays
from engine.data.dataset import (
    DATASET_FILE_SUFFIXES,
    DATASET_NAMES,
    DRONES_NAME,
    EMBEDDED_NAME,
    NPZ_KEYS,
    TORCHVISION_DATASETS,
    DataNotFoundError,
    Dataset,
    PathLike,
)
from engine.data.user_files import has_dataset_suffix, load_dataset_file

#: Environment variable that names the data root (torchvision layout).
DATA_ENV_VAR = "RFEXPLORER_DATA"

#: The resources/ folder of a source checkout (absent in an installed wheel; see :func:`embedded_data_dir`).
RESOURCES_DIR = Path(__file__).resolve().parents[2] / "resources"
#: The package that pyproject.toml maps onto resources/data, so that wheels carry the embedded datasets.
RESOURCES_PACKAGE = "engine._resources"


def embedded_data_dir() -> Path:
    """The folder holding the embedded datasets: the installed ``engine._resources`` package when there is
    one (a wheel, or an editable install made with the current pyproject.toml), else resources/data of the
    source tree."""
    try:
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


def default_user_data_dir() -> Path:
    """The per-user data folder, platformdirs' user data folder of rfexplorer plus ``data``: on Linux
    $XDG_DATA_HOME/rfexplorer/data (or ~/.local/share/rfexplorer/data), on macOS ~/Library/Application
    Support/rfexplorer/data, on Windows %LOCALAPPDATA%\\rfexplorer\\data."""
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


def embedded_path(name: str = EMBEDDED_NAME) -> Path:
    """Where the embedded dataset ``name`` is read from."""
    return embedded_data_dir() / EMBEDDED_DATASETS[name].file


def load_embedded(path: PathLike | None = None, name: str = EMBEDDED_NAME) -> Dataset:
    """An embedded dataset (``mnist-mini`` by default, or ``drones``) from ``path`` (default: where it is
    installed), after checking its content sha256."""
    spec = EMBEDDED_DATASETS[name]
    path = Path(path) if path is not None else embedded_path(name)
    if not path.is_file():
        raise DataNotFoundError(
            f"The embedded dataset {name} is missing at {path}; restore it from git or run resources/{spec.maker}."
        )
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in spec.keys}
    except (KeyError, ValueError, OSError, EOFError, zipfile.BadZipFile):
        raise ValueError(f"The embedded dataset {path} is corrupt (it cannot be read as {name}).") from None
    digest = _content_sha256(arrays, spec.keys)
    if spec.sha256 != digest:
        raise ValueError(
            f"The embedded dataset {path} is corrupt (content sha256 {digest[:12]}... does not "
            f"match the recorded {spec.sha256[:12]}...)."
        )
    if name == EMBEDDED_NAME:
        return Dataset(
            EMBEDDED_NAME,
            _to_float(arrays["train_images"]),
            torch.as_tensor(arrays["train_labels"].astype(np.int64)),
            _to_float(arrays["test_images"]),
            torch.as_tensor(arrays["test_labels"].astype(np.int64)),
            image_shape=tuple(arrays["train_images"].shape[1:]),
            source=str(path),
            scaling=dict(FIXED_255),
        )
    return dataset_from_arrays(
        path, name, *(arrays[k] for k in NPZ_KEYS), class_names=arrays["class_names"], source=str(path)
    )


def load_torchvision(name: str, data_dir: PathLike | None = None) -> Dataset:
    """Load an MNIST-family dataset from a root folder in torchvision's layout, without downloading."""
    import torchvision.datasets as tvd  # heavy: only the MNIST family needs it

    cls_name = TORCHVISION_DATASETS[name]
    root = resolve_data_root(data_dir)
    raw = root / cls_name / "raw"
    try:
        train = getattr(tvd, cls_name)(root=str(root), train=True, download=False)
        test = getattr(tvd, cls_name)(root=str(root), train=False, download=False)
    except RuntimeError as exc:  # torchvision: "Dataset not found. You can use download=True ..."
        raise DataNotFoundError(
            f"{cls_name} was not found in {raw}; run `rfexplorer-cli data fetch {name} --data-dir {root}` to get "
            f"it, or point --data-dir / ${DATA_ENV_VAR} at a folder that has it."
        ) from exc
    # MNIST's own names are "0 - zero" ...; the digits say it better. Fashion-MNIST and KMNIST keep theirs.
    names = tuple(str(c) for c in range(10)) if name == "mnist" else tuple(getattr(train, "classes", ()))
    return Dataset(
        name,
        _to_float(train.data),
        train.targets.to(torch.int64).clone(),
        _to_float(test.data),
        test.targets.to(torch.int64).clone(),
        image_shape=tuple(train.data.shape[1:]),
        class_names=names if len(names) == 10 else (),
        source=str(raw),
        scaling=dict(FIXED_255),
    )


def load_dataset(name_or_path: PathLike, data_dir: PathLike | None = None) -> Dataset:
    """Load a dataset by name (one of :data:`DATASET_NAMES`) or from a user file (a path ending in one of
    :data:`DATASET_FILE_SUFFIXES`); ``data_dir`` is where MNIST-family sets are looked for."""
    if isinstance(name_or_path, str) and name_or_path in EMBEDDED_DATASETS:
        return load_embedded(name=name_or_path)
    if isinstance(name_or_path, str) and name_or_path in TORCHVISION_DATASETS:
        return load_torchvision(name_or_path, data_dir)
    if has_dataset_suffix(name_or_path):
        return load_dataset_file(name_or_path)
    text = os.fspath(name_or_path)
    if not isinstance(name_or_path, str) or os.sep in text or Path(text).exists():
        return load_dataset_file(text)  # raises: not a supported file type
    raise ValueError(
        f"unknown dataset {text!r}; choose one of: {', '.join(DATASET_NAMES)}, or give the path of "
        f"a {', '.join(DATASET_FILE_SUFFIXES[:-1])} or {DATASET_FILE_SUFFIXES[-1]} file"
    )


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
