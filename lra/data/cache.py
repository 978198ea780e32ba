"""On-disk cache of encoded arrays, keyed by the source files and the encoding settings.

A cache entry is a folder ``<cache_dir>/<name>-<key>/`` with one ``.npy`` per array, a
``meta.json``, a ``built_by.json`` (process and host that built it) and optional extra files
(e.g. ``vocab.json``). It is written to a unique temporary folder and published with one
``rename``: a killed process never leaves a half-written entry, and when two processes build
the same entry at once the first rename wins and the other drops its copy and uses the
winner's. Arrays are opened memory-mapped: a second start costs milliseconds and shares pages
between loader workers. A data root that cannot be written gets its cache in a user folder
(``$XDG_CACHE_HOME/hgrn-bench`` or ``~/.cache/hgrn-bench``), with a warning.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import socket
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


def stat_digest(paths: list[str] | list[Path]) -> str:
    """A digest of the size and modification time of every file (missing files count as such), in order:
    it changes when any one of thousands of files is replaced, and costs one ``stat`` per file."""
    h = hashlib.sha1()
    for p in paths:
        try:
            st = os.stat(p)
            h.update(f"{st.st_size}:{st.st_mtime_ns};".encode())
        except OSError:
            h.update(b"missing;")
    return h.hexdigest()


def is_writable_dir(path: Path) -> bool:
    """True if ``path`` exists or can be made, and a file can be created in it (a real probe: permission
    bits do not apply to root, read-only mounts and immutable folders still refuse)."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=path, prefix=".write-probe.")
        os.close(fd)
        os.unlink(probe)
        return True
    except OSError:
        return False


def user_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "hgrn-bench"


def resolve_cache_dir(root: Path, cache_dir: str | os.PathLike | None) -> Path:
    """``cache_dir`` if given, else ``<root>/.cache``, else (read-only root) a user cache folder, with a warning."""
    if cache_dir is not None:
        return Path(cache_dir)
    default = Path(root) / ".cache"
    if not Path(root).is_dir() or is_writable_dir(default):
        return default  # (a missing root is reported by the reader, with the command that makes the data)
    absolute = Path(root).resolve()
    fallback = user_cache_dir() / "lra" / f"{absolute.name}-{hashlib.sha1(str(absolute).encode()).hexdigest()[:12]}"
    warnings.warn(f"the data root {root} is not writable; the encoded-data cache goes to {fallback} instead "
                  "(choose another folder with --data.init_args.cache_dir)", stacklevel=2)
    return fallback


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

    def _new_temp(self) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.directory))

    def _publish(self, tmp: Path) -> bool:
        """Rename ``tmp`` into place: True if it became the entry, False if another process's complete entry
        was there first (``tmp`` is then dropped and theirs is used)."""
        (tmp / "built_by.json").write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname()}))
        for _ in range(5):
            try:
                os.rename(tmp, self.path)  # atomic; fails if a non-empty entry is already there
                return True
            except OSError as err:
                if err.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                    shutil.rmtree(tmp, ignore_errors=True)
                    raise
            if self.exists():  # the winner's entry is complete: it was renamed whole
                shutil.rmtree(tmp, ignore_errors=True)
                return False
            # a leftover without meta.json (older version, or copied by hand): move it aside, then retry
            if self.exists():
                continue
            aside = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.", suffix=".stale", dir=self.directory))
            try:
                os.rename(self.path, aside / "entry")
            except FileNotFoundError:
                pass
            shutil.rmtree(aside, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)
        raise OSError(f"could not publish the cache entry {self.path}: it keeps being replaced by other processes")

    @contextmanager
    def building(self) -> Iterator[Path]:
        """A unique temporary folder to write the entry into (including its ``meta.json``); published when the
        block succeeds, or dropped in favour of an entry another process published meanwhile."""
        tmp = self._new_temp()
        try:
            yield tmp
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self._publish(tmp)

    def save(self, arrays: dict[str, np.ndarray], meta: dict,
             extra: dict[str, Callable[[Path], None]] | None = None) -> bool:
        """Write the entry; returns False (with a warning) when the folder is not writable."""
        try:
            tmp = self._new_temp()
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
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self._publish(tmp)
        return True
