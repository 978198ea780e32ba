"""Classification heads over (B, T, D) features: masked pooling over true lengths, retrieval matching."""
from __future__ import annotations

import torch
from torch import nn

from .norms import make_norm

POOLS = ("mean", "last")


def length_mask(lengths: torch.Tensor, T: int) -> torch.Tensor:
    """(B, T) bool, True at positions < length."""
    return torch.arange(T, device=lengths.device)[None, :] < lengths[:, None]


def pool(features: torch.Tensor, lengths: torch.Tensor | None = None, how: str = "mean") -> torch.Tensor:
    """(B, T, D) -> (B, D): mean over each row's true positions, or its last true position."""
    B, T, _ = features.shape
    if lengths is None:
        lengths = torch.full((B,), T, dtype=torch.long, device=features.device)
    if (lengths < 1).any() or (lengths > T).any():
        raise ValueError(f"lengths must lie in [1, {T}], got min {int(lengths.min())}, max {int(lengths.max())}")
    if how == "mean":
        mask = length_mask(lengths, T).unsqueeze(-1).to(features.dtype)
        return (features * mask).sum(dim=1) / lengths[:, None].to(features.dtype)
    if how == "last":
        return features[torch.arange(B, device=features.device), lengths - 1]
    raise ValueError(f"unknown pooling {how!r}; choose one of {', '.join(POOLS)}")


class ClassificationHead(nn.Module):
    """Pool over true lengths -> optional norm (``rms`` for HGRN-DeiT) -> Linear(D -> classes)."""

    def __init__(self, d_model: int, num_classes: int, pool: str = "mean", norm: str = "none") -> None:
        super().__init__()
        if pool not in POOLS:
            raise ValueError(f"unknown pooling {pool!r}; choose one of {', '.join(POOLS)}")
        self.how = pool
        self.norm = make_norm(norm, d_model)
        self.linear = nn.Linear(d_model, num_classes)

    def forward(self, features: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.linear(self.norm(pool(features, lengths, self.how)))


class RetrievalHead(nn.Module):
    """Two pooled documents u, v -> [u, v, u - v, u * v] -> Linear(4D -> hidden) -> GELU -> Linear(-> classes)."""

    def __init__(self, d_model: int, num_classes: int = 2, hidden: int | None = None, pool: str = "mean") -> None:
        super().__init__()
        hidden = hidden or d_model
        self.how = pool
        self.mlp = nn.Sequential(nn.Linear(4 * d_model, hidden), nn.GELU(), nn.Linear(hidden, num_classes))

    def forward(
        self,
        features1: torch.Tensor,
        features2: torch.Tensor,
        lengths1: torch.Tensor | None = None,
        lengths2: torch.Tensor | None = None,
    ) -> torch.Tensor:
        u, v = pool(features1, lengths1, self.how), pool(features2, lengths2, self.how)
        return self.mlp(torch.cat([u, v, u - v, u * v], dim=-1))
