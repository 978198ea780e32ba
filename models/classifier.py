"""Whole models: an embedding, a backbone (HGRN or Transformer) and a head, so both run on one harness."""
from __future__ import annotations

import torch
from torch import nn

from .heads import ClassificationHead, RetrievalHead


class SequenceClassifier(nn.Module):
    """embedding -> backbone(lengths, grid) -> head(lengths) -> logits (B, classes)."""

    def __init__(self, embedding: nn.Module, backbone: nn.Module, head: ClassificationHead) -> None:
        super().__init__()
        self.embedding, self.backbone, self.head = embedding, backbone, head

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None, grid: tuple[int, int] | None = None) -> torch.Tensor:
        return self.head(self.backbone(self.embedding(x), lengths=lengths, grid=grid), lengths)


class RetrievalModel(nn.Module):
    """Two documents through one shared embedding and backbone, matched by the retrieval head."""

    def __init__(self, embedding: nn.Module, backbone: nn.Module, head: RetrievalHead) -> None:
        super().__init__()
        self.embedding, self.backbone, self.head = embedding, backbone, head

    def encode(self, x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
        return self.backbone(self.embedding(x), lengths=lengths)

    def forward(
        self, x1: torch.Tensor, x2: torch.Tensor, lengths1: torch.Tensor | None = None, lengths2: torch.Tensor | None = None
    ) -> torch.Tensor:
        return self.head(self.encode(x1, lengths1), self.encode(x2, lengths2), lengths1, lengths2)
