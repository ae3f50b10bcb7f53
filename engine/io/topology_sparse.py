"""The software kinds of topology file, ``sparse-perceptron`` and ``sparse-network``, in both directions: the
non-zero weights as ``[row, column, weight]`` triplets and the biases written for a model, their lab-CSV rows,
and the checked rebuild as a :class:`~engine.nets.baselines.dense.DensePerceptron`,
:class:`~engine.nets.baselines.masked.MaskedPerceptron` or one of the multilayer networks of
:mod:`engine.nets.baselines.mlp`. :mod:`engine.io.topology_kinds` puts these functions in its table."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional, cast

import torch

from engine.config.models import get_spec
from engine.config.run_config import RunConfig
from engine.core.enums import Budget
from engine.core.model_base import PerceptronModel
from engine.nets.baselines.dense import DensePerceptron
from engine.nets.baselines.masked import BUDGET_SHAPES, MaskedPerceptron
from engine.nets.baselines.mlp import DenseMLP, MLPBase, PrunedMLP, RigLMLP

if TYPE_CHECKING:
    from engine.core.model_base import LayerList
from engine.io.topology_format import (
    SPARSE_CSV_COLUMNS,
    SPARSE_NETWORK_CSV_COLUMNS,
    Problem,
    count,
    find_setting,
    floats,
    layer_shape,
    pixel,
)

# ---------------------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------------------


def _triplets(w: torch.Tensor) -> list:
    """[row, column, value] of every non-zero entry of a weight matrix."""
    w = w.detach().cpu().to(torch.float32)
    nz = torch.nonzero(w, as_tuple=False)
    values = w[nz[:, 0], nz[:, 1]].tolist() if len(nz) else []
    return [[int(c), int(i), v] for (c, i), v in zip(nz.tolist(), values)]


def sparse_body(model: DensePerceptron | MaskedPerceptron, shape=None) -> dict:
    """A single-layer software perceptron: its biases and non-zero weights (``shape`` is not used)."""
    triplets = _triplets(model.effective_weight())
    return {
        "bias": floats(model.bias),
        "weights": triplets,
        "weights_columns": ["class", "input", "weight"],
        "nonzero_weights": len(triplets),
    }


def sparse_network_body(model, shape=None) -> dict:
    """A multilayer software network (engine.nets.baselines.mlp): each layer's non-zero weights and biases."""
    layers = []
    for l, (w, b) in enumerate(zip(model.layer_weights(), model.layer_biases())):
        triplets = _triplets(w)
        layers.append({"index": l, "bias": floats(b), "weights": triplets, "nonzero_weights": len(triplets)})
    return {
        "layer_sizes": [int(n) for n in model.layer_sizes],
        "layer_ks": [int(k) for k in model.layer_ks],
        "weights_columns": ["neuron", "input", "weight"],
        "layers": layers,
    }


def sparse_table(doc: dict) -> tuple[list, list]:
    """Columns and rows of a sparse-perceptron's lab CSV: one row per non-zero weight."""
    shape = doc.get("image_shape")
    rows = [[c, i, *pixel(int(i), shape), float(w)] for c, i, w in doc["weights"]]
    return list(SPARSE_CSV_COLUMNS), rows


def sparse_network_table(doc: dict) -> tuple[list, list]:
    """Columns and rows of a sparse-network's lab CSV: one row per non-zero weight of every layer."""
    shape = doc.get("image_shape")
    rows = [
        [layer["index"], c, i, *(pixel(int(i), shape) if layer["index"] == 0 else (None, None)), float(w)]
        for layer in doc["layers"]
        for c, i, w in layer["weights"]
    ]
    return list(SPARSE_NETWORK_CSV_COLUMNS), rows


def sparse_parameters(doc: dict, n_in: int, n_cls: int, sizes: Optional[list], ks: list) -> int:
    """The numbers a rebuilt sparse-perceptron holds (its weight matrix is rebuilt dense)."""
    return n_cls * n_in + n_cls


def sparse_network_parameters(doc: dict, n_in: int, n_cls: int, sizes: Optional[list], ks: list) -> int:
    """The numbers a rebuilt sparse-network holds (every layer's weight matrix is rebuilt dense)."""
    if sizes is None:
        return n_in + n_cls
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))


# ---------------------------------------------------------------------------------------------------------
# Reading: cross-checks and rebuilding
# ---------------------------------------------------------------------------------------------------------


def load_sparse(doc: dict, n_inputs: int, n_classes: int, shape, config: RunConfig) -> PerceptronModel:
    """The checked sparse-perceptron (``shape``, the image shape, is not used)."""
    count("bias", doc["bias"], n_classes, "one per class")
    triplets = doc["weights"]
    if len(triplets) > n_inputs * n_classes:
        raise Problem(
            f"it lists {len(triplets)} weights, more than the {n_inputs * n_classes} a {n_classes} x "
            f"{n_inputs} perceptron has"
        )
    for t, (c, i, _) in enumerate(triplets):
        if c >= n_classes:
            raise Problem(f"weights[{t}] class index is {c}, out of range (must be < n_classes = {n_classes})")
        if i >= n_inputs:
            raise Problem(f"weights[{t}] input index is {i}, out of range (must be < n_inputs = {n_inputs})")
    weight = torch.zeros(n_classes, n_inputs, dtype=torch.float32)
    if triplets:
        rc = torch.tensor([[int(c), int(i)] for c, i, _ in triplets], dtype=torch.long)
        flat = rc[:, 0] * n_inputs + rc[:, 1]
        uniq, counts = torch.unique(flat, return_counts=True)
        if len(uniq) != len(flat):
            dup = int(uniq[counts > 1][0])
            raise Problem(f"the weight of class {dup // n_inputs}, input {dup % n_inputs} is listed twice")
        weight[rc[:, 0], rc[:, 1]] = torch.tensor([float(w) for _, _, w in triplets], dtype=torch.float32)
    spec = get_spec(doc["model"])
    k = config.resonators_per_chain
    if spec.uses_k and len(triplets) > k * n_classes:
        raise Problem(f"it lists {len(triplets)} non-zero weights, more than its budget of {k} x {n_classes}")
    if "nonzero_weights" in doc and doc["nonzero_weights"] != len(triplets):
        raise Problem(f"nonzero_weights is {doc['nonzero_weights']} but it lists {len(triplets)} weights")
    bias = torch.tensor(doc["bias"], dtype=torch.float32)
    if not spec.uses_k:  # the dense perceptron: every weight in use, no budget
        return DensePerceptron.from_state(weight, bias)
    budget = find_setting(doc["config"], "budget")
    return MaskedPerceptron.from_state(
        weight, weight != 0, bias, k=min(k, n_inputs), budget=budget if budget in BUDGET_SHAPES else Budget.PER_OUTPUT
    )


def _layer_matrix(where: str, triplets: list, n_out: int, n_in: int) -> torch.Tensor:
    """The (n_out, n_in) weight matrix of [row, column, value] triplets, checked."""
    weight = torch.zeros(n_out, n_in, dtype=torch.float32)
    seen = set()
    for t, (c, i, w) in enumerate(triplets):
        if c >= n_out:
            raise Problem(f"{where}weights[{t}] neuron index is {c}, out of range (must be < {n_out})")
        if i >= n_in:
            raise Problem(f"{where}weights[{t}] input index is {i}, out of range (must be < {n_in})")
        if (c, i) in seen:
            raise Problem(f"{where}weights lists the weight of neuron {c}, input {i} twice")
        seen.add((c, i))
        weight[int(c), int(i)] = float(w)
    return weight


def load_sparse_network(doc: dict, n_inputs: int, n_classes: int, shape, config: RunConfig) -> PerceptronModel:
    """The checked sparse-network, every layer's weights and biases rebuilt (``shape`` is not used)."""
    sizes, ks = layer_shape(doc, n_inputs, n_classes)
    if tuple(config.hidden) != tuple(sizes[1:-1]):
        raise Problem(f"its run config has hidden layers {list(config.hidden)} but the file holds layers {sizes}")
    spec = get_spec(doc["model"])
    budget = find_setting(doc["config"], "budget")
    budget = budget if budget in BUDGET_SHAPES else Budget.PER_OUTPUT
    hidden = tuple(sizes[1:-1])
    for l, layer in enumerate(doc["layers"]):  # every count checked before a layer is allocated
        if layer.get("index", l) != l:
            raise Problem(f"layers[{l}].index is {layer['index']} where {l} was expected")
        count(f"layers[{l}].bias", layer["bias"], sizes[l + 1], "one per neuron of the layer")
    model: MLPBase
    with torch.random.fork_rng(devices=[]):  # a throw-away initial state, replaced below
        if not spec.uses_k:
            model = DenseMLP(n_inputs, n_classes, hidden)
        else:
            mlp_class = {"prune": PrunedMLP, "rigl": RigLMLP}.get(doc["model"])
            if mlp_class is None:
                raise Problem(f"model {doc['model']!r} has no multilayer version")
            for l, (k, fan_in) in enumerate(zip(ks, sizes)):
                if not 1 <= k <= fan_in:
                    raise Problem(f"layer_ks[{l}] is {k}, outside 1 to the layer's {fan_in} inputs")
            model = mlp_class(n_inputs, n_classes, hidden, tuple(ks), budget)
    rebuilt = []
    for l, layer in enumerate(doc["layers"]):
        where = f"layers[{l}]."
        n_in, n_out = sizes[l], sizes[l + 1]
        weight = _layer_matrix(where, layer["weights"], n_out, n_in)
        if "nonzero_weights" in layer and layer["nonzero_weights"] != len(layer["weights"]):
            raise Problem(
                f"{where}nonzero_weights is {layer['nonzero_weights']} but it lists {len(layer['weights'])} weights"
            )
        bias = torch.tensor(layer["bias"], dtype=torch.float32)
        # DensePerceptron, or the network's masked layer_class: two from_state signatures, told apart by uses_k
        layer_class: Any = type(model.layers[l])
        if not spec.uses_k:
            rebuilt.append(layer_class.from_state(weight, bias))
            continue
        k = ks[l]
        active = int((weight != 0).sum(dim=1).max()) if budget == Budget.PER_OUTPUT else int((weight != 0).sum())
        allowed = k if budget == Budget.PER_OUTPUT else k * n_out
        if active > allowed:
            raise Problem(
                f"{where}weights hold {active} non-zero weights "
                f"{'for one neuron' if budget == Budget.PER_OUTPUT else 'in the layer'}, more than its "
                f"budget of {allowed}"
            )
        rebuilt.append(layer_class.from_state(weight, weight != 0, bias, k=k, budget=budget))
    model.layers = cast("LayerList[DensePerceptron | MaskedPerceptron]", torch.nn.ModuleList(rebuilt))
    return model.eval()
