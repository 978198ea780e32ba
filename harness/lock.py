"""One trainer per run folder: ``<run dir>/.lock`` holds the PID, host and command of the process using it.

The lock itself is an exclusive ``flock`` on that file, which the kernel drops when the holder exits in any
way (kill -9 included): a lock file left behind by a dead process is stale by construction and is taken
over. The PID and host written into it only serve the message that names the holder.
"""
from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

LOCK_NAME = ".lock"


class RunLockedError(RuntimeError):
    """Another live process holds the run folder."""

    def __init__(self, run_dir: Path, holder: dict[str, Any]) -> None:
        self.run_dir = run_dir
        self.holder = holder
        since = holder.get("since")
        since_text = time.strftime(" since %Y-%m-%d %H:%M:%S UTC", time.gmtime(since)) if since else ""
        super().__init__(
            f"run folder {run_dir} is in use by process {holder.get('pid', '?')} on host {holder.get('host', '?')}"
            f"{since_text} ({holder.get('command', 'unknown command')}). Two trainers on one folder would corrupt "
            "its checkpoints and metrics.csv: wait for that process to finish, stop it, or choose another --run.dir.")


def _read_holder(path: Path) -> dict[str, Any]:
    try:
        holder = json.loads(path.read_text())
        return holder if isinstance(holder, dict) else {}
    except (OSError, ValueError):
        return {}


class RunLock:
    """``with RunLock(run_dir): ...`` or ``acquire()`` / ``release()``; raises RunLockedError when held."""

    def __init__(self, run_dir: str | os.PathLike) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> "RunLock":
        if self._fd is not None:
            return self
        self.run_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RunLockedError(self.run_dir, _read_holder(self.path)) from None
        info = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time(),
                "command": " ".join(sys.argv)[:500]}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)  # no stale holder left to read; the file itself stays (see module docstring)
        finally:
            os.close(fd)  # drops the flock

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __del__(self) -> None:
        try:
            self.release()
        except Exception:  # noqa: BLE001 - at interpreter exit the kernel drops the lock anyway
            pass


def lock_holder(run_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The holder of a run folder's lock (pid, host, since, command), or None when it is free."""
    path = Path(run_dir) / LOCK_NAME
    if not path.exists():
        return None
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _read_holder(path) or {"pid": "?", "host": "?"}
    finally:
        os.close(fd)
    return None
