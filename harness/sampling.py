"""A shuffling sampler whose order depends only on (seed, epoch), so a run resumed at an epoch boundary sees
the same batches as a run that was never stopped. Lightning calls ``set_epoch`` on samplers that have it."""
from __future__ import annotations

import os
from collections.abc import Iterator, Sized

import torch
from torch.utils.data import Sampler


class EpochSeededSampler(Sampler[int]):
    """Random permutation of ``len(data)`` indices seeded by ``seed + epoch``.

    ``seed`` None takes the run's global seed (``PL_GLOBAL_SEED``, set by ``seed_everything``), else 0."""

    def __init__(self, data: Sized, seed: int | None = None) -> None:
        self.data = data
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.data)

    def __iter__(self) -> Iterator[int]:
        seed = self.seed if self.seed is not None else int(os.environ.get("PL_GLOBAL_SEED", 0))
        generator = torch.Generator().manual_seed(seed * 1_000_003 + self.epoch)
        return iter(torch.randperm(len(self.data), generator=generator).tolist())
