"""One case table for every scan implementation, and the check that runs a case against the oracle.

As fla tests each kernel against its naive op, every implementation of ``hgrn_scan`` (the chunked CPU scan,
the Triton kernels) runs the same ``CASES`` in tests/test_scan.py and is compared with
``kernels.reference.hgrn_scan_reference``, a sequential loop evaluated in float64 on exactly the (rounded)
inputs the implementation saw. Outputs and every gradient are compared by relative L2 error.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
from torch.nn import functional as F

from kernels.reference import hgrn_scan_bidirectional_reference, hgrn_scan_reference

NAMES = ("x", "log_f", "theta", "initial_state")


@dataclass(frozen=True)
class ScanCase:
    """One scan: shape, which arguments are complex or present, direction, storage dtype, tolerances."""

    B: int
    T: int
    D: int
    x_complex: bool = False
    theta: bool = False  # a phase makes the scan complex even for a real x
    h0: bool = False  # an initial state (complex when x is)
    reverse: bool = False
    dtype: torch.dtype = torch.float64  # storage dtype of the real inputs; a complex x has the matching width
    gate_shift: float = 1.0  # log_f = logsigmoid(N(0, 1) + shift): a large shift gives gates near 1
    seed: int = 0
    split: bool = False  # an implementation that can also split T into chunks scanned in parallel (Triton's
    #                      T-split with its carry-in) takes that path here; the others ignore it
    # largest relative L2 error of h and of each gradient, by name ("h", "x", "log_f", "theta", "initial_state")
    tol: dict[str, float] = field(default_factory=lambda: dict.fromkeys(("h",) + NAMES, 1e-12))

    @property
    def id(self) -> str:
        kind = "complex" if self.x_complex else "real"
        flags = "".join(("+theta" if self.theta else "", "+h0" if self.h0 else ""))
        dtype = str(self.dtype).removeprefix("torch.")
        return f"{self.B}x{self.T}x{self.D}-{kind}{flags}-{'rev' if self.reverse else 'fwd'}-{dtype}" + (
            f"-shift{self.gate_shift:g}" if self.gate_shift != 1.0 else "") + ("-split" if self.split else "")


def tolerances(h: float, x: float | None = None, log_f: float | None = None, theta: float | None = None,
               initial_state: float | None = None) -> dict[str, float]:
    """Per-tensor bounds; a gradient left out gets the bound of h."""
    given = {"x": x, "log_f": log_f, "theta": theta, "initial_state": initial_state}
    return {"h": h, **{k: h if v is None else v for k, v in given.items()}}


def _case_table() -> list[ScanCase]:
    cases = []
    # float64, every combination of complex x, phase, initial state and direction (exact up to reassociation)
    for x_complex, theta in ((False, False), (False, True), (True, False), (True, True)):
        for h0 in (False, True):
            for reverse in (False, True):
                cases.append(ScanCase(2, 29, 11, x_complex, theta, h0, reverse, split=h0 ^ reverse ^ theta))
    # float64 edges, real and complex: T = 1, shorter than a block, exactly two blocks, and long enough for
    # the carries between the 10 blocks to be blocked themselves (tests/test_scan.py runs blocks of 8 steps)
    for i, (B, T, D) in enumerate([(1, 1, 1), (2, 1, 3), (2, 7, 5), (1, 16, 8), (1, 80, 7)]):
        for reverse in (False, True):
            cplx = (i + reverse) % 2 == 1
            cases.append(ScanCase(B, T, D, cplx, cplx, True, reverse, seed=T + D, split=cplx))
    # storage precisions: fp32 accumulation, h in the input's dtype, each gradient in its input's dtype.
    # The oracle sees the same rounded inputs, so these bound the implementation's own rounding: bf16 output
    # rounding alone is ~2e-3; dlog_f sums products of two rounded tensors. Shift 6: gates near 1.
    bf16 = tolerances(5e-3, log_f=1e-2, theta=1e-2)
    cases += [
        ScanCase(2, 45, 12, h0=True, dtype=torch.bfloat16, gate_shift=0.0, tol=bf16),
        ScanCase(2, 45, 12, h0=True, reverse=True, dtype=torch.bfloat16, gate_shift=6.0, tol=bf16, split=True),
        ScanCase(2, 45, 12, theta=True, h0=True, dtype=torch.bfloat16, gate_shift=2.0, tol=bf16),  # complex64 h
        ScanCase(2, 45, 12, h0=True, dtype=torch.float16, gate_shift=2.0, tol=tolerances(1e-3, log_f=2e-3)),
        ScanCase(2, 45, 12, h0=True, reverse=True, dtype=torch.float32, gate_shift=6.0, tol=tolerances(2e-6)),
        ScanCase(2, 45, 12, True, True, h0=True, dtype=torch.float32, gate_shift=6.0, tol=tolerances(2e-6), split=True),
    ]
    return cases


@dataclass(frozen=True)
class BidirectionalCase:
    """A forward plus a reverse scan of the same x and log_f, each direction with its own phase (or none)."""

    x_complex: bool
    theta_fwd: bool
    theta_rev: bool
    grad: bool = True  # False: under no_grad (the Triton reverse pass then adds into the forward output)
    split: bool = False  # as ScanCase.split
    B: int = 2
    T: int = 29
    D: int = 10

    @property
    def id(self) -> str:
        phases = "+".join(n for n, on in (("theta_fwd", self.theta_fwd), ("theta_rev", self.theta_rev)) if on)
        return f"{'complex' if self.x_complex else 'real'}{'+' + phases if phases else ''}" + (
            "" if self.grad else "-no_grad") + ("-split" if self.split else "")


BIDIRECTIONAL_CASES = [
    BidirectionalCase(False, False, False),
    BidirectionalCase(False, False, False, grad=False, split=True),
    BidirectionalCase(True, True, True, split=True),
    BidirectionalCase(False, True, False),  # real x, only one direction complex
    BidirectionalCase(False, False, True, grad=False, split=True),
]


CASES = _case_table()


def scan_inputs(case: ScanCase, device: torch.device | str = "cpu") -> dict[str, torch.Tensor | None]:
    """Seeded leaf tensors for ``case`` (drawn in float64, then stored in the case's dtype), requiring grad."""
    gen = torch.Generator().manual_seed(case.seed)
    B, T, D = case.B, case.T, case.D

    def randn(*shape: int, cplx: bool = False) -> torch.Tensor:
        real = torch.randn(*shape, generator=gen, dtype=torch.float64)
        return torch.complex(real, torch.randn(*shape, generator=gen, dtype=torch.float64)) if cplx else real

    real = case.dtype
    cplx = {torch.float32: torch.complex64, torch.float64: torch.complex128}.get(real)
    if case.x_complex and cplx is None:
        raise ValueError(f"a complex x is stored as complex64 or complex128, not as {real}")
    inputs = {
        "x": randn(B, T, D, cplx=case.x_complex).to(cplx if case.x_complex else real),
        "log_f": F.logsigmoid(randn(B, T, D) + case.gate_shift).to(real),
        "theta": randn(D).to(real) if case.theta else None,
        "initial_state": randn(B, D, cplx=case.x_complex).to(cplx if case.x_complex else real) if case.h0 else None,
    }
    return {k: None if v is None else v.to(device).requires_grad_() for k, v in inputs.items()}


def widened(inputs: dict[str, torch.Tensor | None]) -> dict[str, torch.Tensor | None]:
    """The same values in float64 / complex128, as fresh leaves (what the oracle is given)."""
    return {k: None if v is None else v.detach().to(torch.complex128 if v.is_complex() else torch.float64)
            .requires_grad_() for k, v in inputs.items()}


def outputs_and_grads(fn: Callable, inputs: dict, reverse: bool, grad_h: torch.Tensor | None = None,
                      seed: int = 1) -> list[torch.Tensor]:
    """[h, grad of each present input] for the output gradient ``grad_h`` (seeded random if not given)."""
    h = fn(inputs["x"], inputs["log_f"], inputs["theta"], reverse=reverse, initial_state=inputs["initial_state"])
    if grad_h is None:
        grad_h = random_like(h, seed)
    return [h.detach()] + _grads(h, inputs, grad_h)


def random_like(h: torch.Tensor, seed: int) -> torch.Tensor:
    """Seeded normal values of h's shape, drawn in float64 (complex when h is), stored in h's dtype."""
    g = torch.Generator().manual_seed(seed)
    out = torch.randn(h.shape, generator=g, dtype=torch.float64)
    if h.is_complex():
        out = torch.complex(out, torch.randn(h.shape, generator=g, dtype=torch.float64))
    return out.to(device=h.device, dtype=h.dtype)


def _grads(h: torch.Tensor, inputs: dict, grad_h: torch.Tensor) -> list[torch.Tensor]:
    leaves = [v for v in inputs.values() if v is not None]
    return [g.detach() for g in torch.autograd.grad(h, leaves, grad_h.to(device=h.device, dtype=h.dtype))]


def relative_error(got: torch.Tensor, want: torch.Tensor) -> float:
    """||got - want|| / ||want|| in float64 (fla's measure; over long memories the worst element of even a
    sequential fp32 loop is off by ~2e-5 while the whole tensor is within ~1e-6)."""
    wide = torch.complex128 if got.is_complex() or want.is_complex() else torch.float64
    got, want = got.to(wide), want.to(wide)
    return (torch.linalg.vector_norm(got - want) / torch.linalg.vector_norm(want).clamp_min(1e-300)).item()


def max_relative_error(got: list[torch.Tensor], want: list[torch.Tensor]) -> float:
    """Largest ``relative_error`` over pairs of tensors."""
    return max(relative_error(a, b) for a, b in zip(got, want, strict=True))


def check_against_reference(fn: Callable, case: ScanCase, device: torch.device | str = "cpu") -> None:
    """Run ``case`` through ``fn`` and the float64 oracle; assert dtypes, shapes and every tolerance."""
    inputs = scan_inputs(case, device)
    h = fn(inputs["x"], inputs["log_f"], inputs["theta"], reverse=case.reverse, initial_state=inputs["initial_state"])
    complex_out = case.x_complex or case.theta
    want_dtype = {torch.float32: torch.complex64, torch.float64: torch.complex128}.get(case.dtype, torch.complex64) \
        if complex_out else case.dtype
    assert h.dtype == want_dtype and h.shape == (case.B, case.T, case.D), (h.dtype, h.shape)
    # one output gradient, rounded to h's dtype, for both (so its rounding is no error of the implementation)
    grad_h = random_like(h, case.seed + 1)
    names = ["h"] + [k for k, v in inputs.items() if v is not None]
    got = [h.detach()] + _grads(h, inputs, grad_h)
    want = outputs_and_grads(hgrn_scan_reference, widened(inputs), case.reverse, grad_h)
    errors = {}
    for name, a, b in zip(names, got, want, strict=True):
        if name != "h":
            assert a.dtype == inputs[name].dtype, (name, a.dtype, inputs[name].dtype)
        errors[name] = relative_error(a, b)
    too_large = {k: e for k, e in errors.items() if not e <= case.tol[k]}  # `not <=` also catches NaN
    assert not too_large, f"{case.id}: relative L2 errors above {case.tol}: {too_large}"


def check_bidirectional(fn: Callable, case: BidirectionalCase, device: torch.device | str = "cpu",
                        tol: float = 1e-12) -> None:
    """``fn(x, log_f, theta_fwd, theta_rev)`` against the float64 reference (float64 inputs), with gradients
    when ``case.grad``."""
    fwd = ScanCase(case.B, case.T, case.D, case.x_complex, case.theta_fwd, seed=3)
    inputs = scan_inputs(fwd, device)
    x, log_f, theta_fwd = inputs["x"], inputs["log_f"], inputs["theta"]
    theta_rev = scan_inputs(ScanCase(case.B, case.T, case.D, theta=case.theta_rev, seed=4), device)["theta"]
    args = [x, log_f, theta_fwd, theta_rev]
    want = hgrn_scan_bidirectional_reference(*args)
    if not case.grad:
        with torch.no_grad():
            got = fn(*args)
        assert got.dtype == want.dtype and relative_error(got, want) <= tol, (got.dtype, relative_error(got, want))
        return
    got = fn(*args)
    assert got.dtype == want.dtype
    grad_h = random_like(want, 9)
    present = [a for a in args if a is not None]
    got_grads = torch.autograd.grad(got, present, grad_h)
    want_grads = torch.autograd.grad(want, present, grad_h)
    names = [n for n, a in zip(("x", "log_f", "theta_fwd", "theta_rev"), args) if a is not None]
    errors = {n: relative_error(a, b) for n, a, b in zip(["h"] + names, [got, *got_grads], [want, *want_grads])}
    assert all(e <= tol for e in errors.values()), f"{case.id}: relative L2 errors above {tol}: {errors}"
