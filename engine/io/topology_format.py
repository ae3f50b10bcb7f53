"""The topology format's vocabulary: its name and version, the four kinds, limits and tolerances, the CSV
columns, the error type, the published schema (package data) and the small helpers every kind shares.

Imported by the other ``engine.topology_*`` modules; it imports none of them."""

from __future__ import annotations

import enum
import json
from importlib import resources
from pathlib import Path
from typing import Any, Optional, Sequence, TypeGuard

import torch

from engine.core.files import JsonFileError

FORMAT_NAME = "rfexplorer-topology"
#: The version this package writes. It reads this one and every older one (upgraded in memory).
FORMAT_VERSION = 3


class Kind(str, enum.Enum):
    """The kinds of network a topology file holds (a ``str`` enum: each member equals its JSON value)."""

    RF = "rf-perceptron"  #: single-layer RF spintronic perceptron (format 1 on)
    SPARSE = "sparse-perceptron"  #: single-layer dense or sparse software baseline (format 1 on)
    RF_NETWORK = "rf-network"  #: multilayer RF network (format 3 on)
    SPARSE_NETWORK = "sparse-network"  #: multilayer software network (format 3 on)

    __str__ = str.__str__  # like enum.StrEnum (Python 3.11+): str() and f-strings give the value
    __format__ = str.__format__  # type: ignore[assignment]  # str's own method, bound the way StrEnum binds it

    @property
    def is_rf(self) -> bool:
        """Whether it holds an RF model (the model registry's 'rf' family)."""
        return self in (Kind.RF, Kind.RF_NETWORK)

    @property
    def multilayer(self) -> bool:
        return self in (Kind.RF_NETWORK, Kind.SPARSE_NETWORK)

    @classmethod
    def of(cls, is_rf: bool, multilayer: bool) -> "Kind":
        """The kind of a model of that family and depth."""
        if is_rf:
            return cls.RF_NETWORK if multilayer else cls.RF
        return cls.SPARSE_NETWORK if multilayer else cls.SPARSE


KIND_RF = Kind.RF.value
KIND_SPARSE = Kind.SPARSE.value
KIND_RF_NETWORK = Kind.RF_NETWORK.value
KIND_SPARSE_NETWORK = Kind.SPARSE_NETWORK.value
KINDS = tuple(k.value for k in Kind)
#: Kinds that hold an RF model (the registry's 'rf' family).
RF_KINDS = tuple(k.value for k in Kind if k.is_rf)
#: Kinds that exist only from format version 3 on.
MULTILAYER_KINDS = tuple(k.value for k in Kind if k.multilayer)

#: Image shape assumed for a run when nothing says otherwise (kept only where it matches the input count).
DEFAULT_IMAGE_SHAPE = (28, 28)
#: The schema's hard bounds on the declared sizes. The resource limits checked before anything is allocated
#: (smaller by default, raised with environment variables) are engine.core.limits.FileLimits.
MAX_INPUTS = 1_000_000
MAX_CLASSES = 100_000
#: Largest n_classes x n_inputs weight matrix (kept for compatibility; FileLimits.max_parameters decides).
MAX_WEIGHTS = 100_000_000
#: Largest magnitude of a float32 (the engine's numbers); anything larger in a network's fields is refused.
F32_MAX = 3.4028234663852886e38
#: Half the smallest positive float32: a non-zero number smaller than this in size would become 0.
F32_TINY = 7.006492321624085e-46
#: The top-level entries holding the network itself: their numbers must be float32 values.
NETWORK_FIELDS = ("physics", "readout", "inputs", "chains", "layers", "bias", "weights")
#: Most values (numbers, strings, entries) the record entries (metrics, config, versions, units) may hold.
MAX_RECORD_VALUES = 100_000
#: Relative tolerance between a stored GHz value and the one implied by the comb position.
FREQ_RTOL = 1e-5
#: Relative tolerance between the stored read-out gain and exp(log_gain) / (k_sd p_max).
GAIN_RTOL = 1e-4
#: Slack allowed beyond the tuning range for stored comb positions (comb units).
COMB_SLACK = 1e-3

RF_CSV_COLUMNS = (
    "chain",
    "index",
    "frequency_ghz",
    "comb_position",
    "sign",
    "attached_input",
    "pixel_row",
    "pixel_col",
    "coupling",
)
NETWORK_CSV_COLUMNS = ("layer", *RF_CSV_COLUMNS)  # a network's rows name their layer first
SPARSE_CSV_COLUMNS = ("class", "input", "pixel_row", "pixel_col", "weight")
SPARSE_NETWORK_CSV_COLUMNS = ("layer", "neuron", "input", "pixel_row", "pixel_col", "weight")

# ---------------------------------------------------------------------------------------------------------
# The schema: package data (engine/schemas/topology.schema.json), published as docs/topology.schema.json
# ---------------------------------------------------------------------------------------------------------

#: The text of the JSON Schema (draft 2020-12) the reader validates with, shipped inside the package.
SCHEMA_TEXT = resources.files("engine.schemas").joinpath("topology.schema.json").read_text(encoding="utf-8")
#: Where the schema is published in a source checkout (docs/topology-format.md describes it); a test keeps it
#: byte-identical to :data:`SCHEMA_TEXT`.
SCHEMA_PATH = Path(__file__).resolve().parents[2] / "docs" / "topology.schema.json"


def topology_schema() -> dict:
    """The JSON Schema of the current format version (a fresh dict; see :data:`SCHEMA_TEXT`)."""
    return json.loads(SCHEMA_TEXT)


# ---------------------------------------------------------------------------------------------------------
# Errors and helpers shared by the kinds
# ---------------------------------------------------------------------------------------------------------


class TopologyFileError(JsonFileError):
    """A topology file is missing, unreadable or malformed; the message is one sentence saying what is wrong.

    A ValueError (through :class:`engine.core.files.JsonFileError`)."""


class Problem(Exception):
    """One problem with a document, in words; turned into a TopologyFileError naming the file."""


def find_setting(tree: Any, name: str) -> Any:
    """The value of the first key ``name`` in a (nested) settings dict, depth first; None if absent.

    Lets readers use a setting of a recorded run config whether the config is the flat version-1 form or
    the nested form, without depending on where the nested form keeps it."""
    if isinstance(tree, dict):
        if name in tree:
            return tree[name]
        for value in tree.values():
            found = find_setting(value, name)
            if found is not None:
                return found
    return None


def pixel(i: int, image_shape: Optional[Sequence[int]]) -> tuple[Optional[int], Optional[int]]:
    """(row, column) of input ``i`` in an image of ``image_shape`` (None, None without one)."""
    if image_shape is None:
        return None, None
    return i // image_shape[1], i % image_shape[1]


def floats(t: torch.Tensor) -> list:
    """Exact float32 -> Python float (double) values; JSON's repr round-trips them bit for bit."""
    return t.detach().cpu().to(torch.float32).tolist()


def is_int(v) -> TypeGuard[int]:
    return isinstance(v, int) and not isinstance(v, bool)


def declared(v: Any) -> Optional[int]:
    """A declared count (a positive whole number, 784 or 784.0), or None where the schema will complain."""
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return v if is_int(v) and v >= 1 else None


def count(where: str, items: Sequence, expected: int, what: str) -> None:
    """Refuse a list of another length than ``expected``."""
    if len(items) != expected:
        raise Problem(f"{where} has {len(items)} entries where {expected} were expected ({what})")


def layer_shape(doc: dict, n_inputs: int, n_classes: int) -> tuple[list, list]:
    """(layer_sizes, layer_ks) of a multilayer document, checked against n_inputs, n_classes and each other."""
    sizes = [int(n) for n in doc["layer_sizes"]]
    ks = [int(k) for k in doc["layer_ks"]]
    if sizes[0] != n_inputs or sizes[-1] != n_classes:
        raise Problem(f"layer_sizes {sizes} must start with n_inputs = {n_inputs} and end with n_classes = {n_classes}")
    count("layer_ks", ks, len(sizes) - 1, "one per layer")
    count("layers", doc["layers"], len(sizes) - 1, "one per layer")
    return sizes, ks
