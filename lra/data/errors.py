"""Counted skips of the LRA readers (missing and malformed data raise harness/datasets.py's errors)."""

from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import dataclass, field


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
