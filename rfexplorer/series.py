"""Which results may be averaged and joined by one line: series of comparable runs, and how to name them.

Qt-free. A *series* is every run of one resolved settings tree (``RunConfig.to_dict()``, recorded with each
result as ``ResultRow.config``) except

- the seed: a series' mean ± std is taken over seeds;
- the sparsity (``resonators_per_chain``, ``layer_resonators``): the x position along the series' line;
- settings that cannot change the result (:data:`NO_EFFECT`): where data files live, and numerically
  equivalent ways of computing the same network (they differ only in float rounding, like two CPUs);
- settings a model never reads (:func:`relevant_settings`): the device physics, hardware regime and
  plasticity of a software baseline, the hidden-layer settings of a single-layer network, and so on.

The dataset and the hidden layer sizes are settings like any other, so runs on two datasets or of two network
shapes are never averaged or joined. :func:`series_labels` names each series by only the settings in which it
differs from the others on display ("RF · 3 ep", "RF · aware · ±5 % · jitter 0.1 lw").

A multilayer network's sparsity is measured over all its layers (:func:`network_removed_pct`): its synapses
(resonators for RF, active weights for software models) against the dense network of the same shape.
"""
from __future__ import annotations

import functools
import os
from typing import Any, Mapping, Optional

#: Settings that never change a run's result, and why.
NO_EFFECT = {
    "seed": "averaged over: the series' spread",
    "data_dir": "where the dataset's files are found, not which data they hold (the dataset is named by 'dataset')",
    "compute_device": "seeds draw the same numbers on CPU and GPU; only float rounding differs, as between CPUs",
    "model_params.weight_build": "exact, fft and compiled agree to 1e-5 of max|W|: a speed choice",
    "plasticity.heartbeat_every": "how often a long rewiring round reports progress, not what it does",
}
#: Settings that place a run along its series' line (the x axis), so they are not part of the series.
SPARSITY = ("resonators_per_chain", "layer_resonators")
#: Settings only multilayer networks read.
MULTILAYER_ONLY = ("device.stno.", "plasticity.hidden_", "plasticity.network_input_fraction",
                   "model_params.hidden_lr_scale")
#: Order in which differing settings are named in a label; other paths follow alphabetically.
LABEL_ORDER = ("hidden", "epochs", "hardware", "budget", "lr", "lr_schedule", "batch_size", "validation_fraction",
               "device.tuning_range", "device.tuning_bits", "device.freq_spread", "device.calibrated",
               "device.freq_jitter_lw", "device.power_noise", "device.readout_noise_v")
#: Settings named in a label only where they differ from the default (physics and training details).
DETAIL_PREFIXES = ("device.", "plasticity.", "model_params.")
#: At most this many settings are named in one label (then "…").
MAX_LABEL_PARTS = 5


def _spec(model: str):
    from engine.config.models import get_spec

    try:
        return get_spec(model)
    except ValueError:
        return None


def _flatten(tree: Mapping, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flatten(value, path + "."))
        elif isinstance(value, (list, tuple)):
            out[path] = tuple(_hashable(v) for v in value)
        else:
            out[path] = _hashable(value)
    return out


def _hashable(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), _hashable(v)) for k, v in value.items()))
    return value


@functools.lru_cache(maxsize=32)
def _defaults(model: str) -> dict[str, Any]:
    """Every setting's default for ``model``, as flat paths (the learning rate resolved)."""
    try:
        from engine.config.run_config import RunConfig

        return _flatten(RunConfig(model=model).resolved().to_dict())
    except (ValueError, TypeError):
        return {}


def _recorded_settings(row) -> Optional[dict[str, Any]]:
    """The row's settings tree as flat paths, settings it lacks (older files) at their defaults, the default
    learning rate made explicit; None for a row without a recorded tree."""
    config = getattr(row, "config", None)
    if not isinstance(config, Mapping) or not config:
        return None
    flat = dict(_defaults(str(config.get("model", row.model))))
    flat.update(_flatten(config))
    if flat.get("lr") is None:
        spec = _spec(row.model)
        flat["lr"] = spec.default_lr if spec is not None else None
    return flat


def _uses_budget(spec) -> bool:
    return spec is None or (spec.family == "baseline" and spec.uses_k)


def relevant_settings(model: str, settings: dict[str, Any]) -> dict[str, Any]:
    """``settings`` (flat paths) without those that ``model`` never reads."""
    spec = _spec(model)
    single_layer = not settings.get("hidden")

    def reads(path: str) -> bool:
        if spec is not None and spec.family != "rf" and path.split(".")[0] in ("device", "hardware", "plasticity"):
            return False
        if spec is not None and spec.family == "rf" and not spec.trains_topology and path.startswith("plasticity."):
            return False
        if model != "rf-input" and path.startswith(("plasticity.input_", "plasticity.network_input_")):
            return False
        if single_layer and path.startswith(MULTILAYER_ONLY):
            return False
        return not (path == "budget" and not _uses_budget(spec))

    return {p: v for p, v in settings.items() if reads(p)}


def row_settings(row) -> dict[str, Any]:
    """Every setting of the row that can change its result, as flat dotted paths (the seed and the settings of
    :data:`NO_EFFECT` left out). A row without a recorded settings tree (a hand-made or very old file) is
    described by its own columns."""
    flat = _recorded_settings(row)
    if flat is None:
        flat = {"model": row.model, "budget": row.budget}
        if row.epochs:
            flat["epochs"] = row.epochs
    flat["model"] = row.model
    flat["dataset"] = str(row.dataset or "")
    flat["hidden"] = tuple(int(h) for h in (row.hidden or flat.get("hidden") or ()))
    flat = {p: v for p, v in flat.items() if p not in NO_EFFECT}
    return relevant_settings(row.model, flat)


def series_settings(row) -> dict[str, Any]:
    """The settings that define the row's series: :func:`row_settings` without the sparsity."""
    return {p: v for p, v in row_settings(row).items() if p not in SPARSITY}


def series_key(row) -> tuple:
    """A hashable key: equal for two rows exactly when they belong to one series (may be averaged over seeds
    at equal sparsity, and joined by a line across sparsities)."""
    return tuple(sorted(series_settings(row).items(), key=lambda kv: kv[0]))


# --- sparsity of whole networks ---------------------------------------------------------------------------------

def layer_sizes(row) -> tuple[int, ...]:
    """(inputs, hidden..., classes) of the row's network."""
    return (int(row.n_inputs), *(int(h) for h in row.hidden or ()), int(row.n_classes))


def network_synapses(row) -> int:
    """Synapses of the whole network: resonators (RF) or active weights (software), all layers."""
    sizes = layer_sizes(row)
    spec = _spec(row.model)
    if spec is not None and not spec.uses_k:
        return dense_synapses(row)
    ks = tuple(row.layer_ks or ()) or (int(row.resonators_per_chain),) * (len(sizes) - 1)
    ks = ks + (ks[-1],) * (len(sizes) - 1 - len(ks))
    return sum(int(n_out) * min(int(k), int(n_in)) for n_in, n_out, k in zip(sizes, sizes[1:], ks))


def dense_synapses(row) -> int:
    """Synapses of the dense network of the same shape."""
    sizes = layer_sizes(row)
    return sum(a * b for a, b in zip(sizes, sizes[1:]))


def network_removed_pct(row) -> float:
    """% of the dense network's synapses removed; for a single layer the row's own column (100 (1 - K/N))."""
    if not row.hidden:
        return float(row.removed_synapses_pct)
    dense = dense_synapses(row)
    return 100.0 * (1.0 - network_synapses(row) / dense) if dense else 0.0


def shape_text(row) -> str:
    """'784-100-10' for a multilayer network, '1 layer' for a single layer."""
    return "-".join(str(s) for s in layer_sizes(row)) if row.hidden else "1 layer"


# --- names ------------------------------------------------------------------------------------------------------

def dataset_text(dataset: str) -> str:
    """A dataset's short name: a registered name as is, a data file by its file name."""
    text = str(dataset or "")
    if not text:
        return "(unnamed dataset)"
    if "/" not in text and "\\" not in text:
        return text
    return os.path.basename(text.rstrip("/\\")) or text


def _num(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def setting_text(path: str, value: Any, row=None) -> str:
    """A short phrase for one setting's value: '3 ep', 'aware', '±5 %', 'jitter 0.1 lw', 'lr 0.05'."""
    if path == "hidden":
        return shape_text(row) if row is not None else ("-".join(map(str, value)) or "1 layer")
    if path == "epochs":
        return f"{value} ep"
    if path == "hardware":
        return str(value)
    if path == "budget":
        return f"{value} budget"
    if path == "lr_schedule":
        return f"{value} lr"
    if path == "validation_fraction":
        return f"val {100 * float(value):g} %" if value else "test set"
    if path == "device.tuning_range":
        return "full tuning range" if value is None else f"±{100 * float(value):g} %"
    if path == "device.tuning_bits":
        return "continuous" if value is None else f"{value} bits"
    if path == "device.freq_spread":
        return f"spread {100 * float(value):g} %"
    if path == "device.freq_jitter_lw":
        return f"jitter {_num(value)} lw"
    if path == "device.calibrated":
        return "calibrated" if value else "uncalibrated"
    name = path.rsplit(".", 1)[-1].replace("_", " ")
    if value is None:
        return f"{name} default"
    if isinstance(value, bool):
        return name if value else f"no {name}"
    if isinstance(value, tuple):
        return f"{name} {'/'.join(_num(v) for v in value)}"
    return f"{name} {_num(value)}"


def _cross_model(path: str) -> bool:
    """Whether two models' values of ``path`` mean the same (not so for their own defaults and parameters)."""
    return path != "lr" and not path.startswith("model_params.")


def _is_plain_default(path: str, value: Any, model: str) -> bool:
    """A physics, plasticity or model parameter at its default: not worth naming ('full tuning range')."""
    if not path.startswith(DETAIL_PREFIXES):
        return False
    defaults = _defaults(model)
    return path in defaults and defaults[path] == value


def differing_paths(series: Mapping[Any, dict]) -> dict[Any, list[str]]:
    """For each series (key -> its settings), the paths worth naming in its label: those whose value differs
    between series of its own model, and those every model reads alike (epochs, not the learning rate) that
    differ between models while each model's series agree. Physics, plasticity and model parameters are not
    named where they have their default value. Ordered by :data:`LABEL_ORDER`, then alphabetically."""
    missing = object()
    paths = {p for settings in series.values() for p in settings} - {"model", "dataset"}
    models = {settings.get("model") for settings in series.values()}
    within: dict[str, set] = {}  # path -> models whose series differ in it
    across: set = set()  # paths that differ between models only
    for path in paths:
        per_model: dict[Any, set] = {}
        for settings in series.values():
            per_model.setdefault(settings.get("model"), set()).add(settings.get(path, missing))
        within[path] = {m for m, values in per_model.items() if len(values) > 1}
        values = set().union(*per_model.values()) - {missing}
        if _cross_model(path) and not within[path] and len(values) > 1 and len(models) > 1:
            across.add(path)
    rank = {p: i for i, p in enumerate(LABEL_ORDER)}
    out: dict[Any, list[str]] = {}
    for key, settings in series.items():
        model = settings.get("model")
        named = [p for p in settings if p in paths and (model in within[p] or p in across)
                 and not _is_plain_default(p, settings[p], model)]
        out[key] = sorted(named, key=lambda p: (rank.get(p, len(rank)), p))
    return out


def series_labels(series: Mapping[Any, dict], rows: Optional[Mapping[Any, Any]] = None,
                  model_text=None) -> dict[Any, str]:
    """A short label per series: the model, then only the settings in which it differs from the others
    ('RF · 3 ep', 'RF · aware · ±5 % · jitter 0.1 lw'). ``rows`` (key -> one of its rows) lets the network
    shape be written out; ``model_text`` maps a model name to its display name."""
    model_text = model_text or (lambda m: m)
    labels: dict[Any, str] = {}
    for key, paths in differing_paths(series).items():
        settings = series[key]
        row = rows.get(key) if rows else None
        parts = [setting_text(p, settings[p], row) for p in paths]
        if len(parts) > MAX_LABEL_PARTS:
            parts = parts[:MAX_LABEL_PARTS] + ["…"]
        labels[key] = " · ".join([model_text(settings.get("model", "?")), *parts])
    seen: dict[str, int] = {}
    for key, label in labels.items():  # never two series under one name (e.g. settings unknown for one)
        seen[label] = seen.get(label, 0) + 1
        if seen[label] > 1:
            labels[key] = f"{label} ({seen[label]})"
    return labels
