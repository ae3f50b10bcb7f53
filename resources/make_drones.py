"""Make resources/data/drones.npz: the drone RF-fingerprinting dataset, embedded in the package.

    .venv/bin/pip install h5py        # only this script needs it; loading drones.npz does not
    python resources/make_drones.py --source ../shared/data/drones/RadioSpin_D62_RF_fingerprinting.h5

The source is the HDF5 file of the multilayer RF spintronic network paper (Ross, Leroux et al., Nature
Nanotechnology 18, 1273 (2023)), CC BY 4.0; see resources/data/README.md for the credit. Its arrays X_train
(702, 256), Y_train, X_test (298, 256), Y_test are kept as they are, in the same order and with the same
train/test split, except that the features are stored as float32 (from float64) and the labels as uint8; the
ten class names, in label order, are added as ``class_names``. Nothing is rescaled here: engine/data/__init__.py maps
the features to [0, 1] on load (divided by the training maximum), the same rule as for any user .npz file,
whose layout this file also follows (train_x, train_y, test_x, test_y, class_names).

The script checks the source file's sha256, writes a compressed npz and prints the content sha256 that
engine/data/__init__.py checks on every load (DRONES_CONTENT_SHA256). The conversion is deterministic, so rerunning it
on the same source gives the same arrays and the same checksum.
"""
from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from engine.data import DRONES_KEYS, DRONES_PATH, _content_sha256  # noqa: E402

#: Label order 0…9 of the source file (from the data README that comes with it).
CLASS_NAMES = ("dx4e", "dx6i", "MTx", "Nineeg", "Parrot", "q205", "S500", "tello", "WiFi", "wltoys")
#: sha256 of RadioSpin_D62_RF_fingerprinting.h5 (2,060,096 bytes).
SOURCE_SHA256 = "a9fc628d25a836f26f8ac9934f8bd1de8858306f11622a8b95b54ea4029a79d6"
DEFAULT_SOURCE = Path(__file__).resolve().parents[2] / "shared" / "data" / "drones" / \
    "RadioSpin_D62_RF_fingerprinting.h5"


def convert(source: Path) -> dict[str, np.ndarray]:
    import h5py

    with h5py.File(source, "r") as f:
        raw = {k: f[k][()] for k in ("X_train", "Y_train", "X_test", "Y_test")}
    arrays = {
        "train_x": raw["X_train"].astype(np.float32),
        "train_y": raw["Y_train"].astype(np.uint8),
        "test_x": raw["X_test"].astype(np.float32),
        "test_y": raw["Y_test"].astype(np.uint8),
        "class_names": np.array(CLASS_NAMES),
    }
    for split in ("train", "test"):
        y = raw[f"Y_{split}"]
        if not np.array_equal(arrays[f"{split}_y"], y) or y.min() < 0 or y.max() >= len(CLASS_NAMES):
            raise SystemExit(f"unexpected labels in Y_{split}")
    return arrays


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--source", default=str(DEFAULT_SOURCE), help="RadioSpin_D62_RF_fingerprinting.h5")
    ap.add_argument("--out", default=str(DRONES_PATH))
    args = ap.parse_args()
    source = Path(args.source)
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    if digest != SOURCE_SHA256:
        raise SystemExit(f"{source} has sha256 {digest}, not the expected {SOURCE_SHA256}")
    arrays = convert(source)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **arrays)
    print(f"wrote {args.out}: {len(arrays['train_y'])} train / {len(arrays['test_y'])} test, "
          f"{arrays['train_x'].shape[1]} features, {len(CLASS_NAMES)} classes")
    print(f"content sha256: {_content_sha256(arrays, DRONES_KEYS)}")


if __name__ == "__main__":
    main()
