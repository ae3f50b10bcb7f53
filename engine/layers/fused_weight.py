"""The exact weight build as fused CPU loops (numba): every input-resonator pair, one pass for W, one for its
gradients.

The formula is engine.layers.exact_weight's, W (C, N) = sum_k s_k K_SD_jk L(x(f_i, f_jk)), and so are the
gradients with respect to the input and resonance frequencies. The eager build runs about eight tensor passes
over the (C, K, N) block and keeps the lineshape's slope as a block for the backward pass; here the detuning,
the lineshape and its slope live in registers: the forward loop writes W only, and the backward loop
recomputes the slope while it sums the gradients. Loops are compiled once per machine by numba (a second or two,
cached on disk afterwards) and run in float32 like the eager build. The sum over resonators is taken in order;
the gradient's sums over inputs are vectorised (numba's ``reassoc`` flag), so they differ from the eager
build's in float rounding: tests/test_fused_weight.py holds the two to 1e-5 of max|W| and of the gradients.

Used by the 'auto' build on CPU float32 tensors when numba imports (engine.layers.chain); the eager
:class:`~engine.layers.exact_weight.ExactWeight` stays the reference ('exact') and the fallback.
"""

from __future__ import annotations

import functools
from typing import Any, Optional

import numpy as np
import torch

from engine.physics import resonators as physics

#: Fast-math flags of the loops: reassociation (vectorised sums) and fused multiply-adds, never approximate
#: reciprocals or functions, and NaN/infinity semantics kept.
FASTMATH = {"reassoc", "contract", "nsz"}


def compile_loops(*functions: Any, fastmath: Any = False) -> Optional[tuple[Any, ...]]:
    """These plain-Python loops compiled by numba (lazily, at their first call; cached on disk), or None when
    numba does not import. ``fastmath``: numba's flags (False: IEEE arithmetic, the same bits as torch's
    elementwise operations in the same order)."""
    try:  # numba is a dependency, but a missing or broken one only costs speed: the eager code remains
        import numba  # a heavy import (LLVM), made when fused loops are first needed
    except Exception:  # noqa: BLE001 - any import failure (missing, ABI mismatch) means "not available"
        return None
    jit = numba.njit(cache=True, fastmath=fastmath, nogil=True, error_model="numpy")
    return tuple(jit(f) for f in functions)


@functools.cache
def kernels() -> Optional[tuple[Any, ...]]:
    """The compiled loops (forward, backward with input gradient, backward without, couplings), or None
    without numba."""
    return compile_loops(
        _forward, _backward_both, _backward_resonators, _couplings, _sample_voltages, fastmath=FASTMATH
    )


def available() -> bool:
    """Whether the fused loops can be used on this machine (numba imports)."""
    return kernels() is not None


def _forward(f_in, f_res, alpha, amp, c_xd, c_d, w):  # pragma: no cover - compiled by numba, invisible to coverage
    """W[c, n] = sum_k amp[c, k] (c_xd x d + c_d d), with x = (f_in[n] - f_res[c, k]) a, a = 1/(alpha f_res),
    d = 1/(1+x^2)."""
    n_chains, n_res = f_res.shape
    n_in = f_in.shape[0]
    one = np.float32(1.0)
    for c in range(n_chains):
        row = w[c]
        for n in range(n_in):
            row[n] = np.float32(0.0)
        for k in range(n_res):
            fr = f_res[c, k]
            ak = one / (alpha[c, k] * fr)
            axd, ad = amp[c, k] * c_xd, amp[c, k] * c_d
            for n in range(n_in):
                x = (f_in[n] - fr) * ak
                d = one / (one + x * x)
                row[n] += axd * (x * d) + ad * d


def _backward_both(f_in, f_res, alpha, amp, grad_w, cos_phi, sin_phi, grad_in, grad_res):  # pragma: no cover
    """Gradients of W for the input frequencies (grad_in, N) and the resonance frequencies (grad_res, C, K).
    With h = dL/dx / 2, dx/df = a and dx/df_r = -a f / f_r: grad_res[c, k] = -2 amp a / f_r sum_n h grad_w[c, n]
    f_in[n] and grad_in[n] = sum_c grad_w[c, n] sum_k 2 amp a h."""
    n_chains, n_res = f_res.shape
    n_in = f_in.shape[0]
    one, two = np.float32(1.0), np.float32(2.0)
    for n in range(n_in):
        grad_in[n] = np.float32(0.0)
    for c in range(n_chains):
        g = grad_w[c]
        for k in range(n_res):
            fr = f_res[c, k]
            ak = one / (alpha[c, k] * fr)
            ci = two * amp[c, k] * ak
            acc = np.float32(0.0)
            for n in range(n_in):
                x = (f_in[n] - fr) * ak
                d = one / (one + x * x)
                xd = x * d
                gh = g[n] * (cos_phi * (d - two * xd * xd) - sin_phi * xd * d)
                acc += gh * f_in[n]
                grad_in[n] += ci * gh
            grad_res[c, k] = acc * (two * amp[c, k] * (-ak / fr))


def _backward_resonators(f_in, f_res, alpha, amp, grad_w, cos_phi, sin_phi, grad_res):  # pragma: no cover
    """:func:`_backward_both` without the input gradient (inputs not trained)."""
    n_chains, n_res = f_res.shape
    n_in = f_in.shape[0]
    one, two = np.float32(1.0), np.float32(2.0)
    for c in range(n_chains):
        g = grad_w[c]
        for k in range(n_res):
            fr = f_res[c, k]
            ak = one / (alpha[c, k] * fr)
            acc = np.float32(0.0)
            for n in range(n_in):
                x = (f_in[n] - fr) * ak
                d = one / (one + x * x)
                xd = x * d
                acc += g[n] * (cos_phi * (d - two * xd * xd) - sin_phi * xd * d) * f_in[n]
            grad_res[c, k] = acc * (two * amp[c, k] * (-ak / fr))


def _couplings(f_in, f_res, alpha, amp, c_xd, c_d, out):  # pragma: no cover - compiled by numba
    """out[c, k, n] = amp[c, k] (c_xd x d + c_d d): every resonator's coupling to every input (no gradient)."""
    n_chains, n_res = f_res.shape
    n_in = f_in.shape[0]
    one = np.float32(1.0)
    for c in range(n_chains):
        for k in range(n_res):
            fr = f_res[c, k]
            ak = one / (alpha[c, k] * fr)
            axd, ad = amp[c, k] * c_xd, amp[c, k] * c_d
            row = out[c, k]
            for n in range(n_in):
                x = (f_in[n] - fr) * ak
                d = one / (one + x * x)
                row[n] = axd * (x * d) + ad * d


def _sample_voltages(f_in, f_res, alpha, amp, c_xd, c_d, power, out):  # pragma: no cover - numba-compiled
    """out[b, c] = sum_n power[b, n] sum_k amp[c, k] L(x): each sample b read out with its own input (B, N)
    and resonance (B, C, K) frequencies, over the inputs that emit (power not 0: a dark pixel adds nothing)."""
    n_b, n_chains, n_res = f_res.shape
    n_in = f_in.shape[1]
    one = np.float32(1.0)
    lit_f = np.empty(n_in, dtype=np.float32)
    lit_p = np.empty(n_in, dtype=np.float32)
    for b in range(n_b):
        m = 0
        for n in range(n_in):  # the emitting inputs, listed without a branch
            p = power[b, n]
            lit_f[m] = f_in[b, n]
            lit_p[m] = p
            m += p != 0.0
        for c in range(n_chains):
            acc = np.float32(0.0)
            for k in range(n_res):
                fr = f_res[b, c, k]
                ak = one / (alpha[c, k] * fr)
                axd, ad = amp[c, k] * c_xd, amp[c, k] * c_d
                for e in range(m):
                    x = (lit_f[e] - fr) * ak
                    d = one / (one + x * x)
                    acc += (axd * (x * d) + ad * d) * lit_p[e]
            out[b, c] = acc


def sample_voltages(
    f_in: torch.Tensor,
    f_res: torch.Tensor,
    alpha: "torch.Tensor | float",
    amplitude: torch.Tensor,
    phi: float,
    power: torch.Tensor,
) -> torch.Tensor:
    """Chain voltages (B, C) with every sample read out at its own frequencies: inputs f_in (B, N), resonances
    f_res (B, C, K), dampings alpha (C, K or a float), amplitudes (C, K), powers (B, N) in µW; no gradients.
    One pass, without the (B, C, K, N) block; the tensors must pass :func:`applies`."""
    loops = kernels()
    assert loops is not None, "sample_voltages() needs the fused loops (check applies() first)"
    devices = _device_arrays(tuple(f_res.shape[1:]), alpha, amplitude, phi)
    out = f_in.new_empty(f_res.shape[0], f_res.shape[1])
    loops[4](numpy_view(f_in), numpy_view(f_res), *devices, numpy_view(power), out.numpy())
    return out


def couplings(
    f_in: torch.Tensor, f_res: torch.Tensor, alpha: "torch.Tensor | float", amplitude: torch.Tensor, phi: float
) -> torch.Tensor:
    """Every resonator's signed coupling to every input, (C, K, N) (physics.coupling_tensor's values, without
    gradients), in one pass; the tensors must pass :func:`applies`."""
    loops = kernels()
    assert loops is not None, "couplings() needs the fused loops (check applies() first)"
    out = f_in.new_empty(*f_res.shape, f_in.shape[0])
    devices = _device_arrays(tuple(f_res.shape), alpha, amplitude, phi)
    loops[3](numpy_view(f_in), numpy_view(f_res), *devices, out.numpy())
    return out


def applies(*tensors: torch.Tensor) -> bool:
    """Whether the fused loops can take these tensors: float32 on the CPU (and numba available)."""
    for t in tensors:
        if t.dtype != torch.float32 or t.device.type != "cpu":
            return False
    return available()


@functools.lru_cache(maxsize=16)
def _trig(phi: float) -> tuple[np.float32, np.float32]:
    """(cos(phi), sin(phi)) in float32, as the backward loops take them."""
    return np.float32(np.cos(phi)), np.float32(np.sin(phi))


def numpy_view(t: torch.Tensor) -> np.ndarray:
    """A contiguous numpy view of a CPU tensor (no copy when it is already contiguous)."""
    return t.detach().contiguous().numpy()


def _device_arrays(
    shape: tuple[int, ...], alpha: "torch.Tensor | float", amplitude: torch.Tensor, phi: float
) -> tuple[np.ndarray, np.ndarray, np.float32, np.float32]:
    """What every loop takes about the resonators of a (C, K) layer: dampings and amplitudes as (C, K) arrays,
    and the lineshape's coefficients (2 cos(phi), sin(phi)) in float32."""
    alpha_a = numpy_view(alpha) if isinstance(alpha, torch.Tensor) else _filled(shape, float(alpha))
    c_xd, c_d = physics.lineshape_coefficients(phi)
    return alpha_a, numpy_view(amplitude.expand(shape)), np.float32(c_xd), np.float32(c_d)


@functools.lru_cache(maxsize=16)
def _filled(shape: tuple[int, ...], value: float) -> np.ndarray:
    """A read-only float32 array of this shape filled with ``value`` (one damping for every resonator)."""
    a = np.full(shape, value, dtype=np.float32)
    a.flags.writeable = False
    return a


def weight_and_devices(
    f_in: torch.Tensor, f_res: torch.Tensor, alpha: "torch.Tensor | float", amplitude: torch.Tensor, phi: float
) -> tuple[torch.Tensor, tuple]:
    """(W (C, N) by the forward loop, what :func:`frequency_gradients` needs of the devices: their dampings'
    and amplitudes' arrays and phi); callers check :func:`applies` first."""
    devices = _device_arrays(tuple(f_res.shape), alpha, amplitude, phi)
    loops = kernels()
    assert loops is not None, "the fused build needs the fused loops (check applies() first)"
    w = f_in.new_empty(f_res.shape[0], f_in.shape[0])
    loops[0](numpy_view(f_in), numpy_view(f_res), *devices, w.numpy())
    return w, (*devices[:2], phi)


def frequency_gradients(
    devices: tuple, f_in: torch.Tensor, f_res: torch.Tensor, grad_w: torch.Tensor, with_inputs: bool
) -> tuple[Optional[torch.Tensor], torch.Tensor]:
    """(dL/df_in (N,) or None without ``with_inputs``, dL/df_res (C, K)) for dL/dW ``grad_w``, by the backward
    loops, for the ``devices`` that :func:`weight_and_devices` returned with W."""
    loops = kernels()
    assert loops is not None, "the fused build needs the fused loops (check applies() first)"
    _, both, resonators_only = loops[:3]
    alpha_a, amp_a, phi = devices
    arrays = (numpy_view(f_in), numpy_view(f_res), alpha_a, amp_a, numpy_view(grad_w), *_trig(phi))
    grad_res = torch.empty_like(f_res)
    grad_in = None
    if with_inputs:
        grad_in = torch.empty_like(f_in)
        both(*arrays, grad_in.numpy(), grad_res.numpy())
    else:
        resonators_only(*arrays, grad_res.numpy())
    return grad_in, grad_res


class FusedWeight(torch.autograd.Function):
    """W (C, N) from input frequencies f_in (N,), resonance frequencies f_res (C, K), dampings alpha (C, K or a
    float) and amplitudes s_k K_SD (C, K), with the gradients for f_in and f_res (see the module docstring)."""

    @staticmethod
    def forward(ctx, f_in, f_res, alpha, amplitude, phi):
        ctx.save_for_backward(f_in, f_res)
        w, ctx.devices = weight_and_devices(f_in, f_res, alpha, amplitude, phi)
        return w

    @staticmethod
    def backward(ctx, grad_w):
        f_in, f_res = ctx.saved_tensors
        grad_in, grad_res = frequency_gradients(ctx.devices, f_in, f_res, grad_w, ctx.needs_input_grad[0])
        return grad_in, grad_res if ctx.needs_input_grad[1] else None, None, None, None


def chain_product(w: torch.Tensor, power: torch.Tensor) -> torch.Tensor:
    """P W^T (..., C) for weights W (C, N) and powers P (..., N), computed as (W P^T)^T: MKL multiplies a batch by a
    few chains' weights up to twice as fast this way round. Made contiguous, so that what follows (and its
    rounding) does not depend on the layout. With gradients, one autograd node whose backward takes the usual
    products (through the transposes, autograd's own took up to a third longer for a hidden layer)."""
    if torch.is_grad_enabled() and (w.requires_grad or power.requires_grad):
        return _ChainProduct.apply(w, power)
    return _product(w, power)


def _product(w: torch.Tensor, power: torch.Tensor) -> torch.Tensor:
    return (w @ power.transpose(-1, -2)).transpose(-1, -2).contiguous()


class _ChainProduct(torch.autograd.Function):
    """:func:`chain_product` with gradients: dL/dW = G^T P and dL/dP = G W for G = dL/dV."""

    @staticmethod
    def forward(ctx, w, power):
        ctx.save_for_backward(w, power)
        return _product(w, power)

    @staticmethod
    def backward(ctx, grad_v):
        w, power = ctx.saved_tensors
        grad_w = grad_p = None
        if ctx.needs_input_grad[0]:
            flat_g, flat_p = grad_v.reshape(-1, grad_v.shape[-1]), power.reshape(-1, power.shape[-1])
            grad_w = flat_g.t() @ flat_p
        if ctx.needs_input_grad[1]:
            grad_p = grad_v @ w
        return grad_w, grad_p


class FusedVoltages(torch.autograd.Function):
    """Chain voltages V (B, C) = P W^T for input powers P (B, N) in µW, with W built by the fused loops from
    the devices' comb positions: one autograd node for what is otherwise about a dozen (the comb-to-frequency
    map of each device, W, the product), whose fixed costs dominate a small layer's training step.

    For devices that sit exactly at their comb positions (no offsets, quantisation or jitter) with one
    damping ``alpha`` and amplitudes s_k K_SD (C, K); ``f_in`` holds the inputs' frequencies when their positions
    are not trained (None: computed from ``u_in``). The backward pass differentiates the comb map by hand
    (physics.comb_slope_ghz). ``sink``, when given, receives dL/dW (C, N) (the rewiring rounds sum it)."""

    @staticmethod
    def forward(ctx, power, u_in, u_res, f_in, amplitude, alpha, phi, params, sink):
        n = u_in.shape[0]
        if f_in is None:
            f_in = physics.comb_to_ghz(u_in, params, n)
        f_res = physics.comb_to_ghz(u_res, params, n)
        w, ctx.devices = weight_and_devices(f_in, f_res, alpha, amplitude, phi)
        ctx.save_for_backward(power, f_in, f_res, w)
        ctx.params, ctx.sink = params, sink
        return chain_product(w, power)

    @staticmethod
    def backward(ctx, grad_v):
        power, f_in, f_res, w = ctx.saved_tensors
        grad_w = torch.mm(grad_v.t(), power)  # (C, N)
        if ctx.sink is not None:
            ctx.sink(grad_w)
        grad_u_in, grad_f_res = frequency_gradients(ctx.devices, f_in, f_res, grad_w, ctx.needs_input_grad[1])
        n = f_in.shape[0]
        if grad_u_in is not None:  # d/du = d/df df/du, in numpy: no tensor op per step
            grad_u_in.numpy()[:] *= physics.comb_slope_ghz(numpy_view(f_in), ctx.params, n)
        grad_f_res.numpy()[:] *= physics.comb_slope_ghz(numpy_view(f_res), ctx.params, n)
        grad_power = torch.mm(grad_v, w) if ctx.needs_input_grad[0] else None
        grad_u_res = grad_f_res if ctx.needs_input_grad[2] else None
        return grad_power, grad_u_in, grad_u_res, None, None, None, None, None, None
