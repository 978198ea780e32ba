"""The GLU channel mixer W3(SiLU(W1 x) * W2 x) as one autograd node that saves x, W1 x and W2 x only.

SiLU(W1 x) and the product are recomputed in the backward (two elementwise passes) instead of being kept
for every layer: two (B, T, hidden) tensors fewer per layer at the peak of a training step. Dynamo traces
the Function (plain torch ops inside), so torch.compile sees no graph break.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor
from torch.nn import functional as F


class _SiluGlu(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w1, b1, w2, b2, w3, b3):  # type: ignore[override]
        a = F.linear(x, w1, b1)
        v = F.linear(x, w2, b2)
        y = F.linear(F.silu(a) * v, w3.to(a.dtype), None if b3 is None else b3.to(a.dtype))
        ctx.save_for_backward(x, a, v, w1, w2, w3)
        ctx.has_bias = (b1 is not None, b2 is not None, b3 is not None)
        return y

    @staticmethod
    def backward(ctx, dy):  # type: ignore[override]
        x, a, v, w1, w2, w3 = ctx.saved_tensors
        s = F.silu(a)
        flat_dy = dy.reshape(-1, dy.shape[-1])
        d_w3 = flat_dy.t().mm((s * v).reshape(-1, s.shape[-1])).to(w3.dtype)
        d_b3 = flat_dy.sum(0).to(w3.dtype) if ctx.has_bias[2] else None
        dprod = dy.matmul(w3.to(dy.dtype))
        dv = dprod * s
        del s
        da = torch.ops.aten.silu_backward(dprod.mul_(v), a)
        del dprod
        flat_x = x.reshape(-1, x.shape[-1])
        flat_da, flat_dv = da.reshape(-1, da.shape[-1]), dv.reshape(-1, dv.shape[-1])
        dx = None
        if ctx.needs_input_grad[0]:
            dx = da.matmul(w1.to(da.dtype)).add_(dv.matmul(w2.to(dv.dtype))).to(x.dtype)
        d_w1 = flat_da.t().mm(flat_x.to(da.dtype)).to(w1.dtype)
        d_w2 = flat_dv.t().mm(flat_x.to(dv.dtype)).to(w2.dtype)
        d_b1 = flat_da.sum(0).to(w1.dtype) if ctx.has_bias[0] else None
        d_b2 = flat_dv.sum(0).to(w2.dtype) if ctx.has_bias[1] else None
        return dx, d_w1, d_b1, d_w2, d_b2, d_w3, d_b3


def silu_glu(x: Tensor, w1: Tensor, b1: Optional[Tensor], w2: Tensor, b2: Optional[Tensor], w3: Tensor,
             b3: Optional[Tensor]) -> Tensor:
    """F.linear(SiLU(F.linear(x, w1, b1)) * F.linear(x, w2, b2), w3, b3), leaner in the backward."""
    return _SiluGlu.apply(x, w1, b1, w2, b2, w3, b3)
