"""torch.compile traces a whole HGRN without graph breaks, and the compiled model computes what eager does."""
from __future__ import annotations

import pytest
import torch

from models import HGRN, HGRU, set_recompute_projections


def _model(mode: str, seed: int = 0, layers: int = 2, **kwargs) -> HGRN:
    torch.manual_seed(seed)
    return HGRN(8, layers, mode=mode, **kwargs)


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "op-by-op"])
@pytest.mark.parametrize("mode", ["causal", "bidirectional", "2d"])
def test_no_graph_breaks(mode, fused):
    """Both HGRU paths: the fused core op, and the op-by-op path around the CPU scan op."""
    torch._dynamo.reset()
    m = _model(mode)
    for layer in m.modules():
        if isinstance(layer, HGRU):
            layer.fused = fused
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


@pytest.mark.parametrize("mode,complex_,forget_mode,fused", [("2d", True, "data", True),
                                                             ("bidirectional", False, "bound", True),
                                                             ("bidirectional", True, "data", False)])
def test_compiled_equals_eager_aot(mode, complex_, forget_mode, fused):
    """AOTAutograd traces the custom ops' forward and backward (fake implementations) and runs them."""
    torch._dynamo.reset()
    m = _model(mode, complex=complex_, forget_mode=forget_mode)
    for layer in m.modules():
        if isinstance(layer, HGRU):
            layer.fused = fused
    x = torch.randn(2, 16, 8)
    lengths = None if mode == "2d" else torch.tensor([16, 9])
    eager = _forward_backward(m, x, lengths)
    compiled = _forward_backward(m, x, lengths, torch.compile(m, backend="aot_eager", fullgraph=True))
    _assert_same(eager, compiled, 1e-6)


def test_compiled_equals_eager_inductor():
    """The inductor C++ backend around the fused op (a smoke test: one small one-layer model, as C++ compile
    time grows with every distinct kernel)."""
    torch._dynamo.reset()
    m = _model("bidirectional", layers=1)
    x = torch.randn(2, 12, 8)
    eager = _forward_backward(m, x, None)
    compiled = _forward_backward(m, x, None, torch.compile(m, fullgraph=True))
    _assert_same(eager, compiled, 1e-4)


def test_compiled_pieces_equal_eager(monkeypatch):
    """A sequence long enough to run in pieces of time (kernels/hgru_pieces.py, here pieces of 4 steps): the
    pieces' backward is a custom op too, traced without a graph break, and gives eager's results."""
    from kernels import cpu_native, hgru_pieces

    if not cpu_native.available():
        pytest.skip(f"native CPU kernels unavailable here: {cpu_native.status()}")
    monkeypatch.setenv("HGRN_TIME_PIECE", "4")
    calls = []
    backward = hgru_pieces.pieces_backward
    monkeypatch.setattr(hgru_pieces, "pieces_backward", lambda *a, **k: calls.append(1) or backward(*a, **k))
    torch._dynamo.reset()
    m = _model("bidirectional")
    set_recompute_projections(m, True)  # pieces need all three projections recomputed
    x = torch.randn(2, 18, 8)
    lengths = torch.tensor([18, 7])
    eager = _forward_backward(m, x, lengths)
    assert len(calls) == 2  # one per layer
    compiled = _forward_backward(m, x, lengths, torch.compile(m, backend="aot_eager", fullgraph=True))
    assert len(calls) == 4
    _assert_same(eager, compiled, 1e-6)
