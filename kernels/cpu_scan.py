"""Scan for CPU tensors: the native kernel (kernels/cpu_native.py) where it is built, else a two-level chunked
scan in PyTorch; both inside a pair of custom ops with a registered autograd.

Why the PyTorch scan has this shape: a Python loop over T is dispatch-bound (one op per step), so time is
split into N chunks of C steps and every op works on all N chunks at once. Three passes, about 2C + 2*sqrt(N)
ops instead of T:
  1. the chunk-end state of each chunk started from zero (a running (B, N, D) state, nothing written out),
  2. the same scan, recursively, over the N chunk summaries: the true state entering each chunk,
  3. the recurrence again inside all chunks at once, started from those states, writing h.
The backward is the same scan run in the other direction over the output gradient, with the conjugated
gate shifted by one step (never autograd through a loop over time). Accumulation is fp32 (fp64 for fp64).
"""
from __future__ import annotations

from typing import Optional

import torch

from . import cpu_native
from .validation import compute_dtype, output_dtype

# Below this many steps the plain per-step loop has fewer ops than the chunked scan.
LOOP_MAX_T = 64


# Chunk length. With the recursive carry pass, small chunks win: they keep each op's slice (B, T/C, D) large
# and the op count low; measured on 2 cores, C = 16..32 was fastest on every shape from (8, 512, 1024) to
# (1, 16384, 256), and C >= 128 up to 2x slower.
CHUNK = 32


def _step_loop(x: torch.Tensor, a: torch.Tensor, h0: torch.Tensor | None, out: torch.Tensor, reverse: bool) -> None:
    """Per-step recurrence along dim 1 of (B, T, D) views, written into ``out``."""
    T = x.shape[1]
    prev = h0
    for t in range(T - 1, -1, -1) if reverse else range(T):
        if prev is None:
            out[:, t].copy_(x[:, t])
        else:
            torch.addcmul(x[:, t], a[:, t], prev, out=out[:, t])
        prev = out[:, t]


def _chunked(x: torch.Tensor, a: torch.Tensor, h0: torch.Tensor | None, out: torch.Tensor, reverse: bool, C: int) -> None:
    """Two-level scan over (B, N*C, D) views; see the module docstring for the three passes."""
    B, T, D = x.shape
    N = T // C
    # Slices of contiguous (B, T, D) tensors along T always split into (B, N, C, D) views: no copies.
    xs, as_, outs = (t.unflatten(1, (N, C)) for t in (x, a, out))
    steps = list(range(C - 1, -1, -1)) if reverse else list(range(C))
    # 1. chunk-end states from a zero start, and each chunk's total decay
    local_end = xs[:, :, steps[0]].clone()
    for c in steps[1:]:
        torch.addcmul(xs[:, :, c], as_[:, :, c], local_end, out=local_end)
    decay = as_.prod(dim=2)
    # 2. true state entering each chunk: itself a scan over the N chunk summaries (recursive, so long
    #    sequences need O(sqrt(N)) ops here rather than N)
    after = scan_with_gate(local_end, decay, h0, reverse, "loop" if N <= LOOP_MAX_T else "chunked")
    carry = torch.empty_like(after)
    first, rest, src = (-1, slice(0, -1), slice(1, None)) if reverse else (0, slice(1, None), slice(0, -1))
    carry[:, rest] = after[:, src]
    if h0 is None:
        carry[:, first] = 0
    else:
        carry[:, first] = h0
    # 3. the recurrence in every chunk at once, from the true entering states
    prev = carry
    for c in steps:
        torch.addcmul(xs[:, :, c], as_[:, :, c], prev, out=outs[:, :, c])
        prev = outs[:, :, c]


STRATEGIES = ("auto", "loop", "chunked", "native")


def _native_ok(x: torch.Tensor, a: torch.Tensor, h0: torch.Tensor | None, out: torch.Tensor) -> bool:
    """Whether the native kernel (kernels/cpu_native.c) takes this call: built, and the layouts it reads."""
    if x.is_complex() != a.is_complex() or x.dtype != out.dtype or a.dtype != x.dtype:
        return False
    if h0 is not None and (h0.dim() != 2 or h0.dtype != x.dtype or (h0.shape[1] > 1 and h0.stride(1) != 1)):
        return False
    return cpu_native.supports(x, a, out) and cpu_native.available()


def scan_with_gate(
    x: torch.Tensor,
    a: torch.Tensor,
    h0: torch.Tensor | None = None,
    reverse: bool = False,
    strategy: str = "auto",
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """h_t = a_t * h_{t-1} + x_t over dim 1 of contiguous (B, T, D) tensors of one dtype; no autograd.

    ``strategy`` "loop" forces the per-step loop (the benchmark's baseline), "chunked" the chunked scan,
    "native" the compiled kernel (kernels/cpu_native.py; an error where it is unavailable); "auto" takes the
    native kernel where it is built and supports the layout, else the loop or the chunked scan.
    ``out`` may be ``a`` itself: each gate is read before its position is overwritten, which saves a
    full-size buffer (and its page faults) per call.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"scan strategy must be one of {STRATEGIES}, got {strategy!r}")
    B, T, D = x.shape
    if out is None:
        out = torch.empty(B, T, D, dtype=x.dtype, device=x.device)
    if strategy in ("auto", "native"):
        native = _native_ok(x, a, h0, out)
        if strategy == "native" and not native:
            raise ValueError(f"scan strategy 'native': {cpu_native.status()}; or the tensors' dtypes/layout "
                             f"({x.dtype}, {a.dtype}) are not ones it takes")
        if native:
            kind = cpu_native.GATE_COMPLEX if x.is_complex() else cpu_native.GATE_REAL
            return cpu_native.scan_forward(x, a, out, kind=kind, reverse=reverse, h0=h0)
    if strategy == "loop" or (strategy == "auto" and T <= LOOP_MAX_T) or T < 2:
        _step_loop(x, a, h0, out, reverse)
        return out
    C = min(CHUNK, T)
    main = (T // C) * C
    # The chunked part is the first `main` steps in scan order; the rest runs step by step after it.
    if reverse:
        head = slice(T - main, T)
        _chunked(x[:, head], a[:, head], h0, out[:, head], True, C)
        if main < T:
            rest = slice(0, T - main)
            _step_loop(x[:, rest], a[:, rest], out[:, T - main], out[:, rest], True)
    else:
        head = slice(0, main)
        _chunked(x[:, head], a[:, head], h0, out[:, head], False, C)
        if main < T:
            rest = slice(main, T)
            _step_loop(x[:, rest], a[:, rest], out[:, main - 1], out[:, rest], False)
    return out


def _gate(
    log_f: torch.Tensor, theta: torch.Tensor | None, acc: torch.dtype, out: torch.Tensor | None = None
) -> torch.Tensor:
    """a_t = exp(log_f_t + i*theta) in the accumulation dtype, optionally written into ``out``."""
    if theta is None:
        if out is None:
            return torch.exp(log_f).to(acc)
        return torch.exp(log_f, out=out)
    magnitude = torch.exp(log_f)
    if out is None:
        return torch.polar(magnitude, theta.expand_as(magnitude))
    return torch.polar(magnitude, theta.expand_as(magnitude), out=out)


# The scan as two torch.library custom ops with a registered autograd (instead of an autograd.Function), so
# torch.compile keeps each call as one opaque node with a fake implementation instead of breaking the graph.
# Inputs arrive already in the accumulation dtype; casts happen outside so autograd handles them.


@torch.library.custom_op("hgrn::scan_cpu", mutates_args=())
def _scan_op(x: torch.Tensor, log_f: torch.Tensor, theta: Optional[torch.Tensor], h0: Optional[torch.Tensor],
             reverse: bool, strategy: str) -> torch.Tensor:
    gate = _gate(log_f, theta, x.dtype)
    return scan_with_gate(x, gate, h0, reverse, strategy, out=gate)


@_scan_op.register_fake
def _(x, log_f, theta, h0, reverse, strategy):
    return torch.empty_like(x)


@torch.library.custom_op("hgrn::scan_cpu_backward", mutates_args=())
def _scan_backward_op(grad_h: torch.Tensor, x: torch.Tensor, log_f: torch.Tensor, theta: Optional[torch.Tensor],
                      h0: Optional[torch.Tensor], h: torch.Tensor, reverse: bool, strategy: str,
                      need_gate: bool, need_h0: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    grad_h = grad_h.to(h.dtype).contiguous()
    neg_theta = None if theta is None else -theta
    # The gradient flows against the scan direction through conj(gate) one step further along; the gate is
    # computed straight into its shifted place. Where the backward scan starts it multiplies a zero state,
    # so that one value is irrelevant.
    shifted = torch.empty_like(h)
    src, dst, start = (slice(0, -1), slice(1, None), 0) if reverse else (slice(1, None), slice(0, -1), -1)
    _gate(log_f[:, src], neg_theta, h.dtype, out=shifted[:, dst])
    shifted[:, start] = 0
    G = scan_with_gate(grad_h, shifted, None, not reverse, strategy, out=shifted)
    if need_gate:  # (absent gradients are distinct empty tensors: a custom op's outputs may not alias)
        # P_t = conj(a_t * h_{t-1}) * G_t, and a_t * h_{t-1} = h_t - x_t.
        P = torch.sub(h, x)
        P = P.conj_physical_().mul_(G) if P.is_complex() else P.mul_(G)
        grad_log_f = P.real if P.is_complex() else P
        grad_theta = P.imag.sum(dim=(0, 1)) if theta is not None else log_f.new_empty(0)
    else:
        grad_log_f, grad_theta = log_f.new_empty(0), log_f.new_empty(0)
    if h0 is not None and need_h0:
        first = -1 if reverse else 0
        grad_h0 = _gate(log_f[:, first], neg_theta, h.dtype) * G[:, first]
    else:
        grad_h0 = x.new_empty(0)
    return G, grad_log_f, grad_theta, grad_h0


@_scan_backward_op.register_fake
def _(grad_h, x, log_f, theta, h0, h, reverse, strategy, need_gate, need_h0):
    real = torch.float64 if log_f.dtype == torch.float64 else torch.float32
    grad_log_f = x.new_empty(x.shape, dtype=real) if need_gate else log_f.new_empty(0)
    grad_theta = x.new_empty(theta.shape, dtype=real) if (need_gate and theta is not None) else log_f.new_empty(0)
    grad_h0 = torch.empty_like(h) if (h0 is not None and need_h0) else x.new_empty(0)
    return torch.empty_like(h), grad_log_f, grad_theta, grad_h0


def _setup_scan(ctx, inputs, output) -> None:
    x, log_f, theta, h0, reverse, strategy = inputs
    ctx.save_for_backward(x, log_f, theta, h0, output)
    ctx.reverse, ctx.strategy = reverse, strategy


def _scan_backward(ctx, grad_h):
    x, log_f, theta, h0, h = ctx.saved_tensors
    need_x, need_log_f, need_theta, need_h0 = ctx.needs_input_grad[:4]
    need_gate = need_log_f or (theta is not None and need_theta)
    gx, glf, gth, gh0 = _scan_backward_op(grad_h, x, log_f, theta, h0, h, ctx.reverse, ctx.strategy, need_gate,
                                          h0 is not None and need_h0)
    return (gx if need_x else None, glf if need_log_f else None,
            gth if (theta is not None and need_theta) else None, gh0 if (h0 is not None and need_h0) else None,
            None, None)


_scan_op.register_autograd(_scan_backward, setup_context=_setup_scan)


def hgrn_scan_cpu(
    x: torch.Tensor,
    log_f: torch.Tensor,
    theta: torch.Tensor | None = None,
    *,
    reverse: bool = False,
    initial_state: torch.Tensor | None = None,
    strategy: str = "auto",
) -> torch.Tensor:
    """The CPU path of ``kernels.hgrn_scan`` (arguments already validated there)."""
    acc = compute_dtype(x, theta, log_f)
    real_acc = torch.float64 if acc in (torch.float64, torch.complex128) else torch.float32
    h = _scan_op(
        x.to(acc).contiguous(),
        log_f.to(real_acc).contiguous(),
        None if theta is None else theta.to(real_acc),
        None if initial_state is None else initial_state.to(acc),
        reverse,
        strategy,
    )
    return h.to(output_dtype(x, theta))
