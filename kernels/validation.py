"""Argument checks shared by every scan implementation, so all of them fail the same clear way."""
from __future__ import annotations

import torch

REAL_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
COMPLEX_DTYPES = (torch.complex64, torch.complex128)


def check_scan_args(
    x: torch.Tensor,
    log_f: torch.Tensor,
    theta: torch.Tensor | None,
    initial_state: torch.Tensor | None,
) -> None:
    """Raise ValueError/TypeError naming the argument at fault and what shape or dtype it needs."""
    if not isinstance(x, torch.Tensor) or not isinstance(log_f, torch.Tensor):
        raise TypeError("hgrn_scan: x and log_f must be torch.Tensor")
    if x.dim() != 3:
        raise ValueError(f"hgrn_scan: x must be (B, T, D), got shape {tuple(x.shape)}")
    if x.dtype not in REAL_DTYPES + COMPLEX_DTYPES:
        raise TypeError(
            f"hgrn_scan: x has dtype {x.dtype}; use float16/bfloat16/float32/float64 or complex64/complex128"
        )
    if log_f.shape != x.shape:
        raise ValueError(
            f"hgrn_scan: log_f must have the shape of x {tuple(x.shape)}, got {tuple(log_f.shape)}"
        )
    if log_f.dtype not in REAL_DTYPES:
        raise TypeError(
            f"hgrn_scan: log_f must be real (the log of the gate magnitude), got {log_f.dtype}"
        )
    if log_f.device != x.device:
        raise ValueError(f"hgrn_scan: log_f is on {log_f.device} but x is on {x.device}")
    B, _, D = x.shape
    if theta is not None:
        if not isinstance(theta, torch.Tensor) or theta.shape != (D,):
            shape = tuple(theta.shape) if isinstance(theta, torch.Tensor) else type(theta).__name__
            raise ValueError(f"hgrn_scan: theta must be a (D,) = ({D},) tensor, got {shape}")
        if theta.dtype not in REAL_DTYPES:
            raise TypeError(f"hgrn_scan: theta must be real (a phase in radians), got {theta.dtype}")
        if theta.device != x.device:
            raise ValueError(f"hgrn_scan: theta is on {theta.device} but x is on {x.device}")
    if initial_state is not None:
        if not isinstance(initial_state, torch.Tensor) or initial_state.shape != (B, D):
            shape = tuple(initial_state.shape) if isinstance(initial_state, torch.Tensor) else None
            raise ValueError(f"hgrn_scan: initial_state must be (B, D) = ({B}, {D}), got {shape}")
        if initial_state.dtype not in REAL_DTYPES + COMPLEX_DTYPES:
            raise TypeError(f"hgrn_scan: initial_state has unsupported dtype {initial_state.dtype}")
        if initial_state.is_complex() and not x.is_complex() and theta is None:
            raise TypeError(
                "hgrn_scan: initial_state is complex but the scan is real (real x, no theta); "
                "pass a real initial_state, or a complex x or a theta"
            )
        if initial_state.device != x.device:
            raise ValueError(
                f"hgrn_scan: initial_state is on {initial_state.device} but x is on {x.device}"
            )


def compute_dtype(x: torch.Tensor, theta: torch.Tensor | None, log_f: torch.Tensor) -> torch.dtype:
    """The dtype the recurrence accumulates in: at least fp32, complex when x is complex or theta is given."""
    wide = torch.float64 if torch.float64 in (x.dtype, log_f.dtype) or x.dtype == torch.complex128 else torch.float32
    if x.is_complex() or theta is not None:
        return torch.complex128 if wide == torch.float64 else torch.complex64
    return wide


def output_dtype(x: torch.Tensor, theta: torch.Tensor | None) -> torch.dtype:
    """The dtype of h: the input's, made complex when a phase turns a real input complex."""
    if theta is not None and not x.is_complex():
        return torch.complex128 if x.dtype == torch.float64 else torch.complex64
    return x.dtype
