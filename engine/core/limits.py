"""Limits on what an untrusted file may declare, checked before anything is allocated.

Every reader of a user's file (topology files, dataset files) compares the sizes a file *declares* (its JSON
counts, its zip and ``.npy`` headers, its HDF5 shapes, its CSV byte size) against these limits before it
allocates a single array, and refuses a file over a limit with one sentence naming the field and the limit.

The defaults fit every network and dataset this project has met with a wide margin, and keep a refused file
far below the memory of a laptop. A user with a bigger file raises a limit with an environment variable,
``RFEXPLORER_LIMIT_<FIELD NAME IN CAPITALS>`` (for example ``RFEXPLORER_LIMIT_MAX_ARRAY_BYTES=8e9``), or by
passing their own :class:`FileLimits` to the reader.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, fields

#: Prefix of the environment variables that raise (or lower) a limit.
ENV_PREFIX = "RFEXPLORER_LIMIT_"


@dataclass(frozen=True)
class FileLimits:
    """What one untrusted file may declare. Each field: meaning, unit."""

    max_array_bytes: int = 1024**3
    """Memory a dataset file takes once loaded: its arrays as stored (uncompressed) plus the float32 features
    made of them, together (bytes). Full MNIST takes 0.24 GB."""
    max_samples: int = 10_000_000
    """Samples in one split of a dataset file (training or test), count."""
    max_features: int = 1_000_000
    """Features (inputs) per sample of a dataset file, and inputs of a topology file, count."""
    max_classes: int = 10_000
    """Classes of a dataset or topology file, count."""
    max_class_name_chars: int = 200
    """Characters of one class name, count."""
    max_csv_bytes: int = 512 * 1024**2
    """Size of a CSV dataset file on disk (bytes)."""
    max_archive_members: int = 10_000
    """Files (members) in an .npz archive, as its zip directory declares them, count."""
    max_layers: int = 16
    """Layers of a multilayer network in a topology file (hidden layers plus the output layer), count."""
    max_layer_size: int = 100_000
    """Chains (neurons) of one layer of a topology file, count."""
    max_resonators_per_chain: int = 100_000
    """K, resonators (or kept weights) per chain of a topology file, count."""
    max_parameters: int = 100_000_000
    """Numbers a topology file's network holds in all its layers together (weights, resonators, biases), count."""
    max_history_epochs: int = 100_000
    """Epochs recorded in a topology file's training history, count."""
    max_json_bytes: int = 200 * 1024**2
    """Size of a topology (or other JSON) file on disk (bytes)."""
    max_message_chars: int = 200
    """Characters of a user's own value quoted in an error message; longer ones are cut with '…', count."""

    @classmethod
    def from_env(cls, environ: "os._Environ[str] | dict[str, str] | None" = None) -> "FileLimits":
        """The defaults, with any ``RFEXPLORER_LIMIT_*`` environment variable applied (one sentence on a bad one)."""
        env = os.environ if environ is None else environ
        changes = {}
        for f in fields(cls):
            text = env.get(ENV_PREFIX + f.name.upper())
            if text is None:
                continue
            try:
                value = float(text)
            except ValueError:
                value = float("nan")
            if not (value >= 1 and value == value and value != float("inf")):
                raise ValueError(f"{ENV_PREFIX}{f.name.upper()} must be a positive number (got {text[:40]!r})")
            changes[f.name] = int(value)
        return dataclasses.replace(cls(), **changes)


def current_limits() -> FileLimits:
    """The limits in force now: the defaults with the environment's overrides."""
    return FileLimits.from_env()


__all__ = ["ENV_PREFIX", "FileLimits", "current_limits"]
