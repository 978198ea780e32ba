"""Pre-norm residual wrapper and stochastic depth, shared by the HGRN and Transformer backbones."""
from __future__ import annotations

import torch
from torch import nn

from .norm_recompute import keep_norm_input
from .norms import make_norm


class DropPath(nn.Module):
    """Stochastic depth: drop the whole residual branch for a random subset of samples while training."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"drop-path probability must lie in [0, 1), got {p}")
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = torch.empty(x.shape[0], *([1] * (x.dim() - 1)), device=x.device, dtype=x.dtype).bernoulli_(1 - self.p)
        return x * keep / (1 - self.p)


class PreNormResidual(nn.Module):
    """x + DropPath(Dropout(layer(norm(x), **kwargs))): one sub-layer of a pre-norm block.

    ``keep_norm_input``: the layer's saved copies of norm(x) are rebuilt from x in the backward instead of
    being kept (models/norm_recompute.py): one (B, T, D) tensor fewer per sub-layer for one elementwise pass."""

    def __init__(self, layer: nn.Module, d_model: int, norm: str = "layer", dropout: float = 0.0,
                 drop_path: float = 0.0, keep_norm_input: bool = False) -> None:
        super().__init__()
        self.norm = make_norm(norm, d_model)
        self.layer = layer
        self.dropout = nn.Dropout(dropout)
        self.drop_path = DropPath(drop_path)
        self.keep_norm_input = keep_norm_input

    def forward(self, x: torch.Tensor, **kwargs) -> torch.Tensor:
        y = self.norm(x)
        if self.keep_norm_input and not torch.compiler.is_compiling():
            with keep_norm_input(x, y, self.norm):
                out = self.layer(y, **kwargs)
        else:
            out = self.layer(y, **kwargs)
        return x + self.drop_path(self.dropout(out))


def drop_path_rates(max_rate: float, n_layers: int) -> list[float]:
    """Linearly increasing stochastic-depth rates, 0 at the first layer (the DeiT convention)."""
    if n_layers == 1:
        return [0.0]
    return [max_rate * i / (n_layers - 1) for i in range(n_layers)]
