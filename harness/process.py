"""Child processes that die with their parent (Linux), so that killing a suite runner or the rank-0 trainer
never leaves an orphan training on a run folder."""
from __future__ import annotations

import ctypes
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1
# loaded here, in the parent, so that die_with_parent does nothing but a system call when it runs as a
# subprocess preexec_fn between fork and exec
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def die_with_parent(sig: int = signal.SIGKILL) -> bool:
    """Ask the kernel to send ``sig`` to this process when its parent dies; True where supported (Linux).

    Use it as a ``subprocess`` ``preexec_fn`` or call it in the child. If the parent is already gone, exits."""
    if _LIBC is None:
        return False
    parent = os.getppid()
    if _LIBC.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        return False
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)
    return True
