"""Read a run's training history: the Lightning CSVLogger `metrics.csv` a record points to.

CSVLogger writes sparse rows (train rows and validation rows interleaved, the other columns empty)
and names columns after what the LightningModule logged, so each series is looked up under a few
usual spellings and read from the rows where it is present.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

SERIES = ("train_loss", "train_acc", "val_loss", "val_acc")
# Spellings in priority order: the contract's name, then Lightning's on_epoch / on_step suffixes.
ALIASES: dict[str, tuple[str, ...]] = {
    "train_loss": ("train_loss", "train/loss", "train_loss_epoch", "train_loss_step", "loss"),
    "train_acc": ("train_acc", "train/acc", "train_acc_epoch", "train_acc_step"),
    "val_loss": ("val_loss", "val/loss", "val_loss_epoch"),
    "val_acc": ("val_acc", "val/acc", "val_acc_epoch"),
}


class HistoryError(ValueError):
    """A metrics.csv that cannot be read; the message names the file."""


@dataclass
class History:
    x_name: str  # "step", or "epoch" where the file has no step column
    series: dict[str, pd.DataFrame]  # name -> frame with columns x, value


def read_history(path: Path) -> History:
    """Each available series as a frame with columns x (step, else epoch) and value, NaN rows dropped.

    Accuracy series stay fractions as logged. Raises HistoryError naming the file when it is unreadable
    or has neither a step nor an epoch column.
    """
    path = Path(path)
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError) as e:  # pandas raises ValueError subclasses for bad CSV
        raise HistoryError(f"{path}: cannot be read as CSV ({e}).") from e
    x_col = "step" if "step" in frame.columns else "epoch" if "epoch" in frame.columns else None
    if x_col is None:
        raise HistoryError(f"{path}: has neither a 'step' nor an 'epoch' column (columns: {list(frame.columns)}).")
    out: dict[str, pd.DataFrame] = {}
    for name in SERIES:
        col = next((c for c in ALIASES[name] if c in frame.columns), None)
        if col is None:
            continue
        part = frame[[x_col, col]].apply(pd.to_numeric, errors="coerce").dropna()
        if not part.empty:
            out[name] = pd.DataFrame({"x": part[x_col].to_numpy(float), "value": part[col].to_numpy(float)})
    return History(x_name=x_col, series=out)
