"""The exact weight build of an RF chain layer: every input-resonator pair, with analytic gradients.

It is the reference every faster build (engine.layers.fast_weight, grid_weight, compiled_weight) is tested
against, and the fallback where none applies. The physics is engine.physics.resonators'.
"""

from __future__ import annotations

import torch

from engine.physics import resonators as physics

#: Elements of the (chains, resonators, inputs) block the fused weight build processes at once (cache-sized).
CHUNK_ELEMENTS = 1 << 18


class ExactWeight(torch.autograd.Function):
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
