"""The RF spintronic perceptron: input oscillators -> C resonator chains -> read-out gain and bias.

Three variants share this module: ``rf`` (resonances trained, topology trained by structural plasticity),
``rf-input`` (also the input oscillators' frequencies) and ``rf-frozen`` (resonances trained by gradient
only, the topology never jumps: the ablation).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn

from engine.core.enums import InitLayout, WeightBuild, set_mode
from engine.core.model_base import PerceptronModel, TrainingContext
from engine.layers.chain import RFChainLayer
from engine.nets import rf_step
from engine.physics import resonators as physics
from engine.physics.resonators import DeviceParams
from engine.plasticity.params import PlasticityParams
from engine.plasticity.rounds import StructuralPlasticity


@dataclass(frozen=True)
class RFParams:
    """Parameters of the RF models (rf, rf-input, rf-frozen) beyond the device physics and the plasticity."""

    init_layout: InitLayout = InitLayout.ALIGNED
    """Initial resonator layout: 'aligned' (the chains share K random sites) or 'random' (uniform per chain)."""
    aligned_jitter: float = 2.0
    """'aligned' layout: std of each resonator's offset from its shared site (comb units)."""
    initial_gain: float = 0.3
    """Initial read-out gain, in units of 1 / (K_SD * P_max): a resonator at its peak on an input of value 1
    adds this much to a class score."""
    weight_build: WeightBuild = WeightBuild.AUTO
    """How W is computed: 'exact' (every input-resonator pair), 'fft' (the comb expansion of
    engine.layers.fast_weight where inputs sit on their slots, else the log-frequency grid of
    engine.layers.grid_weight; refused only for a damping spread), 'auto' (the cheapest build that applies, by a
    cost model: the exact formula as the fused loops of engine.layers.fused_weight on CPU), 'fused' (those loops
    wherever they apply) or 'compiled' (the exact formula as torch.compile kernels,
    engine.layers.compiled_weight; tens of seconds to compile per layer shape, so for long runs). All agree to
    1e-5 of max|W|; the choice changes float rounding, not the physics."""
    hidden_lr_scale: float = 0.1
    """Multilayer networks: learning rate of the hidden STNOs' bias currents (units of I_th) and g_m (log),
    as a multiple of the frequencies' learning rate."""

    def __post_init__(self) -> None:
        problems = []
        if not set_mode(self, "init_layout", InitLayout):
            problems.append(
                f"model_params.init_layout must be one of {', '.join(InitLayout)} (got {self.init_layout!r})"
            )
        if self.aligned_jitter < 0:
            problems.append(f"model_params.aligned_jitter must be >= 0 (got {self.aligned_jitter})")
        if not set_mode(self, "weight_build", WeightBuild):
            problems.append(
                f"model_params.weight_build must be one of {', '.join(WeightBuild)} (got {self.weight_build!r})"
            )
        if not (self.initial_gain > 0 and math.isfinite(self.initial_gain)):
            problems.append(f"model_params.initial_gain must be a finite number > 0 (got {self.initial_gain})")
        if not (self.hidden_lr_scale > 0 and math.isfinite(self.hidden_lr_scale)):
            problems.append(f"model_params.hidden_lr_scale must be a finite number > 0 (got {self.hidden_lr_scale})")
        if problems:
            raise ValueError("; ".join(problems))


class RFPerceptron(PerceptronModel):
    """Scores = gain * V + b, V = chain voltages of an :class:`RFChainLayer` driven by P = P_max * x."""

    is_rf = True

    def __init__(
        self,
        n_inputs: int,
        n_classes: int,
        n_resonators: int,
        *,
        device: DeviceParams,
        params: Optional[RFParams] = None,
        plasticity: Optional[PlasticityParams] = None,
        train_inputs: bool = False,
        generator: Optional[torch.Generator] = None,
    ) -> None:
        super().__init__(n_inputs, n_classes, generator)
        rf = params if params is not None else RFParams()
        self.params = device
        self.rf_params = rf
        self.n_resonators = n_resonators
        self.chains = RFChainLayer(
            n_inputs,
            n_classes,
            n_resonators,
            device,
            train_inputs=train_inputs,
            generator=self.generator,
            init_layout=rf.init_layout,
            init_jitter=rf.aligned_jitter,
            weight_build=rf.weight_build,
        )
        self.bias = nn.Parameter(torch.zeros(n_classes))
        #: log of the read-out gain in units of 1 / (K_SD * P_max); trained with the same learning rate as the
        #: frequencies (one Adam group: tuning showed no gain from separate read-out rates)
        self.log_gain = nn.Parameter(torch.tensor(math.log(rf.initial_gain)))
        self._unit = 1.0 / (device.k_sd * device.p_max_uw)  # gain unit, see RFParams.initial_gain
        #: Plasticity settings (None: the topology is frozen); the machinery exists only while training.
        self.plasticity_params = plasticity
        self.plasticity: Optional[StructuralPlasticity] = None
        self._weight: Optional[torch.Tensor] = None
        self._weight_grad: Optional[torch.Tensor] = None  # dL/dW of the last pass, from the fused path
        self._step_by_hand = False  # whether training_step may compute steps by hand (set when training starts)

    # --- model --------------------------------------------------------------------------------------------
    @property
    def gain(self) -> torch.Tensor:
        """Read-out gain (scores per volt)."""
        return torch.exp(self.log_gain) * self._unit

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        power = physics.input_power(x, self.params)
        keep = self.training and self.plasticity is not None  # the rewiring rounds sum dL/dW
        v = self.chains.plain_voltages(power, self._keep_weight_grad if keep else None)
        if v is None:
            w = self.chains.weight()
            if keep and w.requires_grad:
                w.retain_grad()
                self._weight = w
            v = self.chains(power, weight=w)
        return self.gain * v + self.bias

    def _keep_weight_grad(self, grad: torch.Tensor) -> None:
        self._weight_grad = grad

    def effective_weight(self) -> torch.Tensor:
        """W (C, N) in V/µW: the chain voltage per µW of input i."""
        return self.chains.weight()

    def synapse_count(self) -> int:
        return self.n_classes * self.n_resonators

    # --- training hooks ------------------------------------------------------------------------------------
    def setup_training(self, context: TrainingContext) -> None:
        if self.plasticity_params is not None:
            self.plasticity = StructuralPlasticity(self, self.plasticity_params, context)
        own = (self.chains.resonator_comb, self.chains.input_comb, self.bias, self.log_gain)
        self._step_by_hand = rf_step.only_these_train(self, own)

    def training_step(self, x: torch.Tensor, y: torch.Tensor) -> Optional[tuple[torch.Tensor, torch.Tensor]]:
        """The step by hand (engine.nets.rf_step) in the plain case, when only this model's own parameters train;
        else None (autograd)."""
        return rf_step.training_step(self, x, y) if self._step_by_hand else None

    def teardown_training(self) -> None:
        self.plasticity = None
        self._step_by_hand = False
        self._weight = self._weight_grad = None
        self.chains._train_chip = None  # ('aware' regime) the last batch's chip is not kept

    def after_backward(self, step: int, x: torch.Tensor, y: torch.Tensor) -> None:
        grad = self._weight.grad if self._weight is not None else self._weight_grad
        if self.plasticity is not None and grad is not None:
            self.plasticity.accumulate(grad)
        self._weight = self._weight_grad = None

    def after_step(self, step: int) -> None:
        self.chains.clamp_to_tuning_range()
        if self.plasticity is not None:
            self.rewiring_events += self.plasticity.maybe_rewire(step)

    # --- views -----------------------------------------------------------------------------------------------
    @torch.no_grad()
    def snapshot_extras(self) -> dict:
        idx, coupling = self.chains.attachments()
        f_in, f_res = self.chains.set_point_freqs_ghz()
        return {
            "input_freqs_ghz": f_in.cpu().numpy().copy(),
            "resonator_freqs_ghz": f_res.cpu().numpy().copy(),
            "resonator_signs": self.chains.signs.cpu().numpy().copy(),
            "attached_input": idx.cpu().numpy().copy(),
            "attached_coupling": coupling.cpu().numpy().copy(),
            "resonator_bounds_ghz": self.chains.resonator_bounds_ghz(),
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
    def from_state(
        cls,
        params: DeviceParams,
        input_comb,
        resonator_comb,
        bias,
        log_gain: float,
        alpha_r=None,
        k_sd_r=None,
        rf_params: Optional[RFParams] = None,
    ) -> "RFPerceptron":
        """An RF perceptron in eval mode with exactly this state (comb positions are what the engine trains;
        frequencies in GHz follow from them through the frequency plan)."""
        f32 = lambda t: torch.as_tensor(t, dtype=torch.float32)  # noqa: E731 - a one-line local helper reads best inline
        input_comb, resonator_comb = f32(input_comb), f32(resonator_comb)
        n_classes, k = resonator_comb.shape
        # the throw-away initial layout comes from a private generator: no global random state is consumed
        model = cls(
            int(input_comb.shape[0]), int(n_classes), int(k), device=params, params=rf_params, train_inputs=False
        )
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
