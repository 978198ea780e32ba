"""Fetch, verify and unpack the archives of the non-synthetic tasks (IMDB, CIFAR-10).

Downloads use urllib with a short timeout so that a machine without network fails at once with
a message naming the file to fetch elsewhere and where to put it. An archive already placed at
that path is verified (md5) and unpacked without any network access.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import tarfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm


@dataclass(frozen=True)
class Archive:
    name: str  # what it is, for messages
    url: str
    filename: str
    md5: str
    folder: str  # under the data root: where the archive is placed and unpacked
    marker: str  # a path (relative to folder) that exists once unpacked


IMDB = Archive("IMDB (Maas et al. 2011)", "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz",
               "aclImdb_v1.tar.gz", "7c2ac02c03563afcf9b574c7e56c153a", "imdb", "aclImdb/train/pos")
CIFAR10 = Archive("CIFAR-10 (python version)", "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
                  "cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a", "cifar10", "cifar-10-batches-py/test_batch")


class DownloadError(RuntimeError):
    """The archive could not be fetched or verified; the message says what to do by hand."""


def md5sum(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def manual_instructions(archive: Archive, root: Path, task: str) -> str:
    target = root / archive.folder / archive.filename
    return (f"download {archive.url} on a machine with network access, place it at {target} "
            f"(md5 {archive.md5}) and run `python -m lra.prepare {task} --root {root}` again")


def download(url: str, dest: Path, timeout: float, progress: bool = True) -> None:
    """Stream ``url`` to ``dest`` (via a .part file); raise DownloadError on any failure."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_suffix(dest.suffix + ".part")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 (fixed https URLs)
            total = int(resp.headers.get("Content-Length") or 0) or None
            with open(part, "wb") as f, tqdm(total=total, unit="B", unit_scale=True, desc=dest.name,
                                             disable=not progress) as bar:
                while block := resp.read(1 << 20):
                    f.write(block)
                    bar.update(len(block))
    except (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError, OSError) as err:
        part.unlink(missing_ok=True)
        reason = getattr(err, "reason", None) or err
        raise DownloadError(f"could not download {url}: {reason}") from None
    os.replace(part, dest)


def _safe_extract(tar_path: Path, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tar_path, "r:*") as tar:
        # "data" filter: no absolute paths, no escaping dest, no device files.
        tar.extractall(dest, filter="data")


def fetch_archive(archive: Archive, root: Path, task: str, timeout: float = 15.0, progress: bool = True) -> Path:
    """Make ``<root>/<folder>/<marker>`` exist: unpack a placed archive or download one."""
    folder = root / archive.folder
    if (folder / archive.marker).exists():
        return folder
    target = folder / archive.filename
    if not target.exists():
        try:
            download(archive.url, target, timeout, progress)
        except DownloadError as err:
            raise DownloadError(f"{err}. To proceed without network: {manual_instructions(archive, root, task)}") from None
    digest = md5sum(target)
    if digest != archive.md5:
        bad = target.with_suffix(target.suffix + ".bad")
        shutil.move(str(target), bad)
        raise DownloadError(f"{target} has md5 {digest}, expected {archive.md5} (moved aside to {bad}); "
                            + manual_instructions(archive, root, task))
    _safe_extract(target, folder)
    if not (folder / archive.marker).exists():
        raise DownloadError(f"unpacked {target} but {folder / archive.marker} is missing; is it the right archive?")
    return folder
