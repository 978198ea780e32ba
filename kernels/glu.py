"""The GLU channel mixer W3(SiLU(W1 x) * W2 x) as one autograd node that saves x, W1 x and W2 x only.

SiLU(W1 x) and the product are recomputed in the backward (two elementwise passes) instead of being kept
for every layer: two (B, T, hidden) tensors fewer per layer at the peak of a training step. The backward
runs a block of rows at a time (kernels/row_blocks.py), so its temporaries are never whole (B, T, hidden)
tensors either. With ``recompute``, W1 x and W2 x are not kept either: the forward and the backward project
them a block of rows at a time (two more matrix products in the backward), so only x is saved. Not under
autocast, whose lower precision the backward (which runs outside it) would not reproduce: there they are
kept as without ``recompute``. Dynamo
traces the Function (plain torch ops inside), so torch.compile sees no graph break.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor
from torch.nn import functional as F

from .row_blocks import add_product, row_blocks


def _blocked_forward(x: Tensor, w1, b1, w2, b2, w3, b3) -> Tensor:
    """W3(SiLU(W1 x) * W2 x) a block of rows at a time: W1 x and W2 x are never whole."""
    x2 = x.reshape(-1, x.shape[-1])
    hidden = w1.shape[0]
    y = None
    for rs in row_blocks(x2.shape[0], hidden):
        a = F.linear(x2[rs], w1, b1)
        part = F.linear(F.silu(a) * F.linear(x2[rs], w2, b2), w3.to(a.dtype), None if b3 is None else b3.to(a.dtype))
        if y is None:
            y = part.new_empty((x2.shape[0], w3.shape[0]))
        y[rs] = part
    return y.view(*x.shape[:-1], w3.shape[0])


class _SiluGlu(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w1, b1, w2, b2, w3, b3, recompute):  # type: ignore[override]
        ctx.has_bias = (b1 is not None, b2 is not None, b3 is not None)
        if recompute and not torch.is_autocast_enabled(x.device.type):
            ctx.save_for_backward(x, w1, b1, w2, b2, w3)
            ctx.recompute = True
            return _blocked_forward(x, w1, b1, w2, b2, w3, b3)
        a = F.linear(x, w1, b1)
        v = F.linear(x, w2, b2)
        y = F.linear(F.silu(a) * v, w3.to(a.dtype), None if b3 is None else b3.to(a.dtype))
        ctx.save_for_backward(x, a, v, w1, w2, w3)
        ctx.recompute = False
        return y

    @staticmethod
    def backward(ctx, dy):  # type: ignore[override]
        if ctx.recompute:
            x, w1, b1, w2, b2, w3 = ctx.saved_tensors
            a = v = None
        else:
            x, a, v, w1, w2, w3 = ctx.saved_tensors
        hidden = w1.shape[0]
        x2 = x.reshape(-1, x.shape[-1])
        a2 = None if a is None else a.reshape(-1, hidden)
        v2 = None if v is None else v.reshape(-1, hidden)
        dy2 = dy.reshape(-1, dy.shape[-1])
        dx = x2.new_empty(x2.shape) if ctx.needs_input_grad[0] else None  # contiguous: written a block at a time
        # weight gradients summed block by block in the weights' precision (autocast's products may be lower)
        d_w1, d_w2, d_w3 = (torch.zeros_like(w) for w in (w1, w2, w3))
        d_b1, d_b2 = (torch.zeros(hidden, dtype=w1.dtype, device=w1.device) for _ in range(2))
        w3c = w3.to(dy.dtype)
        for rs in row_blocks(x2.shape[0], hidden):  # block-sized temporaries (kernels/row_blocks.py)
            if a2 is None:  # projected again, as the forward did (never under autocast: see forward)
                a_block, v_block = F.linear(x2[rs], w1, b1), F.linear(x2[rs], w2, b2)
            else:
                a_block, v_block = a2[rs], v2[rs]
            w1c, w2c = w1.to(a_block.dtype), w2.to(a_block.dtype)
            s = F.silu(a_block)
            add_product(d_w3, dy2[rs].t(), s * v_block)
            dprod = dy2[rs].mm(w3c)
            dv = dprod * s
            del s
            da = torch.ops.aten.silu_backward(dprod.mul_(v_block), a_block)
            del dprod, a_block, v_block
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
                d_b2 if ctx.has_bias[1] else None, d_w3, d_b3, None)


def silu_glu(x: Tensor, w1: Tensor, b1: Optional[Tensor], w2: Tensor, b2: Optional[Tensor], w3: Tensor,
             b3: Optional[Tensor], recompute: bool = False) -> Tensor:
    """F.linear(SiLU(F.linear(x, w1, b1)) * F.linear(x, w2, b2), w3, b3), leaner in the backward; with
    ``recompute`` W1 x and W2 x are projected again there instead of being kept."""
    return _SiluGlu.apply(x, w1, b1, w2, b2, w3, b3, bool(recompute))
