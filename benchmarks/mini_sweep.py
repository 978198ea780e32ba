"""Sweep for the mini tier: which data size, sequence length, width, learning rate and number of steps let the
models learn on 2 CPU cores in about a minute per run.

    python benchmarks/mini_sweep.py --list                       # the stages and their trials
    python benchmarks/mini_sweep.py --stage listops-data         # run one stage (skips trials already done)
    python benchmarks/mini_sweep.py --summary                    # the table of every trial run so far

Every trial is one ``python -m lra fit`` (the command a user types) with a base config of lra/configs/ plus
overrides, on data made by ``python -m lra.prepare`` with the trial's data arguments (data sets are shared
between trials that ask for the same ones). Each trial's run record lands in
``<runs>/<stage>/<trial>/record.json``; the summary reads them back: test accuracy with its 95% Wilson
interval, steps, wall time, parameters. Wall times are those of the machine at the time, so compare trials of
one stage (run side by side in one invocation), not across days.

The stages below are what was tried for the mini tier, in order; the chosen settings are in
lra/configs/*-mini.yaml and the suites' prepare lines (results/suites/demo.yaml, results/suites/lower-bound-mini.yaml).

Measured on 2026-12-02 on a 2-core machine shared with other jobs (load average 6-10; OMP_NUM_THREADS=1, which
was 5x faster per step than the default 2 threads under that load), width 64, 2 layers, batch 32, lr 3e-3,
seed 0, 2,000 test rows each (test accuracy at the best validation check, 95% Wilson interval):

    data (tree tokens)   steps   HGRN                 Transformer          majority class
    50-200               800     31.9 [29.9, 34.0]    30.9 [28.9, 33.0]    15.3
    20-100               800     39.2 [37.1, 41.4]    39.0 [36.9, 41.2]    15.5   <- chosen (both learn most)
    100-300              800     33.8 [31.8, 36.0]    34.8 [32.7, 36.9]    15.2
    50-200               1500    34.9 [32.8, 37.0]    33.2 [31.2, 35.3]    15.3

Both models learn far above chance; at no setting tried is one beyond the other's interval. The stages
listops-opt/lr1e-3, listops-depth and pathfinder are defined but were not run in that session (CPU time).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from results.intervals import wilson_interval  # noqa: E402

CONFIGS = ROOT / "lra" / "configs"


@dataclass(frozen=True)
class Trial:
    name: str
    task: str  # listops | pathfinder
    config: str  # file in lra/configs/
    data: tuple[str, ...]  # arguments of `python -m lra.prepare <task>` (without --root)
    overrides: tuple[str, ...] = ()
    data_args: tuple[str, ...] = field(default=())  # extra --data.init_args.* for the run (e.g. split fractions)


def listops_data(n: int, lo: int, hi: int, depth: int = 10, test: int = 2000, val: int = 500) -> tuple[str, ...]:
    return ("--size", str(n), "--min-length", str(lo), "--max-length", str(hi), "--max-depth", str(depth),
            "--val-size", str(val), "--test-size", str(test))


def steps(n: int, val_every: int | None = None) -> tuple[str, ...]:
    every = val_every or max(50, n // 4)
    return ("--trainer.max_steps", str(n), "--model.init_args.total_steps", str(n), "--trainer.val_check_interval", str(every))


def _both(prefix: str, data: tuple[str, ...], extra: tuple[str, ...] = (), tf_extra: tuple[str, ...] = ()) -> list[Trial]:
    """The HGRN trial and its Transformer counterpart on the same data and optimiser settings."""
    return [Trial(f"{prefix}-hgrn", "listops", "listops-mini.yaml", data, extra),
            Trial(f"{prefix}-tf", "listops", "listops-transformer-mini.yaml", data, extra + tf_extra)]


SHORT = listops_data(22_500, 50, 200)
STAGES: dict[str, list[Trial]] = {
    # Which tree lengths are learnable in ~800 steps at width 64, depth 2.
    "listops-data": [
        *_both("len50-200", SHORT, steps(800)),
        *_both("len20-100", listops_data(22_500, 20, 100), steps(800)),
        *_both("len100-300", listops_data(22_500, 100, 300), steps(800)),
    ],
    # Learning rate and steps on the chosen data.
    "listops-opt": [
        *_both("lr1e-3", SHORT, steps(800) + ("--model.init_args.lr", "0.001")),
        *_both("steps1500", SHORT, steps(1500)),
    ],
    # Depth: 4 layers give the lower-bound plot more than two points.
    "listops-depth": [
        *_both("d48-L4", SHORT, steps(800) + ("--model.init_args.d_model", "48", "--model.init_args.n_layers", "4")),
    ],
    # Pathfinder: is any setting learnable at this budget? (32 px, the easiest difficulty, 2D HGRN)
    "pathfinder": [
        Trial("pf32-baseline-hgrn", "pathfinder", "pathfinder-tiny.yaml",
              ("--size", "12000", "--difficulty", "curv_baseline"),
              steps(300, 100) + ("--trainer.max_epochs", "-1", "--trainer.check_val_every_n_epoch", "null"),
              ("--data.init_args.difficulty", "curv_baseline", "--data.init_args.limit_train", "null",
               "--data.init_args.limit_val", "1000", "--data.init_args.limit_test", "2000",
               "--data.init_args.val_fraction", "0.1", "--data.init_args.test_fraction", "0.2")),
    ],
}


def data_root(base: Path, trial: Trial) -> Path:
    key = hashlib.sha1(" ".join((trial.task,) + trial.data).encode()).hexdigest()[:10]
    return base / f"{trial.task}-{key}"


def prepare(base: Path, trial: Trial) -> tuple[Path, float]:
    root = data_root(base, trial)
    t0 = time.monotonic()
    subprocess.run([sys.executable, "-m", "lra.prepare", trial.task, "--root", str(root), "--quiet", *trial.data],
                   cwd=ROOT, check=True)
    return root, time.monotonic() - t0


def run_trial(trial: Trial, stage: str, runs: Path, data: Path) -> None:
    run_dir = runs / stage / trial.name
    record = run_dir / "record.json"
    if record.exists() and json.loads(record.read_text()).get("status") == "complete":
        print(f"skip {stage}/{trial.name}: done", flush=True)
        return
    root, prep_s = prepare(data, trial)
    cmd = [sys.executable, "-m", "lra", "fit", "--config", str(CONFIGS / trial.config), "--run.suite", "mini-sweep",
           "--run.variant", trial.name, "--run.dir", str(run_dir), "--data.init_args.root", str(root),
           *trial.data_args, *trial.overrides]
    run_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    with open(run_dir / "run.log", "w") as log:
        done = subprocess.run(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    wall = time.monotonic() - t0
    (run_dir / "sweep.json").write_text(json.dumps({"command": cmd, "process_wall_s": wall, "prepare_s": prep_s,
                                                    "returncode": done.returncode, "load": os.getloadavg(),
                                                    "omp_num_threads": os.environ.get("OMP_NUM_THREADS")}))
    print(f"{stage}/{trial.name}: exit {done.returncode}, {wall:.0f} s; " + summary_line(run_dir), flush=True)


def summary_line(run_dir: Path) -> str:
    try:
        rec = json.loads((run_dir / "record.json").read_text())
    except (OSError, json.JSONDecodeError):
        return "no record"
    m = rec["metrics"]
    if rec["status"] != "complete":
        return f"status {rec['status']}"
    n = m.get("n_test")
    acc = m["test_acc_at_best_val"]
    ci = ""
    if n:
        lo, hi = wilson_interval(round(acc * n), int(n))
        ci = f" [{100 * lo:.1f}, {100 * hi:.1f}]"
    return (f"test {100 * acc:.1f}{ci} (n={n}), last {100 * m['test_acc_last']:.1f}, val best {100 * m['val_acc_best']:.1f}, "
            f"{m['steps']} steps, {m['params']} params, fit {m['wall_time_s']:.0f} s")


def majority_share(root: Path, task: str) -> str:
    """Share of the most frequent label in a ListOps test split (the accuracy of always guessing it)."""
    path = root / "listops-1000" / "basic_test.tsv"
    if task != "listops" or not path.is_file():
        return "–"
    labels = [line.rsplit("\t", 1)[1].strip() for line in path.read_text().splitlines()[1:] if line.strip()]
    top = max(labels.count(v) for v in set(labels))
    return f"{100 * top / len(labels):.1f}"


def summary(runs: Path, data: Path) -> None:
    print("| stage | trial | result | majority % | process s | load (1/5/15 min) | threads |")
    print("|---|---|---|---:|---:|---|---|")
    for stage, trials in STAGES.items():
        for trial in trials:
            run_dir = runs / stage / trial.name
            if not run_dir.is_dir():
                continue
            extra = {}
            if (run_dir / "sweep.json").exists():
                extra = json.loads((run_dir / "sweep.json").read_text())
            wall = f"{extra['process_wall_s']:.0f}" if "process_wall_s" in extra else "–"
            load = "/".join(f"{v:.1f}" for v in extra.get("load", [])) or "–"
            threads = extra.get("omp_num_threads") or "default"
            print(f"| {stage} | {trial.name} | {summary_line(run_dir)} | {majority_share(data_root(data, trial), trial.task)} "
                  f"| {wall} | {load} | {threads} |")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--stage", nargs="+", choices=list(STAGES), help="stages to run")
    p.add_argument("--only", nargs="+", metavar="TRIAL", help="run only these trials of the stages")
    p.add_argument("--list", action="store_true", help="print the stages and trials")
    p.add_argument("--summary", action="store_true", help="print the table of every trial run so far")
    p.add_argument("--runs", type=Path, default=ROOT / "runs" / "mini-sweep", help="where trial run folders go")
    p.add_argument("--data", type=Path, default=ROOT / "data" / "mini-sweep", help="where generated data go")
    args = p.parse_args(argv)
    if args.list:
        for stage, trials in STAGES.items():
            print(stage)
            for t in trials:
                print(f"  {t.name}: {t.config} data[{' '.join(t.data)}] {' '.join(t.overrides + t.data_args)}")
        return 0
    for stage in args.stage or []:
        for trial in STAGES[stage]:
            if args.only and trial.name not in args.only:
                continue
            run_trial(trial, stage, args.runs, args.data)
    if args.summary or args.stage:
        summary(args.runs, args.data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
