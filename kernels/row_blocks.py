"""Blocks of rows for the stages of a layer that are row-wise but for their matrix products.

The HGRU output stage (LayerNorm, output gate, out_proj) and the GLU's backward run a block of (B*T) rows at a
time: the same results (a matrix product over all rows is the sum of the blocks' products), while their
temporaries stay block-sized, in cache, and never whole (B, T, width) tensors at a training step's peak.
"""
from __future__ import annotations

from torch import Tensor

# Bytes of one (rows, width) float32 temporary per block (at least MIN_ROWS rows): smaller blocks lower the
# peak further but cost time, as every block is a dozen PyTorch calls (a 2-layer d 32 model trained 40% slower
# with 512-row blocks than with one block) and its matrix products get short (the GLU's backward at
# DeiT-Tiny's width took 10% longer with 170-row blocks than with 680). Tests set both smaller to cut a small
# input into several blocks.
BLOCK_BYTES = 1 << 19
MIN_ROWS = 64


def row_blocks(rows: int, width: int) -> list[slice]:
    """Slices covering ``rows`` rows, each block about BLOCK_BYTES of float32 at ``width`` columns."""
    step = max(MIN_ROWS, BLOCK_BYTES // (4 * max(1, width)))
    return [slice(start, min(start + step, rows)) for start in range(0, rows, step)]


def add_product(acc: Tensor, a: Tensor, b: Tensor) -> None:
    """acc += a @ b in acc's precision: a weight gradient summed over blocks, whose products autocast may
    have computed in a lower precision."""
    if a.dtype == acc.dtype and b.dtype == acc.dtype:
        acc.addmm_(a, b)
    else:
        acc.add_(a.mm(b))
