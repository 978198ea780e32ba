"""The GLU channel mixer W3(SiLU(W1 x) * W2 x) as one autograd node that saves x, W1 x and W2 x only.

SiLU(W1 x) and the product are recomputed in the backward (two elementwise passes) instead of being kept
for every layer: two (B, T, hidden) tensors fewer per layer at the peak of a training step. The backward
runs a block of rows at a time (kernels/row_blocks.py), so its temporaries are never whole (B, T, hidden)
tensors either. Dynamo traces the Function (plain torch ops inside), so torch.compile sees no graph break.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor
from torch.nn import functional as F

from .row_blocks import add_product, row_blocks


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
        hidden = a.shape[-1]
        x2, a2, v2 = x.reshape(-1, x.shape[-1]), a.reshape(-1, hidden), v.reshape(-1, hidden)
        dy2 = dy.reshape(-1, dy.shape[-1])
        dx = x2.new_empty(x2.shape) if ctx.needs_input_grad[0] else None  # contiguous: written a block at a time
        # weight gradients summed block by block in the weights' precision (autocast's products may be lower)
        d_w1, d_w2, d_w3 = (torch.zeros_like(w) for w in (w1, w2, w3))
        d_b1, d_b2 = (torch.zeros(hidden, dtype=w1.dtype, device=w1.device) for _ in range(2))
        w1c, w2c, w3c = w1.to(a.dtype), w2.to(a.dtype), w3.to(dy.dtype)
        for rs in row_blocks(a2.shape[0], hidden):  # block-sized temporaries (kernels/row_blocks.py)
            s = F.silu(a2[rs])
            add_product(d_w3, dy2[rs].t(), s * v2[rs])
            dprod = dy2[rs].mm(w3c)
            dv = dprod * s
            del s
            da = torch.ops.aten.silu_backward(dprod.mul_(v2[rs]), a2[rs])
            del dprod
            if dx is not None and dx.dtype == da.dtype:
                torch.mm(da, w1c, out=dx[rs]).addmm_(dv, w2c)
            elif dx is not None:  # autocast: the products in a lower precision than x
                dx[rs] = da.mm(w1c).addmm_(dv, w2c)
            x_block = x2[rs].to(da.dtype)
            add_product(d_w1, da.t(), x_block)
            add_product(d_w2, dv.t(), x_block)
            d_b1.add_(da.sum(0))
            d_b2.add_(dv.sum(0))
        d_b3 = dy2.sum(0).to(w3.dtype) if ctx.has_bias[2] else None
        return (None if dx is None else dx.view(x.shape), d_w1, d_b1 if ctx.has_bias[0] else None, d_w2,
                d_b2 if ctx.has_bias[1] else None, d_w3, d_b3)


def silu_glu(x: Tensor, w1: Tensor, b1: Optional[Tensor], w2: Tensor, b2: Optional[Tensor], w3: Tensor,
             b3: Optional[Tensor]) -> Tensor:
    """F.linear(SiLU(F.linear(x, w1, b1)) * F.linear(x, w2, b2), w3, b3), leaner in the backward."""
    return _SiluGlu.apply(x, w1, b1, w2, b2, w3, b3)
