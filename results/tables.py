"""The content of the result tables (LRA, ImageNet, lower-bound ablation, other tasks) as grids of text.

Rendering to Markdown, LaTeX and CSV is in results/render.py; this module decides what each cell says.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import pandas as pd

from results.aggregate import Cell, cell, configurations
from results.names import (
    LRA_TASKS,
    PAPER_SCHEDULE,
    PUBLISHED_COUNTERPART,
    SCHEDULES,
    config_label,
    task_label,
    task_sort_key,
    variant_sort_key,
)
from results.published import NOT_REPORTED, Published

DIFF_LABEL = "ours − published"
MARKS_NOTE = (
    "Marks: 'missing' = no record for that cell; 'running' = runs still in progress and none complete; "
    "'failed (n)' = n failed runs and none complete; '(+n failed)' or '(+n running)' after a number = "
    "seeds left out of the mean because they did not complete."
)


@dataclass
class Table:
    name: str  # file stem under tables/
    title: str
    header: list[str]
    rows: list[list[str]]
    group_starts: list[int] = field(default_factory=list)  # row indices that begin a new block (a rule above)
    notes: list[str] = field(default_factory=list)

    def row(self, label: str) -> list[str]:
        """The row whose first cell is `label` (KeyError if none)."""
        for r in self.rows:
            if r[0] == label:
                return r
        raise KeyError(f"no row {label!r} in table {self.name}; rows: {[r[0] for r in self.rows]}")


def fmt_diff(d: float) -> str:
    return "–" if math.isnan(d) else f"{d:+.2f}"


def metric_note(metric: str) -> str:
    return (
        f"Accuracy in %: `{metric}` from each run record, mean ± sample standard deviation (ddof=1) over "
        "complete seeds; the ± is left out where only one seed completed."
    )


def seeds_text(cells: list[Cell]) -> str:
    counts = sorted({c.n_complete for c in cells if c.complete})
    if not counts:
        return "0"
    return str(counts[0]) if len(counts) == 1 else f"{counts[0]}–{counts[-1]}"


def average_text(means: list[float], n_tasks: int, fmt: Callable[[float], str] = "{:.2f}".format) -> str:
    """Average over the complete cells only; marked with the number of tasks it covers when incomplete."""
    if not means:
        return f"incomplete (0/{n_tasks})"
    avg = fmt(sum(means) / len(means))
    return avg if len(means) == n_tasks else f"{avg} ({len(means)}/{n_tasks} tasks)"


def _ours_label(model: str, variant: str) -> str:
    return f"{config_label(model, variant)}, ours"


def _compared_variants(variants: list[str]) -> list[str]:
    """Which of our variants of a model get an 'ours − published' row: the paper's configuration where
    present (cumsoftmax, else default), else the only one, else all of them."""
    for preferred in (PAPER_SCHEDULE, "default"):
        if preferred in variants:
            return [preferred]
    return list(variants)


def lra_table(agg: pd.DataFrame, published: Published, metric: str) -> Table | None:
    """Our LRA rows, the published HGRN row with our difference, then the published baselines."""
    configs = configurations(agg, LRA_TASKS)
    if not configs:
        return None
    n = len(LRA_TASKS)
    header = ["Model"] + [task_label(t) for t in LRA_TASKS] + ["Avg", "Seeds"]
    rows: list[list[str]] = []
    starts: list[int] = []

    for model, variant in configs:
        cells = [cell(agg, t, model, variant) for t in LRA_TASKS]
        means = [c.mean for c in cells if c.complete]
        rows.append([_ours_label(model, variant)] + [c.text() for c in cells] + [average_text(means, n), seeds_text(cells)])

    def published_row(key: str, name: str, suffix: str = "") -> list[str]:
        return [f"{name}{suffix}"] + [published.text("lra", key, t) for t in LRA_TASKS] + [published.text("lra", key, "avg"), ""]

    shown: set[str] = set()
    ours_models = list(dict.fromkeys(m for m, _ in configs))
    published_names = dict(published.models("lra"))
    # HGRN's published row always appears, beside ours; other models only when we ran them too.
    compared = ["hgrn"] + [m for m in ours_models if m != "hgrn"]
    for model in compared:
        key = PUBLISHED_COUNTERPART.get(model)
        if key is None or key not in published_names:
            continue
        starts.append(len(rows))
        rows.append(published_row(key, published_names[key], " (published)"))
        shown.add(key)
        variants = [v for m, v in configs if m == model]
        for variant in _compared_variants(variants):
            diffs = []
            for t in LRA_TASKS:
                c = cell(agg, t, model, variant)
                diffs.append(c.mean - published.value("lra", key, t) if c.complete else math.nan)
            shared = [d for d in diffs if not math.isnan(d)]
            avg = average_text(shared, n, fmt_diff) if shared else "–"
            rows.append([f"{config_label(model, variant)} {DIFF_LABEL}"] + [fmt_diff(d) for d in diffs] + [avg, ""])

    baselines = [(k, name) for k, name in published.models("lra") if k not in shown]
    if baselines:
        starts.append(len(rows))
        rows.extend(published_row(k, name) for k, name in baselines)

    notes = [
        metric_note(metric),
        MARKS_NOTE,
        f"Avg of our rows: the mean over the tasks with a complete cell only; '(k/{n} tasks)' marks an average "
        f"over fewer than {n} tasks, which is not comparable with a published average. Published averages are "
        f"as printed in the source, over {n} tasks with '{NOT_REPORTED}' counted as 0.",
        f"'{DIFF_LABEL}': our mean minus the published number, in points; its Avg is the mean of the differences "
        "over the tasks present on both sides.",
        "Published numbers are for the paper's full-size configurations; runs at other sizes (such as the demo "
        "suite's) are not comparable with them, whatever the difference row says.",
        "Published rows (no seeds given) are copied from results/published.csv; source: "
        + "; ".join(published.sources("lra"))
        + ". † = re-run in the HGRN2 paper; the other baseline rows are expected to match the HGRN1 paper but "
        "that was not verified.",
    ]
    return Table("lra", "Long Range Arena: ours beside the published numbers", header, rows, starts, notes)


def imagenet_table(agg: pd.DataFrame, published: Published, metric: str) -> Table | None:
    """Our ImageNet-1k rows beside the one published HGRN top-1 (whose model size is not known)."""
    configs = configurations(agg, ["imagenet"])
    if not configs:
        return None
    pub = published.value("imagenet", "hgrn", "imagenet")
    header = ["Model", "Top-1", "Params (M)", "Seeds", DIFF_LABEL]
    rows: list[list[str]] = []
    for model, variant in configs:
        c = cell(agg, "imagenet", model, variant)
        hit = agg[(agg["task"] == "imagenet") & (agg["model"] == model) & (agg["variant"] == variant)]
        params = float(hit["params"].iloc[0]) if not hit.empty else math.nan
        params_text = "–" if math.isnan(params) else f"{params / 1e6:.1f}"
        diff = fmt_diff(c.mean - pub) if (model == "hgrn" and c.complete) else "–"
        rows.append([_ours_label(model, variant), c.text(), params_text, str(c.n_complete), diff])
    rows.append(["HGRN (published, model size not stated)", published.text("imagenet", "hgrn", "imagenet"), "–", "", ""])
    notes = [
        metric_note(metric),
        MARKS_NOTE,
        f"The published top-1 {published.text('imagenet', 'hgrn', 'imagenet')} is the only ImageNet number "
        "retrieved; the source does not say which variant it is (about 80% suggests HGRN-DeiT-Small), so "
        f"'{DIFF_LABEL}' compares every HGRN row of ours with that one number. The DeiT-Tiny number and the "
        "baselines were not retrieved.",
        "For checking the Params column: the reference dossier counts 6.1M (DeiT-Tiny) and 23.7M (DeiT-Small) "
        "parameters from the released code (computed, not published).",
        "Source: " + "; ".join(published.sources("imagenet")) + ".",
    ]
    return Table("imagenet", "ImageNet-1k top-1: ours beside the published number", header, rows, [len(rows) - 1], notes)


def ablation_table(agg: pd.DataFrame, metric: str) -> Table | None:
    """HGRN per lower-bound schedule x task; None unless at least two schedules were run."""
    sub = agg[(agg["model"] == "hgrn") & (agg["variant"].isin(SCHEDULES))]
    schedules = sorted(set(sub["variant"]), key=variant_sort_key)
    if len(schedules) < 2:
        return None
    tasks = sorted(set(sub["task"]), key=task_sort_key)
    n = len(tasks)
    ref = PAPER_SCHEDULE if PAPER_SCHEDULE in schedules else None
    header = ["Schedule"] + [task_label(t) for t in tasks] + ["Avg", f"Avg − {ref}" if ref else "Avg − paper", "Seeds"]
    rows = []
    for s in schedules:
        cells = [cell(agg, t, "hgrn", s) for t in tasks]
        means = [c.mean for c in cells if c.complete]
        if ref is None:
            delta = "–"
        else:
            ref_cells = [cell(agg, t, "hgrn", ref) for t in tasks]
            shared = [c.mean - r.mean for c, r in zip(cells, ref_cells) if c.complete and r.complete]
            delta = "–" if not shared or s == ref else average_text(shared, n, fmt_diff)
        label = f"{s} (paper)" if s == PAPER_SCHEDULE else s
        rows.append([label] + [c.text() for c in cells] + [average_text(means, n), delta, seeds_text(cells)])
    notes = [
        metric_note(metric),
        MARKS_NOTE,
        "Schedules (HGRN's per-layer lower bound on the forget gate): cumsoftmax = the paper's cumulative "
        "softmax over layers (layer 1 gets 0, rising with depth); none = no lower bound; constant, linear "
        "(fixed k/L), independent (learned per layer without ordering), decreasing (the paper's reversed).",
        f"Avg over the tasks with a complete cell; 'Avg − {ref or 'paper'}' is the mean difference to the paper's "
        "schedule over the tasks both completed.",
        "The paper's lower-bound ablation (its Table 10) was not retrieved, so there is no published row; its "
        "stated conclusion is that the monotonically increasing lower bound gives the largest improvement.",
    ]
    return Table("ablation", "Lower-bound schedule ablation (HGRN)", header, rows, [], notes)


def other_table(agg: pd.DataFrame, metric: str) -> Table | None:
    """Tasks without a published comparison here (CIFAR, demo-sized or unknown tasks), so none is dropped."""
    tasks = sorted(set(agg["task"]) - set(LRA_TASKS) - {"imagenet"}, key=task_sort_key)
    if not tasks:
        return None
    configs = configurations(agg, tasks)
    header = ["Model"] + [task_label(t) for t in tasks] + ["Seeds"]
    rows = []
    for model, variant in configs:
        cells = [cell(agg, t, model, variant) for t in tasks]
        rows.append([_ours_label(model, variant)] + [c.text() for c in cells] + [seeds_text(cells)])
    notes = [metric_note(metric), MARKS_NOTE, "No published numbers for these tasks are kept in results/published.csv."]
    return Table("other", "Other tasks (no published comparison)", header, rows, [], notes)


def build_tables(agg: pd.DataFrame, published: Published, metric: str) -> list[Table]:
    """Every table that has at least one record behind it, in README order."""
    built = [lra_table(agg, published, metric), imagenet_table(agg, published, metric), ablation_table(agg, metric), other_table(agg, metric)]
    return [t for t in built if t is not None]
