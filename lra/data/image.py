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
import pickle
from collections.abc import Callable
from functools import cached_property
from pathlib import Path

import numpy as np
from torch.utils.data import Dataset

from lra.data.base import LRADataModule
from lra.data.collate import PIXEL_SCALES, ImageCollate
from lra.data.errors import MalformedDataError, MissingDataError
from lra.data.paths import prepare_command
from lra.data.pixels import PixelDataset, rgb_to_gray
from lra.data.splits import holdout_lengths, seeded_split

FOLDER = "cifar10"
BATCHES = "cifar-10-batches-py"
TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILE = "test_batch"
GREY_MEAN, GREY_STD = (122.6 / 255.0,), (61.0 / 255.0,)
RGB_MEAN, RGB_STD = (0.4914, 0.4822, 0.4465), (0.247, 0.243, 0.261)


def find_cifar(root: Path) -> Path:
    for d in (root / FOLDER / BATCHES, root / FOLDER):
        if (d / TRAIN_FILES[0]).is_file():
            return d
    raise MissingDataError(root / FOLDER / BATCHES, f"run `{prepare_command('image', root)}` (downloads "
                           f"cifar-10-python.tar.gz), or unpack it so that {root / FOLDER / BATCHES / TRAIN_FILES[0]} exists")


def read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(N, 32, 32, 3) uint8 images and (N,) labels of one pickled batch."""
    if not path.is_file():
        raise MissingDataError(path, f"the CIFAR-10 folder {path.parent} is incomplete; unpack cifar-10-python.tar.gz again")
    try:
        with open(path, "rb") as f:
            d = pickle.load(f, encoding="bytes")
    except Exception as err:  # pickle raises many types on a damaged file
        raise MalformedDataError(path, None, f"not a CIFAR-10 pickle batch ({type(err).__name__}: {err})") from None
    data = d.get(b"data", d.get("data")) if isinstance(d, dict) else None
    labels = d.get(b"labels", d.get("labels")) if isinstance(d, dict) else None
    if data is None or labels is None:
        raise MalformedDataError(path, None, "missing 'data' or 'labels'")
    data = np.asarray(data)
    labels = np.asarray(labels, dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
        raise MalformedDataError(path, None, f"expected (N, 3072) uint8 data and N labels, got {data.shape} "
                                             f"{data.dtype} and {len(labels)} labels")
    bad = np.flatnonzero((labels < 0) | (labels > 9))
    if bad.size:
        raise MalformedDataError(path, None, f"label {labels[bad[0]]} of image {bad[0]} outside 0..9")
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


class ImageDataModule(LRADataModule):
    """CIFAR-10 (10 classes). Batches: ``{"x": (B, 1024, C) float, "lengths": (B,) all 1024,
    "y": (B,)}`` (``"tokens"`` scaling: ``x`` is (B, 1024) long).

    Args (beyond :class:`LRADataModule`):
        grayscale: 1 grey channel (LRA) or 3 RGB channels (HGRN's runs).
        augment: random crop (padding 4, symmetric) and horizontal flip on the training split.
        augment_val: with ``augment``, augment the validation images too (published: the transform was set
            before the train/validation split, so checkpoints were chosen on augmented images). The test
            split is never augmented.
        drop_last: drop the last partial training batch (published: True); evaluation keeps every row.
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
        batch_size: int = 32,
        num_workers: int = 0,
        seed: int = 42,
        grayscale: bool = True,
        augment: bool = False,
        pixel_scale: str = "normalize",
        val_fraction: float = 0.1,
        augment_val: bool = False,
        drop_last: bool = False,
        limit_train: int | None = None,
        limit_val: int | None = None,
        limit_test: int | None = None,
        cache_dir: str | os.PathLike | None = None,
    ) -> None:
        super().__init__(root, batch_size, num_workers, seed, limit_train, limit_val, limit_test, cache_dir)
        self.save_hyperparameters()
        if pixel_scale not in PIXEL_SCALES:
            raise ValueError(f"pixel_scale must be one of {PIXEL_SCALES}, got {pixel_scale!r}")
        if pixel_scale == "tokens" and not grayscale:
            raise ValueError("pixel_scale='tokens' needs grayscale=True")
        self.grayscale = bool(grayscale)
        self.augment = bool(augment)
        if augment_val and not augment:
            raise ValueError("augment_val=True augments validation images like the training ones; it needs augment=True")
        self.augment_val = bool(augment_val)
        self.drop_last = bool(drop_last)
        self.pixel_scale = pixel_scale
        self.val_fraction = float(val_fraction)
        self.in_channels = 1 if self.grayscale else 3
        if pixel_scale == "tokens":
            self.vocab_size = 256

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
            parts = [read_cifar_batch(folder / f) for f in files]
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
