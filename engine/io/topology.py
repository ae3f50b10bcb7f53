"""Topology files: a trained network written as versioned JSON (plus a CSV for the lab) and read back exactly.

This module is the public face of the format: it re-exports the names of the modules that implement it and
holds :func:`load_topology`. The format is described for people in ``docs/topology-format.md`` and for
programs in the JSON Schema ``engine/schemas/topology.schema.json`` (draft 2020-12; published as
``docs/topology.schema.json``, printed by ``python -m engine.io.topology``). Four kinds share one envelope
``{"format": "rfexplorer-topology", "format_version": 3, "kind": ...}``:

- ``"rf-perceptron"`` (models rf, rf-input, rf-frozen): physics parameters, input oscillators, one chain of
  resonators per class, read-out gain. Comb positions are the exact float32 values the engine trains, so
  :func:`load_topology` rebuilds a bit-identical :class:`~engine.nets.rf_perceptron.RFPerceptron`; the GHz values
  are for people and are checked against them on load.
- ``"rf-network"`` (the RF models with hidden layers): the layer sizes and K of every layer, then per layer its
  emitters and chains, and for hidden layers their STNO conversion; rebuilt as an
  :class:`~engine.nets.multilayer.RFNetwork`.
- ``"sparse-perceptron"`` (models dense, prune, random, rigl, set): the non-zero weights as
  ``[class, input, weight]`` triplets and the biases, rebuilt as a
  :class:`~engine.nets.baselines.dense.DensePerceptron` or :class:`~engine.nets.baselines.masked.MaskedPerceptron`.
- ``"sparse-network"`` (dense, prune and rigl with hidden layers): each layer's biases and non-zero weights as
  ``[neuron, input, weight]``, rebuilt as a network of :mod:`engine.nets.baselines.mlp`.

All carry the dataset name, the input count, class names and image shape, the metrics, the per-epoch history,
the full run config, the software versions and the creation time. Files of format versions 1 and 2 (which had
only the single-layer kinds) are read too, upgraded in memory.

Where the code lives:

- :mod:`engine.io.topology_format`: name, version, :class:`~engine.io.topology_format.Kind`, limits, tolerances,
  CSV columns, the error type and the schema (package data, loaded with :mod:`importlib.resources`).
- :mod:`engine.io.topology_kinds`: the one table from each kind to its writer, CSV rows, size counter and loader,
  which live in :mod:`engine.io.topology_rf` and :mod:`engine.io.topology_sparse`.
- :mod:`engine.io.topology_write`: documents, JSON and CSV, :func:`export_result`, :func:`write_topology_pair`.
- :mod:`engine.io.topology_checks`: declared sizes against the limits, finite and float32 numbers, the schema,
  and the wording of problems.
- :mod:`engine.io.topology_read`: envelope, upgrades, :class:`Topology`, :func:`topology_from_document`.

Reading is six steps: the guarded JSON reader of :mod:`engine.core.files` (size limit, no pickles), the envelope
(format name and version; version-1 and -2 files are upgraded in memory), the declared sizes against
:class:`engine.core.limits.FileLimits` (inputs, classes, layers, layer sizes, K, total parameters, list lengths,
history rows: before anything is allocated or walked), every number finite (the network's numbers float32),
the published schema (structure, types, ranges) checked with ``jsonschema``, and finally the cross-checks kept
in code (lengths against n_inputs, n_classes and K, frequencies against comb positions and the frequency
plan, chain signs against the parity, pixel positions against the image shape, the read-out gain against its
log, the run config). Every problem is reported as one sentence naming the file and the field
(:class:`TopologyFileError`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from engine.core.files import PathLike, read_json
from engine.core.limits import FileLimits, current_limits
from engine.io.topology_format import (
    COMB_SLACK,
    DEFAULT_IMAGE_SHAPE,
    F32_MAX,
    F32_TINY,
    FORMAT_NAME,
    FORMAT_VERSION,
    FREQ_RTOL,
    GAIN_RTOL,
    KIND_RF,
    KIND_RF_NETWORK,
    KIND_SPARSE,
    KIND_SPARSE_NETWORK,
    KINDS,
    MAX_CLASSES,
    MAX_INPUTS,
    MAX_RECORD_VALUES,
    MAX_WEIGHTS,
    NETWORK_CSV_COLUMNS,
    NETWORK_FIELDS,
    RF_CSV_COLUMNS,
    RF_KINDS,
    SCHEMA_PATH,
    SCHEMA_TEXT,
    SPARSE_CSV_COLUMNS,
    Kind,
    TopologyFileError,
    find_setting,
    topology_schema,
)
from engine.io.topology_read import Topology, topology_from_document
from engine.io.topology_write import (
    csv_path_for,
    export_result,
    result_document,
    topology_csv_text,
    topology_document,
    write_topology,
    write_topology_csv,
    write_topology_pair,
)

#: Files larger than this are refused before they are read.
MAX_FILE_BYTES = 200 * 1024 * 1024


def load_topology(path: PathLike, *, limits: Optional[FileLimits] = None) -> Topology:
    """Read, validate and rebuild a topology file (any version from 1 to :data:`FORMAT_VERSION`).

    Raises :class:`TopologyFileError` (one sentence naming the file and the field) if anything is wrong:
    missing, unreadable, too large (:data:`MAX_FILE_BYTES`), a pickle or checkpoint, not JSON, wrong format
    or version, anything the schema refuses (missing keys, wrong types, values out of range, NaN or
    Infinity), or a failed cross-check (lengths, frequencies, signs, pixels, gain, run config). Sizes over
    ``limits`` (default :func:`engine.core.limits.current_limits`: inputs, classes, layers, layer sizes, K, total
    parameters, history rows) are refused before anything is allocated; every number must be finite, and
    the network's numbers float32 values."""
    path = Path(path)
    lim = limits or current_limits()
    doc = read_json(
        path, what="topology file", max_bytes=min(MAX_FILE_BYTES, lim.max_json_bytes), error=TopologyFileError
    )
    topo = topology_from_document(doc, source=str(path), limits=lim)
    topo.source = path
    return topo


__all__ = [
    "COMB_SLACK",
    "DEFAULT_IMAGE_SHAPE",
    "F32_MAX",
    "F32_TINY",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "FREQ_RTOL",
    "GAIN_RTOL",
    "KIND_RF",
    "KIND_RF_NETWORK",
    "KIND_SPARSE",
    "KIND_SPARSE_NETWORK",
    "KINDS",
    "Kind",
    "MAX_CLASSES",
    "MAX_FILE_BYTES",
    "MAX_INPUTS",
    "MAX_RECORD_VALUES",
    "MAX_WEIGHTS",
    "NETWORK_CSV_COLUMNS",
    "NETWORK_FIELDS",
    "RF_CSV_COLUMNS",
    "RF_KINDS",
    "SCHEMA_PATH",
    "SCHEMA_TEXT",
    "SPARSE_CSV_COLUMNS",
    "Topology",
    "TopologyFileError",
    "csv_path_for",
    "export_result",
    "find_setting",
    "load_topology",
    "result_document",
    "topology_csv_text",
    "topology_document",
    "topology_from_document",
    "topology_schema",
    "write_topology",
    "write_topology_csv",
    "write_topology_pair",
]


if __name__ == "__main__":  # print the schema: python -m engine.io.topology > docs/topology.schema.json
    import sys

    sys.stdout.write(SCHEMA_TEXT)
