"""Aggregate the long table of runs over seeds, per (task, model, variant).

Only complete runs enter the mean and the standard deviation; running and failed runs are counted so
that tables can mark them. All accuracies here are percentages (record fractions x 100).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from harness.identity import ACCURACY_METRICS
from results.names import task_sort_key, variant_sort_key

KEYS = ["task", "model", "variant"]
AGG_COLUMNS = KEYS + ["n_complete", "n_running", "n_failed", "mean", "std", "min", "max", "seeds_complete", "params"]


def aggregate(runs: pd.DataFrame, metric: str) -> pd.DataFrame:
    """One row per (task, model, variant): count of complete/running/failed runs, and over the complete
    runs the mean and sample standard deviation (ddof=1, NaN for a single run) of `metric`, in percent."""
    if metric not in ACCURACY_METRICS:
        raise ValueError(f"metric {metric!r} is not one of {ACCURACY_METRICS}.")
    out = []
    for (task, model, variant), g in runs.groupby(KEYS, sort=False):
        done = g[g["status"] == "complete"]
        values = done[metric].astype(float) * 100.0
        n = int(len(done))
        out.append(
            {
                "task": task,
                "model": model,
                "variant": variant,
                "n_complete": n,
                "n_running": int((g["status"] == "running").sum()),
                "n_failed": int((g["status"] == "failed").sum()),
                "mean": float(values.mean()) if n else math.nan,
                "std": float(values.std(ddof=1)) if n >= 2 else math.nan,
                "min": float(values.min()) if n else math.nan,
                "max": float(values.max()) if n else math.nan,
                "seeds_complete": ",".join(str(s) for s in sorted(done["seed"])),
                "params": float(done["params"].median()) if n else math.nan,
            }
        )
    agg = pd.DataFrame(out, columns=AGG_COLUMNS)
    if agg.empty:
        return agg
    order = agg.apply(lambda r: (task_sort_key(r["task"]), r["model"], variant_sort_key(r["variant"])), axis=1)
    return agg.iloc[sorted(range(len(agg)), key=lambda i: order.iloc[i])].reset_index(drop=True)


@dataclass(frozen=True)
class Cell:
    """One (task, configuration) result as the tables show it."""

    n_complete: int = 0
    n_running: int = 0
    n_failed: int = 0
    mean: float = math.nan
    std: float = math.nan

    @property
    def complete(self) -> bool:
        return self.n_complete > 0

    @property
    def status(self) -> str:
        """'complete', or for a cell without a complete run: 'running', 'failed' or 'missing'."""
        if self.complete:
            return "complete"
        if self.n_running:
            return "running"
        if self.n_failed:
            return "failed"
        return "missing"

    def text(self) -> str:
        """'mean ± std' (std left out for one seed), with unfinished seeds noted; or the status mark."""
        if not self.complete:
            marks = []
            if self.n_running:
                marks.append("running" if self.n_running == 1 else f"running ({self.n_running})")
            if self.n_failed:
                marks.append(f"failed ({self.n_failed})")
            return ", ".join(marks) if marks else "missing"
        body = f"{self.mean:.2f}" if math.isnan(self.std) else f"{self.mean:.2f} ± {self.std:.2f}"
        extra = []
        if self.n_running:
            extra.append(f"+{self.n_running} running")
        if self.n_failed:
            extra.append(f"+{self.n_failed} failed")
        return f"{body} ({', '.join(extra)})" if extra else body


def cell(agg: pd.DataFrame, task: str, model: str, variant: str) -> Cell:
    """The cell for one task and configuration; an empty 'missing' cell where no record exists."""
    hit = agg[(agg["task"] == task) & (agg["model"] == model) & (agg["variant"] == variant)]
    if hit.empty:
        return Cell()
    r = hit.iloc[0]
    return Cell(int(r["n_complete"]), int(r["n_running"]), int(r["n_failed"]), float(r["mean"]), float(r["std"]))


def configurations(agg: pd.DataFrame, tasks: tuple[str, ...] | list[str]) -> list[tuple[str, str]]:
    """(model, variant) pairs with at least one record on any of `tasks`: HGRN first, then by variant."""
    sub = agg[agg["task"].isin(list(tasks))]
    pairs = set(zip(sub["model"], sub["variant"]))
    return sorted(pairs, key=lambda p: (p[0] != "hgrn", p[0], variant_sort_key(p[1])))
