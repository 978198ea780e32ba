"""Run a suite of experiments, resuming where a previous invocation stopped, then aggregate the results.

    python run_all.py --suite demo                  # the README's main job (CPU, minutes)
    python run_all.py --suite paper --dry-run       # print the commands the suite would run
    python run_all.py --suite lower-bound --only listops --seeds 3
    python run_all.py --suite paper --slurm paper.sbatch   # a SLURM array script, one run per task index

Suites are YAML files in results/suites/ (or any path given to --suite). Every run is started through the
same command line a user would type (``python -m lra fit --config ...``) in a subprocess, with its own run
folder ``runs/<suite>/<task>/<model>-<variant>/seed<k>`` (harness/identity.py). Before any data is prepared or
any run starts, every entry's command line is parsed by its entry's own parser and its model built (no data):
an entry whose ``model`` or ``variant`` is not what its command line builds stops the suite, naming the entry.
A run whose record.json says ``complete`` is skipped, a run left ``running`` by a killed invocation resumes
from its last checkpoint, and a ``failed`` run is reported and skipped unless --retry-failed. A run whose
folder is locked by a live trainer (another invocation, or a command typed by hand) is never started a second
time. Each run's process dies with this one (Linux: PR_SET_PDEATHSIG), so killing the suite, even with kill -9,
leaves no trainer behind. At the end the tables and plots are built in results/<suite>/ (as
``python -m results --suite NAME`` does); records that cannot be read are left out of them and listed.
Exit status 1 when a run failed or was left to another process, or when aggregation failed or left a record out.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))  # the harness, also when this script is started from another folder
from harness.identity import RECORD_NAME, RunIdentity  # noqa: E402
from harness.lock import lock_holder  # noqa: E402
from harness.process import die_with_parent  # noqa: E402

if TYPE_CHECKING:  # (run_all.py imports Lightning only when it checks a suite)
    import lightning as L

    from harness.cli import HarnessCLI

SUITES_DIR = ROOT / "results" / "suites"
REQUIRED_RUN_KEYS = ("task", "entry", "config", "model", "variant")


@dataclass
class Run:
    """One (task, model, variant, seed) of a suite, where the suite declares it, and the command that trains it."""

    identity: RunIdentity
    entry: str
    config: str
    source: str  # "<suite file> runs[i] (task ..., variant ...)": named in identity errors
    args: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.identity.name

    def run_dir(self, runs_root: Path) -> Path:
        return self.identity.run_dir(runs_root)

    def command(self, runs_root: Path, resume: bool = False, devices: str | None = None) -> list[str]:
        ident = self.identity
        cmd = [sys.executable, "-m", self.entry, "fit", "--config", self.config, "--seed_everything", str(ident.seed),
               "--run.suite", ident.suite, "--run.task", ident.task, "--run.variant", ident.variant,
               "--run.source", self.source,
               "--run.dir", str(self.run_dir(runs_root)), *self.args]
        if devices is not None:
            cmd += ["--trainer.devices", devices]
        if resume:
            cmd += ["--ckpt_path", "last"]
        return cmd


def suite_path(name: str) -> Path:
    path = Path(name)
    if path.suffix in (".yaml", ".yml") and path.exists():
        return path
    candidate = SUITES_DIR / f"{name}.yaml"
    if candidate.exists():
        return candidate
    known = sorted(p.stem for p in SUITES_DIR.glob("*.yaml"))
    raise SystemExit(f"error: unknown suite {name!r}; known suites: {', '.join(known)} (or pass a path to a .yaml)")


def load_suite(name: str, seeds: int | None = None, only: list[str] | None = None) -> tuple[dict, list[Run]]:
    """Read a suite file and expand it into runs (task x model x variant x seed)."""
    path = suite_path(name)
    with open(path) as f:
        spec = yaml.safe_load(f)
    if not isinstance(spec, dict) or not isinstance(spec.get("runs"), list):
        raise SystemExit(f"error: {path}: a suite needs a 'runs:' list")
    suite = spec.get("name", path.stem)
    shown = path.resolve().relative_to(ROOT) if path.resolve().is_relative_to(ROOT) else path
    seed_list = list(range(seeds)) if seeds is not None else list(spec.get("seeds", [0]))
    runs: list[Run] = []
    for i, entry in enumerate(spec["runs"]):
        missing = [k for k in REQUIRED_RUN_KEYS if k not in entry]
        if missing:
            raise SystemExit(f"error: {path}: runs[{i}] lacks {', '.join(missing)}")
        if only and entry["task"] not in only:
            continue
        source = f"{shown} runs[{i}] (task {entry['task']}, variant {entry['variant']})"
        for seed in entry.get("seeds", seed_list):
            identity = RunIdentity(suite, entry["task"], entry["model"], entry["variant"], int(seed))
            runs.append(Run(identity, entry["entry"], entry["config"], source, [str(a) for a in entry.get("args", [])]))
    return spec, runs


class IdentityPlanner:
    """The identity each command line would get, from its entry's real parser and model class, without data or
    training (``HarnessCLI(plan_only=True)``; one parser per entry, reused)."""

    def __init__(self) -> None:
        self._clis: dict[str, HarnessCLI] = {}

    def identity(self, entry: str, argv: list[str]) -> RunIdentity:
        cli = self._clis.get(entry)
        if cli is None:
            cli = importlib.import_module(f"{entry}.__main__").main(argv, plan_only=True)
            self._clis[entry] = cli
            return cli.identity
        return cli.plan(argv)

    def model(self, entry: str) -> L.LightningModule:
        """The model the last command line of ``entry`` built."""
        return self._clis[entry].model


def check_identities(runs: list[Run], runs_root: Path) -> None:
    """Stop, naming the suite entry, when an entry's model or variant is not what its command line builds (each
    entry once: seeds do not change it). The trainer checks the variant again (harness/cli.py)."""
    planner = IdentityPlanner()
    for source in dict.fromkeys(run.source for run in runs):
        run = next(r for r in runs if r.source == source)
        argv = run.command(runs_root)[3:]  # after "python -m <entry>"
        try:
            built = planner.identity(run.entry, argv)
        except Exception as e:  # the parser's and the identity check's errors, whatever their type
            message = " ".join(str(e).split())
            raise SystemExit(f"error: {message if message.startswith(source) else f'{source}: {message}'}") from e
        if built.model != run.identity.model:
            raise SystemExit(f"error: {source}: model {run.identity.model!r}, but the command line builds "
                             f"{built.model!r}; correct the entry's model or its config")
        assert built == run.identity, (built, run.identity)  # task, suite, variant, seed: passed on the command line


def record_status(run_dir: Path) -> str:
    """complete | running | failed | missing, from the run's record.json."""
    path = run_dir / RECORD_NAME
    if not path.exists():
        return "missing"
    try:
        return json.loads(path.read_text()).get("status", "missing")
    except json.JSONDecodeError:  # records are written atomically, so this is a foreign file: redo the run
        return "missing"


def prepare(spec: dict, dry_run: bool) -> None:
    """Run the suite's data-preparation commands (they are idempotent: existing data is kept)."""
    for command in spec.get("prepare", []):
        print(f"$ {command}", flush=True)
        if not dry_run:
            subprocess.run(shlex.split(command.replace("python ", f"{shlex.quote(sys.executable)} ", 1)), check=True, cwd=ROOT)


def format_seconds(s: float) -> str:
    return f"{int(s // 60)}m{int(s % 60):02d}s"


def aggregate(suite: str, runs_root: Path, results_root: Path) -> bool:
    """Build the suite's tables and plots; False, with the reason printed, when that fails or when some records
    could not be read (they are listed, and the tables leave them out)."""
    from results.__main__ import build_suite
    from results.records import RecordError

    out = results_root / suite
    try:
        result = build_suite(suite, runs_root / suite, out, allow_unreadable=True)
    except RecordError as e:
        print(f"aggregation FAILED: {e}", flush=True)
        return False
    print(f"tables and plots: {result.readme} ({len(result.runs)} record(s), {len(result.unreadable)} unreadable)")
    for path, reason in result.unreadable:
        print(f"    unreadable, left out of the tables: {' '.join(reason.split())}")
    return not result.unreadable


def run_suite(args: argparse.Namespace) -> int:
    spec, runs = load_suite(args.suite, args.seeds, args.only)
    suite = runs[0].identity.suite if runs else Path(args.suite).stem
    runs_root = Path(args.runs_root)
    if args.index is not None:
        if not 0 <= args.index < len(runs):
            raise SystemExit(f"error: --index {args.index} out of range: the suite has {len(runs)} runs")
        runs = [runs[args.index]]
    check_identities(runs, runs_root)
    if args.slurm:
        write_slurm(args, len(runs))
        return 0
    if args.dry_run:
        prepare(spec, dry_run=True)
        for i, run in enumerate(runs):
            status = record_status(run.run_dir(runs_root))
            print(f"[{i}] {run.name} ({status})\n    {shlex.join(run.command(runs_root, devices=args.devices))}")
        return 0
    if not args.no_prepare:
        prepare(spec, dry_run=False)
    todo = []
    for run in runs:
        status = record_status(run.run_dir(runs_root))
        if status == "complete" or (status == "failed" and not args.retry_failed):
            print(f"skip {run.name}: {status}")
        else:
            todo.append((run, status))
    failures, busy = [], []
    start = time.monotonic()
    for k, (run, status) in enumerate(todo):
        run_dir = run.run_dir(runs_root)
        holder = lock_holder(run_dir)
        if holder is not None:  # checked right before starting: a trainer may have taken it meanwhile
            busy.append(run.name)
            print(f"skip {run.name}: its folder is in use by process {holder.get('pid', '?')} on host "
                  f"{holder.get('host', '?')}; run the suite again when that process has finished", flush=True)
            continue
        resume = status in ("running", "failed") and (run_dir / "checkpoints" / "last.ckpt").exists()
        elapsed = time.monotonic() - start
        eta = f", about {format_seconds(elapsed / k * (len(todo) - k))} left" if k else ""
        print(f"[{k + 1}/{len(todo)}] {run.name}{' (resuming)' if resume else ''} - {format_seconds(elapsed)} elapsed{eta}",
              flush=True)
        run_dir.mkdir(parents=True, exist_ok=True)
        log_path = run_dir / "run.log"
        with open(log_path, "a") as log:
            done = subprocess.run(run.command(runs_root, resume, args.devices), cwd=ROOT, stdout=log,
                                  stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
                                  preexec_fn=die_with_parent)  # the run dies with this process
        final = record_status(run_dir)
        if done.returncode != 0 or final != "complete":
            failures.append(run.name)
            tail = log_path.read_text(errors="replace").strip().splitlines()[-5:]
            print(f"    FAILED (exit {done.returncode}, record {final}); see {log_path}:\n      " + "\n      ".join(tail), flush=True)
        else:
            metrics = json.loads((run_dir / RECORD_NAME).read_text())["metrics"]
            print(f"    test acc {metrics['test_acc_at_best_val']:.3f} (at best val {metrics['val_acc_best']:.3f}), "
                  f"{metrics['wall_time_s']:.0f} s", flush=True)
    print(f"{len(todo) - len(failures) - len(busy)} run(s) done, {len(failures)} failed, "
          f"{len(runs) - len(todo) + len(busy)} skipped ({len(busy)} in use elsewhere) "
          f"in {format_seconds(time.monotonic() - start)}")
    aggregated = True
    if not args.no_aggregate and args.index is None:
        aggregated = aggregate(suite, runs_root, Path(args.results_root))
    return 1 if failures or busy or not aggregated else 0


def write_slurm(args: argparse.Namespace, n_runs: int) -> None:
    """One array task per run; each calls this script with --index, so resume and skip logic still apply."""
    forwarded = [f"--suite {shlex.quote(args.suite)}", f"--runs-root {shlex.quote(args.runs_root)}", "--no-prepare", "--no-aggregate"]
    if args.seeds is not None:
        forwarded.append(f"--seeds {args.seeds}")
    if args.only:
        forwarded.append("--only " + " ".join(args.only))
    if args.devices:
        forwarded.append(f"--devices {args.devices}")
    script = f"""#!/bin/bash
#SBATCH --job-name=hgrn-{Path(args.suite).stem}
#SBATCH --array=0-{n_runs - 1}
#SBATCH --gres=gpu:{args.devices or 1}
#SBATCH --cpus-per-task=8
#SBATCH --time=48:00:00
#SBATCH --output=slurm-%A_%a.out
# Generated by: python run_all.py {' '.join(sys.argv[1:])}
# Prepare data first (python run_all.py --suite {args.suite} --dry-run lists the commands); after the array
# finishes, aggregate with: python -m results --suite {Path(args.suite).stem}
cd {shlex.quote(str(ROOT))}
srun python run_all.py {' '.join(forwarded)} --index "$SLURM_ARRAY_TASK_ID"
"""
    Path(args.slurm).write_text(script)
    print(f"wrote {args.slurm}: a SLURM array of {n_runs} runs (submit with: sbatch {args.slurm})")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n".join(__doc__.splitlines()[2:7]))
    p.add_argument("--suite", required=True, help="suite name in results/suites/ (demo, paper, lower-bound) or a .yaml path")
    p.add_argument("--dry-run", action="store_true", help="print the commands (and each run's status) without running")
    p.add_argument("--only", nargs="+", metavar="TASK", help="run only these tasks")
    p.add_argument("--seeds", type=int, help="use seeds 0..N-1 instead of the suite's")
    p.add_argument("--devices", help="passed to every run as --trainer.devices")
    p.add_argument("--runs-root", default="runs", help="folder holding <suite>/... run folders (default: runs)")
    p.add_argument("--results-root", default="results", help="tables and plots go to <results-root>/<suite>")
    p.add_argument("--retry-failed", action="store_true", help="run failed runs again (resuming from their last checkpoint)")
    p.add_argument("--index", type=int, help="run only the run with this index (as --dry-run numbers them)")
    p.add_argument("--slurm", metavar="FILE", help="write a SLURM array script for the suite instead of running it")
    p.add_argument("--no-prepare", action="store_true", help="skip the suite's data-preparation commands")
    p.add_argument("--no-aggregate", action="store_true", help="skip building tables and plots at the end")
    return run_suite(p.parse_args(argv))


if __name__ == "__main__":
    # SIGTERM (e.g. from a scheduler) ends this process normally; the kernel then stops the running child
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    sys.exit(main())
