"""Running an HGRU forward and backward and comparing two runs: the fused-path tests' shared steps
(tests/test_fused_hgru.py, tests/test_hgru_pieces.py)."""
from __future__ import annotations

import torch

from models import HGRU


def random_bound(kind: str, d: int, dtype: torch.dtype) -> torch.Tensor | None:
    """A (d,) lower bound in [0, 0.9) that requires grad: "rand", "zero-first" (half its channels exactly 0, as
    the first layer's cumsoftmax bound) or "none" (None)."""
    if kind == "none":
        return None
    bound = torch.rand(d, dtype=dtype) * 0.9
    if kind == "zero-first":  # the first layer's cumsoftmax bound is exactly 0 in some channels
        bound[: d // 2] = 0
    return bound.requires_grad_()


def forward_backward(m: HGRU, x: torch.Tensor, bound, lengths, grid, weight: torch.Tensor):
    """(output, {parameter or "x" or "lower_bound": gradient}) of (m(x) * weight).sum()."""
    m.zero_grad(set_to_none=True)
    for t in (x, bound):
        if t is not None:
            t.grad = None
    y = m(x, bound, lengths=lengths, grid=grid)
    (y * weight).sum().backward()
    grads = {name: p.grad.clone() for name, p in m.named_parameters()}
    grads["x"] = x.grad.clone()
    if bound is not None:
        grads["lower_bound"] = bound.grad.clone()
    return y.detach(), grads


def assert_matches(y, grads, y_ref, grads_ref, tol: float) -> None:
    """The output and every gradient within ``tol`` of the reference's, relative to its largest magnitude."""
    assert (y - y_ref).abs().max() <= tol * y_ref.abs().max()
    assert grads.keys() == grads_ref.keys()
    for name, ref in grads_ref.items():
        err = (grads[name] - ref).abs().max() / ref.abs().max().clamp_min(1e-30)
        assert err <= tol, f"gradient of {name}: relative error {err:.2e}"
