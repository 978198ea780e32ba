"""HGRN-DeiT image classifiers (the HGRN paper's ImageNet models, OpenNLPLab/HGRN): patch 14, depth 12,
bidirectional 1D HGRU over raster-ordered patches, GLU ratio 2, LayerNorm blocks, mean pool -> parameter-free
RMS norm -> linear."""
from __future__ import annotations

from .classifier import SequenceClassifier
from .embeddings import PatchEmbedding
from .heads import ClassificationHead
from .hgrn import HGRN

DEIT_WIDTHS = {"tiny": 192, "small": 384}


def hgrn_deit(
    size: str = "tiny",
    num_classes: int = 1000,
    patch_size: int = 14,
    in_channels: int = 3,
    depth: int = 12,
    drop_path: float = 0.0,
    lower_bound: str = "cumsoftmax",
) -> SequenceClassifier:
    """HGRN-DeiT-Tiny (dim 192, ~6.11M parameters) or -Small (dim 384, ~23.72M) with 1000 classes.

    The result maps images (B, C, H, W) to logits; patches need no lengths or grid."""
    if size not in DEIT_WIDTHS:
        raise ValueError(f"unknown HGRN-DeiT size {size!r}; choose one of {', '.join(DEIT_WIDTHS)}")
    d = DEIT_WIDTHS[size]
    return SequenceClassifier(
        PatchEmbedding(patch_size, in_channels, d),
        HGRN(d, depth, mode="bidirectional", glu_ratio=2.0, norm="layer", final_norm=False,
             drop_path=drop_path, lower_bound=lower_bound),
        ClassificationHead(d, num_classes, pool="mean", norm="rms"),
    )
