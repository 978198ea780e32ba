"""Training-order sampler whose shuffle depends only on (seed, epoch), so that a run resumed
from a checkpoint sees exactly the order an uninterrupted run would have seen."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler


class EpochShuffleSampler(Sampler[int]):
    """A random permutation of ``range(n)`` per epoch, seeded by ``(seed, epoch)``.

    Lightning calls ``set_epoch`` before every epoch (also after resuming); used outside
    Lightning without ``set_epoch``, each pass moves on to the next epoch's order by itself.
    """

    def __init__(self, n: int, seed: int) -> None:
        self.n = int(n)
        self.seed = int(seed)
        self.epoch = 0
        self._explicit = False

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        self._explicit = True

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator().manual_seed((self.seed * 1_000_003 + self.epoch) % (2**63))
        order = torch.randperm(self.n, generator=g).tolist()
        if not self._explicit:
            self.epoch += 1
        self._explicit = False
        return iter(order)
