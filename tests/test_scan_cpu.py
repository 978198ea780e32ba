"""What only the CPU scans have: the PyTorch scan's production chunk and loop threshold on long sequences,
memories of ~1000 steps in fp32 (PyTorch and native), a finite-difference gradient check through every
path, and the dispatch to them.

The cases every implementation shares (flags, edges, precisions, both directions) are in tests/test_scan.py.
"""
from __future__ import annotations

import pytest
import torch

from helpers.scan_cases import (
    ScanCase, check_against_reference, max_relative_error, outputs_and_grads, scan_inputs, tolerances, widened,
)
from kernels import cpu_native, cpu_scan, hgrn_scan
from kernels.cpu_scan import hgrn_scan_cpu
from kernels.reference import hgrn_scan_reference


@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
@pytest.mark.parametrize("complex_", [False, True], ids=["real", "complex"])
@pytest.mark.parametrize(
    "shape", [(3, 64, 4), (2, 65, 3), (2, 97, 7), (1, 200, 9), (2, 1031, 3)], ids=lambda s: "x".join(map(str, s))
)
def test_production_chunks_around_the_loop_threshold_and_many_chunks(shape, complex_, reverse, monkeypatch):
    monkeypatch.setenv("HGRN_CPU_NATIVE", "off")
    # kernels.cpu_scan as shipped: the loop up to LOOP_MAX_T = 64 steps, chunks of CHUNK = 32 with a tail above
    assert (cpu_scan.LOOP_MAX_T, cpu_scan.CHUNK) == (64, 32)
    case = ScanCase(*shape, complex_, complex_, True, reverse, seed=sum(shape), tol=tolerances(1e-10))
    check_against_reference(hgrn_scan_cpu, case)


@pytest.mark.parametrize("backend", ["torch", "native"])
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize("complex_", [False, True], ids=["real", "complex"])
def test_near_one_gates_long_sequence(complex_, reverse, backend, monkeypatch):
    """log_f about -1e-3 at T = 4096: memories of ~1000 steps, where a naive cumprod or bf16 gate fails, and
    128 chunks, so the carry between chunks is itself a chunked scan.

    Bound: 1e-5 relative L2, or the error of the obvious fp32 loop itself if that is larger. Over ~1000-step
    memories fp32 rounding alone reaches 1-2e-5 in the complex gradients of log_f and theta (measured: the
    sequential fp32 loop gives 1.95e-5), so no fp32 implementation can promise 1e-5 there; the fast path must
    not be worse than the loop."""
    if backend == "native" and not cpu_native.available():
        pytest.skip(f"native CPU kernels unavailable here: {cpu_native.status()}")
    monkeypatch.setenv("HGRN_CPU_NATIVE", "off" if backend == "torch" else "require")
    inputs = scan_inputs(ScanCase(2, 4096, 3, complex_, complex_, True, dtype=torch.float32, seed=3))
    with torch.no_grad():
        inputs["log_f"].uniform_(-2e-3, -5e-4)
        if complex_:
            inputs["theta"].mul_(1e-2)
    want = outputs_and_grads(hgrn_scan_reference, widened(inputs), reverse)
    fast = max_relative_error(outputs_and_grads(hgrn_scan_cpu, inputs, reverse), want)
    loop = max_relative_error(outputs_and_grads(hgrn_scan_reference, inputs, reverse), want)
    assert fast < max(1e-5, 1.25 * loop), (fast, loop)
    assert fast < 5e-5


@pytest.mark.parametrize("complex_", [False, True], ids=["real", "complex"])
def test_gradcheck(complex_, monkeypatch):
    monkeypatch.setenv("HGRN_CPU_NATIVE", "off")
    # chunks of 4 make a 13-step sequence take every path (chunks, recursive carries, tail) while staying
    # small enough for finite differences
    monkeypatch.setattr(cpu_scan, "CHUNK", 4)
    inputs = scan_inputs(ScanCase(2, 13, 3, complex_, complex_, True))
    args = [v for v in inputs.values() if v is not None]

    def fn(*leaves):
        it = iter(leaves)
        kw = {k: (next(it) if v is not None else None) for k, v in inputs.items()}
        fwd = hgrn_scan_cpu(kw["x"], kw["log_f"], kw["theta"], initial_state=kw["initial_state"], strategy="chunked")
        rev = hgrn_scan_cpu(
            kw["x"], kw["log_f"], kw["theta"], reverse=True, initial_state=kw["initial_state"], strategy="chunked"
        )
        return fwd, rev

    assert torch.autograd.gradcheck(fn, args, eps=1e-6, atol=1e-6)


def test_dispatch_can_force_the_reference(monkeypatch):
    inputs = scan_inputs(ScanCase(1, 90, 3))
    a = hgrn_scan(inputs["x"], inputs["log_f"], impl="reference")
    monkeypatch.setenv("HGRN_SCAN_IMPL", "cpu")
    b = hgrn_scan(inputs["x"], inputs["log_f"])
    assert torch.allclose(a, b, rtol=1e-12)
    monkeypatch.setenv("HGRN_SCAN_IMPL", "magic")
    with pytest.raises(ValueError, match="HGRN_SCAN_IMPL"):
        hgrn_scan(inputs["x"], inputs["log_f"])
