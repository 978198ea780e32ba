"""The Transformer baseline: pre-norm blocks with ``scaled_dot_product_attention``, same interface as HGRN."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .heads import length_mask
from .norms import make_norm
from .residual import PreNormResidual, drop_path_rates


class SelfAttention(nn.Module):
    """Multi-head self-attention; padded keys are masked out, causal on request."""

    def __init__(self, d_model: int, n_heads: int, dropout: float = 0.0, causal: bool = False) -> None:
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model {d_model} is not divisible by n_heads {n_heads}")
        self.n_heads, self.causal, self.dropout = n_heads, causal, dropout
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None, grid: tuple[int, int] | None = None) -> torch.Tensor:
        B, T, D = x.shape
        q, k, v = self.qkv(x).reshape(B, T, 3, self.n_heads, D // self.n_heads).permute(2, 0, 3, 1, 4)
        mask = None
        if lengths is not None:
            mask = length_mask(lengths, T)[:, None, None, :]  # (B, 1, 1, T): which keys each query may see
            if self.causal:
                mask = mask & torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0,
            is_causal=self.causal and mask is None,
        )
        return self.out(y.transpose(1, 2).reshape(B, T, D))


class Transformer(nn.Module):
    """Pre-norm Transformer encoder over (B, T, D) -> (B, T, D), bidirectional with a padding mask by default.

    The MLP is a GELU feed-forward of width ``ffn_ratio * d_model``; ``grid`` is accepted and ignored so
    the two backbones are interchangeable. ``keep_norm_input`` (off: the baseline as published) rebuilds
    each block's normalised input in the backward instead of keeping it, as HGRN's blocks do by default
    (models/norm_recompute.py): the same gradients, one (B, T, D) tensor fewer per sub-layer."""

    def __init__(
        self,
        d_model: int,
        n_layers: int,
        n_heads: int = 4,
        ffn_ratio: float = 4.0,
        norm: str = "layer",
        final_norm: bool = True,
        dropout: float = 0.0,
        attention_dropout: float = 0.0,
        drop_path: float = 0.0,
        causal: bool = False,
        keep_norm_input: bool = False,
    ) -> None:
        super().__init__()
        hidden = max(1, round(ffn_ratio * d_model))
        rates = drop_path_rates(drop_path, n_layers)
        self.attention = nn.ModuleList(
            PreNormResidual(SelfAttention(d_model, n_heads, attention_dropout, causal), d_model, norm, dropout, rates[k],
                            keep_norm_input)
            for k in range(n_layers)
        )
        self.mlp = nn.ModuleList(
            PreNormResidual(
                nn.Sequential(nn.Linear(d_model, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, d_model)),
                d_model, norm, dropout, rates[k], keep_norm_input,
            )
            for k in range(n_layers)
        )
        self.final_norm = make_norm(norm, d_model) if final_norm else nn.Identity()

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None, grid: tuple[int, int] | None = None) -> torch.Tensor:
        for attention, mlp in zip(self.attention, self.mlp):
            x = mlp(attention(x, lengths=lengths))
        return self.final_norm(x)
