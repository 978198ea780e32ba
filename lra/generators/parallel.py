"""Run independent, seeded chunks of work on several CPU cores with a tqdm progress bar.

Every chunk carries its own seed, so the output does not depend on the number of workers.
Results come back in chunk order (``imap``), which keeps the written files deterministic.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from tqdm import tqdm

T = TypeVar("T")


def default_workers() -> int:
    """CPU cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def _context() -> mp.context.BaseContext:
    # fork is cheapest (no re-import); fall back to spawn where it does not exist.
    methods = mp.get_all_start_methods()
    return mp.get_context("fork" if "fork" in methods else "spawn")


def run_chunks(
    fn: Callable[[Any], T],
    tasks: Iterable[Any],
    *,
    workers: int | None,
    total: int | None,
    count: Callable[[T], int],
    desc: str,
    unit: str,
    progress: bool = True,
) -> Iterator[T]:
    """Yield ``fn(task)`` for every task, in order; the bar advances by ``count(result)``."""
    workers = default_workers() if workers is None else max(1, workers)
    tasks = list(tasks)
    with tqdm(total=total, desc=desc, unit=unit, disable=not progress, dynamic_ncols=True) as bar:
        if workers == 1 or len(tasks) <= 1:
            for task in tasks:
                result = fn(task)
                bar.update(count(result))
                yield result
            return
        with _context().Pool(processes=min(workers, len(tasks))) as pool:
            for result in pool.imap(fn, tasks):
                bar.update(count(result))
                yield result
