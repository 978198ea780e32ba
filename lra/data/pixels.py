"""Pixel datasets of the image tasks: uint8 rows, converted to floats only per batch; the pixel-scale option
that the Image and Pathfinder DataModules share.

Images are kept as ``(N, H*W, C)`` (or ``(N, H*W)``) uint8 arrays, or as rows of a file read on
demand (:class:`ImageRows`), and a subset is an index array, never a copy. Scaling happens in
:class:`lra.data.collate.ImageCollate`.
"""

from __future__ import annotations

import os

from collections.abc import Collection

import numpy as np
import torch
from torch.utils.data import Dataset

from lra.data.collate import PIXEL_SCALES

PIXEL_VOCAB_SIZE = 256  # pixel_scale "tokens": grey values 0..255 are the ids


class PixelScale:
    """The ``pixel_scale`` option of the Image and Pathfinder DataModules: values (``unit``, ``center``,
    ``normalize``) make pixel batches, ``tokens`` makes the grey values token ids (official LRA)."""

    def _set_pixel_scale(self, pixel_scale: str, allowed: Collection[str] = PIXEL_SCALES) -> None:
        if pixel_scale not in allowed:
            raise ValueError(f"pixel_scale must be one of {', '.join(allowed)}; got {pixel_scale!r}")
        self.pixel_scale = pixel_scale
        self.kind = "tokens" if pixel_scale == "tokens" else "pixels"
        # no padding: every image is a full-length sequence, so no id is reserved (pad_index stays None)
        self.vocab_size = PIXEL_VOCAB_SIZE if pixel_scale == "tokens" else None


class ImageRows:
    """Fixed-size uint8 rows of a flat file, read on demand with ``os.pread``.

    The decoded Pathfinder/Path-X images live in one file of N x T bytes. Reading a row per
    example (rather than memory-mapping the file) keeps the process's resident memory at the
    batches in flight: with a mapping, readahead and fault-around also map the neighbouring
    images of the other splits. The OS page cache still serves repeated epochs. Pickles as
    the file name, so DataLoader workers (fork or spawn) each open the file themselves.
    """

    def __init__(self, path: str | os.PathLike, shape: tuple[int, int]) -> None:
        self.path = str(path)
        self.shape = (int(shape[0]), int(shape[1]))
        self.dtype = np.dtype(np.uint8)
        self._fd: int | None = None
        self._pid: int | None = None

    def _file(self) -> int:
        if self._fd is None or self._pid != os.getpid():
            self._fd = os.open(self.path, os.O_RDONLY)
            self._pid = os.getpid()
            if hasattr(os, "posix_fadvise"):
                os.posix_fadvise(self._fd, 0, 0, os.POSIX_FADV_RANDOM)  # random split order
        return self._fd

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, i: int) -> np.ndarray:
        i = int(i)
        if not 0 <= i < self.shape[0]:
            raise IndexError(f"row {i} outside 0..{self.shape[0] - 1}")
        row = self.shape[1]
        buf = os.pread(self._file(), row, i * row)
        if len(buf) != row:
            raise OSError(f"{self.path} is shorter than expected (row {i}); delete it to rebuild the cache")
        return np.frombuffer(buf, dtype=np.uint8)

    def __getstate__(self) -> dict:
        return {"path": self.path, "shape": self.shape, "dtype": self.dtype, "_fd": None, "_pid": None}

    def __del__(self) -> None:
        if self._fd is not None and self._pid == os.getpid():
            try:
                os.close(self._fd)
            except OSError:
                pass


def rgb_to_gray(rgb: np.ndarray) -> np.ndarray:
    """ITU-R 601-2 luma with PIL's integer rounding (what ``transforms.Grayscale`` computes)."""
    r, g, b = (rgb[..., i].astype(np.uint32) for i in range(3))
    return ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16).astype(np.uint8)


def random_crop_flip(img: np.ndarray, padding: int = 4) -> np.ndarray:
    """RandomCrop(size, padding, padding_mode='symmetric') then RandomHorizontalFlip on (H, W, C).

    Uses torch's RNG, so DataLoader workers get distinct, seed_everything-controlled streams.
    """
    h, w = img.shape[:2]
    padded = np.pad(img, ((padding, padding), (padding, padding), (0, 0)), mode="symmetric")
    top = int(torch.randint(0, 2 * padding + 1, ()).item())
    left = int(torch.randint(0, 2 * padding + 1, ()).item())
    out = padded[top:top + h, left:left + w]
    if torch.rand(()) < 0.5:
        out = out[:, ::-1]
    return np.ascontiguousarray(out)


class PixelDataset(Dataset):
    """Row ``indices[i]`` of ``pixels`` as a (H*W, C) uint8 tensor, with its label.

    Args:
        pixels: (N, H*W, C) or (N, H*W) uint8 rows (array, memmap or :class:`ImageRows`).
        labels: (N,) labels.
        indices: which rows make up this dataset (None: all).
        grid: (H, W), needed for ``augment``.
        augment: random crop with symmetric padding 4 and horizontal flip (HGRN/S4 CIFAR).
    """

    def __init__(self, pixels: np.ndarray, labels: np.ndarray, indices: np.ndarray | None = None,
                 grid: tuple[int, int] | None = None, augment: bool = False) -> None:
        if len(pixels) != len(labels):
            raise ValueError(f"{len(pixels)} images but {len(labels)} labels")
        if augment and grid is None:
            raise ValueError("augment needs the image grid (H, W)")
        self.pixels = pixels
        self.labels = labels
        self.indices = np.arange(len(labels)) if indices is None else np.asarray(indices, dtype=np.int64)
        self.grid = grid
        self.augment = augment

    def __len__(self) -> int:
        return int(self.indices.size)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        j = int(self.indices[i])
        row = np.asarray(self.pixels[j])  # one image copied out of the (memory-mapped) array
        if row.ndim == 1:
            row = row[:, None]
        if self.augment:
            h, w = self.grid  # type: ignore[misc]
            row = random_crop_flip(row.reshape(h, w, -1)).reshape(h * w, -1)
        return torch.from_numpy(np.array(row, dtype=np.uint8, copy=True)), int(self.labels[j])
