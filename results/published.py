"""Published numbers, kept in results/published.csv (one number per row, each with its source).

Values are percentages stored as text exactly as the source prints them ("91.4" stays "91.4");
an empty value means the source shows "–" (not reported). Nothing here is computed or invented.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

PUBLISHED_CSV = Path(__file__).with_name("published.csv")
REQUIRED_COLUMNS = ("benchmark", "model_key", "model", "task", "value", "source", "note")
NOT_REPORTED = "–"


@dataclass(frozen=True)
class Published:
    table: pd.DataFrame  # the CSV as text columns

    def models(self, benchmark: str) -> list[tuple[str, str]]:
        """(model_key, display name) in file order for one benchmark."""
        sub = self.table[self.table["benchmark"] == benchmark]
        return list(dict.fromkeys(zip(sub["model_key"], sub["model"])))

    def _row(self, benchmark: str, model_key: str, task: str) -> pd.Series | None:
        t = self.table
        hit = t[(t["benchmark"] == benchmark) & (t["model_key"] == model_key) & (t["task"] == task)]
        return None if hit.empty else hit.iloc[0]

    def text(self, benchmark: str, model_key: str, task: str) -> str:
        """The value as printed in the source; '–' where the source reports none."""
        row = self._row(benchmark, model_key, task)
        return NOT_REPORTED if row is None or row["value"] == "" else str(row["value"])

    def value(self, benchmark: str, model_key: str, task: str) -> float:
        """The value as a float percentage; NaN where the source reports none."""
        row = self._row(benchmark, model_key, task)
        return math.nan if row is None or row["value"] == "" else float(row["value"])

    def sources(self, benchmark: str) -> list[str]:
        sub = self.table[self.table["benchmark"] == benchmark]
        return list(dict.fromkeys(sub["source"]))

    def notes(self, benchmark: str, model_key: str) -> list[str]:
        t = self.table
        sub = t[(t["benchmark"] == benchmark) & (t["model_key"] == model_key)]
        return [n for n in dict.fromkeys(sub["note"]) if n]


def load_published(path: Path = PUBLISHED_CSV) -> Published:
    """Read the published-numbers file; raises ValueError naming the file if it is damaged."""
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"{path}: columns {missing} are missing; expected {list(REQUIRED_COLUMNS)}.")
    for i, row in table.iterrows():
        if not row["source"]:
            raise ValueError(f"{path}: row {i + 2} has no source; every published number needs one.")
        if row["value"]:
            try:
                float(row["value"])
            except ValueError:
                raise ValueError(f"{path}: row {i + 2} value {row['value']!r} is not a number (leave it empty for '–').") from None
    return Published(table=table)
