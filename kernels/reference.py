"""The slow, obvious oracle: one Python step per time index, autograd straight through it.

Every other implementation is tested against this. Pass float64/complex128 inputs to get a float64 answer;
lower precisions are accumulated in at least fp32 and returned in the input's dtype, like the fast paths.
"""
from __future__ import annotations

import torch

from .validation import check_scan_args, compute_dtype, output_dtype


def hgrn_scan_reference(
    x: torch.Tensor,
    log_f: torch.Tensor,
    theta: torch.Tensor | None = None,
    *,
    reverse: bool = False,
    initial_state: torch.Tensor | None = None,
) -> torch.Tensor:
    """h_t = exp(log_f_t + i*theta) * h_{t-1} + x_t, from t = 0 up (or from T-1 down when reverse)."""
    check_scan_args(x, log_f, theta, initial_state)
    acc = compute_dtype(x, theta, log_f)
    real_acc = torch.float64 if acc in (torch.float64, torch.complex128) else torch.float32
    gate = torch.exp(log_f.to(real_acc))
    if theta is not None:
        gate = gate * torch.exp(1j * theta.to(real_acc))
    xs = x.to(acc)
    B, T, D = x.shape
    h = initial_state.to(acc) if initial_state is not None else torch.zeros(B, D, dtype=acc, device=x.device)
    outs: list[torch.Tensor | None] = [None] * T
    steps = range(T - 1, -1, -1) if reverse else range(T)
    for t in steps:
        h = gate[:, t] * h + xs[:, t]
        outs[t] = h
    return torch.stack(outs, dim=1).to(output_dtype(x, theta))


def hgrn_scan_bidirectional_reference(
    x: torch.Tensor,
    log_f: torch.Tensor,
    theta_fwd: torch.Tensor | None = None,
    theta_rev: torch.Tensor | None = None,
) -> torch.Tensor:
    """Forward scan plus reverse scan; both include x_t, as the official BiHgru does."""
    fwd = hgrn_scan_reference(x, log_f, theta_fwd)
    rev = hgrn_scan_reference(x, log_f, theta_rev, reverse=True)
    return fwd + rev
