"""Make resources/data/mnist-mini.npz: a class-balanced MNIST subset embedded in the repository.

    python resources/make_mnist_mini.py --data-dir ../shared/data

Takes the first 600 training images of each digit (6,000 in all) and the first 100 test images of each digit
(1,000), keeps them as uint8 28x28 arrays, writes a compressed npz, and prints the content sha256 that
engine/data/__init__.py checks on every load (EMBEDDED_CONTENT_SHA256). The selection is deterministic (no random
draw), so rerunning it on the official MNIST files gives the same arrays and the same checksum.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from engine.data import EMBEDDED_PATH, _content_sha256, load_torchvision  # noqa: E402

TRAIN_PER_CLASS = 600
TEST_PER_CLASS = 100


def first_per_class(images: np.ndarray, labels: np.ndarray, per_class: int) -> tuple[np.ndarray, np.ndarray]:
    keep = np.concatenate([np.flatnonzero(labels == c)[:per_class] for c in range(10)])
    keep.sort()  # keep the original order of the files
    return images[keep], labels[keep]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", required=True, help="root holding MNIST/raw (torchvision layout)")
    ap.add_argument("--out", default=str(EMBEDDED_PATH))
    args = ap.parse_args()
    ds = load_torchvision("mnist", args.data_dir)
    to_u8 = lambda x: np.rint(x.numpy() * 255).astype(np.uint8).reshape(-1, 28, 28)  # noqa: E731
    tr_x, tr_y = first_per_class(to_u8(ds.train_x), ds.train_y.numpy().astype(np.uint8), TRAIN_PER_CLASS)
    te_x, te_y = first_per_class(to_u8(ds.test_x), ds.test_y.numpy().astype(np.uint8), TEST_PER_CLASS)
    arrays = {"train_images": tr_x, "train_labels": tr_y, "test_images": te_x, "test_labels": te_y}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **arrays)
    print(f"wrote {args.out}: {len(tr_y)} train / {len(te_y)} test")
    print(f"content sha256: {_content_sha256(arrays)}")


if __name__ == "__main__":
    main()
