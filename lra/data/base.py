"""Common LightningDataModule for the LRA tasks: root, loaders, limits, split handling."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Literal

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset, Subset

from harness.datasets import SPLITS, STAGE_SPLITS, DataFields, resolve_root, split_limits
from harness.distributed import eval_sampler
from lra.data.cache import resolve_cache_dir
from lra.data.paths import prepare_command
from lra.data.samplers import EpochShuffleSampler


class LRADataModule(L.LightningDataModule):
    """Base of every LRA DataModule. Subclasses take ``root`` and their own arguments and pass every other
    keyword on to this class (the command line and YAML configs see them all, as ``--data.init_args.X``).

    Args:
        root: data root; None means ``$HGRN_DATA`` or ``./data``.
        batch_size: examples per batch (all three loaders).
        num_workers: DataLoader worker processes.
        seed: seed of the held-out split where a task makes one (CIFAR, Pathfinder). The training
            order is shuffled per epoch from the run's torch seed (``seed_everything``) and the
            epoch number, so a resumed run sees the same order as an uninterrupted one.
        limit_train, limit_val, limit_test: keep only the first N examples of a split.
        drop_last: drop the last partial training batch (published: True); evaluation keeps every row.
        cache_dir: where encoded arrays and vocabularies are cached (default ``<root>/.cache``; a user
            cache folder, with a warning, when the root cannot be written).

    ``prepare_data`` (run by Lightning once per node, before ``setup``) reads the data and builds the caches;
    ``setup`` then loads them on every process and checks that every split of the stage has examples.
    Under DDP the evaluation loaders cover each example exactly once (harness/distributed.py).
    """

    task: ClassVar[str] = ""
    num_classes: int
    max_length: int
    # what the batches' "x" holds (the model's DataFields, see model_fields); tokens unless a subclass says pixels
    kind: Literal["tokens", "pixels"] = "tokens"
    vocab_size: int | None = None  # tokens: ids lie in [0, vocab_size)
    pad_index: int | None = None  # tokens: the id batches are padded with (None: every sequence is full length)
    in_channels: int | None = None  # pixels: values per position
    grid: tuple[int, int] | None = None  # (H, W) when the sequence is an image in raster order

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        *,
        batch_size: int = 32,
        num_workers: int = 0,
        seed: int = 42,
        limit_train: int | None = None,
        limit_val: int | None = None,
        limit_test: int | None = None,
        drop_last: bool = False,
        cache_dir: str | os.PathLike | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()  # collects the subclass's arguments too
        self.limits = split_limits(batch_size, limit_train, limit_val, limit_test)
        self.root: Path = resolve_root(root)
        self.batch_size = int(batch_size)
        self.num_workers = int(num_workers)
        self.seed = int(seed)
        self.drop_last = bool(drop_last)
        self._cache_dir_arg = cache_dir
        self._cache_dir: Path | None = None
        self.datasets: dict[str, Dataset] = {}
        self.skipped: dict[str, dict[str, int]] = {}  # split -> reason -> count

    # -- to implement ---------------------------------------------------------------------------
    def _build(self, split: str) -> Dataset:
        """The full dataset of ``split`` ("train", "val" or "test")."""
        raise NotImplementedError

    @property
    def collate(self) -> Callable[[list], dict[str, torch.Tensor]]:
        raise NotImplementedError

    # -- shared -------------------------------------------------------------------------------
    def model_fields(self) -> DataFields:
        """What the model needs to know about the batches. ``kind`` is known right after construction; a char
        vocabulary's size is read (or built, once) on first use, so call this after ``prepare_data``."""
        if self.kind == "tokens":
            return DataFields("tokens", self.num_classes, vocab_size=int(self.vocab_size), pad_index=self.pad_index,
                              grid=self.grid)
        return DataFields("pixels", self.num_classes, in_channels=self.in_channels, grid=self.grid)

    def _prepare_command(self) -> str:
        """The command that makes this task's data (named in errors)."""
        return prepare_command(self.task, self.root)

    @property
    def cache_dir(self) -> Path:
        """Resolved on first use (it probes whether the data root is writable)."""
        if self._cache_dir is None:
            self._cache_dir = resolve_cache_dir(self.root, self._cache_dir_arg)
        return self._cache_dir

    def _stage_splits(self, stage: str | None) -> tuple[str, ...]:
        return STAGE_SPLITS.get(stage, SPLITS)

    def prepare_data(self) -> None:
        # Lightning runs this on one process per node before setup: caches are built once, not per rank
        trainer = self.trainer
        fn = trainer.state.fn if trainer is not None else None  # "fit", "validate", "test" or "predict"
        for split in self._stage_splits(fn.value if fn is not None else None):
            self.dataset(split)

    def setup(self, stage: str | None = None) -> None:
        for split in self._stage_splits(stage):
            if len(self.dataset(split)) == 0:
                raise ValueError(f"the {split} split of {self.task} under {self.root} has no examples; "
                                 f"make the data again with `{self._prepare_command()}`")

    def dataset(self, split: str) -> Dataset:
        """The dataset of one split (built on first use, with its ``limit_*`` applied)."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        if split not in self.datasets:
            ds = self._build(split)
            limit = self.limits[split]
            if limit is not None and limit < len(ds):
                ds = Subset(ds, range(max(0, int(limit))))
            self.datasets[split] = ds
        return self.datasets[split]

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        ds = self.dataset(split)
        # torch.initial_seed() is the seed_everything seed: the order depends on it and the epoch.
        sampler = EpochShuffleSampler(len(ds), torch.initial_seed()) if shuffle else eval_sampler(ds)
        return DataLoader(
            ds,
            batch_size=self.batch_size,
            sampler=sampler,
            num_workers=self.num_workers,
            collate_fn=self.collate,
            drop_last=self.drop_last and split == "train",
            pin_memory=torch.cuda.is_available(),
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)

    def summary(self) -> dict[str, Any]:
        """Split sizes and skip counts of what has been set up so far."""
        return {"task": self.task, "root": str(self.root),
                "sizes": {k: len(v) for k, v in self.datasets.items()}, "skipped": self.skipped}
