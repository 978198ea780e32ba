"""Public entry points and dispatch: Triton on CUDA tensors, the chunked PyTorch scan on CPU.

Force an implementation with the ``impl`` argument or the ``HGRN_SCAN_IMPL`` environment variable
(``auto``, ``cpu``, ``triton``, ``reference``). ``triton`` on CPU tensors works under ``TRITON_INTERPRET=1``.
"""
from __future__ import annotations

import os

import torch

from .validation import check_scan_args

IMPLEMENTATIONS = ("auto", "cpu", "triton", "reference")


def _choose(impl: str | None, device: torch.device) -> str:
    name = impl or os.environ.get("HGRN_SCAN_IMPL", "auto")
    if name not in IMPLEMENTATIONS:
        raise ValueError(
            f"hgrn_scan: unknown implementation {name!r} (from the impl argument or HGRN_SCAN_IMPL); "
            f"choose one of {', '.join(IMPLEMENTATIONS)}"
        )
    if name == "auto":
        return "triton" if device.type == "cuda" else "cpu"
    return name


def hgrn_scan(
    x: torch.Tensor,
    log_f: torch.Tensor,
    theta: torch.Tensor | None = None,
    *,
    reverse: bool = False,
    initial_state: torch.Tensor | None = None,
    impl: str | None = None,
) -> torch.Tensor:
    """Gated linear recurrence over (B, T, D), differentiable in every tensor argument.

    h_t = exp(log_f_t + i*theta) * h_{t-1} + x_t with h_{-1} = initial_state (or 0); ``reverse`` runs the
    same recurrence from t = T-1 down to 0. Real when x is real and theta is None, complex otherwise.
    Accumulation is fp32 (fp64 for fp64 inputs); h has x's dtype (complex when theta turns a real x complex).
    """
    check_scan_args(x, log_f, theta, initial_state)
    name = _choose(impl, x.device)
    if name == "reference":
        from .reference import hgrn_scan_reference

        return hgrn_scan_reference(x, log_f, theta, reverse=reverse, initial_state=initial_state)
    if name == "triton":
        from .triton_scan import hgrn_scan_triton

        return hgrn_scan_triton(x, log_f, theta, reverse=reverse, initial_state=initial_state)
    from .cpu_scan import hgrn_scan_cpu

    return hgrn_scan_cpu(x, log_f, theta, reverse=reverse, initial_state=initial_state)


def hgrn_scan_bidirectional(
    x: torch.Tensor,
    log_f: torch.Tensor,
    theta_fwd: torch.Tensor | None = None,
    theta_rev: torch.Tensor | None = None,
    *,
    impl: str | None = None,
) -> torch.Tensor:
    """Sum of the forward and the reverse scans of the same x and log_f (both include x_t)."""
    check_scan_args(x, log_f, theta_fwd, None)
    check_scan_args(x, log_f, theta_rev, None)
    name = _choose(impl, x.device)
    if name == "triton":
        from .triton_scan import hgrn_scan_bidirectional_triton

        return hgrn_scan_bidirectional_triton(x, log_f, theta_fwd, theta_rev)
    if name == "reference":
        from .reference import hgrn_scan_bidirectional_reference

        return hgrn_scan_bidirectional_reference(x, log_f, theta_fwd, theta_rev)
    from .cpu_scan import hgrn_scan_cpu

    # On CPU the two directions are two passes anyway; the reverse one walks the time index downwards,
    # so no flipped copies are made.
    return hgrn_scan_cpu(x, log_f, theta_fwd) + hgrn_scan_cpu(x, log_f, theta_rev, reverse=True)
