"""exp and log in float32 for numba loops, written so that LLVM vectorises them (numba's own call the C library
one element at a time, about twelve times slower: 2.4 against 0.2 ns an element on one core of the developers'
machine).

Both reduce the argument by powers of two, which they build or read through the float's bits (two small
numba intrinsics), and evaluate a polynomial on what is left:

- :func:`vexp`: exp(x) = 2^n exp(r) with n = round(x / ln 2) and |r| <= ln 2 / 2, exp(r) by its Taylor
  polynomial of degree 7. Arguments are clamped to [-87, 88], where float32 exp stays normal and finite.
  Relative error below 1e-7 over that range (measured on 2^20 points: 7.7e-8).
- :func:`vlog`: log(x) = e ln 2 + log(m) with m in [sqrt(1/2), sqrt(2)), log(m) by the Cephes single-precision
  polynomial. For normal, finite x > 0 only (callers pass sums of exponentials and 1 + a positive term). As
  close to float64 as numpy's float32 log (relative error 7.8e-8 on 2^20 points from 1e-37 to 1e38).

tests/test_plasticity_vectorised.py holds both to 3e-7.

Importing this module imports numba: the loops that use it are compiled lazily, and callers import it only
when numba is available (engine.layers.fused_weight.available). numba's disk cache keys a loop on its own
file only: after editing this one, delete the cached loops of its users (``find engine -name '*.nb[ic]' -delete``).
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic


@intrinsic
def _float_of_bits(typingctx, bits):
    """The float32 whose bits are the int32 ``bits``."""
    sig = types.float32(types.int32)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())

    return sig, codegen


@intrinsic
def _bits_of_float(typingctx, x):
    """The bits of the float32 ``x``, as an int32."""
    sig = types.int32(types.float32)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(32))

    return sig, codegen


_F = np.float32
_I = np.int32


@njit(inline="always", fastmath={"contract"})
def vexp(x):  # pragma: no cover - compiled by numba
    """exp(x) for a float32 x, clamped to [-87, 88] (see the module docstring)."""
    x = min(max(x, _F(-87.0)), _F(88.0))
    n = np.floor(x * _F(1.4426950408889634) + _F(0.5))
    r = x - n * _F(0.693145751953125)  # ln 2 in two parts: the first is exact in float32 times any n here
    r = r - n * _F(1.428606765330187e-06)
    p = _F(1.0 / 5040.0)
    p = p * r + _F(1.0 / 720.0)
    p = p * r + _F(1.0 / 120.0)
    p = p * r + _F(1.0 / 24.0)
    p = p * r + _F(1.0 / 6.0)
    p = p * r + _F(0.5)
    p = p * r + _F(1.0)
    p = p * r + _F(1.0)
    return p * _float_of_bits((_I(n) + _I(127)) << _I(23))


@njit(inline="always", fastmath={"contract"})
def vlog(x):  # pragma: no cover - compiled by numba
    """log(x) for a normal, finite float32 x > 0 (see the module docstring)."""
    bits = _bits_of_float(x)
    e = ((bits >> _I(23)) & _I(255)) - _I(127)
    m = _float_of_bits((bits & _I(0x7FFFFF)) | _I(0x3F800000))  # in [1, 2)
    big = m > _F(1.4142135623730951)
    m = m * _F(0.5) if big else m
    ef = _F(e + _I(1)) if big else _F(e)
    f = m - _F(1.0)
    z = f * f
    p = _F(7.0376836292e-2)
    p = p * f - _F(1.1514610310e-1)
    p = p * f + _F(1.1676998740e-1)
    p = p * f - _F(1.2420140846e-1)
    p = p * f + _F(1.4249322787e-1)
    p = p * f - _F(1.6668057665e-1)
    p = p * f + _F(2.0000714765e-1)
    p = p * f - _F(2.4999993993e-1)
    p = p * f + _F(3.3333331174e-1)
    y = f * z * p - ef * _F(2.12194440e-4) - _F(0.5) * z
    return f + y + ef * _F(0.693359375)
