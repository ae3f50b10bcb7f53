"""Writing topology files: the document of a trained model or finished run (current format version), its JSON
and lab CSV written atomically, alone or as a pair. Each kind's entries and CSV rows come from the table of
:mod:`engine.io.topology_kinds`."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Union

import torch

from engine.config.run_config import RunConfig
from engine.core.files import PathLike, atomic_write_files, atomic_write_text, dumps_json, json_safe
from engine.core.model_base import PerceptronModel
from engine.core.tables import csv_text, write_csv
from engine.io.results import RunResult, software_versions, utc_now_iso
from engine.io.topology_format import DEFAULT_IMAGE_SHAPE, FORMAT_NAME, FORMAT_VERSION, Kind
from engine.io.topology_kinds import codec

#: A loaded :class:`engine.io.topology_read.Topology` or a document (dict); the writers take either.
TopologyLike = Any

_UNSET: Any = object()


def _document_of(doc: TopologyLike) -> dict:
    """A document as is; a loaded Topology as a document of the current format version."""
    return doc if isinstance(doc, dict) else doc.to_document()


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


def topology_document(
    model: PerceptronModel,
    config: RunConfig,
    *,
    metrics: Optional[dict] = None,
    history: Optional[list] = None,
    dataset: Any = None,
    class_names: Any = _UNSET,
    image_shape: Any = _UNSET,
    versions: Optional[dict] = None,
    created: Optional[str] = None,
) -> dict:
    """The JSON document (a dict, current format version) describing ``model`` trained with ``config``.

    RF models (``model.is_rf``) give kind ``rf-perceptron`` (``rf-network`` with hidden layers), every other
    :class:`PerceptronModel` gives ``sparse-perceptron`` (``sparse-network``). ``dataset`` is the dataset's
    name, or a dataset object (its ``name``, and its ``class_names`` and ``image_shape`` where it has them);
    None means ``config.dataset``. ``class_names``
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
    kind = Kind.of(bool(getattr(model, "is_rf", False)), multilayer)
    doc: dict[str, Any] = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "kind": kind.value,
        "model": config.model,
        "dataset": name,
        "n_inputs": n_inputs,
        "n_classes": n_classes,
        "class_names": names,
        "image_shape": list(shape) if shape else None,
    }
    with torch.no_grad():
        doc.update(codec(kind).body(model, shape))
    doc.update(
        {
            "metrics": dict(metrics) if metrics is not None else {},
            "history": [list(h) for h in (history or [])],
            "config": config.to_dict(),
            "versions": dict(versions) if versions is not None else software_versions(),
            "created": created if created is not None else utc_now_iso(),
        }
    )
    return json_safe(doc)


def result_document(
    result: RunResult, *, dataset: Any = None, class_names: Any = _UNSET, image_shape: Any = _UNSET
) -> dict:
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
    return topology_document(
        result.model,
        result.config,
        metrics=metrics,
        history=result.history,
        dataset=dataset,
        class_names=class_names,
        image_shape=image_shape,
        versions=result.versions,
        created=utc_now_iso(),
    )


def write_topology(doc: TopologyLike, path: PathLike) -> Path:
    """Write a topology document as JSON, atomically. A loaded :class:`Topology` is written in the current
    format version (so this upgrades an old file: ``write_topology(load_topology(old), new)``)."""
    doc = _document_of(doc)
    return atomic_write_text(path, dumps_json(doc))


def csv_path_for(json_path: PathLike) -> Path:
    """The CSV written next to a JSON topology file: same name, ``.csv`` suffix."""
    return Path(json_path).with_suffix(".csv")


def _topology_table(doc: TopologyLike) -> tuple[list, list]:
    """Columns and rows of the lab CSV: one row per resonator (RF) or per non-zero weight (sparse)."""
    if not isinstance(doc, dict):  # a loaded Topology: the document it was read from
        doc = doc.document
    return codec(doc["kind"]).table(doc)


def topology_csv_text(doc: TopologyLike) -> str:
    """The lab CSV of a document or loaded :class:`Topology` (columns in docs/topology-format.md)."""
    return csv_text(*_topology_table(doc))


def write_topology_csv(doc: TopologyLike, path: PathLike) -> Path:
    """Write the lab CSV of a document (or of a loaded :class:`Topology`), atomically."""
    return write_csv(path, *_topology_table(doc))


def export_result(
    result: RunResult,
    path: PathLike,
    *,
    csv_path: Union[PathLike, None, bool] = True,
    dataset: Any = None,
    class_names: Any = _UNSET,
    image_shape: Any = _UNSET,
) -> tuple[Path, Optional[Path]]:
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


def write_topology_pair(doc: TopologyLike, path: PathLike, csv_path: PathLike) -> tuple[Path, Path]:
    """Write a topology's JSON and its lab CSV as a pair: both new, or (when this raises) both as they were.

    Both texts are built and written to fsynced temporary files first; then the CSV is renamed into place and
    the JSON last (:func:`engine.core.files.atomic_write_files`; a failed rename puts the old CSV back, and SIGINT
    or SIGTERM wait until both renames are done). After a kill (SIGKILL, power loss) a reader sees: while the
    temporary files are written, the old pair (or none); between the two renames, which take microseconds,
    the new CSV beside the old JSON (the JSON, which ``load_topology`` reads, is still the old network, and
    ``rfexplorer-cli export --from FILE.json`` writes its CSV again); after them, the new pair."""
    doc = _document_of(doc)
    path, csv_path = Path(path), Path(csv_path)
    if path.resolve() == csv_path.resolve():
        raise ValueError(f"the CSV {csv_path} would overwrite the topology file")
    pair = [(csv_path, topology_csv_text(doc).encode("utf-8")), (path, dumps_json(doc).encode("utf-8"))]
    atomic_write_files(pair)
    return path, csv_path
