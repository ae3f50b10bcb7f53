"""The RF kinds of topology file, ``rf-perceptron`` and ``rf-network``, in both directions: the document body
and lab-CSV rows written for a model, the cross-checks of a validated document (lengths, frequencies against
comb positions and the frequency plan, chain signs against the parity, pixels, read-out gain, fabrication
draws) and the rebuilt model, bit-identical to the one exported. :mod:`engine.io.topology_kinds` puts these
functions in its table; nothing else calls them."""

from __future__ import annotations

import math
from typing import Any, Optional

import torch

from engine.config.run_config import RunConfig
from engine.io.topology_format import (
    COMB_SLACK,
    FREQ_RTOL,
    GAIN_RTOL,
    NETWORK_CSV_COLUMNS,
    RF_CSV_COLUMNS,
    Problem,
    count,
    declared,
    floats,
    is_int,
    layer_shape,
    pixel,
)
from engine.nets.multilayer import RFNetwork
from engine.nets.rf_perceptron import RFParams, RFPerceptron
from engine.physics.resonators import DeviceParams, chain_signs, comb_to_ghz, tuning_range_comb

# ---------------------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------------------


def _chain_records(chains, shape, bias: list, bias_key: str = "bias") -> list:
    """One record per chain of an RF chain layer, each with its resonators (``shape``: the inputs' image shape,
    or None); ``bias`` (one value per chain) is stored under ``bias_key``."""
    res_comb = chains.resonator_comb.detach()
    n_chains, k = res_comb.shape
    res_ghz = floats(chains.resonator_freqs_ghz())
    res_u = floats(res_comb)
    signs = chains.signs.detach().cpu().tolist()
    idx, coupling = chains.attachments()
    idx, coupling = idx.cpu().tolist(), floats(coupling)
    alpha_r = floats(chains.alpha_r) if getattr(chains, "alpha_r", None) is not None else None
    k_sd_r = floats(chains.k_sd_r) if getattr(chains, "k_sd_r", None) is not None else None
    eps_r = floats(chains.freq_eps_r) if getattr(chains, "freq_eps_r", None) is not None else None
    out_chains = []
    for j in range(n_chains):
        resonators = []
        for r in range(k):
            row, col = pixel(int(idx[j][r]), shape)
            res = {
                "index": r,
                "frequency_ghz": res_ghz[j][r],
                "comb_position": res_u[j][r],
                "sign": int(round(signs[r])),
                "attached_input": int(idx[j][r]),
                "pixel_row": row,
                "pixel_col": col,
                "coupling_v_per_uw": coupling[j][r],
            }
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
    record = {
        "frequency_ghz": floats(chains.input_freqs_ghz()),
        "comb_position": floats(chains.input_comb.detach()),
        "trained": bool(chains.input_comb.requires_grad),
    }
    if getattr(chains, "freq_eps_in", None) is not None:
        record["fabrication_draw"] = floats(chains.freq_eps_in)
    return record


def _readout_record(model) -> dict:
    return {
        "log_gain": float(model.log_gain.detach()),
        "gain": float(model.gain.detach()),
        "note": "class score j = gain * V_j + bias_j; gain = exp(log_gain) / (k_sd * p_max_uw)",
    }


def rf_network_body(model, shape) -> dict:
    """An rf-network's entries: layer sizes and K, physics, read-out, and per layer its emitters and chains
    (hidden layers also their STNO conversion); ``shape``: the inputs' image shape, or None."""
    params: DeviceParams = model.params
    layers = []
    last = model.n_layers - 1
    for l, chains in enumerate(model.layers):
        record: dict[str, Any] = {"index": l, "inputs": _inputs_record(chains)}
        if l < last:
            record["chains"] = _chain_records(
                chains, shape if l == 0 else None, floats(model.hidden_bias[l]), "bias_current_ith"
            )
            record["stno"] = {"log_gm": float(model.log_gm[l].detach()), "g_m": float(model.g_m(l).detach())}
        else:
            record["chains"] = _chain_records(chains, shape if l == 0 else None, floats(model.bias))
        layers.append(record)
    return {
        "layer_sizes": [int(n) for n in model.layer_sizes],
        "layer_ks": [int(k) for k in model.layer_ks],
        "physics": params.to_dict(),
        "readout": _readout_record(model),
        "layers": layers,
        "units": {
            "frequency_ghz": "GHz",
            "comb_position": "input spacings of the layer (comb units; authoritative)",
            "coupling_v_per_uw": "V/µW (normalised units)",
            "bias": "class-score units",
            "bias_current_ith": "units of the STNO threshold current I_th",
            "g_m": "µA per mV (g_m = physics.stno.g_m * exp(log_gm))",
        },
    }


def rf_body(model, shape) -> dict:
    """An rf-perceptron's entries: K, physics, read-out, input oscillators and one chain per class."""
    chains = model.chains
    params: DeviceParams = model.params
    k = int(chains.resonator_comb.shape[1])
    out_chains = _chain_records(chains, shape, floats(model.bias))
    return {
        "resonators_per_chain": k,
        "physics": params.to_dict(),
        "readout": _readout_record(model),
        "inputs": _inputs_record(chains),
        "chains": out_chains,
        "units": {
            "frequency_ghz": "GHz",
            "comb_position": "input spacings (comb units; authoritative)",
            "coupling_v_per_uw": "V/µW (normalised units)",
            "bias": "class-score units",
        },
    }


def rf_table(doc: dict) -> tuple[list, list]:
    """Columns and rows of an rf-perceptron's lab CSV: one row per resonator."""
    first = doc["chains"][0]["resonators"][0] if doc["chains"] and doc["chains"][0]["resonators"] else {}
    extra = [c for c in ("alpha", "k_sd") if c in first]
    rows = [
        [
            j,
            r,
            float(res["frequency_ghz"]),
            float(res["comb_position"]),
            res["sign"],
            res["attached_input"],
            res.get("pixel_row"),
            res.get("pixel_col"),
            float(res["coupling_v_per_uw"]),
            *[float(res[c]) for c in extra],
        ]
        for j, chain in enumerate(doc["chains"])
        for r, res in enumerate(chain["resonators"])
    ]
    return [*RF_CSV_COLUMNS, *extra], rows


def rf_network_table(doc: dict) -> tuple[list, list]:
    """Columns and rows of an rf-network's lab CSV: one row per resonator of every layer."""
    rows = [
        [
            layer["index"],
            j,
            r,
            float(res["frequency_ghz"]),
            float(res["comb_position"]),
            res["sign"],
            res["attached_input"],
            res.get("pixel_row"),
            res.get("pixel_col"),
            float(res["coupling_v_per_uw"]),
        ]
        for layer in doc["layers"]
        for j, chain in enumerate(layer["chains"])
        for r, res in enumerate(chain["resonators"])
    ]
    return list(NETWORK_CSV_COLUMNS), rows


def rf_parameters(doc: dict, n_in: int, n_cls: int, sizes: Optional[list], ks: list) -> int:
    """The numbers a rebuilt rf-perceptron holds, from the declared sizes (before anything is allocated)."""
    return n_in + n_cls * (declared(doc.get("resonators_per_chain")) or 1) + n_cls


def rf_network_parameters(doc: dict, n_in: int, n_cls: int, sizes: Optional[list], ks: list) -> int:
    """The numbers a rebuilt rf-network holds, from the declared sizes (before anything is allocated)."""
    if sizes is None:
        return n_in + n_cls
    pairs = list(zip(sizes[:-1], sizes[1:]))
    return sum(a + b * (ks[l] if l < len(ks) else 1) + b for l, (a, b) in enumerate(pairs))


def keep_rf_record(new: dict, old: dict) -> None:
    """Keep in ``new`` (a loaded rf-perceptron written again) whether the file's inputs were trained: a rebuilt
    model is frozen."""
    if "inputs" in old:
        new["inputs"]["trained"] = bool(old["inputs"].get("trained", new["inputs"]["trained"]))


def keep_rf_network_record(new: dict, old: dict) -> None:
    """Keep in ``new`` (a loaded rf-network written again) whether each layer's inputs were trained."""
    if "layers" in old:
        for new_layer, old_layer in zip(new["layers"], old["layers"]):
            new_layer["inputs"]["trained"] = bool(old_layer["inputs"].get("trained", new_layer["inputs"]["trained"]))


# ---------------------------------------------------------------------------------------------------------
# Reading: cross-checks and rebuilding
# ---------------------------------------------------------------------------------------------------------


def _close(a: torch.Tensor, b: torch.Tensor, rtol: float) -> torch.Tensor:
    return (a - b).abs() <= rtol * torch.maximum(a.abs(), b.abs()).clamp_min(1e-30)


def _first_false(ok: torch.Tensor) -> Optional[tuple]:
    bad = torch.nonzero(~ok, as_tuple=False)
    return tuple(int(i) for i in bad[0]) if len(bad) else None


def _device_params(d: dict) -> DeviceParams:
    try:
        return DeviceParams.from_dict({k: (float(v) if is_int(v) else v) for k, v in d.items()})
    except (ValueError, TypeError) as exc:
        raise Problem(f"its physics parameters are not valid ({exc})") from None


def _check_frequencies(where, u: torch.Tensor, f: torch.Tensor, params: DeviceParams, n_in: int) -> None:
    """u, f: float64 comb positions and GHz of the same shape on a comb of ``n_in`` inputs;
    ``where(name, index)`` names an entry."""
    lo, hi = tuning_range_comb(params, n_in)
    lo, hi = lo - COMB_SLACK, hi + COMB_SLACK
    bad = _first_false((u >= lo) & (u <= hi))
    if bad is not None:
        raise Problem(f"{where('comb_position', bad)} is {u[bad].item()}, outside the tuning range [{lo:g}, {hi:g}]")
    expected = comb_to_ghz(u, params, n_in)
    bad = _first_false(_close(f, expected, FREQ_RTOL))
    if bad is not None:
        raise Problem(
            f"{where('frequency_ghz', bad)} is {f[bad].item()} GHz but its comb position "
            f"{u[bad].item()} gives {expected[bad].item():.9g} GHz"
        )


def _check_inputs(inputs: dict, n_in: int, params: DeviceParams, prefix: str = "") -> torch.Tensor:
    """The comb positions (float64) of a layer's emitters, checked."""
    count(f"{prefix}inputs.comb_position", inputs["comb_position"], n_in, "one per input")
    count(f"{prefix}inputs.frequency_ghz", inputs["frequency_ghz"], n_in, "one per input")
    in_u = torch.tensor(inputs["comb_position"], dtype=torch.float64)
    _check_frequencies(
        lambda name, i: f"{prefix}inputs.{name}[{i[0]}]",
        in_u,
        torch.tensor(inputs["frequency_ghz"], dtype=torch.float64),
        params,
        n_in,
    )
    return in_u


def _check_readout(readout: dict, params: DeviceParams) -> float:
    log_gain = float(readout["log_gain"])
    if "gain" in readout:
        expected = math.exp(log_gain) / (params.k_sd * params.p_max_uw) if log_gain < 700 else math.inf
        if not abs(readout["gain"] - expected) <= GAIN_RTOL * max(abs(expected), abs(readout["gain"])):
            raise Problem(f"readout.gain is {readout['gain']} but exp(log_gain) / (k_sd p_max) gives {expected:.9g}")
    return log_gain


def _check_chains(
    chains: list,
    n_chains: int,
    k: int,
    n_in: int,
    params: DeviceParams,
    shape,
    prefix: str = "",
    bias_key: str = "bias",
    what: str = "one per class",
):
    """Check one layer's chain records; returns (comb positions (C, K) float64, biases, alpha, k_sd), the last
    two per resonator or None."""
    count(f"{prefix}chains", chains, n_chains, what)
    signs = [int(s) for s in chain_signs(k, params.parity).tolist()]
    first = chains[0]["resonators"][0] if chains[0]["resonators"] else {}
    has = {
        name: name in first or params_spread > 0
        for name, params_spread in (("alpha", params.alpha_dtod), ("k_sd", params.k_sd_dtod))
    }
    for j, chain in enumerate(chains):
        where = f"{prefix}chains[{j}]"
        if chain.get("index", j) != j:
            raise Problem(f"{where}.index is {chain['index']} where {j} was expected")
        if bias_key not in chain:
            raise Problem(f"{where} has no {bias_key!r} entry")
        count(f"{where}.resonators", chain["resonators"], k, "resonators_per_chain")
        for r, res in enumerate(chain["resonators"]):
            w = f"{where}.resonators[{r}]"
            if res.get("index", r) != r:
                raise Problem(f"{w}.index is {res['index']} where {r} was expected")
            if res["sign"] != signs[r]:
                raise Problem(
                    f"{w}.sign is {res['sign']} but a chain with parity {params.parity.value!r} has s_{r} = {signs[r]}"
                )
            att = int(res["attached_input"])
            if att >= n_in:
                raise Problem(f"{w}.attached_input is {att}, out of range (must be < n_inputs = {n_in})")
            for name, pos in (("pixel_row", 0), ("pixel_col", 1)):
                v = res.get(name)
                if v is not None and shape is not None and v != pixel(att, shape)[pos]:
                    raise Problem(
                        f"{w}.{name} is {v} but attached input {att} is at row {att // shape[1]}, "
                        f"column {att % shape[1]}"
                    )
            for name, needed in has.items():
                if needed and name not in res:
                    why = f"the physics has {name}_dtod > 0" if name not in first else "resonator 0 of chain 0 has one"
                    raise Problem(f"{w} has no {name!r} entry ({why})")
    res_u = torch.tensor([[res["comb_position"] for res in c["resonators"]] for c in chains], dtype=torch.float64)
    res_f = torch.tensor([[res["frequency_ghz"] for res in c["resonators"]] for c in chains], dtype=torch.float64)
    _check_frequencies(lambda name, i: f"{prefix}chains[{i[0]}].resonators[{i[1]}].{name}", res_u, res_f, params, n_in)

    def per_resonator(name: str):
        return [[res[name] for res in c["resonators"]] for c in chains] if has[name] else None

    return res_u, [float(c[bias_key]) for c in chains], per_resonator("alpha"), per_resonator("k_sd")


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
        raise Problem(
            f"{prefix}inputs and every resonator of {prefix}chains must all have a 'fabrication_draw' "
            f"entry, or none of them"
        )
    if params.freq_spread <= 0:
        where = f" in {prefix.rstrip('.')}" if prefix else ""
        raise Problem(f"it holds fabrication draws{where} but physics.freq_spread is 0")
    draws_in = inputs["fabrication_draw"]
    if len(draws_in) != len(inputs["comb_position"]):
        raise Problem(
            f"{prefix}inputs.fabrication_draw has {len(draws_in)} values where "
            f"{len(inputs['comb_position'])} (one per input) were expected"
        )
    eps_r = torch.tensor([[res["fabrication_draw"] for res in c["resonators"]] for c in chains], dtype=torch.float32)
    eps_in = torch.tensor(draws_in, dtype=torch.float32)
    if not (torch.isfinite(eps_r).all() and torch.isfinite(eps_in).all()):
        raise Problem(f"{prefix}fabrication draws must be finite numbers")
    return eps_r, eps_in


def load_rf(doc: dict, n_inputs: int, n_classes: int, shape, config: RunConfig):
    params = _device_params(doc["physics"])
    k = int(doc["resonators_per_chain"])
    if k > n_inputs:
        raise Problem(f"resonators_per_chain is {k}, more than the {n_inputs} inputs")
    if config.resonators_per_chain != k:
        raise Problem(f"its run config has {config.resonators_per_chain} resonators per chain but the file holds {k}")
    if config.hidden:
        raise Problem("its run config has hidden layers but the file holds a single-layer network")
    in_u = _check_inputs(doc["inputs"], n_inputs, params)
    log_gain = _check_readout(doc["readout"], params)
    res_u, bias, alpha_r, k_sd_r = _check_chains(doc["chains"], n_classes, k, n_inputs, params, shape)
    chip = _check_fabrication(doc["chains"], doc["inputs"], params)
    rf_params = config.model_params if isinstance(config.model_params, RFParams) else None
    model = RFPerceptron.from_state(
        params,
        in_u.to(torch.float32),
        res_u.to(torch.float32),
        bias,
        log_gain,
        alpha_r=alpha_r,
        k_sd_r=k_sd_r,
        rf_params=rf_params,
    )
    if chip is not None:  # the chip it was trained or evaluated on, not a new one
        model.chains.freq_eps_r, model.chains.freq_eps_in = chip
    return model


def load_rf_network(doc: dict, n_inputs: int, n_classes: int, shape, config: RunConfig):
    params = _device_params(doc["physics"])
    sizes, ks = layer_shape(doc, n_inputs, n_classes)
    for l, (k, fan_in) in enumerate(zip(ks, sizes)):
        if k > fan_in:
            raise Problem(f"layer_ks[{l}] is {k}, more than the layer's {fan_in} inputs")
    if tuple(config.hidden) != tuple(sizes[1:-1]) or tuple(config.layer_ks) != tuple(ks):
        raise Problem(
            f"its run config has hidden layers {list(config.hidden)} and K {list(config.layer_ks)} "
            f"but the file holds layers {sizes} and K {ks}"
        )
    log_gain = _check_readout(doc["readout"], params)
    states = []
    last = len(ks) - 1
    for l, layer in enumerate(doc["layers"]):
        prefix = f"layers[{l}]."
        if layer.get("index", l) != l:
            raise Problem(f"layers[{l}].index is {layer['index']} where {l} was expected")
        in_u = _check_inputs(layer["inputs"], sizes[l], params, prefix)
        hidden = l < last
        if hidden and "stno" not in layer:
            raise Problem(f"layers[{l}] is a hidden layer but has no 'stno' entry")
        if not hidden and "stno" in layer:
            raise Problem(f"layers[{l}] is the output layer, which has no oscillators, but has an 'stno' entry")
        res_u, bias, alpha_r, k_sd_r = _check_chains(
            layer["chains"],
            sizes[l + 1],
            ks[l],
            sizes[l],
            params,
            shape if l == 0 else None,
            prefix,
            "bias_current_ith" if hidden else "bias",
            "one per neuron of the layer",
        )
        chip = _check_fabrication(layer["chains"], layer["inputs"], params, prefix)
        states.append((in_u, res_u, bias, alpha_r, k_sd_r, layer.get("stno"), chip))
    rf_params = config.model_params if isinstance(config.model_params, RFParams) else None
    model = RFNetwork(n_inputs, n_classes, sizes[1:-1], ks, device=params, params=rf_params, train_inputs=False)
    f32 = lambda t: torch.as_tensor(t, dtype=torch.float32)  # noqa: E731 - a one-line local helper reads best inline
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
