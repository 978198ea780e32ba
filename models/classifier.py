"""Whole models: an embedding, a backbone (HGRN or Transformer) and a head, so both run on one harness.

``padding`` says what the backbone does with the padded positions of a batch:
- ``"identity"``: the backbone gets the true lengths (HGRN turns padded positions into identity steps, the
  Transformer masks padded keys), so padding never changes a true position's output;
- ``"scan"``: the backbone gets no lengths and treats pad tokens as ordinary input, as the published LRA
  pipeline did (its encoder dropped the lengths; the reverse scan starts at the padded end).
The heads pool over true lengths in both modes (the published decoder did too).
"""
from __future__ import annotations

from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

from .heads import ClassificationHead, RetrievalHead

PADDING_MODES = ("identity", "scan")
PAIR_BATCHING = ("separate", "concatenated")


def _check(value: str, allowed: tuple[str, ...], what: str) -> str:
    if value not in allowed:
        raise ValueError(f"{what} must be one of {', '.join(allowed)}; got {value!r}")
    return value


class SequenceClassifier(nn.Module):
    """embedding -> backbone(lengths, grid) -> head(lengths) -> logits (B, classes)."""

    def __init__(self, embedding: nn.Module, backbone: nn.Module, head: ClassificationHead,
                 padding: Literal["identity", "scan"] = "identity") -> None:
        super().__init__()
        self.embedding, self.backbone, self.head = embedding, backbone, head
        self.padding = _check(padding, PADDING_MODES, "padding")

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None, grid: tuple[int, int] | None = None) -> torch.Tensor:
        backbone_lengths = lengths if self.padding == "identity" else None
        return self.head(self.backbone(self.embedding(x), lengths=backbone_lengths, grid=grid), lengths)


class RetrievalModel(nn.Module):
    """Two documents through one shared embedding and backbone, matched by the retrieval head.

    ``batching``: ``"separate"`` runs the backbone once per document (B rows each); ``"concatenated"`` pads both
    documents to a common length and runs ONE backbone call on the (2B, T) batch, as the published pipeline
    did, so BatchNorm normalises with (and updates its running statistics from) both documents at once."""

    def __init__(self, embedding: nn.Module, backbone: nn.Module, head: RetrievalHead,
                 padding: Literal["identity", "scan"] = "identity",
                 batching: Literal["separate", "concatenated"] = "separate") -> None:
        super().__init__()
        self.embedding, self.backbone, self.head = embedding, backbone, head
        self.padding = _check(padding, PADDING_MODES, "padding")
        self.batching = _check(batching, PAIR_BATCHING, "retrieval batching")

    def encode(self, x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
        return self.backbone(self.embedding(x), lengths=lengths if self.padding == "identity" else None)

    def forward(
        self, x1: torch.Tensor, x2: torch.Tensor, lengths1: torch.Tensor | None = None, lengths2: torch.Tensor | None = None
    ) -> torch.Tensor:
        if self.batching == "separate":
            return self.head(self.encode(x1, lengths1), self.encode(x2, lengths2), lengths1, lengths2)
        B, T = x1.shape[0], max(x1.shape[1], x2.shape[1])
        pad = getattr(self.embedding, "pad_index", 0)
        both = torch.cat([F.pad(x1, (0, T - x1.shape[1]), value=pad), F.pad(x2, (0, T - x2.shape[1]), value=pad)])
        # a document without lengths is whole: its true length is its own width, not the common one
        l1 = lengths1 if lengths1 is not None else torch.full((B,), x1.shape[1], dtype=torch.long, device=x1.device)
        l2 = lengths2 if lengths2 is not None else torch.full((B,), x2.shape[1], dtype=torch.long, device=x2.device)
        features = self.encode(both, torch.cat([l1, l2]))
        return self.head(features[:B], features[B:], l1, l2)
