"""An RF chain layer: C chains of K MTJ resonators in series, driven by N input oscillators.

Trainable parameters are positions on the input comb (see engine.physics.resonators): ``resonator_comb`` (C, K) and,
when input-frequency training is on, ``input_comb`` (N,). One comb unit is one input spacing, so learning
rates are in spacings per step whatever the band. The layer's output is the chain voltage V (B, C) in the
normalised units of the published simulator; the physics itself is evaluated in engine.physics.resonators.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import nn

from engine.layers import compiled_weight
from engine.layers.fast_weight import ShiftInvariantWeight, ShiftKernel
from engine.physics import resonators as physics
from engine.physics.resonators import DeviceParams

#: How W is built: 'exact' (every input-resonator pair, C·N·K work), 'fft' (the shift-invariant expansion of
#: engine.layers.fast_weight, O(C·N log N)), 'auto' (fft where it applies and K is large enough to pay off) or
#: 'compiled' (the exact formula as torch.compile kernels, engine.layers.compiled_weight: opt-in, for long runs).
WEIGHT_BUILDS = ("auto", "exact", "fft", "compiled")
#: 'auto' uses the FFT build from this many resonators per chain (measured crossover on full MNIST, 1 thread).
FFT_MIN_RESONATORS = 64


INIT_LAYOUTS = ("aligned", "random")


def tiled_resonator_comb(n_inputs: int, n_chains: int, n_resonators: int) -> torch.Tensor:
    """The fabricated layout under a limited tuning range (device.tuning_range): resonator k of every chain at
    (k + 1/2) (N - 1) / K, so the K reachable windows are spread evenly over the band and shared by the chains
    (as in the 'aligned' layout). Deterministic, so a network read from a file recovers its fabricated
    frequencies, which set its tuning ranges and set-point levels."""
    sites = (torch.arange(n_resonators, dtype=torch.float64) + 0.5) * ((n_inputs - 1) / n_resonators)
    return sites.to(torch.float32).view(1, -1).expand(n_chains, -1).clone()


def initial_resonator_comb(
    n_inputs: int,
    n_chains: int,
    n_resonators: int,
    generator: torch.Generator,
    layout: str = "aligned",
    jitter: float = 2.0,
) -> torch.Tensor:
    """Initial comb positions (C, K) of the resonators. 'random': uniform over the band, independently per
    chain; 'aligned': the chains share K random sites, each resonator within ``jitter`` spacings (std) of it."""
    if layout == "aligned":
        sites = torch.rand(1, n_resonators, generator=generator) * (n_inputs - 1)
        return (sites + jitter * torch.randn(n_chains, n_resonators, generator=generator)).clamp(0, n_inputs - 1)
    if layout == "random":
        return torch.rand(n_chains, n_resonators, generator=generator) * (n_inputs - 1)
    raise ValueError(f"initial layout must be one of {', '.join(INIT_LAYOUTS)} (got {layout!r})")


#: Elements of the (chains, resonators, inputs) block the fused weight build processes at once (cache-sized).
CHUNK_ELEMENTS = 1 << 18


class RFChainLayer(nn.Module):
    """Series chains of resonators: V_j = sum_i P_i W_ji with W_ji = K_SD sum_k s_k L(x_ijk)."""

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
        init_layout: str = "aligned",
        init_jitter: float = 2.0,
        weight_build: str = "auto",
    ) -> None:
        super().__init__()
        if weight_build not in WEIGHT_BUILDS:
            raise ValueError(f"weight_build must be one of {', '.join(WEIGHT_BUILDS)} (got {weight_build!r})")
        self.params = params
        if weight_build == "compiled" and not compiled_weight.available():
            raise ValueError(
                "weight_build 'compiled' needs torch.compile with a C++ compiler (and ATEN_CPU_CAPABILITY "
                "unset); use 'exact' or 'auto'"
            )
        self.weight_build = weight_build
        self._shift_kernel: Optional[ShiftKernel] = None
        #: Source of the layer's randomness: initial layout, fabrication spreads and read-out noise.
        self.generator = generator if generator is not None else torch.Generator().manual_seed(0)
        self.n_inputs, self.n_chains, self.n_resonators = n_inputs, n_chains, n_resonators
        lo, hi = physics.tuning_range_comb(params, n_inputs)
        self.comb_range = (lo, hi)
        #: Training regime (physics.HARDWARE_REGIMES), set by engine.nets.hardware.set_regime; decides which chip
        #: and noise a training pass sees (an evaluation pass always sees this layer's own chip and noise).
        self.regime = "in-situ"
        self._train_chip: Optional[tuple] = None  # the 'aware' regime's chip of the current batch
        if resonator_comb is None:
            if params.tuning_range is not None:
                resonator_comb = tiled_resonator_comb(n_inputs, n_chains, n_resonators)
            else:
                resonator_comb = initial_resonator_comb(
                    n_inputs, n_chains, n_resonators, self.generator, init_layout, init_jitter
                )
        if input_comb is None:
            input_comb = torch.arange(n_inputs, dtype=torch.float32)
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

    def draw_chip(self, generator: Optional[torch.Generator] = None) -> tuple:
        """A fresh chip: (alpha (C, K), k_sd (C, K), frequency draws of the resonators (C, K) and inputs
        (N,)), each None when its spread is 0; drawn from ``generator`` (default: the layer's) in that order."""
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
        return tuple(out)

    def fabricate(self, generator: Optional[torch.Generator] = None) -> None:
        """Replace this layer's chip (its frozen spreads) by a fresh draw (robustness studies)."""
        self.alpha_r, self.k_sd_r, self.freq_eps_r, self.freq_eps_in = self.draw_chip(generator)
        self._shift_kernel = None

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

    def _chip(self) -> tuple:
        """The chip a pass sees: none (nominal) for an 'ideal' training pass, a fresh one per batch for an
        'aware' training pass, otherwise this layer's own (alpha_r, k_sd_r, freq_eps_r, freq_eps_in)."""
        if self.training and self.regime == "ideal":
            return (None, None, None, None)
        if self.training and self.regime == "aware":
            if self._train_chip is None:
                self._train_chip = self.draw_chip()
            return self._train_chip
        return (self.alpha_r, self.k_sd_r, self.freq_eps_r, self.freq_eps_in)

    def _noisy(self) -> bool:
        """Whether read-out noise acts in this pass (not in an 'ideal' training pass)."""
        return not (self.training and self.regime == "ideal")

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

    def device_freqs(self, chip: Optional[tuple] = None) -> tuple[torch.Tensor, torch.Tensor]:
        """True frequencies (GHz) of the inputs (N,) and resonators (C, K) in this pass (no jitter): the
        set-points (comb positions) through the tuning resolution and the chip's fabrication offsets."""
        if not self.params.tuned_hardware:
            return self.input_freqs_ghz(), self.resonator_freqs_ghz()
        _, _, eps_r, eps_in = self._chip() if chip is None else chip
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
        return self.device_freqs((None, None, None, None))

    def _input_nominal(self) -> torch.Tensor:
        return torch.arange(self.n_inputs, dtype=self.input_comb.dtype, device=self.input_comb.device)

    def _inputs_nominal_all(self) -> bool:
        """Whether every input oscillator sits at its fabricated (nominal) comb position."""
        return torch.equal(self.input_comb.detach(), self._input_nominal())

    def _perturbed(self, chip: tuple) -> bool:
        """Whether devices sit off their (quantised) comb positions in this pass."""
        return chip[2] is not None or chip[3] is not None or self._jitter_now()

    # --- frequencies ------------------------------------------------------------------------------------
    def input_freqs_ghz(self) -> torch.Tensor:
        return physics.comb_to_ghz(self.input_comb, self.params, self.n_inputs)

    def resonator_freqs_ghz(self) -> torch.Tensor:
        return physics.comb_to_ghz(self.resonator_comb, self.params, self.n_inputs)

    def comb_to_ghz(self, u: torch.Tensor) -> torch.Tensor:
        return physics.comb_to_ghz(u, self.params, self.n_inputs)

    # --- couplings --------------------------------------------------------------------------------------
    def coupling(self, f_in: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Per-resonator signed couplings (C, K, N') to inputs at f_in (default: the input oscillators)."""
        chip = self._chip()
        f_dev, f_res = self.device_freqs(chip)
        return physics.coupling_tensor(
            f_dev if f_in is None else f_in, f_res, self.params, chip[0], chip[1], self.signs
        )

    def _inputs_nominal(self) -> bool:
        """Whether the input oscillators sit, untrained, at their nominal comb positions 0..N-1."""
        nominal = torch.arange(self.n_inputs, dtype=self.input_comb.dtype, device=self.input_comb.device)
        return not self.input_comb.requires_grad and torch.equal(self.input_comb.detach(), nominal)

    def fast_build(self, chip: Optional[tuple] = None) -> Optional[ShiftKernel]:
        """The FFT build's kernel when it applies to this layer now (see engine.layers.fast_weight), else None:
        inputs at their nominal comb positions, a geometric plan, one damping, and (for 'auto') K large."""
        if self.weight_build in ("exact", "compiled"):
            return None
        chip = (self.alpha_r, self.k_sd_r, self.freq_eps_r, self.freq_eps_in) if chip is None else chip
        why = None
        if chip[0] is not None:
            why = "a damping spread makes the coupling depend on each resonator"
        elif self._perturbed(chip):
            why = "fabrication offsets or frequency jitter move the devices off their comb positions"
        elif self.params.plan != "geometric":
            why = "the linear frequency plan is not shift-invariant"
        elif self.input_comb.requires_grad:
            why = "trained input frequencies move the inputs off the comb"
        elif self.weight_build == "auto" and self.n_resonators < FFT_MIN_RESONATORS:
            return None
        elif not self._inputs_nominal():
            why = "the input oscillators are not at their nominal frequencies"
        else:
            if self._shift_kernel is None:
                self._shift_kernel = ShiftKernel(self.params, self.n_inputs, self.comb_range)
            if not self._shift_kernel.available:
                why = "the input spacing is too many linewidths for the expansion"
        if why is not None:
            if self.weight_build == "fft":
                raise ValueError(f"weight_build 'fft' cannot be used here: {why}")
            return None
        return self._shift_kernel

    def weight(self) -> torch.Tensor:
        """Effective weight matrix W (C, N) in V/µW (fused physics.effective_weight, see _ChainWeight, or the
        FFT build of engine.layers.fast_weight where it applies)."""
        chip = self._chip()
        alpha_c, k_sd_c = chip[0], chip[1]
        kernel = self.fast_build(chip)
        if kernel is not None:
            k_sd = k_sd_c if k_sd_c is not None else self.params.k_sd
            amplitude = (self.signs * k_sd).expand(self.n_chains, self.n_resonators).contiguous()
            u: torch.Tensor = self.resonator_comb
            if self.params.tuning_bits is not None:  # set-points on their levels (straight-through)
                lo, hi = self._bounds("res")
                u = physics.straight_through(u, physics.quantise_comb(u.detach(), lo, hi, self.params.tuning_bits))
            return ShiftInvariantWeight.apply(u, amplitude, kernel)
        alpha = alpha_c if alpha_c is not None else torch.full_like(self.resonator_comb, self.params.alpha)
        k_sd = k_sd_c if k_sd_c is not None else self.params.k_sd
        amplitude = self.signs * k_sd if k_sd_c is not None else (self.signs * k_sd).expand_as(alpha)
        f_in, f_res = self.device_freqs(chip)
        if self._jitter_now():  # one draw of cycle-to-cycle noise for the whole batch
            g = self.generator
            xi_in = torch.randn(self.n_inputs, generator=g).to(f_in.device)
            xi_r = torch.randn(self.n_chains, self.n_resonators, generator=g).to(f_res.device)
            f_in = physics.jittered(f_in, xi_in, self.params.alpha, self.params)
            f_res = physics.jittered(f_res, xi_r, alpha, self.params)
        if self.weight_build == "compiled":
            return compiled_weight.CompiledChainWeight.apply(
                f_in, f_res, alpha, amplitude.contiguous(), self.params.phi
            )
        return _ChainWeight.apply(f_in, f_res, alpha, amplitude.contiguous(), self.params.phi, torch.is_grad_enabled())

    def response(self, freqs_ghz: torch.Tensor) -> torch.Tensor:
        """Chain voltage per µW of a probe tone at each frequency (C, M): the chain's spectral response."""
        return self.coupling(freqs_ghz).sum(dim=1)

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
        if self.params.plan != "geometric" or not self._inputs_nominal():
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

    def forward(self, power_uw: torch.Tensor, weight: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Chain voltages V (B, C) for input powers (B, N) in µW."""
        noisy = self._noisy()
        if noisy and self.params.power_noise > 0:  # each input power, at every read-out
            xi = torch.randn(power_uw.shape, dtype=power_uw.dtype, generator=self.generator).to(power_uw.device)
            power_uw = physics.noisy_power(power_uw, xi, self.params)
        if noisy and self.params.freq_jitter_lw > 0 and not self._jitter_now():
            v = self._jittered_voltages(power_uw)  # evaluation: every sample is read out with its own jitter
        else:
            w = self.weight() if weight is None else weight
            v = power_uw @ w.t()
        if noisy and self.params.readout_noise_v > 0:  # thermal / read-out noise, at every read-out
            noise = torch.randn(v.shape, dtype=v.dtype, generator=self.generator).to(v.device)
            v = v + self.params.readout_noise_v * noise
        return v

    #: Elements of the (samples, chains, resonators, inputs) block of one per-sample jitter evaluation (the
    #: draws of a block are made together).
    JITTER_BLOCK = 1 << 22
    #: Elements computed at a time within a block, so that the temporaries stay in cache (the arithmetic of
    #: every sample is the same whatever the split).
    JITTER_CHUNK = 1 << 17

    def _jittered_voltages(self, power_uw: torch.Tensor) -> torch.Tensor:
        """Chain voltages (B, C) with each sample read out under its own draw of every device's frequency
        jitter (physics.jittered), evaluated exactly, a block of samples at a time."""
        chip = self._chip()
        f_in, f_res = self.device_freqs(chip)
        p = self.params
        alpha = chip[0] if chip[0] is not None else p.alpha
        k_sd = chip[1] if chip[1] is not None else p.k_sd
        amp = (self.signs.view(1, -1) * k_sd).expand(self.n_chains, self.n_resonators).unsqueeze(-1)  # (C, K, 1)
        a_res = alpha.unsqueeze(-1) if isinstance(alpha, torch.Tensor) else alpha
        b_total = power_uw.shape[0]
        per_sample = max(1, self.n_chains * self.n_resonators * self.n_inputs)
        per = max(1, self.JITTER_BLOCK // per_sample)
        chunk = max(1, self.JITTER_CHUNK // per_sample)
        out = []
        for b0 in range(0, b_total, per):
            b = min(per, b_total - b0)
            xi_in = torch.randn(b, self.n_inputs, generator=self.generator).to(f_in.device)
            xi_r = torch.randn(b, self.n_chains, self.n_resonators, generator=self.generator).to(f_res.device)
            fi = physics.jittered(f_in.unsqueeze(0), xi_in, p.alpha, p)  # (b, N)
            fr = physics.jittered(f_res.unsqueeze(0), xi_r, alpha, p)  # (b, C, K)
            for c0 in range(0, b, chunk):
                c1 = min(b, c0 + chunk)
                x = physics.detuning(fi[c0:c1].view(c1 - c0, 1, 1, -1), fr[c0:c1].unsqueeze(-1), a_res)
                w = (amp * physics.lineshape(x, p.phi)).sum(dim=2)  # (samples, C, N)
                out.append(torch.einsum("bcn,bn->bc", w, power_uw[b0 + c0 : b0 + c1]))
        return torch.cat(out) if out else power_uw.new_zeros(0, self.n_chains)


class _ChainWeight(torch.autograd.Function):
    """W (C, N) = sum_k s_k K_SD_jk L(x(f_i, f_jk)), with analytic gradients for f_in and f_res.

    The same result as physics.effective_weight in a handful of tensor passes over the (C, K, N) block (it
    matters because W is rebuilt at every training step): x = (f - f_r) a with a = 1/(alpha f_r) precomputed,
    the parts x d and d of the lineshape (physics.lineshape_parts), and the sum over the resonators as a
    batched product with their amplitudes. The half-slope of L is kept for the backward pass only when a
    gradient is needed; the backward pass contracts it with the incoming gradient by two batched products,
    never forming dLoss/dx. Large layers are processed a few chains at a time, so that each block of
    temporaries stays in cache.
    """

    @staticmethod
    def forward(ctx, f_in, f_res, alpha, amplitude, phi, grad_enabled=True):
        # alpha, amplitude: (C, K) damping and s_k * K_SD per resonator; grad_enabled: the caller's grad mode
        # (inside forward it is always off), so that evaluation passes keep no slope
        c, k = f_res.shape
        n = f_in.shape[0]
        need_grad = grad_enabled and (ctx.needs_input_grad[0] or ctx.needs_input_grad[1])
        a, b = physics.detuning_partials(f_res, alpha)  # dx/df = a, dx/df_r = f b, (C, K) each
        c_xd, c_d = physics.lineshape_coefficients(phi)
        amp_xd = (amplitude * c_xd).unsqueeze(1)  # (C, 1, K)
        amp_d = (amplitude * c_d).unsqueeze(1) if c_d else None
        step = max(1, CHUNK_ELEMENTS // max(k * n, 1))
        w = f_in.new_empty(c, n)
        half_slope = f_in.new_empty(c, k, n) if need_grad else None
        for j0 in range(0, c, step):
            sl = slice(j0, j0 + step)
            x = physics.detuning_scaled(f_in.view(1, 1, -1), f_res[sl].unsqueeze(-1), a[sl].unsqueeze(-1))
            xd, d = physics.lineshape_parts(x)
            out = w[sl].unsqueeze(1)  # (chains, 1, N), a view of W's rows
            torch.bmm(amp_xd[sl], xd, out=out)
            if amp_d is not None:
                out.baddbmm_(amp_d[sl], d)
            if need_grad:
                physics.lineshape_half_slope(xd, d, phi, out=half_slope[sl])
        if need_grad:
            ctx.save_for_backward(f_in, amplitude, a, b, half_slope)
        return w

    @staticmethod
    def backward(ctx, grad_w):
        f_in, amplitude, a, b, half_slope = ctx.saved_tensors
        amp2 = 2.0 * amplitude  # dL/dx = 2 * half_slope
        grad_fin = grad_fr = None
        if ctx.needs_input_grad[1]:  # sum_n dL/dx grad_w f_n, times dx/df_r / f_n = b
            v = grad_w * f_in  # (C, N)
            if half_slope.numel() <= CHUNK_ELEMENTS:  # small layers: one product and sum beats a batched mat-vec
                per_resonator = (half_slope * v.unsqueeze(1)).sum(-1)
            else:  # large ones: no (C, K, N) temporary
                per_resonator = torch.bmm(half_slope, v.unsqueeze(-1)).view_as(b)
            grad_fr = per_resonator.mul_(amp2 * b)
        if ctx.needs_input_grad[0]:  # sum_c grad_w sum_k amp dL/dx dx/df
            per_chain = torch.bmm((amp2 * a).unsqueeze(1), half_slope).squeeze(1)  # (C, N)
            grad_fin = (per_chain * grad_w).sum(0)
        return grad_fin, grad_fr, None, None, None, None
