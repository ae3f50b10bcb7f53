"""A weight build for devices anywhere: gridding in log-frequency (trained inputs, the linear plan, offsets).

The detuning between an input at frequency f and a resonator at f_r depends only on their log-frequency
distance, whatever the plan:

    x = (f - f_r) / (alpha f_r) = (e^(s - s_r) - 1) / alpha,          s = ln f,

so with one damping for every resonator a chain's weights are a convolution, evaluated wherever the inputs
sit: W_j(s_i) = sum_k a_jk g(s_i - s_jk), g(s) = L((e^s - 1) / alpha) (a_jk = s_k K_SD,jk, engine.physics.resonators).
g is smooth on the real axis: its poles, e^s = 1 +- i alpha, lie atan(alpha) (about one linewidth) off it.

Gridding. On a uniform grid t = (s - s_0) / h with h a fraction 1/rho of that distance, g is interpolated in
each argument by P-point Lagrange weights l_p(t) on the grid stencil of its position (n(t) + p, p < P):

    g(s_i - s_k) ~= sum_p sum_q l_p(t_i) l_q(t_k) g((n_i + p - n_k - q) h),

so W_j[i] = sum_p l_p(t_i) H_j[n_i + p] with H_j = g(. h) * S_j and S_j the resonators spread onto the grid
(S_j[n_k + q] += a_jk l_q(t_k)): spread, convolve by FFT, interpolate, O(C (F log F + (N + K) P)) for an FFT of
F ~ 2 span / h points instead of the exact build's O(C K N). The gradients go the same way with g' for g
(dW_j[i]/ds_i = sum_k a_jk g'(s_i - s_jk), the same spectrum times g's, interpolated at the inputs) and, for
the resonators (and their amplitudes), by the adjoint: dLoss/dW spread with the inputs' weights, correlated
with g' (and g) by FFT, interpolated at the resonators. Interpolating g' rather than differentiating the
interpolant keeps single-precision rounding of the grid values from being amplified by about rho.

(P, rho) is chosen at set-up as the cheapest of ``CANDIDATES`` whose double interpolation reproduces g and g'
within ``KERNEL_RTOL`` and ``SLOPE_RTOL`` of their peaks (checked against the exact lineshape over a lattice of
fractional positions and offsets). The exact build (engine.layers.chain) stays the reference and the fallback
(a damping spread makes the kernel depend on each resonator); the comb build of engine.layers.fast_weight is
used instead where the inputs sit on their nominal comb slots.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Optional

import numpy as np
import torch

from engine.core.enums import FrequencyPlan
from engine.layers.fast_weight import fast_size
from engine.layers.fused_weight import compile_loops, numpy_view
from engine.physics import resonators as physics
from engine.physics.resonators import DeviceParams

#: Largest error of the interpolated kernel g on the checked positions, relative to peak |g|.
KERNEL_RTOL = 1e-7
#: Largest error of the interpolated derivative g', relative to peak |g'|.
SLOPE_RTOL = 1e-6
#: (points per stencil P, grid points per pole distance rho), cheapest first; the first that meets the
#: tolerances is used (the error depends on alpha only through the pole distance, so this is nearly always
#: the first).
CANDIDATES = ((12, 10), (10, 12), (14, 10), (16, 12), (16, 16))
#: Largest grid (points per chain) offered; beyond it the exact build is cheaper for any shape.
MAX_GRID = 1 << 21
#: Cost model of 'auto' (nanoseconds on one CPU thread, forward and backward, read off timings of both builds
#: over several shapes; benchmarks/bench_moving_inputs.py --calibrate prints them against it): per chain,
#: FFT_NS per F log2 F of the grid's FFTs and STENCIL_NS per stencil weight, plus OVERHEAD_NS per build; the
#: exact build costs EXACT_NS per chain, input and resonator.
FFT_NS = 0.6
STENCIL_NS = 10.0
OVERHEAD_NS = 600_000.0
EXACT_NS = 2.7
#: The exact formula as fused loops (engine.layers.fused_weight): FUSED_NS per chain, input and resonator.
FUSED_NS = 0.65
#: Grid margin beyond the span a plan is made for, in pole distances (room for trained devices to move).
MARGIN_POLES = 8.0


def log_kernel(s: torch.Tensor, alpha: float, phi: float) -> torch.Tensor:
    """g(s): the lineshape of a unit resonator at an input a log-frequency distance s = ln(f / f_r) above it
    (the detuning (f - f_r) / (alpha f_r) of engine.physics.resonators is expm1(s) / alpha)."""
    return physics.lineshape(torch.expm1(s) / alpha, phi)


def log_kernel_slope(s: torch.Tensor, alpha: float, phi: float) -> torch.Tensor:
    """g'(s) = L'(x) e^s / alpha."""
    return physics.lineshape_derivative(torch.expm1(s) / alpha, phi) * torch.exp(s) / alpha


def _inverse_vandermonde(points: int) -> torch.Tensor:
    """M (P, P) with l(tau) = [tau^d]_d @ M: the Lagrange weights of the nodes j - (P - 1)/2 as polynomials in
    tau, the offset from the centre of the stencil's middle cell (|tau| <= 1/2 keeps the monomials tame)."""
    nodes = torch.arange(points, dtype=torch.float64) - (points - 1) / 2
    return torch.linalg.inv(nodes.view(-1, 1) ** torch.arange(points, dtype=torch.float64).view(1, -1))


def stencil(t: torch.Tensor, inv_vdm: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """For grid positions t (float64, any shape): the first stencil point (long) and the P Lagrange weights in
    ``dtype`` (on a new last axis). The offset tau from the middle cell's centre is exact in float64; the
    weights, polynomials in |tau| <= 1/2, are well conditioned in any precision."""
    points = inv_vdm.shape[0]
    cell = torch.floor(t)
    tau = (t - cell).to(dtype).sub_(0.5).unsqueeze(-1)
    powers = tau.new_ones(tau.shape[:-1] + (points,))
    powers[..., 1:] = tau
    m = inv_vdm.to(device=t.device, dtype=dtype)
    return cell.long() - (points // 2 - 1), powers.cumprod(-1) @ m  # [tau^d]_d @ M


def _check_error(points: int, rho: int, alpha: float, phi: float) -> tuple[float, float]:
    """Largest errors of the double interpolation of g and of g' relative to their peaks, over a lattice of
    fractional grid positions of an input and a resonator and of offsets within 8 pole distances."""
    h = math.atan(alpha) / rho
    inv_vdm = _inverse_vandermonde(points)
    frac = (torch.arange(6, dtype=torch.float64) + 0.5) / 6
    offsets = torch.arange(-8 * rho, 8 * rho + 1, dtype=torch.float64)
    t_in = (offsets.view(-1, 1, 1) + frac.view(1, -1, 1)).expand(-1, -1, frac.numel()).reshape(-1)
    t_res = frac.view(1, 1, -1).expand(offsets.numel(), frac.numel(), -1).reshape(-1)
    base_in, w_in = stencil(t_in, inv_vdm, torch.float64)
    base_res, w_res = stencil(t_res, inv_vdm, torch.float64)
    p = torch.arange(points)
    e = (base_in.view(-1, 1, 1) + p.view(1, -1, 1)) - (base_res.view(-1, 1, 1) + p.view(1, 1, -1))  # (M, P, P)
    e_min = int(e.min())
    offsets_used = torch.arange(e_min, int(e.max()) + 1, dtype=torch.float64) * h  # each grid offset once
    s = (t_in - t_res) * h
    fine = torch.linspace(-8 * rho * h, 8 * rho * h, 16001, dtype=torch.float64)
    errors = []
    for fn in (log_kernel, log_kernel_slope):
        approx = torch.einsum("mp,mq,mpq->m", w_in, w_res, fn(offsets_used, alpha, phi)[e - e_min])
        errors.append(float((approx - fn(s, alpha, phi)).abs().max()) / float(fn(fine, alpha, phi).abs().max()))
    return errors[0], errors[1]


@functools.lru_cache(maxsize=16)
def choose_stencil(alpha: float, phi: float) -> Optional[tuple[int, int]]:
    """The cheapest (P, rho) of CANDIDATES that meets the tolerances, or None."""
    for points, rho in CANDIDATES:
        err, err_slope = _check_error(points, rho, alpha, phi)
        if err <= KERNEL_RTOL and err_slope <= SLOPE_RTOL:
            return points, rho
    return None


class LogGrid:
    """A grid in log-frequency over a span, with the kernel's spectra for the FFT convolution."""

    def __init__(self, alpha: float, phi: float, span: tuple[float, float], points: int, rho: int) -> None:
        self.points, self.rho = points, rho
        self.h = math.atan(alpha) / rho
        margin = MARGIN_POLES * rho * self.h
        self.s_lo, self.s_hi = span[0] - margin, span[1] + margin
        self.origin = self.s_lo - (points // 2) * self.h  # the stencil of s_lo starts at grid point 1
        self.size = int(math.ceil((self.s_hi - self.origin) / self.h)) + points // 2 + 1  # G
        self.fft_size = fast_size(2 * self.size - 1)
        self.inv_vdm = _inverse_vandermonde(points)
        self.inv_vdm_f32 = self.inv_vdm.to(torch.float32).numpy()  # the compiled stencils' copy
        e = torch.arange(-(self.size - 1), self.size, dtype=torch.float64) * self.h
        taps = torch.stack([fn(sign * e, alpha, phi) for fn in (log_kernel, log_kernel_slope) for sign in (1, -1)])
        self._spectrum = torch.fft.rfft(taps, n=self.fft_size)  # complex128, on the CPU
        self._copies: dict[tuple[torch.dtype, torch.device], torch.Tensor] = {}

    def covers(self, s_min: float, s_max: float) -> bool:
        return self.s_lo <= s_min and s_max <= self.s_hi

    def spectra(self, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        """The spectra (4, F/2 + 1) of g(e h), g(-e h), g'(e h) and g'(-e h) (e = -(G - 1) .. G - 1), in the
        complex type of real ``dtype``, on ``device``."""
        key = (torch.complex128 if dtype == torch.float64 else torch.complex64, device)
        if key not in self._copies:
            self._copies[key] = self._spectrum.to(device=device, dtype=key[0])
        return self._copies[key]

    def positions(self, s: torch.Tensor) -> torch.Tensor:
        """Grid coordinates t of log-frequencies s (float64)."""
        return (s.detach().to(torch.float64) - self.origin) / self.h

    def transform(self, spikes: torch.Tensor) -> torch.Tensor:
        """The spectrum of grid values (C, G), zero-padded to the FFT size."""
        return torch.fft.rfft(spikes, n=self.fft_size)

    def convolve(self, spectrum: torch.Tensor, taps: list[int]) -> torch.Tensor:
        """out[j, t, m] = sum_m' x[j, m'] k_t(m - m') (C, T, G) for x's spectrum (C, F/2 + 1) and the kernels
        k_t of :meth:`spectra` listed in ``taps`` (one inverse transform for all)."""
        kernels = self.spectra(spectrum.real.dtype, spectrum.device)[taps]
        full = torch.fft.irfft(spectrum.unsqueeze(1) * kernels, n=self.fft_size)
        return full[..., self.size - 1 : 2 * self.size - 1]

    def interpolate(self, field: torch.Tensor, base: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """(C, T, G) grid values -> (C, T, M) at M positions, from their stencils' first points ``base`` (M,)
        and Lagrange weights (M, P) (the stencils as windows of the grid: one index per position)."""
        return (field.unfold(2, self.points, 1).index_select(2, base) * weights).sum(-1)


#: Positions whose stencils :func:`_stencils` computes together (its loops over them vectorise).
STENCIL_BLOCK = 256


def _stencils(t, m, size, base, weights):  # pragma: no cover - compiled by numba
    """:func:`stencil` of positions t (M,) (float64) with M = the inverse Vandermonde matrix in float32: the
    first points into ``base`` (M,), the weights into ``weights`` (M, P). Every stencil must lie within the
    grid of ``size`` points (the loops that use them do not check their indices). Each weight sums its P terms
    in the order of the powers, for a block of positions at a time (the innermost loops run over positions)."""
    n_points = m.shape[0]
    half = n_points // 2 - 1
    n = t.shape[0]
    tau = np.empty(STENCIL_BLOCK, dtype=np.float32)
    power = np.empty(STENCIL_BLOCK, dtype=np.float32)
    acc = np.empty((n_points, STENCIL_BLOCK), dtype=np.float32)
    for start in range(0, n, STENCIL_BLOCK):
        b = min(STENCIL_BLOCK, n - start)
        for i in range(b):
            cell = np.floor(t[start + i])
            if not (cell - half >= 0 and cell - half + n_points <= size):  # (NaN fails too)
                raise IndexError("a device lies outside the log-frequency grid")
            tau[i] = np.float32(t[start + i] - cell) - np.float32(0.5)
            base[start + i] = np.int64(cell) - half
            power[i] = tau[i]
        for j in range(n_points):
            first = np.float32(0.0) + m[0, j]  # the term of tau^0, added to 0 as the sum below would
            for i in range(b):
                acc[j, i] = first
        for d in range(1, n_points):
            for j in range(n_points):
                coefficient = m[d, j]
                for i in range(b):
                    acc[j, i] += power[i] * coefficient
            for i in range(b):
                power[i] *= tau[i]
        for i in range(b):
            for j in range(n_points):
                weights[start + i, j] = acc[j, i]


def _spread(base, weights, values, out):  # pragma: no cover - compiled by numba
    """out[c, base[c', m] + p] += values[c, m] weights[c', m, p] for every chain c (c' = c, or 0 when the
    positions are shared by the chains: ``base`` (1, M))."""
    n_chains, n_pos = values.shape
    n_points = weights.shape[2]
    for c in range(n_chains):
        own = c if base.shape[0] > 1 else 0
        for i in range(n_pos):
            v, b = values[c, i], base[own, i]
            for p in range(n_points):
                out[c, b + p] += v * weights[own, i, p]


def _interpolate(field, base, weights, out):  # pragma: no cover - compiled by numba
    """out[c, t, m] = sum_p field[c, t, base[c', m] + p] weights[c', m, p] (c' as in :func:`_spread`)."""
    n_chains, n_taps, _ = field.shape
    n_pos, n_points = weights.shape[1], weights.shape[2]
    for c in range(n_chains):
        own = c if base.shape[0] > 1 else 0
        for t in range(n_taps):
            for i in range(n_pos):
                b = base[own, i]
                acc = np.float32(0.0)
                for p in range(n_points):
                    acc += field[c, t, b + p] * weights[own, i, p]
                out[c, t, i] = acc


@functools.cache
def _loops():
    """The compiled stencil, spread and interpolation loops, or None without numba."""
    return compile_loops(_stencils, _spread, _interpolate, fastmath={"contract"})


class _Stencils:
    """The stencils of a set of positions on the grid (their first points and Lagrange weights) and the two
    operations on them: spreading values onto the grid, and interpolating grid values at the positions. The
    positions are shared by every chain (the inputs, s (M,)) or each chain's own (the resonators, s (C, K)). On
    the CPU in float32, by the compiled loops (no index blocks); else by torch's index operations."""

    #: first points and weights: numpy arrays (chains or 1, M), (chains or 1, M, P) for the compiled loops, else
    #: tensors (M,), (M, P) or (C, K), (C, K, P)
    base: Any
    weights: Any

    def __init__(self, s: torch.Tensor, grid: LogGrid, dtype: torch.dtype, compiled: bool) -> None:
        self.grid, self.compiled, self.shared = grid, compiled, s.dim() == 1
        t = grid.positions(s)
        if compiled:
            flat = numpy_view(t).reshape(-1)
            base = np.empty(flat.shape[0], dtype=np.int64)
            weights = np.empty((flat.shape[0], grid.points), dtype=np.float32)
            _loops()[0](flat, grid.inv_vdm_f32, grid.size, base, weights)
            rows = 1 if self.shared else s.shape[0]  # the loops take (chains or 1, M) stencils
            self.base, self.weights = base.reshape(rows, -1), weights.reshape(rows, -1, grid.points)
        else:
            self.base, self.weights = stencil(t, grid.inv_vdm, dtype)  # (M,), (M, P) or (C, K), (C, K, P)
            index = self.base.unsqueeze(-1) + torch.arange(grid.points, device=s.device)
            self.index = index.view(-1) if self.shared else index.view(s.shape[0], -1)

    def spread(self, values: torch.Tensor) -> torch.Tensor:
        """(C, G): values (C, M) at the positions, spread onto the grid by their weights."""
        c = values.shape[0]
        if self.compiled:
            out = torch.zeros(c, self.grid.size, dtype=values.dtype)
            _loops()[1](self.base, self.weights, numpy_view(values), out.numpy())
            return out
        terms = (values.unsqueeze(-1) * self.weights).reshape(c, -1)
        out = values.new_zeros(c, self.grid.size)
        return out.index_add_(1, self.index, terms) if self.shared else out.scatter_add_(1, self.index, terms)

    def interpolate(self, field: torch.Tensor) -> torch.Tensor:
        """(C, T, M): grid values (C, T, G) interpolated at the positions."""
        if self.compiled:
            field = field.contiguous()
            out = field.new_empty(field.shape[0], field.shape[1], self.base.shape[1])
            _loops()[2](field.numpy(), self.base, self.weights, out.numpy())
            return out
        if self.shared:
            return self.grid.interpolate(field, self.base, self.weights)
        c, taps = field.shape[:2]
        picked = field.gather(2, self.index.unsqueeze(1).expand(-1, taps, -1))
        return (picked.reshape(c, taps, *self.weights.shape[1:]) * self.weights.unsqueeze(1)).sum(-1)


class LogGridWeight(torch.autograd.Function):
    """W (C, N) = sum_k a_jk g(s_i - s_jk) by gridding; gradients for s_in (N,), s_res (C, K) and a (C, K).

    The position gradients interpolate the convolution with g' itself (not the slope of the interpolant,
    which would amplify the rounding of the single-precision field by about rho)."""

    @staticmethod
    def forward(ctx, s_in, s_res, amplitude, grid: LogGrid):
        compiled = amplitude.device.type == "cpu" and amplitude.dtype == torch.float32 and _loops() is not None
        res = _Stencils(s_res, grid, amplitude.dtype, compiled)
        inp = _Stencils(s_in, grid, amplitude.dtype, compiled)
        a = amplitude.detach()
        # with dW_j[i]/ds_i = sum_k a_jk g'(s_i - s_jk) (kernel 2) when the inputs need a gradient
        taps = [0, 2] if ctx.needs_input_grad[0] else [0]
        out = inp.interpolate(grid.convolve(grid.transform(res.spread(a)), taps))  # (C, 1 or 2, N)
        w, slope = out[:, 0].contiguous(), (out[:, 1] if len(taps) == 2 else None)
        ctx.save_for_backward(slope, a)
        ctx.grid, ctx.stencils = grid, (res, inp)
        return w

    @staticmethod
    def backward(ctx, grad_w):
        slope, a = ctx.saved_tensors
        grid: LogGrid = ctx.grid
        res, inp = ctx.stencils
        grad_in = grad_res = grad_amp = None
        if ctx.needs_input_grad[0]:
            grad_in = (grad_w * slope).sum(0).to(torch.float64)
        if ctx.needs_input_grad[1] or ctx.needs_input_grad[2]:  # the adjoint: spread dLoss/dW, correlate
            # kernel 3 for d/ds_jk = -a_jk sum_i dLoss/dW_ji g'(s_i - s_jk), kernel 1 for the amplitudes
            taps = (
                [3, 1] if ctx.needs_input_grad[1] and ctx.needs_input_grad[2] else [3 if ctx.needs_input_grad[1] else 1]
            )
            sums = res.interpolate(grid.convolve(grid.transform(inp.spread(grad_w)), taps))  # (C, T, K)
            if ctx.needs_input_grad[1]:
                grad_res = (-a * sums[:, 0]).to(torch.float64)
            if ctx.needs_input_grad[2]:
                grad_amp = sums[:, -1]
        return grad_in, grad_res, grad_amp, None


def log_frequency(u: torch.Tensor, params: DeviceParams, n_inputs: int) -> torch.Tensor:
    """s = ln f (float64, differentiable) of comb positions u: exact for float32 positions, which float32
    frequencies are not (their rounding is a few 1e-5 linewidths)."""
    u = u.to(torch.float64)
    if params.plan == FrequencyPlan.GEOMETRIC:
        return math.log(params.f_min_ghz) + u * math.log(physics.comb_ratio(params, n_inputs))
    return torch.log(physics.comb_to_ghz(u, params, n_inputs))


class GridBuild:
    """The log-grid build of one layer: its stencil (chosen once) and a grid that grows to cover the devices."""

    def __init__(self, params: DeviceParams, n_inputs: int, comb_range: tuple[float, float]) -> None:
        self.params = params
        self.alpha, self.phi = params.alpha, params.phi
        span = log_frequency(torch.tensor(comb_range), params, n_inputs)
        choice = choose_stencil(self.alpha, self.phi)
        self.grid: Optional[LogGrid] = None
        if choice is not None:
            self.grid = LogGrid(self.alpha, self.phi, (float(span[0]), float(span[1])), *choice)
        self.available = self.grid is not None and self.grid.size <= MAX_GRID

    def matches(self, params: DeviceParams) -> bool:
        """Whether this build is the one for devices ``params`` (the kernel depends on the damping and phase)."""
        return (params.alpha, params.phi, params.plan, params.f_min_ghz, params.f_max_ghz) == (
            self.alpha,
            self.phi,
            self.params.plan,
            self.params.f_min_ghz,
            self.params.f_max_ghz,
        )

    def cheaper_than_exact(self, n_chains: int, n_inputs: int, n_resonators: int, exact_ns: float = EXACT_NS) -> bool:
        """Whether a build (forward and backward) costs less than the exact one (``exact_ns`` per chain, input
        and resonator: EXACT_NS for the eager build, FUSED_NS for the fused loops), by the measured cost model."""
        grid = self.grid
        if grid is None:
            return False
        f = grid.fft_size
        work = n_chains * (f * math.log2(f) * FFT_NS + (n_inputs + n_resonators) * grid.points * STENCIL_NS)
        return work + OVERHEAD_NS < n_chains * n_inputs * n_resonators * exact_ns

    def weight(self, s_in: torch.Tensor, s_res: torch.Tensor, amplitude: torch.Tensor) -> torch.Tensor:
        """W (C, N) for inputs at log-frequencies s_in (N,) and resonators at s_res (C, K), float64 (the grid
        coordinates need it), with amplitudes (C, K) in the working precision."""
        grid = self.grid
        assert grid is not None, "the log-grid build is used only where it is available"
        lo_in, hi_in = torch.aminmax(s_in.detach())
        lo_res, hi_res = torch.aminmax(s_res.detach())
        lo, hi = min(float(lo_in), float(lo_res)), max(float(hi_in), float(hi_res))
        if not grid.covers(lo, hi):  # devices moved beyond the margin: a grid over the new span
            grid = LogGrid(self.alpha, self.phi, (min(lo, grid.s_lo), max(hi, grid.s_hi)), grid.points, grid.rho)
            self.grid = grid
        return LogGridWeight.apply(s_in, s_res, amplitude, grid)
