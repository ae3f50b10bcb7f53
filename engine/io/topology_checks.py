"""The checks a topology document passes before anything is rebuilt: the sizes it declares against
:class:`engine.core.limits.FileLimits` (before the schema walks it and before anything is allocated), every number
finite and the network's numbers float32, and the published schema; plus the helpers that word a problem as
one bounded sentence naming the file and the field."""

from __future__ import annotations

import functools
import math
import re
from typing import Any, Optional, Sequence

from engine.core.files import best_schema_error, json_path_text, schema_problem, strict_schema_validator
from engine.core.limits import ENV_PREFIX, FileLimits
from engine.core.messages import ELLIPSIS, SENTENCE_CHARS, escaped, sentence, shown
from engine.io.topology_format import (
    F32_MAX,
    F32_TINY,
    KIND_RF,
    KIND_RF_NETWORK,
    KIND_SPARSE,
    KIND_SPARSE_NETWORK,
    KINDS,
    MAX_RECORD_VALUES,
    NETWORK_FIELDS,
    Problem,
    TopologyFileError,
    declared,
    find_setting,
    topology_schema,
)
from engine.io.topology_kinds import codec

# ---------------------------------------------------------------------------------------------------------
# Messages
# ---------------------------------------------------------------------------------------------------------


def _file_name(source: str, limit: int = 48) -> str:
    """A file's path for a message: escaped, and over ``limit`` characters its end kept (the file's name)."""
    text = escaped(source)
    return text if len(text) <= limit else ELLIPSIS + text[-(limit - 1) :]


def fail(problem: str, source: str) -> TopologyFileError:
    """The error naming the file: one bounded line (engine.core.messages.sentence), no control characters."""
    problem = re.sub(r"\s+", " ", problem).strip().rstrip(".")
    rest = f" is invalid: {problem}."
    # the file's name takes what the problem leaves of the bounded sentence, and at least 40 characters
    room = max(40, SENTENCE_CHARS - len("The topology file ") - len(rest))
    return TopologyFileError(sentence(f"The topology file {_file_name(source, room)}{rest}"))


_TRIPLET_PARTS = ("class index", "input index", "weight")


def where(path: Sequence) -> str:
    """A JSON path as people write it: ``chains[3].resonators[1].attached_input``, ``weights[0] class index``."""
    path = list(path)
    if len(path) == 3 and path[0] == "weights" and isinstance(path[2], int) and path[2] < 3:
        return f"weights[{path[1]}] {_TRIPLET_PARTS[path[2]]}"
    return json_path_text(path)


# ---------------------------------------------------------------------------------------------------------
# The sizes a file declares (checked before the schema walks it and before anything is allocated)
# ---------------------------------------------------------------------------------------------------------


def _over(name: str, value: Any, limit: int, field_name: str) -> Problem:
    return Problem(
        f"{name} is {shown(value)}, over the limit of {limit:,} ({ENV_PREFIX}{field_name.upper()} raises it)"
    )


def _at_most(where: str, items: Any, most: int, what: str) -> None:
    """Refuse a list longer than ``most`` (cheap, before the schema walks it); other lengths are checked later."""
    if isinstance(items, list) and len(items) > most:
        raise Problem(f"{where} has {len(items):,} entries where at most {most:,} were expected ({what})")


def _layer_sizes(doc: dict, lim: FileLimits) -> tuple[Optional[list], list]:
    """The declared layer_sizes (None unless a list of counts) and layer_ks of a multilayer file, in limits."""
    raw, raw_ks = doc.get("layer_sizes"), doc.get("layer_ks")
    layers = max(
        [
            len(raw) - 1 if isinstance(raw, list) else 0,
            *(len(v) for v in (raw_ks, doc.get("layers")) if isinstance(v, list)),
        ]
    )
    if layers > lim.max_layers:
        raise Problem(
            f"it has {layers:,} layers, over the limit of {lim.max_layers} ({ENV_PREFIX}MAX_LAYERS raises it)"
        )
    ks = [declared(k) or 1 for k in raw_ks] if isinstance(raw_ks, list) else []
    for l, k in enumerate(ks):
        if k > lim.max_resonators_per_chain:
            raise _over(f"layer_ks[{l}]", k, lim.max_resonators_per_chain, "max_resonators_per_chain")
    if not isinstance(raw, list) or not raw or any(declared(n) is None for n in raw):
        return None, ks
    sizes = [n for n in (declared(v) for v in raw) if n is not None]  # all of them: checked above
    for l, n in enumerate(sizes[1:-1], start=1):
        if n > lim.max_layer_size:
            raise _over(f"layer_sizes[{l}]", n, lim.max_layer_size, "max_layer_size")
    return sizes, ks


def _check_lists(doc: dict, kind: Any, n_in: int, n_cls: int, sizes: Optional[list], ks: list) -> None:
    """No list longer than the declared sizes allow (the exact counts are checked after the schema)."""
    _at_most("class_names", doc.get("class_names"), n_cls, "one per class")
    k = declared(doc.get("resonators_per_chain")) or n_in
    if kind in (KIND_SPARSE, KIND_RF):
        layers = [("", doc, n_in, n_cls, k)]
    else:
        dims = sizes or [max(n_in, n_cls)] * (len(ks) + 1)
        layers = [
            (f"layers[{l}].", layer, dims[l], dims[l + 1], ks[l] if l < len(ks) else dims[l])
            for l, layer in enumerate(doc.get("layers") or [])
            if isinstance(layer, dict) and l + 1 < len(dims)
        ]
    for prefix, record, fan_in, fan_out, k_l in layers:
        _at_most(f"{prefix}bias", record.get("bias"), fan_out, "one per neuron")
        _at_most(f"{prefix}weights", record.get("weights"), fan_in * fan_out, f"a {fan_out} x {fan_in} layer")
        inputs = record.get("inputs")
        for name in ("frequency_ghz", "comb_position", "fabrication_draw"):
            _at_most(
                f"{prefix}inputs.{name}",
                inputs.get(name) if isinstance(inputs, dict) else None,
                fan_in,
                "one per input",
            )
        chains = record.get("chains")
        _at_most(f"{prefix}chains", chains, fan_out, "one per neuron")
        for j, chain in enumerate(chains if isinstance(chains, list) else ()):
            if isinstance(chain, dict):
                _at_most(f"{prefix}chains[{j}].resonators", chain.get("resonators"), k_l, "resonators per chain")


def check_declared_sizes(doc: dict, lim: FileLimits) -> None:
    """Every size the file declares within ``lim``, and no list longer than those sizes, before the schema
    walks the document and before anything is allocated (a small file may declare a huge network)."""
    kind = doc.get("kind")
    n_in, n_cls = declared(doc.get("n_inputs")), declared(doc.get("n_classes"))
    if n_in is not None and n_in > lim.max_features:
        raise _over("n_inputs", n_in, lim.max_features, "max_features")
    if n_cls is not None and n_cls > lim.max_classes:
        raise _over("n_classes", n_cls, lim.max_classes, "max_classes")
    k = declared(doc.get("resonators_per_chain"))
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
    if kind in KINDS and declared(doc.get("n_inputs")) and declared(doc.get("n_classes")):
        total = codec(kind).parameters(doc, n_in, n_cls, sizes, ks)
        if total > lim.max_parameters:
            raise Problem(
                f"its network would hold {total:,} numbers, over the limit of {lim.max_parameters:,} "
                f"({ENV_PREFIX}MAX_PARAMETERS raises it)"
            )
    _check_lists(doc, kind, n_in, n_cls, sizes, ks)
    _check_history(doc, lim)


def _check_history(doc: dict, lim: FileLimits) -> None:
    """At most one history row per epoch of the recorded run config (and never over the limit)."""
    history = doc.get("history")
    config = doc.get("config")
    epochs = declared(find_setting(config, "epochs")) if isinstance(config, dict) else None
    if epochs is not None and epochs < lim.max_history_epochs:
        _at_most("history", history, epochs, f"one per epoch of config.epochs = {epochs}")
    elif isinstance(history, list) and len(history) > lim.max_history_epochs:
        raise _over("history", f"{len(history):,} rows", lim.max_history_epochs, "max_history_epochs")


# ---------------------------------------------------------------------------------------------------------
# Every number finite, the network's numbers float32
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
            raise Problem(f"{json_path_text(path[:1])} holds more than {MAX_RECORD_VALUES:,} values")
    for key, v in items:
        if isinstance(v, (dict, list)):
            _walk_numbers(v, path + (key,), f32, budget)
        elif type(v) is float or type(v) is int:
            problem = _number_problem(v, f32)
            if problem is not None:
                raise Problem(f"{where(path + (key,))} {problem}")
        elif isinstance(v, str) and not _is_text(v):
            raise Problem(f"{where(path + (key,))} holds a lone surrogate (\\ud800-\\udfff), which is not text")
        if isinstance(key, str) and not _is_text(key):
            raise Problem(f"{where(path)} has a key with a lone surrogate (\\ud800-\\udfff), which is not text")


def check_numbers(doc: dict) -> None:
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
                raise Problem(f"{where((key,))} {problem}")
            if isinstance(value, str) and not _is_text(value):
                raise Problem(f"{where((key,))} holds a lone surrogate (\\ud800-\\udfff), which is not text")


# ---------------------------------------------------------------------------------------------------------
# The schema
# ---------------------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _validator():
    return strict_schema_validator(topology_schema())


def check_schema(doc: dict) -> None:
    error = best_schema_error(_validator(), doc)
    if error is None:
        return
    if error.validator == "not" and error.validator_value == {} and len(error.absolute_path) == 1:
        # an entry of the other kind (the rf-perceptron branch has "bias": {"not": {}}, ...)
        raise Problem(
            f"it has an entry {error.absolute_path[0]!r}, which a file of kind {doc.get('kind')!r} must not have"
        )
    raise Problem(schema_problem(error, where=where))
