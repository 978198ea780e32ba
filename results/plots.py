"""Plots from run records (matplotlib, Agg canvas, no pyplot state), each written as PNG and PDF.

Every figure has a fixed size (SIZES, in inches, at DPI) and is saved without tight bounding boxes, so
its PNG is exactly SIZES[kind] x DPI pixels whatever it shows.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from results.aggregate import cell, configurations
from results.history import HistoryError, read_history
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
from results.published import Published

DPI = 100
SIZES: dict[str, tuple[float, float]] = {
    "published": (12.0, 5.0),
    "curves": (12.0, 4.5),
    "ablation": (10.0, 5.0),
    "lb_layers": (8.0, 4.5),
    "lb_heatmap": (10.0, 4.0),
    "mini": (10.0, 5.0),
}
_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"]


@dataclass
class Plot:
    kind: str
    title: str
    png: Path
    pdf: Path
    caption: str


@dataclass
class PlotReport:
    plots: list[Plot] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # histories that could not be drawn, and why


def _figure(kind: str) -> Figure:
    fig = Figure(figsize=SIZES[kind], dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, folder: Path, stem: str) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    png, pdf = folder / f"{stem}.png", folder / f"{stem}.pdf"
    fig.savefig(png, dpi=DPI)
    fig.savefig(pdf)
    return png, pdf


def slug(text: str) -> str:
    """A file-name-safe form of a task/model/variant name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "x"


def _color_map(runs: pd.DataFrame) -> dict[tuple[str, str], str]:
    # One colour per configuration, the same in every figure.
    pairs = sorted(set(zip(runs["model"], runs["variant"])), key=lambda p: (p[0] != "hgrn", p[0], variant_sort_key(p[1])))
    return {p: _COLORS[i % len(_COLORS)] for i, p in enumerate(pairs)}


def _seed_values(runs: pd.DataFrame, task: str, model: str, variant: str, metric: str) -> np.ndarray:
    sel = runs[(runs["task"] == task) & (runs["model"] == model) & (runs["variant"] == variant) & (runs["status"] == "complete")]
    return sel[metric].to_numpy(float) * 100.0


def _bar_group(ax, x: float, c, seeds: np.ndarray, color: str, width: float, label: str | None) -> None:
    """One bar with its seed error bar and seed dots, or the cell's status written where the bar would be."""
    if c.complete:
        err = None if math.isnan(c.std) else c.std
        ax.bar(x, c.mean, width, yerr=err, color=color, capsize=3, label=label, edgecolor="black", linewidth=0.5)
        ax.scatter(np.full(len(seeds), x), seeds, s=10, color="black", zorder=3)
    else:
        ax.bar(x, 0, width, color=color, label=label)
        ax.text(x, 2, c.text(), rotation=90, ha="center", va="bottom", fontsize=7)


def plot_vs_published(runs: pd.DataFrame, agg: pd.DataFrame, published: Published, metric: str, folder: Path) -> Plot | None:
    """Bars per task: each of our configurations (mean, seed std, seed dots) beside the published numbers.

    LRA tasks show every configuration run on any LRA task (so a missing task is visible as a mark);
    ImageNet shows the configurations run on ImageNet.
    """
    groups: list[tuple[str, str, list[tuple[str, str]]]] = []  # (task, benchmark, configurations)
    lra_configs = configurations(agg, LRA_TASKS)
    if lra_configs:
        groups += [(t, "lra", lra_configs) for t in LRA_TASKS]
    if configurations(agg, ["imagenet"]):
        groups.append(("imagenet", "imagenet", configurations(agg, ["imagenet"])))
    if not groups:
        return None
    names = dict(published.models("lra") + published.models("imagenet"))
    colors = _color_map(runs)
    fig = _figure("published")
    ax = fig.add_subplot()
    labelled: set[str] = set()

    def once(label: str) -> str | None:
        # One legend entry per configuration, however many tasks it appears in.
        if label in labelled:
            return None
        labelled.add(label)
        return label

    for j, (task, bench, configs) in enumerate(groups):
        ours_models = {m for m, _ in configs}
        refs = [k for m, k in PUBLISHED_COUNTERPART.items()
                if (m in ours_models or m == "hgrn") and k in {key for key, _ in published.models(bench)}]
        width = 0.8 / (len(configs) + len(refs))
        for i, (model, variant) in enumerate(configs):
            x = j - 0.4 + width * (i + 0.5)
            _bar_group(ax, x, cell(agg, task, model, variant), _seed_values(runs, task, model, variant, metric),
                       colors[(model, variant)], width, once(f"{config_label(model, variant)}, ours"))
        for r, key in enumerate(refs):
            x = j - 0.4 + width * (len(configs) + r + 0.5)
            value = published.value(bench, key, task)
            grey = ["#bbbbbb", "#eeeeee"][r % 2]
            label = once(f"{names.get(key, key)} (published)")
            if math.isnan(value):
                ax.bar(x, 0, width, color=grey, hatch="//", label=label)
                ax.text(x, 2, "not published", rotation=90, ha="center", va="bottom", fontsize=7)
            else:
                ax.bar(x, value, width, color=grey, hatch="//", edgecolor="black", linewidth=0.5, label=label)
    ax.set_xticks(range(len(groups)), [task_label(t) for t, _, _ in groups])
    ax.set_ylim(0, 105)
    ax.set_ylabel(f"{metric} (%)")
    ax.set_title("Ours vs published per task (bar: mean over seeds; error bar: seed std; dots: seeds)")
    ax.grid(axis="y", alpha=0.3)
    fig.legend(loc="outside lower center", ncol=4, fontsize=8)
    png, pdf = _save(fig, folder, "ours_vs_published")
    caption = ("Ours vs published per task: bar = mean over complete seeds, error bar = sample std, dots = seeds; "
               "hatched = published; a written mark = no complete run (missing, running or failed).")
    return Plot("published", "Ours vs published", png, pdf, caption)


def plot_curves(runs: pd.DataFrame, folder: Path) -> tuple[list[Plot], list[str]]:
    """Per task: training (dashed) and validation (solid) loss and accuracy of every run with a history."""
    plots: list[Plot] = []
    notes: list[str] = []
    colors = _color_map(runs)
    for task in sorted(set(runs["task"]), key=task_sort_key):
        sel = runs[runs["task"] == task].sort_values(["model", "variant", "seed"])
        fig = _figure("curves")
        ax_loss, ax_acc = fig.subplots(1, 2)
        drawn, labelled, x_names = 0, set(), set()
        for _, run in sel.iterrows():
            path = run["history_path"]
            if not isinstance(path, str) or not Path(path).is_file():
                # A run still starting may have no history yet; a finished one should.
                if run["status"] != "running":
                    notes.append(f"{run['record_path']}: history {path if isinstance(path, str) else '(not set)'} not found; no curves for this run.")
                continue
            try:
                hist = read_history(Path(path))
            except HistoryError as e:
                notes.append(str(e))
                continue
            key = (run["model"], run["variant"])
            label = config_label(*key) if key not in labelled else None
            for name, ax, scale in (("loss", ax_loss, 1.0), ("acc", ax_acc, 100.0)):
                for split, style in (("train", "--"), ("val", "-")):
                    s = hist.series.get(f"{split}_{name}")
                    if s is not None:
                        ax.plot(s["x"], s["value"] * scale, style, color=colors[key], alpha=0.8, linewidth=1.2,
                                label=label if split == "val" else None, marker="o" if len(s) < 3 else None, markersize=3)
            labelled.add(key)
            x_names.add(hist.x_name)
            drawn += 1
        if not drawn:
            continue
        x_name = "step" if x_names == {"step"} else " / ".join(sorted(x_names))
        for ax, ylabel in ((ax_loss, "loss"), (ax_acc, "accuracy (%)")):
            ax.set_xlabel(x_name)
            ax.set_ylabel(ylabel)
            ax.grid(alpha=0.3)
        ax_acc.plot([], [], "k--", label="train")
        ax_acc.plot([], [], "k-", label="validation")
        ax_acc.legend(fontsize=8)
        fig.suptitle(f"{task_label(task)}: training (dashed) and validation (solid), {drawn} run(s), one line per seed")
        png, pdf = _save(fig, folder, f"curves_{slug(task)}")
        plots.append(Plot("curves", f"Training curves: {task_label(task)}", png, pdf,
                          f"{task_label(task)}: loss and accuracy from each run's metrics.csv; dashed = training, solid = validation."))
    return plots, notes


def plot_ablation(runs: pd.DataFrame, agg: pd.DataFrame, metric: str, folder: Path) -> Plot | None:
    """Accuracy per lower-bound schedule, grouped by task; None unless two or more schedules were run."""
    sub = agg[(agg["model"] == "hgrn") & (agg["variant"].isin(SCHEDULES))]
    schedules = sorted(set(sub["variant"]), key=variant_sort_key)
    if len(schedules) < 2:
        return None
    tasks = sorted(set(sub["task"]), key=task_sort_key)
    fig = _figure("ablation")
    ax = fig.add_subplot()
    width = 0.8 / len(tasks)
    for j, task in enumerate(tasks):
        for i, s in enumerate(schedules):
            x = i - 0.4 + width * (j + 0.5)
            _bar_group(ax, x, cell(agg, task, "hgrn", s), _seed_values(runs, task, "hgrn", s, metric),
                       _COLORS[j % len(_COLORS)], width, task_label(task) if i == 0 else None)
    ax.set_xticks(range(len(schedules)), [f"{s}\n(paper)" if s == PAPER_SCHEDULE else s for s in schedules])
    ax.set_ylim(0, 105)
    ax.set_ylabel(f"{metric} (%)")
    ax.set_xlabel("lower-bound schedule")
    ax.set_title("HGRN accuracy per lower-bound schedule (mean over seeds, seed std, dots: seeds)")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    png, pdf = _save(fig, folder, "ablation_schedules")
    return Plot("ablation", "Accuracy per lower-bound schedule", png, pdf,
                "HGRN accuracy per lower-bound schedule and task: bar = mean over complete seeds, error bar = sample std, dots = seeds.")


def _bound_groups(runs: pd.DataFrame, task: str) -> dict[tuple[str, str], pd.DataFrame]:
    sel = runs[(runs["task"] == task) & (runs["status"] == "complete") & runs["lower_bounds"].notna()]
    return {k: g.sort_values("seed") for k, g in sel.groupby(["model", "variant"], sort=False)}


def plot_lower_bounds(runs: pd.DataFrame, folder: Path) -> tuple[list[Plot], list[str]]:
    """Per task, the learned lower bound per layer (mean over channels, 10-90% band over channels, averaged
    over seeds) for every configuration, and per configuration a layers x channels heat map of one run."""
    plots: list[Plot] = []
    notes: list[str] = []
    colors = _color_map(runs)
    for task in sorted(set(runs["task"]), key=task_sort_key):
        groups = _bound_groups(runs, task)
        if not groups:
            continue
        fig = _figure("lb_layers")
        ax = fig.add_subplot()
        max_layers = 0
        for key in sorted(groups, key=lambda k: (k[0] != "hgrn", k[0], variant_sort_key(k[1]))):
            g = groups[key]
            arrays = [np.asarray(lb, dtype=float) for lb in g["lower_bounds"]]
            shape = Counter(a.shape for a in arrays).most_common(1)[0][0]
            if any(a.shape != shape for a in arrays):
                notes.append(f"{task}, {config_label(*key)}: lower_bounds of different shapes across seeds; only the {shape} ones are averaged.")
                arrays = [a for a in arrays if a.shape == shape]
            stats = np.stack([np.stack([a.mean(1), np.quantile(a, 0.1, axis=1), np.quantile(a, 0.9, axis=1)]) for a in arrays]).mean(0)
            layers = np.arange(1, shape[0] + 1)
            max_layers = max(max_layers, shape[0])
            ax.plot(layers, stats[0], "-o", color=colors[key], label=f"{config_label(*key)} ({len(arrays)} seed(s))")
            ax.fill_between(layers, stats[1], stats[2], color=colors[key], alpha=0.2)
        if any(k[1] == PAPER_SCHEDULE for k in groups):
            init = np.arange(max_layers) / max_layers
            ax.plot(np.arange(1, max_layers + 1), init, ":", color="grey", label="cumsoftmax at initialisation: (k-1)/L")
        ax.set_xlabel("layer k")
        ax.set_ylabel(r"lower bound $\gamma_k$")
        ax.set_xticks(range(1, max_layers + 1))
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
        ax.set_title(f"{task_label(task)}: learned lower bound per layer")
        ax.text(0.01, 0.98, "line: mean over channels\nband: 10th-90th percentile of channels\n(both averaged over seeds)",
                transform=ax.transAxes, va="top", fontsize=8)
        png, pdf = _save(fig, folder, f"lower_bound_layers_{slug(task)}")
        plots.append(Plot("lb_layers", f"Lower bound per layer: {task_label(task)}", png, pdf,
                          f"{task_label(task)}: the lower bound each layer used at the end of training (record field lower_bounds); "
                          "line = mean over channels, band = 10th to 90th percentile over channels, both averaged over seeds. "
                          "The paper's claim is that the bound rises with depth."))

        for key in sorted(groups, key=lambda k: (k[0] != "hgrn", k[0], variant_sort_key(k[1]))):
            run = groups[key].iloc[0]  # channels are not aligned across seeds, so show one run, not a mean
            a = np.asarray(run["lower_bounds"], dtype=float)
            fig = _figure("lb_heatmap")
            ax = fig.add_subplot()
            im = ax.imshow(a, aspect="auto", origin="lower", interpolation="nearest", cmap="viridis",
                           vmin=min(0.0, float(a.min())), vmax=max(1.0, float(a.max())))
            ax.set_yticks(range(a.shape[0]), [str(k) for k in range(1, a.shape[0] + 1)])
            ax.set_ylabel("layer k")
            ax.set_xlabel(f"channel (model order, {a.shape[1]} channels)")
            fig.colorbar(im, ax=ax, label=r"lower bound $\gamma$")
            ax.set_title(f"{task_label(task)}, {config_label(*key)}, seed {run['seed']}: lower bound per layer and channel")
            png, pdf = _save(fig, folder, f"lower_bound_heatmap_{slug(task)}_{slug(key[0])}-{slug(key[1])}")
            plots.append(Plot("lb_heatmap", f"Lower bound per channel: {task_label(task)}, {config_label(*key)}", png, pdf,
                              f"{task_label(task)}, {config_label(*key)}, seed {run['seed']}: heat map of the lower bound "
                              "per layer (rows, layer 1 at the bottom) and channel (columns)."))
    return plots, notes


def make_plots(runs: pd.DataFrame, agg: pd.DataFrame, published: Published, metric: str, folder: Path) -> PlotReport:
    """Every plot the records allow, into `folder`."""
    report = PlotReport()
    for plot in (plot_vs_published(runs, agg, published, metric, folder), plot_ablation(runs, agg, metric, folder)):
        if plot is not None:
            report.plots.append(plot)
    _add_curves_and_bounds(report, runs, folder)
    return report


def _add_curves_and_bounds(report: PlotReport, runs: pd.DataFrame, folder: Path) -> None:
    """Training curves and learned lower bounds: every report kind has them."""
    for plots, notes in (plot_curves(runs, folder), plot_lower_bounds(runs, folder)):
        report.plots.extend(plots)
        report.notes.extend(notes)


def plot_mini(runs: pd.DataFrame, metric: str, folder: Path) -> Plot | None:
    """Per task, every configuration's accuracy with its 95% interval (results/mini.py rules) and seed dots."""
    from results.mini import estimate, variant_description, variant_key

    tasks = sorted(set(runs["task"]), key=task_sort_key)
    if not tasks:
        return None
    fig = _figure("mini")
    axes = fig.subplots(1, len(tasks), squeeze=False)[0]
    for ax, task in zip(axes, tasks):
        sub = runs[runs["task"] == task]
        keys = sorted(set(zip(sub["model"], sub["variant"])), key=lambda k: variant_key(*k))
        for i, (model, variant) in enumerate(keys):
            g = sub[(sub["model"] == model) & (sub["variant"] == variant)]
            est = estimate(g, metric)
            if not est.n_seeds:
                ax.text(i, 2, "no complete run", rotation=90, ha="center", va="bottom", fontsize=7)
                continue
            err = None
            if est.has_interval:
                err = [[est.mean - est.low], [est.high - est.mean]]
            ax.bar(i, est.mean, 0.7, yerr=err, capsize=4, color=_COLORS[i % len(_COLORS)], edgecolor="black", linewidth=0.5)
            ax.scatter(np.full(est.n_seeds, i), _seed_values(runs, task, model, variant, metric), s=10, color="black", zorder=3)
        ax.set_xticks(range(len(keys)), [variant_description(*k).split(" (")[0].replace(", ", "\n") for k in keys], fontsize=7)
        ax.set_ylim(0, 100)
        ax.set_ylabel(f"{metric} (%)")
        ax.set_title(task_label(task))
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle("Mini tier: accuracy with 95% interval (one seed: Wilson over test rows; several: t over seeds)")
    png, pdf = _save(fig, folder, "mini_accuracy")
    return Plot("mini", "Accuracy with 95% intervals", png, pdf,
                "Bar = accuracy (mean over complete seeds), error bar = 95% interval (Wilson over the test rows for one "
                "seed, Student's t over seeds for several), dots = seeds.")


def make_mini_plots(runs: pd.DataFrame, metric: str, folder: Path) -> PlotReport:
    """The mini-tier plots: accuracies with intervals, training curves and learned lower bounds (no published)."""
    report = PlotReport()
    plot = plot_mini(runs, metric, folder)
    if plot is not None:
        report.plots.append(plot)
    _add_curves_and_bounds(report, runs, folder)
    return report
