"""Where the image datasets live (docs/ARCHITECTURE.md section 3): ``--data.init_args.root``, else ``$HGRN_DATA``,
else ``./data``."""
from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "HGRN_DATA"


def resolve_root(root: str | os.PathLike | None = None) -> Path:
    """``root`` if given, else ``$HGRN_DATA``, else ``./data``."""
    if root is None or str(root) == "":
        root = os.environ.get(ENV_VAR) or "data"
    return Path(root).expanduser()
