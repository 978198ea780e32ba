"""run_all.py: suites expand into the expected runs, a killed suite resumes without losing records, the records it
leaves land in the tables, and a failed aggregation fails the suite."""
from __future__ import annotations

import contextlib
import csv
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import run_all  # noqa: E402
from harness.lock import lock_holder  # noqa: E402


def test_demo_dry_run_lists_the_expected_runs(capsys):
    assert run_all.main(["--suite", "demo", "--dry-run", "--runs-root", "/nonexistent"]) == 0
    out = capsys.readouterr().out
    expected = [f"listops/{name}/seed0" for name in ("hgrn-cumsoftmax", "hgrn-none", "transformer-default")]
    for name in expected:
        assert name in out
    assert out.count(" -m lra fit ") == len(expected)
    assert "--model.init_args.lower_bound none" in out
    assert "lra.prepare listops" in out and "listops-mini.yaml" in out and "listops-transformer-mini.yaml" in out


def test_every_suite_expands_and_points_at_existing_configs():
    for path in sorted((ROOT / "results" / "suites").glob("*.yaml")):
        _, runs = run_all.load_suite(str(path))
        assert runs, path
        for run in runs:
            assert (ROOT / run.config).exists(), f"{path.name}: {run.config}"
    _, runs = run_all.load_suite("lower-bound", seeds=2, only=["listops"])
    assert {r.identity.variant for r in runs} == {"cumsoftmax", "none", "constant", "linear", "independent", "decreasing"}
    assert {r.identity.seed for r in runs} == {0, 1} and {r.identity.task for r in runs} == {"listops"}
    _, runs = run_all.load_suite("lower-bound-mini")
    assert {r.identity.variant for r in runs} == {"cumsoftmax", "none", "constant", "linear", "independent", "decreasing",
                                                  "cumsoftmax-gate-none", "cumsoftmax-gate-bound"}
    assert all(sum(r.identity.variant == v for r in runs) >= 3 for v in {r.identity.variant for r in runs})


def test_unknown_suite_names_the_known_ones():
    with pytest.raises(SystemExit, match="known suites: .*demo"):
        run_all.load_suite("nope")


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting to be reaped counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def _status(run_dir: Path) -> str | None:
    path = run_dir / "record.json"
    return json.loads(path.read_text())["status"] if path.exists() else None


@dataclass
class KilledSuite:
    """What a suite of three tiny ListOps runs did when killed (kill -9) in its second run and started again."""

    run_dirs: list[Path]
    reached_complete: bool  # the first run completed before the kill
    child: int | None  # the second run's trainer, which must die with the suite
    child_outlived_suite: bool
    third_started_before_rerun: bool
    first_record: str  # the first run's record before the rerun
    rerun: subprocess.CompletedProcess
    results_dir: Path


@pytest.fixture(scope="module")
def killed_suite(tmp_path_factory) -> KilledSuite:
    """Real training through run_all.py (about a minute): the kill/resume tests and the results/ test share it."""
    tmp_path = tmp_path_factory.mktemp("killed")
    data = tmp_path / "data"
    suite = {
        "name": "killtest",
        "seeds": [0, 1, 2],
        "prepare": [f"python -m lra.prepare listops --root {data} --size 300 --min-length 20 --max-length 60 --quiet"],
        "runs": [{
            "task": "listops", "entry": "lra", "config": "lra/configs/listops-tiny.yaml", "model": "hgrn",
            "variant": "cumsoftmax",
            "args": ["--data.init_args.root", str(data), "--data.init_args.max_length", "60",
                     "--data.init_args.limit_train", "32", "--data.init_args.limit_val", "16", "--data.init_args.limit_test", "16",
                     "--trainer.max_epochs", "1", "--trainer.enable_progress_bar", "false"],
        }],
    }
    suite_file = tmp_path / "killtest.yaml"
    suite_file.write_text(yaml.safe_dump(suite))
    runs_root = tmp_path / "runs"
    cmd = [sys.executable, str(ROOT / "run_all.py"), "--suite", str(suite_file), "--runs-root", str(runs_root),
           "--results-root", str(tmp_path / "results")]
    run_dirs = [runs_root / "killtest" / "listops" / "hgrn-cumsoftmax" / f"seed{k}" for k in range(3)]

    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while _status(run_dirs[0]) != "complete" and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        reached_complete = _status(run_dirs[0]) == "complete"
        child = None
        while reached_complete and child is None and time.monotonic() < deadline and proc.poll() is None:
            child = (lock_holder(run_dirs[1]) or {}).get("pid")  # the trainer of the second run, once it holds its folder
            time.sleep(0.1)
        os.kill(proc.pid, signal.SIGKILL)  # kill -9 of the suite runner alone...
        proc.wait()
        deadline = time.monotonic() + 30
        while child is not None and _alive(child) and time.monotonic() < deadline:
            time.sleep(0.1)
        child_outlived_suite = child is not None and _alive(child)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # (nothing else of the group may linger either)
    first_record = (run_dirs[0] / "record.json").read_text() if reached_complete else ""
    third_started = _status(run_dirs[2]) is not None
    rerun = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    return KilledSuite(run_dirs, reached_complete, child, child_outlived_suite, third_started, first_record, rerun,
                       tmp_path / "results" / "killtest")


@pytest.mark.slow
def test_killed_suite_resumes_only_missing_runs(killed_suite):
    k = killed_suite
    assert k.reached_complete, "the first run never completed"
    assert k.child is not None, "the second run never started"
    assert not k.child_outlived_suite, "the suite's child outlived it"  # kill -9 of the suite takes its child along
    assert not k.third_started_before_rerun  # the suite really stopped part way
    done = k.rerun
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "skip listops/hgrn-cumsoftmax/seed0: complete" in done.stdout
    assert all(_status(d) == "complete" for d in k.run_dirs)
    assert (k.run_dirs[0] / "record.json").read_text() == k.first_record  # not rerun, not rewritten
    for d in k.run_dirs:  # every record is whole JSON and no temp file was left behind
        json.loads((d / "record.json").read_text())
        assert not list(d.glob(".record.json.*"))
    assert "3 record(s), 0 unreadable" in done.stdout


@pytest.mark.slow
def test_records_of_real_runs_land_in_the_tables(killed_suite):
    """The records the trainer wrote go through results/ into the right row, with the numbers they hold."""
    from results.records import load_runs

    records = [json.loads((d / "record.json").read_text()) for d in killed_suite.run_dirs]
    runs = load_runs(killed_suite.run_dirs[0].parents[2]).runs
    assert sorted(zip(runs["task"], runs["model"], runs["variant"], runs["seed"], runs["status"])) == [
        ("listops", "hgrn", "cumsoftmax", seed, "complete") for seed in range(3)]
    assert sorted(runs["test_acc_at_best_val"]) == sorted(r["metrics"]["test_acc_at_best_val"] for r in records)
    assert sorted(runs["n_test"]) == sorted(r["metrics"]["n_test"] for r in records)  # rows, for the intervals
    accs = [100 * r["metrics"]["test_acc_at_best_val"] for r in records]
    with open(killed_suite.results_dir / "tables" / "lra.csv", newline="") as f:
        rows = {row[0]: row[1:] for row in csv.reader(f)}
    listops = rows["HGRN (cumsoftmax), ours"][0]  # the first task column is ListOps
    assert listops == f"{statistics.mean(accs):.2f} ± {statistics.stdev(accs):.2f}", rows


def _write_record(path: Path, **fields) -> None:
    record = {"schema": 1, "suite": "agg", "task": "listops", "model": "hgrn", "variant": "cumsoftmax", "seed": 0,
              "status": "complete", "metrics": {"test_acc_at_best_val": 0.5, "test_acc_last": 0.5, "val_acc_best": 0.5}}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**record, **fields}))


def test_aggregation_counts_unreadable_records_and_fails(tmp_path, capsys):
    runs_root, out = tmp_path / "runs", tmp_path / "results"
    _write_record(runs_root / "agg" / "listops" / "hgrn-cumsoftmax" / "seed0" / "record.json")
    bad = runs_root / "agg" / "listops" / "hgrn-cumsoftmax" / "seed1" / "record.json"
    _write_record(bad, seed="one")
    assert run_all.aggregate("agg", runs_root, out) is False
    printed = capsys.readouterr().out
    assert "(1 record(s), 1 unreadable)" in printed and f"unreadable, left out of the tables: {bad}" in printed
    assert (out / "agg" / "README.md").exists()  # the readable records still make their tables
    bad.unlink()
    assert run_all.aggregate("agg", runs_root, out) is True
    assert run_all.aggregate("nothing", runs_root, out) is False
    assert "aggregation FAILED: " in capsys.readouterr().out


def test_a_suite_whose_aggregation_fails_exits_1(tmp_path, capsys):
    suite = {"name": "agg", "runs": [{"task": "listops", "entry": "lra", "config": "lra/configs/listops-tiny.yaml",
                                      "model": "hgrn", "variant": "cumsoftmax"}]}
    (tmp_path / "agg.yaml").write_text(yaml.safe_dump(suite))
    runs_root = tmp_path / "runs"
    _write_record(runs_root / "agg" / "listops" / "hgrn-cumsoftmax" / "seed0" / "record.json")  # complete: skipped
    args = ["--suite", str(tmp_path / "agg.yaml"), "--runs-root", str(runs_root), "--results-root", str(tmp_path / "out")]
    assert run_all.main(args) == 0
    (runs_root / "agg" / "stray" / "record.json").parent.mkdir(parents=True)
    (runs_root / "agg" / "stray" / "record.json").write_text("{")
    assert run_all.main(args) == 1
    assert "1 unreadable" in capsys.readouterr().out
