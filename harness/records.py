"""Run records (docs/ARCHITECTURE.md section 4): the one file results/ reads, always written atomically. Its name,
schema and fields are declared in harness/identity.py."""
from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from .identity import ACCURACY_METRICS, PROGRESS_METRICS, RECORD_NAME, SCHEMA, RunIdentity


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


def new_record(identity: RunIdentity, config: dict[str, Any]) -> dict[str, Any]:
    """A record in status ``running`` with empty metrics (accuracies None, progress 0)."""
    return {
        "schema": SCHEMA,
        **identity.as_record(),
        "status": "running",
        "config": config,
        "metrics": {**dict.fromkeys(ACCURACY_METRICS), **{name: 0 for name in PROGRESS_METRICS}, "wall_time_s": 0.0},
        "history": "metrics.csv",
        "versions": versions(),
    }


def failed_record_name(now: float | None = None) -> str:
    """``record.failed-<UTC time>.json``: where a failure goes when a complete record must be kept."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    return f"record.failed-{stamp}.json"


class RunRecord:
    """The record of one ``fit`` and the rules for writing it.

    - ``begin`` writes a ``running`` record, except over a ``complete`` one: a later command (a resume
      that extends training, or a rerun by mistake) must not destroy a finished result before it has one
      of its own. Then the complete record stays until this fit completes, and a failure of this fit goes
      beside it as ``record.failed-<time>.json``.
    - Wall time accumulates over resumes (``resume=True``) and is written at every ``progress`` call, so the
      time of a killed process counts in the final record (up to its last progress write).
    - Only the writing process (global rank 0) touches the files.
    """

    def __init__(self, run_dir: str | os.PathLike) -> None:
        self.run_dir = Path(run_dir)
        self.data: dict[str, Any] | None = None
        self.keep_complete = False
        self.writer = True
        self._base = 0.0
        self._start = 0.0

    @property
    def path(self) -> Path:
        return self.run_dir / RECORD_NAME

    @property
    def begun(self) -> bool:
        return self.data is not None

    def begin(self, record: dict[str, Any], resume: bool, writer: bool = True) -> None:
        try:
            previous = read_record(self.run_dir)
        except ValueError:  # not JSON: records are written atomically, so a foreign file; this fit replaces it
            previous = None
        self.keep_complete = previous is not None and previous.get("status") == "complete"
        self._base = float((previous or {}).get("metrics", {}).get("wall_time_s") or 0.0) if resume else 0.0
        self._start = time.monotonic()
        self.writer = writer
        self.data = record
        record["metrics"]["wall_time_s"] = self._base
        self._write(self.path)

    def wall_time(self) -> float:
        return self._base + time.monotonic() - self._start

    def progress(self, epochs: int, steps: int) -> None:
        """Note the progress and the wall time so far (a killed run keeps them)."""
        if self.data is None:
            return
        metrics = self.data["metrics"]
        metrics["epochs"], metrics["steps"], metrics["wall_time_s"] = int(epochs), int(steps), self.wall_time()
        self._write(self.path)

    def complete(self) -> Path:
        assert self.data is not None, "begin() first"
        self.data["status"] = "complete"
        self.data["metrics"]["wall_time_s"] = self.wall_time()
        self.keep_complete = False  # this record now replaces the older complete one
        self._write(self.path)
        return self.path

    def fail(self, reason: str, **metrics: Any) -> Path | None:
        """Mark the record ``failed``; returns the file written (None when nothing was begun)."""
        if self.data is None:
            return None
        self.data["status"] = "failed"
        self.data["failure"] = reason
        self.data["metrics"].update(metrics)
        self.data["metrics"]["wall_time_s"] = self.wall_time()
        path = self.run_dir / failed_record_name() if self.keep_complete else self.path
        if self.writer:
            write_json_atomic(path, self.data)
        return path

    def _write(self, path: Path) -> None:
        if self.writer and not (self.keep_complete and path == self.path):
            write_json_atomic(path, self.data)
