"""Where the LRA data lives and what to tell the user when it is not there."""

from __future__ import annotations

import os
from pathlib import Path

from lra.data.errors import MissingDataError

ENV_VAR = "HGRN_DATA"


def resolve_root(root: str | os.PathLike | None = None) -> Path:
    """``root``, else ``$HGRN_DATA``, else ``./data`` (ARCHITECTURE.md section 3)."""
    if root is None or str(root) == "":
        root = os.environ.get(ENV_VAR) or "data"
    return Path(root).expanduser()


def prepare_command(task: str, root: Path, extra: str = "") -> str:
    """The command that makes ``task`` ready, e.g. ``python -m lra.prepare listops --root data``."""
    return f"python -m lra.prepare {task} --root {root}" + (f" {extra}" if extra else "")


def require(path: Path, task: str, root: Path, what: str | None = None, extra: str = "") -> Path:
    """Return ``path`` if it exists, else raise MissingDataError naming it and the fix."""
    if path.exists():
        return path
    command = prepare_command(task, root, extra)
    if not root.exists():
        raise MissingDataError(root, f"the data root does not exist; run `{command}` "
                               f"(or pass --data.root / set ${ENV_VAR})")
    hint = f"run `{command}`"
    if what:
        hint += f" ({what})"
    raise MissingDataError(path, hint)
