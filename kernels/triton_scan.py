"""The Triton HGRN scan: tile and T-split plan, kernel launches and the autograd Functions.

Entry points (called by ``kernels.scan`` once arguments are validated):
- ``hgrn_scan_triton(x, log_f, theta=None, *, reverse=False, initial_state=None, config=None)``
- ``hgrn_scan_bidirectional_triton(x, log_f, theta_fwd=None, theta_rev=None, *, config=None)``

Passes over memory (real bf16, bytes per element):
- causal forward: one launch, read x and log_f, write h (6); when B * ceil(D/BD) programs are too few to
  fill the GPU, T is split into chunks: a summary launch reads x and log_f (4), the main launch folds the
  earlier chunks' summaries into its carry and rescans (6);
- backward: the reverse scan of the output gradient with the gate shifted by one, fused with the
  gradients of log_f, theta (per-program partial sums, then one small torch sum) and initial_state;
  it reads g, log_f and the saved h and writes dx and dlog_f (10);
- bidirectional forward: a forward launch writes h_fwd, a reverse launch adds its own scan in place (14);
  with gradients both directions' states are kept, and the backward is two launches, the second
  accumulating into the first's dx and dlog_f. No flipped copy is ever made.

Dtypes: the recurrence accumulates in fp32, or fp64 when x or log_f is fp64/complex128 (so the CPU
interpreter tests can compare in float64); h has x's dtype, complex when x is complex or a phase is given;
each gradient has its input's dtype (real part for a real input of a complex scan).

Tensors must be on a CUDA device, or on the CPU when ``TRITON_INTERPRET=1`` was set before this module
was first imported (the interpreter is chosen when the kernels are decorated).
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
import triton
import triton.language as tl

from . import triton_scan_kernels as K
from .validation import check_scan_args, compute_dtype, output_dtype

__all__ = ["TritonScanConfig", "hgrn_scan_triton", "hgrn_scan_bidirectional_triton"]

_MAX_CHUNKS = 256  # bounds the carry-in's serial steps (NC / NCB)


@dataclass(frozen=True)
class TritonScanConfig:
    """Overrides of the launch plan (tests use small tiles so multi-tile and T-split paths run)."""

    block_t: int | None = None  # time steps per tile (power of two)
    block_d: int | None = None  # channels per program (power of two)
    chunks: int | None = None  # number of T chunks (1 = no split); default: by occupancy
    num_warps: int | None = None
    num_stages: int | None = None  # software-pipelining depth of the tile loop
    carry_block: int | None = None  # chunk summaries folded per carry-in step (power of two)


@dataclass(frozen=True)
class _Plan:
    BT: int
    BD: int
    NDB: int  # channel blocks
    NC: int  # time chunks
    CT: int  # chunk length, a multiple of BT
    NCB: int  # chunk summaries folded per step of the carry-in (power of two)
    num_warps: int
    stages: int

    @property
    def split(self) -> bool:
        return self.NC > 1


def _is_interpreted() -> bool:
    return type(K.hgrn_scan_fwd_kernel).__name__ == "InterpretedFunction"


def _sm_count(device: torch.device) -> int:
    if device.type != "cuda":
        return 0
    return torch.cuda.get_device_properties(device).multi_processor_count


def _pow2(n: int, name: str) -> int:
    if n < 1 or n & (n - 1):
        raise ValueError(f"hgrn_scan (triton): {name} must be a power of two, got {n}")
    return n


# Default tiles, chosen from the sm_90 builds (ptxas -v, no GPU at hand) to keep registers moderate and
# spills away: real (BT, BD, warps) = (32, 64, 4) takes 72 registers forward and 93-109 backward (up to
# ~180 with the T-split, where a few variants spill <= 12 bytes); complex state has four scan operands,
# hence (16, 32, 4) at 71-80 and ~128. Not yet timed on a GPU: benchmarks/scan_gpu.py sweeps the rest.
_REAL_TILE = (32, 64, 4)
_COMPLEX_TILE = (16, 32, 4)
_STAGES = 2


def _make_plan(B: int, T: int, D: int, complex_state: bool, device: torch.device,
               cfg: TritonScanConfig) -> _Plan:
    bt, bd, warps = _COMPLEX_TILE if complex_state else _REAL_TILE
    BT = _pow2(cfg.block_t, "block_t") if cfg.block_t else bt
    BD = _pow2(cfg.block_d, "block_d") if cfg.block_d else min(bd, max(16, triton.next_power_of_2(D)))
    NDB = triton.cdiv(D, BD)
    if cfg.chunks is not None:
        if cfg.chunks < 1:
            raise ValueError(f"hgrn_scan (triton): chunks must be >= 1, got {cfg.chunks}")
        want = cfg.chunks
    else:
        # Split T only when the (batch, channel-block) programs cannot fill the GPU: a split costs 4 more
        # bytes per element (the summary pass), so it pays only when occupancy is the bottleneck.
        sms = _sm_count(device)
        programs = B * NDB
        want = 1
        if sms and programs < 2 * sms:
            want = min(triton.cdiv(4 * sms, programs), triton.cdiv(T, 8 * BT))
    want = max(1, min(want, _MAX_CHUNKS, triton.cdiv(T, BT)))
    CT = triton.cdiv(triton.cdiv(T, want), BT) * BT
    NC = triton.cdiv(T, CT)
    if cfg.carry_block:
        NCB = _pow2(cfg.carry_block, "carry_block")
    else:
        NCB = min(16, max(2, triton.next_power_of_2(NC - 1)))
    if 2 * (BT + 1) * D + 2 * BD >= 2**31:
        raise ValueError(f"hgrn_scan (triton): D = {D} is too large for int32 offsets inside a tile")
    return _Plan(BT=BT, BD=BD, NDB=NDB, NC=NC, CT=CT, NCB=NCB, num_warps=cfg.num_warps or warps,
                 stages=cfg.num_stages or _STAGES)


def _planes(t: torch.Tensor | None) -> torch.Tensor | None:
    """The float view the kernels address (complex tensors as interleaved re/im)."""
    if t is None:
        return None
    return torch.view_as_real(t) if t.is_complex() else t


def _prep(t: torch.Tensor | None) -> torch.Tensor | None:
    """Contiguous, with lazy conjugation/negation materialised (view_as_real refuses those bits)."""
    return None if t is None else t.resolve_conj().resolve_neg().contiguous()


def _device_guard(t: torch.Tensor):
    # Triton launches on the current device; make it the tensors' device.
    return torch.cuda.device(t.device) if t.is_cuda else contextlib.nullcontext()


def _acc(x: torch.Tensor, theta: torch.Tensor | None, log_f: torch.Tensor):
    wide = compute_dtype(x, theta, log_f) in (torch.float64, torch.complex128)
    return tl.float64 if wide else tl.float32


def _check_device(x: torch.Tensor) -> None:
    if x.device.type != "cuda" and not _is_interpreted():
        raise RuntimeError(
            f"hgrn_scan (triton): tensors are on {x.device}; the Triton scan needs CUDA tensors, or "
            "TRITON_INTERPRET=1 set before kernels.triton_scan is first imported to run it on the CPU. "
            "Use impl='cpu' for the PyTorch implementation."
        )


# ---------------------------------------------------------------------------------------------------------
# Launchers. `dummy` fills pointer slots that a constexpr flag keeps the kernel from touching.


def _summaries(inp, log_f, theta, *, own_rev: bool, shift: bool, val_cplx: bool, plan: _Plan, acc,
               B: int, T: int, D: int) -> torch.Tensor:
    sums = torch.empty((4, B, plan.NC, D), device=log_f.device,
                       dtype=torch.float64 if acc == tl.float64 else torch.float32)
    K.hgrn_chunk_summary_kernel[(B * plan.NDB * plan.NC,)](
        _planes(inp), log_f, theta if theta is not None else log_f, sums,
        T, D, plan.CT, plan.NC, plan.NDB,
        BT=plan.BT, BD=plan.BD, STAGES=plan.stages, REV=own_rev, GATE_SHIFT=shift, IN_CPLX=inp.is_complex(),
        HAS_THETA=theta is not None, VAL_CPLX=val_cplx, ACC=acc, num_warps=plan.num_warps,
    )
    return sums


def _forward(x, log_f, theta, h0, *, reverse: bool, out: torch.Tensor, add: torch.Tensor | None = None,
             save: torch.Tensor | None = None, plan: _Plan, acc) -> None:
    """Scan x in one direction into `out` (+ `add`), optionally also storing the bare scan in `save`."""
    B, T, D = x.shape
    val_cplx = x.is_complex() or theta is not None
    sums = None
    if plan.split:
        sums = _summaries(x, log_f, theta, own_rev=reverse, shift=False, val_cplx=val_cplx, plan=plan,
                          acc=acc, B=B, T=T, D=D)
    dummy = log_f
    K.hgrn_scan_fwd_kernel[(B * plan.NDB * plan.NC,)](
        _planes(x), log_f, theta if theta is not None else dummy, _planes(h0) if h0 is not None else dummy,
        sums if sums is not None else dummy, _planes(out),
        _planes(add) if add is not None else dummy, _planes(save) if save is not None else dummy,
        T, D, plan.CT, plan.NC, plan.NDB,
        BT=plan.BT, BD=plan.BD, STAGES=plan.stages, NCB=plan.NCB, REV=reverse,
        X_CPLX=x.is_complex(), HAS_THETA=theta is not None, VAL_CPLX=val_cplx,
        HAS_H0=h0 is not None, H0_CPLX=h0 is not None and h0.is_complex(), SPLIT=plan.split,
        OUT_CPLX=out.is_complex(), HAS_ADD=add is not None, ADD_CPLX=add is not None and add.is_complex(),
        HAS_SAVE=save is not None, ACC=acc, num_warps=plan.num_warps,
    )


def _backward(g, log_f, theta, hs, h0, *, reverse: bool, x_cplx: bool, dx, dlf, dth_part, dh0,
              accum: bool, plan: _Plan, acc) -> None:
    """Gradients of one direction (the forward ran with `reverse`); see hgrn_scan_bwd_kernel."""
    B, T, D = log_f.shape
    val_cplx = x_cplx or theta is not None
    own_rev = not reverse
    sums = None
    if plan.split:
        sums = _summaries(g, log_f, theta, own_rev=own_rev, shift=True, val_cplx=val_cplx, plan=plan,
                          acc=acc, B=B, T=T, D=D)
    dummy = log_f
    K.hgrn_scan_bwd_kernel[(B * plan.NDB * plan.NC,)](
        _planes(g), log_f, theta if theta is not None else dummy, _planes(hs) if hs is not None else dummy,
        _planes(h0) if h0 is not None else dummy, sums if sums is not None else dummy,
        _planes(dx) if dx is not None else dummy, dlf if dlf is not None else dummy,
        dth_part if dth_part is not None else dummy, _planes(dh0) if dh0 is not None else dummy,
        T, D, plan.CT, plan.NC, plan.NDB,
        BT=plan.BT, BD=plan.BD, STAGES=plan.stages, NCB=plan.NCB, REV=own_rev,
        G_CPLX=g.is_complex(), X_CPLX=x_cplx, HAS_THETA=theta is not None, VAL_CPLX=val_cplx,
        HAS_H0=h0 is not None, H0_CPLX=h0 is not None and h0.is_complex(), SPLIT=plan.split, ACCUM=accum,
        NEED_DX=dx is not None, NEED_DLF=dlf is not None, NEED_DTH=dth_part is not None,
        NEED_DH0=dh0 is not None, ACC=acc, num_warps=plan.num_warps,
    )


def _theta_partials(theta, need: bool, B: int, plan: _Plan, D: int, acc) -> torch.Tensor | None:
    if theta is None or not need:
        return None
    return torch.empty((B * plan.NC, D), device=theta.device,
                       dtype=torch.float64 if acc == tl.float64 else torch.float32)


# ---------------------------------------------------------------------------------------------------------
# Autograd


class _ScanFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, log_f, theta, h0, reverse: bool, cfg: TritonScanConfig):
        B, T, D = x.shape
        acc = _acc(x, theta, log_f)
        plan = _make_plan(B, T, D, x.is_complex() or theta is not None, x.device, cfg)
        out = torch.empty(x.shape, device=x.device, dtype=output_dtype(x, theta))
        with _device_guard(x):
            _forward(x, log_f, theta, h0, reverse=reverse, out=out, plan=plan, acc=acc)
        ctx.save_for_backward(log_f, theta, h0, out)
        ctx.reverse, ctx.plan, ctx.acc = reverse, plan, acc
        ctx.x_dtype, ctx.x_cplx = x.dtype, x.is_complex()
        return out

    @staticmethod
    def backward(ctx, g):
        log_f, theta, h0, out = ctx.saved_tensors
        need_dx, need_dlf, need_dth, need_dh0 = ctx.needs_input_grad[:4]
        B, T, D = log_f.shape
        plan = ctx.plan
        g = _prep(g)
        dx = torch.empty((B, T, D), device=g.device, dtype=ctx.x_dtype) if need_dx else None
        dlf = torch.empty_like(log_f) if need_dlf else None
        dth_part = _theta_partials(theta, need_dth, B, plan, D, ctx.acc)
        dh0 = torch.empty_like(h0) if (h0 is not None and need_dh0) else None
        if dx is None and dlf is None and dth_part is None and dh0 is None:
            return None, None, None, None, None, None
        with _device_guard(g):
            _backward(g, log_f, theta, out, h0, reverse=ctx.reverse, x_cplx=ctx.x_cplx, dx=dx, dlf=dlf,
                      dth_part=dth_part, dh0=dh0, accum=False, plan=plan, acc=ctx.acc)
        dth = dth_part.sum(0).to(theta.dtype) if dth_part is not None else None
        return dx, dlf, dth, dh0, None, None


class _BidirectionalFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, log_f, theta_f, theta_r, keep_states: bool, cfg: TritonScanConfig):
        B, T, D = x.shape
        cplx_f = x.is_complex() or theta_f is not None
        cplx_r = x.is_complex() or theta_r is not None
        acc_f, acc_r = _acc(x, theta_f, log_f), _acc(x, theta_r, log_f)
        acc = tl.float64 if tl.float64 in (acc_f, acc_r) else tl.float32
        plan = _make_plan(B, T, D, cplx_f or cplx_r, x.device, cfg)
        out_dtype = output_dtype(x, theta_f if theta_f is not None else theta_r)
        out = torch.empty(x.shape, device=x.device, dtype=out_dtype)
        hf = hr = None
        if keep_states:
            # The backward needs each direction's own states: keep them instead of recomputing.
            hf = torch.empty(x.shape, device=x.device, dtype=output_dtype(x, theta_f))
            hr = torch.empty(x.shape, device=x.device, dtype=output_dtype(x, theta_r))
        first = hf if keep_states else out
        with _device_guard(x):
            _forward(x, log_f, theta_f, None, reverse=False, out=first, plan=plan, acc=acc)
            # The reverse pass reads the forward result and overwrites it with the sum, element by element.
            _forward(x, log_f, theta_r, None, reverse=True, out=out, add=first, save=hr, plan=plan, acc=acc)
        ctx.save_for_backward(log_f, theta_f, theta_r, hf, hr)
        ctx.plan, ctx.acc, ctx.x_dtype, ctx.x_cplx = plan, acc, x.dtype, x.is_complex()
        return out

    @staticmethod
    def backward(ctx, g):
        log_f, theta_f, theta_r, hf, hr = ctx.saved_tensors
        need_dx, need_dlf, need_thf, need_thr = ctx.needs_input_grad[:4]
        B, T, D = log_f.shape
        plan = ctx.plan
        g = _prep(g)
        dx = torch.empty((B, T, D), device=g.device, dtype=ctx.x_dtype) if need_dx else None
        dlf = torch.empty_like(log_f) if need_dlf else None
        part_f = _theta_partials(theta_f, need_thf, B, plan, D, ctx.acc)
        part_r = _theta_partials(theta_r, need_thr, B, plan, D, ctx.acc)
        with _device_guard(g):
            # The reverse direction's pass adds into what the forward direction's pass stored.
            first = dx is not None or dlf is not None or part_f is not None
            if first:
                _backward(g, log_f, theta_f, hf, None, reverse=False, x_cplx=ctx.x_cplx, dx=dx, dlf=dlf,
                          dth_part=part_f, dh0=None, accum=False, plan=plan, acc=ctx.acc)
            if dx is not None or dlf is not None or part_r is not None:
                _backward(g, log_f, theta_r, hr, None, reverse=True, x_cplx=ctx.x_cplx, dx=dx, dlf=dlf,
                          dth_part=part_r, dh0=None, accum=first, plan=plan, acc=ctx.acc)
        dth_f = part_f.sum(0).to(theta_f.dtype) if part_f is not None else None
        dth_r = part_r.sum(0).to(theta_r.dtype) if part_r is not None else None
        return dx, dlf, dth_f, dth_r, None, None


# ---------------------------------------------------------------------------------------------------------
# Public entry points


def _empty_result(x: torch.Tensor, theta: torch.Tensor | None) -> torch.Tensor:
    return x.to(output_dtype(x, theta)) * 0  # empty B, T or D: keep autograd's graph and the shape


def hgrn_scan_triton(
    x: torch.Tensor,
    log_f: torch.Tensor,
    theta: torch.Tensor | None = None,
    *,
    reverse: bool = False,
    initial_state: torch.Tensor | None = None,
    config: TritonScanConfig | None = None,
) -> torch.Tensor:
    """h_t = exp(log_f_t + i*theta) * h_{t-1} + x_t on the GPU (t descending when ``reverse``)."""
    check_scan_args(x, log_f, theta, initial_state)
    _check_device(x)
    if x.numel() == 0:
        return _empty_result(x, theta)
    x, log_f, theta, h0 = _prep(x), _prep(log_f), _prep(theta), _prep(initial_state)
    return _ScanFunction.apply(x, log_f, theta, h0, bool(reverse), config or TritonScanConfig())


def hgrn_scan_bidirectional_triton(
    x: torch.Tensor,
    log_f: torch.Tensor,
    theta_fwd: torch.Tensor | None = None,
    theta_rev: torch.Tensor | None = None,
    *,
    config: TritonScanConfig | None = None,
) -> torch.Tensor:
    """Forward scan plus reverse scan of the same x and log_f, without flipped copies."""
    check_scan_args(x, log_f, theta_fwd, None)
    check_scan_args(x, log_f, theta_rev, None)
    _check_device(x)
    if x.numel() == 0:
        return _empty_result(x, theta_fwd if theta_fwd is not None else theta_rev)
    x, log_f, theta_fwd, theta_rev = _prep(x), _prep(log_f), _prep(theta_fwd), _prep(theta_rev)
    tensors = [t for t in (x, log_f, theta_fwd, theta_rev) if t is not None]
    keep = torch.is_grad_enabled() and any(t.requires_grad for t in tensors)
    return _BidirectionalFunction.apply(x, log_f, theta_fwd, theta_rev, keep, config or TritonScanConfig())
