"""Errors and counted skips of the LRA readers."""

from __future__ import annotations

import os
import warnings
from collections import Counter
from dataclasses import dataclass, field


class MissingDataError(FileNotFoundError):
    """A data file or folder is missing; the message says which, and how to make it."""

    def __init__(self, path: str | os.PathLike, hint: str) -> None:
        self.path = str(path)
        self.hint = hint
        super().__init__(f"LRA data not found: {path}. To make it ready: {hint}")


class MalformedDataError(ValueError):
    """A row of a data file cannot be read; the message names the file and line."""

    def __init__(self, path: str | os.PathLike, line: int | None, reason: str) -> None:
        self.path = str(path)
        self.line = line
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {reason}")


class DataSkipWarning(UserWarning):
    """Emitted when a reader skips unreadable examples (they are counted, never silent)."""


@dataclass
class SkipLog:
    """Counts of skipped examples by reason, with a few examples of each."""

    counts: Counter = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def add(self, reason: str, where: str) -> None:
        self.counts[reason] += 1
        shown = self.examples.setdefault(reason, [])
        if len(shown) < 3:
            shown.append(where)

    def add_many(self, reason: str, where: str, n: int) -> None:
        if n:
            self.counts[reason] += n
            self.examples.setdefault(reason, [where])

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def warn(self, what: str) -> None:
        if not self.total:
            return
        parts = [f"{n} {reason} (e.g. {', '.join(self.examples[reason])})" for reason, n in self.counts.items()]
        warnings.warn(f"{what}: skipped {self.total} example(s): " + "; ".join(parts), DataSkipWarning, stacklevel=3)

    def as_dict(self) -> dict[str, int]:
        return dict(self.counts)
