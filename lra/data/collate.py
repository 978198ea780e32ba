"""Batch builders: dynamic padding with true lengths, and pixel scaling of image batches."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


def pad_batch(seqs: Sequence[torch.Tensor], pad_index: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad to the longest sequence of the batch; returns (B, T) ids and (B,) true lengths."""
    lengths = torch.tensor([len(s) for s in seqs], dtype=torch.long)
    out = torch.full((len(seqs), int(lengths.max()) if len(seqs) else 0), pad_index, dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = s
    return out, lengths


class SequenceCollate:
    """``[(ids, y), ...]`` -> ``{"x": (B, T) long, "lengths": (B,), "y": (B,)}``."""

    def __init__(self, pad_index: int = 0) -> None:
        self.pad_index = pad_index

    def __call__(self, batch: Sequence[tuple[torch.Tensor, int]]) -> dict[str, torch.Tensor]:
        x, lengths = pad_batch([b[0] for b in batch], self.pad_index)
        return {"x": x, "lengths": lengths, "y": torch.tensor([b[1] for b in batch], dtype=torch.long)}


class PairCollate:
    """``[(ids1, ids2, y), ...]`` -> ``{"x1", "x2", "lengths1", "lengths2", "y"}``; each
    document is padded to its own longest in the batch."""

    def __init__(self, pad_index: int = 0) -> None:
        self.pad_index = pad_index

    def __call__(self, batch: Sequence[tuple[torch.Tensor, torch.Tensor, int]]) -> dict[str, torch.Tensor]:
        x1, l1 = pad_batch([b[0] for b in batch], self.pad_index)
        x2, l2 = pad_batch([b[1] for b in batch], self.pad_index)
        return {"x1": x1, "x2": x2, "lengths1": l1, "lengths2": l2,
                "y": torch.tensor([b[2] for b in batch], dtype=torch.long)}


PIXEL_SCALES = ("unit", "center", "normalize", "tokens")


class ImageCollate:
    """``[(uint8 (T, C) pixels, y), ...]`` -> ``{"x", "lengths", "y"}``.

    Pixels stay uint8 until here, so only a batch is ever converted. ``scale``:
    - ``"unit"``: x / 255 in [0, 1] (S4 Pathfinder, ``center: False``);
    - ``"center"``: x / 255 * 2 - 1 in [-1, 1] (S5, safari, Mega);
    - ``"normalize"``: (x / 255 - mean) / std per channel (S4 CIFAR);
    - ``"tokens"``: integer pixel values 0..255 as LongTensor (B, T) (official LRA; one channel).
    Every row has the full length T.
    """

    def __init__(self, scale: str = "unit", mean: Sequence[float] = (0.5,), std: Sequence[float] = (0.5,)) -> None:
        if scale not in PIXEL_SCALES:
            raise ValueError(f"pixel scale must be one of {PIXEL_SCALES}, got {scale!r}")
        self.scale = scale
        self.mean = torch.tensor(mean, dtype=torch.float32)
        self.std = torch.tensor(std, dtype=torch.float32)

    def __call__(self, batch: Sequence[tuple[torch.Tensor | np.ndarray, int]]) -> dict[str, torch.Tensor]:
        pixels = torch.stack([torch.as_tensor(b[0]) for b in batch])  # (B, T, C) uint8
        y = torch.tensor([b[1] for b in batch], dtype=torch.long)
        lengths = torch.full((pixels.shape[0],), pixels.shape[1], dtype=torch.long)
        if self.scale == "tokens":
            if pixels.shape[-1] != 1:
                raise ValueError("pixel_scale='tokens' needs one channel (grayscale)")
            return {"x": pixels[..., 0].long(), "lengths": lengths, "y": y}
        x = pixels.float().div_(255.0)
        if self.scale == "center":
            x.mul_(2.0).sub_(1.0)
        elif self.scale == "normalize":
            x.sub_(self.mean).div_(self.std)
        return {"x": x, "lengths": lengths, "y": y}
