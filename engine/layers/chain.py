"""An RF chain layer: C chains of K MTJ resonators in series, driven by N input oscillators.

Trainable parameters are positions on the input comb (see engine.physics.resonators): ``resonator_comb`` (C, K) and,
when input-frequency training is on, ``input_comb`` (N,). One comb unit is one input spacing, so learning
rates are in spacings per step whatever the band. The layer's output is the chain voltage V (B, C) in the
normalised units of the published simulator; the physics itself is evaluated in engine.physics.resonators.
"""

from __future__ import annotations

import math
from typing import Callable, Optional

import torch
from torch import nn

from engine.core.enums import FrequencyPlan, HardwareRegime, InitLayout, WeightBuild, values
from engine.layers import compiled_weight, fused_weight, jitter_readout, layouts
from engine.layers.exact_weight import ExactWeight
from engine.layers.fast_weight import ShiftInvariantWeight, ShiftKernel
from engine.layers.grid_weight import EXACT_NS, FUSED_NS, GridBuild, log_frequency
from engine.layers.layouts import initial_resonator_comb, tiled_resonator_comb  # noqa: F401 - their old home
from engine.physics import resonators as physics
from engine.physics.resonators import NOMINAL_CHIP, Chip, DeviceParams

#: How W is built: 'exact' (every input-resonator pair, C·N·K work), 'fft' (the shift-invariant expansion of
#: engine.layers.fast_weight for inputs on their comb slots, O(C·N log N), else the log-frequency grid of
#: engine.layers.grid_weight for devices anywhere), 'auto' (fft where it applies and pays off) or
#: 'compiled' (the exact formula as torch.compile kernels, engine.layers.compiled_weight: opt-in, for long runs).
WEIGHT_BUILDS = values(WeightBuild)
#: 'auto' uses the comb FFT build from this many resonators per chain (measured crossover on full MNIST, 1
#: thread); the grid build where its cost model (engine.layers.grid_weight) puts it below the exact build.
FFT_MIN_RESONATORS = 64
#: The same against the exact formula's fused loops (engine.layers.fused_weight), where they apply.
FFT_MIN_RESONATORS_FUSED = 300
#: The builds that evaluate the exact formula pair by pair (never an FFT build).
EXACT_FORMULA_BUILDS = (WeightBuild.EXACT, WeightBuild.COMPILED, WeightBuild.FUSED)


class RFChainLayer(nn.Module):
    """Series chains of resonators: V_j = sum_i P_i W_ji with W_ji = K_SD sum_k s_k L(x_ijk)."""

    #: :meth:`plain_voltages`' records, with their keys: whether the exact formula is the build here, and s_k K_SD
    _exact_choice: Optional[tuple[tuple, bool]]
    _amplitudes: Optional[tuple[tuple, torch.Tensor]]
    # Buffers made by register_buffer in __init__, declared so the type checker sees tensors, not Module attributes.
    signs: torch.Tensor
    res_lo: torch.Tensor
    res_hi: torch.Tensor
    in_lo: torch.Tensor
    in_hi: torch.Tensor

    def __init__(
        self,
        n_inputs: int,
        n_chains: int,
        n_resonators: int,
        params: DeviceParams,
        train_inputs: bool = False,
        resonator_comb: Optional[torch.Tensor] = None,
        input_comb: Optional[torch.Tensor] = None,
        generator: Optional[torch.Generator] = None,
        init_layout: InitLayout = InitLayout.ALIGNED,
        init_jitter: float = 2.0,
        weight_build: WeightBuild = WeightBuild.AUTO,
    ) -> None:
        super().__init__()
        if weight_build not in WEIGHT_BUILDS:
            raise ValueError(f"weight_build must be one of {', '.join(WEIGHT_BUILDS)} (got {weight_build!r})")
        weight_build = WeightBuild(weight_build)
        self.params = params
        if weight_build == WeightBuild.COMPILED and not compiled_weight.available():
            raise ValueError(
                "weight_build 'compiled' needs torch.compile with a C++ compiler (and ATEN_CPU_CAPABILITY "
                "unset); use 'exact' or 'auto'"
            )
        if weight_build == WeightBuild.FUSED and not fused_weight.available():
            raise ValueError("weight_build 'fused' needs the numba package, which does not import here; use 'auto'")
        self.weight_build: WeightBuild = weight_build
        self._shift_kernel: Optional[ShiftKernel] = None
        self._grid_build: Optional[GridBuild] = None
        #: the input frequencies of :meth:`input_freqs_ghz`, with the positions' (version, storage, ...) key
        self._input_freqs: Optional[tuple[tuple, torch.Tensor]] = None
        self._exact_choice = self._amplitudes = None  # :meth:`plain_voltages`' records (declared above)
        #: Source of the layer's randomness: initial layout, fabrication spreads and read-out noise.
        self.generator = generator if generator is not None else torch.Generator().manual_seed(0)
        self.n_inputs, self.n_chains, self.n_resonators = n_inputs, n_chains, n_resonators
        self.comb_range = physics.tuning_range_comb(params, n_inputs)
        #: Training regime (a HardwareRegime), set by engine.nets.hardware.set_regime; decides which chip
        #: and noise a training pass sees (an evaluation pass always sees this layer's own chip and noise).
        self.regime = HardwareRegime.IN_SITU
        self._train_chip: Optional[Chip] = None  # the 'aware' regime's chip of the current batch
        limited, shape = params.tuning_range is not None, (n_inputs, n_chains, n_resonators)
        if resonator_comb is None:
            resonator_comb = layouts.fabricated(*shape, self.generator, limited, init_layout, init_jitter)
        input_comb = torch.arange(n_inputs, dtype=torch.float32) if input_comb is None else input_comb
        self.resonator_comb = nn.Parameter(resonator_comb.to(torch.float32).clone())
        self.input_comb = nn.Parameter(input_comb.to(torch.float32).clone(), requires_grad=train_inputs)
        self.register_buffer("signs", physics.chain_signs(n_resonators, params.parity))
        # Device-to-device spreads, frozen at fabrication (None when the device is ideal: faster).
        self.alpha_r: Optional[torch.Tensor]
        self.k_sd_r: Optional[torch.Tensor]
        for name, base, spread in (
            ("alpha_r", params.alpha, params.alpha_dtod),
            ("k_sd_r", params.k_sd, params.k_sd_dtod),
        ):
            value = None
            if spread > 0:
                noise = torch.randn(n_chains, n_resonators, generator=self.generator)
                value = (base * (1.0 + spread * noise)).clamp_min(0.05 * base)
            self.register_buffer(name, value)
        # Fabrication offsets of the true frequencies (standard-normal draws, see physics.spread_factor), drawn
        # once per chip; None when device.freq_spread is 0.
        self.freq_eps_r: Optional[torch.Tensor]
        self.freq_eps_in: Optional[torch.Tensor]
        eps_r = eps_in = None
        if params.freq_spread > 0:
            eps_r = torch.randn(n_chains, n_resonators, generator=self.generator)
            eps_in = torch.randn(n_inputs, generator=self.generator)
        self.register_buffer("freq_eps_r", eps_r)
        self.register_buffer("freq_eps_in", eps_in)
        # Fabricated comb positions (tuning-range centres) and the bounds they give; None when unlimited.
        self.resonator_home: Optional[torch.Tensor]
        self.input_home: Optional[torch.Tensor]
        self._set_homes()

    # --- hardware: tuning ranges, chips, set-points -------------------------------------------------------
    def _set_homes(self, keep: bool = False) -> None:
        """(Re)compute the tuning bounds from the fabricated positions: the resonators' current positions
        (or, with ``keep``, the fabricated ones already recorded) and the inputs' nominal ones. Non-persistent
        buffers, so state dicts are unchanged; None when the range is unlimited."""
        limited = self.params.tuning_range is not None
        res_home = in_home = None
        if limited:
            old = self._buffers.get("resonator_home")
            res_home = old if keep and old is not None else self.resonator_comb.detach().clone()
            in_home = torch.arange(self.n_inputs, dtype=torch.float32, device=res_home.device)
        self.register_buffer("resonator_home", res_home, persistent=False)
        self.register_buffer("input_home", in_home, persistent=False)
        for prefix, home in (("res", res_home), ("in", in_home)):
            lo, hi = (
                physics.device_tuning_bounds(home, self.params, self.n_inputs) if home is not None else (None, None)
            )
            self.register_buffer(f"{prefix}_lo", lo, persistent=False)
            self.register_buffer(f"{prefix}_hi", hi, persistent=False)

    def set_fabricated(self) -> None:
        """Declare the resonators' current comb positions their fabricated ones (the centres of their tuning
        ranges), e.g. after a caller replaced the initial layout."""
        self._set_homes()

    def _bounds(self, which: str):
        """(lo, hi) comb bounds of the resonators ('res', (C, K) tensors) or inputs ('in', (N,)); floats when
        the range is unlimited."""
        if self.resonator_home is None:
            return self.comb_range
        return getattr(self, f"{which}_lo"), getattr(self, f"{which}_hi")

    @torch.no_grad()
    def resonator_bounds_ghz(self):
        """Each resonator's reachable band for snapshots: a (C, K, 2) float32 numpy copy of the (lowest,
        highest) frequency (GHz) of its tuning range; None when the range is unlimited (every resonator then
        reaches the band plus the tuning margin)."""
        if self.resonator_home is None:
            return None
        bounds = torch.stack((self.comb_to_ghz(self.res_lo), self.comb_to_ghz(self.res_hi)), dim=-1)
        return bounds.to(torch.float32).cpu().numpy().copy()

    def draw_chip(self, generator: Optional[torch.Generator] = None) -> Chip:
        """A fresh chip: alpha (C, K), k_sd (C, K), frequency draws of the resonators (C, K) and inputs
        (N,), each None when its spread is 0; drawn from ``generator`` (default: the layer's) in that order."""
        g = generator if generator is not None else self.generator
        p = self.params
        c, k, n = self.n_chains, self.n_resonators, self.n_inputs
        dev = self.resonator_comb.device
        out = []
        for base, spread in ((p.alpha, p.alpha_dtod), (p.k_sd, p.k_sd_dtod)):
            value = None
            if spread > 0:
                value = (base * (1.0 + spread * torch.randn(c, k, generator=g))).clamp_min(0.05 * base).to(dev)
            out.append(value)
        if p.freq_spread > 0:
            out += [torch.randn(c, k, generator=g).to(dev), torch.randn(n, generator=g).to(dev)]
        else:
            out += [None, None]
        return Chip(*out)

    @property
    def own_chip(self) -> Chip:
        """This layer's own chip: its frozen spreads (alpha_r, k_sd_r, freq_eps_r, freq_eps_in buffers)."""
        return Chip(self.alpha_r, self.k_sd_r, self.freq_eps_r, self.freq_eps_in)

    def set_chip(self, chip: Chip) -> None:
        """Make ``chip`` this layer's own (its frozen spreads), e.g. to restore one saved from :attr:`own_chip`."""
        self.alpha_r, self.k_sd_r = chip.alpha, chip.k_sd
        self.freq_eps_r, self.freq_eps_in = chip.freq_eps_r, chip.freq_eps_in
        self._shift_kernel = None

    def fabricate(self, generator: Optional[torch.Generator] = None) -> None:
        """Replace this layer's chip (its frozen spreads) by a fresh draw (robustness studies)."""
        self.set_chip(self.draw_chip(generator))

    def set_device(self, params: DeviceParams, generator: Optional[torch.Generator] = None) -> None:
        """Use other device parameters (same band, plan and parity) and draw a chip for them."""
        if (params.f_min_ghz, params.f_max_ghz, params.plan, params.parity, params.tuning_margin) != (
            self.params.f_min_ghz,
            self.params.f_max_ghz,
            self.params.plan,
            self.params.parity,
            self.params.tuning_margin,
        ):
            raise ValueError("set_device keeps the band, plan, parity and tuning margin of the layer")
        if params.tuning_range != self.params.tuning_range:
            raise ValueError("set_device keeps the tuning range the layer was fabricated with")
        self.params = params
        self._set_homes(keep=True)
        self.fabricate(generator)

    def _chip(self) -> Chip:
        """The chip a pass sees: none (nominal) for an 'ideal' training pass, a fresh one per batch for an
        'aware' training pass, otherwise this layer's own (:attr:`own_chip`)."""
        if self.training and self.regime == HardwareRegime.IDEAL:
            return NOMINAL_CHIP
        if self.training and self.regime == HardwareRegime.AWARE:
            if self._train_chip is None:
                self._train_chip = self.draw_chip()
            return self._train_chip
        return self.own_chip

    def _noisy(self) -> bool:
        """Whether read-out noise acts in this pass (not in an 'ideal' training pass)."""
        return not (self.training and self.regime == HardwareRegime.IDEAL)

    def _jitter_now(self) -> bool:
        """Frequency jitter drawn once per weight build: in differentiable training passes (evaluation passes
        draw it per sample, see :meth:`forward`)."""
        return self.params.freq_jitter_lw > 0 and self.training and torch.is_grad_enabled() and self._noisy()

    def _set_point_freqs(self, u: torch.Tensor, eps: Optional[torch.Tensor], which: str, tuned: bool) -> torch.Tensor:
        """True frequencies (GHz) of devices asked to sit at comb positions u: trimmed for their fabrication
        offset when calibrated, quantised (straight-through) when tuned, then moved by the offset."""
        p = self.params
        f = self.comb_to_ghz(u)
        if not tuned:
            return f if eps is None else f * physics.spread_factor(eps, p)
        lo, hi = self._bounds(which)
        u_cmd = u
        if eps is not None and p.calibrated:  # the measured offset is trimmed by the set-point
            u_cmd = physics.ghz_to_comb(f / physics.spread_factor(eps, p), p, self.n_inputs)
        if p.tuning_bits is not None:
            q = physics.quantise_comb(u_cmd.detach(), lo, hi, p.tuning_bits)
            if which == "in" and not (eps is not None and p.calibrated):
                # an input oscillator left at its fabricated frequency needs no set-point: only moved ones
                # pass through the DAC (the same rule in training and in a network read from a file)
                q = torch.where(u.detach() == self._input_nominal(), u.detach(), q)
            u_cmd = physics.straight_through(u_cmd, q)
        f_set = f if u_cmd is u else self.comb_to_ghz(u_cmd)
        return f_set if eps is None else f_set * physics.spread_factor(eps, p)

    def device_freqs(self, chip: Optional[Chip] = None) -> tuple[torch.Tensor, torch.Tensor]:
        """True frequencies (GHz) of the inputs (N,) and resonators (C, K) in this pass (no jitter): the
        set-points (comb positions) through the tuning resolution and the chip's fabrication offsets."""
        if not self.params.tuned_hardware:
            return self.input_freqs_ghz(), self.resonator_freqs_ghz()
        chip = self._chip() if chip is None else chip
        eps_r, eps_in = chip.freq_eps_r, chip.freq_eps_in
        tuned_in = (eps_in is not None and self.params.calibrated) or (
            self.params.tuning_bits is not None and not self._inputs_nominal_all()
        )
        f_in = self._set_point_freqs(self.input_comb, eps_in, "in", tuned_in)
        f_res = self._set_point_freqs(self.resonator_comb, eps_r, "res", True)
        return f_in, f_res

    @torch.no_grad()
    def set_point_freqs_ghz(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The frequencies (GHz) the inputs (N,) and resonators (C, K) are set to: their comb positions on
        the tuning levels when ``tuning_bits`` is set (what the network computes with, before any chip's
        offsets), else the comb positions themselves. For display and snapshots."""
        return self.device_freqs(NOMINAL_CHIP)

    def _input_nominal(self) -> torch.Tensor:
        return torch.arange(self.n_inputs, dtype=self.input_comb.dtype, device=self.input_comb.device)

    def _inputs_nominal_all(self) -> bool:
        """Whether every input oscillator sits at its fabricated (nominal) comb position."""
        return torch.equal(self.input_comb.detach(), self._input_nominal())

    def _perturbed(self, chip: Chip) -> bool:
        """Whether devices sit off their (quantised) comb positions in this pass."""
        return chip.freq_eps_r is not None or chip.freq_eps_in is not None or self._jitter_now()

    # --- frequencies ------------------------------------------------------------------------------------
    def input_freqs_ghz(self) -> torch.Tensor:
        """The input oscillators' frequencies (GHz) at their comb positions; kept from pass to pass while the
        positions are not trained (a training step of rf builds W at every batch)."""
        u = self.input_comb
        if u.requires_grad:
            return physics.comb_to_ghz(u, self.params, self.n_inputs)
        key = (u._version, u.data_ptr(), u.device, id(self.params))
        if self._input_freqs is None or self._input_freqs[0] != key:
            self._input_freqs = (key, physics.comb_to_ghz(u, self.params, self.n_inputs))
        return self._input_freqs[1]

    def resonator_freqs_ghz(self) -> torch.Tensor:
        return physics.comb_to_ghz(self.resonator_comb, self.params, self.n_inputs)

    def comb_to_ghz(self, u: torch.Tensor) -> torch.Tensor:
        return physics.comb_to_ghz(u, self.params, self.n_inputs)

    # --- couplings --------------------------------------------------------------------------------------
    def coupling(self, f_in: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Per-resonator signed couplings (C, K, N') to inputs at f_in (default: the input oscillators)."""
        chip = self._chip()
        f_dev, f_res = self.device_freqs(chip)
        f_in = f_dev if f_in is None else f_in
        if self._fused_without_gradients(f_in, f_res):  # one pass instead of the physics functions' eight
            k_sd = chip.k_sd if chip.k_sd is not None else self.params.k_sd
            alpha = chip.alpha if chip.alpha is not None else self.params.alpha
            return fused_weight.couplings(f_in, f_res, alpha, self.signs * k_sd, self.params.phi)
        return physics.coupling_tensor(f_in, f_res, self.params, chip.alpha, chip.k_sd, self.signs)

    def _fused_without_gradients(self, *tensors: torch.Tensor) -> bool:
        """Whether a gradient-free computation on these tensors may use the fused loops
        (engine.layers.fused_weight): the build allows them, they apply, and no gradient is asked of them."""
        return (
            self.weight_build not in (WeightBuild.EXACT, WeightBuild.COMPILED)
            and not (torch.is_grad_enabled() and any(t.requires_grad for t in tensors))
            and fused_weight.applies(*tensors)
        )

    def _inputs_nominal(self) -> bool:
        """Whether the input oscillators sit, untrained, at their nominal comb positions 0..N-1."""
        return not self.input_comb.requires_grad and self._inputs_nominal_all()

    def fast_build(self, chip: Optional[Chip] = None) -> Optional[ShiftKernel]:
        """The comb FFT build's kernel when it applies to this layer now (see engine.layers.fast_weight), else
        None: inputs at their nominal comb positions, a geometric plan, one damping, no offsets or jitter, and
        (for 'auto') K large. Where it does not apply, :meth:`grid_build` may."""
        if self.weight_build in EXACT_FORMULA_BUILDS:
            return None
        chip = self.own_chip if chip is None else chip
        if (
            chip.alpha is not None
            or self._perturbed(chip)
            or self.params.plan != FrequencyPlan.GEOMETRIC
            or self.input_comb.requires_grad
            or (self.weight_build == WeightBuild.AUTO and self.n_resonators < self._fft_min_resonators())
            or not self._inputs_nominal()
        ):
            return None
        if self._shift_kernel is None:
            self._shift_kernel = ShiftKernel(self.params, self.n_inputs, self.comb_range)
        return self._shift_kernel if self._shift_kernel.available else None

    def grid_build(self, chip: Optional[Chip] = None) -> Optional[GridBuild]:
        """The log-frequency grid build (engine.layers.grid_weight: devices anywhere, either plan) where the comb
        build does not apply: one damping for every resonator and, for 'auto', a cost below the exact build's
        by its cost model; else None ('fft' then raises, saying why)."""
        if self.weight_build in EXACT_FORMULA_BUILDS:
            return None
        chip = self.own_chip if chip is None else chip
        why = None
        if chip.alpha is not None:
            why = "a damping spread makes the coupling depend on each resonator"
        elif not self._grid().available:
            why = "the damping is too small for a log-frequency grid over the band"
        elif self.weight_build == WeightBuild.AUTO and not self._grid().cheaper_than_exact(
            self.n_chains, self.n_inputs, self.n_resonators, self._exact_ns()
        ):
            return None
        if why is not None:
            if self.weight_build == WeightBuild.FFT:
                raise ValueError(f"weight_build 'fft' cannot be used here: {why}")
            return None
        return self._grid_build

    def _exact_ns(self) -> float:
        """The cost model's time per chain, input and resonator of the exact formula here: the fused loops' on
        the CPU when numba imports, else the eager build's."""
        return FUSED_NS if self.resonator_comb.device.type == "cpu" and fused_weight.available() else EXACT_NS

    def _fft_min_resonators(self) -> int:
        """Resonators per chain from which 'auto' prefers the comb FFT build to the exact formula here."""
        return FFT_MIN_RESONATORS_FUSED if self._exact_ns() == FUSED_NS else FFT_MIN_RESONATORS

    def _grid(self) -> GridBuild:
        """This layer's grid build (made once for its device parameters)."""
        if self._grid_build is None or not self._grid_build.matches(self.params):
            self._grid_build = GridBuild(self.params, self.n_inputs, self.comb_range)
        return self._grid_build

    def _log_freqs(self, f_in: torch.Tensor, f_res: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """ln f (float64) of the inputs and resonators at frequencies f_in, f_res in this pass: from the comb
        positions when the devices sit on them (float32 frequencies are too coarse for grid coordinates)."""
        if self.params.tuned_hardware or self._jitter_now():  # the devices' true frequencies
            return torch.log(f_in.double()), torch.log(f_res.double())
        return (
            log_frequency(self.input_comb, self.params, self.n_inputs),
            log_frequency(self.resonator_comb, self.params, self.n_inputs),
        )

    def weight(self) -> torch.Tensor:
        """Effective weight matrix W (C, N) in V/µW (fused physics.effective_weight, see
        engine.layers.exact_weight, or an FFT build where it applies: engine.layers.fast_weight for inputs on
        their slots, else engine.layers.grid_weight)."""
        chip = self._chip()
        alpha_c, k_sd_c = chip.alpha, chip.k_sd
        kernel = self.fast_build(chip)
        if kernel is not None:
            k_sd = k_sd_c if k_sd_c is not None else self.params.k_sd
            amplitude = (self.signs * k_sd).expand(self.n_chains, self.n_resonators).contiguous()
            u: torch.Tensor = self.resonator_comb
            if self.params.tuning_bits is not None:  # set-points on their levels (straight-through)
                lo, hi = self._bounds("res")
                u = physics.straight_through(u, physics.quantise_comb(u.detach(), lo, hi, self.params.tuning_bits))
            return ShiftInvariantWeight.apply(u, amplitude, kernel)
        f_in, f_res, amplitude = self._pass_devices(chip)
        grid = self.grid_build(chip)
        if grid is not None:
            return grid.weight(*self._log_freqs(f_in, f_res), amplitude)
        if self.weight_build in (WeightBuild.AUTO, WeightBuild.FUSED) and fused_weight.applies(f_in, f_res):
            alpha_f = alpha_c if alpha_c is not None else self.params.alpha
            return fused_weight.FusedWeight.apply(f_in, f_res, alpha_f, amplitude, self.params.phi)
        alpha = alpha_c if alpha_c is not None else torch.full_like(self.resonator_comb, self.params.alpha)
        if self.weight_build == WeightBuild.COMPILED:
            return compiled_weight.CompiledChainWeight.apply(
                f_in, f_res, alpha, amplitude.contiguous(), self.params.phi
            )
        return ExactWeight.apply(f_in, f_res, alpha, amplitude.contiguous(), self.params.phi, torch.is_grad_enabled())

    def _pass_devices(self, chip: Chip) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(input (N,) and resonance (C, K) frequencies, amplitudes s_k K_SD (C, K)) of the devices in this pass
        on ``chip``: the set-points through the hardware model and, in a training pass, one draw of
        cycle-to-cycle jitter for the whole batch."""
        k_sd = chip.k_sd if chip.k_sd is not None else self.params.k_sd
        amplitude = self.signs * k_sd if chip.k_sd is not None else (self.signs * k_sd).expand_as(self.resonator_comb)
        f_in, f_res = self.device_freqs(chip)
        if self._jitter_now():
            g = self.generator
            xi_in = torch.randn(self.n_inputs, generator=g).to(f_in.device)
            xi_r = torch.randn(self.n_chains, self.n_resonators, generator=g).to(f_res.device)
            f_in = physics.jittered(f_in, xi_in, self.params.alpha, self.params)
            f_res = physics.jittered(f_res, xi_r, self.params.alpha if chip.alpha is None else chip.alpha, self.params)
        return f_in, f_res, amplitude

    def fused_exact_pass(self, power_uw: torch.Tensor) -> bool:
        """Whether this pass's W is the fused loops' exact formula (:meth:`_fused_pass`, no FFT build); draws
        nothing but the 'aware' regime's chip of the batch, which :meth:`weight` draws first too."""
        if not self._fused_pass(power_uw):
            return False
        chip = self._chip()
        return self.fast_build(chip) is None and self.grid_build(chip) is None

    def exact_inputs(self) -> tuple[torch.Tensor, torch.Tensor, "torch.Tensor | float", torch.Tensor]:
        """W's inputs where :meth:`fused_exact_pass` holds: input (N,) and resonance (C, K) frequencies (with
        their autograd history), dampings (C, K or a float), amplitudes (C, K); jitter drawn as :meth:`weight`."""
        f_in, f_res, amplitude = self._pass_devices(chip := self._chip())
        return f_in, f_res, (chip.alpha if chip.alpha is not None else self.params.alpha), amplitude

    def response(self, freqs_ghz: torch.Tensor) -> torch.Tensor:
        """Chain voltage per µW of a probe tone at each frequency (C, M): the chain's spectral response (by the
        grid build of engine.layers.grid_weight where it applies and its cost model puts it below the sum over
        every resonator-probe pair)."""
        chip = self._chip()
        m = freqs_ghz.numel()
        if (
            self.weight_build in (WeightBuild.EXACT, WeightBuild.COMPILED)
            or chip.alpha is not None
            or not self._grid().available
            or not self._grid().cheaper_than_exact(self.n_chains, m, self.n_resonators)
        ):
            return self.coupling(freqs_ghz).sum(dim=1)
        f_in, f_res = self.device_freqs(chip)
        k_sd = chip.k_sd if chip.k_sd is not None else self.params.k_sd
        amplitude = (self.signs * k_sd).expand(self.n_chains, self.n_resonators)
        return self._grid().weight(torch.log(freqs_ghz.double()), self._log_freqs(f_in, f_res)[1], amplitude)

    def attachments(self) -> tuple[torch.Tensor, torch.Tensor]:
        """For each resonator, the input it couples to most strongly (C, K) and that signed coupling (C, K).

        With the inputs at their nominal comb positions and a geometric plan, only the inputs within a few
        linewidths of each resonance are compared: beyond |x| = 3 the lineshape is below its peak, so the
        strongest coupling lies inside that window (C·K·window work instead of C·K·N)."""
        if self.params.tuned_hardware:  # the devices' true frequencies, compared over every input
            c = self.coupling()
            idx = c.abs().argmax(dim=-1)
            return idx, c.gather(-1, idx.unsqueeze(-1)).squeeze(-1)
        window = self._attachment_window()
        if window is None:
            c = self.coupling()
            idx = c.abs().argmax(dim=-1)
            return idx, c.gather(-1, idx.unsqueeze(-1)).squeeze(-1)
        near = torch.floor(self.resonator_comb.detach() + 0.5).long()
        cand = (near.unsqueeze(-1) + torch.arange(-window, window + 1, device=near.device)).clamp_(
            0, self.n_inputs - 1
        )  # (C, K, window)
        alpha = self.params.alpha if self.alpha_r is None else self.alpha_r.unsqueeze(-1)
        k_sd = self.params.k_sd if self.k_sd_r is None else self.k_sd_r.unsqueeze(-1)
        f_in = self.input_freqs_ghz().detach()[cand]
        x = physics.detuning(f_in, self.resonator_freqs_ghz().detach().unsqueeze(-1), alpha)
        c = self.signs.view(1, -1, 1) * k_sd * physics.lineshape(x, self.params.phi)
        best = c.abs().argmax(dim=-1, keepdim=True)
        return cand.gather(-1, best).squeeze(-1), c.gather(-1, best).squeeze(-1)

    def _attachment_window(self) -> Optional[int]:
        """Half-width (inputs) of the window that holds each resonator's strongest coupling, or None when the
        inputs are not at their nominal positions or the window would not be much smaller than N."""
        if self.params.plan != FrequencyPlan.GEOMETRIC or not self._inputs_nominal():
            return None
        alpha = self.params.alpha if self.alpha_r is None else float(self.alpha_r.max())
        ratio = physics.comb_ratio(self.params, self.n_inputs)
        window = int(math.ceil(math.log1p(3.0 * alpha) / math.log(ratio))) + 2
        return window if 2 * window + 1 < self.n_inputs // 2 else None

    @torch.no_grad()
    def clamp_to_tuning_range(self) -> None:
        """Keep every set-point within its device's reach (after each optimizer step). In the 'aware' regime
        this also ends the batch's chip: the next pass draws a new one."""
        if self.resonator_home is None:
            lo, hi = self.comb_range
            self.resonator_comb.clamp_(lo, hi)
            if self.input_comb.requires_grad:
                self.input_comb.clamp_(lo, hi)
        else:
            torch.maximum(torch.minimum(self.resonator_comb, self.res_hi), self.res_lo, out=self.resonator_comb)
            if self.input_comb.requires_grad:
                torch.maximum(torch.minimum(self.input_comb, self.in_hi), self.in_lo, out=self.input_comb)
        self._train_chip = None

    def plain_voltages(
        self, power_uw: torch.Tensor, sink: Optional[Callable[[torch.Tensor], None]] = None
    ) -> Optional[torch.Tensor]:
        """V (B, C) by one fused node (fused_weight.FusedVoltages) in the plain case (:meth:`plain_inputs`), else
        None. ``sink`` receives dL/dW of the pass."""
        plain = self.plain_inputs(power_uw)
        if plain is None:
            return None
        p = self.params
        return fused_weight.FusedVoltages.apply(
            power_uw, self.input_comb, self.resonator_comb, plain[0], plain[1], p.alpha, p.phi, p, sink
        )

    def plain_inputs(self, power_uw: torch.Tensor) -> Optional[tuple[Optional[torch.Tensor], torch.Tensor]]:
        """In the plain case, (the inputs' frequencies, or None when their positions are trained, and the
        amplitudes s_k K_SD (C, K)); else None. Plain: a fused pass (:meth:`_fused_pass`) with the devices at their
        comb positions (no offsets, spreads, quantisation or jitter)."""
        p = self.params
        if not self._fused_pass(power_uw) or p.tuned_hardware or p.freq_jitter_lw > 0:
            return None
        chip = self._chip()
        if any(v is not None for v in (chip.alpha, chip.k_sd, chip.freq_eps_r, chip.freq_eps_in)):
            return None
        u = self.input_comb
        trained = u.requires_grad
        key = (id(p), p, trained, None if trained else (u._version, u.data_ptr()))
        if self._exact_choice is None or self._exact_choice[0] != key:  # which build 'auto' takes depends on these
            self._exact_choice = (key, self.fast_build(chip) is None and self.grid_build(chip) is None)
        if not self._exact_choice[1]:
            return None
        return (None if trained else self.input_freqs_ghz()), self._amplitude()

    def _fused_pass(self, power_uw: torch.Tensor) -> bool:
        """Whether this pass's voltages may be P W^T with W from the fused loops: the build allows them, no noise
        acts on the read-out and the tensors suit them."""
        p = self.params
        return (
            self.weight_build in (WeightBuild.AUTO, WeightBuild.FUSED)
            and power_uw.dim() == 2
            and not (self._noisy() and (p.power_noise > 0 or p.readout_noise_v > 0))
            and fused_weight.applies(self.resonator_comb, power_uw)
        )

    def _amplitude(self) -> torch.Tensor:
        """s_k K_SD (C, K), contiguous, for the nominal K_SD; kept while the signs and parameters stay."""
        key = (self.signs._version, self.signs.data_ptr(), self.params.k_sd)
        if self._amplitudes is None or self._amplitudes[0] != key:
            value = (self.signs * self.params.k_sd).expand(self.n_chains, self.n_resonators).contiguous()
            self._amplitudes = (key, value)
        return self._amplitudes[1]

    def forward(self, power_uw: torch.Tensor, weight: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Chain voltages V (B, C) for input powers (B, N) in µW."""
        if weight is None:
            v = self.plain_voltages(power_uw)
            if v is not None:
                return v
        noisy = self._noisy()
        if noisy and self.params.power_noise > 0:  # each input power, at every read-out
            xi = torch.randn(power_uw.shape, dtype=power_uw.dtype, generator=self.generator).to(power_uw.device)
            power_uw = physics.noisy_power(power_uw, xi, self.params)
        if noisy and self.params.freq_jitter_lw > 0 and not self._jitter_now():
            v = jitter_readout.jittered_voltages(self, power_uw)  # evaluation: each sample read out with its own jitter
        else:
            w = self.weight() if weight is None else weight
            v = fused_weight.chain_product(w, power_uw)
        if noisy and self.params.readout_noise_v > 0:  # thermal / read-out noise, at every read-out
            noise = torch.randn(v.shape, dtype=v.dtype, generator=self.generator).to(v.device)
            v = v + self.params.readout_noise_v * noise
        return v
