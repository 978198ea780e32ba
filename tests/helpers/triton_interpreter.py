"""A faster ``tl.associative_scan`` for the Triton interpreter, so the kernel tests fit their time budget.

Under TRITON_INTERPRET=1 Triton's interpreter calls the combine function once per element. ``fast_scan``
swaps in the same sequential left fold along the scan axis done one slice at a time (identical results,
about 10x faster). On a GPU, or with a Triton whose interpreter has no ``ScanOps.generic_scan``, it does
nothing.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np


def _slice_fold_scan(self, inputs):
    axis = self.axis
    datas = [arg.handle.data for arg in inputs]
    outs = [np.empty_like(d) for d in datas]

    def at(i: int) -> tuple:
        return (slice(None),) * axis + (i,)

    acc = tuple(self.to_tensor(d[at(0)], arg.dtype) for d, arg in zip(datas, inputs))
    for i in range(datas[0].shape[axis]):
        if i:
            cur = tuple(self.to_tensor(d[at(i)], arg.dtype) for d, arg in zip(datas, inputs))
            ret = self.combine_fn.fn(*acc, *cur)
            acc = ret if isinstance(ret, tuple) else (ret,)
        for o, a in zip(outs, acc):
            o[at(i)] = a.handle.data
    return [self.to_tensor(o, arg.dtype) for o, arg in zip(outs, inputs)]


@contextmanager
def fast_scan() -> Iterator[None]:
    """Within the block, the interpreter's associative scan folds whole slices."""
    from triton.runtime import interpreter

    scan_ops = getattr(interpreter, "ScanOps", None)
    if scan_ops is None or not hasattr(scan_ops, "generic_scan"):
        yield  # another Triton version: keep its own (slower) scan
        return
    original = scan_ops.generic_scan
    scan_ops.generic_scan = _slice_fold_scan
    try:
        yield
    finally:
        scan_ops.generic_scan = original
