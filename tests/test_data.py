"""Data access: the embedded subset, full MNIST from ../shared/data, where data is looked for, clear errors."""
from pathlib import Path

import pytest
import torch

from engine import data

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def test_embedded_subset_is_class_balanced_mnist():
    ds = data.load_dataset("mnist-mini")
    assert ds.train_x.shape == (6000, 784) and ds.test_x.shape == (1000, 784)
    assert ds.train_x.dtype == torch.float32
    assert float(ds.train_x.min()) == 0.0 and float(ds.train_x.max()) == 1.0
    assert torch.bincount(ds.train_y).tolist() == [600] * 10
    assert torch.bincount(ds.test_y).tolist() == [100] * 10
    assert "6,000 train" in ds.describe()


def test_embedded_subset_checksum_is_verified(tmp_path):
    import numpy as np

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
    assert "mnist" in data.available_datasets(SHARED)


def test_missing_dataset_says_where_it_looked(tmp_path):
    with pytest.raises(data.DataNotFoundError) as err:
        data.load_dataset("fashion-mnist", tmp_path)
    msg = str(err.value)
    assert str(tmp_path / "FashionMNIST" / "raw") in msg and "download=True" in msg
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
