"""The mini-tier report (suites with ``report: mini``: demo, lower-bound-mini): the models compared with each
other, every accuracy with its 95% interval, HGRN variants paired with cumsoftmax seed by seed, and one or two
sentences on what the numbers show. Nothing here is set beside the published full-scale numbers: the mini
tier trains small models for minutes on short generated data, so a difference to the paper means nothing.

Interval rules: a cell with one complete seed gets Wilson's binomial interval from the accuracy and the rows
behind it (record ``metrics.n_test``, or ``n_val`` for ``val_acc_best``); a cell with two or more seeds gets
Student's t interval of the mean over seeds. A variant is compared with ``cumsoftmax`` on the seeds both
completed (paired t interval of the differences); a difference is called beyond seed noise when that
interval excludes 0.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from results.intervals import MeanInterval, paired_difference, t_interval, wilson_interval
from results.names import PAPER_SCHEDULE, SCHEDULES, model_label, task_label, task_sort_key
from results.tables import MARKS_NOTE, Table

# HGRN forget-gate ablations: the task's variant suffix for forget_mode bound / none (lra/task.py)
GATE_VARIANTS: dict[str, str] = {
    "gate-bound": "data-independent gate: the lower bound alone (forget_mode bound)",
    "gate-none": "no forget gate (forget_mode none)",
}
SCHEDULE_NOTES: dict[str, str] = {
    "cumsoftmax": "the paper's lower bound, rising with depth",
    "none": "no lower bound",
    "constant": "fixed bound 0.5 in every layer",
    "linear": "fixed bounds k/L",
    "independent": "learned per layer, no ordering",
    "decreasing": "the paper's, mirrored over depth",
}


def variant_description(model: str, variant: str) -> str:
    """'HGRN, cumsoftmax (the paper's lower bound, rising with depth)', 'Transformer', ..."""
    if model != "hgrn":
        return model_label(model) if variant == "default" else f"{model_label(model)}, {variant}"
    for suffix, text in GATE_VARIANTS.items():
        if variant.endswith("-" + suffix):
            return f"HGRN, {variant} ({text})"
    note = SCHEDULE_NOTES.get(variant)
    return f"HGRN, {variant} ({note})" if note else f"HGRN, {variant}"


def variant_key(model: str, variant: str) -> tuple:
    """HGRN first: schedules in their canonical order, then gate ablations; other models after."""
    if model != "hgrn":
        return (1, model, variant)
    base = variant.split("-gate-")[0]
    gate = 1 if "-gate-" in variant else 0
    return (0, gate, SCHEDULES.index(base) if base in SCHEDULES else len(SCHEDULES), variant)


def rows_field(metric: str) -> str:
    return "n_val" if metric == "val_acc_best" else "n_test"


@dataclass(frozen=True)
class Estimate:
    """An accuracy in percent with its 95% interval; `kind` says which interval ('wilson', 't', or 'none')."""

    n_seeds: int
    mean: float
    low: float
    high: float
    std: float
    kind: str
    rows: float  # rows behind one accuracy (NaN if not recorded)

    @property
    def has_interval(self) -> bool:
        return not math.isnan(self.low)

    def text(self) -> str:
        if self.n_seeds == 0:
            return "–"
        body = f"{self.mean:.1f}"
        if self.kind == "t":
            body += f" ± {self.std:.1f}"
        if self.has_interval:
            body += f" [{self.low:.1f}, {self.high:.1f}]"
        elif self.n_seeds == 1:
            body += " (no interval: the record lacks the row count)"
        return body


def estimate(group: pd.DataFrame, metric: str) -> Estimate:
    """The estimate of one (task, model, variant) from its complete runs."""
    done = group[group["status"] == "complete"]
    values = done[metric].astype(float).to_numpy() * 100.0
    rows = done[rows_field(metric)].astype(float).to_numpy()
    n = len(values)
    row_count = float(rows[0]) if n and not math.isnan(rows[0]) else math.nan
    if n == 0:
        return Estimate(0, math.nan, math.nan, math.nan, math.nan, "none", math.nan)
    if n == 1:
        if math.isnan(row_count):
            return Estimate(1, values[0], math.nan, math.nan, math.nan, "none", math.nan)
        k = round(values[0] / 100.0 * row_count)
        lo, hi = wilson_interval(k, int(row_count))
        return Estimate(1, values[0], 100 * lo, 100 * hi, math.nan, "wilson", row_count)
    ti = t_interval(values)
    return Estimate(n, ti.mean, ti.low, ti.high, ti.std, "t", row_count)


def _groups(runs: pd.DataFrame) -> list[tuple[str, str, str, pd.DataFrame]]:
    out = [(t, m, v, g) for (t, m, v), g in runs.groupby(["task", "model", "variant"], sort=False)]
    return sorted(out, key=lambda x: (task_sort_key(x[0]), variant_key(x[1], x[2])))


def interval_note(metric: str) -> str:
    return (f"Accuracy in % (`{metric}` of each record), with its 95% interval in brackets: for one seed Wilson's "
            f"binomial interval over the evaluated rows (`{rows_field(metric)}`), which covers test-set sampling "
            "only; for two or more seeds mean ± sample std (ddof=1) and Student's t interval of the mean over seeds.")


def models_table(runs: pd.DataFrame, metric: str) -> Table | None:
    """One row per task and configuration: accuracy with its interval, seeds, rows, parameters, steps, time."""
    header = ["Task", "Model", "Accuracy % [95% CI]", "Seeds", "Rows", "Params", "Steps", "Fit time (s)"]
    rows: list[list[str]] = []
    starts: list[int] = []
    last_task = None
    for task, model, variant, g in _groups(runs):
        if task != last_task:
            starts.append(len(rows))
            last_task = task
        est = estimate(g, metric)
        done = g[g["status"] == "complete"]
        unfinished = []
        if (g["status"] == "running").any():
            unfinished.append(f"+{int((g['status'] == 'running').sum())} running")
        if (g["status"] == "failed").any():
            unfinished.append(f"+{int((g['status'] == 'failed').sum())} failed")
        seeds = str(est.n_seeds) + (f" ({', '.join(unfinished)})" if unfinished else "")

        def med(col: str, fmt: str) -> str:
            v = done[col].astype(float)
            return "–" if v.dropna().empty else fmt.format(v.median())

        rows.append([task_label(task), variant_description(model, variant), est.text(), seeds,
                     "–" if math.isnan(est.rows) else f"{int(est.rows)}", med("params", "{:,.0f}"), med("steps", "{:.0f}"),
                     med("wall_time_s", "{:.0f}")])
    if not rows:
        return None
    notes = [
        interval_note(metric),
        "Rows: test rows behind each accuracy. Params, Steps, Fit time: median over the complete seeds; fit time "
        "is the wall time of training and testing on the machine that ran it.",
        "Mini tier: small models trained for minutes on short generated data. Compare the rows with each other; "
        "they are not comparable with the published full-scale numbers (the `paper` suite makes that comparison).",
        MARKS_NOTE,
    ]
    return Table("models", "Mini tier: the models compared with each other", header, rows, starts, notes)


def _by_seed(group: pd.DataFrame, metric: str) -> dict[int, float]:
    done = group[group["status"] == "complete"]
    return {int(s): float(v) * 100.0 for s, v in zip(done["seed"], done[metric])}


def paired_table(runs: pd.DataFrame, metric: str) -> Table | None:
    """HGRN variants against cumsoftmax on each task, paired by seed; None unless some variant shares 2+ seeds."""
    hgrn = runs[runs["model"] == "hgrn"]
    header = ["Task", "Variant", "Mean ± std (n)", "95% CI of mean", f"Δ vs {PAPER_SCHEDULE} (paired)",
              "95% CI of Δ", "Beyond seed noise"]
    rows: list[list[str]] = []
    starts: list[int] = []
    any_pair = False
    for task in sorted(set(hgrn["task"]), key=task_sort_key):
        sub = hgrn[hgrn["task"] == task]
        ref_group = sub[sub["variant"] == PAPER_SCHEDULE]
        ref = _by_seed(ref_group, metric) if not ref_group.empty else {}
        starts.append(len(rows))
        for variant in sorted(set(sub["variant"]), key=lambda v: variant_key("hgrn", v)):
            values = _by_seed(sub[sub["variant"] == variant], metric)
            if not values:
                rows.append([task_label(task), variant, "no complete run", "", "", "", ""])
                continue
            ti = t_interval(list(values.values()))
            mean_text = f"{ti.mean:.2f}" + ("" if math.isnan(ti.std) else f" ± {ti.std:.2f}") + f" ({ti.n})"
            ci = "–" if math.isnan(ti.low) else f"[{ti.low:.2f}, {ti.high:.2f}]"
            if variant == PAPER_SCHEDULE:
                rows.append([task_label(task), f"{variant} (paper, reference)", mean_text, ci, "–", "–", "–"])
                continue
            diff: MeanInterval | None = paired_difference(values, ref)
            if diff is None:
                rows.append([task_label(task), variant, mean_text, ci, f"no seed shared with {PAPER_SCHEDULE}", "–", "–"])
                continue
            if diff.n >= 2:
                any_pair = True
                verdict = ("yes, higher" if diff.low > 0 else "yes, lower") if diff.excludes_zero else "no"
                dci = f"[{diff.low:+.2f}, {diff.high:+.2f}]"
            else:
                verdict, dci = "– (1 shared seed)", "–"
            rows.append([task_label(task), variant, mean_text, ci, f"{diff.mean:+.2f} (n={diff.n})", dci, verdict])
    if not any_pair:
        return None
    notes = [
        f"Accuracy in % (`{metric}`), mean ± sample std (ddof=1) over complete seeds (n), and Student's t 95% "
        "interval of the mean.",
        f"Δ: the variant minus {PAPER_SCHEDULE} on the same seed (same data order and initial draws), averaged over "
        "the seeds both completed; its 95% interval is the paired t interval. 'Beyond seed noise' = that interval "
        "excludes 0. With 3 seeds the t quantile is 4.30, so only large or very consistent differences qualify.",
        "Variants: " + "; ".join(f"{k} = {v}" for k, v in SCHEDULE_NOTES.items())
        + "; cumsoftmax-gate-bound = " + GATE_VARIANTS["gate-bound"] + "; cumsoftmax-gate-none = "
        + GATE_VARIANTS["gate-none"] + ".",
    ]
    return Table("paired", "HGRN variants against the paper's lower bound, paired by seed", header, rows, starts, notes)


def _phrase(model: str, variant: str, est: Estimate) -> str:
    return f"{variant_description(model, variant).split(' (')[0]} {est.text()}"


def _paired_verdicts(sub: pd.DataFrame, metric: str) -> str:
    """'Paired with cumsoftmax by seed, beyond seed noise: ...; within it: ...' for HGRN variants with 2+ shared seeds."""
    hgrn = sub[sub["model"] == "hgrn"]
    ref = _by_seed(hgrn[hgrn["variant"] == PAPER_SCHEDULE], metric)
    beyond, within = [], []
    for variant in sorted(set(hgrn["variant"]) - {PAPER_SCHEDULE}, key=lambda v: variant_key("hgrn", v)):
        d = paired_difference(_by_seed(hgrn[hgrn["variant"] == variant], metric), ref)
        if d is None or d.n < 2:
            continue
        item = f"`{variant}` {d.mean:+.1f} [{d.low:+.1f}, {d.high:+.1f}] (n={d.n})"
        (beyond if d.excludes_zero else within).append(item)
    if not beyond and not within:
        return ""
    return (f"Paired with {PAPER_SCHEDULE} by seed (points, 95% t interval), beyond seed noise: "
            f"{'; '.join(beyond) or 'no variant'}; within it: {'; '.join(within) or 'no variant'}.")


def summary(runs: pd.DataFrame, metric: str) -> list[str]:
    """One or two sentences per task on what the numbers show and what they do not, computed from the records."""
    out: list[str] = []
    for task in sorted(set(runs["task"]), key=task_sort_key):
        sub = runs[runs["task"] == task]
        ests = {(m, v): estimate(g, metric) for (m, v), g in sub.groupby(["model", "variant"], sort=False)}
        ests = {k: e for k, e in ests.items() if e.n_seeds}
        hgrn = ests.get(("hgrn", PAPER_SCHEDULE))
        if hgrn is None:
            continue
        others = [(k, e) for k, e in sorted(ests.items(), key=lambda kv: variant_key(*kv[0])) if k != ("hgrn", PAPER_SCHEDULE)]
        if not others:
            continue
        parts = []
        for (m, v), e in others:
            text = _phrase(m, v, e)
            if hgrn.has_interval and e.has_interval:
                if hgrn.low > e.high or hgrn.high < e.low:
                    text += f" (intervals apart: HGRN {'higher' if hgrn.low > e.high else 'lower'})"
                else:
                    text += " (intervals overlap: no clear difference)"
            parts.append(text)
        kind = ("test-set sampling only (one seed each), not seed-to-seed variation" if hgrn.kind == "wilson"
                else "seed-to-seed variation of the mean")
        text = (f"**{task_label(task)}**: HGRN (cumsoftmax) scores {hgrn.text()}% against " + "; ".join(parts) + ". "
                f"The intervals cover {kind}.")
        paired = _paired_verdicts(sub, metric)
        if paired:
            text += " " + paired
        out.append(text + " These are small models trained briefly on short generated data: they compare the "
                   "configurations at this scale and say nothing about full-scale LRA numbers.")
    return out
