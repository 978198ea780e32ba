"""Every scan implementation against the float64 reference on one case table (tests/helpers/scan_cases.py).

``impl`` "cpu" is the chunked PyTorch scan (kernels/cpu_scan.py, native kernels off), "native" the compiled CPU
kernels (kernels/cpu_native.c; skipped where no C compiler builds them), "triton" the Triton kernels
(kernels/triton_scan.py): compiled on CUDA tensors when a GPU is present, otherwise run by the Triton
interpreter on CPU tensors. Both run with blocks of 8 steps, so at these sizes every path that long sequences
take still runs: several CPU chunks, the carry between them (itself chunked at T = 80) and a partial tail;
several Triton tiles, partial tiles and channel blocks, and (where the case says ``split``) the T-split with
its carry-in. Behaviour that belongs to one implementation (its production block sizes, long sequences,
compilation) is tested in test_scan_cpu.py and test_scan_triton.py.
"""
from __future__ import annotations

from functools import partial

import pytest
import torch

from helpers.scan_cases import (
    BIDIRECTIONAL_CASES, CASES, BidirectionalCase, ScanCase, check_against_reference, check_bidirectional,
)
from kernels import cpu_native, cpu_scan, hgrn_scan, hgrn_scan_bidirectional
from kernels.cpu_scan import hgrn_scan_cpu

IMPLS = ("cpu", "native", "triton")
BLOCK = 8  # time steps per CPU chunk or Triton tile here (production: CPU chunks of 32, Triton tiles of 16 or 32)


def implementation(impl: str, split: bool, request: pytest.FixtureRequest, bidirectional: bool = False):
    """(scan function, device) for ``impl`` with blocks of BLOCK steps; ``split``: Triton splits T into 3
    chunks (the carry-in path) instead of walking all of T in one program."""
    if impl in ("cpu", "native"):
        monkeypatch = request.getfixturevalue("monkeypatch")
        if impl == "native":
            if not cpu_native.available():
                pytest.skip(f"native CPU kernels unavailable here: {cpu_native.status()}")
            monkeypatch.setenv("HGRN_CPU_NATIVE", "require")
        else:
            # the PyTorch scan as dispatched (its own loop below LOOP_MAX_T steps, chunked above), thresholds
            # scaled down
            monkeypatch.setenv("HGRN_CPU_NATIVE", "off")
            monkeypatch.setattr(cpu_scan, "CHUNK", BLOCK)
            monkeypatch.setattr(cpu_scan, "LOOP_MAX_T", BLOCK)
        fn = partial(hgrn_scan_bidirectional, impl="cpu") if bidirectional else hgrn_scan_cpu
        return fn, torch.device("cpu")
    ts = request.getfixturevalue("triton_scan")
    tiles = ts.TritonScanConfig(block_t=BLOCK, block_d=8, chunks=3 if split else 1)
    fn = ts.hgrn_scan_bidirectional_triton if bidirectional else ts.hgrn_scan_triton
    return partial(fn, config=tiles), torch.device("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
@pytest.mark.parametrize("impl", IMPLS)
def test_scan_matches_reference(impl: str, case: ScanCase, request: pytest.FixtureRequest) -> None:
    fn, device = implementation(impl, case.split, request)
    check_against_reference(fn, case, device)


@pytest.mark.parametrize("case", BIDIRECTIONAL_CASES, ids=[c.id for c in BIDIRECTIONAL_CASES])
@pytest.mark.parametrize("impl", IMPLS)
def test_bidirectional_matches_reference(impl: str, case: BidirectionalCase, request: pytest.FixtureRequest) -> None:
    fn, device = implementation(impl, case.split, request, bidirectional=True)
    check_bidirectional(fn, case, device)


@pytest.mark.parametrize("impl", IMPLS)
def test_zero_forget_gate_is_identity_on_input(impl: str, request: pytest.FixtureRequest) -> None:
    """log_f = -inf (gate exactly 0) must give h = x, with finite gradients: no NaN from inf - inf."""
    fn, device = implementation(impl, True, request)
    x = torch.randn(2, 19, 4, device=device, requires_grad=True)
    log_f = torch.full((2, 19, 4), float("-inf"), device=device)
    for reverse in (False, True):
        h = fn(x, log_f, reverse=reverse)
        assert torch.equal(h, x)
        (gx,) = torch.autograd.grad(h.sum(), x)
        assert torch.equal(gx, torch.ones_like(x))


# -- the public entry point's checks, the same for every implementation -----------------------------------------
@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(x=torch.randn(4, 5), log_f=torch.randn(4, 5)), ValueError, r"x must be \(B, T, D\)"),
        (dict(x=torch.randn(2, 4, 5), log_f=torch.randn(2, 4, 6)), ValueError, "log_f must have the shape of x"),
        (dict(x=torch.randint(0, 3, (2, 4, 5)), log_f=torch.randn(2, 4, 5)), TypeError, "x has dtype torch.int64"),
        (dict(x=torch.randn(2, 4, 5), log_f=torch.randn(2, 4, 5, dtype=torch.complex64)), TypeError, "log_f must be real"),
        (dict(x=torch.randn(2, 4, 5), log_f=torch.randn(2, 4, 5), theta=torch.randn(4)), ValueError, r"theta must be a \(D,\)"),
        (dict(x=torch.randn(2, 4, 5), log_f=torch.randn(2, 4, 5), initial_state=torch.randn(5)), ValueError, r"initial_state must be \(B, D\)"),
        (dict(x=torch.randn(2, 4, 5), log_f=torch.randn(2, 4, 5), initial_state=torch.randn(2, 5, dtype=torch.complex64)),
         TypeError, "initial_state is complex but the scan is real"),
    ],
)
def test_bad_input_gives_clear_error(kwargs, error, message):
    with pytest.raises(error, match=message):
        hgrn_scan(**kwargs)
