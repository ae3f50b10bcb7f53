"""Data access: the embedded sets (mnist-mini, drones), full MNIST from ../shared/data, where data is looked
for, clear errors. User dataset files are tested in test_datasets_files.py."""
import sys
from pathlib import Path

import numpy as np

import pytest
import torch

from engine import data

from engine.data import named as datasets

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def test_embedded_subset_is_class_balanced_mnist():
    ds = data.load_dataset("mnist-mini")
    assert ds.train_x.shape == (6000, 784) and ds.test_x.shape == (1000, 784)
    assert ds.train_x.dtype == torch.float32
    assert float(ds.train_x.min()) == 0.0 and float(ds.train_x.max()) == 1.0
    assert torch.bincount(ds.train_y).tolist() == [600] * 10
    assert torch.bincount(ds.test_y).tolist() == [100] * 10
    assert ds.describe() == "mnist-mini: 6,000 train / 1,000 test images"
    assert ds.image_shape == (28, 28) and ds.n_inputs == 784
    assert ds.class_names == tuple("0123456789") and ds.n_classes == 10
    assert ds.scaling == {"method": "fixed", "max": 255}, "uint8 images keep /255, so their numbers never change"


def test_embedded_subset_checksum_is_verified(tmp_path):
    with np.load(data.EMBEDDED_PATH) as z:
        arrays = {k: z[k].copy() for k in z.files}
    arrays["train_images"][0, 0, 0] ^= 1
    bad = tmp_path / "mini.npz"
    np.savez_compressed(bad, **arrays)
    with pytest.raises(ValueError, match="corrupt"):
        data.load_embedded(bad)


@pytest.mark.skipif(not (SHARED / "MNIST" / "raw").is_dir(), reason="full MNIST not present")
def test_full_mnist_loads_from_shared_folder():
    ds = data.load_dataset("mnist", SHARED)
    assert len(ds.train_y) == 60000 and len(ds.test_y) == 10000
    assert ds.train_x.shape[1] == 784 and ds.train_x.dtype == torch.float32
    assert ds.image_shape == (28, 28) and ds.class_names == tuple("0123456789")
    assert ds.scaling == {"method": "fixed", "max": 255}
    assert "mnist" in data.available_datasets(SHARED)


def test_missing_dataset_says_where_it_looked(tmp_path):
    with pytest.raises(data.DataNotFoundError) as err:
        data.load_dataset("fashion-mnist", tmp_path)
    msg = str(err.value)
    assert str(tmp_path / "FashionMNIST" / "raw") in msg and "rfexplorer-cli data fetch fashion-mnist" in msg
    assert not any(tmp_path.iterdir()), "loading must never download or write"


def test_data_root_resolution_order(monkeypatch, tmp_path):
    monkeypatch.setenv(data.DATA_ENV_VAR, str(tmp_path / "env"))
    assert data.resolve_data_root(tmp_path / "arg") == tmp_path / "arg"
    assert data.resolve_data_root() == tmp_path / "env"
    monkeypatch.delenv(data.DATA_ENV_VAR)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert data.resolve_data_root() == tmp_path / "xdg" / "rfexplorer" / "data"


def test_unknown_dataset_is_rejected():
    with pytest.raises(ValueError, match="unknown dataset"):
        data.load_dataset("cifar")


def test_validation_split_is_disjoint_and_from_training_set():
    ds = data.load_dataset("mnist-mini")
    val = ds.validation_split(0.1, seed=3)
    assert len(val.test_y) == 600 and len(val.train_y) == 5400
    rows = lambda x: {bytes((r * 255).round().to(torch.uint8).tolist()) for r in x}  # noqa: E731
    held_out, kept, original = rows(val.test_x), rows(val.train_x), rows(ds.train_x)
    assert held_out <= original and not (held_out & kept)
    assert not (held_out & rows(ds.test_x)), "validation must come from the training set, not the test set"
    assert torch.equal(ds.validation_split(0.1, seed=3).test_y, val.test_y)
    assert (val.image_shape, val.class_names, val.scaling) == (ds.image_shape, ds.class_names, ds.scaling)


DRONE_CLASSES = ("dx4e", "dx6i", "MTx", "Nineeg", "Parrot", "q205", "S500", "tello", "WiFi", "wltoys")


def test_drones_are_embedded_and_load_without_h5py(monkeypatch):
    monkeypatch.setitem(sys.modules, "h5py", None)  # any "import h5py" now fails
    ds = data.load_dataset("drones")
    assert ds.name == "drones" and ds.source == str(data.DRONES_PATH)
    assert ds.train_x.shape == (702, 256) and ds.test_x.shape == (298, 256)
    assert ds.train_x.dtype == torch.float32 and ds.train_y.dtype == torch.int64
    assert ds.image_shape is None and ds.n_inputs == 256
    assert ds.class_names == DRONE_CLASSES and ds.n_classes == 10
    assert torch.bincount(ds.train_y).tolist() == [72, 68, 77, 68, 73, 66, 64, 73, 73, 68]
    assert torch.bincount(ds.test_y).tolist() == [28, 32, 23, 32, 27, 34, 36, 27, 27, 32]
    assert ds.describe() == "drones: 702 train / 298 test samples of 256 features"
    # Global-max scaling: the training maximum becomes 1, the test values above it are clipped to 1.
    assert ds.scaling["method"] == "global-max" and ds.scaling["test_clipped"] == 3
    assert abs(ds.scaling["max"] - 0.98813) < 1e-5 and abs(ds.scaling["min"] - 0.0011029) < 1e-6
    assert float(ds.train_x.max()) == 1.0 and float(ds.test_x.max()) == 1.0
    assert float(ds.train_x.min()) > 0.0
    with np.load(data.DRONES_PATH) as z:  # the file keeps the source's values; scaling happens on load
        raw = z["train_x"]
        assert raw.dtype == np.float32 and z["train_y"].dtype == np.uint8 and "image_shape" not in z.files
    assert torch.allclose(ds.train_x, torch.from_numpy(raw) / ds.scaling["max"])
    val = ds.validation_split(0.1)
    assert val.class_names == DRONE_CLASSES and val.image_shape is None and val.scaling == ds.scaling
    assert val.describe().startswith("drones-val: 632 train / 70 test samples")


def test_drones_checksum_is_verified(tmp_path):
    with np.load(data.DRONES_PATH) as z:
        arrays = {k: z[k].copy() for k in z.files}
    arrays["test_x"][5, 17] *= 1.001
    bad = tmp_path / "drones.npz"
    np.savez_compressed(bad, **arrays)
    with pytest.raises(ValueError, match="corrupt"):
        data.load_embedded(bad, name="drones")
    assert datasets._content_sha256(arrays, data.DRONES_KEYS) != data.DRONES_CONTENT_SHA256


def test_every_named_dataset_is_registered_and_embedded_ones_are_available(tmp_path):
    assert data.DATASET_NAMES == ("mnist-mini", "mnist", "fashion-mnist", "kmnist", "drones")
    assert data.available_datasets(tmp_path) == ["mnist-mini", "drones"]
    assert data.EMBEDDED_PATH.is_file() and data.DRONES_PATH.is_file()
    assert data.EMBEDDED_PATH.parent == data.embedded_data_dir()


def test_dataset_defaults_class_names_from_labels():
    x = torch.zeros(4, 3)
    ds = data.Dataset("t", x, torch.tensor([0, 1, 2, 1]), x[:2], torch.tensor([3, 0]))
    assert ds.class_names == ("0", "1", "2", "3") and ds.n_classes == 4
    assert ds.image_shape is None and ds.scaling == {}
    assert ds.describe() == "t: 4 train / 2 test samples of 3 features"


def test_the_source_trees_resources_folder_is_found_from_the_data_package():
    """RESOURCES_DIR (the fallback when the embedded datasets are not installed as a package) names the
    repository's resources/ folder, wherever the data modules sit in engine/."""
    from engine.data.named import RESOURCES_DIR

    assert (RESOURCES_DIR / "data" / "mnist-mini.npz").is_file(), RESOURCES_DIR
