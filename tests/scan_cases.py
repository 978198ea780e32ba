"""Inputs and comparison helpers shared by the scan tests (CPU path here, Triton path in its own file)."""
from __future__ import annotations

import torch
from torch.nn import functional as F


def make_scan_inputs(
    B: int, T: int, D: int, *, complex_: bool, dtype=torch.float64, h0: bool = True, gate_shift: float = 1.0, seed: int = 0
) -> dict:
    """Random leaf tensors for one scan: x, log_f (= logsigmoid of shifted normals), theta, initial_state."""
    g = torch.Generator().manual_seed(seed)
    real = dtype
    x = torch.randn(B, T, D, generator=g, dtype=torch.float64)
    if complex_:
        x = torch.complex(x, torch.randn(B, T, D, generator=g, dtype=torch.float64))
    log_f = F.logsigmoid(torch.randn(B, T, D, generator=g, dtype=torch.float64) + gate_shift)
    theta = torch.randn(D, generator=g, dtype=torch.float64) if complex_ else None
    state = None
    if h0:
        state = torch.randn(B, D, generator=g, dtype=torch.float64)
        if complex_:
            state = torch.complex(state, torch.randn(B, D, generator=g, dtype=torch.float64))
    cast = {torch.float32: torch.complex64, torch.float64: torch.complex128}
    out = {
        "x": x.to(cast.get(real, real) if complex_ else real),
        "log_f": log_f.to(real),
        "theta": None if theta is None else theta.to(real),
        "initial_state": None if state is None else state.to(cast.get(real, real) if complex_ else real),
    }
    for v in out.values():
        if v is not None:
            v.requires_grad_(True)
    return out


def outputs_and_grads(fn, inputs: dict, reverse: bool, seed: int = 1) -> list[torch.Tensor]:
    """[h, grad x, grad log_f, (grad theta), (grad initial_state)] for a fixed random output gradient."""
    h = fn(inputs["x"], inputs["log_f"], inputs["theta"], reverse=reverse, initial_state=inputs["initial_state"])
    g = torch.Generator().manual_seed(seed)
    grad = torch.randn(h.shape, generator=g, dtype=torch.float64)
    if h.is_complex():
        grad = torch.complex(grad, torch.randn(h.shape, generator=g, dtype=torch.float64))
    leaves = [v for v in inputs.values() if v is not None]
    grads = torch.autograd.grad(h, leaves, grad.to(h.dtype))
    return [h.detach()] + [gr.detach() for gr in grads]


def max_relative_error(got: list[torch.Tensor], want: list[torch.Tensor]) -> float:
    """Largest over the tensors of the relative L2 error ||got - want|| / ||want||, in float64.

    Relative L2 (as fla's kernel tests measure) rather than max-abs: with memories of ~1000 steps
    even the sequential fp32 loop is off by ~2e-5 in its worst element, but ~1e-6 overall."""
    errs = []
    for a, b in zip(got, want, strict=True):
        wide = torch.complex128 if a.is_complex() or b.is_complex() else torch.float64
        a, b = a.to(wide), b.to(wide)
        errs.append((torch.linalg.vector_norm(a - b) / torch.linalg.vector_norm(b).clamp_min(1e-300)).item())
    return max(errs)
