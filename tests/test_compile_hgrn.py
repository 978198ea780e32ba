"""torch.compile traces a whole HGRN without graph breaks, and the compiled model computes what eager does."""
from __future__ import annotations

import pytest
import torch

from models import HGRN


def _model(mode: str, seed: int = 0, **kwargs) -> HGRN:
    torch.manual_seed(seed)
    return HGRN(8, 2, mode=mode, **kwargs)


@pytest.mark.parametrize("mode", ["causal", "bidirectional", "2d"])
def test_no_graph_breaks(mode):
    torch._dynamo.reset()
    m = _model(mode)
    x = torch.randn(2, 16, 8)
    lengths = None if mode == "2d" else torch.tensor([16, 11])
    explained = torch._dynamo.explain(m)(x, lengths)
    assert explained.graph_break_count == 0, [b.reason for b in explained.break_reasons]
    assert explained.graph_count == 1


def _forward_backward(m: torch.nn.Module, x: torch.Tensor, lengths, run=None):
    """Output and parameter gradients of m, called through ``run`` (a compiled m) when given."""
    m.zero_grad(set_to_none=True)
    y = (m if run is None else run)(x, lengths)
    (y * torch.linspace(-1, 1, y.numel()).reshape(y.shape)).sum().backward()
    return y.detach(), {n: p.grad.clone() for n, p in m.named_parameters()}


def _assert_same(eager, compiled, tol):
    (y0, g0), (y1, g1) = eager, compiled
    assert torch.allclose(y1, y0, rtol=tol, atol=tol)
    assert g0.keys() == g1.keys()
    for name in g0:
        assert torch.allclose(g1[name], g0[name], rtol=tol, atol=tol), name


@pytest.mark.parametrize("mode,complex_,forget_mode", [("2d", True, "data"), ("bidirectional", False, "bound")])
def test_compiled_equals_eager_aot(mode, complex_, forget_mode):
    """AOTAutograd traces the fused op's forward and backward (fake implementations) and runs them."""
    torch._dynamo.reset()
    m = _model(mode, complex=complex_, forget_mode=forget_mode)
    x = torch.randn(2, 16, 8)
    lengths = None if mode == "2d" else torch.tensor([16, 9])
    eager = _forward_backward(m, x, lengths)
    compiled = _forward_backward(m, x, lengths, torch.compile(m, backend="aot_eager", fullgraph=True))
    _assert_same(eager, compiled, 1e-6)


def test_compiled_equals_eager_inductor():
    """The inductor C++ backend around the fused op (a smoke test: one small bidirectional model)."""
    torch._dynamo.reset()
    m = _model("bidirectional")
    x = torch.randn(2, 12, 8)
    eager = _forward_backward(m, x, None)
    compiled = _forward_backward(m, x, None, torch.compile(m, fullgraph=True))
    _assert_same(eager, compiled, 1e-4)
