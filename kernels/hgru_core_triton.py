"""The fused HGRU core's scans on the Triton kernels (kernels/triton_scan_kernels.py), for CUDA tensors.

Same interface as ``_CpuScans`` in kernels/hgru_core.py: ``forward`` returns one direction's states of a
(B', L, D') view, ``backward`` the gradient G reaching each state (the kernel's reverse scan of the output
gradient with the conjugated gate shifted by one step). The gates are computed inside the kernels from
log lam and theta, so nothing 2d-wide is materialised for them. A column scan of 2D mode is a (B, H, W*D)
view, so its phase is theta repeated W times.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from . import triton_scan as S


class TritonScans:
    def __init__(self, log_lam: Tensor, thetas: dict[str, Optional[Tensor]], complex_: bool):
        self.log_lam, self.thetas, self.complex = log_lam, thetas, complex_

    def _args(self, u_like: Tensor, shape, which: str):
        log_f = self.log_lam.reshape(shape)
        theta = self.thetas[which] if self.complex else None
        if theta is not None:
            theta = theta.to(log_f.dtype)
            if shape[2] != theta.shape[0]:
                theta = theta.repeat(shape[2] // theta.shape[0])
            theta = theta.contiguous()
        plan = S._make_plan(shape[0], shape[1], shape[2], self.complex, u_like.device, S.TritonScanConfig())
        return log_f, theta, plan, S._acc(u_like, theta, log_f)

    def forward(self, u: Tensor, shape, reverse: bool, which: str, last_use: bool = False) -> Tensor:
        x = u.reshape(shape)
        log_f, theta, plan, acc = self._args(x, shape, which)
        out = torch.empty(shape, dtype=x.dtype, device=x.device)
        with S._device_guard(x):
            S._forward(x, log_f, theta, None, reverse=reverse, out=out, plan=plan, acc=acc)
        return out

    def backward(self, dh: Tensor, shape, reverse: bool, which: str) -> Tensor:
        g = dh.reshape(shape)
        log_f, theta, plan, acc = self._args(g, shape, which)
        G = torch.empty(shape, dtype=g.dtype, device=g.device)
        with S._device_guard(g):
            S._backward(g, log_f, theta, None, None, reverse=reverse, x_cplx=g.is_complex(), dx=G, dlf=None,
                        dth_part=None, dh0=None, accum=False, plan=plan, acc=acc)
        return G

    def release(self) -> None:
        pass
