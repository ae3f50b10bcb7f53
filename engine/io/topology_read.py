"""Reading topology files: the envelope (format name and version), the in-memory upgrade of format versions
1 and 2 to 3, the run and model checks, and the rebuilt network as a :class:`Topology`. The checks before the
rebuild are :mod:`engine.io.topology_checks`; each kind's cross-checks and rebuild come from the table of
:mod:`engine.io.topology_kinds`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from engine.config.models import get_spec, list_models
from engine.config.run_config import RunConfig
from engine.core.files import json_type_name
from engine.core.limits import FileLimits, current_limits
from engine.core.messages import sentence, shown
from engine.core.model_base import PerceptronModel
from engine.io.topology_checks import check_declared_sizes, check_numbers, check_schema, fail
from engine.io.topology_format import (
    FORMAT_NAME,
    FORMAT_VERSION,
    MAX_CLASSES,
    MULTILAYER_KINDS,
    RF_KINDS,
    Problem,
    count,
    find_setting,
    is_int,
)
from engine.io.topology_kinds import codec
from engine.io.topology_write import topology_document

# ---------------------------------------------------------------------------------------------------------
# The loaded topology
# ---------------------------------------------------------------------------------------------------------


@dataclass
class Topology:
    """A validated topology file: the rebuilt model (eval mode) and its metadata."""

    kind: (
        str  #: 'rf-perceptron', 'sparse-perceptron', 'rf-network' or 'sparse-network' (engine.io.topology_format.Kind)
    )
    model_name: str  #: 'rf', 'rigl', ... (engine.config.run_config.MODELS)
    model: PerceptronModel  #: RFPerceptron, RFNetwork, DensePerceptron, MaskedPerceptron or an MLP, in eval mode
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
        doc = topology_document(
            self.model,
            self.config,
            metrics=self.metrics,
            history=self.history,
            dataset=self.dataset,
            class_names=self.class_names,
            image_shape=self.image_shape,
            versions=self.versions,
            created=self.created or None,
        )
        keep = codec(doc["kind"]).keep_records  # rebuilt models are frozen: keep what the file recorded
        if keep is not None:
            keep(doc, self.document)
        return doc


# ---------------------------------------------------------------------------------------------------------
# Envelope and upgrade
# ---------------------------------------------------------------------------------------------------------


def _envelope(doc: Any) -> int:
    """Check the format name and version (what decides how the rest is read); returns the version."""
    if not isinstance(doc, dict):
        raise Problem(f"its top level is {json_type_name(doc)} where a JSON object was expected")
    if "format" not in doc:
        raise Problem("the file has no 'format' entry, so it is not an rfexplorer topology file")
    if doc["format"] != FORMAT_NAME:
        what = shown(doc["format"]) if isinstance(doc["format"], str) else json_type_name(doc["format"])
        raise Problem(f"its format is {what}, not {FORMAT_NAME!r}")
    if "format_version" not in doc:
        raise Problem("the file has no 'format_version' entry")
    version = doc["format_version"]
    if not is_int(version):
        raise Problem(f"format_version must be a whole number, not {json_type_name(version)}")
    if version > FORMAT_VERSION:
        raise Problem(
            f"it has format version {shown(version)}, written by a newer rfexplorer; this version reads "
            f"versions 1 to {FORMAT_VERSION}"
        )
    if version < 1:
        raise Problem(
            f"its format version {shown(version)} is not supported (this version reads versions 1 to {FORMAT_VERSION})"
        )
    if version < 3 and doc.get("kind") in MULTILAYER_KINDS:
        raise Problem(
            f"it has format version {version} but kind {doc['kind']!r}, which exists only from format version 3 on"
        )
    return version


def _upgrade_v1(doc: dict) -> dict:
    """A version-1 document as version 2 (a new top-level dict; nested values are shared, not copied).

    Version 1 had no class names (they become "0" .. "C-1"), kept ``image_shape``, ``versions`` and
    ``created`` optional, and its run config was the flat form (RunConfig.from_dict reads it)."""
    doc = dict(doc)
    doc["format_version"] = 2
    n = doc.get("n_classes")
    if "class_names" not in doc and is_int(n) and 1 <= n <= MAX_CLASSES:
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
# The model, the run config and the rebuild
# ---------------------------------------------------------------------------------------------------------


def _check_model(name: str, kind: str) -> None:
    """The model must be registered (engine.config.models) and of the family the kind holds."""
    try:
        spec = get_spec(name)
    except ValueError:
        raise Problem(f"its model {shown(name)} is unknown (this version has: {', '.join(list_models())})") from None
    if spec.is_rf != (kind in RF_KINDS):
        family = "an RF model" if spec.is_rf else "a baseline model"
        raise Problem(f"its model {name!r} is {family}, which does not match kind {kind!r}")


def _run_config(doc: dict) -> RunConfig:
    try:
        config = RunConfig.from_dict(doc["config"])
    except (ValueError, TypeError, KeyError, OverflowError) as exc:
        reason = sentence(str(exc), 160).rstrip(".")
        raise Problem(f"its run config is not valid ({reason or type(exc).__name__})") from None
    if config.model != doc["model"]:
        raise Problem(f"its run config is for model {config.model!r} but the file holds model {doc['model']!r}")
    return config


def _topology(doc: Any, limits: Optional[FileLimits] = None) -> Topology:
    version = _envelope(doc)
    for v in range(version, FORMAT_VERSION):
        doc = _UPGRADES[v](doc)
    check_declared_sizes(doc, limits or current_limits())  # before the schema walks it, before any allocation
    try:
        check_numbers(doc)
    except RecursionError:
        raise Problem("it nests too deeply to be read") from None
    check_schema(doc)
    n_inputs, n_classes = int(doc["n_inputs"]), int(doc["n_classes"])  # JSON Schema's integers include 784.0
    _check_model(doc["model"], doc["kind"])
    count("class_names", doc["class_names"], n_classes, "one per class")
    shape = doc["image_shape"]
    if shape is not None:
        shape = (int(shape[0]), int(shape[1]))
        if shape[0] * shape[1] != n_inputs:
            raise Problem(f"image_shape {shape[0]}x{shape[1]} does not have n_inputs = {n_inputs} pixels")
    config = _run_config(doc)
    model = codec(doc["kind"]).load(doc, n_inputs, n_classes, shape, config)
    return Topology(
        kind=doc["kind"],
        model_name=doc["model"],
        model=model,
        dataset=doc["dataset"],
        n_inputs=n_inputs,
        n_classes=n_classes,
        class_names=tuple(doc["class_names"]),
        image_shape=shape,
        config=config,
        metrics=doc.get("metrics", {}),
        history=doc.get("history", []),
        versions=doc["versions"],
        created=doc.get("created", ""),
        format_version=version,
        document=doc,
    )


def topology_from_document(doc: Any, source: str = "<document>", *, limits: Optional[FileLimits] = None) -> Topology:
    """Validate a parsed document (any supported version) and rebuild its model (see :func:`load_topology`).

    ``limits``: the sizes it may declare (default :func:`engine.core.limits.current_limits`), checked before anything
    is allocated."""
    try:
        return _topology(doc, limits)
    except Problem as exc:
        raise fail(str(exc), source) from None
