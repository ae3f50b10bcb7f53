"""Untrusted dataset files (issue #19): what a file declares is checked against engine.core.limits before anything is
allocated, an HDF5 file is read as data only, class names are checked at load time, and odd files get the right
words. Every test reproduces a finding of the fuzz campaign through ``rfexplorer-cli train``.

The refusals' cost is measured in a child process (time of the call, and peak RSS through RUSAGE_CHILDREN above
the child's own baseline after its imports): each must take < 2 s and < 500 MB.
"""
import json
import os
import struct
import subprocess
import sys
import threading
import zlib
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from engine import data

from engine.io import results
from engine.data import DatasetFileError
from engine.core.limits import FileLimits

REPO = Path(__file__).resolve().parent.parent
MAX_SECONDS, MAX_RSS = 2.0, 500 * 1024**2


def base_arrays() -> dict:
    rng = np.random.default_rng(0)
    return {"train_x": rng.uniform(0, 2, (6, 4)), "train_y": np.array([0, 1, 2, 0, 1, 2]),
            "test_x": rng.uniform(0, 2, (3, 4)), "test_y": np.array([0, 1, 2])}


def save_npz(path: Path, **arrays) -> Path:
    np.savez(path, **{k: v for k, v in {**base_arrays(), **arrays}.items() if v is not None})
    return path


def refusal(path, **kw) -> str:
    with pytest.raises(DatasetFileError) as err:
        data.load_dataset_file(path, **kw)
    msg = str(err.value)
    assert msg.startswith("Dataset file ") and msg.endswith(".") and "\n" not in msg and ". " not in msg, msg
    return msg


# ----------------------------------------------------------------------------------------------------------
# Hand-made .npz archives: any .npy header, and a deflate bomb built without compressing gigabytes
# ----------------------------------------------------------------------------------------------------------

def npy_header(descr: str, shape_text: str) -> bytes:
    """A version 1.0 .npy header with the shape written as given (it may be negative or huge)."""
    text = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_text}, }}"
    text += " " * (-(10 + len(text) + 1) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode("latin1")


def npy_bytes(a: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


def write_zip(path: Path, members: list) -> Path:
    """A zip of (name, deflated bytes, crc32, uncompressed size) members, written by hand (no zip64)."""
    out, central = bytearray(), bytearray()
    for name, packed, crc, size in members:
        raw = name.encode()
        central += struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, 8, 0, 0, crc, len(packed), size, len(raw),
                               0, 0, 0, 0, 0, len(out)) + raw
        out += struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 8, 0, 0, crc, len(packed), size, len(raw), 0) + raw
        out += packed
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(members), len(members), len(central), len(out), 0)
    path.write_bytes(bytes(out + central + end))
    return path


def deflated(payload: bytes) -> tuple:
    co = zlib.compressobj(6, zlib.DEFLATED, -15)
    return co.compress(payload) + co.flush(), zlib.crc32(payload), len(payload)


def zero_bomb(header: bytes, megabytes: int) -> tuple:
    """(deflated, crc32, size) of ``header`` then ``megabytes`` MiB of zeros: one full-flush deflate block of
    1 MiB of zeros is independent of what precedes it, so it is repeated instead of compressed again."""
    zeros = bytes(1 << 20)
    co = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = co.compress(header) + co.flush(zlib.Z_FULL_FLUSH)
    piece = co.compress(zeros) + co.flush(zlib.Z_FULL_FLUSH)
    tail = co.flush()  # the final (empty) block
    crc = zlib.crc32(header)
    for _ in range(megabytes):
        crc = zlib.crc32(zeros, crc)
    return head + piece * megabytes + tail, crc, len(header) + megabytes * (1 << 20)


def npz_with(path: Path, **members) -> Path:
    """The base arrays as an .npz archive, with some members replaced by raw (deflated, crc, size) tuples."""
    arrays = {k: deflated(npy_bytes(v)) for k, v in base_arrays().items()}
    arrays.update(members)
    return write_zip(path, [(k + ".npy", *v) for k, v in arrays.items()])


def test_the_hand_made_bomb_is_a_valid_zip_that_numpy_reads(tmp_path):
    """The builder is checked on a small bomb: numpy reads it as the zeros it declares."""
    path = npz_with(tmp_path / "small.npz", train_x=zero_bomb(npy_header("<f8", "(32768, 4)"), 1))
    with zipfile.ZipFile(path) as z:
        assert z.testzip() is None
    with np.load(path) as z:
        assert z["train_x"].shape == (32768, 4) and not z["train_x"].any()


# ----------------------------------------------------------------------------------------------------------
# Corrupt .npy headers get the right words
# ----------------------------------------------------------------------------------------------------------

def test_huge_shape_in_an_npy_header_names_the_limit(tmp_path):
    path = npz_with(tmp_path / "huge.npz", train_x=deflated(npy_header("<f8", "(1099511627776, 4)") + bytes(64)))
    assert refusal(path) == (f"Dataset file {path} declares 1,099,511,627,776 samples in train_x, over the limit "
                             f"max_samples = 10,000,000 (set RFEXPLORER_LIMIT_MAX_SAMPLES to raise it).")


def test_negative_shape_in_an_npy_header_says_the_header_is_damaged(tmp_path):
    path = npz_with(tmp_path / "neg.npz", test_x=deflated(npy_header("<f8", "(-5, 4)") + bytes(64)))
    assert refusal(path) == (f"Dataset file {path} has a damaged .npy header in its array test_x (it declares the "
                             f"negative shape (-5, 4)).")


def test_unparsable_npy_header_says_the_header_is_damaged(tmp_path):
    bad = npy_header("<f8", "(6, 4)").replace(b"'shape'", b"'sh@pe'")
    path = npz_with(tmp_path / "garbled.npz", train_x=deflated(bad + bytes(6 * 4 * 8)))
    assert refusal(path) == f"Dataset file {path} has a damaged .npy header in its array train_x."


def test_header_declaring_more_data_than_the_member_holds(tmp_path):
    path = npz_with(tmp_path / "short.npz", train_x=deflated(npy_header("<f8", "(6, 4)") + bytes(100)))
    assert refusal(path) == (f"Dataset file {path} has a damaged array train_x: its header declares shape (6, 4) "
                             f"of 192 bytes but it holds 100.")


def test_object_arrays_are_refused_from_the_header(tmp_path):
    path = npz_with(tmp_path / "obj.npz", train_y=deflated(npy_header("|O", "(6,)") + bytes(48)))
    assert "train_y of Python objects, which is not loaded (pickle is off)" in refusal(path)


# ----------------------------------------------------------------------------------------------------------
# Limits: declared sizes refused before allocation, from the defaults, a FileLimits or the environment
# ----------------------------------------------------------------------------------------------------------

def test_declared_uncompressed_size_is_checked_against_max_array_bytes(tmp_path):
    path = npz_with(tmp_path / "bomb.npz", train_x=zero_bomb(npy_header("<f8", "(32768, 4)"), 1))
    msg = refusal(path, limits=FileLimits(max_array_bytes=1 << 20))
    # 1,048,744 bytes stored, plus the float32 features train_x and test_x become (524,288 + 48 bytes)
    assert msg == (f"Dataset file {path} would take 1,573,080 bytes once loaded (arrays and their float32 "
                   f"features), over the limit max_array_bytes = 1,048,576 (set RFEXPLORER_LIMIT_MAX_ARRAY_BYTES "
                   f"to raise it).")


def test_bzip2_and_lzma_members_are_not_inflated(tmp_path):
    """zipfile bounds each read of a deflated member, but inflates a bzip2 or lzma chunk whole: a 4 KB bzip2
    chunk of zeros can be gigabytes, so such members are refused unopened."""
    path = tmp_path / "bz.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_BZIP2) as z:
        for k, v in base_arrays().items():
            z.writestr(k + ".npy", npy_bytes(v))
    assert refusal(path) == (f"Dataset file {path} has its array train_x compressed with method 12, but only stored "
                             f"or deflated arrays are read (numpy's savez or savez_compressed).")


def test_archive_member_count_is_checked_before_the_directory_is_read(tmp_path):
    path = save_npz(tmp_path / "many.npz", extra_1=np.zeros(1), extra_2=np.zeros(1))
    assert data.load_dataset_file(path, limits=FileLimits(max_archive_members=6)).n_classes == 3
    assert refusal(path, limits=FileLimits(max_archive_members=5)) == (
        f"Dataset file {path} declares 6 archive members, over the limit max_archive_members = 5 (set "
        f"RFEXPLORER_LIMIT_MAX_ARCHIVE_MEMBERS to raise it).")


def test_limits_come_from_the_environment(tmp_path, monkeypatch):
    path = save_npz(tmp_path / "ok.npz")
    assert data.load_dataset_file(path).n_inputs == 4
    monkeypatch.setenv("RFEXPLORER_LIMIT_MAX_FEATURES", "3")
    assert "over the limit max_features = 3 (set RFEXPLORER_LIMIT_MAX_FEATURES" in refusal(path)


@pytest.mark.parametrize("limits, words", [
    (FileLimits(max_samples=5), "declares 6 samples in train_x, over the limit max_samples = 5"),
    (FileLimits(max_features=3), "declares 4 features per sample in train_x, over the limit max_features = 3"),
    (FileLimits(max_classes=2), "declares 3 class_names, over the limit max_classes = 2"),
    (FileLimits(max_class_name_chars=4), "declares class names of up to 5 characters, over the limit "
                                         "max_class_name_chars = 4"),
])
def test_each_npz_limit_is_named(tmp_path, limits, words):
    path = save_npz(tmp_path / "names.npz", class_names=np.array(["one", "two", "three"]))
    assert words in refusal(path, limits=limits)


def test_csv_byte_size_is_checked_before_reading(tmp_path):
    path = tmp_path / "big.csv"
    path.write_text("1,2,0\n")
    assert "has 6 bytes, over the limit max_csv_bytes = 5" in refusal(path, limits=FileLimits(max_csv_bytes=5))


def test_csv_rows_and_columns_are_bounded_while_parsing(tmp_path):
    wide = tmp_path / "wide.csv"
    wide.write_text(",".join(["1"] * 12) + "\n")
    assert ("has 11 feature columns at line 1, over the limit max_features = 10"
            in refusal(wide, limits=FileLimits(max_features=10)))
    long_line = tmp_path / "long.csv"
    long_line.write_text("1,0\n" + "7" * 5000 + "\n")
    assert ("has a record of more than 352 characters at line 2 (at most 32 per column of the limit max_features = "
            "10; set RFEXPLORER_LIMIT_MAX_FEATURES to raise it)"
            in refusal(long_line, limits=FileLimits(max_features=10)))
    tall = tmp_path / "tall.csv"
    tall.write_text("".join(f"{i},{i % 2}\n" for i in range(50)))
    assert ("has more than 20 rows (two splits of max_samples), over the limit max_samples = 10"
            in refusal(tall, limits=FileLimits(max_samples=10)))
    quoted = tmp_path / "quoted.csv"
    quoted.write_text('"a","b"\n' + "".join(f'"{i}","{i % 2}"\n' for i in range(50)))
    assert "has more than 20 rows" in refusal(quoted, limits=FileLimits(max_samples=10)), "the csv-module path too"


def test_csv_fast_and_slow_paths_give_the_same_numbers(tmp_path):
    """Plain lines go through numpy's reader, quoted or odd ones through the csv module: same values, bit for
    bit, as float() of each field, and the same line numbers in messages."""
    rng = np.random.default_rng(3)
    values = rng.uniform(0, 10, (40, 3))
    text = "".join(",".join(repr(float(v))[:int(rng.integers(3, 19))] for v in row) + f",{i % 2}\n"
                   for i, row in enumerate(values))
    plain, quoted = tmp_path / "plain.csv", tmp_path / "quoted.csv"
    plain.write_text("a,b,c,label\n" + text)
    quoted.write_text('"a","b","c","label"\n' + text.replace("\n", "\n\n").replace(",1\n", ',"1"\n'))
    expected = np.array([[float(f) for f in line.split(",")] for line in text.splitlines()])
    for path in (plain, quoted):
        ds = data.load_dataset_file(path)
        test = np.zeros(40, bool)
        for c in (0, 1):
            test[np.flatnonzero(expected[:, -1] == c)[4::5]] = True
        top = expected[~test, :-1].max()
        assert torch.equal(ds.train_x, torch.from_numpy(np.minimum(expected[~test, :-1] / top, 1).astype(np.float32)))
        assert ds.test_y.tolist() == expected[test, -1].astype(int).tolist()
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b,label\n" + "1,2,0\n" * 9000 + "1,x,1\n")
    assert "has 'x' at line 9002, column 2, which is not a number" in refusal(bad)


# ----------------------------------------------------------------------------------------------------------
# HDF5: data only (no external storage, external links or virtual datasets; soft links inside the file only)
# ----------------------------------------------------------------------------------------------------------

def h5_base(f, skip=()) -> None:
    for k, v in zip(data.H5_KEYS, base_arrays().values()):
        if k not in skip:
            f[k] = v


SECRET = b"SECRETAAASECRETBBBSECRETCCC"  # three distinct 9-byte "class names"


@pytest.fixture
def hp():
    return pytest.importorskip("h5py")


def test_external_storage_does_not_disclose_another_file(tmp_path, hp):
    secret = tmp_path / "secret.txt"
    secret.write_bytes(SECRET)
    leak = tmp_path / "leak.h5"
    with hp.File(leak, "w") as f:
        h5_base(f)
        f.create_dataset("class_names", shape=(3,), dtype="S9", external=[(str(secret), 0, len(SECRET))])
    msg = refusal(leak)
    assert msg == (f"Dataset file {leak} has class_names stored in external files, which are not read; store the "
                   f"data in the file itself.")
    out = tmp_path / "net.json"
    run = subprocess.run([sys.executable, "-m", "engine.cli", "train", "--dataset", str(leak), "--epochs", "1",
                          "-K", "2", "--export", str(out), "--quiet"], cwd=REPO, capture_output=True, timeout=300)
    assert run.returncode == 2, run.stderr[-2000:]
    assert not out.exists() and not any(tmp_path.glob("net*"))
    for part in (SECRET, SECRET[:9], SECRET[9:18], SECRET[18:]):
        assert part not in run.stdout + run.stderr and part.decode() not in msg


def test_external_link_and_links_through_one_are_not_followed(tmp_path, hp):
    other = tmp_path / "other.h5"
    with hp.File(other, "w") as f:
        h5_base(f)
    direct, through = tmp_path / "direct.h5", tmp_path / "through.h5"
    with hp.File(direct, "w") as f:
        h5_base(f, skip=("X_train",))
        f["X_train"] = hp.ExternalLink(str(other), "/X_train")
    with hp.File(through, "w") as f:
        h5_base(f, skip=("X_train",))
        f["grp"] = hp.ExternalLink(str(other), "/")
        f["X_train"] = hp.SoftLink("/grp/X_train")
    for path in (direct, through):
        assert refusal(path) == (f"Dataset file {path} has X_train as an external link to another file ({other}), "
                                 f"which is not followed; store the data in the file itself.")


def test_virtual_dataset_is_refused(tmp_path, hp):
    other = tmp_path / "other.h5"
    with hp.File(other, "w") as f:
        h5_base(f)
    layout = hp.VirtualLayout(shape=(6, 4), dtype="f8")
    layout[:] = hp.VirtualSource(str(other), "X_train", shape=(6, 4))
    path = tmp_path / "virtual.h5"
    with hp.File(path, "w") as f:
        h5_base(f, skip=("X_train",))
        f.create_virtual_dataset("X_train", layout)
    assert "has X_train as a virtual dataset (data mapped from other files), which is not read" in refusal(path)


def test_soft_links_inside_the_file_are_followed_and_loops_end_in_a_sentence(tmp_path, hp):
    good, loop = tmp_path / "soft.h5", tmp_path / "loop.h5"
    with hp.File(good, "w") as f:
        h5_base(f, skip=("X_train",))
        f["data/train"] = base_arrays()["train_x"]
        f["alias"] = hp.SoftLink("data")
        f["X_train"] = hp.SoftLink("/alias/train")
    assert torch.equal(data.load_dataset_file(good).train_x,
                       torch.from_numpy((base_arrays()["train_x"] / base_arrays()["train_x"].max()).astype(np.float32)))
    with hp.File(loop, "w") as f:
        h5_base(f, skip=("X_train",))
        f["X_train"] = hp.SoftLink("/a")
        f["a"] = hp.SoftLink("/X_train")
    assert refusal(loop) == (f"Dataset file {loop} has a soft-link loop (or a chain of more than 16 soft links) at "
                             f"X_train.")


def test_h5_declared_shapes_and_vlen_names_are_bounded(tmp_path, hp):
    huge, names = tmp_path / "huge.h5", tmp_path / "names.h5"
    with hp.File(huge, "w") as f:
        h5_base(f, skip=("X_test",))
        f.create_dataset("X_test", shape=(2**31, 4), dtype="f8", chunks=(1024, 4))  # no data written
    assert "declares 2,147,483,648 samples in X_test, over the limit max_samples = 10,000,000" in refusal(huge)
    with hp.File(names, "w") as f:
        h5_base(f)
        f["class_names"] = np.array([b"a", b"b" * 5000, b"c"], dtype=hp.string_dtype())
    assert ("has a class name of 5,000 bytes at class_names[1], over the limit max_class_name_chars = 200"
            in refusal(names, limits=FileLimits(max_class_name_chars=200)))
    with hp.File(names, "a") as f:
        del f["class_names"]
        f["class_names"] = np.array([b"a", b"b", b"a"], dtype=hp.string_dtype())
    assert "has the class name 'a' twice (class_names[0] and class_names[2])" in refusal(names)


# ----------------------------------------------------------------------------------------------------------
# Class names and file names that would break a run later (at --export, after training)
# ----------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("names, words", [
    (["a", "a", "b"], "has the class name 'a' twice (class_names[0] and class_names[1]), but class names must be "
                      "distinct"),
    (["a", "", "b"], "has an empty class name at class_names[1], but every class needs a name"),
    (["a", "   ", "b"], "has an empty class name at class_names[1], but every class needs a name"),
    (["a", "b\nc", "d"], "has a class name with a control or unprintable character at class_names[1] ('b\\nc')"),
    (["a", "\x1b[31mred", "d"], "has a class name with a control or unprintable character at class_names[1] "
                                "('\\x1b[31mred')"),
    ([b"a", b"x" * 201, b"b"], "has a class name of 201 characters at class_names[1], over the limit "
                               "max_class_name_chars = 200 (set RFEXPLORER_LIMIT_MAX_CLASS_NAME_CHARS to raise it)"),
    (["a", "x" * 201, "b"], "declares class names of up to 201 characters, over the limit max_class_name_chars = "
                            "200 (set RFEXPLORER_LIMIT_MAX_CLASS_NAME_CHARS to raise it)"),
])
def test_class_names_are_checked_at_load_time(tmp_path, names, words):
    path = save_npz(tmp_path / "names.npz", class_names=np.array(names))
    assert refusal(path, limits=FileLimits(max_class_name_chars=200)) == f"Dataset file {path} {words}."


def test_non_utf8_file_name_is_refused_at_load_time(tmp_path):
    good = save_npz(tmp_path / "ok.npz")
    bad = os.fsdecode(os.fsencode(tmp_path) + b"/bad\xff.npz")
    os.rename(good, bad)
    assert refusal(bad) == (f"Dataset file {tmp_path}/bad\\xff.npz has a name that is not UTF-8 text, which a "
                            f"result or topology file cannot record; rename the file (or its folder).")


def test_a_non_utf8_folder_above_a_relative_name_is_recorded_escaped(tmp_path, monkeypatch):
    folder = os.fsdecode(os.fsencode(tmp_path) + b"/dir\xfe")
    os.mkdir(folder)
    save_npz(Path(folder) / "ok.npz")
    monkeypatch.chdir(folder)
    ds = data.load_dataset_file("ok.npz")
    record = results.dataset_record(ds)
    assert record["source"] == f"{tmp_path}/dir\\xfe/ok.npz"
    json.dumps(record, ensure_ascii=False).encode("utf-8")  # what writing a result does
    odd = dict(ds.__dict__, name="x\udcff.npz", class_names=("a\udcfe", "b", "c"))
    record = results.dataset_record(data.Dataset(**odd))
    assert (record["name"], record["class_names"][0]) == ("x\\xff.npz", "a\\xfe")
    json.dumps(record, ensure_ascii=False).encode("utf-8")


# ----------------------------------------------------------------------------------------------------------
# A FIFO, a device: "not a regular file", and never opened (opening a FIFO blocks)
# ----------------------------------------------------------------------------------------------------------

@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_fifo_is_not_a_regular_file_and_is_never_opened(tmp_path):
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    outcome = {}

    def load():
        try:
            data.load_dataset_file(fifo)
        except Exception as exc:  # noqa: BLE001 - recorded for the assertion below
            outcome["error"] = exc

    worker = threading.Thread(target=load, daemon=True)
    worker.start()
    worker.join(20)
    if worker.is_alive():  # it opened the FIFO and blocks: let it go, then fail
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        worker.join(5)
        pytest.fail("loading a FIFO blocked")
    assert str(outcome["error"]) == f"Dataset file {fifo} is not a regular file (it is a FIFO), so it is not read."


def test_device_is_not_a_regular_file(tmp_path):
    if not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero")
    link = tmp_path / "zero.npz"
    link.symlink_to("/dev/zero")
    assert refusal(link) == f"Dataset file {link} is not a regular file (it is a device), so it is not read."


# ----------------------------------------------------------------------------------------------------------
# The cost of refusals: < 2 s and < 500 MB RSS each, measured in a child process
# ----------------------------------------------------------------------------------------------------------

MEASURE = r"""
import json, resource, sys, time
import h5py  # noqa: F401 - part of the baseline
from engine import data
rss = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
out = {"baseline": rss(), "files": []}
for path in json.loads(sys.argv[1]):
    t = time.perf_counter()
    try:
        data.load_dataset_file(path)
        error = None
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
    out["files"].append({"path": path, "seconds": time.perf_counter() - t, "peak": rss(), "error": error})
print(json.dumps(out))
"""
RUNNER = r"""
import resource, subprocess, sys
run = subprocess.run(sys.argv[1:], capture_output=True, text=True)
sys.stderr.write(run.stderr)
print(run.stdout)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024)
"""


def bomb_files(tmp_path: Path, hp) -> list:
    """The fuzz campaign's costly files, as refusals: each would allocate gigabytes if believed."""
    files = [npz_with(tmp_path / "bomb.npz", train_x=zero_bomb(npy_header("<f8", "(6291456, 64)"), 3072)),
             npz_with(tmp_path / "huge.npz", train_x=deflated(npy_header("<f8", "(1099511627776, 4)") + bytes(64))),
             npz_with(tmp_path / "neg.npz", train_x=deflated(npy_header("<f8", "(-1099511627776, 4)")))]
    zero = tmp_path / "zero.h5"
    with hp.File(zero, "w") as f:  # 9.8 KB that would read 2.8 GB from /dev/zero
        h5_base(f, skip=("X_train",))
        f.create_dataset("X_train", shape=(350_000_000, 1), dtype="f8", external=[("/dev/zero", 0, 2_800_000_000)])
    fill = tmp_path / "fill.h5"
    with hp.File(fill, "w") as f:
        h5_base(f, skip=("X_train",))
        f.create_dataset("X_train", shape=(9_000_000, 40), dtype="f8", chunks=(4096, 40), compression="gzip")
    sparse = tmp_path / "sparse.csv"
    with open(sparse, "wb") as fh:
        fh.truncate(600 * 1024**2)  # 600 MB on paper, nothing on disk
    line = tmp_path / "line.csv"
    line.write_bytes(b"0," * (20 * 1024**2) + b"0\n")  # one 40 MB record
    return files + [zero, fill, sparse, line]


def measure(files: list) -> tuple:
    """(report of the child that loads ``files``, its peak RSS in bytes through RUSAGE_CHILDREN)."""
    run = subprocess.run([sys.executable, "-c", RUNNER, sys.executable, "-c", MEASURE,
                          json.dumps([str(p) for p in files])], cwd=REPO, capture_output=True, text=True,
                         timeout=600)
    lines = run.stdout.strip().splitlines()
    assert len(lines) >= 2, run.stderr[-3000:]
    return json.loads(lines[0]), int(lines[-1])


def test_refusals_are_quick_and_small(tmp_path):
    hp = pytest.importorskip("h5py")
    files = bomb_files(tmp_path, hp)
    assert (tmp_path / "bomb.npz").stat().st_size < 4 * 1024**2 and (tmp_path / "zero.h5").stat().st_size < 20000
    _, baseline = measure([])  # the interpreter with its imports, loading nothing
    report, peak = measure(files)
    for row in report["files"]:
        assert row["error"] and row["error"].startswith("DatasetFileError: "), row
        assert row["seconds"] < MAX_SECONDS, row
        assert row["peak"] - report["baseline"] < MAX_RSS, row
    assert peak - baseline < MAX_RSS, (peak, baseline, report)
    errors = [row["error"] for row in report["files"]]
    assert "over the limit max_array_bytes" in errors[0] and "max_samples" in errors[1]
    assert "negative shape" in errors[2] and "stored in external files" in errors[3]
    assert "max_array_bytes" in errors[4] and "max_csv_bytes" in errors[5] and "max_features" in errors[6]
