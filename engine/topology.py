"""Topology files: a trained network written as versioned JSON (plus a CSV for the lab) and read back exactly.

The format is described for people in ``docs/topology-format.md`` and for programs in the JSON Schema
``docs/topology.schema.json`` (draft 2020-12). Two kinds share one envelope
``{"format": "rfexplorer-topology", "format_version": 2, "kind": ...}``:

- ``"rf-perceptron"`` (models rf, rf-input, rf-frozen): physics parameters, input oscillators, one chain of
  resonators per class, read-out gain. Comb positions are the exact float32 values the engine trains, so
  :func:`load_topology` rebuilds a bit-identical :class:`~engine.rf_perceptron.RFPerceptron`; the GHz values
  are for people and are checked against them on load.
- ``"sparse-perceptron"`` (models dense, prune, random, rigl, set): the non-zero weights as
  ``[class, input, weight]`` triplets and the biases, rebuilt as a
  :class:`~engine.baselines.dense.DensePerceptron` or :class:`~engine.baselines.masked.MaskedPerceptron`.

Both carry the dataset name, the input count, class names and image shape, the metrics, the per-epoch history,
the full run config, the software versions and the creation time.

Reading is six steps: the guarded JSON reader of :mod:`engine.files` (size limit, no pickles), the envelope
(format name and version; version-1 files are upgraded in memory), the declared sizes against
:class:`engine.limits.FileLimits` (inputs, classes, layers, layer sizes, K, total parameters, list lengths,
history rows: before anything is allocated or walked), every number finite (the network's numbers float32),
the published schema (structure, types, ranges) checked with ``jsonschema``, and finally the cross-checks kept
in code (lengths against n_inputs, n_classes and K, frequencies against comb positions and the frequency plan, chain signs against the parity,
pixel positions against the image shape, the read-out gain against its log, the run config). Every problem is
reported as one sentence naming the file and the field (:class:`TopologyFileError`).
"""
from __future__ import annotations

import functools
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import torch

from .config import RunConfig
from .files import (JsonFileError, PathLike, atomic_write_files, atomic_write_text, best_schema_error, dumps_json,
                    json_path_text, json_safe, json_type_name, read_json, schema_problem, strict_schema_validator)
from .limits import ENV_PREFIX, FileLimits, current_limits
from .messages import ELLIPSIS, SENTENCE_CHARS, escaped, sentence, shown
from .model_base import PerceptronModel
from .physics import DeviceParams, chain_signs, comb_to_ghz, tuning_range_comb
from .results import RunResult, software_versions, utc_now_iso
from .tables import csv_text, write_csv

FORMAT_NAME = "rfexplorer-topology"
#: The version this module writes. It reads this one and every older one (upgraded in memory).
FORMAT_VERSION = 3
KIND_RF = "rf-perceptron"
KIND_SPARSE = "sparse-perceptron"
KIND_RF_NETWORK = "rf-network"
KIND_SPARSE_NETWORK = "sparse-network"
KINDS = (KIND_RF, KIND_SPARSE, KIND_RF_NETWORK, KIND_SPARSE_NETWORK)
#: Kinds that hold an RF model (the registry's 'rf' family).
RF_KINDS = (KIND_RF, KIND_RF_NETWORK)
#: Files larger than this are refused before they are read.
MAX_FILE_BYTES = 200 * 1024 * 1024
#: Image shape assumed for a run when nothing says otherwise (kept only where it matches the input count).
DEFAULT_IMAGE_SHAPE = (28, 28)
#: The schema's hard bounds on the declared sizes. The resource limits checked before anything is allocated
#: (smaller by default, raised with environment variables) are engine.limits.FileLimits.
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
#: Where the schema is published in a source checkout (docs/topology-format.md describes it). The engine
#: validates with :data:`SCHEMA_TEXT`, which the tests keep byte-identical to that file, so an installed wheel
#: (which has no docs/) checks files exactly as the published schema says.
SCHEMA_PATH = Path(__file__).resolve().parent.parent / "docs" / "topology.schema.json"

NETWORK_CSV_COLUMNS = ("layer", "chain", "index", "frequency_ghz", "comb_position", "sign", "attached_input",
                       "pixel_row", "pixel_col", "coupling")
RF_CSV_COLUMNS = ("chain", "index", "frequency_ghz", "comb_position", "sign", "attached_input", "pixel_row",
                  "pixel_col", "coupling")
SPARSE_CSV_COLUMNS = ("class", "input", "pixel_row", "pixel_col", "weight")

_UNSET: Any = object()


class TopologyFileError(JsonFileError):
    """A topology file is missing, unreadable or malformed; the message is one sentence saying what is wrong.

    A ValueError (through :class:`engine.files.JsonFileError`)."""


# ---------------------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------------------

def _pixel(i: int, image_shape: Optional[Sequence[int]]) -> tuple[Optional[int], Optional[int]]:
    if image_shape is None:
        return None, None
    return i // image_shape[1], i % image_shape[1]


def _floats(t: torch.Tensor) -> list:
    """Exact float32 -> Python float (double) values; JSON's repr round-trips them bit for bit."""
    return t.detach().cpu().to(torch.float32).tolist()


def _resolve_image_shape(image_shape, n_inputs: int) -> Optional[tuple[int, int]]:
    """(rows, columns) when ``image_shape`` is a 2-D shape with ``n_inputs`` pixels, else None."""
    if image_shape is None:
        return None
    shape = tuple(int(s) for s in image_shape)
    return shape if len(shape) == 2 and min(shape) >= 1 and shape[0] * shape[1] == n_inputs else None


def _resolve_class_names(class_names, n_classes: int) -> list[str]:
    if class_names is None:
        return [str(c) for c in range(n_classes)]
    names = [str(c) for c in class_names]
    if len(names) != n_classes:
        raise ValueError(f"{len(names)} class names were given for a network with {n_classes} classes")
    if len(set(names)) != len(names) or not all(names):
        raise ValueError("class names must be distinct and non-empty")
    return names


def topology_document(model: PerceptronModel, config: RunConfig, *, metrics: Optional[dict] = None,
                      history: Optional[list] = None, dataset: Any = None, class_names: Any = _UNSET,
                      image_shape: Any = _UNSET, versions: Optional[dict] = None,
                      created: Optional[str] = None) -> dict:
    """The JSON document (a dict, current format version) describing ``model`` trained with ``config``.

    RF models (``model.is_rf``) give kind ``rf-perceptron``, every other :class:`PerceptronModel` gives
    ``sparse-perceptron``. ``dataset`` is the dataset's name, or a dataset object (its ``name``, and its
    ``class_names`` and ``image_shape`` where it has them); None means ``config.dataset``. ``class_names``
    (default: the dataset's, else "0" .. "C-1") must have one distinct name per class. ``image_shape``
    (default: the dataset's, else 28 x 28) gives each input's pixel row and column; it is recorded as null
    when it is not a 2-D shape with exactly ``n_inputs`` pixels (pass None for inputs that are not an image).
    """
    n_inputs, n_classes = int(model.n_inputs), int(model.n_classes)
    if dataset is None or isinstance(dataset, str):
        name = dataset if dataset is not None else config.dataset
    else:
        name = str(dataset.name)
        if class_names is _UNSET:
            class_names = getattr(dataset, "class_names", None) or None
        if image_shape is _UNSET:
            image_shape = getattr(dataset, "image_shape", None)
    shape = _resolve_image_shape(DEFAULT_IMAGE_SHAPE if image_shape is _UNSET else image_shape, n_inputs)
    names = _resolve_class_names(None if class_names is _UNSET else class_names, n_classes)
    multilayer = len(getattr(model, "layer_sizes", ())) > 2  # inputs, hidden layer(s), classes
    if getattr(model, "is_rf", False):
        kind = KIND_RF_NETWORK if multilayer else KIND_RF
    else:
        kind = KIND_SPARSE_NETWORK if multilayer else KIND_SPARSE
    doc: dict[str, Any] = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "model": config.model,
        "dataset": name,
        "n_inputs": n_inputs,
        "n_classes": n_classes,
        "class_names": names,
        "image_shape": list(shape) if shape else None,
    }
    with torch.no_grad():
        if kind == KIND_RF:
            doc.update(_rf_body(model, shape))
        elif kind == KIND_RF_NETWORK:
            doc.update(_rf_network_body(model, shape))
        elif kind == KIND_SPARSE_NETWORK:
            doc.update(_sparse_network_body(model))
        else:
            doc.update(_sparse_body(model))
    doc.update({
        "metrics": dict(metrics) if metrics is not None else {},
        "history": [list(h) for h in (history or [])],
        "config": config.to_dict(),
        "versions": dict(versions) if versions is not None else software_versions(),
        "created": created if created is not None else utc_now_iso(),
    })
    return json_safe(doc)


def _chain_records(chains, shape, bias: Optional[list], bias_key: str = "bias") -> list:
    """One record per chain of an RF chain layer, each with its resonators (``shape``: the inputs' image shape,
    or None); ``bias`` (one value per chain) is stored under ``bias_key``."""
    res_comb = chains.resonator_comb.detach()
    n_chains, k = res_comb.shape
    res_ghz = _floats(chains.resonator_freqs_ghz())
    res_u = _floats(res_comb)
    signs = chains.signs.detach().cpu().tolist()
    idx, coupling = chains.attachments()
    idx, coupling = idx.cpu().tolist(), _floats(coupling)
    alpha_r = _floats(chains.alpha_r) if getattr(chains, "alpha_r", None) is not None else None
    k_sd_r = _floats(chains.k_sd_r) if getattr(chains, "k_sd_r", None) is not None else None
    eps_r = _floats(chains.freq_eps_r) if getattr(chains, "freq_eps_r", None) is not None else None
    out_chains = []
    for j in range(n_chains):
        resonators = []
        for r in range(k):
            row, col = _pixel(int(idx[j][r]), shape)
            res = {"index": r, "frequency_ghz": res_ghz[j][r], "comb_position": res_u[j][r],
                   "sign": int(round(signs[r])), "attached_input": int(idx[j][r]), "pixel_row": row,
                   "pixel_col": col, "coupling_v_per_uw": coupling[j][r]}
            if alpha_r is not None:
                res["alpha"] = alpha_r[j][r]
            if k_sd_r is not None:
                res["k_sd"] = k_sd_r[j][r]
            if eps_r is not None:
                res["fabrication_draw"] = eps_r[j][r]
            resonators.append(res)
        out_chains.append({"index": j, bias_key: bias[j], "resonators": resonators})
    return out_chains


def _inputs_record(chains) -> dict:
    record = {"frequency_ghz": _floats(chains.input_freqs_ghz()), "comb_position": _floats(chains.input_comb.detach()),
              "trained": bool(chains.input_comb.requires_grad)}
    if getattr(chains, "freq_eps_in", None) is not None:
        record["fabrication_draw"] = _floats(chains.freq_eps_in)
    return record


def _check_fabrication(chains: list, inputs: dict, params: DeviceParams, prefix: str = ""):
    """The chip's fabrication draws stored with a layer (resonators (C, K), inputs (N,)), or None when the file
    has none (a network read without them runs on a new chip). Both or neither must be there, and only with
    physics.freq_spread > 0; the counts were checked with the chains and inputs."""
    has_in = "fabrication_draw" in inputs
    flags = [[("fabrication_draw" in res) for res in c["resonators"]] for c in chains]
    has_res = all(all(f) for f in flags)
    if not has_in and not any(any(f) for f in flags):
        return None
    if not (has_in and has_res):
        raise _Problem(f"{prefix}inputs and every resonator of {prefix}chains must all have a 'fabrication_draw' "
                       f"entry, or none of them")
    if params.freq_spread <= 0:
        where = f" in {prefix.rstrip('.')}" if prefix else ""
        raise _Problem(f"it holds fabrication draws{where} but physics.freq_spread is 0")
    draws_in = inputs["fabrication_draw"]
    if len(draws_in) != len(inputs["comb_position"]):
        raise _Problem(f"{prefix}inputs.fabrication_draw has {len(draws_in)} values where "
                       f"{len(inputs['comb_position'])} (one per input) were expected")
    eps_r = torch.tensor([[res["fabrication_draw"] for res in c["resonators"]] for c in chains], dtype=torch.float32)
    eps_in = torch.tensor(draws_in, dtype=torch.float32)
    if not (torch.isfinite(eps_r).all() and torch.isfinite(eps_in).all()):
        raise _Problem(f"{prefix}fabrication draws must be finite numbers")
    return eps_r, eps_in


def _readout_record(model) -> dict:
    return {"log_gain": float(model.log_gain.detach()), "gain": float(model.gain.detach()),
            "note": "class score j = gain * V_j + bias_j; gain = exp(log_gain) / (k_sd * p_max_uw)"}


def _rf_network_body(model, shape) -> dict:
    params: DeviceParams = model.params
    layers = []
    last = model.n_layers - 1
    for l, chains in enumerate(model.layers):
        record: dict[str, Any] = {"index": l, "inputs": _inputs_record(chains)}
        if l < last:
            record["chains"] = _chain_records(chains, shape if l == 0 else None,
                                              _floats(model.hidden_bias[l]), "bias_current_ith")
            record["stno"] = {"log_gm": float(model.log_gm[l].detach()), "g_m": float(model.g_m(l).detach())}
        else:
            record["chains"] = _chain_records(chains, shape if l == 0 else None, _floats(model.bias))
        layers.append(record)
    return {
        "layer_sizes": [int(n) for n in model.layer_sizes],
        "layer_ks": [int(k) for k in model.layer_ks],
        "physics": params.to_dict(),
        "readout": _readout_record(model),
        "layers": layers,
        "units": {"frequency_ghz": "GHz", "comb_position": "input spacings of the layer (comb units; authoritative)",
                  "coupling_v_per_uw": "V/µW (normalised units)", "bias": "class-score units",
                  "bias_current_ith": "units of the STNO threshold current I_th",
                  "g_m": "µA per mV (g_m = physics.stno.g_m * exp(log_gm))"},
    }


def _rf_body(model, shape) -> dict:
    chains = model.chains
    params: DeviceParams = model.params
    k = int(chains.resonator_comb.shape[1])
    out_chains = _chain_records(chains, shape, _floats(model.bias))
    return {
        "resonators_per_chain": k,
        "physics": params.to_dict(),
        "readout": _readout_record(model),
        "inputs": _inputs_record(chains),
        "chains": out_chains,
        "units": {"frequency_ghz": "GHz", "comb_position": "input spacings (comb units; authoritative)",
                  "coupling_v_per_uw": "V/µW (normalised units)", "bias": "class-score units"},
    }


def _triplets(w: torch.Tensor) -> list:
    """[row, column, value] of every non-zero entry of a weight matrix."""
    w = w.detach().cpu().to(torch.float32)
    nz = torch.nonzero(w, as_tuple=False)
    values = w[nz[:, 0], nz[:, 1]].tolist() if len(nz) else []
    return [[int(c), int(i), v] for (c, i), v in zip(nz.tolist(), values)]


def _sparse_body(model: PerceptronModel) -> dict:
    triplets = _triplets(model.effective_weight())
    return {
        "bias": _floats(model.bias),
        "weights": triplets,
        "weights_columns": ["class", "input", "weight"],
        "nonzero_weights": len(triplets),
    }


def _sparse_network_body(model) -> dict:
    """A multilayer software network (engine.baselines.mlp): each layer's non-zero weights and biases."""
    layers = []
    for l, (w, b) in enumerate(zip(model.layer_weights(), model.layer_biases())):
        triplets = _triplets(w)
        layers.append({"index": l, "bias": _floats(b), "weights": triplets, "nonzero_weights": len(triplets)})
    return {"layer_sizes": [int(n) for n in model.layer_sizes], "layer_ks": [int(k) for k in model.layer_ks],
            "weights_columns": ["neuron", "input", "weight"], "layers": layers}


def result_document(result: RunResult, *, dataset: Any = None, class_names: Any = _UNSET,
                    image_shape: Any = _UNSET) -> dict:
    """The topology document of a finished :class:`RunResult` (its ``model`` must be set).

    Class names and image shape come from the arguments, else from ``dataset`` (the Dataset the run was
    trained on), else from what the result recorded about its dataset (``result.dataset_info``), else the
    defaults of :func:`topology_document`.
    """
    if result.model is None:
        raise ValueError("this run result holds no trained model to export")
    if dataset is None or isinstance(dataset, str):
        info = getattr(result, "dataset_info", None) or {}  # what the run recorded about its dataset
        if class_names is _UNSET and info.get("class_names"):
            class_names = info["class_names"]
        if image_shape is _UNSET and "image_shape" in info:
            image_shape = info["image_shape"]
        dataset = dataset if dataset is not None else result.config.dataset
    metrics = result.summary()
    metrics["test_accuracy"] = float(result.test_accuracy)  # full precision (summary() rounds for display)
    return topology_document(result.model, result.config, metrics=metrics, history=result.history,
                             dataset=dataset, class_names=class_names, image_shape=image_shape,
                             versions=result.versions, created=utc_now_iso())


def write_topology(doc: Union[dict, "Topology"], path: PathLike) -> Path:
    """Write a topology document as JSON, atomically. A loaded :class:`Topology` is written in the current
    format version (so this upgrades an old file: ``write_topology(load_topology(old), new)``)."""
    if isinstance(doc, Topology):
        doc = doc.to_document()
    return atomic_write_text(path, dumps_json(doc))


def csv_path_for(json_path: PathLike) -> Path:
    """The CSV written next to a JSON topology file: same name, ``.csv`` suffix."""
    return Path(json_path).with_suffix(".csv")


def _topology_table(doc: Union[dict, "Topology"]) -> tuple[list, list]:
    """Columns and rows of the lab CSV: one row per resonator (RF) or per non-zero weight (sparse)."""
    if isinstance(doc, Topology):
        doc = doc.document
    if doc["kind"] == KIND_SPARSE_NETWORK:
        shape = doc.get("image_shape")
        rows = [[layer["index"], c, i, *(_pixel(int(i), shape) if layer["index"] == 0 else (None, None)), float(w)]
                for layer in doc["layers"] for c, i, w in layer["weights"]]
        return ["layer", "neuron", "input", "pixel_row", "pixel_col", "weight"], rows
    if doc["kind"] == KIND_RF_NETWORK:
        rows = [[layer["index"], j, r, float(res["frequency_ghz"]), float(res["comb_position"]), res["sign"],
                 res["attached_input"], res.get("pixel_row"), res.get("pixel_col"), float(res["coupling_v_per_uw"])]
                for layer in doc["layers"] for j, chain in enumerate(layer["chains"])
                for r, res in enumerate(chain["resonators"])]
        return list(NETWORK_CSV_COLUMNS), rows
    if doc["kind"] == KIND_RF:
        first = doc["chains"][0]["resonators"][0] if doc["chains"] and doc["chains"][0]["resonators"] else {}
        extra = [c for c in ("alpha", "k_sd") if c in first]
        rows = [[j, r, float(res["frequency_ghz"]), float(res["comb_position"]), res["sign"],
                 res["attached_input"], res.get("pixel_row"), res.get("pixel_col"),
                 float(res["coupling_v_per_uw"]), *[float(res[c]) for c in extra]]
                for j, chain in enumerate(doc["chains"]) for r, res in enumerate(chain["resonators"])]
        return [*RF_CSV_COLUMNS, *extra], rows
    shape = doc.get("image_shape")
    rows = [[c, i, *_pixel(int(i), shape), float(w)] for c, i, w in doc["weights"]]
    return list(SPARSE_CSV_COLUMNS), rows


def topology_csv_text(doc: Union[dict, "Topology"]) -> str:
    """The lab CSV of a document or loaded :class:`Topology` (columns in docs/topology-format.md)."""
    return csv_text(*_topology_table(doc))


def write_topology_csv(doc: Union[dict, "Topology"], path: PathLike) -> Path:
    """Write the lab CSV of a document (or of a loaded :class:`Topology`), atomically."""
    return write_csv(path, *_topology_table(doc))


def export_result(result: RunResult, path: PathLike, *, csv_path: Union[PathLike, None, bool] = True,
                  dataset: Any = None, class_names: Any = _UNSET,
                  image_shape: Any = _UNSET) -> tuple[Path, Optional[Path]]:
    """Export a trained run: JSON at ``path`` and, unless ``csv_path`` is False/None, the CSV (default: the same
    name with a ``.csv`` suffix). ``dataset``, ``class_names``, ``image_shape``: see :func:`result_document`.
    Returns (json path, csv path or None)."""
    path = Path(path)
    if path.suffix.lower() == ".csv":
        raise ValueError(f"the topology file {path} must not end in .csv (the CSV is written next to the JSON)")
    doc = result_document(result, dataset=dataset, class_names=class_names, image_shape=image_shape)
    if csv_path is None or csv_path is False:
        return write_topology(doc, path), None
    return write_topology_pair(doc, path, csv_path_for(path) if csv_path is True else Path(csv_path))


def write_topology_pair(doc: Union[dict, "Topology"], path: PathLike, csv_path: PathLike) -> tuple[Path, Path]:
    """Write a topology's JSON and its lab CSV as a pair: both new, or (when this raises) both as they were.

    Both texts are built and written to fsynced temporary files first; then the CSV is renamed into place and
    the JSON last (:func:`engine.files.atomic_write_files`; a failed rename puts the old CSV back, and SIGINT
    or SIGTERM wait until both renames are done). After a kill (SIGKILL, power loss) a reader sees: while the
    temporary files are written, the old pair (or none); between the two renames, which take microseconds,
    the new CSV beside the old JSON (the JSON, which ``load_topology`` reads, is still the old network, and
    ``rfexplorer-cli export --from FILE.json`` writes its CSV again); after them, the new pair."""
    if isinstance(doc, Topology):
        doc = doc.to_document()
    path, csv_path = Path(path), Path(csv_path)
    if path.resolve() == csv_path.resolve():
        raise ValueError(f"the CSV {csv_path} would overwrite the topology file")
    pair = [(csv_path, topology_csv_text(doc).encode("utf-8")), (path, dumps_json(doc).encode("utf-8"))]
    atomic_write_files(pair)
    return path, csv_path


# ---------------------------------------------------------------------------------------------------------
# The loaded topology
# ---------------------------------------------------------------------------------------------------------

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


@dataclass
class Topology:
    """A validated topology file: the rebuilt model (eval mode) and its metadata."""

    kind: str  #: 'rf-perceptron' or 'sparse-perceptron'
    model_name: str  #: 'rf', 'rigl', ... (engine.config.MODELS)
    model: PerceptronModel  #: RFPerceptron, DensePerceptron or MaskedPerceptron, in eval mode
    dataset: str  #: name of the dataset it was trained on
    n_inputs: int
    n_classes: int
    class_names: tuple  #: one name per class ("0" .. "C-1" for version-1 files, which have none)
    image_shape: Optional[tuple[int, int]]
    config: RunConfig
    metrics: dict
    history: list
    versions: dict
    created: str
    format_version: int  #: the version of the file as read (1 for a file upgraded on load)
    document: dict = field(repr=False)  #: the validated JSON document, upgraded to the current version
    source: Optional[Path] = None

    @property
    def recorded_accuracy(self) -> Optional[float]:
        """The accuracy recorded at export time (fraction), if any."""
        v = self.metrics.get("test_accuracy")
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None

    @property
    def evaluated_on(self) -> str:
        """'test' or 'validation': where the recorded accuracy was measured."""
        return str(self.metrics.get("evaluated_on", "test"))

    @property
    def resonators_per_chain(self) -> int:
        return self.config.resonators_per_chain

    @property
    def class_names_recorded(self) -> bool:
        """False where the class names were made up on load (version-1 files record none)."""
        return self.format_version >= 2

    def setting(self, name: str, default: Any = None) -> Any:
        """A setting of the recorded run config by name (see :func:`find_setting`), or ``default``."""
        value = find_setting(self.document.get("config"), name)
        return default if value is None else value

    def to_document(self) -> dict:
        """This topology as a document of the current format version (what :func:`write_topology` writes)."""
        doc = topology_document(self.model, self.config, metrics=self.metrics, history=self.history,
                                dataset=self.dataset, class_names=self.class_names, image_shape=self.image_shape,
                                versions=self.versions, created=self.created or None)
        if doc["kind"] == KIND_RF and "inputs" in self.document:  # rebuilt models are frozen: keep the record
            doc["inputs"]["trained"] = bool(self.document["inputs"].get("trained", doc["inputs"]["trained"]))
        if doc["kind"] == KIND_RF_NETWORK and "layers" in self.document:
            for new, old in zip(doc["layers"], self.document["layers"]):
                new["inputs"]["trained"] = bool(old["inputs"].get("trained", new["inputs"]["trained"]))
        return doc


# ---------------------------------------------------------------------------------------------------------
# Reading: envelope and upgrade
# ---------------------------------------------------------------------------------------------------------

class _Problem(Exception):
    """One problem with a document, in words; turned into a TopologyFileError naming the file."""


def _file_name(source: str, limit: int = 48) -> str:
    """A file's path for a message: escaped, and over ``limit`` characters its end kept (the file's name)."""
    text = escaped(source)
    return text if len(text) <= limit else ELLIPSIS + text[-(limit - 1):]


def _fail(problem: str, source: str) -> TopologyFileError:
    """The error naming the file: one bounded line (engine.messages.sentence), no control characters."""
    problem = re.sub(r"\s+", " ", problem).strip().rstrip(".")
    rest = f" is invalid: {problem}."
    # the file's name takes what the problem leaves of the bounded sentence, and at least 40 characters
    room = max(40, SENTENCE_CHARS - len("The topology file ") - len(rest))
    return TopologyFileError(sentence(f"The topology file {_file_name(source, room)}{rest}"))


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _envelope(doc: Any) -> int:
    """Check the format name and version (what decides how the rest is read); returns the version."""
    if not isinstance(doc, dict):
        raise _Problem(f"its top level is {json_type_name(doc)} where a JSON object was expected")
    if "format" not in doc:
        raise _Problem("the file has no 'format' entry, so it is not an rfexplorer topology file")
    if doc["format"] != FORMAT_NAME:
        what = shown(doc["format"]) if isinstance(doc["format"], str) else json_type_name(doc["format"])
        raise _Problem(f"its format is {what}, not {FORMAT_NAME!r}")
    if "format_version" not in doc:
        raise _Problem("the file has no 'format_version' entry")
    version = doc["format_version"]
    if not _is_int(version):
        raise _Problem(f"format_version must be a whole number, not {json_type_name(version)}")
    if version > FORMAT_VERSION:
        raise _Problem(f"it has format version {shown(version)}, written by a newer rfexplorer; this version reads "
                       f"versions 1 to {FORMAT_VERSION}")
    if version < 1:
        raise _Problem(f"its format version {shown(version)} is not supported (this version reads versions 1 "
                       f"to {FORMAT_VERSION})")
    if version < 3 and doc.get("kind") in (KIND_RF_NETWORK, KIND_SPARSE_NETWORK):
        raise _Problem(f"it has format version {version} but kind {doc['kind']!r}, which exists only from format "
                       f"version 3 on")
    return version


def _upgrade_v1(doc: dict) -> dict:
    """A version-1 document as version 2 (a new top-level dict; nested values are shared, not copied).

    Version 1 had no class names (they become "0" .. "C-1"), kept ``image_shape``, ``versions`` and
    ``created`` optional, and its run config was the flat form (RunConfig.from_dict reads it)."""
    doc = dict(doc)
    doc["format_version"] = 2
    n = doc.get("n_classes")
    if "class_names" not in doc and _is_int(n) and 1 <= n <= MAX_CLASSES:
        doc["class_names"] = [str(c) for c in range(n)]
    doc.setdefault("image_shape", None)
    doc.setdefault("versions", {})
    if doc.get("created", "") is None:
        del doc["created"]
    return doc


def _upgrade_v2(doc: dict) -> dict:
    """A version-2 document as version 3: version 3 only adds the ``rf-network`` kind and the optional
    ``physics.stno`` entry, so a version-2 file is a valid version-3 file once relabelled."""
    doc = dict(doc)
    doc["format_version"] = 3
    return doc


_UPGRADES = {1: _upgrade_v1, 2: _upgrade_v2}


# ---------------------------------------------------------------------------------------------------------
# Reading: the sizes a file declares (checked before the schema walks it and before anything is allocated)
# ---------------------------------------------------------------------------------------------------------

def _declared(v: Any) -> Optional[int]:
    """A declared count (a positive whole number, 784 or 784.0), or None where the schema will complain."""
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return v if _is_int(v) and v >= 1 else None


def _over(name: str, value: Any, limit: int, field_name: str) -> _Problem:
    return _Problem(f"{name} is {shown(value)}, over the limit of {limit:,} ({ENV_PREFIX}{field_name.upper()} "
                    f"raises it)")


def _at_most(where: str, items: Any, most: int, what: str) -> None:
    """Refuse a list longer than ``most`` (cheap, before the schema walks it); other lengths are checked later."""
    if isinstance(items, list) and len(items) > most:
        raise _Problem(f"{where} has {len(items):,} entries where at most {most:,} were expected ({what})")


def _parameters(doc: dict, kind: Any, n_in: int, n_cls: int, sizes: Optional[list], ks: list) -> int:
    """The numbers the rebuilt network will hold (what loading allocates), from the declared sizes."""
    if kind == KIND_SPARSE:
        return n_cls * n_in + n_cls  # the weight matrix is rebuilt dense
    if kind == KIND_RF:
        return n_in + n_cls * (_declared(doc.get("resonators_per_chain")) or 1) + n_cls
    if sizes is None:
        return n_in + n_cls
    pairs = list(zip(sizes[:-1], sizes[1:]))
    if kind == KIND_SPARSE_NETWORK:
        return sum(a * b + b for a, b in pairs)
    return sum(a + b * (ks[l] if l < len(ks) else 1) + b for l, (a, b) in enumerate(pairs))


def _layer_sizes(doc: dict, lim: FileLimits) -> tuple[Optional[list], list]:
    """The declared layer_sizes (None unless a list of counts) and layer_ks of a multilayer file, in limits."""
    raw, raw_ks = doc.get("layer_sizes"), doc.get("layer_ks")
    layers = max([len(raw) - 1 if isinstance(raw, list) else 0,
                  *(len(v) for v in (raw_ks, doc.get("layers")) if isinstance(v, list))])
    if layers > lim.max_layers:
        raise _Problem(f"it has {layers:,} layers, over the limit of {lim.max_layers} ({ENV_PREFIX}MAX_LAYERS "
                       f"raises it)")
    ks = [_declared(k) or 1 for k in raw_ks] if isinstance(raw_ks, list) else []
    for l, k in enumerate(ks):
        if k > lim.max_resonators_per_chain:
            raise _over(f"layer_ks[{l}]", k, lim.max_resonators_per_chain, "max_resonators_per_chain")
    if not isinstance(raw, list) or not raw or any(_declared(n) is None for n in raw):
        return None, ks
    sizes = [_declared(n) for n in raw]
    for l, n in enumerate(sizes[1:-1], start=1):
        if n > lim.max_layer_size:
            raise _over(f"layer_sizes[{l}]", n, lim.max_layer_size, "max_layer_size")
    return sizes, ks


def _check_lists(doc: dict, kind: Any, n_in: int, n_cls: int, sizes: Optional[list], ks: list) -> None:
    """No list longer than the declared sizes allow (the exact counts are checked after the schema)."""
    _at_most("class_names", doc.get("class_names"), n_cls, "one per class")
    k = _declared(doc.get("resonators_per_chain")) or n_in
    if kind in (KIND_SPARSE, KIND_RF):
        layers = [("", doc, n_in, n_cls, k)]
    else:
        dims = sizes or [max(n_in, n_cls)] * (len(ks) + 1)
        layers = [(f"layers[{l}].", layer, dims[l], dims[l + 1], ks[l] if l < len(ks) else dims[l])
                  for l, layer in enumerate(doc.get("layers") or []) if isinstance(layer, dict) and l + 1 < len(dims)]
    for prefix, record, fan_in, fan_out, k_l in layers:
        _at_most(f"{prefix}bias", record.get("bias"), fan_out, "one per neuron")
        _at_most(f"{prefix}weights", record.get("weights"), fan_in * fan_out, f"a {fan_out} x {fan_in} layer")
        inputs = record.get("inputs")
        for name in ("frequency_ghz", "comb_position", "fabrication_draw"):
            _at_most(f"{prefix}inputs.{name}", inputs.get(name) if isinstance(inputs, dict) else None, fan_in,
                     "one per input")
        chains = record.get("chains")
        _at_most(f"{prefix}chains", chains, fan_out, "one per neuron")
        for j, chain in enumerate(chains if isinstance(chains, list) else ()):
            if isinstance(chain, dict):
                _at_most(f"{prefix}chains[{j}].resonators", chain.get("resonators"), k_l, "resonators per chain")


def _check_declared_sizes(doc: dict, lim: FileLimits) -> None:
    """Every size the file declares within ``lim``, and no list longer than those sizes, before the schema
    walks the document and before anything is allocated (a small file may declare a huge network)."""
    kind = doc.get("kind")
    n_in, n_cls = _declared(doc.get("n_inputs")), _declared(doc.get("n_classes"))
    if n_in is not None and n_in > lim.max_features:
        raise _over("n_inputs", n_in, lim.max_features, "max_features")
    if n_cls is not None and n_cls > lim.max_classes:
        raise _over("n_classes", n_cls, lim.max_classes, "max_classes")
    k = _declared(doc.get("resonators_per_chain"))
    if k is not None and k > lim.max_resonators_per_chain:
        raise _over("resonators_per_chain", k, lim.max_resonators_per_chain, "max_resonators_per_chain")
    sizes, ks = _layer_sizes(doc, lim)
    n_in, n_cls = n_in or lim.max_features, n_cls or lim.max_classes
    if sizes is not None and kind in (KIND_RF_NETWORK, KIND_SPARSE_NETWORK):
        n_in, n_cls = sizes[0], sizes[-1]
        if n_in > lim.max_features:
            raise _over("layer_sizes[0]", n_in, lim.max_features, "max_features")
        if n_cls > lim.max_classes:
            raise _over(f"layer_sizes[{len(sizes) - 1}]", n_cls, lim.max_classes, "max_classes")
    if kind in KINDS and _declared(doc.get("n_inputs")) and _declared(doc.get("n_classes")):
        total = _parameters(doc, kind, n_in, n_cls, sizes, ks)
        if total > lim.max_parameters:
            raise _Problem(f"its network would hold {total:,} numbers, over the limit of {lim.max_parameters:,} "
                           f"({ENV_PREFIX}MAX_PARAMETERS raises it)")
    _check_lists(doc, kind, n_in, n_cls, sizes, ks)
    _check_history(doc, lim)


def _check_history(doc: dict, lim: FileLimits) -> None:
    """At most one history row per epoch of the recorded run config (and never over the limit)."""
    history = doc.get("history")
    config = doc.get("config")
    epochs = _declared(find_setting(config, "epochs")) if isinstance(config, dict) else None
    if epochs is not None and epochs < lim.max_history_epochs:
        _at_most("history", history, epochs, f"one per epoch of config.epochs = {epochs}")
    elif isinstance(history, list) and len(history) > lim.max_history_epochs:
        raise _over("history", f"{len(history):,} rows", lim.max_history_epochs, "max_history_epochs")


# ---------------------------------------------------------------------------------------------------------
# Reading: every number finite, the network's numbers float32
# ---------------------------------------------------------------------------------------------------------

def _is_text(s: str) -> bool:
    """Whether ``s`` is Unicode text (JSON's \\ud800 escapes can make lone surrogates, which are not)."""
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _number_problem(v: Any, f32: bool) -> Optional[str]:
    """What is wrong with one parsed value as a number of the file (None: nothing, or not a number)."""
    if type(v) is float:
        if not math.isfinite(v):
            return f"is {v}, not a finite number"
        if f32 and abs(v) > F32_MAX:
            return f"is {shown(v)}, beyond float32 (largest {F32_MAX:.7g})"
        if f32 and v != 0 and abs(v) < F32_TINY:
            return f"is {shown(v)}, too small for float32 (it would become 0)"
    elif type(v) is int and abs(v) > (F32_MAX if f32 else 1.7976931348623157e308):
        return f"is {shown(v)}, beyond {'float32' if f32 else 'the float range'}"
    return None


def _walk_numbers(value: Any, path: tuple, f32: bool, budget: list) -> None:
    """Check every number under ``value`` (at ``path``); ``budget[0]``: values left to visit (None: no limit)."""
    items = value.items() if isinstance(value, dict) else enumerate(value)
    if budget[0] is not None:
        budget[0] -= len(value)
        if budget[0] < 0:
            raise _Problem(f"{json_path_text(path[:1])} holds more than {MAX_RECORD_VALUES:,} values")
    for key, v in items:
        if isinstance(v, (dict, list)):
            _walk_numbers(v, path + (key,), f32, budget)
        elif type(v) is float or type(v) is int:
            problem = _number_problem(v, f32)
            if problem is not None:
                raise _Problem(f"{_where(path + (key,))} {problem}")
        elif isinstance(v, str) and not _is_text(v):
            raise _Problem(f"{_where(path + (key,))} holds a lone surrogate (\\ud800-\\udfff), which is not text")
        if isinstance(key, str) and not _is_text(key):
            raise _Problem(f"{_where(path)} has a key with a lone surrogate (\\ud800-\\udfff), which is not text")


def _check_numbers(doc: dict) -> None:
    """NaN, ±Infinity and numbers beyond the float range refused everywhere; the network's numbers
    (:data:`NETWORK_FIELDS`) must also be float32 values; strings and keys must be Unicode text (no lone
    surrogates); each problem names the field's path. The record
    entries hold at most :data:`MAX_RECORD_VALUES` values (the history: 5 a row more, its length was checked)."""
    for key, value in doc.items():
        f32 = key in NETWORK_FIELDS
        if isinstance(value, (dict, list)):
            budget = None if f32 else MAX_RECORD_VALUES + (5 * len(value) if key == "history" else 0)
            _walk_numbers(value, (key,), f32, [budget])
        else:
            problem = _number_problem(value, f32)
            if problem is not None:
                raise _Problem(f"{_where((key,))} {problem}")
            if isinstance(value, str) and not _is_text(value):
                raise _Problem(f"{_where((key,))} holds a lone surrogate (\\ud800-\\udfff), which is not text")


# ---------------------------------------------------------------------------------------------------------
# Reading: the schema
# ---------------------------------------------------------------------------------------------------------

def topology_schema() -> dict:
    """The JSON Schema of the current format version (a fresh dict; see :data:`SCHEMA_TEXT`)."""
    return json.loads(SCHEMA_TEXT)


@functools.lru_cache(maxsize=1)
def _validator():
    return strict_schema_validator(topology_schema())


_TRIPLET_PARTS = ("class index", "input index", "weight")


def _where(path: Sequence) -> str:
    """A JSON path as people write it: ``chains[3].resonators[1].attached_input``, ``weights[0] class index``."""
    path = list(path)
    if len(path) == 3 and path[0] == "weights" and isinstance(path[2], int) and path[2] < 3:
        return f"weights[{path[1]}] {_TRIPLET_PARTS[path[2]]}"
    return json_path_text(path)


def _check_schema(doc: dict) -> None:
    error = best_schema_error(_validator(), doc)
    if error is None:
        return
    if error.validator == "not" and error.validator_value == {} and len(error.absolute_path) == 1:
        # an entry of the other kind (the rf-perceptron branch has "bias": {"not": {}}, ...)
        raise _Problem(f"it has an entry {error.absolute_path[0]!r}, which a file of kind {doc.get('kind')!r} "
                       f"must not have")
    raise _Problem(schema_problem(error, where=_where))


# ---------------------------------------------------------------------------------------------------------
# Reading: cross-checks and rebuilding
# ---------------------------------------------------------------------------------------------------------

def _count(where: str, items: Sequence, expected: int, what: str) -> None:
    if len(items) != expected:
        raise _Problem(f"{where} has {len(items)} entries where {expected} were expected ({what})")


def _close(a: torch.Tensor, b: torch.Tensor, rtol: float) -> torch.Tensor:
    return (a - b).abs() <= rtol * torch.maximum(a.abs(), b.abs()).clamp_min(1e-30)


def _first_false(ok: torch.Tensor) -> Optional[tuple]:
    bad = torch.nonzero(~ok, as_tuple=False)
    return tuple(int(i) for i in bad[0]) if len(bad) else None


def _check_model(name: str, kind: str) -> None:
    """The model must be registered (engine.models) and of the family the kind holds."""
    from .models import get_spec, list_models

    try:
        spec = get_spec(name)
    except ValueError:
        raise _Problem(f"its model {shown(name)} is unknown (this version has: {', '.join(list_models())})") from None
    if spec.is_rf != (kind in RF_KINDS):
        family = "an RF model" if spec.is_rf else "a baseline model"
        raise _Problem(f"its model {name!r} is {family}, which does not match kind {kind!r}")


def _run_config(doc: dict) -> RunConfig:
    try:
        config = RunConfig.from_dict(doc["config"])
    except (ValueError, TypeError, KeyError, OverflowError) as exc:
        reason = sentence(str(exc), 160).rstrip(".")
        raise _Problem(f"its run config is not valid ({reason or type(exc).__name__})") from None
    if config.model != doc["model"]:
        raise _Problem(f"its run config is for model {config.model!r} but the file holds model {doc['model']!r}")
    return config


def _device_params(d: dict) -> DeviceParams:
    try:
        return DeviceParams.from_dict({k: (float(v) if _is_int(v) else v) for k, v in d.items()})
    except (ValueError, TypeError) as exc:
        raise _Problem(f"its physics parameters are not valid ({exc})") from None


def _check_frequencies(where, u: torch.Tensor, f: torch.Tensor, params: DeviceParams, n_in: int) -> None:
    """u, f: float64 comb positions and GHz of the same shape on a comb of ``n_in`` inputs;
    ``where(name, index)`` names an entry."""
    lo, hi = tuning_range_comb(params, n_in)
    lo, hi = lo - COMB_SLACK, hi + COMB_SLACK
    bad = _first_false((u >= lo) & (u <= hi))
    if bad is not None:
        raise _Problem(f"{where('comb_position', bad)} is {u[bad].item()}, outside the tuning range "
                       f"[{lo:g}, {hi:g}]")
    expected = comb_to_ghz(u, params, n_in)
    bad = _first_false(_close(f, expected, FREQ_RTOL))
    if bad is not None:
        raise _Problem(f"{where('frequency_ghz', bad)} is {f[bad].item()} GHz but its comb position "
                       f"{u[bad].item()} gives {expected[bad].item():.9g} GHz")


def _check_inputs(inputs: dict, n_in: int, params: DeviceParams, prefix: str = "") -> torch.Tensor:
    """The comb positions (float64) of a layer's emitters, checked."""
    _count(f"{prefix}inputs.comb_position", inputs["comb_position"], n_in, "one per input")
    _count(f"{prefix}inputs.frequency_ghz", inputs["frequency_ghz"], n_in, "one per input")
    in_u = torch.tensor(inputs["comb_position"], dtype=torch.float64)
    _check_frequencies(lambda name, i: f"{prefix}inputs.{name}[{i[0]}]", in_u,
                       torch.tensor(inputs["frequency_ghz"], dtype=torch.float64), params, n_in)
    return in_u


def _check_readout(readout: dict, params: DeviceParams) -> float:
    log_gain = float(readout["log_gain"])
    if "gain" in readout:
        expected = math.exp(log_gain) / (params.k_sd * params.p_max_uw) if log_gain < 700 else math.inf
        if not abs(readout["gain"] - expected) <= GAIN_RTOL * max(abs(expected), abs(readout["gain"])):
            raise _Problem(f"readout.gain is {readout['gain']} but exp(log_gain) / (k_sd p_max) gives "
                           f"{expected:.9g}")
    return log_gain


def _check_chains(chains: list, n_chains: int, k: int, n_in: int, params: DeviceParams, shape, prefix: str = "",
                  bias_key: str = "bias", what: str = "one per class"):
    """Check one layer's chain records; returns (comb positions (C, K) float64, biases, alpha, k_sd), the last
    two per resonator or None."""
    _count(f"{prefix}chains", chains, n_chains, what)
    signs = [int(s) for s in chain_signs(k, params.parity).tolist()]
    first = chains[0]["resonators"][0] if chains[0]["resonators"] else {}
    has = {name: name in first or params_spread > 0
           for name, params_spread in (("alpha", params.alpha_dtod), ("k_sd", params.k_sd_dtod))}
    for j, chain in enumerate(chains):
        where = f"{prefix}chains[{j}]"
        if chain.get("index", j) != j:
            raise _Problem(f"{where}.index is {chain['index']} where {j} was expected")
        if bias_key not in chain:
            raise _Problem(f"{where} has no {bias_key!r} entry")
        _count(f"{where}.resonators", chain["resonators"], k, "resonators_per_chain")
        for r, res in enumerate(chain["resonators"]):
            w = f"{where}.resonators[{r}]"
            if res.get("index", r) != r:
                raise _Problem(f"{w}.index is {res['index']} where {r} was expected")
            if res["sign"] != signs[r]:
                raise _Problem(f"{w}.sign is {res['sign']} but a chain with parity {params.parity!r} has "
                               f"s_{r} = {signs[r]}")
            att = int(res["attached_input"])
            if att >= n_in:
                raise _Problem(f"{w}.attached_input is {att}, out of range (must be < n_inputs = {n_in})")
            for name, pos in (("pixel_row", 0), ("pixel_col", 1)):
                v = res.get(name)
                if v is not None and shape is not None and v != _pixel(att, shape)[pos]:
                    raise _Problem(f"{w}.{name} is {v} but attached input {att} is at row {att // shape[1]}, "
                                   f"column {att % shape[1]}")
            for name, needed in has.items():
                if needed and name not in res:
                    why = f"the physics has {name}_dtod > 0" if name not in first else "resonator 0 of chain 0 has one"
                    raise _Problem(f"{w} has no {name!r} entry ({why})")
    res_u = torch.tensor([[res["comb_position"] for res in c["resonators"]] for c in chains], dtype=torch.float64)
    res_f = torch.tensor([[res["frequency_ghz"] for res in c["resonators"]] for c in chains], dtype=torch.float64)
    _check_frequencies(lambda name, i: f"{prefix}chains[{i[0]}].resonators[{i[1]}].{name}", res_u, res_f,
                       params, n_in)

    def per_resonator(name: str):
        return [[res[name] for res in c["resonators"]] for c in chains] if has[name] else None

    return res_u, [float(c[bias_key]) for c in chains], per_resonator("alpha"), per_resonator("k_sd")


def _load_rf(doc: dict, n_inputs: int, n_classes: int, shape, config: RunConfig):
    from .rf_perceptron import RFParams, RFPerceptron

    params = _device_params(doc["physics"])
    k = int(doc["resonators_per_chain"])
    if k > n_inputs:
        raise _Problem(f"resonators_per_chain is {k}, more than the {n_inputs} inputs")
    if config.resonators_per_chain != k:
        raise _Problem(f"its run config has {config.resonators_per_chain} resonators per chain but the file "
                       f"holds {k}")
    if config.hidden:
        raise _Problem("its run config has hidden layers but the file holds a single-layer network")
    in_u = _check_inputs(doc["inputs"], n_inputs, params)
    log_gain = _check_readout(doc["readout"], params)
    res_u, bias, alpha_r, k_sd_r = _check_chains(doc["chains"], n_classes, k, n_inputs, params, shape)
    chip = _check_fabrication(doc["chains"], doc["inputs"], params)
    rf_params = config.model_params if isinstance(config.model_params, RFParams) else None
    model = RFPerceptron.from_state(params, in_u.to(torch.float32), res_u.to(torch.float32), bias, log_gain,
                                    alpha_r=alpha_r, k_sd_r=k_sd_r, rf_params=rf_params)
    if chip is not None:  # the chip it was trained or evaluated on, not a new one
        model.chains.freq_eps_r, model.chains.freq_eps_in = chip
    return model


def _layer_shape(doc: dict, n_inputs: int, n_classes: int) -> tuple[list, list]:
    """(layer_sizes, layer_ks) of a multilayer document, checked against n_inputs, n_classes and each other."""
    sizes = [int(n) for n in doc["layer_sizes"]]
    ks = [int(k) for k in doc["layer_ks"]]
    if sizes[0] != n_inputs or sizes[-1] != n_classes:
        raise _Problem(f"layer_sizes {sizes} must start with n_inputs = {n_inputs} and end with n_classes = "
                       f"{n_classes}")
    _count("layer_ks", ks, len(sizes) - 1, "one per layer")
    _count("layers", doc["layers"], len(sizes) - 1, "one per layer")
    return sizes, ks


def _load_rf_network(doc: dict, n_inputs: int, n_classes: int, shape, config: RunConfig):
    from .multilayer import RFNetwork
    from .rf_perceptron import RFParams

    params = _device_params(doc["physics"])
    sizes, ks = _layer_shape(doc, n_inputs, n_classes)
    for l, (k, fan_in) in enumerate(zip(ks, sizes)):
        if k > fan_in:
            raise _Problem(f"layer_ks[{l}] is {k}, more than the layer's {fan_in} inputs")
    if tuple(config.hidden) != tuple(sizes[1:-1]) or tuple(config.layer_ks) != tuple(ks):
        raise _Problem(f"its run config has hidden layers {list(config.hidden)} and K {list(config.layer_ks)} "
                       f"but the file holds layers {sizes} and K {ks}")
    log_gain = _check_readout(doc["readout"], params)
    states = []
    last = len(ks) - 1
    for l, layer in enumerate(doc["layers"]):
        prefix = f"layers[{l}]."
        if layer.get("index", l) != l:
            raise _Problem(f"layers[{l}].index is {layer['index']} where {l} was expected")
        in_u = _check_inputs(layer["inputs"], sizes[l], params, prefix)
        hidden = l < last
        if hidden and "stno" not in layer:
            raise _Problem(f"layers[{l}] is a hidden layer but has no 'stno' entry")
        if not hidden and "stno" in layer:
            raise _Problem(f"layers[{l}] is the output layer, which has no oscillators, but has an 'stno' entry")
        res_u, bias, alpha_r, k_sd_r = _check_chains(
            layer["chains"], sizes[l + 1], ks[l], sizes[l], params, shape if l == 0 else None, prefix,
            "bias_current_ith" if hidden else "bias", "one per neuron of the layer")
        chip = _check_fabrication(layer["chains"], layer["inputs"], params, prefix)
        states.append((in_u, res_u, bias, alpha_r, k_sd_r, layer.get("stno"), chip))
    rf_params = config.model_params if isinstance(config.model_params, RFParams) else None
    model = RFNetwork(n_inputs, n_classes, sizes[1:-1], ks, device=params, params=rf_params, train_inputs=False)
    f32 = lambda t: torch.as_tensor(t, dtype=torch.float32)  # noqa: E731
    with torch.no_grad():
        for l, (in_u, res_u, bias, alpha_r, k_sd_r, stno, chip) in enumerate(states):
            chains = model.layers[l]
            if chip is not None:
                chains.freq_eps_r, chains.freq_eps_in = chip
            chains.input_comb.copy_(f32(in_u))
            chains.resonator_comb.copy_(f32(res_u))
            if alpha_r is not None:
                chains.alpha_r = f32(alpha_r).clone()
            if k_sd_r is not None:
                chains.k_sd_r = f32(k_sd_r).clone()
            if l < last:
                model.hidden_bias[l].copy_(f32(bias))
                model.log_gm[l].fill_(float(stno["log_gm"]))
            else:
                model.bias.copy_(f32(bias))
        model.log_gain.fill_(log_gain)
    model.calibrated = True
    model.eval()
    return model


def _load_sparse(doc: dict, n_inputs: int, n_classes: int, config: RunConfig) -> PerceptronModel:
    from .baselines.dense import DensePerceptron
    from .baselines.masked import BUDGET_SHAPES, MaskedPerceptron
    from .models import get_spec

    _count("bias", doc["bias"], n_classes, "one per class")
    triplets = doc["weights"]
    if len(triplets) > n_inputs * n_classes:
        raise _Problem(f"it lists {len(triplets)} weights, more than the {n_inputs * n_classes} a {n_classes} x "
                       f"{n_inputs} perceptron has")
    for t, (c, i, _) in enumerate(triplets):
        if c >= n_classes:
            raise _Problem(f"weights[{t}] class index is {c}, out of range (must be < n_classes = {n_classes})")
        if i >= n_inputs:
            raise _Problem(f"weights[{t}] input index is {i}, out of range (must be < n_inputs = {n_inputs})")
    weight = torch.zeros(n_classes, n_inputs, dtype=torch.float32)
    if triplets:
        rc = torch.tensor([[int(c), int(i)] for c, i, _ in triplets], dtype=torch.long)
        flat = rc[:, 0] * n_inputs + rc[:, 1]
        uniq, counts = torch.unique(flat, return_counts=True)
        if len(uniq) != len(flat):
            dup = int(uniq[counts > 1][0])
            raise _Problem(f"the weight of class {dup // n_inputs}, input {dup % n_inputs} is listed twice")
        weight[rc[:, 0], rc[:, 1]] = torch.tensor([float(w) for _, _, w in triplets], dtype=torch.float32)
    spec = get_spec(doc["model"])
    k = config.resonators_per_chain
    if spec.uses_k and len(triplets) > k * n_classes:
        raise _Problem(f"it lists {len(triplets)} non-zero weights, more than its budget of {k} x {n_classes}")
    if "nonzero_weights" in doc and doc["nonzero_weights"] != len(triplets):
        raise _Problem(f"nonzero_weights is {doc['nonzero_weights']} but it lists {len(triplets)} weights")
    bias = torch.tensor(doc["bias"], dtype=torch.float32)
    if not spec.uses_k:  # the dense perceptron: every weight in use, no budget
        return DensePerceptron.from_state(weight, bias)
    budget = find_setting(doc["config"], "budget")
    return MaskedPerceptron.from_state(weight, weight != 0, bias, k=min(k, n_inputs),
                                       budget=budget if budget in BUDGET_SHAPES else "per-output")


def _layer_matrix(where: str, triplets: list, n_out: int, n_in: int) -> torch.Tensor:
    """The (n_out, n_in) weight matrix of [row, column, value] triplets, checked."""
    weight = torch.zeros(n_out, n_in, dtype=torch.float32)
    seen = set()
    for t, (c, i, w) in enumerate(triplets):
        if c >= n_out:
            raise _Problem(f"{where}weights[{t}] neuron index is {c}, out of range (must be < {n_out})")
        if i >= n_in:
            raise _Problem(f"{where}weights[{t}] input index is {i}, out of range (must be < {n_in})")
        if (c, i) in seen:
            raise _Problem(f"{where}weights lists the weight of neuron {c}, input {i} twice")
        seen.add((c, i))
        weight[int(c), int(i)] = float(w)
    return weight


def _load_sparse_network(doc: dict, n_inputs: int, n_classes: int, config: RunConfig) -> PerceptronModel:
    from .baselines.masked import BUDGET_SHAPES
    from .baselines.mlp import DenseMLP, PrunedMLP, RigLMLP
    from .models import get_spec

    sizes, ks = _layer_shape(doc, n_inputs, n_classes)
    if tuple(config.hidden) != tuple(sizes[1:-1]):
        raise _Problem(f"its run config has hidden layers {list(config.hidden)} but the file holds layers {sizes}")
    spec = get_spec(doc["model"])
    budget = find_setting(doc["config"], "budget")
    budget = budget if budget in BUDGET_SHAPES else "per-output"
    hidden = tuple(sizes[1:-1])
    for l, layer in enumerate(doc["layers"]):  # every count checked before a layer is allocated
        if layer.get("index", l) != l:
            raise _Problem(f"layers[{l}].index is {layer['index']} where {l} was expected")
        _count(f"layers[{l}].bias", layer["bias"], sizes[l + 1], "one per neuron of the layer")
    with torch.random.fork_rng(devices=[]):  # a throw-away initial state, replaced below
        if not spec.uses_k:
            model = DenseMLP(n_inputs, n_classes, hidden)
        else:
            mlp_class = {"prune": PrunedMLP, "rigl": RigLMLP}.get(doc["model"])
            if mlp_class is None:
                raise _Problem(f"model {doc['model']!r} has no multilayer version")
            for l, (k, fan_in) in enumerate(zip(ks, sizes)):
                if not 1 <= k <= fan_in:
                    raise _Problem(f"layer_ks[{l}] is {k}, outside 1 to the layer's {fan_in} inputs")
            model = mlp_class(n_inputs, n_classes, hidden, tuple(ks), budget)
    rebuilt = []
    for l, layer in enumerate(doc["layers"]):
        where = f"layers[{l}]."
        n_in, n_out = sizes[l], sizes[l + 1]
        weight = _layer_matrix(where, layer["weights"], n_out, n_in)
        if "nonzero_weights" in layer and layer["nonzero_weights"] != len(layer["weights"]):
            raise _Problem(f"{where}nonzero_weights is {layer['nonzero_weights']} but it lists "
                           f"{len(layer['weights'])} weights")
        bias = torch.tensor(layer["bias"], dtype=torch.float32)
        layer_class = type(model.layers[l])
        if not spec.uses_k:
            rebuilt.append(layer_class.from_state(weight, bias))
            continue
        k = ks[l]
        active = int((weight != 0).sum(dim=1).max()) if budget == "per-output" else int((weight != 0).sum())
        allowed = k if budget == "per-output" else k * n_out
        if active > allowed:
            raise _Problem(f"{where}weights hold {active} non-zero weights "
                           f"{'for one neuron' if budget == 'per-output' else 'in the layer'}, more than its "
                           f"budget of {allowed}")
        rebuilt.append(layer_class.from_state(weight, weight != 0, bias, k=k, budget=budget))
    model.layers = torch.nn.ModuleList(rebuilt)
    return model.eval()


def _topology(doc: Any, limits: Optional[FileLimits] = None) -> Topology:
    version = _envelope(doc)
    for v in range(version, FORMAT_VERSION):
        doc = _UPGRADES[v](doc)
    _check_declared_sizes(doc, limits or current_limits())  # before the schema walks it, before any allocation
    try:
        _check_numbers(doc)
    except RecursionError:
        raise _Problem("it nests too deeply to be read") from None
    _check_schema(doc)
    n_inputs, n_classes = int(doc["n_inputs"]), int(doc["n_classes"])  # JSON Schema's integers include 784.0
    _check_model(doc["model"], doc["kind"])
    _count("class_names", doc["class_names"], n_classes, "one per class")
    shape = doc["image_shape"]
    if shape is not None:
        shape = (int(shape[0]), int(shape[1]))
        if shape[0] * shape[1] != n_inputs:
            raise _Problem(f"image_shape {shape[0]}x{shape[1]} does not have n_inputs = {n_inputs} pixels")
    config = _run_config(doc)
    if doc["kind"] == KIND_RF:
        model = _load_rf(doc, n_inputs, n_classes, shape, config)
    elif doc["kind"] == KIND_RF_NETWORK:
        model = _load_rf_network(doc, n_inputs, n_classes, shape, config)
    elif doc["kind"] == KIND_SPARSE_NETWORK:
        model = _load_sparse_network(doc, n_inputs, n_classes, config)
    else:
        model = _load_sparse(doc, n_inputs, n_classes, config)
    return Topology(kind=doc["kind"], model_name=doc["model"], model=model, dataset=doc["dataset"],
                    n_inputs=n_inputs, n_classes=n_classes, class_names=tuple(doc["class_names"]),
                    image_shape=shape, config=config, metrics=doc.get("metrics", {}),
                    history=doc.get("history", []), versions=doc["versions"], created=doc.get("created", ""),
                    format_version=version, document=doc)


def topology_from_document(doc: Any, source: str = "<document>", *,
                           limits: Optional[FileLimits] = None) -> Topology:
    """Validate a parsed document (any supported version) and rebuild its model (see :func:`load_topology`).

    ``limits``: the sizes it may declare (default :func:`engine.limits.current_limits`), checked before anything
    is allocated."""
    try:
        return _topology(doc, limits)
    except _Problem as exc:
        raise _fail(str(exc), source) from None


def load_topology(path: PathLike, *, limits: Optional[FileLimits] = None) -> Topology:
    """Read, validate and rebuild a topology file (any version from 1 to :data:`FORMAT_VERSION`).

    Raises :class:`TopologyFileError` (one sentence naming the file and the field) if anything is wrong:
    missing, unreadable, too large (:data:`MAX_FILE_BYTES`), a pickle or checkpoint, not JSON, wrong format
    or version, anything the schema refuses (missing keys, wrong types, values out of range, NaN or
    Infinity), or a failed cross-check (lengths, frequencies, signs, pixels, gain, run config). Sizes over
    ``limits`` (default :func:`engine.limits.current_limits`: inputs, classes, layers, layer sizes, K, total
    parameters, history rows) are refused before anything is allocated; every number must be finite, and
    the network's numbers float32 values."""
    path = Path(path)
    lim = limits or current_limits()
    doc = read_json(path, what="topology file", max_bytes=min(MAX_FILE_BYTES, lim.max_json_bytes),
                    error=TopologyFileError)
    topo = topology_from_document(doc, source=str(path), limits=lim)
    topo.source = path
    return topo


# ---------------------------------------------------------------------------------------------------------
# The published schema (format version 2): docs/topology.schema.json is this text, written by
#     python -m engine.topology > docs/topology.schema.json
# ---------------------------------------------------------------------------------------------------------

SCHEMA_TEXT = r"""{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "$id": "urn:rfexplorer:topology-format:3",
  "title": "rfexplorer topology file, format version 3",
  "description": "A trained network (RF spintronic perceptron, multilayer RF network, sparse/dense single-layer baseline, or multilayer software network) with its metadata. This schema checks structure, types and ranges; the cross-checks between fields (list lengths against n_inputs, n_classes and resonators_per_chain, frequencies against comb positions, chain signs against the parity, ...) are described in topology-format.md and done by rfexplorer's reader. Strict JSON only: NaN and Infinity are not numbers.",
  "type": "object",
  "required": ["format", "format_version", "kind", "model", "dataset", "n_inputs", "n_classes", "class_names",
               "image_shape", "config", "versions"],
  "properties": {
    "format": {"const": "rfexplorer-topology"},
    "format_version": {"const": 3},
    "kind": {"enum": ["rf-perceptron", "sparse-perceptron", "rf-network", "sparse-network"]},
    "model": {
      "description": "Registered model name (rf, rf-input, rf-frozen, dense, prune, random, rigl, set, ...); the reader checks that it exists and belongs to the kind's family.",
      "type": "string", "minLength": 1, "maxLength": 64
    },
    "dataset": {"description": "A dataset name or the path of a dataset file.", "type": "string", "minLength": 1, "maxLength": 4096},
    "n_inputs": {"type": "integer", "minimum": 1, "maximum": 1000000},
    "n_classes": {"type": "integer", "minimum": 1, "maximum": 100000},
    "class_names": {
      "type": "array",
      "items": {"type": "string", "minLength": 1, "maxLength": 200},
      "minItems": 1,
      "maxItems": 100000,
      "uniqueItems": true
    },
    "image_shape": {
      "description": "[rows, columns] of the input image (row-major flattening), or null.",
      "type": ["array", "null"],
      "prefixItems": [{"type": "integer", "minimum": 1}, {"type": "integer", "minimum": 1}],
      "items": false,
      "minItems": 2
    },
    "config": {
      "description": "The full resolved run configuration (RunConfig.to_dict()); checked by the reader.",
      "type": "object"
    },
    "versions": {"type": "object", "additionalProperties": {"type": "string", "maxLength": 1000}},
    "created": {"type": "string", "maxLength": 64},
    "metrics": {
      "type": "object",
      "properties": {
        "test_accuracy": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
        "evaluated_on": {"enum": ["test", "validation"]}
      }
    },
    "history": {
      "description": "One row per epoch: [epoch, loss, train_accuracy, test_accuracy]; null where not measured. At most config.epochs rows (checked by the reader).",
      "type": "array",
      "maxItems": 100000,
      "items": {"type": "array", "maxItems": 4, "items": {"type": ["number", "null"]}}
    },

    "resonators_per_chain": {"type": "integer", "minimum": 1, "maximum": 1000000},
    "physics": {"$ref": "#/$defs/physics"},
    "readout": {"$ref": "#/$defs/readout"},
    "inputs": {"$ref": "#/$defs/inputs"},
    "chains": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/chain"}},
    "units": {"type": "object", "additionalProperties": {"type": "string", "maxLength": 200}},

    "layer_sizes": {
      "description": "Neurons per layer, inputs first, classes last: [N, H1, ..., C].",
      "type": "array", "minItems": 3, "maxItems": 65, "items": {"type": "integer", "minimum": 1, "maximum": 1000000}
    },
    "layer_ks": {
      "description": "Resonators per chain of every layer, first to last.",
      "type": "array", "minItems": 2, "maxItems": 64, "items": {"type": "integer", "minimum": 1, "maximum": 1000000}
    },
    "layers": {"description": "One entry per layer, first to last.", "type": "array", "minItems": 2, "maxItems": 64},

    "bias": {"type": "array", "minItems": 1, "items": {"type": "number"}},
    "weights": {"type": "array", "items": {"$ref": "#/$defs/weight"}},
    "weights_columns": {"enum": [["class", "input", "weight"], ["neuron", "input", "weight"]]},
    "nonzero_weights": {"type": "integer", "minimum": 0}
  },
  "additionalProperties": false,
  "allOf": [
    {
      "if": {"properties": {"kind": {"const": "rf-perceptron"}}, "required": ["kind"]},
      "then": {
        "required": ["resonators_per_chain", "physics", "readout", "inputs", "chains"],
        "properties": {
          "bias": {"not": {}}, "weights": {"not": {}}, "weights_columns": {"not": {}}, "nonzero_weights": {"not": {}},
          "layer_sizes": {"not": {}}, "layer_ks": {"not": {}}, "layers": {"not": {}},
          "chains": {"items": {"required": ["bias"]}}
        }
      }
    },
    {
      "if": {"properties": {"kind": {"const": "rf-network"}}, "required": ["kind"]},
      "then": {
        "required": ["layer_sizes", "layer_ks", "physics", "readout", "layers"],
        "properties": {
          "bias": {"not": {}}, "weights": {"not": {}}, "weights_columns": {"not": {}}, "nonzero_weights": {"not": {}},
          "resonators_per_chain": {"not": {}}, "inputs": {"not": {}}, "chains": {"not": {}},
          "layers": {"items": {"$ref": "#/$defs/layer"}}
        }
      }
    },
    {
      "if": {"properties": {"kind": {"const": "sparse-network"}}, "required": ["kind"]},
      "then": {
        "required": ["layer_sizes", "layer_ks", "layers"],
        "properties": {
          "bias": {"not": {}}, "weights": {"not": {}}, "nonzero_weights": {"not": {}},
          "resonators_per_chain": {"not": {}}, "physics": {"not": {}}, "readout": {"not": {}}, "inputs": {"not": {}},
          "chains": {"not": {}}, "units": {"not": {}},
          "layers": {"items": {"$ref": "#/$defs/sparse_layer"}}
        }
      }
    },
    {
      "if": {"properties": {"kind": {"const": "sparse-perceptron"}}, "required": ["kind"]},
      "then": {
        "required": ["bias", "weights"],
        "properties": {
          "resonators_per_chain": {"not": {}}, "physics": {"not": {}}, "readout": {"not": {}}, "inputs": {"not": {}},
          "chains": {"not": {}}, "units": {"not": {}}, "layer_sizes": {"not": {}}, "layer_ks": {"not": {}},
          "layers": {"not": {}}
        }
      }
    }
  ],

  "$defs": {
    "physics": {
      "description": "engine.physics.DeviceParams.",
      "type": "object",
      "required": ["alpha", "k_sd", "phi", "parity", "p_max_uw", "f_min_ghz", "f_max_ghz", "plan",
                   "tuning_margin", "alpha_dtod", "k_sd_dtod", "readout_noise_v"],
      "properties": {
        "alpha": {"description": "Gilbert damping (linewidth = alpha * f); below 1e-6 or above 1 the physics is degenerate.", "type": "number", "minimum": 1e-6, "maximum": 1},
        "k_sd": {"description": "Spin-diode sensitivity, V per µW (normalised).", "type": "number", "exclusiveMinimum": 0},
        "phi": {"description": "Lineshape phase, rad.", "type": "number"},
        "parity": {"enum": ["even", "odd"]},
        "p_max_uw": {"description": "Input power for a pixel of value 1, µW.", "type": "number", "exclusiveMinimum": 0},
        "f_min_ghz": {"description": "GHz (1 MHz to 10 THz).", "type": "number", "minimum": 0.001, "maximum": 10000},
        "f_max_ghz": {"description": "GHz (1 MHz to 10 THz).", "type": "number", "minimum": 0.001, "maximum": 10000},
        "plan": {"enum": ["geometric", "linear"]},
        "tuning_margin": {"description": "In input spacings (comb units).", "type": "number", "minimum": 0},
        "alpha_dtod": {"type": "number", "minimum": 0},
        "k_sd_dtod": {"type": "number", "minimum": 0},
        "readout_noise_v": {"type": "number", "minimum": 0},
        "tuning_range": {"description": "Relative half-width of each device's tuning range around its fabricated frequency; null = unlimited.", "type": ["number", "null"], "exclusiveMinimum": 0, "maximum": 1},
        "tuning_bits": {"description": "Set-point resolution: 2^bits levels across each device's tuning range; null = continuous.", "type": ["integer", "null"], "minimum": 1, "maximum": 24},
        "freq_spread": {"description": "Fabrication spread of each device's true frequency around its set-point, relative std.", "type": "number", "minimum": 0},
        "calibrated": {"description": "Whether fabrication offsets are measured and trimmed (only the quantisation residual remains).", "type": "boolean"},
        "freq_jitter_lw": {"description": "Cycle-to-cycle frequency noise at every read-out, std in the device's own linewidths.", "type": "number", "minimum": 0},
        "power_noise": {"description": "Cycle-to-cycle noise of each input power at every read-out, relative std.", "type": "number", "minimum": 0},
        "stno": {"$ref": "#/$defs/stno_params"}
      },
      "additionalProperties": false
    },
    "stno_params": {
      "description": "engine.physics.STNOParams: the hidden layers' spin-torque nano-oscillators.",
      "type": "object",
      "properties": {
        "g_m": {"description": "Voltage-to-current conversion, µA per mV.", "type": "number", "exclusiveMinimum": 0},
        "v_bias": {"description": "Voltage bias added to every hidden chain, V.", "type": "number"},
        "i_th_ua": {"description": "Threshold current, µA.", "type": "number", "exclusiveMinimum": 0},
        "clamp_ratio": {"description": "Clamp current / threshold current.", "type": "number", "exclusiveMinimum": 1},
        "q": {"description": "Non-linear damping Q.", "type": "number", "minimum": 0},
        "r_ohm": {"description": "Oscillator resistance, Ohm.", "type": "number", "exclusiveMinimum": 0},
        "amplification": {"description": "Power amplification A.", "type": "number", "exclusiveMinimum": 0},
        "train_gain": {"type": "boolean"}
      },
      "additionalProperties": false
    },
    "layer": {
      "description": "One layer of an rf-network: its emitters (the inputs or the previous layer's STNOs) and its chains; hidden layers also give their STNO conversion.",
      "type": "object",
      "required": ["inputs", "chains"],
      "properties": {
        "index": {"type": "integer", "minimum": 0},
        "inputs": {"$ref": "#/$defs/inputs"},
        "chains": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/chain"}},
        "stno": {
          "type": "object",
          "required": ["log_gm"],
          "properties": {"log_gm": {"description": "exp(log_gm) must be a float32: -80 to 80.", "type": "number", "minimum": -80, "maximum": 80}, "g_m": {"type": "number", "exclusiveMinimum": 0}},
          "additionalProperties": false
        }
      },
      "additionalProperties": false
    },
    "readout": {
      "type": "object",
      "required": ["log_gain"],
      "properties": {
        "log_gain": {"description": "exp(log_gain) must be a float32: -80 to 80.", "type": "number", "minimum": -80, "maximum": 80},
        "gain": {"type": "number", "exclusiveMinimum": 0},
        "note": {"type": "string", "maxLength": 1000}
      },
      "additionalProperties": false
    },
    "inputs": {
      "type": "object",
      "required": ["frequency_ghz", "comb_position"],
      "properties": {
        "frequency_ghz": {"type": "array", "items": {"type": "number", "exclusiveMinimum": 0}},
        "comb_position": {"type": "array", "items": {"type": "number"}},
        "trained": {"type": "boolean"},
        "fabrication_draw": {"description": "The chip's standard-normal draw of each input oscillator: true frequency = set-point * (1 + physics.freq_spread * draw).", "type": "array", "items": {"type": "number"}}
      },
      "additionalProperties": false
    },
    "chain": {
      "description": "A chain: an output chain has a class-score bias, a hidden chain a bias current (units of I_th).",
      "type": "object",
      "required": ["resonators"],
      "oneOf": [{"required": ["bias"]}, {"required": ["bias_current_ith"]}],
      "properties": {
        "index": {"type": "integer", "minimum": 0},
        "bias": {"type": "number"},
        "bias_current_ith": {"type": "number"},
        "resonators": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/resonator"}}
      },
      "additionalProperties": false
    },
    "resonator": {
      "type": "object",
      "required": ["frequency_ghz", "comb_position", "sign", "attached_input", "coupling_v_per_uw"],
      "properties": {
        "index": {"type": "integer", "minimum": 0},
        "frequency_ghz": {"type": "number", "exclusiveMinimum": 0},
        "comb_position": {"type": "number"},
        "sign": {"enum": [-1, 1]},
        "attached_input": {"type": "integer", "minimum": 0},
        "pixel_row": {"type": ["integer", "null"], "minimum": 0},
        "pixel_col": {"type": ["integer", "null"], "minimum": 0},
        "coupling_v_per_uw": {"type": "number"},
        "alpha": {"type": "number", "exclusiveMinimum": 0},
        "k_sd": {"type": "number", "exclusiveMinimum": 0},
        "fabrication_draw": {"description": "The chip's standard-normal draw of this resonator: true frequency = set-point * (1 + physics.freq_spread * draw).", "type": "number"}
      },
      "additionalProperties": false
    },
    "sparse_layer": {
      "description": "One layer of a sparse-network: its biases and non-zero weights as [neuron, input, weight].",
      "type": "object",
      "required": ["bias", "weights"],
      "properties": {
        "index": {"type": "integer", "minimum": 0},
        "bias": {"type": "array", "minItems": 1, "items": {"type": "number"}},
        "weights": {"type": "array", "items": {"$ref": "#/$defs/weight"}},
        "nonzero_weights": {"type": "integer", "minimum": 0}
      },
      "additionalProperties": false
    },
    "weight": {
      "description": "[class (or neuron), input, weight] of one non-zero weight.",
      "type": "array",
      "prefixItems": [
        {"type": "integer", "minimum": 0},
        {"type": "integer", "minimum": 0},
        {"type": "number"}
      ],
      "items": false,
      "minItems": 3
    }
  }
}
"""


__all__ = ["DEFAULT_IMAGE_SHAPE", "FORMAT_NAME", "FORMAT_VERSION", "KIND_RF", "KIND_SPARSE", "KINDS",
           "MAX_FILE_BYTES", "RF_CSV_COLUMNS", "SCHEMA_PATH", "SPARSE_CSV_COLUMNS", "Topology",
           "TopologyFileError", "csv_path_for", "export_result", "find_setting", "load_topology",
           "result_document", "topology_csv_text", "topology_document", "topology_from_document",
           "topology_schema", "write_topology", "write_topology_csv", "write_topology_pair", "SCHEMA_TEXT"]


if __name__ == "__main__":  # print the schema (see SCHEMA_TEXT)
    import sys

    sys.stdout.write(SCHEMA_TEXT)
