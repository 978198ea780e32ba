"""The fused HGRU core for long sequences, a piece of time at a time (kernels/hgru_core.py's
``_core_forward`` and ``_core_backward`` do the same work on whole (B, T, .) tensors).

Why: at T = 16384 a d 64 training step peaked at 20 units of (T, 64) floats, 13 of them inside one HGRU's
backward: recomputed p and z, lam, u, the gradient reaching h, the output gate's gradient, du and d log lam
(docs/performance.md, sixth pass). Cut into pieces of ``piece`` steps, each of those exists for one piece at
a time. What stays whole in the backward is the gradient of the layer's input (the projections' backward is
done here, so dp, dz and dg are never whole) and, in bidirectional mode, the gradient reaching h, which
both directions' backward sweeps read. The forward keeps no whole gate, input or state either.

Pieces are passed what their neighbours hand over: a direction's state entering the piece, and in the
backward the carry conj(a) G from the step after it (kernels/cpu_native.c takes both). For pieces
c = 0 .. n-1 in time order, on the native CPU kernels:

- forward: (1) left to right, the forward direction's state entering each piece; (2) right to left, per
  piece: the gate pass, both directions' states (the reverse one from the state the piece to its right
  handed over) and the output stage.
- backward: (1) as in the forward, with p and z projected again from the layer's input x; (2) right to left,
  per piece: the projections, the gate pass, both directions' states, the output stage's backward (giving
  the gradient reaching h and dg), the forward direction's scan backward, the gate's backward and the
  projections' backward; (3) bidirectional only, left to right: the reverse direction's scan backward with
  its own carry, then the gate's and projections' backward again. The gate's backward is linear in
  (du, d log lam), so doing it once per direction and adding gives the gradients of doing it on their sum.

The price is more passes: p and z projected up to three times in the backward instead of once, the gate
pass two or three times, one more scan of the forward direction each way. So only sequences of at least
``MIN_PIECES`` pieces run this way (``piece_length``); the figures are in docs/performance.md, seventh pass.
"""
from __future__ import annotations

import os
from typing import Optional

import torch
from torch import Tensor

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


class _Piece:
    """One piece of time [t0, t1): the gate lam and scan input u of the native gate pass, from p and z (in
    the backward projected again from the layer's input x, whose slice it keeps)."""

    def __init__(self, t0: int, t1: int, gamma: Optional[Tensor], valid: Optional[Tensor], complex_: bool, *,
                 p: Optional[Tensor] = None, z: Optional[Tensor] = None, x: Optional[Tensor] = None,
                 weights: tuple = (), dtype: Optional[torch.dtype] = None):
        self.t0, self.t1 = t0, t1
        self.valid = None if valid is None else valid[:, t0:t1].contiguous()
        if x is not None:
            self.x = x[:, t0:t1]
            self.p, self.z = core._projections(self.x, dtype, *weights)
        else:
            self.p, self.z = p[:, t0:t1].contiguous(), z[:, t0:t1].contiguous()
        self.lam, self.u = cpu_native.gate_input(self.p, self.z, gamma, self.valid)
        self.uc = core._complex_view(self.u, complex_)


class _Scans:
    """A direction's scan over one piece, forward ("f", in time order) or reverse ("r"), and its backward,
    each started from what the neighbouring piece handed over (cpu_native.c takes the entering state and
    the carried gradient)."""

    def __init__(self, theta_f: Optional[Tensor], theta_r: Optional[Tensor], complex_: bool, acc: torch.dtype):
        self.kind = cpu_native.GATE_PHASE if complex_ else cpu_native.GATE_REAL
        self.phase = {k: None if (th is None or not complex_) else
                      torch.stack([torch.cos(th.to(acc)), torch.sin(th.to(acc))], dim=-1)
                      for k, th in (("f", theta_f), ("r", theta_r))}
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


def pieces_forward(p: Tensor, z: Tensor, g: Tensor, gamma: Optional[Tensor], theta_f: Optional[Tensor],
                   theta_r: Optional[Tensor], ln_w: Tensor, ln_b: Tensor, out_w: Tensor, out_b: Optional[Tensor],
                   valid: Optional[Tensor], mode: str, complex_: bool, eps: float, piece: int
                   ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """kernels/hgru_core.py's forward a piece of time at a time: (out (B*T, out), mean, rstd (B*T, 1), the
    entering states (``states_shape``), which spare the backward a sweep).

    The forward direction's entering states first (left to right); then, right to left, each piece's
    states of both directions and its output stage, so that no (B, T, D) gate, input or state is whole."""
    acc = core._acc(p)
    B, T, I = p.shape
    bounds = _bounds(T, piece)
    scans = _Scans(theta_f, theta_r, complex_, acc)
    states = p.new_zeros(states_shape(mode, B, T, I, piece), dtype=acc)

    def make(c: int) -> _Piece:
        return _Piece(*bounds[c], gamma, valid, complex_, p=p, z=z)

    for c in range(len(bounds) - 1):  # the forward direction's state entering each piece
        pc = make(c)
        h = torch.empty_like(pc.uc)
        scans.states(pc, h, "f", _state(states, 0, c, complex_), "h")
        _state(states, 0, c + 1, complex_).copy_(h[:, -1])
        del pc, h
    out = p.new_empty((B, T, out_w.shape[0]))
    mean, rstd = p.new_empty((B, T, 1), dtype=acc), p.new_empty((B, T, 1), dtype=acc)
    w, b = ln_w.to(acc), ln_b.to(acc)
    for c in reversed(range(len(bounds))):
        pc = make(c)
        t0, t1 = pc.t0, pc.t1
        h = _piece_states(pc, scans, states, c, mode, complex_)
        del pc
        o, m, r = core._output_forward(core._real_view(h, complex_), g[:, t0:t1], w, b, out_w, out_b, eps, p.dtype)
        out[:, t0:t1] = o.view(B, t1 - t0, -1)
        mean[:, t0:t1], rstd[:, t0:t1] = m.view(B, t1 - t0, 1), r.view(B, t1 - t0, 1)
        del h, o
    return out.view(B * T, -1), mean.view(B * T, 1), rstd.view(B * T, 1), states


def _piece_states(pc: _Piece, scans: _Scans, states: Tensor, c: int, mode: str, complex_: bool,
                  record: bool = True) -> Tensor:
    """h over piece c: the sum of both directions' states (bidirectional) or the forward one's, each from
    its entering state in ``states``. Sweeping right to left with ``record``, the reverse direction's state
    leaving the piece is written down as the one entering piece c - 1."""
    h = torch.empty_like(pc.uc)
    if mode == "bidirectional":
        scans.states(pc, h, "r", _state(states, 1, c, complex_), "h")
        if record and c > 0:
            _state(states, 1, c - 1, complex_).copy_(h[:, 0])
    scans.states(pc, h, "f", _state(states, 0, c, complex_), "add" if mode == "bidirectional" else "h")
    return h


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
                     states: Tensor, mode: str, complex_: bool, eps: float, dtype: torch.dtype, piece: int
                     ) -> tuple[Tensor, ...]:
    """The gradients of the HGRU core with all three projections recomputed, for
    (x, w_p, b_p, w_z, b_z, w_g, b_g, gamma, theta_f, theta_r, ln_w, ln_b, out_w, out_b); None for an input
    that is None. ``states``: the entering states ``pieces_forward`` returned; ``dtype``: the projections'
    (p's) dtype; ``piece``: steps per piece (the forward's)."""
    if mode not in ("causal", "bidirectional"):
        raise ValueError(f"pieces_backward: mode {mode!r} has no pieces of time; use the whole-tensor backward")
    acc = core._acc(torch.empty(0, dtype=dtype))
    B, T, _ = x.shape
    weights = (w_p, b_p, w_z, b_z, w_g, b_g)
    grads = _Grads(x, weights, acc)
    scans = _Scans(theta_f, theta_r, complex_, acc)
    bounds = _bounds(T, piece)

    def make(c: int) -> _Piece:
        return _Piece(*bounds[c], gamma, valid, complex_, x=x, weights=weights[:4], dtype=dtype)

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
    dh_whole: Optional[Tensor] = None  # the gradient reaching h, which the reverse direction reads in step 3
    carry: Optional[Tensor] = None
    w, b = ln_w.to(acc), ln_b.to(acc)
    d_ln_w, d_ln_b, d_out_w = torch.zeros_like(w), torch.zeros_like(b), torch.zeros(out_w.shape, dtype=acc)
    for c in reversed(range(len(bounds))):
        pc = make(c)
        t0, t1 = pc.t0, pc.t1
        h = _piece_states(pc, scans, states, c, mode, complex_, record=False)
        dfeat, dg, dw_ln, db_ln, dw_out = core._output_backward(
            dout[:, t0:t1], core._real_view(h, complex_), None, (pc.x, w_g, b_g), mean[:, t0:t1],
            rstd[:, t0:t1], w, b, out_w, eps, dtype)
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
# Registration: an opaque op for torch.compile; kernels/hgru_core.py's registered autograd calls it


@torch.library.custom_op("hgrn::hgru_core_backward_pieces", mutates_args=())
def _pieces_backward_op(
    dout: Tensor, x: Tensor, w_p: Tensor, b_p: Optional[Tensor], w_z: Tensor, b_z: Optional[Tensor], w_g: Tensor,
    b_g: Optional[Tensor], gamma: Optional[Tensor], theta_f: Optional[Tensor], theta_r: Optional[Tensor],
    ln_w: Tensor, ln_b: Tensor, out_w: Tensor, out_b: Optional[Tensor], valid: Optional[Tensor], mean: Tensor,
    rstd: Tensor, states: Tensor, mode: str, is_complex: bool, eps: float, piece: int,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor,
           Tensor]:
    inputs = (x, w_p, b_p, w_z, b_z, w_g, b_g, gamma, theta_f, theta_r, ln_w, ln_b, out_w, out_b)
    grads = pieces_backward(dout, x, w_p, b_p, w_z, b_z, w_g, b_g, gamma, theta_f, theta_r, ln_w, ln_b, out_w,
                             out_b, valid, mean, rstd, states, mode, is_complex, eps, x.dtype, piece)
    # each in its input's dtype; a custom op's outputs may not alias: an absent gradient is its own empty tensor
    return tuple(x.new_empty(0) if d is None or t is None else d.to(t.dtype) for d, t in zip(grads, inputs))


@_pieces_backward_op.register_fake
def _(dout, x, w_p, b_p, w_z, b_z, w_g, b_g, gamma, theta_f, theta_r, ln_w, ln_b, out_w, out_b, valid, mean, rstd,
      states, mode, is_complex, eps, piece):
    inputs = (x, w_p, b_p, w_z, b_z, w_g, b_g, gamma, theta_f, theta_r, ln_w, ln_b, out_w, out_b)
    return tuple(x.new_empty(0) if t is None else torch.empty_like(t) for t in inputs)
