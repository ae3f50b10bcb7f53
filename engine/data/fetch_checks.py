"""What the four IDX files of each MNIST-family dataset must be, and the checks engine.data.fetch applies to them:
the size, the IDX header (magic number and shape), labels 0-9 and, where it is known, the sha256 of the
decompressed file."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from engine.data.dataset import PathLike

IMAGE_MAGIC, LABEL_MAGIC = 0x0803, 0x0801  #: IDX magic numbers: unsigned bytes, 3 and 1 dimensions
ROWS = COLS = 28
N_CLASSES = 10
CHUNK = 1 << 16


@dataclass(frozen=True)
class IdxFile:
    """One decompressed IDX file of a dataset and what it must be."""

    name: str  #: e.g. train-images-idx3-ubyte
    count: int  #: number of images or labels
    sha256: Optional[str] = None  #: sha256 of the decompressed file, where known

    @property
    def images(self) -> bool:
        return "-images-" in self.name

    @property
    def size(self) -> int:
        return 16 + self.count * ROWS * COLS if self.images else 8 + self.count

    @property
    def gz_name(self) -> str:
        return self.name + ".gz"


def _files(train_x=None, train_y=None, test_x=None, test_y=None) -> tuple[IdxFile, ...]:
    return (
        IdxFile("train-images-idx3-ubyte", 60000, train_x),
        IdxFile("train-labels-idx1-ubyte", 60000, train_y),
        IdxFile("t10k-images-idx3-ubyte", 10000, test_x),
        IdxFile("t10k-labels-idx1-ubyte", 10000, test_y),
    )


#: The four files of each dataset. sha256 of the decompressed files: MNIST's computed from a copy in
#: torchvision's layout; Fashion-MNIST's label files computed from the upstream .gz files whose md5 match
#: torchvision's list. No trustworthy sha256 of the decompressed Fashion-MNIST image files or of any KMNIST
#: file was found, so those are verified by the md5 of their .gz file as torchvision lists it (read at run
#: time): a mirror that recompresses them is refused.
FILES: dict[str, tuple[IdxFile, ...]] = {
    "mnist": _files(
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    ),
    "fashion-mnist": _files(
        None,
        "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        None,
        "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    ),
    "kmnist": _files(),
}


def check_idx_file(path: PathLike, spec: IdxFile) -> Optional[str]:
    """None if ``path`` has the size and IDX header ``spec`` needs (and labels 0-9), else what is wrong."""
    path = Path(path)
    size = path.stat().st_size
    if size != spec.size:
        return f"has {size:,} bytes instead of the {spec.size:,} expected"
    with open(path, "rb") as f:
        head = f.read(16 if spec.images else 8)
        words = [int.from_bytes(head[i : i + 4], "big") for i in range(0, len(head), 4)]
        magic = IMAGE_MAGIC if spec.images else LABEL_MAGIC
        if words[0] != magic:
            return f"is not an IDX {'image' if spec.images else 'label'} file (magic number {words[0]:#010x})"
        shape = (spec.count, ROWS, COLS) if spec.images else (spec.count,)
        if tuple(words[1:]) != shape:
            return f"holds an IDX array of shape {tuple(words[1:])} instead of {shape}"
        if not spec.images and max(f.read(), default=0) >= N_CLASSES:
            return f"has labels outside 0..{N_CLASSES - 1}"
    return None


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def problem_in_place(path: Path, spec: IdxFile) -> Optional[str]:
    """What is wrong with a file already in the data folder (its sha256 is compared where it is known)."""
    problem = check_idx_file(path, spec)
    if problem is None and spec.sha256 and sha256_of(path) != spec.sha256:
        problem = "does not have the known content (sha256 mismatch)"
    return problem
