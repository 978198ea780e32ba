"""Run records (ARCHITECTURE.md section 4): the one file results/ reads, always written atomically."""
from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

SCHEMA = 1
RECORD_NAME = "record.json"


def write_json_atomic(path: str | os.PathLike, payload: dict[str, Any]) -> None:
    """Write JSON to a temp file in the same folder, fsync, then rename: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(payload, f, indent=2, sort_keys=False, default=_jsonable)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return str(value)


def read_record(run_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The record of a run folder, or None when there is none yet."""
    path = Path(run_dir) / RECORD_NAME
    if not path.exists():
        return None
    with open(path) as f:
        return json.load(f)


def versions() -> dict[str, str]:
    """Library versions and the git commit of the code that ran (with '+dirty' for uncommitted changes)."""
    import lightning
    import torch

    out = {"torch": torch.__version__, "lightning": lightning.__version__, "git": "unknown"}
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        if commit.returncode == 0:
            dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                                   capture_output=True, text=True, timeout=10)
            out["git"] = commit.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        pass
    return out


def new_record(suite: str, task: str, model: str, variant: str, seed: int, config: dict[str, Any]) -> dict[str, Any]:
    """A record in status ``running`` with empty metrics."""
    return {
        "schema": SCHEMA,
        "suite": suite,
        "task": task,
        "model": model,
        "variant": variant,
        "seed": seed,
        "status": "running",
        "config": config,
        "metrics": {
            "val_acc_best": None,
            "test_acc_at_best_val": None,
            "test_acc_last": None,
            "epochs": 0,
            "steps": 0,
            "params": 0,
            "wall_time_s": 0.0,
        },
        "history": "metrics.csv",
        "versions": versions(),
    }
