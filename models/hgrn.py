"""The HGRN backbone: L pre-norm blocks [norm -> HGRU -> +], [norm -> GLU -> +], a final norm, and the
per-layer forget-gate lower bounds (models/lower_bound.py) that rise with depth."""
from __future__ import annotations

import torch
from torch import nn

from .glu import GLU
from .hgru import HGRU
from .lower_bound import LowerBounds
from .norms import make_norm
from .residual import PreNormResidual, drop_path_rates


class HGRN(nn.Module):
    """Stack of HGRU + GLU blocks over embedded sequences (B, T, D) -> (B, T, D).

    Args:
        d_model: width. n_layers: number of [HGRU, GLU] blocks.
        mode: ``causal``, ``bidirectional`` or ``2d`` (see models/hgru.py).
        glu_ratio: GLU hidden width / d_model. glu_activation: ``silu`` (LRA, ImageNet) or ``none``.
        norm: ``layer`` or ``batch`` inside the blocks; final_norm: the same kind after the stack, or not.
        dropout: on each sub-layer's output before the residual add. drop_path: maximum stochastic depth.
        lower_bound: schedule name (``cumsoftmax`` is the paper's). complex: complex (default) or real HGRU.
        forget_mode, gate_init, max_timescale: passed to every HGRU (see models/hgru.py).
        keep_norm_input: every block keeps its norm's input for the backward and rebuilds the normalised
            copy there instead of keeping it too (models/norm_recompute.py): the same gradients, one (B, T, D)
            tensor fewer per sub-layer for one elementwise pass in the backward.
    """

    def __init__(
        self,
        d_model: int,
        n_layers: int,
        mode: str = "causal",
        glu_ratio: float = 1.0,
        glu_activation: str = "silu",
        norm: str = "layer",
        final_norm: bool = True,
        dropout: float = 0.0,
        drop_path: float = 0.0,
        lower_bound: str = "cumsoftmax",
        complex: bool = True,
        forget_mode: str = "data",
        gate_init: str = "default",
        max_timescale: float = 1024.0,
        keep_norm_input: bool = True,
    ) -> None:
        super().__init__()
        self.d_model, self.n_layers, self.mode = d_model, n_layers, mode
        self.bounds = LowerBounds(lower_bound, n_layers, d_model)
        rates = drop_path_rates(drop_path, n_layers)
        self.mixers = nn.ModuleList(
            PreNormResidual(
                HGRU(d_model, mode, complex, forget_mode=forget_mode, gate_init=gate_init, max_timescale=max_timescale),
                d_model, norm, dropout, rates[k], keep_norm_input,
            )
            for k in range(n_layers)
        )
        self.channel_mixers = nn.ModuleList(
            PreNormResidual(GLU(d_model, glu_ratio, glu_activation, dropout), d_model, norm, dropout, rates[k],
                            keep_norm_input)
            for k in range(n_layers)
        )
        self.final_norm = make_norm(norm, d_model) if final_norm else nn.Identity()

    def lower_bounds(self) -> torch.Tensor:
        """The (L, D) forget-gate lower bound each layer uses now (detached; for plots and records)."""
        with torch.no_grad():
            return self.bounds().detach().clone()

    def forward(
        self, x: torch.Tensor, lengths: torch.Tensor | None = None, grid: tuple[int, int] | None = None
    ) -> torch.Tensor:
        bounds = None if self.bounds.is_zero else self.bounds()
        for k, (mixer, channel_mixer) in enumerate(zip(self.mixers, self.channel_mixers)):
            x = mixer(x, lower_bound=None if bounds is None else bounds[k], lengths=lengths, grid=grid)
            x = channel_mixer(x)
        return self.final_norm(x)
