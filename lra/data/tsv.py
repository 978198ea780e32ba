"""Line reading with line numbers, for error messages that name the file and the line."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from harness.datasets import MalformedDataError


def iter_lines(path: Path, encoding: str = "utf-8") -> Iterator[tuple[int, str]]:
    """(1-based line number, line without its newline); quoting is never interpreted."""
    with open(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            try:
                line = raw.decode(encoding)
            except UnicodeDecodeError as err:
                raise MalformedDataError(path, number, f"not valid {encoding}: {err}") from None
            yield number, line.rstrip("\r\n")
