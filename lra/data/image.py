"""Image (CIFAR-10 as a pixel sequence), from torchvision's on-disk format.

Files: ``<root>/cifar10/cifar-10-batches-py/{data_batch_1..5,test_batch}`` (pickled dicts with
``data`` (N, 3072) uint8, channel-planar R, G, B, and ``labels``). Split: 45k/5k from the
training batches with ``random_split`` seeded by ``seed`` (S4), plus the 10k test batch.

Sequence: row-major 32 x 32 = 1024 steps; 1 channel (grey, PIL's luma, the LRA default) or 3
(RGB, what the HGRN scripts ran, optionally with RandomCrop(32, 4, symmetric) + flip).
Pixel scaling (``pixel_scale``): ``"normalize"`` (default, S4: grey mean 122.6/255, std 61/255;
RGB per-channel CIFAR mean/std), ``"unit"`` [0, 1], ``"center"`` [-1, 1], or ``"tokens"``
(integer 0..255 as LongTensor (B, T), official LRA; grey only, ``vocab_size`` 256).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from harness.datasets import MissingDataError, holdout_lengths, read_cifar_pickle, seeded_split
from lra.data.base import LRADataModule
from lra.data.collate import ImageCollate
from lra.data.paths import prepare_command
from lra.data.pixels import PixelDataset, PixelScale, rgb_to_gray

FOLDER = "cifar10"
BATCHES = "cifar-10-batches-py"
TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILE = "test_batch"
GREY_MEAN, GREY_STD = (122.6 / 255.0,), (61.0 / 255.0,)
RGB_MEAN, RGB_STD = (0.4914, 0.4822, 0.4465), (0.247, 0.243, 0.261)


def find_cifar(root: Path) -> Path:
    """The folder that holds the CIFAR-10 batches, all of them there, or MissingDataError naming the fix."""
    command = prepare_command("image", root)
    for d in (root / FOLDER / BATCHES, root / FOLDER):
        if (d / TRAIN_FILES[0]).is_file():
            missing = [f for f in (*TRAIN_FILES, TEST_FILE) if not (d / f).is_file()]
            if missing:
                raise MissingDataError(d / missing[0], f"the CIFAR-10 folder {d} is incomplete; run `{command}` "
                                                       "again, or unpack cifar-10-python.tar.gz there again")
            return d
    raise MissingDataError(root / FOLDER / BATCHES, f"run `{command}` (downloads cifar-10-python.tar.gz), or "
                           f"unpack it so that {root / FOLDER / BATCHES / TRAIN_FILES[0]} exists")


class ImageDataModule(PixelScale, LRADataModule):
    """CIFAR-10 (10 classes). Batches: ``{"x": (B, 1024, C) float, "lengths": (B,) all 1024,
    "y": (B,)}`` (``"tokens"`` scaling: ``x`` is (B, 1024) long).

    Args (beyond :class:`LRADataModule`):
        grayscale: 1 grey channel (LRA) or 3 RGB channels (HGRN's runs).
        augment: random crop (padding 4, symmetric) and horizontal flip on the training split.
        augment_val: with ``augment``, augment the validation images too (published: the transform was set
            before the train/validation split, so checkpoints were chosen on augmented images). The test
            split is never augmented.
        pixel_scale: see the module docstring.
        val_fraction: held out of the 50k training images (0.1 -> 45k/5k).
    """

    task = "image"
    num_classes = 10
    grid = (32, 32)
    max_length = 1024

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        *,
        grayscale: bool = True,
        augment: bool = False,
        pixel_scale: str = "normalize",
        val_fraction: float = 0.1,
        augment_val: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(root, **kwargs)
        self._set_pixel_scale(pixel_scale)
        if pixel_scale == "tokens" and not grayscale:
            raise ValueError("pixel_scale='tokens' needs grayscale=True")
        if augment_val and not augment:
            raise ValueError("augment_val=True augments validation images like the training ones; it needs augment=True")
        self.grayscale = bool(grayscale)
        self.augment = bool(augment)
        self.augment_val = bool(augment_val)
        self.val_fraction = float(val_fraction)
        self.in_channels = 1 if self.grayscale else 3

    @property
    def pipeline(self) -> dict[str, object]:
        """The data switches of docs/FIDELITY.md (copied into the run record)."""
        return {"grayscale": self.grayscale, "augment": self.augment, "augment_val": self.augment_val,
                "pixel_scale": self.pixel_scale, "drop_last": self.drop_last}

    @property
    def collate(self) -> Callable:
        mean, std = (GREY_MEAN, GREY_STD) if self.grayscale else (RGB_MEAN, RGB_STD)
        return ImageCollate(self.pixel_scale, mean, std)

    @cached_property
    def _arrays(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        folder = find_cifar(self.root)
        out = {}
        for split, files in (("train", TRAIN_FILES), ("test", (TEST_FILE,))):
            parts = [read_cifar_pickle(folder / f) for f in files]
            images = np.concatenate([p[0] for p in parts])
            labels = np.concatenate([p[1] for p in parts])
            pixels = rgb_to_gray(images)[..., None] if self.grayscale else images
            out[split] = (pixels.reshape(len(pixels), 1024, self.in_channels), labels)
        return out

    def _build(self, split: str) -> Dataset:
        if split == "test":
            pixels, labels = self._arrays["test"]
            return PixelDataset(pixels, labels)
        pixels, labels = self._arrays["train"]
        n_train, n_val, _ = holdout_lengths(len(labels), self.val_fraction)
        train_idx, val_idx = seeded_split(len(labels), [n_train, n_val], self.seed)
        if split == "train":
            return PixelDataset(pixels, labels, train_idx, self.grid, augment=self.augment)
        return PixelDataset(pixels, labels, val_idx, self.grid, augment=self.augment_val)
