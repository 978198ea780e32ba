"""The fused HGRU recurrence: from the projections' outputs to the normalised, gated input of out_proj.

    o = LayerNorm(h) * SiLU(g),  h = sum over directions of scan((1 - lam) * SiLU(p), lam * e^{i theta})

with the forget gate lam = gamma + (1 - gamma) * sigmoid(z) (``forget_mode="data"``) or the lower bound gamma
alone (``"bound"``), computed directly for the CPU scans and in log space for the Triton ones. One autograd
node per layer instead of a dozen: the forward keeps only its inputs (p, z, g, the small parameters; or,
with ``recompute_from``, the projections' input instead of p, z and g) plus the LayerNorm statistics, and,
in causal mode off the native CPU kernels, the state h (recomputing it there costs a whole scan); the
backward recomputes the cheap elementwise intermediates (gate, (1 - lam) * c, the gates e^{+-i theta}) and,
for bidirectional and 2D mixers, every direction's states, instead of saving 2d-wide complex tensors per
direction. The output stage (LayerNorm, output gate, out_proj and their gradients) runs a block of rows at a
time (kernels/row_blocks.py), so its temporaries are never whole (B, T, inner) tensors.

Layout: complex channels stay interleaved (re, im) exactly as input_proj writes them, so packing is a free
view (``torch.view_as_complex``); the LayerNorm and the output gate work on the interleaved order too (the
caller permutes the LayerNorm affine, the gate projection's rows and out_proj's columns to match; see
models/hgru.py). 2D mode scans rows as (B*H, W, D) and columns as (B, H, W*D) views of the same
contiguous tensor: no transposed copies.

Both passes are ``torch.library.custom_op``s (with fake implementations and a registered autograd), so
``torch.compile`` traces a whole HGRN without a graph break. The scans run on the native CPU kernels
(kernels/cpu_native.c; one sweep per direction forward, one call per direction backward, no gate tensor) or,
where those cannot be built, the chunked PyTorch scan (kernels/cpu_scan.py) for CPU tensors, and on the
Triton kernels (kernels/triton_scan_kernels.py) otherwise.
Why some elementwise steps are written the way they are (no log1p, no mixed real/complex products, sums as
matrix-vector products) is measured in docs/performance.md.
"""
from __future__ import annotations

import os
from typing import Optional

import torch
from torch import Tensor
from torch.nn import functional as F

from . import cpu_native
from .cpu_scan import scan_with_gate
from .row_blocks import add_product, row_blocks

MODES = ("causal", "bidirectional", "2d")
FORGET_MODES = ("data", "bound")
_TINY = torch.finfo(torch.float32).tiny


def _acc(t: Tensor) -> torch.dtype:
    return torch.float64 if t.dtype == torch.float64 else torch.float32


# ---------------------------------------------------------------------------------------------------------
# The forget gate and the scan input


def _gate(z: Optional[Tensor], gamma: Optional[Tensor], forget_mode: str, acc: torch.dtype) -> tuple[Tensor, Tensor]:
    """(lam, 1 - lam) in ``acc``: (B, T, D) each, or (D,) each in ``"bound"`` mode.

    Computed directly, lam = gamma + (1 - gamma) sigmoid(z), not through log lam (the CPU scans take the gate
    itself): sigmoid costs a fraction of logsigmoid and logaddexp, whose log1p is many times slower than exp
    on the CPU. 1 - lam = (1 - gamma) sigmoid(-z) as in models/hgru.py, so small values keep their precision;
    lam is at least the smallest normal float, as exp(log lam) is on the unfused path (the backward divides
    by it).
    """
    if forget_mode == "bound":
        lam = gamma.to(acc).clamp_min(_TINY)
    elif gamma is None:
        lam = torch.sigmoid(z.to(acc)).clamp_min_(_TINY)
    else:
        gam = gamma.to(acc)
        lam = torch.addcmul(gam, 1 - gam, torch.sigmoid(z.to(acc))).clamp_min_(_TINY)
    return lam, _one_minus_gate(z, gamma, forget_mode, acc)


def _one_minus_gate(z: Optional[Tensor], gamma: Optional[Tensor], forget_mode: str, acc: torch.dtype) -> Tensor:
    """1 - lam alone (as ``_gate`` computes it), for a backward that let it go while it was not needed."""
    if forget_mode == "bound":
        return 1 - gamma.to(acc)
    om = torch.sigmoid(-z.to(acc))
    return om if gamma is None else om.mul_(1 - gamma.to(acc))


def _log_gate(z: Optional[Tensor], gamma: Optional[Tensor], forget_mode: str, shape: tuple[int, int, int],
              acc: torch.dtype) -> Tensor:
    """log lam (B, T, D) in ``acc``, with the formulas of models/hgru.py, for the Triton scans (which take the
    log gate: a gate near 1 keeps its precision there)."""
    if forget_mode == "bound":
        return torch.log(gamma.to(acc).clamp_min(_TINY)).expand(shape).contiguous()
    zf = z.to(acc)
    if gamma is None:
        return F.logsigmoid(zf)
    gam = gamma.to(acc)
    return torch.logaddexp(torch.log(gam.clamp_min(_TINY)), torch.log1p(-gam) + F.logsigmoid(zf))


def _gate_backward(z: Optional[Tensor], gamma: Optional[Tensor], forget_mode: str, lam: Tensor, d_log: Tensor,
                   d_om: Tensor) -> tuple[Optional[Tensor], Optional[Tensor]]:
    """Gradients (dz, dgamma) of the gate from those of log lam and of 1 - lam (what autograd gives on the
    unfused path). ``d_log`` is consumed (overwritten).

    With s = sigmoid(z), lam = gamma + (1 - gamma) s and r = d_log / lam - d_om: dz = (1 - gamma) s (1 - s) r,
    and d gamma = sum of (live - s) d_log / lam - (1 - s) d_om = sum of (live - 1) d_log / lam + (1 - s) r,
    where live = 1[gamma >= tiny] (the unfused path's clamp keeps a bound of exactly 0 finite and drops its
    log term).
    """
    if forget_mode == "bound":
        gam = gamma.to(d_log.dtype)
        live = (gam >= _TINY).to(gam.dtype)
        d_gamma = _channel_sum(d_log) * live / gam.clamp_min(_TINY) - d_om
        return None, d_gamma
    zf = z.to(d_log.dtype)
    r = d_log.div_(lam)
    if gamma is None:  # dz = s (1 - s) r
        sn = torch.sigmoid(-zf)
        return r.sub_(d_om).mul_(sn).mul_(torch.sigmoid(zf)), None
    gam = gamma.to(d_log.dtype)
    live = (gam >= _TINY).to(gam.dtype)
    d_gamma = None
    if bool((live < 1).any()):
        d_gamma = (live - 1) * _channel_sum(r)
    q = r.sub_(d_om).mul_(torch.sigmoid(-zf))  # (1 - s) r
    part = _channel_sum(q)
    d_gamma = part if d_gamma is None else d_gamma.add_(part)
    return q.mul_(torch.sigmoid(zf)).mul_(1 - gam), d_gamma


def _channel_sum(t: Tensor) -> Tensor:
    """Sum of a contiguous (..., D) tensor over every axis but the last, as a matrix-vector product: on the
    CPU several times faster than ``sum`` over the leading axes, and for the imaginary part of a complex
    tensor (summed through its real view) over ten times faster than ``t.imag.sum``."""
    flat = t.reshape(-1, t.shape[-1])
    return torch.ones(flat.shape[0], dtype=flat.dtype, device=flat.device) @ flat


def _scale_(x: Tensor, s: Tensor) -> Tensor:
    """x *= s in place, for a real or complex x (B, T, D) and a real s ((B, T, D) or (D,)).

    Never a mixed real/complex product: on the CPU PyTorch runs those through a per-element casting loop
    that was measured erratically 10-50 times slower than the same-dtype kernels used here (the real and
    imaginary parts scaled as strided real views, or a per-channel factor cast to complex first)."""
    if not x.is_complex():
        return x.mul_(s)
    if s.dim() == 1:
        return x.mul_(s.to(x.dtype))
    x.real.mul_(s)
    x.imag.mul_(s)
    return x


def _scan_input(p: Tensor, om: Tensor, valid: Optional[Tensor], complex_: bool, acc: torch.dtype) -> Tensor:
    """u = (1 - lam) * SiLU(p) (interleaved pairs share their channel's gate), zero where not valid."""
    u = F.silu(p.to(acc))
    _scale_(_complex_view(u, complex_), om)
    if valid is not None:
        u.mul_(valid.to(acc).unsqueeze(-1))
    return u


# ---------------------------------------------------------------------------------------------------------
# Directions: (view of a (B, T, D) tensor as (B', L, D'), reverse, which phase)


def _directions(mode: str, B: int, T: int, D: int, H: int, W: int) -> list[tuple[tuple[int, int, int], bool, str]]:
    if mode == "causal":
        return [((B, T, D), False, "f")]
    if mode == "bidirectional":
        return [((B, T, D), False, "f"), ((B, T, D), True, "r")]
    rows, cols = (B * H, W, D), (B, H, W * D)  # consecutive directions share a phase (one gate at a time)
    return [(rows, False, "f"), (cols, False, "f"), (rows, True, "r"), (cols, True, "r")]


def _complex_view(t: Tensor, complex_: bool) -> Tensor:
    """The (B, T, D) state/input tensor: complex view of interleaved (B, T, 2D) floats, or t itself."""
    if not complex_:
        return t
    B, T, I = t.shape
    return torch.view_as_complex(t.view(B, T, I // 2, 2))


def _real_view(t: Tensor, complex_: bool) -> Tensor:
    """A (B, T, D) complex tensor as the (B, T, 2D) interleaved floats it is stored as; a real one as is."""
    return torch.view_as_real(t).view(*t.shape[:2], -1) if complex_ else t


class _CpuScans:
    """The scans on the chunked CPU scan, from the gate magnitude lam ((B, T, D), or (D,) for a gate that is
    the same at every position, which is then only broadcast). The complex gate lam e^{+-i theta} is built
    for one phase at a time and reused while consecutive directions share it (the direction lists are
    ordered so that they do), so at most one 2d-wide gate exists at a time."""

    def __init__(self, lam: Tensor, thetas: dict[str, Optional[Tensor]], complex_: bool):
        self.lam, self.thetas, self.complex = lam, thetas, complex_
        self._key: Optional[tuple[str, bool]] = None
        self._gate: Optional[Tensor] = None

    def gate(self, which: str, conj: bool, shape) -> Tensor:
        """The gate of direction ``which`` (conjugated with ``conj``) as a (B', L, D') view ``shape``."""
        g = self.lam
        if self.complex:
            if self._key != (which, conj):
                if self._key == (which, not conj):
                    self._gate = self._gate.conj_physical_()  # same phase, other sign: flip it in place
                else:
                    self._gate = None
                    th = self.thetas[which].to(self.lam.dtype)
                    phase = torch.complex(torch.cos(th), -torch.sin(th) if conj else torch.sin(th))
                    # cast, then complex times complex in place: on the CPU both a (B, T, D, 1) * (D, 2) product
                    # on interleaved pairs and real (B, T, D) * complex (D,) are many times slower
                    self._gate = self.lam.to(phase.dtype).mul_(phase)
                self._key = (which, conj)
            g = self._gate
        if g.dim() == 1:  # one gate per channel: a 2D column view (B, H, W*D) repeats it W times
            reps = shape[2] // g.shape[0]
            return (g.repeat(reps) if reps > 1 else g).expand(shape)
        return g.reshape(shape)

    def release(self) -> None:
        self._gate = self._key = None

    def forward(self, u: Tensor, shape, reverse: bool, which: str, last_use: bool = False) -> Tensor:
        """One direction's states. ``last_use``: no later direction needs this gate, so the states are
        written over it (one 2d-wide allocation fewer)."""
        a = self.gate(which, False, shape)
        if last_use and self.complex and self._gate is not None and self._gate.dim() > 1:
            self._gate = self._key = None
            return scan_with_gate(u.reshape(shape), a, None, reverse, out=a)
        return scan_with_gate(u.reshape(shape), a, None, reverse)

    def backward(self, dh: Tensor, shape, reverse: bool, which: str) -> Tensor:
        """G, the gradient reaching each state: the output-gradient scan against the scan's direction with
        the conjugated gate one step further along."""
        a = self.gate(which, True, shape)
        g = dh.reshape(shape)
        G = torch.empty_like(g)
        if reverse:  # G_t = g_t + conj(a_{t-1}) G_{t-1}
            G[:, 0] = g[:, 0]
            if shape[1] > 1:
                scan_with_gate(g[:, 1:], a[:, :-1], G[:, 0], False, out=G[:, 1:])
        else:  # G_t = g_t + conj(a_{t+1}) G_{t+1}
            G[:, -1] = g[:, -1]
            if shape[1] > 1:
                scan_with_gate(g[:, :-1], a[:, 1:], G[:, -1], True, out=G[:, :-1])
        return G


def native_phases(thetas: dict[str, Optional[Tensor]], complex_: bool, dtype: torch.dtype
                  ) -> dict[str, Optional[Tensor]]:
    """Each direction's phase as the native kernels take it: (D, 2) cos/sin of theta (None: a real scan or no
    theta)."""
    return {k: None if (th is None or not complex_) else
            torch.stack([torch.cos(th.to(dtype)), torch.sin(th.to(dtype))], dim=-1) for k, th in thetas.items()}


class _NativeScans:
    """The scans on the native CPU kernels (kernels/cpu_native.c), from the gate magnitude lam ((B, T, D), or
    (D,) for a per-channel gate, read with zero strides) and each direction's phase (cos, sin) per channel:
    no gate tensor is built at all, and a direction's whole backward (the gradient scan, the gate's
    gradients and the input's) is one call: a sweep that keeps the state entering every 64 steps, then one
    backward sweep that recomputes the gated previous states a_t h_{t-1} of 64 steps at a time just before it
    needs them, so no (B, T, D) buffer of them exists."""

    def __init__(self, lam: Tensor, thetas: dict[str, Optional[Tensor]], complex_: bool):
        self.lam, self.complex = lam, complex_
        self.phases = native_phases(thetas, complex_, lam.dtype)
        self.kind = cpu_native.GATE_PHASE if complex_ else cpu_native.GATE_REAL

    def _repeat(self, t: Tensor, shape) -> Tensor:
        """A per-channel (D, ...) tensor for a (B', L, D') view: a 2D column view repeats it W times."""
        reps = shape[2] // t.shape[0]
        return t.repeat(reps, *([1] * (t.dim() - 1))) if reps > 1 else t

    def _gate(self, shape) -> Tensor:
        if self.lam.dim() == 1:
            return self._repeat(self.lam, shape).expand(shape)
        return self.lam.reshape(shape)

    def _phase(self, which: str, shape) -> Optional[Tensor]:
        ph = self.phases[which]
        return None if ph is None else self._repeat(ph, shape)

    def states(self, u: Tensor, shape, reverse: bool, which: str, out: Tensor, store: str = "h") -> Tensor:
        """One direction's scan of u into ``out`` (B, T, D): its states ("h") or added to out ("add")."""
        cpu_native.scan_forward(u.reshape(shape), self._gate(shape), out.reshape(shape), kind=self.kind,
                                reverse=reverse, phase=self._phase(which, shape), store=store)
        return out

    def backward(self, dh: Tensor, u: Tensor, shape, reverse: bool, which: str, du: Tensor, dlog: Tensor,
                 init: bool) -> Optional[Tensor]:
        """du (+)= G and dlog (+)= Re conj(v) G for one direction whose input is ``u`` (the kernel recomputes
        its gated previous states v = a_t h_{t-1} a chunk of steps at a time); returns the direction's theta
        gradient (D,) for complex scans."""
        B1, L, D1 = shape
        dtheta = torch.empty(B1, D1, dtype=self.lam.dtype) if self.complex else None
        cpu_native.scan_backward(dh.reshape(shape), self._gate(shape), None, du.reshape(shape), x=u.reshape(shape),
                                 kind=self.kind, reverse=reverse, init=init, phase=self._phase(which, shape),
                                 dlog=dlog.reshape(shape), dtheta=dtheta)
        if dtheta is None:
            return None
        part = _channel_sum(dtheta)  # (D',): a column view's W*D channels fold back onto D
        return part.view(-1, self.lam.shape[-1]).sum(0) if D1 != self.lam.shape[-1] else part

    def release(self) -> None:
        pass


# ---------------------------------------------------------------------------------------------------------
# The two passes


def _check(p: Tensor, z: Optional[Tensor], g: Tensor, gamma: Optional[Tensor], forget_mode: str, mode: str,
           complex_: bool, H: int, W: int) -> None:
    if mode not in MODES:
        raise ValueError(f"hgru_core: unknown mode {mode!r}; choose one of {', '.join(MODES)}")
    if forget_mode not in FORGET_MODES:
        raise ValueError(f"hgru_core: forget_mode must be one of {FORGET_MODES} (no memory needs no scan), got {forget_mode!r}")
    if p.dim() != 3 or g.shape != p.shape:
        raise ValueError(f"hgru_core: p and g must be (B, T, inner) of one shape, got {tuple(p.shape)} and {tuple(g.shape)}")
    if complex_ and p.shape[-1] % 2:
        raise ValueError(f"hgru_core: a complex HGRU needs an even inner width, got {p.shape[-1]}")
    if forget_mode == "data" and z is None:
        raise ValueError("hgru_core: forget_mode 'data' needs the gate logits z")
    if forget_mode == "bound" and gamma is None:
        raise ValueError("hgru_core: forget_mode 'bound' needs the lower bound gamma")
    if mode == "2d" and H * W != p.shape[1]:
        raise ValueError(f"hgru_core: 2D grid {H} x {W} does not hold {p.shape[1]} tokens")


def _states(u: Tensor, scans, dirs, complex_: bool, keep: bool) -> tuple[Tensor, list[Tensor]]:
    """h (the sum over directions, a complex or real (B, T, D) tensor) and, with ``keep``, the states of every
    direction but the last (the backward gets the last one as h minus the others)."""
    uc = _complex_view(u, complex_)
    B, T, D = uc.shape
    h: Optional[Tensor] = None
    kept = []
    for k, (shape, reverse, which) in enumerate(dirs):
        last_use = k == len(dirs) - 1 or dirs[k + 1][2] != which
        hd = scans.forward(uc, shape, reverse, which, last_use).reshape(B, T, D)
        if keep and k < len(dirs) - 1:
            kept.append(hd)
            h = hd.clone() if h is None else h.add_(hd)
        else:
            h = hd if h is None else h.add_(hd)
    return h, kept


def _uses_native(t: Tensor) -> bool:
    """Whether the scans over tensors like ``t`` run on the native CPU kernels (see ``_scans_for``)."""
    choice = os.environ.get("HGRN_SCAN_IMPL", "auto")
    if choice in ("triton", "reference") or (choice == "auto" and t.device.type != "cpu"):
        return False
    return cpu_native.supports(t.reshape(1, 1, -1)) and cpu_native.available()


def _scans_for(lam: Tensor, z: Optional[Tensor], gamma: Optional[Tensor], forget_mode: str,
               valid: Optional[Tensor], theta_f: Optional[Tensor], theta_r: Optional[Tensor], complex_: bool,
               shape: tuple[int, int, int]):
    """The scans for these tensors. CPU tensors: the native kernels where they are built (kernels/cpu_native.py;
    HGRN_CPU_NATIVE=off turns them off), else the chunked PyTorch scan; other devices: Triton.
    HGRN_SCAN_IMPL=triton forces Triton (on the CPU under TRITON_INTERPRET=1, as kernels/scan.py does),
    ``reference`` the PyTorch scan, ``cpu`` the CPU choice above. ``lam`` is the gate magnitude, already 1
    where not ``valid``; the Triton scans take log lam instead."""
    thetas = {"f": theta_f, "r": theta_r}
    if _uses_native(lam):
        return _NativeScans(lam, thetas, complex_)
    choice = os.environ.get("HGRN_SCAN_IMPL", "auto")
    if choice in ("cpu", "reference") or (choice != "triton" and lam.device.type == "cpu"):
        return _CpuScans(lam, thetas, complex_)
    from .hgru_core_triton import TritonScans

    log_lam = _log_gate(z, gamma, forget_mode, shape, lam.dtype)
    if valid is not None:
        log_lam = log_lam * valid.to(lam.dtype).unsqueeze(-1)
    return TritonScans(log_lam, thetas, complex_)


def _masked_gate(z, gamma, forget_mode, valid, acc) -> tuple[Tensor, Tensor]:
    """(lam, 1 - lam) with lam = 1 (an identity step) where not ``valid``."""
    lam, om = _gate(z, gamma, forget_mode, acc)
    if valid is not None:
        lam = torch.where(valid.unsqueeze(-1), lam, torch.ones((), dtype=acc, device=lam.device))
    return lam, om


# The native gate pass on (True) or off (False: the PyTorch ops above), for in-process A/B timings
# (benchmarks/profile_layer.py --ab ... --variants fused fused-torch-gate)
USE_NATIVE_GATE = True


def _native_gate(p: Tensor, z: Optional[Tensor], gamma: Optional[Tensor], forget_mode: str) -> bool:
    """Whether the gate and scan input (and their backward) run as one native pass each
    (kernels/cpu_native.c ``hgru_gate_input``): with the native scans, a data-dependent gate, and p, z and
    gamma contiguous in one float precision (not under autocast's lower one)."""
    return (USE_NATIVE_GATE and forget_mode == "data" and _uses_native(p)
            and cpu_native.gate_input_supports(p, z, gamma))


def _gate_and_input(p: Tensor, z: Optional[Tensor], gamma: Optional[Tensor], forget_mode: str,
                    valid: Optional[Tensor], complex_: bool, acc: torch.dtype
                    ) -> tuple[Tensor, Optional[Tensor], Tensor]:
    """(lam, 1 - lam, u): lam = 1 and u = 0 where not ``valid``. In one native pass where ``_native_gate``
    allows, which does not return 1 - lam (None): its backward recomputes it."""
    if _native_gate(p, z, gamma, forget_mode):
        lam, u = cpu_native.gate_input(p, z, gamma, valid)
        return lam, None, u
    lam, om = _masked_gate(z, gamma, forget_mode, valid, acc)
    return lam, om, _scan_input(p, om, valid, complex_, acc)


def _core_forward(p, z, g, gamma, theta_f, theta_r, ln_w, ln_b, out_w, out_b, valid, mode, forget_mode, complex_,
                  H, W, eps, save_h):
    _check(p, z, g, gamma, forget_mode, mode, complex_, H, W)
    acc = _acc(p)
    B, T, I = p.shape
    D = I // 2 if complex_ else I
    lam, om, u = _gate_and_input(p, z, gamma, forget_mode, valid, complex_, acc)
    del om
    scans = _scans_for(lam, z, gamma, forget_mode, valid, theta_f, theta_r, complex_, (B, T, D))
    dirs = _directions(mode, B, T, D, H, W)
    if isinstance(scans, _NativeScans):
        h = _native_sum(u, scans, dirs, complex_)
    else:
        h, _ = _states(u, scans, dirs, complex_, keep=False)
    del u, lam, scans
    feat = _real_view(h, complex_)
    out, mean, rstd = _output_forward(feat, g, ln_w.to(acc), ln_b.to(acc), out_w, out_b, eps, p.dtype)
    saved = feat if save_h else feat.new_empty(0)
    return out.view(B, T, -1), saved, mean.view(B, T, 1), rstd.view(B, T, 1)


# ---------------------------------------------------------------------------------------------------------
# The output stage, o = LayerNorm(h) * SiLU(g) -> out_proj, a block of rows at a time (kernels/row_blocks.py)


def _output_forward(feat: Tensor, g: Tensor, w: Tensor, b: Tensor, out_w: Tensor, out_b: Optional[Tensor],
                    eps: float, dtype: torch.dtype) -> tuple[Tensor, Tensor, Tensor]:
    """(out_proj(LayerNorm(feat) * SiLU(g)) as (rows, out), the LayerNorm's mean and rstd as (rows, 1))."""
    I = feat.shape[-1]
    feat2, g2 = feat.reshape(-1, I), g.reshape(-1, I)
    rows, acc = feat2.shape[0], feat.dtype
    out = feat.new_empty((rows, out_w.shape[0]), dtype=dtype)
    mean, rstd = feat.new_empty((rows, 1)), feat.new_empty((rows, 1))
    w_o, b_o = out_w.to(dtype).t(), None if out_b is None else out_b.to(dtype)
    for rs in row_blocks(rows, I):
        y, mean[rs], rstd[rs] = torch.native_layer_norm(feat2[rs], [I], w, b, eps)
        o = y.mul_(F.silu(g2[rs].to(acc))).to(dtype)
        if b_o is None:
            torch.mm(o, w_o, out=out[rs])
        else:
            torch.addmm(b_o, o, w_o, out=out[rs])
    return out, mean, rstd


def _output_backward(dout: Tensor, feat: Tensor, g: Optional[Tensor], g_from: tuple, mean: Tensor, rstd: Tensor,
                     w: Tensor, b: Tensor, out_w: Tensor, eps: float, dtype: torch.dtype
                     ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """(d feat, d g, d ln_w, d ln_b, d out_w) of ``_output_forward``, block by block: the normalised feat is
    recomputed (the statistics are the saved ones, bit for bit: same rows, same kernel), and g too when it is
    None, from ``g_from`` = (x, w_g, b_g): then it never exists whole."""
    I = feat.shape[-1]
    feat2, dout2 = feat.reshape(-1, I), dout.reshape(-1, dout.shape[-1])
    rows, acc = feat2.shape[0], feat.dtype
    g2 = None if g is None else g.reshape(-1, I)
    x2 = None if g_from[0] is None else g_from[0].reshape(-1, g_from[0].shape[-1])
    mean2, rstd2 = mean.reshape(-1, 1), rstd.reshape(-1, 1)
    g_dtype = dtype if g is None else g.dtype
    dfeat = torch.empty_like(feat2)
    dg = feat2.new_empty((rows, I), dtype=g_dtype)
    dw, db = torch.zeros_like(w), torch.zeros_like(b)
    d_out_w = out_w.new_zeros(out_w.shape, dtype=acc)
    w_o = out_w.to(dout.dtype)
    for rs in row_blocks(rows, I):
        g_block = g2[rs] if g2 is not None else _projections(x2[rs], dtype, g_from[1], g_from[2])[0]
        gf = g_block.to(acc)
        del g_block
        y = torch.native_layer_norm(feat2[rs], [I], w, b, eps)[0]
        sg = F.silu(gf)
        o = torch.mul(y, sg).to(dtype)
        add_product(d_out_w, dout2[rs].t(), o)
        del o
        do = dout2[rs].mm(w_o).to(acc)
        if g_dtype == acc:
            torch.ops.aten.silu_backward.grad_input(y.mul_(do), gf, grad_input=dg[rs])
        else:
            dg[rs] = torch.ops.aten.silu_backward.grad_input(y.mul_(do), gf, grad_input=y)
        del y, gf
        dy = sg.mul_(do)
        del do
        dfeat[rs], dw_part, db_part = torch.ops.aten.native_layer_norm_backward(
            dy, feat2[rs], [I], mean2[rs], rstd2[rs], w, b, [True, True, True])
        dw.add_(dw_part)
        db.add_(db_part)
    return dfeat.view(feat.shape), dg, dw, db, d_out_w


def _native_sum(u: Tensor, scans: "_NativeScans", dirs, complex_: bool) -> Tensor:
    """h, the sum of every direction's states, each swept onto one buffer."""
    uc = _complex_view(u, complex_)
    hsum = torch.empty_like(uc)
    for k, (shape, reverse, which) in enumerate(dirs):
        scans.states(uc, shape, reverse, which, hsum, store="add" if k else "h")
    return hsum


def _native_scan_backward(dh: Tensor, u: Tensor, scans: "_NativeScans", dirs, complex_: bool):
    """(du, d_log, d_theta) from the native kernels: one backward sweep per direction, each recomputing its
    gated previous states from u a chunk of steps at a time. Nothing of (B, T, D) size is alive but the
    inputs and the two gradients: no per-direction states, no G, no products."""
    uc = _complex_view(u, complex_)
    du = torch.empty_like(uc)
    d_log = torch.empty(uc.shape, dtype=scans.lam.dtype)
    d_theta: dict[str, Optional[Tensor]] = {"f": None, "r": None}
    for k, (shape, reverse, which) in enumerate(dirs):
        part = scans.backward(dh, uc, shape, reverse, which, du, d_log, init=k == 0)
        if part is not None:
            d_theta[which] = part if d_theta[which] is None else d_theta[which].add_(part)
    return du, d_log, d_theta


def _torch_states(u: Tensor, h_saved: Tensor, scans, dirs, complex_: bool) -> tuple[Tensor, list[Tensor]]:
    """(h, the states of every direction but the last) for the PyTorch and Triton scans: h is the saved sum
    or is recomputed with them (the last direction's states are later taken as h minus the others)."""
    B, T = u.shape[:2]
    if h_saved.numel():
        per_dir = [scans.forward(_complex_view(u, complex_), shape, reverse, which, dirs[k + 1][2] != which
                                 ).reshape(B, T, -1) for k, (shape, reverse, which) in enumerate(dirs[:-1])]
        hsum = _complex_view(h_saved, complex_)
    else:
        hsum, per_dir = _states(u, scans, dirs, complex_, keep=True)
    scans.release()  # the backward scans need the conjugated gates; they are rebuilt from lam there
    return hsum, per_dir


def _torch_scan_backward(dh: Tensor, u: Tensor, per_dir: list[Tensor], last: Tensor, scans, dirs, complex_: bool):
    """(du, d_log, d_theta) from the PyTorch or Triton scans: G_d per direction, then P = conj(v_d) G_d.
    ``last`` is h - u, which becomes the last direction's v once the others' states are taken off it."""
    B, T = u.shape[:2]
    uc = _complex_view(u, complex_)
    # v_d = a_t h_{t-1} = h_t - u_t per direction
    for hd in per_dir:
        last.sub_(hd)
    for hd in per_dir:
        hd.sub_(uc)
    vs = per_dir + [last]
    du: Optional[Tensor] = None
    d_log: Optional[Tensor] = None
    d_theta: dict[str, Optional[Tensor]] = {"f": None, "r": None}
    for k, (shape, reverse, which) in enumerate(dirs):
        G = scans.backward(dh, shape, reverse, which).reshape(B, T, -1)
        P = vs[k]
        vs[k] = None
        if complex_:
            P = P.conj_physical_().mul_(G)
            d_log = P.real.clone() if d_log is None else d_log.add_(P.real)
            part = _channel_sum(torch.view_as_real(P).reshape(B, T, -1))[1::2].contiguous()
            d_theta[which] = part if d_theta[which] is None else d_theta[which] + part
        else:
            P = P.mul_(G)
            d_log = P if d_log is None else d_log.add_(P)
        del P
        du = G if du is None else du.add_(G)
        del G
    scans.release()
    return du, d_log, d_theta


def _core_backward(dout, p, z, g, gamma, theta_f, theta_r, ln_w, ln_b, out_w, out_b, valid, h_saved, mean, rstd,
                   mode, forget_mode, complex_, H, W, eps, x=None, w_g=None, b_g=None):
    """The gradients of _core_forward's inputs. ``g`` None: it is projected here from (x, w_g, b_g), a block of
    rows at a time in the output stage, where it is needed, so it never exists whole."""
    acc = _acc(p)
    B, T, I = p.shape
    D = I // 2 if complex_ else I
    dirs = _directions(mode, B, T, D, H, W)
    lam, om, u = _gate_and_input(p, z, gamma, forget_mode, valid, complex_, acc)
    native_gate = om is None
    scans = _scans_for(lam, z, gamma, forget_mode, valid, theta_f, theta_r, complex_, (B, T, D))
    native = isinstance(scans, _NativeScans)
    # states: h (the sum over directions) and what each direction's backward needs of its own states
    if native:
        om = None  # recomputed at the end: one (B, T, D) tensor fewer at the peak (the scans' backward)
        hsum = _complex_view(h_saved, complex_) if h_saved.numel() else _native_sum(u, scans, dirs, complex_)
    else:
        hsum, per_dir = _torch_states(u, h_saved, scans, dirs, complex_)
    feat = _real_view(hsum, complex_)
    # out_proj, output gate and LayerNorm, before the scans' backward, so that fewer temporaries are alive at
    # once
    dfeat, dg, dw, db, d_out_w = _output_backward(dout, feat, g, (x, w_g, b_g), mean, rstd, ln_w.to(acc),
                                                  ln_b.to(acc), out_w, eps, p.dtype)
    del g, feat
    d_out_w = d_out_w.to(out_w.dtype)
    d_out_b = None if out_b is None else _channel_sum(dout).to(out_b.dtype)
    dh = _complex_view(dfeat, complex_)
    if native:
        del hsum
        du, d_log, d_theta = _native_scan_backward(dh, u, scans, dirs, complex_)
    else:
        uc = _complex_view(u, complex_)
        last = torch.sub(hsum, uc) if h_saved.numel() else hsum.sub_(uc)  # becomes v of the last direction
        del hsum, uc
        du, d_log, d_theta = _torch_scan_backward(dh, u, per_dir, last, scans, dirs, complex_)
        del per_dir, last
    del u, dh, dfeat
    dp, dz, d_gamma = _gate_input_backward(p, z, gamma, forget_mode, valid, lam, om, du, d_log, complex_,
                                           native_gate)
    return _core_grads(p, z, gamma, theta_f, theta_r, ln_w, ln_b, out_w, out_b, dp, dz, dg, d_gamma, d_theta, dw,
                       db, d_out_w, d_out_b)


def _gate_input_backward(p: Tensor, z: Optional[Tensor], gamma: Optional[Tensor], forget_mode: str,
                         valid: Optional[Tensor], lam: Tensor, om: Optional[Tensor], du: Tensor, d_log: Tensor,
                         complex_: bool, native: bool) -> tuple[Tensor, Optional[Tensor], Optional[Tensor]]:
    """(dp, dz, d gamma) of ``_gate_and_input`` from du (the gradient reaching the scan input) and d_log
    (that of log lam); both are consumed. ``native``: one pass of the native kernel, written over them;
    else PyTorch ops, with ``om`` = 1 - lam (None: recomputed here, after the scans freed their memory)."""
    if native:
        return cpu_native.gate_input_backward(p, z, gamma, valid, _real_view(du, complex_), d_log)
    acc = d_log.dtype
    B, T, I = p.shape
    if om is None:
        om = _one_minus_gate(z, gamma, forget_mode, acc)
    du_f = _real_view(du, complex_)
    if valid is not None:
        vmask = valid.to(acc).unsqueeze(-1)
        d_log.mul_(vmask)
        du_f.mul_(vmask)
    # u = om * SiLU(p): back through the product and the SiLU
    c = F.silu(p.to(acc))
    if complex_:
        pairs = c.mul_(du_f).view(B, T, I // 2, 2)
        prod = pairs[..., 0] + pairs[..., 1]  # faster than a sum over a last axis of size 2
        del c, pairs
        dc = _real_view(_scale_(du, om), complex_)
    else:
        prod = du_f * c
        del c
        dc = du_f.mul_(om)
    del du, du_f
    dp = torch.ops.aten.silu_backward.grad_input(dc, p.to(acc), grad_input=dc)  # written over dc
    del dc
    # in 'bound' mode om = 1 - gamma is (D,), broadcast over tokens: its gradient sums over them
    d_om = _channel_sum(prod) if forget_mode == "bound" else prod
    dz, d_gamma = _gate_backward(z, gamma, forget_mode, lam, d_log, d_om)
    return dp, dz, d_gamma


def _core_grads(p, z, gamma, theta_f, theta_r, ln_w, ln_b, out_w, out_b, dp, dz, dg, d_gamma, d_theta, dw, db,
                d_out_w, d_out_b) -> tuple[Tensor, ...]:
    """_core_backward's outputs, each in its input's dtype."""
    def cast(grad: Optional[Tensor], like: Optional[Tensor]) -> Tensor:
        # a custom op's outputs may not alias each other: every absent gradient is its own empty tensor
        return p.new_empty(0) if grad is None or like is None else grad.to(like.dtype)

    return (cast(dp, p), cast(dz, z), dg.view(p.shape), cast(d_gamma, gamma), cast(d_theta["f"], theta_f),
            cast(d_theta["r"], theta_r), cast(dw, ln_w), cast(db, ln_b), cast(d_out_w, out_w),
            cast(d_out_b, out_b))


# ---------------------------------------------------------------------------------------------------------
# Registration: two opaque ops for torch.compile, tied together by a registered autograd


@torch.library.custom_op("hgrn::hgru_core", mutates_args=())
def _hgru_core_op(
    p: Tensor, z: Optional[Tensor], g: Tensor, gamma: Optional[Tensor], theta_f: Optional[Tensor],
    theta_r: Optional[Tensor], ln_w: Tensor, ln_b: Tensor, out_w: Tensor, out_b: Optional[Tensor],
    valid: Optional[Tensor], mode: str, forget_mode: str, is_complex: bool, H: int, W: int, eps: float,
    save_h: bool, x: Optional[Tensor], w_p: Optional[Tensor], b_p: Optional[Tensor], w_z: Optional[Tensor],
    b_z: Optional[Tensor], w_g: Optional[Tensor], b_g: Optional[Tensor],
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    # x and the projections' weights are there for the backward to recompute p, z and g (see hgru_core)
    return _core_forward(p, z, g, gamma, theta_f, theta_r, ln_w, ln_b, out_w, out_b, valid, mode, forget_mode,
                         is_complex, H, W, eps, save_h)


@_hgru_core_op.register_fake
def _(p, z, g, gamma, theta_f, theta_r, ln_w, ln_b, out_w, out_b, valid, mode, forget_mode, is_complex, H, W, eps,
      save_h, x, w_p, b_p, w_z, b_z, w_g, b_g):
    B, T, I = p.shape
    acc = _acc(p)
    saved = p.new_empty((B, T, I) if save_h else (0,), dtype=acc)
    out = p.new_empty((B, T, out_w.shape[0]))
    return out, saved, p.new_empty((B, T, 1), dtype=acc), p.new_empty((B, T, 1), dtype=acc)


@torch.library.custom_op("hgrn::hgru_core_backward", mutates_args=())
def _hgru_core_backward_op(
    dout: Tensor, p: Tensor, z: Optional[Tensor], g: Optional[Tensor], gamma: Optional[Tensor],
    theta_f: Optional[Tensor], theta_r: Optional[Tensor], ln_w: Tensor, ln_b: Tensor, out_w: Tensor,
    out_b: Optional[Tensor], valid: Optional[Tensor], saved: Tensor, mean: Tensor, rstd: Tensor, mode: str,
    forget_mode: str, is_complex: bool, H: int, W: int, eps: float, x: Optional[Tensor], w_g: Optional[Tensor],
    b_g: Optional[Tensor],
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    # g None: the backward projects it from (x, w_g, b_g) itself, where it is needed
    return _core_backward(dout, p, z, g, gamma, theta_f, theta_r, ln_w, ln_b, out_w, out_b, valid, saved, mean,
                          rstd, mode, forget_mode, is_complex, H, W, eps, x, w_g, b_g)


@_hgru_core_backward_op.register_fake
def _(dout, p, z, g, gamma, theta_f, theta_r, ln_w, ln_b, out_w, out_b, valid, saved, mean, rstd, mode,
      forget_mode, is_complex, H, W, eps, x, w_g, b_g):
    def like(t):
        return p.new_empty(0) if t is None else torch.empty_like(t)

    return (torch.empty_like(p), like(z), torch.empty_like(p), like(gamma), like(theta_f), like(theta_r),
            torch.empty_like(ln_w), torch.empty_like(ln_b), torch.empty_like(out_w), like(out_b))


def _setup_context(ctx, inputs, output) -> None:
    (p, z, g, gamma, theta_f, theta_r, ln_w, ln_b, out_w, out_b, valid, mode, forget_mode, is_complex, H, W, eps,
     _, x, w_p, b_p, w_z, b_z, w_g, b_g) = inputs
    _, saved, mean, rstd = output
    # a projection with a weight given is projected again in the backward: its output is not kept (x is kept
    # by the projections' Linears anyway)
    ctx.recompute, ctx.proj_dtype = (w_p is not None, w_z is not None, w_g is not None), p.dtype
    ctx.given = tuple(t is not None for t in (p, z, g, gamma, theta_f, theta_r, ln_w, ln_b, out_w, out_b))
    p, z, g = (None if again else t for again, t in zip(ctx.recompute, (p, z, g)))
    if not any(ctx.recompute):
        x = None
    ctx.save_for_backward(p, z, g, gamma, theta_f, theta_r, ln_w, ln_b, out_w, out_b, valid, saved, mean, rstd,
                          x, w_p, b_p, w_z, b_z, w_g, b_g)
    ctx.config = (mode, forget_mode, is_complex, H, W, eps)


def _projections(x: Tensor, dtype: torch.dtype, *weights: Optional[Tensor]) -> list[Optional[Tensor]]:
    """p, z, g again from their input and (weight, bias) pairs, as the forward's Linears computed them (in the
    projections' dtype, which autocast may have lowered)."""
    x = x.to(dtype)
    return [None if w is None else F.linear(x, w.to(dtype), None if b is None else b.to(dtype))
            for w, b in zip(weights[::2], weights[1::2])]


def _backward(ctx, dout, _d_saved, _d_mean, _d_rstd):
    tensors = list(ctx.saved_tensors)
    x, weights = tensors[14], tensors[15:]
    if any(ctx.recompute[:2]):  # p and z here; g inside the backward op, where it is needed (see _core_backward)
        again = _projections(x, ctx.proj_dtype, *weights[:4])
        tensors[0:2] = [new if redo else kept for redo, new, kept in zip(ctx.recompute, again, tensors[0:2])]
    lazy_g = (x, *weights[4:]) if ctx.recompute[2] else (None, None, None)
    grads = _hgru_core_backward_op(dout.contiguous(), *tensors[:14], *ctx.config, *lazy_g)
    # p, z, g, gamma, theta_f, theta_r, ln_w, ln_b, out_w, out_b: a gradient for each input that was given
    return (*(d if given else None for given, d in zip(ctx.given, grads)), *([None] * 15))


_hgru_core_op.register_autograd(_backward, setup_context=_setup_context)


def hgru_core(
    p: Tensor,
    z: Optional[Tensor],
    g: Tensor,
    ln_weight: Tensor,
    ln_bias: Tensor,
    out_weight: Tensor,
    out_bias: Optional[Tensor],
    *,
    mode: str,
    forget_mode: str = "data",
    is_complex: bool = True,
    lower_bound: Optional[Tensor] = None,
    theta_forward: Optional[Tensor] = None,
    theta_reverse: Optional[Tensor] = None,
    valid: Optional[Tensor] = None,
    grid: tuple[int, int] = (1, 1),
    eps: float = 1e-5,
    save_states: Optional[bool] = None,
    recompute_from: Optional[tuple[Tensor, Optional[Tensor], Optional[Tensor], Optional[Tensor], Optional[Tensor],
                                   Optional[Tensor], Optional[Tensor]]] = None,
) -> Tensor:
    """out_proj(LayerNorm(h) * SiLU(g)) for the projections p (B, T, inner), z (B, T, D) and g (B, T, inner).

    Complex channels are interleaved (re, im) in p, g, the LayerNorm affine and out_weight's columns.
    ``valid`` (B, T) turns positions into identity steps (log gate 0, input 0). ``grid`` (H, W) is used in 2D
    mode only. ``save_states`` keeps h for the backward instead of recomputing every direction's states
    there (default: in causal mode, where the backward has no other use for a recomputation, except on the
    native CPU kernels, where a scan is cheaper than the memory). ``recompute_from`` = (x, w_p, b_p, w_z, b_z,
    w_g, b_g), the input and (weight, bias) pairs p, z and g were projected with: the backward projects them
    again instead of keeping them, 5 units of (B, T, D) fewer per layer for three matrix products more; one whose
    weight is None there is kept instead.
    """
    H, W = (int(grid[0]), int(grid[1])) if mode == "2d" else (1, 1)
    # keeping h saves the backward one scan; on the native CPU kernels a scan costs less than holding h
    save = (mode == "causal" and not _uses_native(p)) if save_states is None else bool(save_states)
    again = recompute_from if recompute_from is not None else (None,) * 7
    out = _hgru_core_op(p, z, g, lower_bound, theta_forward, theta_reverse, ln_weight, ln_bias, out_weight,
                        out_bias, valid, mode, forget_mode, bool(is_complex), H, W, float(eps), save, *again)
    return out[0]
