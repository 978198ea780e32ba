"""Pathfinder (32 px) and Path-X (128 px): ``pathfinder<res>/<difficulty>/{metadata,imgs}``.

Metadata files ``metadata/<k>.npy`` are *text* in the LRA release (one line per image:
``imgs/<b> sample_<i>.png <i> <label> ...``); the original generator's binary ``np.save`` form
is read too. Files are taken in numeric order of ``<k>``; the image is ``<difficulty>/<f0>/<f1>``
and the label is the fourth field. Empty, unreadable, missing or wrongly sized PNGs are skipped
and counted (the release's baseline folder has one empty PNG), as S4/S5/Mega/LRA do.

All PNGs are decoded once, in parallel, into a uint8 file ``images.u8`` (N x H*W) in the cache;
examples are then read from it one row at a time (``os.pread``; the page cache keeps hot data).
A split is an index array and pixels become floats only per batch, so Path-X (160k x 16384
training pixels, 2.6 GB as uint8) is never held in the process, let alone as floats.
The split is S4's: ``random_split`` of the readable images into 80/10/10 with ``seed``.
Pixels: ``pixel_scale="unit"`` [0, 1] (S4 config), ``"center"`` [-1, 1] (S5/Mega), or
``"tokens"`` (integers 0..255, official LRA).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from harness.datasets import MalformedDataError, MissingDataError, holdout_lengths, seeded_split
from lra.data.base import LRADataModule
from lra.data.cache import ArrayCache, cache_key, fingerprint, stat_digest
from lra.data.collate import ImageCollate
from lra.data.errors import SkipLog
from lra.data.paths import prepare_command, require
from lra.data.pixels import ImageRows, PixelDataset, PixelScale
from lra.generators.parallel import run_chunks

DEFAULT_DIFFICULTY = "curv_contour_length_14"
_NPY_MAGIC = b"\x93NUMPY"


def prepare_args(resolution: int, difficulty: str) -> tuple[str, str]:
    """(task, extra arguments) of the prepare command for this folder."""
    task = {32: "pathfinder", 128: "pathx"}.get(resolution, "pathfinder")
    extra = f"--resolution {resolution}" if resolution not in (32, 128) else ""
    if difficulty != DEFAULT_DIFFICULTY:
        extra = (extra + f" --difficulty {difficulty}").strip()
    return task, extra


def metadata_lines(path: Path) -> list[str]:
    """Lines of one metadata file, text (LRA release) or a numpy string array (original)."""
    raw = path.read_bytes()
    if raw.startswith(_NPY_MAGIC):
        try:
            rows = np.load(path, allow_pickle=False)
        except ValueError as err:
            raise MalformedDataError(path, None, f"binary metadata that numpy cannot read: {err}") from None
        return [" ".join(str(v) for v in np.atleast_1d(row)) for row in rows]
    try:
        return raw.decode("utf-8").splitlines()
    except UnicodeDecodeError as err:
        raise MalformedDataError(path, None, f"metadata is neither text nor a numpy array: {err}") from None


def read_metadata(folder: Path, skips: SkipLog) -> tuple[list[str], np.ndarray]:
    """Image paths and labels listed by ``<folder>/metadata/*.npy`` in S4's order."""
    meta_dir = folder / "metadata"
    files = sorted(meta_dir.glob("*.npy"))
    numbered = sorted((int(p.stem), p) for p in files if p.stem.isdigit())
    for p in files:
        if not p.stem.isdigit():
            skips.add("metadata file without a numeric name", str(p))
    if not numbered:
        raise MalformedDataError(meta_dir, None, "no metadata/<number>.npy files")
    paths: list[str] = []
    labels: list[int] = []
    for _, path in numbered:
        for line_no, line in enumerate(metadata_lines(path), start=1):
            fields = line.split()
            if not fields:
                continue  # blank line: no example in it
            if len(fields) < 4:
                raise MalformedDataError(path, line_no, f"metadata line has {len(fields)} field(s), needs at least "
                                                        "4 (folder, file, index, label)")
            try:
                label = int(float(fields[3]))
            except ValueError:
                raise MalformedDataError(path, line_no, f"label {fields[3]!r} is not a number") from None
            if label not in (0, 1):
                raise MalformedDataError(path, line_no, f"label {fields[3]!r} is not 0 or 1")
            paths.append(str(folder / fields[0] / fields[1]))
            labels.append(label)
    if not paths:
        raise MalformedDataError(meta_dir, None, "metadata lists no images")
    return paths, np.asarray(labels, dtype=np.int64)


def _decode(args: tuple[str, int, int, int, list[str]]) -> tuple[list[tuple[int, str]], int]:
    """Decode PNGs into rows ``start..`` of the memory-mapped image file; report failures."""
    image_file, n, resolution, start, paths = args
    mm = np.memmap(image_file, dtype=np.uint8, mode="r+", shape=(n, resolution * resolution))
    failures = []
    for k, p in enumerate(paths):
        try:
            if os.path.getsize(p) == 0:
                failures.append((start + k, "empty PNG"))
                continue
            with Image.open(p) as im:
                if im.size != (resolution, resolution):
                    failures.append((start + k, f"image not {resolution}x{resolution}"))
                    continue
                mm[start + k] = np.asarray(im.convert("L"), dtype=np.uint8).reshape(-1)
        except FileNotFoundError:
            failures.append((start + k, "missing PNG"))
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
            failures.append((start + k, "unreadable PNG"))
    mm.flush()
    del mm
    return failures, len(paths)


class PathfinderDataModule(PixelScale, LRADataModule):
    """Pathfinder / Path-X (2 classes). Batches: ``{"x": (B, H*W, 1) float, "lengths": (B,)
    all H*W, "y": (B,)}`` (``"tokens"``: ``x`` is (B, H*W) long).

    Args (beyond :class:`LRADataModule`):
        resolution: 32 (Pathfinder), 128 (Path-X); 64 and 256 also work.
        difficulty: folder under ``pathfinder<res>``; LRA uses ``curv_contour_length_14``.
        pixel_scale: ``"unit"`` [0, 1] (default), ``"center"`` [-1, 1] (published: ``Normalize(0.5, 0.5)``)
            or ``"tokens"``.
        val_fraction, test_fraction: held-out fractions (S4: 0.1 each).
        decode_workers: processes for the one-time PNG decode (default: all cores).
    """

    task = "pathfinder"
    num_classes = 2
    in_channels = 1

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        *,
        resolution: int = 32,
        difficulty: str = DEFAULT_DIFFICULTY,
        pixel_scale: str = "unit",
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        decode_workers: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(root, **kwargs)
        self._set_pixel_scale(pixel_scale, allowed=("unit", "center", "tokens"))
        self.resolution = int(resolution)
        self.difficulty = difficulty
        self.val_fraction = float(val_fraction)
        self.test_fraction = float(test_fraction)
        self.decode_workers = decode_workers
        self.grid = (self.resolution, self.resolution)
        self.max_length = self.resolution * self.resolution
        self.task = prepare_args(self.resolution, difficulty)[0]  # "pathfinder" or "pathx"

    @property
    def folder(self) -> Path:
        return self.root / f"pathfinder{self.resolution}" / self.difficulty

    def _prepare_command(self) -> str:
        task, extra = prepare_args(self.resolution, self.difficulty)
        return prepare_command(task, self.root, extra)

    @property
    def pipeline(self) -> dict[str, object]:
        """The data switches of docs/FIDELITY.md (copied into the run record)."""
        return {"pixel_scale": self.pixel_scale, "drop_last": self.drop_last}

    @property
    def collate(self) -> Callable:
        return ImageCollate(self.pixel_scale)

    @cached_property
    def _decoded(self) -> tuple[ImageRows, np.ndarray, np.ndarray]:
        """((N, H*W) uint8 images read on demand, labels, indices of readable images)."""
        task, extra = prepare_args(self.resolution, self.difficulty)
        require(self.folder / "metadata", task, self.root, extra=extra)
        skips = SkipLog()
        meta_files = sorted((self.folder / "metadata").glob("*.npy"))
        paths, labels = read_metadata(self.folder, skips)
        # the key covers every listed image (size and mtime), so a replaced or repaired PNG is decoded again
        key = cache_key(task="pathfinder", source=fingerprint(meta_files), images=stat_digest(paths),
                        resolution=self.resolution)
        cache = ArrayCache(self.cache_dir / "pathfinder", f"{self.resolution}-{self.difficulty}", key)
        if not cache.exists():
            self._decode_all(cache, paths, labels)
        arrays, meta = cache.load()  # type: ignore[misc]
        n, t = meta["n"], self.max_length
        images = ImageRows(cache.file("images.u8"), (n, t))
        for reason, examples in meta["failures"].items():
            skips.add_many(reason, ", ".join(examples[:3]), meta["failure_counts"][reason])
        for reason, count in meta.get("meta_skips", {}).items():
            skips.add_many(reason, str(self.folder / "metadata"), count)
        skips.warn(f"{self.folder}")
        self.skipped["all"] = skips.as_dict()
        valid = np.asarray(arrays["valid"])
        if valid.size == 0:
            raise MissingDataError(self.folder / "imgs", f"none of the {n} images listed in the metadata could be read; "
                                   f"run `{self._prepare_command()}` again")
        return images, np.asarray(arrays["labels"]), valid

    def _decode_all(self, cache: ArrayCache, paths: list[str], labels: np.ndarray) -> None:
        n, t = len(paths), self.max_length
        with cache.building() as tmp:
            image_file = tmp / "images.u8"
            np.memmap(image_file, dtype=np.uint8, mode="w+", shape=(n, t)).flush()
            step = 2000 if self.resolution <= 64 else 500
            tasks = [(str(image_file), n, self.resolution, s, paths[s:s + step]) for s in range(0, n, step)]
            failures: dict[int, str] = {}
            for fails, _ in run_chunks(_decode, tasks, workers=self.decode_workers, total=n, count=lambda r: r[1],
                                       desc=f"decode {self.folder.parent.name}/{self.folder.name}", unit="img",
                                       progress=n > 2000):
                failures.update(fails)
            valid = np.array([i for i in range(n) if i not in failures], dtype=np.int64)
            by_reason: dict[str, list[str]] = {}
            for i, reason in sorted(failures.items()):
                by_reason.setdefault(reason, []).append(paths[i])
            np.save(tmp / "labels.npy", labels)
            np.save(tmp / "valid.npy", valid)
            (tmp / "meta.json").write_text(json.dumps({
                "arrays": ["labels", "valid"], "n": n,
                "failures": {r: v[:3] for r, v in by_reason.items()},
                "failure_counts": {r: len(v) for r, v in by_reason.items()},
            }))

    def _build(self, split: str) -> Dataset:
        images, labels, valid = self._decoded
        n_train, n_val, n_test = holdout_lengths(valid.size, self.val_fraction, self.test_fraction)
        parts = dict(zip(("train", "val", "test"), seeded_split(valid.size, [n_train, n_val, n_test], self.seed)))
        return PixelDataset(images, labels, valid[parts[split]])


class PathXDataModule(PathfinderDataModule):
    """Path-X: :class:`PathfinderDataModule` at 128 x 128 (sequence length 16384) by default."""

    def __init__(self, root: str | os.PathLike | None = None, *, resolution: int = 128, **kwargs: Any) -> None:
        super().__init__(root, resolution=resolution, **kwargs)
