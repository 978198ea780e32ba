"""On-disk cache of encoded arrays, keyed by the source files and the encoding settings.

A cache entry is a folder ``<cache_dir>/<name>-<key>/`` with one ``.npy`` per array, a
``meta.json`` and optional extra files (e.g. ``vocab.json``). It is written to a temporary
folder and renamed, so a killed process never leaves a half-written entry. Arrays are opened
memory-mapped: a second start costs milliseconds and shares pages between loader workers.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

CACHE_VERSION = 1


def fingerprint(paths: list[Path]) -> list[list]:
    """Size and modification time of files; for folders, entry count and folder mtime."""
    out = []
    for p in paths:
        st = p.stat()
        if p.is_dir():
            out.append([str(p), "dir", len(os.listdir(p)), st.st_mtime_ns])
        else:
            out.append([str(p), st.st_size, st.st_mtime_ns])
    return out


def cache_key(**parts: object) -> str:
    blob = json.dumps({"version": CACHE_VERSION, **parts}, sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


class ArrayCache:
    """One cache entry. ``load`` returns None when absent; ``save`` is atomic."""

    def __init__(self, directory: Path, name: str, key: str) -> None:
        self.directory = Path(directory)
        self.path = self.directory / f"{name}-{key}"

    def exists(self) -> bool:
        return (self.path / "meta.json").is_file()

    def load(self) -> tuple[dict[str, np.ndarray], dict] | None:
        if not self.exists():
            return None
        meta = json.loads((self.path / "meta.json").read_text())
        arrays = {name: np.load(self.path / f"{name}.npy", mmap_mode="r") for name in meta["arrays"]}
        return arrays, meta

    def file(self, name: str) -> Path:
        return self.path / name

    @contextmanager
    def building(self) -> Iterator[Path]:
        """A temporary folder to write the entry into; renamed into place if the block succeeds."""
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=self.path.name + ".", dir=self.directory))
        try:
            yield tmp
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        if self.path.exists():  # another process got there first: keep theirs
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            os.replace(tmp, self.path)

    def save(self, arrays: dict[str, np.ndarray], meta: dict,
             extra: dict[str, Callable[[Path], None]] | None = None) -> bool:
        """Write the entry; returns False (with a warning) when the folder is not writable."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=self.path.name + ".", dir=self.directory))
        except OSError as err:
            warnings.warn(f"cannot write the cache in {self.directory} ({err}); the next start will "
                          "encode the data again (pass cache_dir=... to a writable folder)", stacklevel=2)
            return False
        try:
            for name, arr in arrays.items():
                np.save(tmp / f"{name}.npy", np.ascontiguousarray(arr))
            for name, writer in (extra or {}).items():
                writer(tmp / name)
            (tmp / "meta.json").write_text(json.dumps({**meta, "arrays": sorted(arrays)}, default=str))
            if self.path.exists():  # another process got there first: keep theirs
                shutil.rmtree(tmp)
            else:
                os.replace(tmp, self.path)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return True
