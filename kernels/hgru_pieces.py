"""The fused HGRU layer for long sequences, a piece of time at a time, from the projections' input x to
out_proj's output (kernels/hgru_core.py does the same work on whole (B, T, .) tensors, from p, z and g).

Why: at T = 16384 a d 64 training step peaked at 20 units of (T, 64) floats, 13 of them inside one HGRU's
backward: recomputed p and z, lam, u, the gradient reaching h, the output gate's gradient, du and d log lam
(docs/performance.md, sixth pass), and the forward held p, z, g, lam, u and h whole. Here each of those
exists for one piece of ``piece`` steps at a time: the projections too are done piece by piece (forward and
backward), so what is whole is the layer's output, in the backward its input's gradient and, in
bidirectional mode, the gradient reaching h, which both directions' backward sweeps read.

Pieces are passed what their neighbours hand over: a direction's state entering the piece, and in the
backward the carry conj(a) G from the step after it (kernels/cpu_native.c takes both). The forward keeps
every piece's entering states (a few (B, D) rows) for the backward. For pieces c = 0 .. n-1 in time order,
on the native CPU kernels:

- forward, causal: left to right, per piece: p, z and g projected, the gate pass, the scan from the state
  the piece to its left handed over, the output stage.
- forward, bidirectional: (1) left to right, the forward direction's state entering each piece (p and z
  projected, the gate pass, a scan); (2) right to left, per piece: p, z and g projected, the gate pass, both
  directions' states, the output stage.
- backward: (1) right to left, per piece: p, z and g projected again, the gate pass, the states, the output
  stage's backward (giving the gradient reaching h and dg), the forward direction's scan backward, the
  gate's backward, the projections' backward; (2) bidirectional only, left to right: p and z again, the
  gate pass, the reverse direction's scan backward, the gate's and projections' backward again. The gate's
  backward is linear in (du, d log lam), so once per direction, added, gives the gradients of once on
  their sum.

The price is more passes: p and z are projected up to four times instead of twice (forward and recomputed),
the gate pass up to four times instead of twice, and the gate's backward and the projections' backward once
per direction. So only sequences of at least ``MIN_PIECES`` pieces run this way (``pieces_for``); the figures
are in docs/performance.md, seventh pass. ``HGRN_TIME_PIECE=0`` turns it off.
"""
from __future__ import annotations

import os
from typing import Optional

import torch
from torch import Tensor
from torch.nn import functional as F

from . import cpu_native
from . import hgru_core as core

# Steps per piece, and the fewest pieces worth cutting a sequence into (shorter sequences run whole).
PIECE = 2048
MIN_PIECES = 4


def piece_length(T: int) -> Optional[int]:
    """Steps per piece for a sequence of T steps, or None to run it whole. ``HGRN_TIME_PIECE`` overrides
    ``PIECE`` (0: never cut)."""
    value = os.environ.get("HGRN_TIME_PIECE")
    piece = PIECE
    if value is not None:
        try:
            piece = int(value)
        except ValueError:
            raise ValueError(f"HGRN_TIME_PIECE={value!r}: give a number of steps (0 turns pieces off)") from None
    if piece <= 0 or T < MIN_PIECES * piece:
        return None
    return piece


def pieces_for(x: Tensor, gamma: Optional[Tensor], mode: str, forget_mode: str) -> Optional[int]:
    """Steps per piece if an HGRU layer with input x (B, T, d) runs in pieces of time, else None: a long
    causal or bidirectional sequence, a data-dependent forget gate, the native CPU kernels and gate pass,
    float32 or float64 outside autocast (the projections then run in x's precision), gamma (if any) in it."""
    if mode not in ("causal", "bidirectional") or forget_mode != "data" or not core.USE_NATIVE_GATE:
        return None
    if x.dtype not in (torch.float32, torch.float64) or torch.is_autocast_enabled(x.device.type):
        return None
    if gamma is not None and (gamma.dtype != x.dtype or not gamma.is_contiguous() or gamma.dim() != 1):
        return None
    if not core._uses_native(x):
        return None
    return piece_length(x.shape[1])


class _Piece:
    """One piece of time [t0, t1): its slice of x, p and z projected from it, and the gate lam and scan input
    u of the native gate pass."""

    def __init__(self, t0: int, t1: int, x: Tensor, weights: tuple, gamma: Optional[Tensor],
                 valid: Optional[Tensor], complex_: bool):
        self.t0, self.t1 = t0, t1
        self.x = x[:, t0:t1]
        self.valid = None if valid is None else valid[:, t0:t1].contiguous()
        self.p, self.z = core._projections(self.x, x.dtype, *weights)
        self.lam, self.u = cpu_native.gate_input(self.p, self.z, gamma, self.valid)
        self.uc = core._complex_view(self.u, complex_)


class _Scans:
    """A direction's scan over one piece, forward ("f", in time order) or reverse ("r"), and its backward,
    each started from what the neighbouring piece handed over (cpu_native.c takes the entering state and
    the carried gradient)."""

    def __init__(self, theta_f: Optional[Tensor], theta_r: Optional[Tensor], complex_: bool, acc: torch.dtype):
        self.kind = cpu_native.GATE_PHASE if complex_ else cpu_native.GATE_REAL
        self.phase = core.native_phases({"f": theta_f, "r": theta_r}, complex_, acc)
        self.complex, self.acc = complex_, acc

    def states(self, pc: _Piece, out: Tensor, which: str, h0: Optional[Tensor], store: str) -> None:
        """The direction's states over the piece into ``out`` ("h") or added to it ("add"), from h0."""
        cpu_native.scan_forward(pc.uc, pc.lam, out, kind=self.kind, reverse=which == "r",
                                phase=self.phase[which], h0=h0, store=store)

    def backward(self, pc: _Piece, dh: Tensor, which: str, h0: Optional[Tensor], carry: Optional[Tensor]
                 ) -> tuple[Tensor, Tensor, Optional[Tensor], Tensor]:
        """(du, d log lam, d theta (D,) or None, the carry for the next piece along the backward sweep)."""
        B, _, D = pc.uc.shape
        du = torch.empty_like(pc.uc)
        dlog = torch.empty(pc.lam.shape, dtype=self.acc)
        dtheta = torch.empty(B, D, dtype=self.acc) if self.complex else None
        carry_out = torch.empty(B, D, dtype=pc.uc.dtype)
        cpu_native.scan_backward(dh, pc.lam, None, du, x=pc.uc, kind=self.kind, reverse=which == "r", init=True,
                                 phase=self.phase[which], dlog=dlog, dtheta=dtheta, h0=h0, carry_in=carry,
                                 carry_out=carry_out)
        return du, dlog, None if dtheta is None else core._channel_sum(dtheta), carry_out


def _bounds(T: int, piece: int) -> list[tuple[int, int]]:
    return [(t0, min(t0 + piece, T)) for t0 in range(0, T, piece)]


def states_shape(mode: str, B: int, T: int, inner: int, piece: int) -> tuple[int, int, int, int]:
    """Shape of the entering states the forward keeps for the backward: (directions, pieces, B, inner), a
    direction's state entering each piece (zero where none enters), as (interleaved) floats."""
    return (2 if mode == "bidirectional" else 1, len(_bounds(T, piece)), B, inner)


def _state(states: Tensor, k: int, c: int, complex_: bool) -> Tensor:
    """Direction k's state entering piece c, (B, D) as the scans take it (a view of ``states``)."""
    row = states[k, c]
    return torch.view_as_complex(row.view(row.shape[0], -1, 2)) if complex_ else row


def _piece_states(pc: _Piece, scans: _Scans, states: Tensor, c: int, mode: str, complex_: bool,
                  record: bool) -> Tensor:
    """h over piece c: the sum of both directions' states (``mode`` "bidirectional") or the forward
    direction's alone ("causal", also the bidirectional forward's first sweep), each from its entering
    state in ``states``. With ``record`` (the forward), the state leaving the piece is written
    down as the one entering the next piece of its direction: c + 1 (causal) or c - 1 (reverse)."""
    h = torch.empty_like(pc.uc)
    if mode == "bidirectional":
        scans.states(pc, h, "r", _state(states, 1, c, complex_), "h")
        if record and c > 0:
            _state(states, 1, c - 1, complex_).copy_(h[:, 0])
        scans.states(pc, h, "f", _state(states, 0, c, complex_), "add")
    else:
        scans.states(pc, h, "f", _state(states, 0, c, complex_), "h")
        if record and c + 1 < states.shape[1]:
            _state(states, 0, c + 1, complex_).copy_(h[:, -1])
    return h


def pieces_forward(x: Tensor, w_p: Tensor, b_p: Optional[Tensor], w_z: Tensor, b_z: Optional[Tensor],
                   w_g: Tensor, b_g: Optional[Tensor], gamma: Optional[Tensor], theta_f: Optional[Tensor],
                   theta_r: Optional[Tensor], ln_w: Tensor, ln_b: Tensor, out_w: Tensor, out_b: Optional[Tensor],
                   valid: Optional[Tensor], mode: str, complex_: bool, eps: float, piece: int
                   ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """out_proj(LayerNorm(h) * SiLU(g)) a piece of time at a time: (out (B, T, out), the entering states
    (``states_shape``), the LayerNorm's mean and rstd (B, T, 1))."""
    acc = core._acc(x)
    B, T, _ = x.shape
    bounds = _bounds(T, piece)
    scans = _Scans(theta_f, theta_r, complex_, acc)
    states = x.new_zeros(states_shape(mode, B, T, w_p.shape[0], piece), dtype=acc)

    def make(c: int) -> _Piece:
        return _Piece(*bounds[c], x, (w_p, b_p, w_z, b_z), gamma, valid, complex_)

    if mode == "bidirectional":  # the forward direction's state entering each piece, left to right
        for c in range(len(bounds) - 1):
            _piece_states(make(c), scans, states, c, "causal", complex_, record=True)  # records c + 1
    out = x.new_empty((B, T, out_w.shape[0]))
    mean, rstd = x.new_empty((B, T, 1), dtype=acc), x.new_empty((B, T, 1), dtype=acc)
    w, b = ln_w.to(acc), ln_b.to(acc)
    # bidirectional: right to left, handing the reverse direction's state on; causal: left to right
    for c in (reversed(range(len(bounds))) if mode == "bidirectional" else range(len(bounds))):
        pc = make(c)
        t0, t1 = pc.t0, pc.t1
        h = _piece_states(pc, scans, states, c, mode, complex_, record=True)
        g = F.linear(pc.x, w_g, b_g)
        del pc
        o, m, r = core._output_forward(core._real_view(h, complex_), g, w, b, out_w, out_b, eps, x.dtype)
        out[:, t0:t1] = o.view(B, t1 - t0, -1)
        mean[:, t0:t1], rstd[:, t0:t1] = m.view(B, t1 - t0, 1), r.view(B, t1 - t0, 1)
        del h, g, o
    return out, states, mean, rstd


class _Grads:
    """The gradients summed over pieces: the input's (written piece by piece) and the weights'."""

    def __init__(self, x: Tensor, weights: tuple, acc: torch.dtype):
        self.weights = weights
        self.dx = torch.empty_like(x)
        self.written: set[int] = set()
        self.dw = [None if w is None else torch.zeros(w.shape, dtype=acc) for w in weights]

    def project_back(self, piece: _Piece, grads: list[Optional[Tensor]], pairs: list[int]) -> None:
        """dx += sum of grad @ W and dW += grad^T x, db += sum of grad, for (grad, the index of W in the
        weight list) pairs: the Linear layers' backward for one piece."""
        x2 = piece.x.reshape(-1, piece.x.shape[-1])
        dx = None
        for grad, k in zip(grads, pairs):
            w, b = self.weights[k], self.weights[k + 1]
            g2 = grad.reshape(-1, grad.shape[-1])
            part = g2.to(w.dtype) @ w
            dx = part if dx is None else dx.add_(part)
            self.dw[k].addmm_(g2.t().to(self.dw[k].dtype), x2.to(self.dw[k].dtype))
            if b is not None:
                self.dw[k + 1].add_(core._channel_sum(g2).to(self.dw[k + 1].dtype))
        target = self.dx[:, piece.t0:piece.t1]
        dx = dx.view(target.shape).to(target.dtype)
        if piece.t0 in self.written:
            target.add_(dx)
        else:
            target.copy_(dx)
            self.written.add(piece.t0)


def pieces_backward(dout: Tensor, x: Tensor, w_p: Tensor, b_p: Optional[Tensor], w_z: Tensor,
                     b_z: Optional[Tensor], w_g: Tensor, b_g: Optional[Tensor], gamma: Optional[Tensor],
                     theta_f: Optional[Tensor], theta_r: Optional[Tensor], ln_w: Tensor, ln_b: Tensor,
                     out_w: Tensor, out_b: Optional[Tensor], valid: Optional[Tensor], mean: Tensor, rstd: Tensor,
                     states: Tensor, mode: str, complex_: bool, eps: float, piece: int) -> tuple[Tensor, ...]:
    """The gradients of the HGRU layer (its three projections included), for
    (x, w_p, b_p, w_z, b_z, w_g, b_g, gamma, theta_f, theta_r, ln_w, ln_b, out_w, out_b); None for an input
    that is None. ``states``: the entering states ``pieces_forward`` returned; ``piece``: steps per piece
    (the forward's)."""
    if mode not in ("causal", "bidirectional"):
        raise ValueError(f"pieces_backward: mode {mode!r} has no pieces of time; use the whole-tensor backward")
    acc = core._acc(x)
    B, T, _ = x.shape
    weights = (w_p, b_p, w_z, b_z, w_g, b_g)
    grads = _Grads(x, weights, acc)
    scans = _Scans(theta_f, theta_r, complex_, acc)
    bounds = _bounds(T, piece)

    def make(c: int) -> _Piece:
        return _Piece(*bounds[c], x, weights[:4], gamma, valid, complex_)

    d_gamma: Optional[Tensor] = None
    d_theta: dict[str, Optional[Tensor]] = {"f": None, "r": None}

    def gate_back(pc: _Piece, du: Tensor, dlog: Tensor) -> None:
        nonlocal d_gamma
        dp, dz, part = cpu_native.gate_input_backward(pc.p, pc.z, gamma, pc.valid, core._real_view(du, complex_),
                                                      dlog)
        if part is not None:
            d_gamma = part if d_gamma is None else d_gamma.add_(part)
        grads.project_back(pc, [dp, dz], [0, 2])

    def add_theta(which: str, part: Optional[Tensor]) -> None:
        if part is not None:
            d_theta[which] = part if d_theta[which] is None else d_theta[which].add_(part)

    if states.shape != states_shape(mode, B, T, w_p.shape[0], piece):
        raise ValueError(f"pieces_backward: entering states of shape {tuple(states.shape)} do not fit "
                         f"{states_shape(mode, B, T, w_p.shape[0], piece)}")

    # 1. right to left: states, output stage, forward direction's backward
    bidirectional = mode == "bidirectional"
    dh_whole: Optional[Tensor] = None  # the gradient reaching h, which the reverse direction reads in step 2
    carry: Optional[Tensor] = None
    w, b = ln_w.to(acc), ln_b.to(acc)
    d_ln_w, d_ln_b, d_out_w = torch.zeros_like(w), torch.zeros_like(b), torch.zeros(out_w.shape, dtype=acc)
    for c in reversed(range(len(bounds))):
        pc = make(c)
        t0, t1 = pc.t0, pc.t1
        h = _piece_states(pc, scans, states, c, mode, complex_, record=False)
        dfeat, dg, dw_ln, db_ln, dw_out = core._output_backward(
            dout[:, t0:t1], core._real_view(h, complex_), None, (pc.x, w_g, b_g), mean[:, t0:t1],
            rstd[:, t0:t1], w, b, out_w, eps, x.dtype)
        del h
        d_ln_w.add_(dw_ln)
        d_ln_b.add_(db_ln)
        d_out_w.add_(dw_out)
        grads.project_back(pc, [dg], [4])
        del dg
        dh = core._complex_view(dfeat, complex_)
        if bidirectional:
            if dh_whole is None:
                dh_whole = dh.new_empty((B, T, dh.shape[-1]))
            dh_whole[:, t0:t1] = dh
        du, dlog, part, carry = scans.backward(pc, dh, "f", _state(states, 0, c, complex_), carry)
        del dfeat, dh
        add_theta("f", part)
        gate_back(pc, du, dlog)
        del pc, du, dlog

    # 2. left to right: the reverse direction's backward
    if bidirectional:
        carry = None
        for c in range(len(bounds)):
            pc = make(c)
            du, dlog, part, carry = scans.backward(pc, dh_whole[:, pc.t0:pc.t1], "r", _state(states, 1, c, complex_),
                                                   carry)
            add_theta("r", part)
            gate_back(pc, du, dlog)
            del pc, du, dlog
        del dh_whole

    d_out_b = None if out_b is None else core._channel_sum(dout)
    return (grads.dx, *grads.dw, d_gamma, d_theta["f"], d_theta["r"], d_ln_w, d_ln_b, d_out_w, d_out_b)


# ---------------------------------------------------------------------------------------------------------
# Registration: two opaque ops for torch.compile, tied together by a registered autograd


@torch.library.custom_op("hgrn::hgru_pieces", mutates_args=())
def _pieces_op(
    x: Tensor, w_p: Tensor, b_p: Optional[Tensor], w_z: Tensor, b_z: Optional[Tensor], w_g: Tensor,
    b_g: Optional[Tensor], gamma: Optional[Tensor], theta_f: Optional[Tensor], theta_r: Optional[Tensor],
    ln_w: Tensor, ln_b: Tensor, out_w: Tensor, out_b: Optional[Tensor], valid: Optional[Tensor], mode: str,
    is_complex: bool, eps: float, piece: int,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    return pieces_forward(x, w_p, b_p, w_z, b_z, w_g, b_g, gamma, theta_f, theta_r, ln_w, ln_b, out_w, out_b, valid,
                          mode, is_complex, eps, piece)


@_pieces_op.register_fake
def _(x, w_p, b_p, w_z, b_z, w_g, b_g, gamma, theta_f, theta_r, ln_w, ln_b, out_w, out_b, valid, mode, is_complex,
      eps, piece):
    B, T, _ = x.shape
    acc = core._acc(x)
    return (x.new_empty((B, T, out_w.shape[0])), x.new_empty(states_shape(mode, B, T, w_p.shape[0], piece), dtype=acc),
            x.new_empty((B, T, 1), dtype=acc), x.new_empty((B, T, 1), dtype=acc))


@torch.library.custom_op("hgrn::hgru_pieces_backward", mutates_args=())
def _pieces_backward_op(
    dout: Tensor, x: Tensor, w_p: Tensor, b_p: Optional[Tensor], w_z: Tensor, b_z: Optional[Tensor], w_g: Tensor,
    b_g: Optional[Tensor], gamma: Optional[Tensor], theta_f: Optional[Tensor], theta_r: Optional[Tensor],
    ln_w: Tensor, ln_b: Tensor, out_w: Tensor, out_b: Optional[Tensor], valid: Optional[Tensor], mean: Tensor,
    rstd: Tensor, states: Tensor, mode: str, is_complex: bool, eps: float, piece: int,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor,
           Tensor]:
    inputs = (x, w_p, b_p, w_z, b_z, w_g, b_g, gamma, theta_f, theta_r, ln_w, ln_b, out_w, out_b)
    grads = pieces_backward(dout, x, w_p, b_p, w_z, b_z, w_g, b_g, gamma, theta_f, theta_r, ln_w, ln_b, out_w,
                            out_b, valid, mean, rstd, states, mode, is_complex, eps, piece)
    # each in its input's dtype; a custom op's outputs may not alias: an absent gradient is its own empty tensor
    return tuple(x.new_empty(0) if d is None or t is None else d.to(t.dtype) for d, t in zip(grads, inputs))


@_pieces_backward_op.register_fake
def _(dout, x, w_p, b_p, w_z, b_z, w_g, b_g, gamma, theta_f, theta_r, ln_w, ln_b, out_w, out_b, valid, mean, rstd,
      states, mode, is_complex, eps, piece):
    inputs = (x, w_p, b_p, w_z, b_z, w_g, b_g, gamma, theta_f, theta_r, ln_w, ln_b, out_w, out_b)
    return tuple(x.new_empty(0) if t is None else torch.empty_like(t) for t in inputs)


def _setup_context(ctx, inputs, output) -> None:
    *tensors, mode, is_complex, eps, piece = inputs
    _, states, mean, rstd = output
    ctx.save_for_backward(*tensors, mean, rstd, states)
    ctx.given = tuple(t is not None for t in tensors[:14])
    ctx.config = (mode, is_complex, eps, piece)


def _backward(ctx, dout, _d_states, _d_mean, _d_rstd):
    *tensors, mean, rstd, states = ctx.saved_tensors
    grads = _pieces_backward_op(dout.contiguous(), *tensors, mean, rstd, states, *ctx.config)
    # x and the weights (the projections are part of this op), gamma, the phases, the norm and out_proj
    return (*(d if given else None for given, d in zip(ctx.given, grads)), None, None, None, None, None)


_pieces_op.register_autograd(_backward, setup_context=_setup_context)


def hgru_in_pieces(x: Tensor, w_p: Tensor, b_p: Optional[Tensor], w_z: Tensor, b_z: Optional[Tensor], w_g: Tensor,
                   b_g: Optional[Tensor], ln_weight: Tensor, ln_bias: Tensor, out_weight: Tensor,
                   out_bias: Optional[Tensor], *, mode: str, piece: int, is_complex: bool = True,
                   lower_bound: Optional[Tensor] = None, theta_forward: Optional[Tensor] = None,
                   theta_reverse: Optional[Tensor] = None, valid: Optional[Tensor] = None, eps: float = 1e-5
                   ) -> Tensor:
    """The HGRU layer from its input x (B, T, d): out_proj(LayerNorm(h) * SiLU(x w_g^T + b_g)), with h the
    scan of (1 - lam) SiLU(x w_p^T + b_p), lam = gamma + (1 - gamma) sigmoid(x w_z^T + b_z), a piece of
    ``piece`` steps at a time (``pieces_for`` says whether and how long). Complex channels are interleaved
    as in kernels/hgru_core.py's ``hgru_core``, whose results this gives to round-off."""
    return _pieces_op(x, w_p, b_p, w_z, b_z, w_g, b_g, lower_bound, theta_forward, theta_reverse, ln_weight,
                      ln_bias, out_weight, out_bias, valid, mode, bool(is_complex), float(eps), int(piece))[0]
