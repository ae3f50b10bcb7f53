"""Multilayer RF spintronic networks: chains of resonators feeding spin-torque nano-oscillator (STNO) neurons.

Layer l is an :class:`~engine.layers.chain.RFChainLayer`: its inputs are the previous layer's emitters (the
input oscillators for layer 1, the hidden STNOs after that), each at its own frequency on the layer's comb,
and its H_l chains of K_l resonators give the voltages V (B, H_l). A hidden chain drives one STNO
(engine.physics.resonators.stno_current_ua / stno_power_uw): I = g_m (V + V_bias + b_j), clamped to [I_th, 4 I_th], and
the STNO emits P = A (xi - 1)/(xi + Q) R I^2 into the next layer's chains. The last layer has no oscillator:
its chain voltages, times a read-out gain, plus a bias, are the class scores (as in the single-layer
:class:`~engine.nets.rf_perceptron.RFPerceptron`).

Trained: every resonance (comb positions), every emitter frequency for ``rf-input`` (the input oscillators
and the hidden STNOs), the per-chain bias currents b_j (in units of I_th), each hidden layer's g_m (when
``device.stno.train_gain``) and the read-out gain and bias. Structural plasticity runs in every layer
(engine.plasticity.rounds): resonators jump to other emitters' frequencies.

At the start of training, each hidden layer's bias currents and g_m are calibrated on a sample of training
inputs so that every STNO starts inside its active window (median current at the window's centre, the middle
half of the currents spanning about half the window): an STNO held below threshold or at the clamp passes
no gradient.
"""

from __future__ import annotations

import math
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Optional, Sequence, cast

import numpy as np
import torch
from torch import nn

from engine.core.model_base import PerceptronModel, TrainingContext
from engine.layers.chain import RFChainLayer
from engine.nets import rf_step
from engine.nets.rf_perceptron import RFParams
from engine.physics import resonators as physics
from engine.physics.resonators import DeviceParams
from engine.plasticity import fused_stno
from engine.plasticity.hidden import HiddenLayerPlasticity
from engine.plasticity.params import PlasticityParams
from engine.plasticity.rounds import LayerTarget, StructuralPlasticity

if TYPE_CHECKING:
    from engine.core.model_base import LayerList

#: Training samples used to calibrate the hidden STNOs' operating points at the start of training.
CALIBRATION_SAMPLES = 2048


def attached_layout(
    n_inputs: int, n_chains: int, n_resonators: int, spacing_lw: float, generator: torch.Generator
) -> torch.Tensor:
    """Initial comb positions (C, K) for a layer fed by few, widely spaced emitters: in every chain, K distinct
    emitters drawn at random, each with one resonator one linewidth above or below it (random side), where
    its coupling is strongest. (A uniform layout would leave most resonators between emitters, many
    linewidths from any, where they barely couple.)"""
    emitters = torch.rand(n_chains, n_inputs, generator=generator).argsort(dim=1)[:, :n_resonators]
    side = torch.randint(0, 2, (n_chains, n_resonators), generator=generator).to(torch.float32) * 2.0 - 1.0
    return emitters.to(torch.float32) + side * min(0.5, 1.0 / spacing_lw)


@torch.no_grad()
def emitted_powers_uw(first_weight, layers: Sequence[dict], device: DeviceParams, x, upto: int) -> np.ndarray:
    """Powers (µW) that reach layer ``upto``'s chains for one input sample x (N,) in [0, 1], from a snapshot's
    arrays (``first_weight``: the first layer's W in V/µW; ``layers``: Snapshot.layers, with the operating
    points of :meth:`RFNetwork.emitter_operating_point`): the network's noise-free forward pass (as
    :meth:`RFNetwork.layer_inputs`). Raises KeyError when the snapshot has no operating points."""
    p = physics.input_power(torch.as_tensor(np.asarray(x, dtype=np.float32)), device)
    for l in range(int(upto)):
        d = layers[l]
        w = torch.as_tensor(np.asarray(first_weight if l == 0 else d["weight"], dtype=np.float32))
        v = w @ p + device.stno.v_bias
        bias = torch.as_tensor(np.asarray(d["stno_bias_ua"], dtype=np.float32))
        p = physics.stno_power_uw(physics.stno_current_ua(v, float(d["stno_gm"]), device.stno, bias), device.stno)
    return p.numpy().astype(np.float64)


class RFNetwork(PerceptronModel):
    """An RF network with hidden layers of STNO neurons: N -> H_1 -> ... -> C."""

    is_rf = True
    is_multilayer = True

    def __init__(
        self,
        n_inputs: int,
        n_classes: int,
        hidden: Sequence[int],
        ks: Sequence[int],
        *,
        device: DeviceParams,
        params: Optional[RFParams] = None,
        plasticity: Optional[PlasticityParams] = None,
        train_inputs: bool = False,
        generator: Optional[torch.Generator] = None,
    ) -> None:
        super().__init__(n_inputs, n_classes, generator)
        hidden = tuple(int(h) for h in hidden)
        ks = tuple(int(k) for k in ks)
        sizes = (n_inputs, *hidden, n_classes)
        if len(ks) != len(sizes) - 1:
            raise ValueError(f"need one K per layer ({len(sizes) - 1}), got {len(ks)}")
        for layer, (k, fan_in) in enumerate(zip(ks, sizes), start=1):
            if not 1 <= k <= fan_in:
                raise ValueError(f"K of layer {layer} must be between 1 and its {fan_in} inputs (got {k})")
        rf = params if params is not None else RFParams()
        self.params = device
        self.rf_params = rf
        self.stno = device.stno
        self.layer_sizes = sizes
        self.layer_ks = ks
        self.n_resonators = ks[-1]
        layers = nn.ModuleList(
            RFChainLayer(
                n_in,
                n_out,
                k,
                device,
                train_inputs=train_inputs,
                generator=self.generator,
                init_layout=rf.init_layout,
                init_jitter=rf.aligned_jitter,
                weight_build=rf.weight_build,
            )
            for n_in, n_out, k in zip(sizes[:-1], sizes[1:], ks)
        )
        self.layers = cast("LayerList[RFChainLayer]", layers)
        with torch.no_grad():  # deeper layers: every resonator starts on its own emitter (see attached_layout)
            for l in range(1, len(self.layers)):
                deeper = self.layers[l]
                deeper.resonator_comb.copy_(
                    attached_layout(
                        deeper.n_inputs,
                        deeper.n_chains,
                        deeper.n_resonators,
                        physics.spacing_in_linewidths(device, deeper.n_inputs),
                        self.generator,
                    )
                )
        #: per hidden chain: bias current in units of I_th (added to g_m (V + V_bias))
        self.hidden_bias = nn.ParameterList(nn.Parameter(torch.zeros(h)) for h in hidden)
        #: per hidden layer: log of g_m relative to device.stno.g_m
        self.log_gm = nn.ParameterList(
            nn.Parameter(torch.zeros(()), requires_grad=device.stno.train_gain) for _ in hidden
        )
        self.bias = nn.Parameter(torch.zeros(n_classes))
        self.log_gain = nn.Parameter(torch.tensor(math.log(rf.initial_gain)))
        self._unit = 1.0 / (device.k_sd * device.p_max_uw)
        self.plasticity_params = plasticity
        self.plasticity: list = []
        self._weights: list[Optional[torch.Tensor]] = [None] * len(self.layers)
        #: dL/dW of every layer from a step by hand (engine.nets.rf_step.network_step), for the rewiring rounds
        self._weight_grads: list[Optional[torch.Tensor]] = [None] * len(self.layers)
        self._step_by_hand = False  # whether training_step may compute steps by hand (set when training starts)
        self.calibrated = False

    # --- structure ------------------------------------------------------------------------------------------
    @property
    def chains(self) -> RFChainLayer:
        """The first layer (what the single-layer views show: input oscillators and their resonators)."""
        return self.layers[0]

    @property
    def n_layers(self) -> int:
        return len(self.layers)

    @property
    def gain(self) -> torch.Tensor:
        """Read-out gain of the output layer (scores per volt)."""
        return torch.exp(self.log_gain) * self._unit

    def g_m(self, layer: int) -> torch.Tensor:
        """Voltage-to-current conversion of hidden layer ``layer`` (µA per mV)."""
        return self.stno.g_m * torch.exp(self.log_gm[layer])

    # --- forward ----------------------------------------------------------------------------------------------
    def hidden_current(self, layer: int, v: torch.Tensor, chains: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The STNO currents (µA) of hidden layer ``layer`` for its chain voltages v (B, H, ...): chains on
        dimension 1, any trailing dimensions (candidate voltages of a plasticity round) broadcast. With
        ``chains`` (indices), v holds only those chains' voltages (B, len(chains), ...)."""
        bias = self.bias_current_ua(layer)
        bias = (bias if chains is None else bias[chains]).view(-1, *([1] * (v.dim() - 2)))
        return physics.stno_current_ua(v + self.stno.v_bias, self.g_m(layer), self.stno, bias)

    def bias_current_ua(self, layer: int) -> torch.Tensor:
        """The bias currents (µA) of hidden layer ``layer``'s STNOs (H,): the trained bias in units of I_th."""
        return self.stno.i_th_ua * self.hidden_bias[layer]

    def activation(self, layer: int, v: torch.Tensor, chains: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Power (µW) the STNOs of hidden layer ``layer`` emit for chain voltages v (of the chains ``chains``
        only, when given); without gradients, one fused loop where it applies (the same bits)."""
        if (
            chains is None
            and not (torch.is_grad_enabled() and (v.requires_grad or self.hidden_bias[layer].requires_grad))
            and v.device.type == "cpu"
            and v.dtype == torch.float32
            and v.dim() >= 2
            and fused_stno.available()
        ):
            return fused_stno.powers(v, self.bias_current_ua(layer).detach(), self.g_m(layer), self.stno)
        return physics.stno_power_uw(self.hidden_current(layer, v, chains), self.stno)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = self.layer_weights()
        if self.training and self.plasticity:  # the plasticity of each layer sums dLoss/dW over batches
            for l, w in enumerate(weights):
                if w.requires_grad:
                    w.retain_grad()
                    self._weights[l] = w
        return self.scores_from(0, physics.input_power(x, self.params), weights)

    @torch.no_grad()
    def layer_inputs(self, x: torch.Tensor, layer: int) -> torch.Tensor:
        """The powers (µW) that reach layer ``layer``'s chains for inputs x (B, N)."""
        p = physics.input_power(x, self.params)
        for l in range(layer):
            p = self.activation(l, self.layers[l](p))
        return p

    def scores_from(
        self, layer: int, p: torch.Tensor, weights: Optional[Sequence[torch.Tensor]] = None
    ) -> torch.Tensor:
        """Class scores when layer ``layer`` receives powers p (differentiable); ``weights`` optionally gives
        the W of layers ``layer``, ``layer + 1``, ... already built."""
        for l in range(layer, self.n_layers):
            v = self.layers[l](p, weight=None if weights is None else weights[l - layer])
            if l < len(self.hidden_bias):
                p = self.activation(l, v)
            else:
                return self.gain * v + self.bias
        raise AssertionError("unreachable")

    def effective_weight(self) -> torch.Tensor:
        """W of the first layer (H_1, N) in V/µW."""
        return self.layers[0].weight()

    def layer_weights(self) -> list[torch.Tensor]:
        """W of every layer, first to last."""
        return [layer.weight() for layer in self.layers]

    def synapse_count(self) -> int:
        return sum(n_out * k for n_out, k in zip(self.layer_sizes[1:], self.layer_ks))

    # --- training ---------------------------------------------------------------------------------------------
    def comb_scale(self, layer: int) -> float:
        """How many of layer ``layer``'s comb units make one comb unit of the first layer, in linewidths (at
        most 1): learning rates and plasticity grids of a layer with few, widely spaced emitters are scaled by
        it, so that a step detunes a resonator by the same number of linewidths in every layer."""
        first = physics.spacing_in_linewidths(self.params, self.layer_sizes[0])
        here = physics.spacing_in_linewidths(self.params, self.layer_sizes[layer])
        return min(1.0, first / here)

    def make_optimizer(self, lr: float) -> torch.optim.Optimizer:
        """Adam. Each layer's frequencies use lr times its :meth:`comb_scale`; the hidden bias currents (units
        of I_th) and g_m use ``hidden_lr_scale`` times lr; the read-out gain and bias use lr."""
        from engine.core.model_base import make_adam

        groups = []
        for l, layer in enumerate(self.layers):
            params = [p for p in (layer.resonator_comb, layer.input_comb) if p.requires_grad]
            groups.append({"params": params, "lr": lr * self.comb_scale(l)})
        slow = [p for p in (*self.hidden_bias, *self.log_gm) if p.requires_grad]
        if slow:
            groups.append({"params": slow, "lr": lr * self.rf_params.hidden_lr_scale})
        groups.append({"params": [self.log_gain, self.bias], "lr": lr})
        return make_adam(groups, lr)

    @torch.no_grad()
    def calibrate(self, x: torch.Tensor) -> None:
        """Set each hidden layer's bias currents and g_m so its STNOs start inside their active window."""
        p = physics.input_power(x, self.params)
        lo, hi = self.stno.i_th_ua, self.stno.clamp_ratio * self.stno.i_th_ua
        for l in range(len(self.hidden_bias)):
            v = self.layers[l](p) + self.stno.v_bias  # (S, H) in V
            q1, med, q3 = torch.quantile(v, torch.tensor([0.25, 0.5, 0.75], device=v.device), dim=0)
            spread = float((q3 - q1).median().clamp_min(1e-12))  # V, typical interquartile range of a chain
            g = 0.5 * (hi - lo) / (1000.0 * spread)  # µA/mV: the middle half spans half the window
            if self.stno.train_gain:
                self.log_gm[l].fill_(math.log(g / self.stno.g_m))
            g_used = float(self.g_m(l))
            centre = 0.5 * (lo + hi)
            self.hidden_bias[l].copy_((centre - 1000.0 * g_used * med) / self.stno.i_th_ua)
            p = self.activation(l, v - self.stno.v_bias)
        self.calibrated = True

    def setup_training(self, context: TrainingContext) -> None:
        if not self.calibrated and len(self.hidden_bias):
            n = min(CALIBRATION_SAMPLES, len(context.train_x))
            idx = torch.randperm(len(context.train_x), generator=self.generator)[:n].to(context.train_x.device)
            self.calibrate(torch.index_select(context.train_x, 0, idx))
        own = [*self.hidden_bias, *self.log_gm, self.bias, self.log_gain]
        own += [p for layer in self.layers for p in (layer.resonator_comb, layer.input_comb)]
        self._step_by_hand = rf_step.only_these_train(self, own)
        self.plasticity = []
        if self.plasticity_params is None:
            return
        last = self.n_layers - 1
        for l, layer in enumerate(self.layers):
            scale = self.comb_scale(l)
            params = replace(
                self.plasticity_params,
                grid_step=self.plasticity_params.grid_step * scale,
                candidate_separation=self.plasticity_params.candidate_separation * scale,
            )
            target = LayerTarget(
                chains=layer,
                gain=lambda: self.gain,
                bias=lambda: self.bias,
                inputs=partial(self.layer_inputs, layer=l),
            )
            if l == last:
                self.plasticity.append(StructuralPlasticity(self, params, context, target=target, input_jumps=False))
            else:
                self.plasticity.append(
                    HiddenLayerPlasticity(self, params, context, layer=l, target=target, input_jumps=l == 0)
                )

    def teardown_training(self) -> None:
        self.plasticity = []
        self._weights = [None] * len(self.layers)
        self._weight_grads = [None] * len(self.layers)
        self._step_by_hand = False

    def training_step(self, x: torch.Tensor, y: torch.Tensor) -> Optional[tuple[torch.Tensor, torch.Tensor]]:
        """The step by hand (engine.nets.rf_step.network_step) where every layer's W is the fused loops' exact
        formula and only this model's own parameters train; else None (autograd)."""
        return rf_step.network_step(self, x, y) if self._step_by_hand else None

    def after_backward(self, step: int, x: torch.Tensor, y: torch.Tensor) -> None:
        for l, plastic in enumerate(self.plasticity):
            w = self._weights[l]
            grad = w.grad if w is not None else self._weight_grads[l]
            if grad is not None:
                plastic.accumulate(grad)
        self._weights = [None] * len(self.layers)
        self._weight_grads = [None] * len(self.layers)

    def after_step(self, step: int) -> None:
        for layer in self.layers:
            layer.clamp_to_tuning_range()
        for plastic in self.plasticity:
            self.rewiring_events += plastic.maybe_rewire(step)

    # --- views --------------------------------------------------------------------------------------------------
    @torch.no_grad()
    def layer_snapshot(self, layer: int) -> dict:
        """Frequencies and attachments of one layer (numpy copies)."""
        chains = self.layers[layer]
        idx, coupling = chains.attachments()
        f_in, f_res = chains.set_point_freqs_ghz()
        return {
            "input_freqs_ghz": f_in.cpu().numpy().copy(),
            "resonator_freqs_ghz": f_res.cpu().numpy().copy(),
            "resonator_signs": chains.signs.cpu().numpy().copy(),
            "attached_input": idx.cpu().numpy().copy(),
            "attached_coupling": coupling.cpu().numpy().copy(),
            "resonator_bounds_ghz": chains.resonator_bounds_ghz(),
        }

    @torch.no_grad()
    def emitter_operating_point(self, layer: int) -> dict:
        """What turns layer ``layer``'s chain voltages into the powers its emitters send on (numpy copies):
        for a hidden layer, its STNOs' bias currents ``stno_bias_ua`` (H,) in µA and ``stno_gm`` (µA/mV); for
        every layer after the first, its own W ``weight`` (C, N) in V/µW, as an evaluation pass builds it (the
        layer's own chip; built in eval mode, so that no random draw of training is taken). The first layer's
        W is the snapshot's weight; the last layer has no emitters. See :func:`emitted_powers_uw`."""
        out: dict[str, object] = {}
        if layer > 0:
            chains = self.layers[layer]
            was_training = chains.training
            chains.eval()
            try:
                out["weight"] = chains.weight().detach().cpu().numpy().astype("float32", copy=True)
            finally:
                chains.train(was_training)
        if layer < len(self.hidden_bias):
            out["stno_bias_ua"] = self.bias_current_ua(layer).detach().cpu().numpy().copy()
            out["stno_gm"] = float(self.g_m(layer))
        return out

    @torch.no_grad()
    def snapshot_extras(self) -> dict:
        first = self.layer_snapshot(0)
        return {
            **first,
            "gain": float(self.gain),
            "layers": [{**first, **self.emitter_operating_point(0)}]
            + [{**self.layer_snapshot(l), **self.emitter_operating_point(l)} for l in range(1, self.n_layers)],
        }

    @torch.no_grad()
    def chain_response(self, freqs_ghz: torch.Tensor, layer: int = 0) -> torch.Tensor:
        """Each chain's voltage per µW of a probe tone at each frequency (C, M), for one layer."""
        return self.layers[layer].response(freqs_ghz.to(torch.float32))

    @torch.no_grad()
    def attachments(self, layer: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        return self.layers[layer].attachments()
