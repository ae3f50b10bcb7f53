"""A weight build that does not cost C·N·K: W as a convolution, for shift-invariant devices.

With a geometric frequency plan and one damping for every resonator, the detuning between input oscillator
i (comb position v_i) and resonator k (comb position u) depends only on their distance on the comb:

    x = (f_i - f_r) / (alpha f_r) = (r^(v_i - u) - 1) / alpha,          r = the plan's frequency ratio,

so a resonator's coupling to input i is a_k g(v_i - u_k) with one kernel g(d) = L(x(d)) for every resonator
(a_k = s_k K_SD,k, its sign and sensitivity). When the inputs sit at their nominal positions v_i = i (models
that do not train input frequencies), a chain's weights are a sum of shifted copies of g sampled at the
integers:

    W_j[n] = sum_k a_jk g(n - u_jk).

Write u = m + delta with m = round(u) and |delta| <= 1/2. On that interval, delta -> g(e - delta) is smooth
(the kernel's poles lie about one linewidth, in comb units, off the real axis), so a Chebyshev expansion of
degree Q converges geometrically: g(e - delta) ~= sum_q T_q(2 delta) c_q(e). Then

    W_j[n] = sum_q sum_m S_jq[m] c_q(n - m),      S_jq[m] = sum_{k: m_jk = m} a_jk T_q(2 delta_jk),

Q discrete convolutions of spike trains with fixed kernels, done with FFTs in O(C Q N log N) instead of
O(C K N). The gradient with respect to u is the exact derivative of the same expansion, a correlation of
dL/dW with the c_q, also by FFT. Q is chosen at set-up so that the expansion reproduces g and g' within
``KERNEL_RTOL`` of their peaks on every offset the layer can reach (checked against the exact lineshape of
engine.physics.resonators); where that would need more than ``MAX_DEGREE`` terms the build is not offered. Devices
off their comb slots (trained input frequencies, a linear plan, fabrication offsets, jitter) go to the log-frequency
grid build of engine.layers.grid_weight; the exact build (engine.layers.chain) stays the reference and the
fallback (a damping spread).
"""

from __future__ import annotations

import functools
import math
from typing import Optional, cast

import numpy as np
import torch

from engine.layers.fused_weight import compile_loops, numpy_view
from engine.physics import resonators as physics
from engine.physics.resonators import DeviceParams

#: Largest error of the expansion of g (and of its derivative) on the reachable offsets, relative to peak |g|.
KERNEL_RTOL = 1e-8
#: Largest number of Chebyshev terms tried before giving up on the fast build.
MAX_DEGREE = 40
#: Fractional shifts checked when choosing the degree.
CHECK_POINTS = 41


def _chebyshev(t: torch.Tensor, degree: int) -> tuple[torch.Tensor, torch.Tensor]:
    """T_q(t) and dT_q/dt for q < degree, stacked on a new last axis."""
    ts, dts = [torch.ones_like(t), t], [torch.zeros_like(t), torch.ones_like(t)]
    us = [torch.ones_like(t), 2 * t]  # Chebyshev polynomials of the second kind: T_q' = q U_(q-1)
    for q in range(2, degree):
        ts.append(2 * t * ts[-1] - ts[-2])
        dts.append(q * us[-1])
        us.append(2 * t * us[-1] - us[-2])
    return torch.stack(ts[:degree], -1), torch.stack(dts[:degree], -1)


def _chebyshev_at(t: torch.Tensor, degree: int) -> tuple[torch.Tensor, torch.Tensor]:
    """T_q(t) and dT_q/dt for q < degree on a new last axis, through T_q = cos(q theta), t = cos(theta): a
    handful of tensor passes (the training hot path). At t = +-1, dT_q/dt takes its limit (+-1)^(q+1) q^2."""
    q = torch.arange(degree, dtype=t.dtype, device=t.device)
    theta = torch.acos(t.clamp(-1.0, 1.0)).unsqueeze(-1)
    q_theta = theta * q
    tq = torch.cos(q_theta)
    sin_theta = torch.sin(theta)
    edge = sin_theta.abs() < 1e-4
    limit = torch.where(t.unsqueeze(-1) > 0, q * q, (-1.0) ** (q + 1) * q * q)
    dtq = torch.where(edge, limit, q * torch.sin(q_theta) / torch.where(edge, torch.ones_like(sin_theta), sin_theta))
    return tq, dtq


def kernel(d: torch.Tensor, params: DeviceParams, n_inputs: int) -> torch.Tensor:
    """g(d): the normalised coupling of a unit resonator to an input d comb units above it
    (engine.physics.resonators)."""
    f_r = physics.comb_to_ghz(torch.zeros((), dtype=d.dtype), params, n_inputs)
    x = physics.detuning(physics.comb_to_ghz(d, params, n_inputs), f_r, params.alpha)
    return physics.lineshape(x, params.phi)


class ShiftKernel:
    """The Chebyshev-in-shift expansion of g over a layer's reachable offsets, and its FFT plans."""

    def __init__(self, params: DeviceParams, n_inputs: int, comb_range: tuple[float, float]) -> None:
        self.n_inputs = n_inputs
        self.m_min = int(math.floor(comb_range[0] + 0.5))
        self.m_max = int(math.floor(comb_range[1] + 0.5))
        self.n_sites = self.m_max - self.m_min + 1  # integer resonator sites m
        # offsets e = n - m for n in [0, N), m in [m_min, m_max]
        self.e_min = -self.m_max
        self.n_offsets = n_inputs + self.n_sites - 1
        e = torch.arange(self.n_offsets, dtype=torch.float64) + self.e_min
        self.degree, coeffs = self._choose_degree(e, params, n_inputs)
        self.available = self.degree is not None
        if coeffs is None:  # exactly when there is no degree
            return
        self.fft_size = fast_size(self.n_offsets)
        # single precision from here: the expansion error (KERNEL_RTOL) is far below float32 rounding
        self.kernel_fft = torch.fft.rfft(coeffs.t().contiguous(), n=self.fft_size).to(torch.complex64)

    def kernel_fft_on(self, device: torch.device) -> torch.Tensor:
        """The kernels' spectra on ``device`` (copied there once)."""
        if self.kernel_fft.device != device:
            self._on = getattr(self, "_on", {})
            if device not in self._on:
                self._on[device] = self.kernel_fft.to(device)
            return self._on[device]
        return self.kernel_fft

    @staticmethod
    def _coefficients(e: torch.Tensor, params: DeviceParams, n_inputs: int, q: int) -> torch.Tensor:
        """c_q(e) (E, Q): the Chebyshev coefficients of delta -> g(e - delta) on |delta| <= 1/2, from g at the
        Q Chebyshev nodes."""
        nodes = torch.cos(math.pi * (torch.arange(q, dtype=torch.float64) + 0.5) / q)  # t in [-1, 1]
        samples = kernel(e.view(-1, 1) - 0.5 * nodes.view(1, -1), params, n_inputs)  # g(e - t/2): (E, Q)
        tq, _ = _chebyshev(nodes, q)  # (Q nodes, Q terms)
        weight = torch.full((q,), 2.0 / q, dtype=torch.float64)
        weight[0] = 1.0 / q
        return (samples @ tq) * weight

    @staticmethod
    def _choose_degree(
        e: torch.Tensor, params: DeviceParams, n_inputs: int
    ) -> tuple[Optional[int], Optional[torch.Tensor]]:
        """The smallest even degree whose expansion meets KERNEL_RTOL, with its coefficients (None, None if
        none up to MAX_DEGREE does)."""
        delta = torch.linspace(-0.5, 0.5, CHECK_POINTS, dtype=torch.float64)
        with torch.enable_grad():  # the kernel may first be needed inside a no_grad evaluation
            shifted = (e.view(-1, 1) - delta.view(1, -1)).requires_grad_(True)
            exact = kernel(shifted, params, n_inputs)
            (exact_d,) = torch.autograd.grad(exact.sum(), shifted)
        exact, exact_d = exact.detach(), -exact_d.detach()  # d/d(delta) g(e - delta) = -g'(e - delta)
        peak, peak_d = float(exact.abs().max()), float(exact_d.abs().max())
        for q in range(4, MAX_DEGREE + 1, 2):
            coeffs = ShiftKernel._coefficients(e, params, n_inputs, q)  # (E, Q)
            t_eval, dt_eval = _chebyshev(2 * delta, q)  # (D, Q)
            approx = coeffs @ t_eval.t()  # (E, D)
            approx_d = 2 * coeffs @ dt_eval.t()
            err = float((approx - exact).abs().max()) / peak
            err_d = float((approx_d - exact_d).abs().max()) / peak_d
            if err <= KERNEL_RTOL and err_d <= 10 * KERNEL_RTOL:
                return q, coeffs
        return None, None


def fast_size(n: int) -> int:
    """The smallest 2^a 3^b 5^c at least n (sizes the FFT library handles fastest)."""
    best = 1 << max(0, (n - 1).bit_length())
    p5 = 1
    while p5 < 2 * n:
        p35 = p5
        while p35 < 2 * n:
            size = p35
            while size < n:
                size *= 2
            best = min(best, size)
            p35 *= 3
        p5 *= 5
    return best


def _spikes(u, amplitude, m_min, n_sites, spikes, dtq, site):  # pragma: no cover - compiled by numba
    """The spike trains S_jq[m] (C, Q, sites) of resonators at comb positions u (C, K) with amplitudes a, into
    ``spikes`` (zeroed here); their T_q'(t) (C, K, Q) into ``dtq`` and site indices (C, K) into ``site``, for the
    gradient. T_q and T_q' = q U_(q-1) by their recurrences, in float64 (exact at t = +-1, where the
    trigonometric form needs its limit)."""
    n_chains, n_res = u.shape
    degree = dtq.shape[2]
    spikes[:] = 0.0
    for c in range(n_chains):
        for k in range(n_res):
            m = np.floor(np.float64(u[c, k]) + 0.5)
            t = 2.0 * (np.float64(u[c, k]) - m)
            s = min(max(np.int64(m) - m_min, 0), n_sites - 1)
            site[c, k] = s
            a = np.float64(amplitude[c, k])
            t_prev, t_cur = 1.0, t  # T_0, T_1
            u_prev, u_cur = 0.0, 1.0  # U_(-1), U_0
            for q in range(degree):
                if q == 0:
                    tq, dq = 1.0, 0.0
                else:
                    tq, dq = t_cur, q * u_cur
                    t_prev, t_cur = t_cur, 2.0 * t * t_cur - t_prev
                    u_prev, u_cur = u_cur, 2.0 * t * u_cur - u_prev
                spikes[c, q, s] += np.float32(a * tq)
                dtq[c, k, q] = dq


def _position_gradient(corr, site, amplitude, dtq, n_sites, out):  # pragma: no cover - compiled by numba
    """out[j, k] = 2 a_jk sum_q T_q'(t_jk) R_jq[s_jk], with R_jq[s] = corr[j, q, n_sites - 1 - s]."""
    n_chains, n_res = site.shape
    degree = dtq.shape[2]
    for c in range(n_chains):
        for k in range(n_res):
            p = n_sites - 1 - site[c, k]
            acc = np.float32(0.0)
            for q in range(degree):
                acc += dtq[c, k, q] * corr[c, q, p]
            out[c, k] = np.float32(2.0) * amplitude[c, k] * acc


@functools.cache
def _loops():
    """The compiled spike and gradient loops, or None without numba."""
    return compile_loops(_spikes, _position_gradient)


class ShiftInvariantWeight(torch.autograd.Function):
    """W (C, N) = sum_k a_jk g(n - u_jk) for inputs at n = 0..N-1, by Chebyshev expansion and FFT; gradient
    with respect to the resonator positions u (C, K) only (the amplitudes a are not trained). On the CPU in
    float32 the spike trains and the position gradient are compiled loops; elsewhere torch's steps."""

    @staticmethod
    def forward(ctx, u: torch.Tensor, amplitude: torch.Tensor, plan: ShiftKernel) -> torch.Tensor:
        c, k = u.shape
        q = cast(int, plan.degree)  # a plan is used only where it is available, i.e. has a degree
        u = u.detach()
        a = amplitude.detach()
        loops = _loops() if u.device.type == "cpu" and u.dtype == a.dtype == torch.float32 else None
        if loops is not None:
            spikes = u.new_empty(c, q, plan.n_sites)
            dtq = u.new_empty(c, k, q)
            site = torch.empty(c, k, dtype=torch.long)
            loops[0](numpy_view(u), numpy_view(a), plan.m_min, plan.n_sites, spikes.numpy(), dtq.numpy(), site.numpy())
        else:
            m = torch.floor(u + 0.5)
            tq, dtq = _chebyshev_at(2.0 * (u - m), q)  # (C, K, Q), t = 2 delta in [-1, 1]
            site = (m.long() - plan.m_min).clamp_(0, plan.n_sites - 1)  # (C, K)
            spikes = u.new_zeros(c, plan.n_sites, q)
            spikes.scatter_add_(1, site.unsqueeze(-1).expand(c, k, q), a.unsqueeze(-1) * tq)
            spikes = spikes.transpose(1, 2)
        spectrum = torch.fft.rfft(spikes, n=plan.fft_size)  # (C, Q, F/2 + 1)
        total = (spectrum * plan.kernel_fft_on(u.device)).sum(1)
        w = torch.fft.irfft(total, n=plan.fft_size)[:, plan.n_sites - 1 : plan.n_sites - 1 + plan.n_inputs]
        ctx.save_for_backward(site, a, dtq)
        ctx.plan, ctx.compiled = plan, loops is not None
        return w.contiguous()

    @staticmethod
    def backward(ctx, grad_w: torch.Tensor):
        site, a, dtq = ctx.saved_tensors
        plan: ShiftKernel = ctx.plan
        g = torch.fft.rfft(grad_w, n=plan.fft_size)  # (C, F/2 + 1)
        corr = torch.fft.irfft(g.conj().unsqueeze(1) * plan.kernel_fft_on(grad_w.device), n=plan.fft_size)
        # corr[j, q, p] = sum_n G_j[n] c_q(n - m) for site index s = n_sites - 1 - p
        if ctx.compiled:
            grad_u = torch.empty_like(a)
            _loops()[1](corr.numpy(), site.numpy(), numpy_view(a), dtq.numpy(), plan.n_sites, grad_u.numpy())
            return grad_u, None, None
        r = corr[:, :, : plan.n_sites].flip(-1)  # (C, Q, n_sites): R_jq[s]
        picked = r.gather(2, site.unsqueeze(1).expand(-1, r.shape[1], -1))  # (C, Q, K)
        grad_u = a * 2.0 * (dtq * picked.transpose(1, 2)).sum(-1)
        return grad_u, None, None
