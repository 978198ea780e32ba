"""Input embeddings: tokens (+ sinusoidal positions), pixels, image patches. All return (B, T, D)."""
from __future__ import annotations

import math

import torch
from torch import nn


def sinusoidal_positions(length: int, d_model: int, device: torch.device | None = None) -> torch.Tensor:
    """The fixed (T, D) sinusoidal table of "Attention is all you need" (sin on even, cos on odd channels)."""
    position = torch.arange(length, dtype=torch.float32, device=device).unsqueeze(1)
    freq = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32, device=device) * (-math.log(10000.0) / d_model))
    table = torch.zeros(length, d_model, device=device)
    table[:, 0::2] = torch.sin(position * freq)
    table[:, 1::2] = torch.cos(position * freq)[:, : d_model // 2]
    return table


class _Positional(nn.Module):
    """Adds the sinusoidal table (when enabled), then dropout; the LRA encoders' ``position`` stage."""

    def __init__(self, d_model: int, positional: bool, dropout: float) -> None:
        super().__init__()
        self.positional = positional
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.positional:
            x = x + sinusoidal_positions(x.shape[1], x.shape[2], x.device).to(x.dtype)
        return self.dropout(x)


class TokenEmbedding(nn.Module):
    """Token ids (B, T) -> nn.Embedding (+ sinusoidal positions) -> dropout.

    ``pad_index`` is the id batches are padded with. ``trained_pad=False`` makes its row zero and frozen
    (``padding_idx``); ``True`` leaves it an ordinary trained row, as the published LRA encoder did (an
    ``nn.Embedding`` without ``padding_idx``). ``pad_index=None`` means no padding id (and no frozen row)."""

    def __init__(self, vocab_size: int, d_model: int, positional: bool = True, dropout: float = 0.0,
                 pad_index: int | None = 0, trained_pad: bool = False) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.pad_index = 0 if pad_index is None else int(pad_index)
        self.embed = nn.Embedding(vocab_size, d_model, padding_idx=None if trained_pad else pad_index)
        self.position = _Positional(d_model, positional, dropout)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        if tokens.dtype not in (torch.int32, torch.int64):
            raise TypeError(f"TokenEmbedding expects integer token ids (B, T), got {tokens.dtype}")
        if tokens.numel() and (tokens.min() < 0 or tokens.max() >= self.vocab_size):
            raise ValueError(
                f"token ids must lie in [0, {self.vocab_size}); got range [{int(tokens.min())}, {int(tokens.max())}]"
            )
        return self.position(self.embed(tokens))


class PixelEmbedding(nn.Module):
    """Pixel values (B, T, C) -> Linear(C -> D) (+ sinusoidal positions) -> dropout (LRA image tasks)."""

    def __init__(self, in_channels: int, d_model: int, positional: bool = False, dropout: float = 0.0) -> None:
        super().__init__()
        self.proj = nn.Linear(in_channels, d_model)
        self.position = _Positional(d_model, positional, dropout)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        if pixels.dim() == 2:  # (B, T) grey values
            pixels = pixels.unsqueeze(-1)
        return self.position(self.proj(pixels.to(self.proj.weight.dtype)))


class PatchEmbedding(nn.Module):
    """Images (B, C, H, W) -> non-overlapping p x p patches in raster order, each flattened as (p1 p2 c)
    -> Linear(p*p*C -> D). No class token and no positions, as HGRN-DeiT."""

    def __init__(self, patch_size: int, in_channels: int, d_model: int, positional: bool = False, dropout: float = 0.0) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Linear(patch_size * patch_size * in_channels, d_model)
        self.position = _Positional(d_model, positional, dropout)

    def grid(self, height: int, width: int) -> tuple[int, int]:
        """(rows, columns) of patches for an image of this size."""
        p = self.patch_size
        if height % p or width % p:
            raise ValueError(f"image size {height}x{width} is not divisible by the patch size {p}")
        return height // p, width // p

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        B, C, H, W = images.shape
        gh, gw = self.grid(H, W)
        p = self.patch_size
        patches = images.reshape(B, C, gh, p, gw, p).permute(0, 2, 4, 3, 5, 1).reshape(B, gh * gw, p * p * C)
        return self.position(self.proj(patches))
