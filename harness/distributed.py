"""Evaluation over exactly the dataset under DDP.

Lightning's default ``DistributedSampler`` pads every rank to the same number of examples by repeating the
first ones, so an accuracy over a 39-row test set on 2 processes counts 40 rows. ``EvalShardSampler`` gives rank
``r`` the rows ``r, r + world, r + 2 world, ...``: every row exactly once over all ranks, some ranks one row short.
The accuracy metrics (torchmetrics) sum their counts over ranks, so the result equals a single-process
evaluation to the row. Being a ``DistributedSampler``, Lightning keeps it instead of inserting its own.
"""
from __future__ import annotations

from collections.abc import Iterator, Sized

import torch.distributed as dist
from torch.utils.data import DistributedSampler, Sampler


class EvalShardSampler(DistributedSampler):
    """Rows ``rank::world_size`` of ``dataset``, in order, without padding (for validation and test only)."""

    def __init__(self, dataset: Sized, num_replicas: int | None = None, rank: int | None = None) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=False, drop_last=False)
        n = len(dataset)
        if n < self.num_replicas:
            # DDP synchronises buffers on the first evaluation forward: every rank needs at least one batch
            raise ValueError(f"an evaluation split of {n} example(s) cannot be shared by {self.num_replicas} "
                             "processes; use fewer --trainer.devices or a larger split")
        self.num_samples = len(range(self.rank, n, self.num_replicas))
        self.total_size = n

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.rank, self.total_size, self.num_replicas))

    def __len__(self) -> int:
        return self.num_samples


def distributed_world() -> int:
    """The number of processes of the initialised process group (1 without one)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def eval_sampler(dataset: Sized) -> Sampler[int] | None:
    """The sampler of an evaluation loader: ``EvalShardSampler`` under DDP, else None (in order)."""
    return EvalShardSampler(dataset) if distributed_world() > 1 else None
