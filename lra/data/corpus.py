"""Packed token sequences and the Datasets of the token tasks.

Many variable-length sequences are kept as one flat array plus offsets (no Python object per
example), so a split of 147k AAN pairs costs two arrays, possibly memory-mapped from a cache.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset


class TokenCorpus:
    """Sequence ``i`` is ``flat[offsets[i]:offsets[i+1]] + shift`` (shift 1 for raw bytes)."""

    def __init__(self, flat: np.ndarray, offsets: np.ndarray, shift: int = 0) -> None:
        if offsets.ndim != 1 or offsets.size == 0 or offsets[0] != 0 or offsets[-1] != flat.size:
            raise ValueError("offsets must start at 0 and end at len(flat)")
        self.flat = flat
        self.offsets = offsets
        self.shift = int(shift)

    @classmethod
    def pack(cls, sequences: Sequence[np.ndarray], dtype: np.dtype, shift: int = 0) -> "TokenCorpus":
        lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=len(sequences))
        offsets = np.zeros(len(sequences) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        flat = np.concatenate(sequences).astype(dtype, copy=False) if sequences else np.zeros(0, dtype)
        return cls(flat, offsets, shift)

    def __len__(self) -> int:
        return self.offsets.size - 1

    def ids(self, i: int) -> torch.Tensor:
        seq = np.asarray(self.flat[self.offsets[i]:self.offsets[i + 1]], dtype=np.int64)
        if self.shift:
            seq = seq + self.shift
        return torch.from_numpy(seq)


class SequenceDataset(Dataset):
    """(token ids, label) pairs."""

    def __init__(self, corpus: TokenCorpus, labels: np.ndarray) -> None:
        if len(corpus) != len(labels):
            raise ValueError(f"{len(corpus)} sequences but {len(labels)} labels")
        self.corpus = corpus
        self.labels = labels

    def __len__(self) -> int:
        return len(self.corpus)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.corpus.ids(i), int(self.labels[i])


class PairDataset(Dataset):
    """(ids of document 1, ids of document 2, label) triples."""

    def __init__(self, first: TokenCorpus, second: TokenCorpus, labels: np.ndarray) -> None:
        if not len(first) == len(second) == len(labels):
            raise ValueError("both documents and the labels must have the same count")
        self.first = first
        self.second = second
        self.labels = labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        return self.first.ids(i), self.second.ids(i), int(self.labels[i])
