"""Shared LightningDataModule for image classification: held-out splits, limits, the DeiT transforms and the
MixUp/CutMix collate of the training loader.

Batches are ``(images, targets)``: images (B, C, S, S) float, normalised; targets (B,) long, or (B, classes)
float probabilities on training batches when MixUp/CutMix is on.
"""
from __future__ import annotations

import os
from typing import Any, Callable, ClassVar, Sequence

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset, default_collate

from harness.datasets import SPLITS, STAGE_SPLITS, DataFields, resolve_root, seeded_permutation, split_limits
from harness.distributed import eval_sampler

from ..mixing import MixCollate
from ..transforms import IMAGENET_MEAN, IMAGENET_STD, Crop, eval_transform, train_transform


class TransformedSubset(Dataset):
    """``base[indices[i]]`` with ``transform`` applied to the image (one base, several splits/transforms)."""

    def __init__(self, base: Dataset, indices: Sequence[int], transform: Callable | None) -> None:
        self.base, self.indices, self.transform = base, list(indices), transform

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> tuple[Any, int]:
        image, label = self.base[self.indices[i]]
        return (self.transform(image) if self.transform is not None else image), int(label)


class VisionDataModule(L.LightningDataModule):
    """Base of the CIFAR and ImageNet DataModules. ``num_classes``, ``in_channels`` and ``image_size`` are
    set by ``__init__`` (``model_fields()`` hands them to the model); nothing is read from disk before ``setup``.

    Args:
        root: data root; None means ``$HGRN_DATA`` or ``./data``.
        batch_size: per device (the total is batch_size x devices x nodes x gradient accumulation).
        num_workers: loader worker processes. seed: seed of the held-out validation split and of limits.
        image_size: side of the square images the model sees.
        limit_train, limit_val, limit_test: keep a seeded random subset of N images of a split.
        crop ... random_erasing, interpolation: the training transform (vision/transforms.py);
            ``rand_augment_ops`` 0 turns RandAugment off (then ``color_jitter`` applies).
        mixup_alpha, cutmix_alpha, mix_switch_prob, mix_prob: vision/mixing.py; both alphas 0 turn mixing off.
        eval_crop_ratio: evaluation resize = image_size / ratio, then centre crop.
        drop_last: drop the last incomplete training batch (DeiT does).
    """

    task: ClassVar[str] = ""
    mean: ClassVar[tuple[float, ...]] = IMAGENET_MEAN
    std: ClassVar[tuple[float, ...]] = IMAGENET_STD
    in_channels: int = 3
    kind: ClassVar[str] = "images"  # what the batches hold (harness.datasets.DataFields)

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        *,
        batch_size: int = 128,
        num_workers: int = 8,
        seed: int = 0,
        image_size: int = 224,
        limit_train: int | None = None,
        limit_val: int | None = None,
        limit_test: int | None = None,
        crop: Crop = "random_resized",
        crop_scale: tuple[float, float] = (0.08, 1.0),
        crop_padding: int = 4,
        hflip: float = 0.5,
        rand_augment_ops: int = 2,
        rand_augment_magnitude: float = 9.0,
        rand_augment_std: float = 0.5,
        color_jitter: float = 0.4,
        random_erasing: float = 0.25,
        interpolation: str = "bicubic",
        mixup_alpha: float = 0.8,
        cutmix_alpha: float = 1.0,
        mix_switch_prob: float = 0.5,
        mix_prob: float = 1.0,
        eval_crop_ratio: float = 0.875,
        drop_last: bool = True,
    ) -> None:
        super().__init__()
        self.limits = split_limits(batch_size, limit_train, limit_val, limit_test)
        self.root = resolve_root(root)
        self.batch_size, self.num_workers, self.seed = int(batch_size), int(num_workers), int(seed)
        self.image_size = int(image_size)
        self.train_tf = train_transform(
            self.image_size, self.mean, self.std, crop=crop, crop_scale=crop_scale, crop_padding=crop_padding,
            hflip=hflip, rand_augment_ops=rand_augment_ops, rand_augment_magnitude=rand_augment_magnitude,
            rand_augment_std=rand_augment_std, color_jitter=color_jitter, random_erasing=random_erasing,
            interpolation=interpolation)
        self.eval_tf = eval_transform(self.image_size, self.mean, self.std, eval_crop_ratio, interpolation)
        self.mixing = mixup_alpha > 0 or cutmix_alpha > 0
        self.mix_args = dict(mixup_alpha=mixup_alpha, cutmix_alpha=cutmix_alpha, switch_prob=mix_switch_prob,
                             prob=mix_prob)
        self.drop_last = bool(drop_last)
        self.datasets: dict[str, Dataset] = {}

    # -- to implement ---------------------------------------------------------------------------
    def split_sources(self, splits: tuple[str, ...]) -> dict[str, tuple[Dataset, list[int]]]:
        """For each requested split: an untransformed (image, label) dataset and the indices that form the
        split. Raises harness.datasets.MissingDataError when the files are not there."""
        raise NotImplementedError

    # -- shared -------------------------------------------------------------------------------
    def model_fields(self) -> DataFields:
        """What the model needs to know about the batches (no data is read)."""
        return DataFields("images", self.num_classes, in_channels=self.in_channels,
                          grid=(self.image_size, self.image_size))

    def setup(self, stage: str | None = None) -> None:
        wanted = tuple(s for s in STAGE_SPLITS.get(stage, SPLITS) if s not in self.datasets)
        if not wanted:
            return
        for split, (base, indices) in self.split_sources(wanted).items():
            limit = self.limits[split]
            if limit is not None:
                # a random subset: ImageFolder lists images class by class, so a prefix would be one class
                order = seeded_permutation(len(indices), self.seed + SPLITS.index(split))
                indices = [indices[i] for i in order[: max(0, int(limit))].tolist()]
            if split == "train" and self.drop_last and len(indices) < self.batch_size:
                raise ValueError(f"the {self.task} training split has {len(indices)} images, fewer than "
                                 f"data.batch_size {self.batch_size}: lower the batch size or set drop_last false")
            if not indices:
                raise ValueError(f"the {split} split of {self.task} under {self.root} has no images; "
                                 "check the dataset folder")
            tf = self.train_tf if split == "train" else self.eval_tf
            self.datasets[split] = TransformedSubset(base, indices, tf)

    def dataset(self, split: str) -> Dataset:
        if split not in self.datasets:
            self.setup({"train": "fit", "val": "validate", "test": "test"}[split])
        return self.datasets[split]

    def collate(self, split: str) -> Callable:
        if split == "train" and self.mixing:
            return MixCollate(self.num_classes, **self.mix_args)
        return default_collate

    def _loader(self, split: str) -> DataLoader:
        train = split == "train"
        dataset = self.dataset(split)
        # under DDP, evaluation covers every image exactly once (no padded duplicates)
        sampler = None if train else eval_sampler(dataset)
        return DataLoader(
            dataset, batch_size=self.batch_size, shuffle=train, sampler=sampler, drop_last=train and self.drop_last,
            num_workers=self.num_workers, collate_fn=self.collate(split), pin_memory=torch.cuda.is_available(),
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train")

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")
