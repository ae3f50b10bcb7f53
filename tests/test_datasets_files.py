"""User dataset files (.npz, .csv, .h5): layouts, the power scaling, the .csv split, and one-sentence errors.

The fixtures are tests/data/dataset_*: ``dataset_bars.npz`` (3x4 uint8 images of vertical and horizontal bars,
with class_names and image_shape), ``dataset_spectra.csv`` (28 rows of 4 features and a label, with a header)
and ``dataset_tiny.h5`` (the X_train/Y_train/X_test/Y_test layout, float64, with class_names).
"""
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from engine import data
from engine.data import DatasetFileError

FIXTURES = Path(__file__).resolve().parent / "data"
BARS, SPECTRA, TINY_H5 = FIXTURES / "dataset_bars.npz", FIXTURES / "dataset_spectra.csv", FIXTURES / "dataset_tiny.h5"


def one_sentence(msg: str) -> bool:
    return msg.endswith(".") and "\n" not in msg and ". " not in msg


# ----------------------------------------------------------------------------------------------------------
# Files that load
# ----------------------------------------------------------------------------------------------------------

def test_npz_with_class_names_and_image_shape():
    ds = data.load_dataset(str(BARS))
    assert ds.name == "dataset_bars.npz" and ds.source == str(BARS)
    assert ds.train_x.shape == (16, 12) and ds.test_x.shape == (6, 12)
    assert ds.train_x.dtype == torch.float32 and ds.train_y.dtype == torch.int64
    assert ds.image_shape == (3, 4) and ds.class_names == ("vertical", "horizontal") and ds.n_classes == 2
    assert ds.scaling == {"method": "global-max", "min": 0.0, "max": 200.0, "test_clipped": 0}
    assert ds.describe() == "dataset_bars.npz: 16 train / 6 test images"
    with np.load(BARS) as z:
        assert torch.equal(ds.train_x, torch.from_numpy(z["train_x"].astype(np.float32) / 200))
        assert ds.test_y.tolist() == z["test_y"].tolist()
    assert data.load_dataset(BARS).class_names == ds.class_names, "a Path works as well as a str"


def test_npz_without_optional_arrays_gets_default_names_and_no_image_shape(tmp_path):
    path = save_npz(tmp_path)
    ds = data.load_dataset(path)
    assert ds.class_names == ("0", "1", "2") and ds.image_shape is None
    assert ds.describe() == "user.npz: 6 train / 3 test samples of 4 features"


def test_features_are_scaled_by_the_training_maximum_and_test_values_clipped(tmp_path):
    arrays = base_arrays()
    arrays["train_x"] = np.array([[0, 1, 2, 4]] * 6, dtype=np.float64)
    arrays["test_x"] = np.array([[0, 2, 8, 3]] * 3, dtype=np.float64)
    ds = data.load_dataset(save_npz(tmp_path, **arrays))
    assert ds.scaling == {"method": "global-max", "min": 0.0, "max": 4.0, "test_clipped": 3}
    assert ds.train_x[0].tolist() == [0.0, 0.25, 0.5, 1.0], "one global maximum: zero stays zero, ratios kept"
    assert ds.test_x[0].tolist() == [0.0, 0.5, 1.0, 0.75], "8 > 4 is clipped to 1"
    ints = dict(arrays, train_x=arrays["train_x"].astype(np.int32), test_x=arrays["test_x"].astype(np.uint8))
    assert torch.equal(data.load_dataset(save_npz(tmp_path, **ints)).train_x, ds.train_x)


def test_csv_has_an_optional_header_and_a_fixed_stratified_split():
    ds = data.load_dataset(str(SPECTRA))
    assert ds.name == "dataset_spectra.csv" and ds.n_classes == 3 and ds.image_shape is None
    assert len(ds.train_y) == 23 and len(ds.test_y) == 5
    assert "every 5th sample of each class" in ds.source
    # The rule, rebuilt from the file: within each class, in file order, samples 5, 10, 15, ... are test samples.
    rows = np.loadtxt(SPECTRA, delimiter=",", skiprows=1)
    seen: dict[int, int] = {}
    is_test = []
    for label in rows[:, -1].astype(int):
        seen[label] = seen.get(label, 0) + 1
        is_test.append(seen[label] % 5 == 0)
    is_test = np.array(is_test)
    top = rows[~is_test, :-1].max()
    assert ds.scaling == {"method": "global-max", "min": rows[~is_test, :-1].min(), "max": top, "test_clipped": 0}
    assert torch.allclose(ds.train_x, torch.from_numpy(rows[~is_test, :-1] / top).float())
    assert torch.allclose(ds.test_x, torch.from_numpy(rows[is_test, :-1] / top).float())
    assert ds.train_y.tolist() == rows[~is_test, -1].astype(int).tolist()
    assert ds.test_y.tolist() == rows[is_test, -1].astype(int).tolist() == [0, 1, 2, 0, 1]
    again = data.load_dataset(SPECTRA)
    assert torch.equal(again.train_x, ds.train_x) and torch.equal(again.test_y, ds.test_y)


def test_csv_without_header(tmp_path):
    path = tmp_path / "plain.csv"
    path.write_text("".join(f"{i % 3},{(i * 7) % 5},{i % 2}\n" for i in range(10)) + "\n")
    ds = data.load_dataset(path)
    assert (len(ds.train_y), len(ds.test_y)) == (8, 2) and ds.n_inputs == 2 and ds.class_names == ("0", "1")


def test_h5_in_the_groups_layout():
    pytest.importorskip("h5py")
    ds = data.load_dataset(str(TINY_H5))
    assert ds.name == "dataset_tiny.h5" and ds.class_names == ("a", "b", "c")
    assert ds.train_x.shape == (12, 5) and ds.test_x.shape == (3, 5) and ds.image_shape is None
    assert ds.train_y.tolist() == [0, 1, 2] * 4 and ds.test_y.tolist() == [2, 1, 0]
    assert ds.scaling["method"] == "global-max" and ds.scaling["max"] == 3.9871
    assert ds.scaling["test_clipped"] == 4 and float(ds.test_x.max()) == 1.0


def test_h5_without_h5py_says_to_install_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "h5py", None)
    with pytest.raises(DatasetFileError) as err:
        data.load_dataset(TINY_H5)
    assert str(err.value) == (f"Reading the HDF5 dataset file {TINY_H5} needs h5py, which is not installed; "
                              f"install the h5 extra: pip install 'rfexplorer[h5]'.")


def test_names_paths_and_suffixes(tmp_path, monkeypatch):
    assert data.has_dataset_suffix("x.npz") and data.has_dataset_suffix(Path("a/b.CSV"))
    assert data.has_dataset_suffix("c.hdf5")
    assert not data.has_dataset_suffix("mnist") and not data.has_dataset_suffix("drones")
    monkeypatch.chdir(FIXTURES)
    assert data.load_dataset("dataset_bars.npz").source == str(BARS), "relative paths are from the cwd"
    with pytest.raises(data.DataNotFoundError) as err:
        data.load_dataset(tmp_path / "nothing.npz")
    assert str(err.value) == f"Dataset file {tmp_path / 'nothing.npz'} does not exist."
    (tmp_path / "notes.txt").write_text("1,2,0\n")
    with pytest.raises(DatasetFileError) as err:
        data.load_dataset(str(tmp_path / "notes.txt"))
    assert str(err.value) == f"Dataset file {tmp_path / 'notes.txt'} is not a .npz, .csv, .h5 or .hdf5 file."
    (tmp_path / "folder.npz").mkdir()
    with pytest.raises(DatasetFileError, match="is a folder, not a file"):
        data.load_dataset(tmp_path / "folder.npz")
    with pytest.raises(ValueError, match="unknown dataset 'cifar'.*or give the path of a .npz, .csv, .h5 or .hdf5"):
        data.load_dataset("cifar")
    assert issubclass(DatasetFileError, ValueError)


# ----------------------------------------------------------------------------------------------------------
# Malformed files: each is one sentence naming the file and the problem
# ----------------------------------------------------------------------------------------------------------

def base_arrays() -> dict:
    rng = np.random.default_rng(0)
    return {"train_x": rng.uniform(0, 2, (6, 4)), "train_y": np.array([0, 1, 2, 0, 1, 2]),
            "test_x": rng.uniform(0, 2, (3, 4)), "test_y": np.array([0, 1, 2])}


def save_npz(tmp_path, name="user.npz", **arrays) -> Path:
    arrays = {**base_arrays(), **arrays}
    path = tmp_path / name
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return path


def nan_at(key, r, c, value=np.nan):
    a = base_arrays()[key].copy()
    a[r, c] = value
    return a


NPZ_ERRORS = [
    ("missing array", {"test_y": None},
     "has no array named test_y (it needs train_x, train_y, test_x and test_y)"),
    ("missing arrays", {"test_x": None, "test_y": None},
     "has no arrays named test_x and test_y (it needs train_x, train_y, test_x and test_y)"),
    ("x and y lengths", {"train_y": np.array([0, 1, 2, 0, 1])}, "has 6 samples in train_x but 5 labels in train_y"),
    ("feature counts", {"test_x": np.ones((3, 5))}, "has 4 features per sample in train_x but 5 in test_x"),
    ("3-D x", {"train_x": np.ones((6, 2, 2))},
     "has train_x of shape (6, 2, 2), but it must be 2-D (samples x features)"),
    ("1-D x", {"test_x": np.ones(3)}, "has test_x of shape (3,), but it must be 2-D (samples x features)"),
    ("2-D labels", {"train_y": np.eye(3)[[0, 1, 2, 0, 1, 2]]},
     "has train_y of shape (6, 3), but labels must be a 1-D array of class numbers"),
    ("NaN", {"train_x": nan_at("train_x", 2, 1)}, "has a NaN at train_x[2, 1]"),
    ("infinity", {"test_x": nan_at("test_x", 0, 3, np.inf)}, "has an infinite value at test_x[0, 3]"),
    ("negative feature", {"train_x": nan_at("train_x", 1, 0, -0.5)},
     "has a negative value (-0.5) at train_x[1, 0], but features are input powers and must be at least 0"),
    ("text features", {"train_x": np.full((6, 4), "abc")}, "has values in train_x that are not numbers (dtype <U3)"),
    ("fractional label", {"train_y": np.array([0, 1, 2.5, 0, 1, 2])},
     "has a label that is not an integer (2.5) at train_y[2]"),
    ("NaN label", {"test_y": np.array([0, np.nan, 2])}, "has a label that is not an integer (nan) at test_y[1]"),
    ("text labels", {"train_y": np.array(list("abcabc"))}, "has labels in train_y that are not integers (dtype <U1)"),
    ("negative label", {"test_y": np.array([-1, 1, 2])},
     "has the label -1 at test_y[0], outside the class numbers 0…C−1"),
    ("one class", {"train_y": np.zeros(6, int), "test_y": np.zeros(3, int)},
     "has only one class (all labels are 0), but at least 2 are needed"),
    ("one training class", {"train_y": np.ones(6, int)}, "has only one class in train_y, but at least 2 are needed"),
    ("class without training samples", {"train_y": np.array([0, 0, 2, 0, 0, 2])},
     "has labels up to 2 but no training sample of class 1; labels must number the classes 0…C−1 and every class "
     "needs training samples"),
    ("stray huge label", {"test_y": np.array([0, 1, 10**12])},
     "has labels up to 1000000000000 but no training sample of class 3; labels must number the classes 0…C−1 and "
     "every class needs training samples"),
    ("class_names length", {"class_names": np.array(["a", "b"])},
     "has 2 class_names but its labels number 3 classes (0…2)"),
    ("class_names not strings", {"class_names": np.array([1, 2, 3])},
     "has class_names that are not a 1-D array of strings"),
    ("class_names as objects", {"class_names": np.array(["a", "b", "c"], dtype=object)},
     "has an array class_names of Python objects, which is not loaded (pickle is off); save it as a numeric or "
     "fixed-width string array"),
    ("image_shape product", {"image_shape": np.array([3, 2])},
     "has image_shape 3x2 = 6 pixels, but its samples have 4 features"),
    ("image_shape size", {"image_shape": np.array([1, 2, 2])},
     "has image_shape [1, 2, 2], but it must be 2 positive integers (rows, columns)"),
    ("empty test set", {"test_x": np.zeros((0, 4)), "test_y": np.zeros(0, int)},
     "has an empty test set (test_x has no rows)"),
    ("empty training set", {"train_x": np.zeros((0, 4)), "train_y": np.zeros(0, int)},
     "has an empty training set (train_x has no rows)"),
    ("no features", {"train_x": np.zeros((6, 0)), "test_x": np.zeros((3, 0))},
     "has no features in train_x (0 columns)"),
    ("all zeros", {"train_x": np.zeros((6, 4))}, "has only zeros in train_x, so there is no input power to scale by"),
]


@pytest.mark.parametrize("arrays, problem", [c[1:] for c in NPZ_ERRORS], ids=[c[0] for c in NPZ_ERRORS])
def test_malformed_npz_is_named_in_one_sentence(tmp_path, arrays, problem):
    path = save_npz(tmp_path, **arrays)
    with pytest.raises(DatasetFileError) as err:
        data.load_dataset(path)
    assert str(err.value) == f"Dataset file {path} {problem}."
    assert one_sentence(str(err.value))


def test_files_that_are_not_npz_archives(tmp_path):
    text = tmp_path / "text.npz"
    text.write_text("train_x,train_y\n1,0\n")
    one = tmp_path / "one.npz"
    with open(one, "wb") as fh:
        np.save(fh, np.ones((3, 3)))
    cut = tmp_path / "cut.npz"
    cut.write_bytes(BARS.read_bytes()[:700])
    for path, problem in ((text, "is not a readable .npz archive"),
                          (one, "holds a single array, not an .npz archive of named arrays"),
                          (cut, "is not a readable .npz archive")):
        with pytest.raises(DatasetFileError) as err:
            data.load_dataset(path)
        assert str(err.value) == f"Dataset file {path} {problem}."


CSV_ERRORS = [
    ("not a number", "a,b,label\n1,2,0\n1,abc,1\n", "has 'abc' at line 3, column 2, which is not a number"),
    ("ragged rows", "1,2,0\n1,2,1\n3,1\n", "has 2 columns at line 3 but 3 at line 1"),
    ("header width", "a,b,c,label\n1,2,0\n", "has 3 columns at line 2 but 4 at line 1"),
    ("one column", "0\n1\n", "has a single column, but it needs features and then the label in the last column"),
    ("header only", "a,b,label\n\n", "has no samples"),
    ("empty", "", "has no samples"),
    ("negative feature", "1,2,0\n1,-1,1\n", "has a negative value (-1) at line 2, column 2, but features are input "
                                           "powers and must be at least 0"),
    ("NaN", "1,2,0\nnan,1,1\n", "has a NaN at line 2, column 1"),
    ("fractional label", "1,2,0\n1,1,1.5\n", "has a label that is not an integer (1.5) at line 2, last column"),
    ("negative label", "1,2,0\n1,1,-2\n",
     "has the label -2 at line 2, last column, outside the class numbers 0…C−1"),
    ("too few for a test set", "1,2,0\n1,1,1\n2,1,1\n",
     "has too few samples for a test set: every 5th sample of each class is held out for testing, and no class "
     "has 5"),
    ("one class", "".join(f"{i},1,0\n" for i in range(10)),
     "has only one class (all labels are 0), but at least 2 are needed"),
]


@pytest.mark.parametrize("text, problem", [c[1:] for c in CSV_ERRORS], ids=[c[0] for c in CSV_ERRORS])
def test_malformed_csv_is_named_in_one_sentence(tmp_path, text, problem):
    path = tmp_path / "user.csv"
    path.write_text(text)
    with pytest.raises(DatasetFileError) as err:
        data.load_dataset(path)
    assert str(err.value) == f"Dataset file {path} {problem}."
    assert one_sentence(str(err.value))


def test_csv_that_is_not_text(tmp_path):
    path = tmp_path / "binary.csv"
    path.write_bytes(BARS.read_bytes())
    with pytest.raises(DatasetFileError) as err:
        data.load_dataset(path)
    assert str(err.value) == f"Dataset file {path} is not a UTF-8 text file."


def test_malformed_h5(tmp_path):
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "partial.h5"
    with h5py.File(path, "w") as f:
        f["X_train"], f["Y_train"], f["X_test"] = np.ones((4, 2)), np.array([0, 1, 0, 1]), np.ones((2, 2))
    with pytest.raises(DatasetFileError) as err:
        data.load_dataset(path)
    assert str(err.value) == (f"Dataset file {path} has no array named Y_test (it needs X_train, Y_train, X_test "
                              f"and Y_test).")
    with h5py.File(path, "a") as f:
        f["Y_test"] = np.array([0, 1, 2])
    with pytest.raises(DatasetFileError) as err:
        data.load_dataset(path)
    assert str(err.value) == f"Dataset file {path} has 2 samples in X_test but 3 labels in Y_test."
    text = tmp_path / "text.hdf5"
    text.write_text("not hdf5")
    with pytest.raises(DatasetFileError) as err:
        data.load_dataset(text)
    assert str(err.value) == f"Dataset file {text} is not a readable HDF5 file."
