"""What to tell the user when the LRA data is not there: the command that makes it."""

from __future__ import annotations

from pathlib import Path

from harness.datasets import ENV_VAR, MissingDataError


def prepare_command(task: str, root: Path, extra: str = "") -> str:
    """The command that makes ``task`` ready, e.g. ``python -m lra.prepare listops --root data``."""
    return f"python -m lra.prepare {task} --root {root}" + (f" {extra}" if extra else "")


def require(path: Path, task: str, root: Path, extra: str = "") -> Path:
    """Return ``path`` if it exists, else raise MissingDataError naming it and the fix."""
    if path.exists():
        return path
    command = prepare_command(task, root, extra)
    if not root.exists():
        raise MissingDataError(root, f"the data root does not exist; run `{command}` "
                               f"(or pass --data.init_args.root / set ${ENV_VAR})")
    raise MissingDataError(path, f"run `{command}`")
