"""Versioned topology files: a trained network written as JSON (plus a CSV for the lab) and read back exactly.

Two kinds share one envelope ``{"format": "rfexplorer-topology", "format_version": 1, "kind": ...}``:

- ``"rf-perceptron"`` (models rf, rf-input, rf-frozen): the physics parameters, the input oscillators
  (frequency in GHz and comb position), and for every chain its bias and its resonators (frequency in GHz,
  comb position, chain sign s_k, the input neuron it is attached to with that pixel's row and column, the
  coupling in V/µW, and the per-resonator damping / K_SD when device spreads are simulated), the read-out gain.
  Comb positions are the exact float32 values the engine trains, so :func:`load_topology` rebuilds a
  bit-identical network; the GHz values are for people and are checked against them on load.
- ``"sparse-perceptron"`` (models dense, prune, random, rigl, set): the non-zero weights as
  ``[class, input, weight]`` triplets and the biases.

Both carry the dataset name, the metrics (``RunResult.summary()``), the per-epoch history, the full run
config, the software versions and the creation time. Files are written atomically (temporary file in the same
folder, fsync, ``os.replace``), and read with ``json`` only: nothing is ever unpickled.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Optional, Union

import torch
import torch.nn.functional as F

from .config import BASELINE_MODELS, MODELS, RF_MODELS, RunConfig
from .model_base import PerceptronModel
from .physics import DeviceParams, chain_signs, comb_to_ghz, tuning_range_comb
from .results import RunResult, software_versions, utc_now_iso

FORMAT_NAME = "rfexplorer-topology"
FORMAT_VERSION = 1
KIND_RF = "rf-perceptron"
KIND_SPARSE = "sparse-perceptron"
KINDS = (KIND_RF, KIND_SPARSE)
#: Files larger than this are refused before they are read.
MAX_FILE_BYTES = 200 * 1024 * 1024
#: Image shape of the MNIST-family datasets (pixel row/column of an input neuron).
DEFAULT_IMAGE_SHAPE = (28, 28)
#: Limits that keep a malicious or corrupted file from allocating absurd tensors.
MAX_INPUTS = 1_000_000
MAX_CLASSES = 100_000
#: Relative tolerance between a stored GHz value (or gain) and the one implied by the comb position.
FREQ_RTOL = 1e-5
#: Slack allowed beyond the tuning range for stored comb positions (comb units).
COMB_SLACK = 1e-3

RF_CSV_COLUMNS = ("chain", "index", "frequency_ghz", "comb_position", "sign", "attached_input", "pixel_row",
                  "pixel_col", "coupling")
SPARSE_CSV_COLUMNS = ("class", "input", "pixel_row", "pixel_col", "weight")

PathLike = Union[str, os.PathLike]


class TopologyFileError(ValueError):
    """A topology file is missing, unreadable or malformed; the message is one sentence saying what is wrong."""


# ---------------------------------------------------------------------------------------------------------
# Atomic writes
# ---------------------------------------------------------------------------------------------------------

def _process_umask() -> int:
    """The process umask, read without changing it (Linux /proc; 0o022 elsewhere)."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return 0o022


def atomic_write_bytes(path: PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically: a temporary file in the same folder, fsync, then os.replace.

    On any failure the temporary file is removed and an existing ``path`` is left untouched.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        try:  # mkstemp creates 0600; give the file the permissions an ordinary open() would
            os.chmod(tmp_name, 0o666 & ~_process_umask())
        except OSError:
            pass
        os.replace(tmp_name, path)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except OSError:
            pass
        raise
    try:  # make the rename itself durable (best effort; not every platform can fsync a folder)
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass
    return path


def atomic_write_text(path: PathLike, text: str) -> Path:
    """:func:`atomic_write_bytes` for UTF-8 text."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def json_safe(value: Any) -> Any:
    """A copy of ``value`` that strict JSON can hold: non-finite floats become None, tuples become lists."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, torch.Tensor):
        return json_safe(value.tolist())
    if hasattr(value, "item") and hasattr(value, "dtype"):  # numpy scalars
        return json_safe(value.item())
    return value


def _is_flat(value: Any) -> bool:
    """A scalar, a list of scalars, or an object whose values are scalars or lists of scalars (one line)."""
    scalar = (str, int, float, bool, type(None))
    if isinstance(value, scalar):
        return True
    if isinstance(value, list):
        return all(isinstance(v, scalar) for v in value)
    if not isinstance(value, dict):
        return True  # json.dumps rejects it with a TypeError
    return all(isinstance(v, scalar) or (isinstance(v, list) and all(isinstance(x, scalar) for x in v))
               for v in value.values())


def _dump(value: Any, indent: int, out: list) -> None:
    if _is_flat(value):
        out.append(json.dumps(value, allow_nan=False, ensure_ascii=False))
        return
    pad, inner = " " * indent, " " * (indent + 1)
    if isinstance(value, dict):
        out.append("{\n")
        for n, (k, v) in enumerate(value.items()):
            out.append(f"{inner}{json.dumps(str(k), ensure_ascii=False)}: ")
            _dump(v, indent + 1, out)
            out.append(",\n" if n < len(value) - 1 else "\n")
        out.append(pad + "}")
    else:
        out.append("[\n")
        for n, v in enumerate(value):
            out.append(inner)
            _dump(v, indent + 1, out)
            out.append(",\n" if n < len(value) - 1 else "\n")
        out.append(pad + "]")


def dumps_json(doc: Any) -> str:
    """Strict JSON text (no NaN/Infinity, UTF-8): objects indented, number lists and flat records on one line."""
    out: list = []
    _dump(json_safe(doc), 0, out)
    return "".join(out) + "\n"


# ---------------------------------------------------------------------------------------------------------
# The sparse perceptron rebuilt from a file
# ---------------------------------------------------------------------------------------------------------

class SparsePerceptron(PerceptronModel):
    """A frozen linear classifier ``scores = x W^T + b`` rebuilt from a topology file (inference only)."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor) -> None:
        weight = torch.as_tensor(weight, dtype=torch.float32)
        n_classes, n_inputs = weight.shape
        super().__init__(int(n_inputs), int(n_classes))
        self.register_buffer("weight", weight.clone())
        self.register_buffer("bias", torch.as_tensor(bias, dtype=torch.float32).clone())
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight, self.bias)

    def effective_weight(self) -> torch.Tensor:
        return self.weight

    def synapse_count(self) -> int:
        return int((self.weight != 0).sum())

    def extra_repr(self) -> str:
        return f"n_inputs={self.n_inputs}, n_classes={self.n_classes}, synapses={self.synapse_count()}"


# ---------------------------------------------------------------------------------------------------------
# Building a document
# ---------------------------------------------------------------------------------------------------------

def _pixel(i: int, image_shape: Optional[tuple[int, int]]) -> tuple[Optional[int], Optional[int]]:
    if image_shape is None:
        return None, None
    return i // image_shape[1], i % image_shape[1]


def _floats(t: torch.Tensor) -> list:
    """Exact float32 -> Python float (double) values; JSON's repr round-trips them bit for bit."""
    return t.detach().cpu().to(torch.float32).tolist()


def _resolve_image_shape(image_shape, n_inputs: int) -> Optional[tuple[int, int]]:
    if image_shape is None:
        return None
    h, w = int(image_shape[0]), int(image_shape[1])
    return (h, w) if h * w == n_inputs else None


def topology_document(model: PerceptronModel, config: RunConfig, *, metrics: Optional[dict] = None,
                      history: Optional[list] = None, dataset: Optional[str] = None,
                      image_shape: Optional[tuple[int, int]] = DEFAULT_IMAGE_SHAPE,
                      versions: Optional[dict] = None, created: Optional[str] = None) -> dict:
    """The JSON document (a dict) describing ``model`` trained with ``config``.

    RF models (``model.is_rf``) give kind ``rf-perceptron``, every other :class:`PerceptronModel` gives
    ``sparse-perceptron``. ``image_shape`` is used for the pixel row/column of each input (dropped when it does
    not match the number of inputs).
    """
    n_inputs, n_classes = int(model.n_inputs), int(model.n_classes)
    shape = _resolve_image_shape(image_shape, n_inputs)
    doc: dict[str, Any] = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "kind": KIND_RF if getattr(model, "is_rf", False) else KIND_SPARSE,
        "model": config.model,
        "dataset": dataset if dataset is not None else config.dataset,
        "n_inputs": n_inputs,
        "n_classes": n_classes,
        "image_shape": list(shape) if shape else None,
    }
    with torch.no_grad():
        if doc["kind"] == KIND_RF:
            doc.update(_rf_body(model, shape))
        else:
            doc.update(_sparse_body(model, shape))
    doc.update({
        "metrics": dict(metrics) if metrics is not None else {},
        "history": [list(h) for h in (history or [])],
        "config": config.to_dict(),
        "versions": dict(versions) if versions is not None else software_versions(),
        "created": created if created is not None else utc_now_iso(),
    })
    return json_safe(doc)


def _rf_body(model, shape) -> dict:
    chains = model.chains
    params: DeviceParams = model.params
    input_comb = chains.input_comb.detach()
    res_comb = chains.resonator_comb.detach()
    n_classes, k = res_comb.shape
    in_ghz = _floats(chains.input_freqs_ghz())
    res_ghz = _floats(chains.resonator_freqs_ghz())
    res_u = _floats(res_comb)
    signs = chains.signs.detach().cpu().tolist()
    idx, coupling = model.attachments()
    idx, coupling = idx.cpu().tolist(), _floats(coupling)
    alpha_r = _floats(chains.alpha_r) if getattr(chains, "alpha_r", None) is not None else None
    k_sd_r = _floats(chains.k_sd_r) if getattr(chains, "k_sd_r", None) is not None else None
    bias = _floats(model.bias)
    out_chains = []
    for j in range(n_classes):
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
            resonators.append(res)
        out_chains.append({"index": j, "bias": bias[j], "resonators": resonators})
    return {
        "resonators_per_chain": int(k),
        "physics": params.to_dict(),
        "readout": {"log_gain": float(model.log_gain.detach()), "gain": float(model.gain.detach()),
                    "note": "class score j = gain * V_j + bias_j; gain = exp(log_gain) / (k_sd * p_max_uw)"},
        "inputs": {"frequency_ghz": in_ghz, "comb_position": _floats(input_comb),
                   "trained": bool(chains.input_comb.requires_grad)},
        "chains": out_chains,
        "units": {"frequency_ghz": "GHz", "comb_position": "input spacings (comb units; authoritative)",
                  "coupling_v_per_uw": "V/µW (normalised units)", "bias": "class-score units"},
    }


def _sparse_body(model: PerceptronModel, shape) -> dict:
    w = model.effective_weight().detach().cpu().to(torch.float32)
    nz = torch.nonzero(w, as_tuple=False)
    values = w[nz[:, 0], nz[:, 1]].tolist() if len(nz) else []
    triplets = [[int(c), int(i), v] for (c, i), v in zip(nz.tolist(), values)]
    return {
        "bias": _floats(model.bias),
        "weights": triplets,
        "weights_columns": ["class", "input", "weight"],
        "nonzero_weights": len(triplets),
    }


def result_document(result: RunResult, *, image_shape: Optional[tuple[int, int]] = DEFAULT_IMAGE_SHAPE) -> dict:
    """The topology document of a finished :class:`RunResult` (its ``model`` must be set)."""
    if result.model is None:
        raise ValueError("this run result holds no trained model to export")
    metrics = result.summary()
    metrics["test_accuracy"] = float(result.test_accuracy)  # full precision (summary() rounds for display)
    return topology_document(result.model, result.config, metrics=metrics, history=result.history,
                             dataset=result.config.dataset, image_shape=image_shape, versions=result.versions,
                             created=utc_now_iso())


def csv_path_for(json_path: PathLike) -> Path:
    """The CSV written next to a JSON topology file: same name, ``.csv`` suffix."""
    return Path(json_path).with_suffix(".csv")


def write_topology(doc: dict, path: PathLike) -> Path:
    """Write a topology document as JSON, atomically."""
    return atomic_write_text(path, dumps_json(doc))


def topology_csv_text(doc: Union[dict, "Topology"]) -> str:
    """The lab CSV of a document: one row per resonator (RF) or per non-zero weight (sparse)."""
    if isinstance(doc, Topology):
        doc = doc.document
    shape = doc.get("image_shape")
    shape = tuple(shape) if shape else None
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    if doc["kind"] == KIND_RF:
        extra = [c for c in ("alpha", "k_sd") if doc["chains"] and c in doc["chains"][0]["resonators"][0]]
        writer.writerow([*RF_CSV_COLUMNS, *extra])
        for j, chain in enumerate(doc["chains"]):
            for r, res in enumerate(chain["resonators"]):
                writer.writerow([j, r, repr(float(res["frequency_ghz"])), repr(float(res["comb_position"])),
                                 res["sign"], res["attached_input"], _blank(res.get("pixel_row")),
                                 _blank(res.get("pixel_col")), repr(float(res["coupling_v_per_uw"])),
                                 *[repr(float(res[c])) for c in extra]])
    else:
        writer.writerow(SPARSE_CSV_COLUMNS)
        for c, i, w in doc["weights"]:
            row, col = _pixel(int(i), shape)
            writer.writerow([c, i, _blank(row), _blank(col), repr(float(w))])
    return buf.getvalue()


def _blank(v) -> str:
    return "" if v is None else str(v)


def write_topology_csv(doc: Union[dict, "Topology"], path: PathLike) -> Path:
    """Write the lab CSV of a document (or of a loaded :class:`Topology`), atomically."""
    return atomic_write_text(path, topology_csv_text(doc))


def export_result(result: RunResult, path: PathLike, *, csv_path: Union[PathLike, None, bool] = True,
                  image_shape: Optional[tuple[int, int]] = DEFAULT_IMAGE_SHAPE) -> tuple[Path, Optional[Path]]:
    """Export a trained run: JSON at ``path`` and, unless ``csv_path`` is False/None, the CSV (default: the same
    name with a ``.csv`` suffix). Returns (json path, csv path or None)."""
    path = Path(path)
    if path.suffix.lower() == ".csv":
        raise ValueError(f"the topology file {path} must not end in .csv (the CSV is written next to the JSON)")
    doc = result_document(result, image_shape=image_shape)
    json_out = write_topology(doc, path)
    csv_out = None
    if csv_path is not None and csv_path is not False:
        csv_out = write_topology_csv(doc, csv_path_for(path) if csv_path is True else Path(csv_path))
    return json_out, csv_out


# ---------------------------------------------------------------------------------------------------------
# Loading and validating
# ---------------------------------------------------------------------------------------------------------

@dataclass
class Topology:
    """A validated topology file: the rebuilt model (eval mode) and its metadata."""

    kind: str  #: 'rf-perceptron' or 'sparse-perceptron'
    model_name: str  #: 'rf', 'rigl', ... (engine.config.MODELS)
    model: PerceptronModel  #: RFPerceptron.from_state(...) or SparsePerceptron
    dataset: str
    n_inputs: int
    n_classes: int
    image_shape: Optional[tuple[int, int]]
    config: RunConfig
    metrics: dict
    history: list
    versions: dict
    created: str
    format_version: int
    document: dict = field(repr=False)  #: the validated JSON document
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


class _Checker:
    """Collects the context of a file so that every problem is reported as one sentence."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, problem: str) -> TopologyFileError:
        problem = problem.rstrip(".")
        return TopologyFileError(f"The topology file {self.source} is invalid: {problem}.")

    def obj(self, value, where: str) -> dict:
        if not isinstance(value, dict):
            raise self.fail(f"{where} must be a JSON object, not {_json_type(value)}")
        return value

    def key(self, d: dict, name: str, where: str):
        if name not in d:
            raise self.fail(f"{where} has no {name!r} entry")
        return d[name]

    def list_(self, value, where: str, length: Optional[int] = None) -> list:
        if not isinstance(value, list):
            raise self.fail(f"{where} must be a list, not {_json_type(value)}")
        if length is not None and len(value) != length:
            raise self.fail(f"{where} has {len(value)} entries where {length} were expected")
        return value

    def int_(self, value, where: str, lo: Optional[int] = None, hi: Optional[int] = None) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(f"{where} must be a whole number, not {_json_type(value)}")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            rng = f"between {lo} and {hi}" if lo is not None and hi is not None else (
                f">= {lo}" if lo is not None else f"<= {hi}")
            raise self.fail(f"{where} is {value}, out of range (must be {rng})")
        return value

    def num(self, value, where: str, positive: bool = False) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(f"{where} must be a number, not {_json_type(value)}")
        value = float(value)
        if not math.isfinite(value):
            raise self.fail(f"{where} is {value}, not a finite number")
        if positive and not value > 0:
            raise self.fail(f"{where} is {value} but must be > 0")
        return value

    def str_(self, value, where: str) -> str:
        if not isinstance(value, str):
            raise self.fail(f"{where} must be a string, not {_json_type(value)}")
        return value

    def nums(self, value, where: str, length: int, positive: bool = False) -> list[float]:
        self.list_(value, where, length)
        return [self.num(v, f"{where}[{i}]", positive) for i, v in enumerate(value)]


def _json_type(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _read_document(path: Path) -> Any:
    name = str(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise TopologyFileError(f"The topology file {name} does not exist.") from None
    except OSError as exc:
        raise TopologyFileError(f"The topology file {name} cannot be read ({exc.strerror or exc}).") from None
    if path.is_dir():
        raise TopologyFileError(f"The path {name} is a folder, not a topology file.")
    if not path.is_file():
        raise TopologyFileError(f"The path {name} is not a regular file, so it cannot be a topology file.")
    if st.st_size > MAX_FILE_BYTES:
        raise TopologyFileError(f"The topology file {name} is {st.st_size / 2 ** 20:.0f} MB, larger than the "
                                f"{MAX_FILE_BYTES // (1024 * 1024)} MB limit, so it was not read.")
    if st.st_size == 0:
        raise TopologyFileError(f"The topology file {name} is empty.")
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise TopologyFileError(f"The topology file {name} cannot be read ({exc.strerror or exc}).") from None
    if len(raw) > MAX_FILE_BYTES:
        raise TopologyFileError(f"The topology file {name} is larger than the "
                                f"{MAX_FILE_BYTES // (1024 * 1024)} MB limit, so it was not read.")
    if raw[:1] == b"\x80" or (raw[:1] in (b"(", b"c", b"]", b"}") and raw.rstrip().endswith(b".")):
        raise TopologyFileError(f"The file {name} looks like a Python pickle, not a JSON topology file; rfexplorer "
                                f"never loads pickles (export the network with 'rfexplorer-cli export').")
    if raw[:4] == b"PK\x03\x04":
        raise TopologyFileError(f"The file {name} is a zip archive (such as a torch.save checkpoint), not a JSON "
                                f"topology file; rfexplorer never loads checkpoints (export with "
                                f"'rfexplorer-cli export').")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise TopologyFileError(f"The file {name} is not a text file, so it cannot be a JSON topology file.") from None
    if not text.strip():
        raise TopologyFileError(f"The topology file {name} is empty.")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        hint = " (the file looks truncated)" if exc.pos >= len(text.rstrip()) else ""
        raise TopologyFileError(f"The topology file {name} is not valid JSON{hint}: {exc.msg} at line {exc.lineno}, "
                                f"column {exc.colno}.") from None
    except RecursionError:
        raise TopologyFileError(f"The topology file {name} nests too deeply to be a topology file.") from None


def load_topology(path: PathLike) -> Topology:
    """Read, validate and rebuild a topology file. Raises :class:`TopologyFileError` (one sentence) if anything
    is wrong: unreadable, too large, not JSON, wrong format or version, missing keys, wrong types or shapes,
    non-finite numbers, indices out of range, invalid physics or run config."""
    path = Path(path)
    doc = _read_document(path)
    topo = topology_from_document(doc, source=str(path))
    topo.source = path
    return topo


def topology_from_document(doc: Any, source: str = "<document>") -> Topology:
    """Validate a parsed document and rebuild its model (see :func:`load_topology`)."""
    ck = _Checker(source)
    if not isinstance(doc, dict):
        raise ck.fail(f"its top level is {_json_type(doc)} where a JSON object was expected")
    fmt = ck.key(doc, "format", "the file")
    if fmt != FORMAT_NAME:
        raise ck.fail(f"its format is {fmt!r}, not {FORMAT_NAME!r}")
    version = ck.int_(ck.key(doc, "format_version", "the file"), "format_version")
    if version > FORMAT_VERSION:
        raise ck.fail(f"it has format version {version}, written by a newer rfexplorer; this version reads "
                      f"version {FORMAT_VERSION}")
    if version != FORMAT_VERSION:
        raise ck.fail(f"its format version {version} is not supported (this version reads {FORMAT_VERSION})")
    kind = ck.str_(ck.key(doc, "kind", "the file"), "kind")
    if kind not in KINDS:
        raise ck.fail(f"its kind {kind!r} is unknown (expected one of: {', '.join(KINDS)})")
    model_name = ck.str_(ck.key(doc, "model", "the file"), "model")
    if model_name not in MODELS:
        raise ck.fail(f"its model {model_name!r} is unknown (expected one of: {', '.join(MODELS)})")
    expected_models = RF_MODELS if kind == KIND_RF else BASELINE_MODELS
    if model_name not in expected_models:
        raise ck.fail(f"model {model_name!r} does not match kind {kind!r}")
    dataset = ck.str_(ck.key(doc, "dataset", "the file"), "dataset")
    n_inputs = ck.int_(ck.key(doc, "n_inputs", "the file"), "n_inputs", 1, MAX_INPUTS)
    n_classes = ck.int_(ck.key(doc, "n_classes", "the file"), "n_classes", 1, MAX_CLASSES)
    shape = doc.get("image_shape")
    if shape is not None:
        ck.list_(shape, "image_shape", 2)
        shape = (ck.int_(shape[0], "image_shape[0]", 1), ck.int_(shape[1], "image_shape[1]", 1))
        if shape[0] * shape[1] != n_inputs:
            raise ck.fail(f"image_shape {shape[0]}x{shape[1]} does not have n_inputs = {n_inputs} pixels")

    config_d = ck.obj(ck.key(doc, "config", "the file"), "config")
    try:
        config = RunConfig.from_dict(config_d)
    except (ValueError, TypeError) as exc:
        raise ck.fail(f"its run config is not valid ({exc})") from None
    if config.model != model_name:
        raise ck.fail(f"its run config is for model {config.model!r} but the file holds model {model_name!r}")
    metrics = ck.obj(doc.get("metrics", {}), "metrics")
    acc = metrics.get("test_accuracy")
    if acc is not None:
        acc = ck.num(acc, "metrics.test_accuracy")
        if not 0.0 <= acc <= 1.0:
            raise ck.fail(f"metrics.test_accuracy is {acc}, not a fraction between 0 and 1")
    history = ck.list_(doc.get("history", []), "history")
    versions = ck.obj(doc.get("versions", {}), "versions")
    created = doc.get("created", "")
    created = "" if created is None else ck.str_(created, "created")

    if kind == KIND_RF:
        model = _load_rf(ck, doc, n_inputs, n_classes, shape, config)
    else:
        model = _load_sparse(ck, doc, n_inputs, n_classes, config)
    return Topology(kind=kind, model_name=model_name, model=model, dataset=dataset, n_inputs=n_inputs,
                    n_classes=n_classes, image_shape=shape, config=config, metrics=metrics, history=history,
                    versions=versions, created=created, format_version=version, document=doc)


def _device_params(ck: _Checker, d: Any) -> DeviceParams:
    d = ck.obj(d, "physics")
    types = {f.name: type(f.default) for f in fields(DeviceParams)}
    for name, value in d.items():
        expected = types.get(name)
        if expected is None:
            raise ck.fail(f"physics has an unknown parameter {name!r}")
        if expected is str:
            ck.str_(value, f"physics.{name}")
        else:
            ck.num(value, f"physics.{name}")
    try:
        return DeviceParams.from_dict({k: (float(v) if types[k] is float else v) for k, v in d.items()})
    except (ValueError, TypeError) as exc:
        raise ck.fail(f"its physics parameters are not valid ({exc})") from None


def _close(a: float, b: float, rtol: float = FREQ_RTOL) -> bool:
    return abs(a - b) <= rtol * max(abs(a), abs(b), 1e-30)


def _load_rf(ck: _Checker, doc: dict, n_inputs: int, n_classes: int, shape, config: RunConfig):
    from .rf_perceptron import RFPerceptron

    params = _device_params(ck, ck.key(doc, "physics", "the file"))
    k = ck.int_(ck.key(doc, "resonators_per_chain", "the file"), "resonators_per_chain", 1, n_inputs)
    if config.resonators_per_chain != k:
        raise ck.fail(f"its run config has {config.resonators_per_chain} resonators per chain but the file "
                      f"holds {k}")
    lo, hi = tuning_range_comb(params, n_inputs)
    lo, hi = lo - COMB_SLACK, hi + COMB_SLACK

    def comb_to_f(u: list[float]) -> list[float]:
        return comb_to_ghz(torch.tensor(u, dtype=torch.float64), params, n_inputs).tolist()

    # inputs
    inputs = ck.obj(ck.key(doc, "inputs", "the file"), "inputs")
    in_u = ck.nums(ck.key(inputs, "comb_position", "inputs"), "inputs.comb_position", n_inputs)
    in_f = ck.nums(ck.key(inputs, "frequency_ghz", "inputs"), "inputs.frequency_ghz", n_inputs, positive=True)
    for i, (u, f, f_exp) in enumerate(zip(in_u, in_f, comb_to_f(in_u))):
        if not lo <= u <= hi:
            raise ck.fail(f"inputs.comb_position[{i}] is {u}, outside the tuning range [{lo:g}, {hi:g}]")
        if not _close(f, f_exp):
            raise ck.fail(f"inputs.frequency_ghz[{i}] is {f} GHz but its comb position {u} gives {f_exp:.9g} GHz")

    # read-out
    readout = ck.obj(ck.key(doc, "readout", "the file"), "readout")
    log_gain = ck.num(ck.key(readout, "log_gain", "readout"), "readout.log_gain")
    if "gain" in readout:
        gain = ck.num(readout["gain"], "readout.gain", positive=True)
        expected = math.exp(log_gain) / (params.k_sd * params.p_max_uw)
        if not _close(gain, expected, 1e-4):
            raise ck.fail(f"readout.gain is {gain} but exp(log_gain) / (k_sd p_max) gives {expected:.9g}")

    # chains
    chains = ck.list_(ck.key(doc, "chains", "the file"), "chains", n_classes)
    signs = chain_signs(k, params.parity).tolist()
    need_alpha, need_ksd = params.alpha_dtod > 0, params.k_sd_dtod > 0
    first_res = chains[0].get("resonators") if isinstance(chains[0], dict) else None
    first = first_res[0] if isinstance(first_res, list) and first_res and isinstance(first_res[0], dict) else {}
    has_alpha, has_ksd = "alpha" in first or need_alpha, "k_sd" in first or need_ksd
    bias, res_u, alpha_r, k_sd_r = [], [], [], []
    for j, chain in enumerate(chains):
        where = f"chains[{j}]"
        ck.obj(chain, where)
        bias.append(ck.num(ck.key(chain, "bias", where), f"{where}.bias"))
        resonators = ck.list_(ck.key(chain, "resonators", where), f"{where}.resonators", k)
        us, fs, al, ks = [], [], [], []
        for r, res in enumerate(resonators):
            w = f"{where}.resonators[{r}]"
            ck.obj(res, w)
            u = ck.num(ck.key(res, "comb_position", w), f"{w}.comb_position")
            if not lo <= u <= hi:
                raise ck.fail(f"{w}.comb_position is {u}, outside the tuning range [{lo:g}, {hi:g}]")
            us.append(u)
            fs.append(ck.num(ck.key(res, "frequency_ghz", w), f"{w}.frequency_ghz", positive=True))
            sign = ck.int_(ck.key(res, "sign", w), f"{w}.sign")
            if sign != int(signs[r]):
                raise ck.fail(f"{w}.sign is {sign} but a chain with parity {params.parity!r} has s_{r} = "
                              f"{int(signs[r])}")
            att = ck.int_(ck.key(res, "attached_input", w), f"{w}.attached_input", 0, n_inputs - 1)
            for name, pos in (("pixel_row", 0), ("pixel_col", 1)):
                v = res.get(name)
                if v is not None:
                    v = ck.int_(v, f"{w}.{name}", 0)
                    if shape is not None and v != (att // shape[1], att % shape[1])[pos]:
                        raise ck.fail(f"{w}.{name} is {v} but attached input {att} is at "
                                      f"row {att // shape[1]}, column {att % shape[1]}")
            ck.num(ck.key(res, "coupling_v_per_uw", w), f"{w}.coupling_v_per_uw")
            if has_alpha:
                al.append(ck.num(ck.key(res, "alpha", w), f"{w}.alpha", positive=True))
            if has_ksd:
                ks.append(ck.num(ck.key(res, "k_sd", w), f"{w}.k_sd", positive=True))
        for r, (u, f, f_exp) in enumerate(zip(us, fs, comb_to_f(us))):
            if not _close(f, f_exp):
                raise ck.fail(f"{where}.resonators[{r}].frequency_ghz is {f} GHz but its comb position {u} "
                              f"gives {f_exp:.9g} GHz")
        res_u.append(us)
        alpha_r.append(al)
        k_sd_r.append(ks)
    model = RFPerceptron.from_state(params, in_u, res_u, bias, log_gain,
                                    alpha_r=alpha_r if has_alpha else None, k_sd_r=k_sd_r if has_ksd else None)
    return model


def _load_sparse(ck: _Checker, doc: dict, n_inputs: int, n_classes: int, config: RunConfig) -> SparsePerceptron:
    bias = ck.nums(ck.key(doc, "bias", "the file"), "bias", n_classes)
    triplets = ck.list_(ck.key(doc, "weights", "the file"), "weights")
    if len(triplets) > n_inputs * n_classes:
        raise ck.fail(f"it lists {len(triplets)} weights, more than the {n_inputs * n_classes} a "
                      f"{n_classes} x {n_inputs} perceptron has")
    rows, cols, vals = [], [], []
    for t, trip in enumerate(triplets):
        w = f"weights[{t}]"
        ck.list_(trip, w, 3)
        rows.append(ck.int_(trip[0], f"{w} class index", 0, n_classes - 1))
        cols.append(ck.int_(trip[1], f"{w} input index", 0, n_inputs - 1))
        vals.append(ck.num(trip[2], f"{w} weight"))
    weight = torch.zeros(n_classes, n_inputs, dtype=torch.float32)
    if rows:
        r, c = torch.tensor(rows), torch.tensor(cols)
        flat = r * n_inputs + c
        if len(torch.unique(flat)) != len(flat):
            uniq, counts = torch.unique(flat, return_counts=True)
            dup = int(uniq[counts > 1][0])
            raise ck.fail(f"the weight of class {dup // n_inputs}, input {dup % n_inputs} is listed twice")
        weight[r, c] = torch.tensor(vals, dtype=torch.float32)
    if config.model != "dense" and len(triplets) > config.resonators_per_chain * n_classes:
        raise ck.fail(f"it lists {len(triplets)} non-zero weights, more than its budget of "
                      f"{config.resonators_per_chain} x {n_classes}")
    return SparsePerceptron(weight, torch.tensor(bias, dtype=torch.float32))


# ---------------------------------------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------------------------------------

def evaluation_split(topology: Topology, dataset, *, split: str = "recorded"):
    """The (x, y) the accuracy is measured on: the test set, or, for ``split='recorded'`` and a run that was
    evaluated on a validation split of the same dataset, that same split."""
    if split not in ("recorded", "test"):
        raise ValueError(f"split must be 'recorded' or 'test' (got {split!r})")
    ds = dataset
    if (split == "recorded" and topology.evaluated_on == "validation" and topology.config.validation_fraction > 0
            and ds.name == topology.dataset):
        ds = ds.validation_split(topology.config.validation_fraction, seed=topology.config.seed)
    return ds.test_x, ds.test_y


def evaluate_topology(topology: Union[Topology, PathLike], dataset=None, *, data_dir: Optional[PathLike] = None,
                      split: str = "recorded") -> float:
    """Accuracy (fraction) of a topology's network on ``dataset`` (a :class:`engine.data.Dataset`, a dataset
    name, or None for the recorded one). With ``split='recorded'`` a run recorded on a validation split is
    evaluated on that same split, so the recorded accuracy is reproduced exactly."""
    from .data import Dataset, load_dataset
    from .training import accuracy

    if not isinstance(topology, Topology):
        topology = load_topology(topology)
    if dataset is None or isinstance(dataset, str):
        name = dataset or topology.dataset
        ds = load_dataset(name, data_dir if data_dir is not None else topology.config.data_dir)
    elif isinstance(dataset, Dataset):
        ds = dataset
    else:
        raise TypeError(f"dataset must be a Dataset, a name or None (got {type(dataset).__name__})")
    if ds.n_inputs != topology.n_inputs:
        raise ValueError(f"the network has {topology.n_inputs} inputs but dataset {ds.name} has {ds.n_inputs}")
    if ds.n_classes != topology.n_classes:
        raise ValueError(f"the network has {topology.n_classes} classes but dataset {ds.name} has {ds.n_classes}")
    x, y = evaluation_split(topology, ds, split=split)
    return accuracy(topology.model, x, y)


__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "KIND_RF", "KIND_SPARSE", "MAX_FILE_BYTES", "SparsePerceptron",
           "Topology", "TopologyFileError", "atomic_write_bytes", "atomic_write_text", "csv_path_for",
           "evaluate_topology", "export_result", "load_topology", "result_document", "topology_csv_text",
           "topology_document", "topology_from_document", "write_topology", "write_topology_csv"]
