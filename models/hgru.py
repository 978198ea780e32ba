"""The HGRU token mixer in the official code's form (Doraemonzzz/hgru-pytorch, used by OpenNLPLab/HGRN).

    c_t   = SiLU(W_c x_t)                         d -> 2d, read as d complex numbers (re, im interleaved)
    lam_t = gamma + (1 - gamma) * sigmoid(W_l x_t) forget gate with this layer's lower bound gamma
    h_t   = lam_t * e^{i theta} * h_{t-1} + (1 - lam_t) * c_t
    y_t   = W_o( LayerNorm([Re h_t, Im h_t]) * SiLU(W_g x_t) )

The gate is computed in log space, log lam = logaddexp(log gamma, log(1 - gamma) + logsigmoid(z)), so it
feeds ``kernels.hgrn_scan`` directly and long-memory gates near 1 keep their precision in bf16.
Modes: ``causal`` (one forward scan), ``bidirectional`` (forward + reverse scans with their own phase,
everything else shared, states summed: the official BiHgru1d) and ``2d`` (forward + reverse along rows and
along columns of an H x W grid, summed: BiHgru2d; phase theta_forward for both forward scans and
theta_reverse for both reverse ones). ``complex=False`` gives the real-valued variant (HgruReal).
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from kernels import hgrn_scan, hgrn_scan_bidirectional
from kernels.hgru_core import hgru_core
from kernels.hgru_pieces import hgru_in_pieces, pieces_for

from .heads import length_mask
from .recompute import recompute_by_default

MODES = ("causal", "bidirectional", "2d")
GATE_INITS = ("default", "chrono")
# forget-gate forms: the paper's input-dependent gate, the lower bound alone (data-independent, as in LRU;
# the paper's "only lower bound" ablation), and no forget gate at all (no memory)
FORGET_MODES = ("data", "bound", "none")
PROJECTIONS = "pzg"  # input_proj, lambda_proj, gate: the projections recompute_projections can name
_TINY = torch.finfo(torch.float32).tiny


def _at_least_fp32(t: torch.Tensor) -> torch.Tensor:
    """Gate arithmetic runs in fp32 under bf16/fp16 (autocast) and stays fp64 for fp64 models."""
    return t.to(torch.promote_types(t.dtype, torch.float32))


def forget_gate(z: torch.Tensor, lower_bound: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """(log lambda, 1 - lambda) in at least fp32 for gate logits z and a (D,) lower bound (None means 0)."""
    z = _at_least_fp32(z)
    if lower_bound is None:
        return F.logsigmoid(z), torch.sigmoid(-z)
    gamma = lower_bound.to(z.dtype)
    # clamp: log(0) would make the gradient 0 * inf = NaN for a layer whose bound is exactly 0
    log_lam = torch.logaddexp(torch.log(gamma.clamp_min(_TINY)), torch.log1p(-gamma) + F.logsigmoid(z))
    return log_lam, (1 - gamma) * torch.sigmoid(-z)


def _theta_init(d: int) -> torch.Tensor:
    """The official initialisation: theta_j = 10000^(-2j/d), one rotation frequency per complex channel."""
    return 10000 ** (-2.0 / d * torch.arange(d, dtype=torch.float32))


class HGRU(nn.Module):
    """HGRU token mixer over (B, T, D) inputs; see the module docstring for the equations and modes."""

    def __init__(
        self,
        d_model: int,
        mode: str = "causal",
        complex: bool = True,
        bias: bool = True,
        forget_mode: str = "data",
        gate_init: str = "default",
        max_timescale: float = 1024.0,
    ) -> None:
        """``forget_mode``: ``data`` (the paper: lambda_t = gamma + (1 - gamma) * sigmoid(W_l x_t)), ``bound``
        (lambda = gamma, this layer's lower bound alone: a data-independent gate; no ``lambda_proj``) or ``none``
        (lambda = 0: no memory, h_t = c_t). The last two are the paper's forget-gate ablations.

        ``gate_init="chrono"`` sets the forget-gate bias to log U(1, max_timescale - 1) (Tallec and Ollivier,
        ICLR 2018), so some channels start with memories up to ``max_timescale`` steps; ``default`` is the
        official code's (PyTorch's Linear init), whose gates start near 0.5 and cannot pass a gradient
        across hundreds of steps until the lower bounds have grown."""
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"unknown HGRU mode {mode!r}; choose one of {', '.join(MODES)}")
        if forget_mode not in FORGET_MODES:
            raise ValueError(f"unknown forget_mode {forget_mode!r}; choose one of {', '.join(FORGET_MODES)}")
        if gate_init not in GATE_INITS:
            raise ValueError(f"unknown gate_init {gate_init!r}; choose one of {', '.join(GATE_INITS)}")
        self.d_model, self.mode, self.complex, self.forget_mode = d_model, mode, complex, forget_mode
        inner = 2 * d_model if complex else d_model
        self.input_proj = nn.Linear(d_model, inner, bias=bias)
        # only the input-dependent gate has a projection (an unused one would break DDP's gradient check)
        self.lambda_proj = nn.Linear(d_model, d_model, bias=bias) if forget_mode == "data" else None
        self.gate = nn.Linear(d_model, inner, bias=bias)
        self.out_proj = nn.Linear(inner, d_model, bias=bias)
        self.norm = nn.LayerNorm(inner)
        if gate_init == "chrono":
            if self.lambda_proj is None:
                raise ValueError(f"gate_init='chrono' initialises the input-dependent gate; forget_mode={forget_mode!r} has none")
            if not bias:
                raise ValueError("gate_init='chrono' sets the forget-gate bias; it needs bias=True")
            with torch.no_grad():
                self.lambda_proj.bias.copy_(torch.empty(d_model).uniform_(1.0, max_timescale - 1.0).log())
        if complex:
            self.theta_forward = nn.Parameter(_theta_init(d_model))
            if mode != "causal":
                self.theta_reverse = nn.Parameter(_theta_init(d_model))
            # The fused path keeps complex channels interleaved (re, im), as input_proj writes them: position
            # k of that order is position _interleave[k] of the [Re h, Im h] order the parameters use.
            order = torch.stack([torch.arange(d_model), torch.arange(d_model) + d_model], dim=-1).flatten()
            self.register_buffer("_interleave", order, persistent=False)
        # One fused autograd node for the recurrence (kernels/hgru_core.py); False runs the op-by-op path
        # below, the reference the fused one is tested against.
        self.fused = True
        # Fused path: keep the summed state h for the backward (True) or recompute every direction's states
        # there (False); None: keep it in causal mode only (see kernels/hgru_core.py).
        self.save_states: bool | None = None
        # Fused path: project p, z and g again in the backward instead of keeping them (see the property).
        self.recompute_projections = None

    @property
    def recompute_projections(self) -> bool | str | None:
        """Fused path: which projections the backward computes again from the layer's input instead of keeping
        them: True (all: p = input_proj(x), z = lambda_proj(x), g = gate(x); 5 units of (B, T, D) fewer per
        layer for 5 d^2 more multiply-adds per token), False (none), or the letters of some, e.g. ``"g"``
        (2 units for 2 d^2) or ``"zg"``. None: all on CPU tensors of at least 1024 tokens per sequence
        (models/recompute.py), where memory is what long sequences run short of: at the LRA Image
        config recomputing took 0.9x to 1.15x the time of keeping them, depending on the machine, for
        0.6-0.7x the live memory, and only with it do sequences of 8192 tokens and more run in pieces of
        time (kernels/hgru_pieces.py). None on shorter sequences, where the products cost more than the memory
        is worth (HGRN-DeiT-Tiny, 256 tokens: 1.05x DeiT-Tiny's step time with them kept against 1.16x
        recomputed, at 0.91x against 0.70x its memory), and none on a GPU (docs/performance.md)."""
        return self._recompute_projections

    @recompute_projections.setter
    def recompute_projections(self, value: bool | str | None) -> None:
        self._recompute_projections = check_recompute_projections(value)

    def _recomputed(self, x: torch.Tensor) -> str:
        """The letters of the projections to recompute in the backward for an input like ``x``."""
        value = self.recompute_projections
        if value is None:
            value = recompute_by_default(x)
        return value if isinstance(value, str) else (PROJECTIONS if value else "")

    # -- pieces shared by the parallel forward and the step function ---------------------------------
    def _recurrence_inputs(
        self, x: torch.Tensor, lower_bound: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The scan's input (1 - lam) * c (complex64 or fp32) and its log forget gate (fp32).

        Without memory (``forget_mode="none"``, or ``bound`` with a bound of None) the log gate is None:
        lambda = 0 and the state is the input itself."""
        c = _at_least_fp32(F.silu(self.input_proj(x)))
        if self.complex:
            c = torch.complex(c[..., 0::2], c[..., 1::2])
        if self.forget_mode == "none" or (self.forget_mode == "bound" and lower_bound is None):
            return c, None
        if self.forget_mode == "bound":
            gamma = _at_least_fp32(lower_bound.to(c.real.dtype))
            log_lam = torch.log(gamma.clamp_min(_TINY)).expand(c.shape).contiguous()
            return c * (1 - gamma), log_lam
        log_lam, one_minus_lam = forget_gate(self.lambda_proj(x), lower_bound)
        return c * one_minus_lam, log_lam

    def _output(self, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        feat = torch.cat([h.real, h.imag], dim=-1) if self.complex else h
        feat = self.norm(feat.to(x.dtype))
        return self.out_proj(feat * F.silu(self.gate(x)))

    def _theta(self, name: str) -> torch.Tensor | None:
        return getattr(self, name) if self.complex else None

    # -- parallel form ------------------------------------------------------------------------------
    def forward(
        self,
        x: torch.Tensor,
        lower_bound: torch.Tensor | None = None,
        lengths: torch.Tensor | None = None,
        grid: tuple[int, int] | None = None,
    ) -> torch.Tensor:
        """Mix tokens of x (B, T, D). ``lower_bound``: this layer's (D,) bound (None for 0).

        ``lengths`` (B,): positions at or past a row's length become identity steps (gate 1, input 0), so
        padding never leaks into the true positions, in either direction. ``grid`` (H, W) is for 2D mode
        (default: a square grid)."""
        if self.fused and (self.forget_mode == "data" or (self.forget_mode == "bound" and lower_bound is not None)):
            return self._forward_fused(x, lower_bound, lengths, grid)
        u, log_lam = self._recurrence_inputs(x, lower_bound)
        if log_lam is None:
            return self._output(u, x)
        if lengths is not None and self.mode != "2d":
            valid = length_mask(lengths, x.shape[1]).unsqueeze(-1)
            u = u * valid
            log_lam = log_lam * valid
        if self.mode == "causal":
            h = hgrn_scan(u, log_lam, self._theta("theta_forward"))
        elif self.mode == "bidirectional":
            h = hgrn_scan_bidirectional(u, log_lam, self._theta("theta_forward"), self._theta("theta_reverse"))
        else:
            h = self._scan_2d(u, log_lam, grid)
        return self._output(h, x)

    def _forward_fused(self, x: torch.Tensor, lower_bound: torch.Tensor | None, lengths: torch.Tensor | None,
                       grid: tuple[int, int] | None) -> torch.Tensor:
        piece = self._piece(x, lower_bound)
        if piece is not None:
            return self._forward_in_pieces(x, lower_bound, lengths, piece)
        p = self.input_proj(x)
        z = self.lambda_proj(x) if self.lambda_proj is not None else None
        gate_w, gate_b, norm_w, norm_b, out_w = self._interleaved_parameters()
        g = F.linear(x, gate_w, gate_b)
        again = None
        which = self._recomputed(x)
        if which:  # (x, then a (weight, bias) pair per projection: None for one that is kept)
            lp = self.lambda_proj
            pairs = {"p": (self.input_proj.weight, self.input_proj.bias),
                     "z": (None, None) if lp is None else (lp.weight, lp.bias), "g": (gate_w, gate_b)}
            again = (x, *(t for name in PROJECTIONS for t in (pairs[name] if name in which else (None, None))))
        valid = None
        if lengths is not None and self.mode != "2d":
            valid = length_mask(lengths, x.shape[1])
        hw = grid_shape(x.shape[1], grid) if self.mode == "2d" else (1, 1)
        return hgru_core(
            p, z, g, norm_w, norm_b, out_w, self.out_proj.bias, mode=self.mode, forget_mode=self.forget_mode,
            is_complex=self.complex, lower_bound=lower_bound, theta_forward=self._theta("theta_forward"),
            theta_reverse=self._theta("theta_reverse") if self.mode != "causal" else None,
            valid=valid, grid=hw, eps=self.norm.eps, save_states=self.save_states, recompute_from=again,
        )

    def _interleaved_parameters(self) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor, torch.Tensor,
                                               torch.Tensor]:
        """(gate weight, gate bias, norm weight, norm bias, out_proj weight) as the fused kernels take them:
        for a complex HGRU in the interleaved (re, im) channel order (small gathers; no activation is
        permuted)."""
        gate_w, gate_b, norm_w, norm_b = self.gate.weight, self.gate.bias, self.norm.weight, self.norm.bias
        out_w = self.out_proj.weight
        if self.complex:
            order = self._interleave
            gate_w, norm_w, norm_b, out_w = gate_w[order], norm_w[order], norm_b[order], out_w[:, order]
            gate_b = None if gate_b is None else gate_b[order]
        return gate_w, gate_b, norm_w, norm_b, out_w

    def _piece(self, x: torch.Tensor, lower_bound: torch.Tensor | None) -> int | None:
        """Steps per piece of time when this layer runs in pieces (kernels/hgru_pieces.py: long sequences,
        all three projections recomputed, states not kept), else None."""
        if set(self._recomputed(x)) != set(PROJECTIONS) or self.save_states or self.lambda_proj is None:
            return None
        return pieces_for(x, lower_bound, self.mode, self.forget_mode)

    def _forward_in_pieces(self, x: torch.Tensor, lower_bound: torch.Tensor | None, lengths: torch.Tensor | None,
                           piece: int) -> torch.Tensor:
        """The fused layer from x a piece of time at a time: p, z and g are projected piece by piece, so no
        (B, T, inner) tensor is whole in the forward or the backward."""
        gate_w, gate_b, norm_w, norm_b, out_w = self._interleaved_parameters()
        valid = None
        if lengths is not None:
            valid = length_mask(lengths, x.shape[1])
        return hgru_in_pieces(
            x, self.input_proj.weight, self.input_proj.bias, self.lambda_proj.weight, self.lambda_proj.bias, gate_w,
            gate_b, norm_w, norm_b, out_w, self.out_proj.bias, mode=self.mode, piece=piece, is_complex=self.complex,
            lower_bound=lower_bound, theta_forward=self._theta("theta_forward"),
            theta_reverse=self._theta("theta_reverse") if self.mode != "causal" else None, valid=valid,
            eps=self.norm.eps)

    def _scan_2d(self, u: torch.Tensor, log_lam: torch.Tensor, grid: tuple[int, int] | None) -> torch.Tensor:
        B, T, D = u.shape
        H, W = grid_shape(T, grid)
        theta_f, theta_r = self._theta("theta_forward"), self._theta("theta_reverse")
        # along rows: each of the B*H rows is a sequence of length W
        rows = hgrn_scan_bidirectional(u.reshape(B * H, W, D), log_lam.reshape(B * H, W, D), theta_f, theta_r)
        # along columns: transpose the grid so each of the B*W columns is a sequence of length H
        u_t = u.reshape(B, H, W, D).transpose(1, 2).reshape(B * W, H, D)
        lam_t = log_lam.reshape(B, H, W, D).transpose(1, 2).reshape(B * W, H, D)
        cols = hgrn_scan_bidirectional(u_t, lam_t, theta_f, theta_r)
        cols = cols.reshape(B, W, H, D).transpose(1, 2).reshape(B, T, D)
        return rows.reshape(B, T, D) + cols

    # -- recurrent form -------------------------------------------------------------------------------
    def step(
        self, x_t: torch.Tensor, state: torch.Tensor | None = None, lower_bound: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One token at a time for a causal HGRU: x_t (B, D) -> (y_t (B, D), new state (B, D)).

        Feeding a sequence through ``step`` gives exactly the parallel ``forward``."""
        if self.mode != "causal":
            raise ValueError(f"step() needs a causal HGRU; this one is {self.mode!r} and looks ahead")
        u, log_lam = self._recurrence_inputs(x_t, lower_bound)
        if log_lam is None:
            return self._output(u, x_t), u
        decay = torch.exp(log_lam)
        if self.complex:
            decay = torch.polar(decay, self.theta_forward.to(decay.dtype).expand_as(decay))
        h = u if state is None else decay * state + u
        return self._output(h, x_t), h

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}, mode={self.mode!r}, complex={self.complex}, forget_mode={self.forget_mode!r}"


def check_recompute_projections(value: bool | str | None) -> bool | str | None:
    """``value`` if it is a valid ``HGRU.recompute_projections``, else a ValueError saying what is."""
    if isinstance(value, str) and (not value or set(value) - set(PROJECTIONS) or len(set(value)) != len(value)):
        raise ValueError(f"recompute_projections: a string names projections by the letters {PROJECTIONS!r} "
                         f"(e.g. 'g' or 'zg'), each once; got {value!r}")
    if not (value is None or isinstance(value, (bool, str))):
        raise ValueError(f"recompute_projections must be None, a bool or letters of {PROJECTIONS!r}, got {value!r}")
    return value


def set_recompute_projections(net: nn.Module, value: bool | str | None) -> int:
    """Set ``recompute_projections`` on every HGRU inside ``net`` (None: each layer's default, all on CPU
    tensors of sequences of at least 1024 tokens; a string such as ``"g"``: those projections only); returns how many layers were set."""
    layers = [m for m in net.modules() if isinstance(m, HGRU)]
    for layer in layers:
        layer.recompute_projections = value
    return len(layers)


def grid_shape(T: int, grid: tuple[int, int] | None) -> tuple[int, int]:
    """(H, W) for a 2D scan over T tokens: the given grid if H*W == T, else a square grid."""
    if grid is not None:
        H, W = int(grid[0]), int(grid[1])
        if H * W != T:
            raise ValueError(f"2D HGRU: sequence length {T} is not H x W = {H} x {W} = {H * W}")
        return H, W
    side = math.isqrt(T)
    if side * side != T:
        raise ValueError(
            f"2D HGRU: sequence length {T} is not a square; pass grid=(H, W) with H x W = {T} "
            "(or use a 1D mode)"
        )
    return side, side
