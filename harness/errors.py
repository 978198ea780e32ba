"""User-facing errors at the command line: one clear paragraph on stderr instead of a traceback.

Missing or malformed data, bad options, a locked run folder and a diverged loss are the user's to fix, and
their messages already say what to do; a traceback only buries that. ``--debug`` (taken off the command
line here) or ``HGRN_DEBUG=1`` brings the traceback back. Other exceptions (bugs) always show it.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

DEBUG_ENV = "HGRN_DEBUG"
DEBUG_FLAG = "--debug"
# FileNotFoundError covers the data modules' MissingDataError (harness/datasets.py); ValueError their
# MalformedDataError, option checks and constructor argument errors; FloatingPointError a diverged loss.
USER_ERRORS: tuple[type[BaseException], ...] = (FileNotFoundError, NotADirectoryError, PermissionError, ValueError,
                                                FloatingPointError)


def debug_enabled() -> bool:
    return os.environ.get(DEBUG_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def user_errors() -> tuple[type[BaseException], ...]:
    from .lock import RunLockedError

    return USER_ERRORS + (RunLockedError,)


def paragraph(err: BaseException) -> str:
    """``error: <message>`` as one paragraph (one line: terminals wrap it), then how to see the traceback."""
    text = " ".join(str(err).split()) or type(err).__name__
    return f"error: {text}\n(for the traceback, run again with {DEBUG_FLAG} or {DEBUG_ENV}=1)"


def run_main(main: Callable[[list[str]], Any], argv: list[str] | None = None) -> int:
    """Call ``main(argv)`` (default: ``sys.argv[1:]``); user errors become a paragraph and exit status 1.

    ``--debug`` is removed from the arguments (also from ``sys.argv``, which DDP re-launches) and turned into
    ``HGRN_DEBUG=1``, which child processes inherit."""
    args = list(sys.argv[1:] if argv is None else argv)
    if DEBUG_FLAG in args:
        args = [a for a in args if a != DEBUG_FLAG]
        os.environ[DEBUG_ENV] = "1"
        if argv is None:
            sys.argv[1:] = args
    try:
        main(args)
    except user_errors() as err:
        if debug_enabled():
            raise
        sys.stdout.flush()
        print(paragraph(err), file=sys.stderr, flush=True)
        return 1
    return 0
