"""The Triton HGRN scan against the float64 reference: outputs and every gradient.

Without a CUDA GPU the kernels run under the Triton interpreter (TRITON_INTERPRET=1, set below before the
kernels are first imported); with one, the same tests run compiled on CUDA tensors. Shapes are small and
odd, and tiles are made small through TritonScanConfig so that several tiles, partial tiles, partial
channel blocks and the T-split (several chunks, several carry-in blocks) all run.

Under the interpreter `tl.associative_scan` calls the combine function once per element; a module
fixture swaps in the same sequential left fold done one row at a time (identical semantics, ~10x faster)
so the file stays within its time budget. A last test compiles kernel variants for sm_90 with Triton's
bundled ptxas, the CPU-side evidence that the kernels also build for a real GPU.
"""
from __future__ import annotations

import importlib
import os
import subprocess
import sys
import textwrap

import pytest
import torch

CUDA = torch.cuda.is_available()
if not CUDA:
    os.environ["TRITON_INTERPRET"] = "1"  # must precede the first import of the kernels

import numpy as np  # noqa: E402

import kernels  # noqa: E402
from kernels.reference import hgrn_scan_bidirectional_reference, hgrn_scan_reference  # noqa: E402

DEVICE = torch.device("cuda" if CUDA else "cpu")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _triton_scan():
    """kernels.triton_scan, re-decorated for the interpreter if something imported it without."""
    import kernels.triton_scan as ts
    import kernels.triton_scan_kernels as tk

    if not CUDA and not ts._is_interpreted():
        importlib.reload(tk)
    return ts


TS = _triton_scan()
C = TS.TritonScanConfig


def _row_fold_scan(self, inputs):
    # Same sequential fold along the axis as Triton's interpreter, one slice at a time.
    axis = self.axis
    datas = [arg.handle.data for arg in inputs]
    outs = [np.empty_like(d) for d in datas]

    def at(i):
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


@pytest.fixture(autouse=True, scope="module")
def _fast_interpreter_scan():
    if CUDA:
        yield
        return
    from triton.runtime import interpreter

    scan_ops = getattr(interpreter, "ScanOps", None)
    if scan_ops is None or not hasattr(scan_ops, "generic_scan"):
        yield  # another Triton version: keep its own (slower) scan
        return
    original = scan_ops.generic_scan
    scan_ops.generic_scan = _row_fold_scan
    try:
        yield
    finally:
        scan_ops.generic_scan = original


# ---------------------------------------------------------------------------------------------------------
# Helpers


def _inputs(B, T, D, *, cplx=False, theta=False, h0=False, dtype=torch.float64, gate_bias=1.0, seed=0):
    gen = torch.Generator().manual_seed(seed)
    real = torch.float64 if dtype in (torch.float64, torch.complex128) else torch.float32

    def randn(*shape, dt=real):
        return torch.randn(*shape, generator=gen, dtype=dt)

    x = randn(B, T, D, dt=torch.complex128) if cplx else randn(B, T, D)
    log_f = torch.nn.functional.logsigmoid(randn(B, T, D) + gate_bias)
    th = randn(D) if theta else None
    state = (randn(B, D, dt=torch.complex128) if cplx else randn(B, D)) if h0 else None
    if dtype not in (torch.float64, torch.complex128):
        x = x.to(torch.complex64 if cplx else dtype)
        log_f = log_f.to(dtype if dtype != torch.complex64 else torch.float32)
        th = th.float() if th is not None else None
        state = state.to(torch.complex64 if cplx else torch.float32) if state is not None else None
    return [t.to(DEVICE).requires_grad_() if t is not None else None for t in (x, log_f, th, state)]


def _loss(out, weight):
    # A real loss whose gradient with respect to out is `weight` (PyTorch's conjugate convention).
    return (out * weight.conj()).real.sum() if out.is_complex() else (out * weight).sum()


def _grads(out, weight, args):
    present = [a for a in args if a is not None]
    got = torch.autograd.grad(_loss(out, weight), present)
    it = iter(got)
    return [next(it) if a is not None else None for a in args]


def _rel(a, b):
    a, b = a.detach().to(torch.complex128 if a.is_complex() or b.is_complex() else torch.float64), b.detach()
    b = b.to(a.dtype)
    return ((a - b).abs().norm() / b.abs().norm().clamp_min(1e-30)).item()


def _compare(got_out, ref_out, got_grads, ref_grads, names, tol_out, tol_grad):
    assert got_out.dtype == ref_out.dtype, (got_out.dtype, ref_out.dtype)
    assert got_out.shape == ref_out.shape
    assert _rel(got_out, ref_out) <= tol_out, ("out", _rel(got_out, ref_out))
    for name, g, r in zip(names, got_grads, ref_grads):
        if r is None:
            continue
        assert g is not None, name
        assert g.dtype == r.dtype and g.shape == r.shape, (name, g.dtype, r.dtype)
        assert torch.isfinite(torch.view_as_real(g.resolve_conj()) if g.is_complex() else g).all(), name
        tol = tol_grad[name] if isinstance(tol_grad, dict) else tol_grad
        assert _rel(g, r) <= tol, (name, _rel(g, r))


NAMES = ("x", "log_f", "theta", "initial_state")
SMALL = C(block_t=8, block_d=8, chunks=1)
SPLIT = C(block_t=8, block_d=8, chunks=3)


def _run_causal(B, T, D, *, cplx, theta, h0, reverse, cfg, seed=0, dtype=torch.float64, tol=1e-12,
                gate_bias=1.0):
    args = _inputs(B, T, D, cplx=cplx, theta=theta, h0=h0, dtype=dtype, seed=seed, gate_bias=gate_bias)
    x, log_f, th, state = args
    out = TS.hgrn_scan_triton(x, log_f, th, reverse=reverse, initial_state=state, config=cfg)
    ref = hgrn_scan_reference(x, log_f, th, reverse=reverse, initial_state=state)
    weight = torch.randn(ref.shape, dtype=ref.dtype, generator=torch.Generator().manual_seed(seed + 1))
    weight = weight.to(DEVICE)
    _compare(out, ref, _grads(out, weight, args), _grads(ref, weight, args), NAMES, tol, tol)


# ---------------------------------------------------------------------------------------------------------
# Causal scans in float64 (exact up to reassociation) over the flag combinations and both T layouts


@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
@pytest.mark.parametrize("h0", [False, True], ids=["zero", "h0"])
@pytest.mark.parametrize(
    "cplx,theta", [(False, False), (False, True), (True, False), (True, True)],
    ids=["real", "real+theta", "complex", "complex+theta"],
)
def test_causal_matches_reference(cplx, theta, h0, reverse):
    # Alternate one tile walk and the T-split so each flag combination meets one of them cheaply.
    cfg = SPLIT if (h0 ^ reverse ^ theta) else SMALL
    _run_causal(2, 29, 11, cplx=cplx, theta=theta, h0=h0, reverse=reverse, cfg=cfg)


@pytest.mark.parametrize(
    "B,T,D,cfg",
    [
        (2, 1, 5, SMALL),  # T = 1
        (1, 5, 3, C(block_t=8, block_d=4)),  # T shorter than one tile, D not a multiple of the block
        (1, 16, 8, SMALL),  # T an exact multiple of the tile
        (1, 16, 1, C(block_t=4, block_d=2, chunks=4)),  # chunks of exactly one tile each, D = 1
        (1, 70, 6, C(block_t=4, block_d=8, chunks=9, carry_block=2)),  # carry-in folds several blocks
        (3, 23, 7, C(block_t=4, block_d=4, chunks=2)),  # last chunk partial
    ],
    ids=["T1", "T<tile", "T=tile*k", "chunk=tile", "carry-blocks", "last-chunk-partial"],
)
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
def test_shapes_and_splits(B, T, D, cfg, reverse):
    _run_causal(B, T, D, cplx=False, theta=True, h0=True, reverse=reverse, cfg=cfg, seed=T + D)


def test_empty_sequence_keeps_shape_and_dtype():
    x, log_f, th, _ = _inputs(2, 0, 3, theta=True)
    out = TS.hgrn_scan_triton(x, log_f, th)
    assert out.shape == (2, 0, 3) and out.dtype == torch.complex128


def test_default_plan_real_and_complex():
    # The production tiles (BT=32/16, BD=64/32), several tiles in T, D not a multiple of the block.
    _run_causal(2, 70, 40, cplx=False, theta=False, h0=True, reverse=False, cfg=None)
    _run_causal(1, 45, 40, cplx=True, theta=True, h0=True, reverse=True, cfg=None)


# ---------------------------------------------------------------------------------------------------------
# Bidirectional


@pytest.mark.parametrize(
    "cplx,theta_fwd,theta_rev,cfg,grad",
    [
        (False, False, False, SMALL, True),
        (False, False, False, SPLIT, False),  # inference: the reverse pass adds in place
        (True, True, True, SPLIT, True),
        (False, True, False, SMALL, True),  # real x, only one direction complex
        (False, False, True, SPLIT, False),
    ],
    ids=["real", "real-nograd-split", "complex-both-split", "mixed-fwd", "mixed-rev-nograd-split"],
)
def test_bidirectional_matches_reference(cplx, theta_fwd, theta_rev, cfg, grad):
    B, T, D = 2, 29, 10
    x, log_f, th_f, _ = _inputs(B, T, D, cplx=cplx, theta=theta_fwd, seed=3)
    th_r = _inputs(B, T, D, theta=theta_rev, seed=4)[2]
    args = [x, log_f, th_f, th_r]
    ref = hgrn_scan_bidirectional_reference(x, log_f, th_f, th_r)
    if not grad:
        with torch.no_grad():
            out = TS.hgrn_scan_bidirectional_triton(x, log_f, th_f, th_r, config=cfg)
        assert out.dtype == ref.dtype and _rel(out, ref) <= 1e-12
        return
    out = TS.hgrn_scan_bidirectional_triton(x, log_f, th_f, th_r, config=cfg)
    weight = torch.randn(ref.shape, dtype=ref.dtype, generator=torch.Generator().manual_seed(9)).to(DEVICE)
    _compare(out, ref, _grads(out, weight, args), _grads(ref, weight, args),
             ("x", "log_f", "theta_fwd", "theta_rev"), 1e-12, 1e-12)


def test_public_entry_points_dispatch_to_triton():
    x, log_f, th, state = _inputs(1, 19, 9, theta=True, h0=True, seed=5)
    out = kernels.hgrn_scan(x, log_f, th, initial_state=state, impl="triton")
    assert _rel(out, hgrn_scan_reference(x, log_f, th, initial_state=state)) <= 1e-12
    out = kernels.hgrn_scan_bidirectional(x, log_f, th, None, impl="triton")
    assert _rel(out, hgrn_scan_bidirectional_reference(x, log_f, th, None)) <= 1e-12


def test_lazy_conjugate_and_strided_inputs():
    # A conjugate view (conj bit set) and a non-contiguous log_f must be read as their values.
    x, log_f, th, state = _inputs(2, 13, 6, cplx=True, theta=True, h0=True, seed=8)
    xc = x.conj()
    log_f_t = log_f.detach().transpose(0, 1).contiguous().transpose(0, 1).requires_grad_()
    assert xc.is_conj() and not log_f_t.is_contiguous()
    args = [x, log_f_t, th, state]
    out = TS.hgrn_scan_triton(xc, log_f_t, th, initial_state=state.conj(), config=SMALL)
    ref = hgrn_scan_reference(xc, log_f_t, th, initial_state=state.conj())
    weight = torch.randn(ref.shape, dtype=ref.dtype, generator=torch.Generator().manual_seed(2)).to(DEVICE)
    _compare(out, ref, _grads(out, weight, args), _grads(ref, weight, args), NAMES, 1e-12, 1e-12)


# ---------------------------------------------------------------------------------------------------------
# Storage precisions: fp32 accumulation, output in the input dtype, gradients in each input's dtype


def _low_precision_case(dtype, cplx, theta, gate_bias, cfg, tol_out, tol_grad):
    B, T, D = 2, 45, 12
    args = _inputs(B, T, D, cplx=cplx, theta=theta, h0=True, dtype=dtype, gate_bias=gate_bias, seed=7)
    x, log_f, th, state = args
    out = TS.hgrn_scan_triton(x, log_f, th, initial_state=state, config=cfg)
    assert out.dtype == (torch.complex64 if (cplx or theta) else dtype)
    # The reference sees exactly the rounded inputs the kernel saw, in float64.
    wide = [a.detach().to(torch.complex128 if a.is_complex() else torch.float64).requires_grad_()
            if a is not None else None for a in args]
    ref = hgrn_scan_reference(wide[0], wide[1], wide[2], initial_state=wide[3])
    gen = torch.Generator().manual_seed(11)
    weight = torch.randn(ref.shape, dtype=out.dtype if out.is_complex() else torch.float32, generator=gen)
    weight = weight.to(out.dtype).to(DEVICE)  # the gradient the kernel receives is in out's dtype
    got = _grads(out, weight, args)
    exp = _grads(ref, weight.to(ref.dtype), wide)
    assert _rel(out, ref) <= tol_out, _rel(out, ref)
    for name, g, r, a in zip(NAMES, got, exp, args):
        if a is None:
            continue
        assert g.dtype == a.dtype, (name, g.dtype, a.dtype)
        assert _rel(g, r) <= tol_grad[name], (name, _rel(g, r))


@pytest.mark.parametrize("gate_bias", [0.0, 6.0], ids=["N(0,1)-gates", "near-1-gates"])
def test_bf16_against_float64_on_the_same_rounded_inputs(gate_bias):
    # Target: rel-L2 <= 5e-3 for out and dx (bf16 output rounding ~2e-3), <= 1e-2 for dlog_f.
    tol = {"x": 5e-3, "log_f": 1e-2, "theta": 1e-2, "initial_state": 5e-3}
    _low_precision_case(torch.bfloat16, False, False, gate_bias, SPLIT if gate_bias else SMALL, 5e-3, tol)


def test_bf16_real_input_with_phase_and_fp16():
    tol = {"x": 5e-3, "log_f": 1e-2, "theta": 1e-2, "initial_state": 5e-3}
    _low_precision_case(torch.bfloat16, False, True, 2.0, SMALL, 5e-3, tol)  # complex64 output, fp32 acc
    tol16 = {"x": 1e-3, "log_f": 2e-3, "theta": 2e-3, "initial_state": 1e-3}
    _low_precision_case(torch.float16, False, False, 2.0, SMALL, 1e-3, tol16)


@pytest.mark.parametrize("cplx", [False, True], ids=["float32", "complex64"])
def test_fp32_accuracy(cplx):
    tol = {"x": 2e-6, "log_f": 2e-6, "theta": 2e-6, "initial_state": 2e-6}
    cfg = SPLIT if cplx else SMALL
    _low_precision_case(torch.complex64 if cplx else torch.float32, cplx, cplx, 6.0, cfg, 2e-6, tol)


# ---------------------------------------------------------------------------------------------------------
# Errors


def test_clear_errors_on_bad_input(monkeypatch):
    x, log_f, _, _ = _inputs(1, 4, 3, seed=1)
    with pytest.raises(TypeError, match="initial_state is complex"):
        TS.hgrn_scan_triton(x, log_f, initial_state=torch.zeros(1, 3, dtype=torch.complex64, device=DEVICE))
    with pytest.raises(ValueError, match="power of two"):
        TS.hgrn_scan_triton(x, log_f, config=C(block_t=6))
    with pytest.raises(ValueError, match="theta must be"):
        TS.hgrn_scan_triton(x, log_f, torch.zeros(4, device=DEVICE))
    if not CUDA:
        # Outside the interpreter, CPU tensors must be refused with a pointer to the alternatives.
        monkeypatch.setattr(TS, "_is_interpreted", lambda: False)
        with pytest.raises(RuntimeError, match="needs CUDA tensors"):
            TS.hgrn_scan_triton(x, log_f)


# ---------------------------------------------------------------------------------------------------------
# GPU-only: offsets past 2^31 elements


@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
def test_int64_offsets_past_2_31_elements():
    B, T, D = 2, (1 << 20) + 3, 1040  # 2.18e9 elements: int32 element offsets would wrap
    free, _ = torch.cuda.mem_get_info()
    if free < 24 * 2**30:
        pytest.skip("needs 24 GiB of free GPU memory")
    gen = torch.Generator(device="cuda").manual_seed(0)
    x = torch.randn(B, T, D, device="cuda", dtype=torch.bfloat16, generator=gen)
    log_f = torch.randn(B, T, D, device="cuda", dtype=torch.bfloat16, generator=gen)
    log_f = torch.nn.functional.logsigmoid(log_f.add_(1.0))
    with torch.no_grad():
        out = TS.hgrn_scan_triton(x, log_f)
        # The last 256 steps of the last batch row, restarted from the kernel's own state before them.
        t0 = T - 257
        ref = hgrn_scan_reference(x[1:, t0 + 1:].float(), log_f[1:, t0 + 1:].float(),
                                  initial_state=out[1:, t0].float())
    assert _rel(out[1:, t0 + 1:].float(), ref) <= 5e-3


# ---------------------------------------------------------------------------------------------------------
# CPU-side evidence that the kernels build for a GPU


_AOT_SCRIPT = textwrap.dedent(
    """
    import os, re, subprocess, sys, tempfile
    import triton, triton.language as tl
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource
    import kernels.triton_scan_kernels as K

    ptxas = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "ptxas")
    if not os.path.exists(ptxas):
        print("NO-PTXAS"); sys.exit(0)

    def build(fn, ptrs, consts, warps):
        sig = {n: "constexpr" if n in consts else ("*" + ptrs[n] if n in ptrs else "i32")
               for n in fn.arg_names}
        # Pointers and D divisible by 16, as in a typical launch (this is what enables vector access).
        attrs = {(i,): [["tt.divisibility", 16]] for i, n in enumerate(fn.arg_names) if n in ptrs or n == "D"}
        c = triton.compile(ASTSource(fn=fn, signature=sig, constexprs=consts, attrs=attrs),
                           target=GPUTarget("cuda", 90, 32), options={"num_warps": warps})
        with tempfile.TemporaryDirectory() as tmp:
            ptx = os.path.join(tmp, "k.ptx")
            open(ptx, "w").write(c.asm["ptx"])
            r = subprocess.run([ptxas, "-arch=sm_90a", "-v", ptx, "-o", os.path.join(tmp, "k.cubin")],
                               capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        return len(c.asm["cubin"])

    f32 = tl.float32
    fwd = dict(BT=32, BD=64, STAGES=2, NCB=16, REV=True, X_CPLX=False, HAS_THETA=False, VAL_CPLX=False,
               HAS_H0=True, H0_CPLX=False, SPLIT=True, OUT_CPLX=False, HAS_ADD=True, ADD_CPLX=False,
               HAS_SAVE=True, ACC=f32)
    build(K.hgrn_scan_fwd_kernel, dict(x_ptr="bf16", lf_ptr="bf16", theta_ptr="fp32", h0_ptr="fp32",
          sum_ptr="fp32", out_ptr="bf16", add_ptr="bf16", save_ptr="bf16"), fwd, 4)
    bwd = dict(BT=16, BD=32, STAGES=2, NCB=16, REV=False, G_CPLX=True, X_CPLX=True, HAS_THETA=True,
               VAL_CPLX=True, HAS_H0=True, H0_CPLX=True, SPLIT=True, ACCUM=True, NEED_DX=True, NEED_DLF=True,
               NEED_DTH=True, NEED_DH0=True, ACC=f32)
    build(K.hgrn_scan_bwd_kernel, dict(g_ptr="fp32", lf_ptr="fp32", theta_ptr="fp32", hs_ptr="fp32",
          h0_ptr="fp32", sum_ptr="fp32", dx_ptr="fp32", dlf_ptr="fp32", dth_ptr="fp32", dh0_ptr="fp32"),
          bwd, 4)
    summ = dict(BT=16, BD=32, STAGES=2, REV=True, GATE_SHIFT=True, IN_CPLX=True, HAS_THETA=True,
                VAL_CPLX=True, ACC=tl.float64)
    build(K.hgrn_chunk_summary_kernel, dict(in_ptr="fp64", lf_ptr="fp64", theta_ptr="fp64", sum_ptr="fp64"),
          summ, 4)
    print("OK")
    """
)


@pytest.mark.skipif(CUDA, reason="on a GPU the other tests compile the kernels for real")
def test_kernels_compile_for_sm90():
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    r = subprocess.run([sys.executable, "-c", _AOT_SCRIPT], capture_output=True, text=True, env=env,
                       cwd=ROOT, timeout=300)
    if "NO-PTXAS" in r.stdout:
        pytest.skip("this Triton build has no bundled ptxas")
    assert r.returncode == 0 and "OK" in r.stdout, r.stdout + r.stderr
