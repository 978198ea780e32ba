"""ImageNet-1k (or any dataset in the same layout) from an ImageFolder tree.

Layout: ``<root>/<folder>/train/<class>/*.JPEG`` and ``<root>/<folder>/val/<class>/*.JPEG`` with the same class
folders (for ImageNet the 1000 WordNet ids; the 50,000 validation images sorted into them). Splits: ``val/`` is
the test split, the number every ImageNet paper reports; the validation split that picks the best checkpoint
is a seeded hold-out of ``val_holdout`` training images (0 makes it ``val/`` itself, DeiT's practice, which
then selects on the test images).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from torch.utils.data import Dataset
from torchvision.datasets import ImageFolder
from torchvision.datasets.folder import find_classes

from harness.datasets import MissingDataError, seeded_split

from .base import VisionDataModule


class ImageNetDataModule(VisionDataModule):
    """ImageNet-1k with the DeiT recipe's defaults (224 px, random-resized crop, eval resize 256).

    Args (beyond :class:`VisionDataModule`):
        num_classes: class folders expected under ``train/`` (checked at setup).
        folder: the dataset folder under the root. val_holdout: training images held out for validation.
    """

    task: ClassVar[str] = "imagenet"

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        *,
        num_classes: int = 1000,
        folder: str = "imagenet",
        val_holdout: int = 10_000,
        **kwargs: Any,
    ) -> None:
        super().__init__(root=root, **kwargs)
        if num_classes < 2:
            raise ValueError(f"data.num_classes must be >= 2, got {num_classes}")
        if val_holdout < 0:
            raise ValueError(f"data.val_holdout must be >= 0, got {val_holdout}")
        self.num_classes = int(num_classes)
        self.folder = folder
        self.val_holdout = int(val_holdout)
        self._folders: dict[str, ImageFolder] = {}

    @property
    def directory(self) -> Path:
        return self.root / self.folder

    def _require(self, path: Path) -> Path:
        if not path.is_dir():
            raise MissingDataError(
                path,
                f"place ImageNet-1k (ILSVRC2012) there in ImageFolder layout: {self.directory}/train/<wnid>/*.JPEG "
                f"({self.num_classes} class folders) and {self.directory}/val/<wnid>/*.JPEG (the validation images "
                f"sorted into the same class folders); or point --data.init_args.root (or $HGRN_DATA) at the folder "
                f"that holds {self.folder}/.")
        return path

    def _image_folder(self, part: str) -> ImageFolder:
        """The ImageFolder of ``train`` or ``val``, checked against the class folders of ``train/``."""
        if part not in self._folders:
            path = self._require(self.directory / part)
            classes = find_classes(str(self._require(self.directory / "train")))[0]  # a listdir, cheap
            if len(classes) != self.num_classes:
                raise ValueError(f"{self.directory / 'train'} has {len(classes)} class folders but data.num_classes is "
                                 f"{self.num_classes}; fix the folder or set --data.init_args.num_classes")
            ds = ImageFolder(str(path))
            if ds.classes != classes:
                raise ValueError(f"{path} and {self.directory / 'train'} have different class folders; they must match")
            self._folders[part] = ds
        return self._folders[part]

    def split_sources(self, splits: tuple[str, ...]) -> dict[str, tuple[Dataset, list[int]]]:
        out: dict[str, tuple[Dataset, list[int]]] = {}
        if "train" in splits or ("val" in splits and self.val_holdout > 0):
            train = self._image_folder("train")
            if self.val_holdout >= len(train):
                raise ValueError(f"data.val_holdout {self.val_holdout} leaves no training images in "
                                 f"{self.directory / 'train'} ({len(train)} images)")
            held_out = seeded_split(len(train), [self.val_holdout, len(train) - self.val_holdout], self.seed)
            if "val" in splits and self.val_holdout > 0:
                out["val"] = (train, np.sort(held_out[0]).tolist())
            if "train" in splits:
                out["train"] = (train, np.sort(held_out[1]).tolist())
        if "test" in splits or ("val" in splits and self.val_holdout == 0):
            test = self._image_folder("val")
            for split in ("val", "test"):
                if split in splits and split not in out:
                    out[split] = (test, list(range(len(test))))
        return out
