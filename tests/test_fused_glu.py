"""The lean SiLU GLU (kernels/glu.py) equals the op-by-op GLU: output and every gradient."""
from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from models.glu import GLU


def _op_by_op(m: GLU, x: torch.Tensor) -> torch.Tensor:
    return m.w3(F.silu(m.w1(x)) * m.w2(x))


@pytest.mark.parametrize("recompute", [False, True], ids=["kept", "recomputed"])
@pytest.mark.parametrize("blocks", [1, 4], ids=["one-block", "row-blocks"])
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)], ids=["fp64", "fp32"])
@pytest.mark.parametrize("ratio,bias", [(1.0, True), (2.0, False)])
def test_fused_glu_equals_op_by_op(dtype, tol, ratio, bias, blocks, recompute, monkeypatch):
    """With the backward in one block of rows, or in 4 (3 x 5 rows as 4 + 4 + 4 + 3); with W1 x and W2 x
    kept, or projected again a block at a time."""
    from kernels import row_blocks

    if blocks > 1:
        monkeypatch.setattr(row_blocks, "BLOCK_BYTES", 1)
        monkeypatch.setattr(row_blocks, "MIN_ROWS", 4)
    assert len(row_blocks.row_blocks(15, round(6 * ratio))) == blocks
    torch.manual_seed(0)
    m = GLU(6, ratio, "silu", bias=bias).to(dtype)
    m.recompute_projections = recompute
    x = torch.randn(3, 5, 6, dtype=dtype, requires_grad=True)
    w = torch.randn(3, 5, 6, dtype=dtype)
    results = []
    for run in (_op_by_op, lambda mod, inp: mod(inp)):
        m.zero_grad(set_to_none=True)
        x.grad = None
        y = run(m, x)
        (y * w).sum().backward()
        results.append((y.detach(), x.grad.clone(), {n: p.grad.clone() for n, p in m.named_parameters()}))
    (y0, dx0, g0), (y1, dx1, g1) = results
    assert torch.allclose(y1, y0, rtol=tol, atol=tol)
    assert torch.allclose(dx1, dx0, rtol=tol, atol=tol)
    for name in g0:
        assert torch.allclose(g1[name], g0[name], rtol=tol, atol=tol), name


def test_fused_glu_saves_neither_activation_nor_product():
    torch.manual_seed(0)
    m = GLU(4, 2.0)
    x = torch.randn(2, 3, 4, requires_grad=True)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        m(x)
    hidden = [t for t in saved if t.shape == (2, 3, 8)]
    assert len(hidden) == 2  # W1 x and W2 x; SiLU(W1 x) and the product are recomputed


def test_recomputed_glu_saves_only_its_input():
    """recompute_projections: W1 x and W2 x are not kept; by default only for CPU sequences of 8192 tokens, and
    never under autocast."""
    torch.manual_seed(0)
    m = GLU(4, 2.0)

    def hidden_saved(x: torch.Tensor) -> int:
        saved = []
        with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
            m(x)
        return sum(1 for t in saved if t.shape[-1] == 8 and t.dim() == 3)

    short, long = torch.randn(1, 3, 4, requires_grad=True), torch.randn(1, 8192, 4, requires_grad=True)
    assert (hidden_saved(short), hidden_saved(long)) == (2, 0)  # the default: kept, then recomputed
    m.recompute_projections = True
    assert hidden_saved(short) == 0
    with torch.autocast("cpu", dtype=torch.bfloat16):  # the backward could not reproduce bf16 products: kept
        assert hidden_saved(short) == 2
    m.recompute_projections = False
    assert hidden_saved(long) == 2
