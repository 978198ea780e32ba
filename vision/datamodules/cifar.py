"""CIFAR-10 and CIFAR-100 from torchvision's on-disk format.

Files: ``<root>/cifar10/cifar-10-batches-py/{data_batch_1..5,test_batch}`` (labels under ``labels``) and
``<root>/cifar100/cifar-100-python/{train,test}`` (labels under ``fine_labels``): pickled dicts whose ``data``
is (N, 3072) uint8, channel-planar R, G, B. Splits: a seeded ``val_fraction`` of the 50,000 training images is
held out for validation (45k/5k at 0.1); the 10,000 test images are the test split.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from PIL import Image
from torch.utils.data import Dataset

from harness.datasets import MissingDataError, read_cifar_pickle, seeded_split

from ..transforms import Crop
from .base import VisionDataModule


class CIFARArrays(Dataset):
    """(N, 32, 32, 3) uint8 images and labels -> (RGB PIL image, label).

    PIL, as torchvision's CIFAR datasets return: RandAugment's bicubic geometric ops exist only for PIL."""

    def __init__(self, images: np.ndarray, labels: np.ndarray) -> None:
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[Image.Image, int]:
        return Image.fromarray(self.images[i]), int(self.labels[i])


class CIFAR10DataModule(VisionDataModule):
    """CIFAR-10 (see the module docstring). Defaults are the 32 px recipe of vision/configs/cifar10-hgrn.yaml:
    padded random crop, no resize at evaluation.

    Args (beyond :class:`VisionDataModule`): val_fraction: share of the training images held out;
    download: let torchvision download the archive into ``<root>/<folder>`` when it is missing (needs a network).
    """

    task: ClassVar[str] = "cifar10"
    num_classes: ClassVar[int] = 10
    folder: ClassVar[str] = "cifar10"
    batches: ClassVar[str] = "cifar-10-batches-py"
    archive: ClassVar[str] = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
    train_files: ClassVar[tuple[str, ...]] = tuple(f"data_batch_{i}" for i in range(1, 6))
    test_files: ClassVar[tuple[str, ...]] = ("test_batch",)
    label_key: ClassVar[str] = "labels"
    mean: ClassVar[tuple[float, ...]] = (0.4914, 0.4822, 0.4465)
    std: ClassVar[tuple[float, ...]] = (0.2470, 0.2435, 0.2616)

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        *,
        batch_size: int = 128,
        num_workers: int = 4,
        image_size: int = 32,
        crop: Crop = "pad",
        eval_crop_ratio: float = 1.0,
        val_fraction: float = 0.1,
        download: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(root=root, batch_size=batch_size, num_workers=num_workers, image_size=image_size, crop=crop,
                         eval_crop_ratio=eval_crop_ratio, **kwargs)
        if not 0.0 < val_fraction < 1.0:
            raise ValueError(f"data.val_fraction must lie in (0, 1), got {val_fraction}")
        self.val_fraction = float(val_fraction)
        self.download = bool(download)
        self._arrays: dict[str, CIFARArrays] = {}

    @property
    def directory(self) -> Path:
        return self.root / self.folder / self.batches

    def _download(self) -> None:
        from torchvision import datasets  # only here: downloading is opt-in

        cls = datasets.CIFAR10 if self.num_classes == 10 else datasets.CIFAR100
        for train in (True, False):
            cls(str(self.root / self.folder), train=train, download=True)

    def _require(self, names: tuple[str, ...]) -> None:
        missing = [n for n in names if not (self.directory / n).is_file()]
        if missing and self.download:
            self._download()
            missing = [n for n in names if not (self.directory / n).is_file()]
        if missing:
            archive = self.archive.rsplit("/", 1)[-1]
            raise MissingDataError(
                self.directory / missing[0],
                f"download {self.archive} and unpack it into {self.root / self.folder} "
                f"(tar -xzf {archive} -C {self.root / self.folder}) so that {self.directory} holds "
                f"{', '.join(self.train_files + self.test_files)}; or pass --data.init_args.download true where a "
                f"network is available; or point --data.init_args.root (or $HGRN_DATA) at the folder that holds {self.folder}/.")

    def _read(self, part: str) -> CIFARArrays:
        if part not in self._arrays:
            names = self.train_files if part == "train" else self.test_files
            self._require(names)
            pieces = [read_cifar_pickle(self.directory / n, self.label_key, self.num_classes) for n in names]
            self._arrays[part] = CIFARArrays(np.concatenate([p[0] for p in pieces]), np.concatenate([p[1] for p in pieces]))
        return self._arrays[part]

    def split_sources(self, splits: tuple[str, ...]) -> dict[str, tuple[Dataset, list[int]]]:
        out: dict[str, tuple[Dataset, list[int]]] = {}
        if "train" in splits or "val" in splits:
            train = self._read("train")
            n_val = int(round(self.val_fraction * len(train)))
            held_out = seeded_split(len(train), [n_val, len(train) - n_val], self.seed)
            for split, idx in zip(("val", "train"), held_out):
                if split in splits:
                    out[split] = (train, np.sort(idx).tolist())
        if "test" in splits:
            test = self._read("test")
            out["test"] = (test, list(range(len(test))))
        return out


class CIFAR100DataModule(CIFAR10DataModule):
    """CIFAR-100 with its 100 fine labels; otherwise as :class:`CIFAR10DataModule`."""

    task: ClassVar[str] = "cifar100"
    num_classes: ClassVar[int] = 100
    folder: ClassVar[str] = "cifar100"
    batches: ClassVar[str] = "cifar-100-python"
    archive: ClassVar[str] = "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
    train_files: ClassVar[tuple[str, ...]] = ("train",)
    test_files: ClassVar[tuple[str, ...]] = ("test",)
    label_key: ClassVar[str] = "fine_labels"
    mean: ClassVar[tuple[float, ...]] = (0.5071, 0.4865, 0.4409)
    std: ClassVar[tuple[float, ...]] = (0.2673, 0.2564, 0.2762)
