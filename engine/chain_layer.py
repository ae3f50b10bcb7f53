"""An RF chain layer: C chains of K MTJ resonators in series, driven by N input oscillators.

Trainable parameters are positions on the input comb (see engine.physics): ``resonator_comb`` (C, K) and,
when input-frequency training is on, ``input_comb`` (N,). One comb unit is one input spacing, so learning
rates are in spacings per step whatever the band. The layer's output is the chain voltage V (B, C) in the
normalised units of the published simulator; the physics itself is evaluated in engine.physics.
"""
from __future__ import annotations

import math
from typing import Optional

import torch
from torch import nn

from . import physics
from .fast_weight import ShiftInvariantWeight, ShiftKernel
from .physics import DeviceParams

#: How W is built: 'exact' (every input-resonator pair, C·N·K work), 'fft' (the shift-invariant expansion of
#: engine.fast_weight, O(C·N log N)), 'auto' (fft where it applies and K is large enough to pay off) or
#: 'compiled' (the exact formula as torch.compile kernels, engine.compiled_weight: opt-in, for long runs).
WEIGHT_BUILDS = ("auto", "exact", "fft", "compiled")
#: 'auto' uses the FFT build from this many resonators per chain (measured crossover on full MNIST, 1 thread).
FFT_MIN_RESONATORS = 64


INIT_LAYOUTS = ("aligned", "random")


def initial_resonator_comb(n_inputs: int, n_chains: int, n_resonators: int, generator: torch.Generator,
                           layout: str = "aligned", jitter: float = 2.0) -> torch.Tensor:
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

    def __init__(self, n_inputs: int, n_chains: int, n_resonators: int, params: DeviceParams,
                 train_inputs: bool = False, resonator_comb: Optional[torch.Tensor] = None,
                 input_comb: Optional[torch.Tensor] = None, generator: Optional[torch.Generator] = None,
                 init_layout: str = "aligned", init_jitter: float = 2.0, weight_build: str = "auto") -> None:
        super().__init__()
        if weight_build not in WEIGHT_BUILDS:
            raise ValueError(f"weight_build must be one of {', '.join(WEIGHT_BUILDS)} (got {weight_build!r})")
        self.params = params
        self.weight_build = weight_build
        self._shift_kernel: Optional[ShiftKernel] = None
        #: Source of the layer's randomness: initial layout, fabrication spreads and read-out noise.
        self.generator = generator if generator is not None else torch.Generator().manual_seed(0)
        self.n_inputs, self.n_chains, self.n_resonators = n_inputs, n_chains, n_resonators
        lo, hi = physics.tuning_range_comb(params, n_inputs)
        self.comb_range = (lo, hi)
        if resonator_comb is None:
            resonator_comb = initial_resonator_comb(n_inputs, n_chains, n_resonators, self.generator,
                                                    init_layout, init_jitter)
        if input_comb is None:
            input_comb = torch.arange(n_inputs, dtype=torch.float32)
        self.resonator_comb = nn.Parameter(resonator_comb.to(torch.float32).clone())
        self.input_comb = nn.Parameter(input_comb.to(torch.float32).clone(), requires_grad=train_inputs)
        self.register_buffer("signs", physics.chain_signs(n_resonators, params.parity))
        # Device-to-device spreads, frozen at fabrication (None when the device is ideal: faster).
        self.alpha_r: Optional[torch.Tensor]
        self.k_sd_r: Optional[torch.Tensor]
        for name, base, spread in (("alpha_r", params.alpha, params.alpha_dtod),
                                   ("k_sd_r", params.k_sd, params.k_sd_dtod)):
            value = None
            if spread > 0:
                noise = torch.randn(n_chains, n_resonators, generator=self.generator)
                value = (base * (1.0 + spread * noise)).clamp_min(0.05 * base)
            self.register_buffer(name, value)

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
        f = self.input_freqs_ghz() if f_in is None else f_in
        return physics.coupling_tensor(f, self.resonator_freqs_ghz(), self.params, self.alpha_r, self.k_sd_r,
                                       self.signs)

    def _inputs_nominal(self) -> bool:
        """Whether the input oscillators sit, untrained, at their nominal comb positions 0..N-1."""
        nominal = torch.arange(self.n_inputs, dtype=self.input_comb.dtype, device=self.input_comb.device)
        return not self.input_comb.requires_grad and torch.equal(self.input_comb.detach(), nominal)

    def fast_build(self) -> Optional[ShiftKernel]:
        """The FFT build's kernel when it applies to this layer now (see engine.fast_weight), else None:
        inputs at their nominal comb positions, a geometric plan, one damping, and (for 'auto') K large."""
        if self.weight_build in ("exact", "compiled"):
            return None
        why = None
        if self.alpha_r is not None:
            why = "a damping spread makes the coupling depend on each resonator"
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
        FFT build of engine.fast_weight where it applies)."""
        kernel = self.fast_build()
        if kernel is not None:
            k_sd = self.k_sd_r if self.k_sd_r is not None else self.params.k_sd
            amplitude = (self.signs * k_sd).expand(self.n_chains, self.n_resonators).contiguous()
            return ShiftInvariantWeight.apply(self.resonator_comb, amplitude, kernel)
        alpha = self.alpha_r if self.alpha_r is not None else torch.full_like(self.resonator_comb, self.params.alpha)
        k_sd = self.k_sd_r if self.k_sd_r is not None else self.params.k_sd
        amplitude = self.signs * k_sd if self.k_sd_r is not None else (self.signs * k_sd).expand_as(alpha)
        if self.weight_build == "compiled":
            from .compiled_weight import CompiledChainWeight

            return CompiledChainWeight.apply(self.input_freqs_ghz(), self.resonator_freqs_ghz(), alpha,
                                             amplitude.contiguous(), self.params.phi)
        return _ChainWeight.apply(self.input_freqs_ghz(), self.resonator_freqs_ghz(), alpha,
                                  amplitude.contiguous(), self.params.phi)

    def response(self, freqs_ghz: torch.Tensor) -> torch.Tensor:
        """Chain voltage per µW of a probe tone at each frequency (C, M): the chain's spectral response."""
        return self.coupling(freqs_ghz).sum(dim=1)

    def attachments(self) -> tuple[torch.Tensor, torch.Tensor]:
        """For each resonator, the input it couples to most strongly (C, K) and that signed coupling (C, K).

        With the inputs at their nominal comb positions and a geometric plan, only the inputs within a few
        linewidths of each resonance are compared: beyond |x| = 3 the lineshape is below its peak, so the
        strongest coupling lies inside that window (C·K·window work instead of C·K·N)."""
        window = self._attachment_window()
        if window is None:
            c = self.coupling()
            idx = c.abs().argmax(dim=-1)
            return idx, c.gather(-1, idx.unsqueeze(-1)).squeeze(-1)
        near = torch.floor(self.resonator_comb.detach() + 0.5).long()
        cand = (near.unsqueeze(-1) + torch.arange(-window, window + 1, device=near.device)).clamp_(
            0, self.n_inputs - 1)  # (C, K, window)
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
        lo, hi = self.comb_range
        self.resonator_comb.clamp_(lo, hi)
        if self.input_comb.requires_grad:
            self.input_comb.clamp_(lo, hi)

    def forward(self, power_uw: torch.Tensor, weight: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Chain voltages V (B, C) for input powers (B, N) in µW."""
        w = self.weight() if weight is None else weight
        v = power_uw @ w.t()
        if self.params.readout_noise_v > 0:  # thermal / read-out noise, at every read-out
            noise = torch.randn(v.shape, dtype=v.dtype, generator=self.generator).to(v.device)
            v = v + self.params.readout_noise_v * noise
        return v


class _ChainWeight(torch.autograd.Function):
    """W (C, N) = sum_k s_k K_SD_jk L(x(f_i, f_jk)), with analytic gradients for f_in and f_res.

    The same result as physics.effective_weight, in about a third of the tensor passes of plain autograd:
    it matters because W is rebuilt at every training step. Large layers are processed a few chains at a
    time, so that each block of temporaries stays in cache.
    """

    @staticmethod
    def forward(ctx, f_in, f_res, alpha, amplitude, phi):
        # alpha, amplitude: (C, K) damping and s_k * K_SD per resonator
        c, k = f_res.shape
        n = f_in.shape[0]
        step = max(1, CHUNK_ELEMENTS // max(k * n, 1))
        w = f_in.new_empty(c, n)
        dl_all = f_in.new_empty(c, k, n)
        for j0 in range(0, c, step):
            sl = slice(j0, j0 + step)
            x = physics.detuning(f_in.view(1, 1, -1), f_res[sl].unsqueeze(-1), alpha[sl].unsqueeze(-1))
            lv, dl = physics.lineshape_and_derivative(x, phi)
            amp = amplitude[sl].unsqueeze(-1)
            torch.mul(dl, amp, out=dl_all[sl])
            torch.sum(lv.mul_(amp), dim=1, out=w[sl])
        ctx.save_for_backward(f_in, f_res, alpha, dl_all)
        return w

    @staticmethod
    def backward(ctx, grad_w):
        f_in, f_res, alpha, d = ctx.saved_tensors
        g = d.mul_(grad_w.unsqueeze(1))  # dLoss/dx (C, K, N); the saved tensor is not needed again
        dx_df, dx_dfr_per_f = physics.detuning_partials(f_res, alpha)  # (C, K) each
        c, k, n = g.shape
        grad_fr = (g.view(c * k, n) @ f_in).view(c, k) * dx_dfr_per_f
        grad_fin = (dx_df.reshape(1, c * k) @ g.view(c * k, n)).view(n) if ctx.needs_input_grad[0] else None
        return grad_fin, grad_fr, None, None, None
