"""run_all.py: suites expand into the expected runs, and a killed suite resumes without losing records."""
from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
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
    assert {r.variant for r in runs} == {"cumsoftmax", "none", "constant", "linear", "independent", "decreasing"}
    assert {r.seed for r in runs} == {0, 1} and {r.task for r in runs} == {"listops"}
    _, runs = run_all.load_suite("lower-bound-mini")
    assert {r.variant for r in runs} == {"cumsoftmax", "none", "constant", "linear", "independent", "decreasing",
                                         "cumsoftmax-gate-none", "cumsoftmax-gate-bound"}
    assert all(sum(r.variant == v for r in runs) >= 3 for v in {r.variant for r in runs})


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


@pytest.mark.slow
def test_killed_suite_resumes_only_missing_runs(tmp_path):
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
    deadline = time.monotonic() + 300
    while _status(run_dirs[0]) != "complete" and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert _status(run_dirs[0]) == "complete", "the first run never completed"
    child = None
    while child is None and time.monotonic() < deadline and proc.poll() is None:
        child = (lock_holder(run_dirs[1]) or {}).get("pid")  # the trainer of the second run, once it holds its folder
        time.sleep(0.1)
    assert child is not None, "the second run never started"
    os.kill(proc.pid, signal.SIGKILL)  # kill -9 of the suite runner alone...
    proc.wait()
    deadline = time.monotonic() + 30
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(child), "the suite's child outlived it"  # ...takes its running child with it
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # (nothing else of the group may linger either)
    first_record = (run_dirs[0] / "record.json").read_text()
    assert _status(run_dirs[2]) is None  # the suite really stopped part way

    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "skip listops/hgrn-cumsoftmax/seed0: complete" in done.stdout
    assert all(_status(d) == "complete" for d in run_dirs)
    assert (run_dirs[0] / "record.json").read_text() == first_record  # not rerun, not rewritten
    for d in run_dirs:  # every record is whole JSON and no temp file was left behind
        json.loads((d / "record.json").read_text())
        assert not list(d.glob(".record.json.*"))
    assert (tmp_path / "results" / "killtest" / "README.md").exists()
