"""The RF spintronic perceptron: input oscillators -> C resonator chains -> read-out gain and bias.

Three variants share this module: ``rf`` (resonances trained, topology trained by structural plasticity),
``rf-input`` (also the input oscillators' frequencies) and ``rf-frozen`` (resonances trained by gradient
only, the topology never jumps: the ablation).
"""
from __future__ import annotations

import math
from typing import Optional

import torch
from torch import nn

from .chain_layer import RFChainLayer
from .config import RunConfig
from .model_base import PerceptronModel
from .physics import DeviceParams
from .plasticity import StructuralPlasticity

#: Initial read-out gain, in units of 1 / (K_SD * P_max): a resonator at its peak on a white pixel adds this
#: much to a class score.
INITIAL_GAIN = 0.3


class RFPerceptron(PerceptronModel):
    """Scores = gain * V + b, V = chain voltages of an :class:`RFChainLayer` driven by P = P_max * x."""

    is_rf = True

    def __init__(self, cfg: Optional[RunConfig], n_inputs: int, n_classes: int, *,
                 params: Optional[DeviceParams] = None, n_resonators: Optional[int] = None,
                 train_inputs: Optional[bool] = None, plastic: Optional[bool] = None) -> None:
        super().__init__(n_inputs, n_classes)
        params = params if params is not None else cfg.device
        k = n_resonators if n_resonators is not None else cfg.resonators_per_chain
        train_inputs = (cfg.model == "rf-input") if train_inputs is None else train_inputs
        plastic = (cfg.model != "rf-frozen") if plastic is None else plastic
        self.params = params
        self.n_resonators = k
        self.chains = RFChainLayer(n_inputs, n_classes, k, params, train_inputs=train_inputs)
        self.bias = nn.Parameter(torch.zeros(n_classes))
        #: log of the read-out gain in units of 1 / (K_SD * P_max); trained with the same learning rate as the
        #: frequencies (one Adam group: tuning showed no gain from separate read-out rates)
        self.log_gain = nn.Parameter(torch.tensor(math.log(INITIAL_GAIN)))
        self._unit = 1.0 / (params.k_sd * params.p_max_uw)  # gain unit, see INITIAL_GAIN
        self.plasticity = StructuralPlasticity(self, cfg.plasticity) if (plastic and cfg is not None) else None
        self._weight: Optional[torch.Tensor] = None

    # --- model --------------------------------------------------------------------------------------------
    @property
    def gain(self) -> torch.Tensor:
        """Read-out gain (scores per volt)."""
        return torch.exp(self.log_gain) * self._unit

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.chains.weight()
        if self.training and self.plasticity is not None and w.requires_grad:
            w.retain_grad()
            self._weight = w
        v = self.chains(self.params.p_max_uw * x, weight=w)
        return self.gain * v + self.bias

    def effective_weight(self) -> torch.Tensor:
        """W (C, N) in V/µW: the chain voltage per µW of input i."""
        return self.chains.weight()

    def synapse_count(self) -> int:
        return self.n_classes * self.n_resonators

    # --- training hooks ------------------------------------------------------------------------------------
    def attach_data(self, train_x: torch.Tensor, train_y: torch.Tensor) -> None:
        if self.plasticity is not None:
            self.plasticity.attach_data(train_x, train_y)

    def setup_training(self, total_steps, steps_per_epoch, optimizer, train_x) -> None:
        if self.plasticity is not None:
            self.plasticity.setup(total_steps, optimizer)

    def after_backward(self, step: int, x: torch.Tensor, y: torch.Tensor) -> None:
        if self.plasticity is not None and self._weight is not None and self._weight.grad is not None:
            self.plasticity.accumulate(self._weight.grad)
        self._weight = None

    def after_step(self, step: int, optimizer: torch.optim.Optimizer) -> None:
        self.chains.clamp_to_tuning_range()
        if self.plasticity is not None:
            self.rewiring_events += self.plasticity.maybe_rewire(step)

    # --- views -----------------------------------------------------------------------------------------------
    @torch.no_grad()
    def snapshot_extras(self) -> dict:
        idx, coupling = self.chains.attachments()
        return {
            "input_freqs_ghz": self.chains.input_freqs_ghz().cpu().numpy().copy(),
            "resonator_freqs_ghz": self.chains.resonator_freqs_ghz().cpu().numpy().copy(),
            "resonator_signs": self.chains.signs.cpu().numpy().copy(),
            "attached_input": idx.cpu().numpy().copy(),
            "attached_coupling": coupling.cpu().numpy().copy(),
            "gain": float(self.gain),
        }

    @torch.no_grad()
    def chain_response(self, freqs_ghz: torch.Tensor) -> torch.Tensor:
        """Each chain's voltage per µW of a probe tone at each frequency (C, M)."""
        return self.chains.response(freqs_ghz.to(torch.float32))

    @torch.no_grad()
    def attachments(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(attached input index (C, K), signed coupling (C, K) in V/µW)."""
        return self.chains.attachments()

    # --- rebuilding from saved state (exports) -------------------------------------------------------------
    @classmethod
    def from_state(cls, params: DeviceParams, input_comb, resonator_comb, bias, log_gain: float,
                   alpha_r=None, k_sd_r=None) -> "RFPerceptron":
        """An RF perceptron in eval mode with exactly this state (comb positions are what the engine trains;
        frequencies in GHz follow from them through the frequency plan)."""
        f32 = lambda t: torch.as_tensor(t, dtype=torch.float32)  # noqa: E731
        input_comb, resonator_comb = f32(input_comb), f32(resonator_comb)
        n_classes, k = resonator_comb.shape
        with torch.random.fork_rng(devices=[]):  # the throw-away initial layout must not consume the RNG
            model = cls(None, int(input_comb.shape[0]), int(n_classes), params=params, n_resonators=int(k),
                        train_inputs=False, plastic=False)
        with torch.no_grad():
            model.chains.input_comb.copy_(input_comb)
            model.chains.resonator_comb.copy_(resonator_comb)
            model.bias.copy_(f32(bias))
            model.log_gain.fill_(float(log_gain))
            if alpha_r is not None:
                model.chains.alpha_r = f32(alpha_r).clone()
            if k_sd_r is not None:
                model.chains.k_sd_r = f32(k_sd_r).clone()
        model.eval()
        return model
