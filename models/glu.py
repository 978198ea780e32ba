"""The GLU channel mixer: W3(act(W1 x) * W2 x)."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from kernels.glu import silu_glu

from .recompute import GLU_RECOMPUTE_MIN_TOKENS, recompute_by_default

ACTIVATIONS = {"silu": F.silu, "gelu": F.gelu, "none": lambda x: x}


class GLU(nn.Module):
    """Gated linear unit with hidden width ``round(ratio * d_model)``.

    SiLU is the activation of the LRA and ImageNet runs; ``none`` gives the bilinear GLU of the official
    language model (OpenNLPLab/HGRN)."""

    def __init__(self, d_model: int, ratio: float = 1.0, activation: str = "silu", dropout: float = 0.0, bias: bool = True) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown GLU activation {activation!r}; choose one of {', '.join(ACTIVATIONS)}")
        hidden = max(1, round(ratio * d_model))
        self.w1 = nn.Linear(d_model, hidden, bias=bias)
        self.w2 = nn.Linear(d_model, hidden, bias=bias)
        self.w3 = nn.Linear(hidden, d_model, bias=bias)
        self.act = ACTIVATIONS[activation]
        self.dropout = nn.Dropout(dropout)
        # SiLU path: project W1 x and W2 x again in the backward instead of keeping them (2 (B, T, hidden)
        # tensors fewer for 2 more products); None: on CPU tensors of at least 8192 tokens per sequence
        # (models/recompute.py); never under autocast (kernels/glu.py)
        self.recompute_projections: bool | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.act is F.silu and not (self.training and self.dropout.p > 0):
            # one autograd node that recomputes SiLU and the product in the backward (kernels/glu.py)
            recompute = self.recompute_projections
            if recompute is None:
                recompute = recompute_by_default(x, GLU_RECOMPUTE_MIN_TOKENS)
            return silu_glu(x, self.w1.weight, self.w1.bias, self.w2.weight, self.w2.bias, self.w3.weight, self.w3.bias,
                            recompute)
        return self.w3(self.dropout(self.act(self.w1(x)) * self.w2(x)))
