"""Seeded splits identical to ``torch.utils.data.random_split`` (as S4 uses them)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


def seeded_split(n: int, lengths: Sequence[int], seed: int) -> list[np.ndarray]:
    """Index arrays of ``random_split(range(n), lengths, Generator().manual_seed(seed))``."""
    if sum(lengths) != n:
        raise ValueError(f"split lengths {list(lengths)} do not add up to {n}")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).numpy()
    out, start = [], 0
    for k in lengths:
        out.append(perm[start:start + k])
        start += k
    return out


def holdout_lengths(n: int, val_fraction: float, test_fraction: float = 0.0) -> tuple[int, int, int]:
    """S4's sizes: ``int(fraction * n)`` for val and test, the rest for train."""
    val = int(val_fraction * n)
    test = int(test_fraction * n)
    return n - val - test, val, test


def first(indices: np.ndarray | None, n: int | None, total: int) -> np.ndarray:
    """The first ``n`` of ``indices`` (all of ``range(total)`` when None)."""
    idx = np.arange(total) if indices is None else np.asarray(indices)
    return idx if n is None else idx[: max(0, int(n))]
