"""What the LRA and the vision DataModules share: where the data lives, the errors that say what to do when a
file is missing or unreadable, seeded splits, the CIFAR pickle reader, and the fields a DataModule hands to
the model it feeds (docs/ARCHITECTURE.md, section 3)."""
from __future__ import annotations

import os
import pickle
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
import torch

ENV_VAR = "HGRN_DATA"
SPLITS = ("train", "val", "test")
# fit includes the test split: the run tests its checkpoints right after training, so a missing or empty test
# split must stop it before the first step, not after the last epoch
STAGE_SPLITS: dict[str | None, tuple[str, ...]] = {
    "fit": SPLITS, "validate": ("val",), "test": ("test",), "predict": ("test",), None: SPLITS}


def resolve_root(root: str | os.PathLike | None = None) -> Path:
    """``root`` if given, else ``$HGRN_DATA``, else ``./data``."""
    if root is None or str(root) == "":
        root = os.environ.get(ENV_VAR) or "data"
    return Path(root).expanduser()


def split_limits(batch_size: int, limit_train: int | None, limit_val: int | None,
                 limit_test: int | None) -> dict[str, int | None]:
    """A DataModule's ``limit_*`` arguments by split, once they and ``batch_size`` are checked (each >= 1; a limit
    may be None, the whole split)."""
    if batch_size < 1:
        raise ValueError(f"data.batch_size must be >= 1, got {batch_size}")
    limits = dict(zip(SPLITS, (limit_train, limit_val, limit_test)))
    for split, limit in limits.items():
        if limit is not None and limit < 1:
            raise ValueError(f"data.limit_{split} must be >= 1 (or null for the whole split), got {limit}")
    return limits


class MissingDataError(FileNotFoundError):
    """A data file or folder is missing; the message names it and how to make it ready."""

    def __init__(self, path: str | os.PathLike, hint: str) -> None:
        self.path = str(path)
        self.hint = hint
        super().__init__(f"data not found: {path}. To make it ready: {hint}")


class MalformedDataError(ValueError):
    """A data file (or one line of it) cannot be read; the message names the file and line."""

    def __init__(self, path: str | os.PathLike, line: int | None, reason: str) -> None:
        self.path = str(path)
        self.line = line
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {reason}")


# -- seeded splits ----------------------------------------------------------------------------------------
def seeded_permutation(n: int, seed: int) -> np.ndarray:
    """A permutation of range(n) that depends only on ``seed`` (not on the global RNG): torch's, so that
    :func:`seeded_split` equals ``torch.utils.data.random_split``."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed)).numpy()


def seeded_split(n: int, lengths: Sequence[int], seed: int) -> list[np.ndarray]:
    """Index arrays of ``random_split(range(n), lengths, Generator().manual_seed(seed))`` (as S4 splits)."""
    if sum(lengths) != n:
        raise ValueError(f"split lengths {list(lengths)} do not add up to {n}")
    bounds = np.cumsum([0, *lengths])
    perm = seeded_permutation(n, seed)
    return [perm[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


def holdout_lengths(n: int, val_fraction: float, test_fraction: float = 0.0) -> tuple[int, int, int]:
    """S4's sizes: ``int(fraction * n)`` for val and test, the rest for train."""
    val = int(val_fraction * n)
    test = int(test_fraction * n)
    return n - val - test, val, test


# -- CIFAR ------------------------------------------------------------------------------------------------
def read_cifar_pickle(path: Path, label_key: str = "labels", num_classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """(N, 32, 32, 3) uint8 images and (N,) int64 labels of one pickled CIFAR file (torchvision's format:
    ``data`` (N, 3072) channel-planar R, G, B, labels under ``labels`` (CIFAR-10) or ``fine_labels`` (100))."""
    if not path.is_file():
        raise MissingDataError(path, f"the CIFAR folder {path.parent} is incomplete; unpack the archive again")
    try:
        with open(path, "rb") as f:
            d = pickle.load(f, encoding="bytes")
    except Exception as err:  # pickle raises many types on a damaged file
        raise MalformedDataError(path, None, f"not a CIFAR pickle ({type(err).__name__}: {err}); "
                                             "unpack the archive again") from None
    if isinstance(d, dict):  # the released files (Python 2 pickles) load with bytes keys; accept str keys too
        d = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in d.items()}
    if not isinstance(d, dict) or "data" not in d or label_key not in d:
        raise MalformedDataError(path, None, f"expected a dict with 'data' and {label_key!r}")
    data, labels = np.asarray(d["data"]), np.asarray(d[label_key], dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
        raise MalformedDataError(path, None, f"expected (N, 3072) uint8 data and N labels, got {data.shape} "
                                             f"{data.dtype} and {len(labels)} labels")
    bad = np.flatnonzero((labels < 0) | (labels >= num_classes))
    if bad.size:
        raise MalformedDataError(path, None, f"label {labels[bad[0]]} of image {bad[0]} outside 0..{num_classes - 1}")
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


# -- data -> model ----------------------------------------------------------------------------------------
DataKind = Literal["tokens", "pixels", "images"]


@dataclass(frozen=True)
class DataFields:
    """What a DataModule's batches are, for the model that reads them (``model_fields()``).

    ``kind``: ``tokens`` (B, T) integer ids below ``vocab_size``, padded with ``pad_index`` (None: never
    padded); ``pixels`` (B, T, in_channels) values of a ``grid`` (H, W) in raster order; ``images``
    (B, in_channels, H, W) with ``grid`` (H, W). ``grid`` may also come with tokens (pixels as ids)."""

    kind: DataKind
    num_classes: int
    vocab_size: int | None = None
    pad_index: int | None = None
    in_channels: int | None = None
    grid: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("tokens", "pixels", "images"):
            raise ValueError(f"DataFields.kind must be tokens, pixels or images, got {self.kind!r}")
        if self.num_classes < 2:
            raise ValueError(f"DataFields.num_classes must be >= 2, got {self.num_classes}")
        if self.kind == "tokens" and (self.vocab_size is None or self.in_channels is not None):
            raise ValueError("token data has a vocab_size and no in_channels")
        if self.kind != "tokens" and (self.in_channels is None or self.vocab_size is not None):
            raise ValueError(f"{self.kind} data has in_channels and no vocab_size")
        if self.kind == "images" and self.grid is None:
            raise ValueError("image data has a grid (H, W)")


@runtime_checkable
class ModelDataSource(Protocol):
    """A DataModule that says what its batches hold: ``kind`` right after construction (so a task can refuse it
    before any data is read), the complete :class:`DataFields` from ``model_fields()`` (which may read data,
    e.g. a vocabulary: call it after ``prepare_data``)."""

    kind: str

    def model_fields(self) -> DataFields: ...


def fields_for(module: Any) -> DataFields:
    """The :class:`DataFields` of the DataModule that ``module``'s trainer was given, once ``module.check_data``
    has accepted it (called from a task's ``configure_model``, after ``prepare_data``)."""
    trainer = module._trainer  # the public ``trainer`` raises when none is attached
    datamodule = getattr(trainer, "datamodule", None) if trainer is not None else None
    if datamodule is None:
        raise ValueError(f"{type(module).__name__} has no data fields (num_classes, ...): pass them as arguments, "
                         "or fit it with a DataModule, which hands them over")
    module.check_data(datamodule)
    return datamodule.model_fields()
