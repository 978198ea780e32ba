"""What only the Triton scan has: its tile and T-split edges, the production launch plan, lazy conjugate and
strided inputs, its own argument checks, int64 offsets (GPU), and a compile for sm_90 without a GPU.

The cases every implementation shares (flags, edges, precisions, both directions, bidirectional) are in
tests/test_scan.py. Without a CUDA GPU the kernels run under the Triton interpreter (TRITON_INTERPRET=1, set in
tests/conftest.py) on CPU tensors; with one, the same tests run compiled on CUDA tensors. The ``triton_scan``
fixture (tests/conftest.py) hands over kernels.triton_scan with the interpreter's faster scan in place.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from functools import partial

import pytest
import torch

import kernels
from helpers.scan_cases import ScanCase, check_against_reference, relative_error, scan_inputs
from kernels.reference import hgrn_scan_bidirectional_reference, hgrn_scan_reference
from kernels.triton_scan import TritonScanConfig as C

CUDA = torch.cuda.is_available()
DEVICE = torch.device("cuda" if CUDA else "cpu")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# Tile and T-split edges beyond the shared table's 8-step tiles (tests/test_scan.py)
@pytest.mark.parametrize(
    "B,T,D,cfg",
    [
        (1, 16, 1, C(block_t=4, block_d=2, chunks=4)),  # chunks of exactly one tile each, D = 1
        (1, 70, 6, C(block_t=4, block_d=8, chunks=9, carry_block=2)),  # carry-in folds several blocks
        (3, 23, 7, C(block_t=4, block_d=4, chunks=2)),  # last chunk partial
    ],
    ids=["chunk=tile", "carry-blocks", "last-chunk-partial"],
)
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
def test_split_edges(B, T, D, cfg, reverse, triton_scan):
    case = ScanCase(B, T, D, theta=True, h0=True, reverse=reverse, seed=T + D)
    check_against_reference(partial(triton_scan.hgrn_scan_triton, config=cfg), case, DEVICE)


def test_empty_sequence_keeps_shape_and_dtype(triton_scan):
    inputs = scan_inputs(ScanCase(2, 0, 3, theta=True), DEVICE)
    out = triton_scan.hgrn_scan_triton(inputs["x"], inputs["log_f"], inputs["theta"])
    assert out.shape == (2, 0, 3) and out.dtype == torch.complex128


@pytest.mark.parametrize("case", [ScanCase(2, 70, 40, h0=True), ScanCase(1, 45, 40, True, True, True, reverse=True)],
                         ids=["real", "complex"])
def test_default_plan(case, triton_scan):
    # The production tiles (BT=32/16, BD=64/32), several tiles in T, D not a multiple of the block.
    check_against_reference(triton_scan.hgrn_scan_triton, case, DEVICE)


def test_public_entry_points_dispatch_to_triton(triton_scan):
    inputs = scan_inputs(ScanCase(1, 19, 9, theta=True, h0=True, seed=5), DEVICE)
    x, log_f, th, state = inputs.values()
    out = kernels.hgrn_scan(x, log_f, th, initial_state=state, impl="triton")
    assert relative_error(out, hgrn_scan_reference(x, log_f, th, initial_state=state)) <= 1e-12
    out = kernels.hgrn_scan_bidirectional(x, log_f, th, None, impl="triton")
    assert relative_error(out, hgrn_scan_bidirectional_reference(x, log_f, th, None)) <= 1e-12


def test_lazy_conjugate_and_strided_inputs(triton_scan):
    # A conjugate view (conj bit set) and a non-contiguous log_f must be read as their values.
    inputs = scan_inputs(ScanCase(2, 13, 6, True, True, True, seed=8), DEVICE)
    x, log_f, th, state = inputs.values()
    log_f_t = log_f.detach().transpose(0, 1).contiguous().transpose(0, 1).requires_grad_()
    assert x.conj().is_conj() and not log_f_t.is_contiguous()
    args = [x, log_f_t, th, state]
    out = triton_scan.hgrn_scan_triton(x.conj(), log_f_t, th, initial_state=state.conj(), config=C(block_t=8, block_d=8, chunks=1))
    ref = hgrn_scan_reference(x.conj(), log_f_t, th, initial_state=state.conj())
    weight = torch.randn(ref.shape, dtype=ref.dtype, generator=torch.Generator().manual_seed(2)).to(DEVICE)
    got = [out, *torch.autograd.grad(out, args, weight)]
    want = [ref, *torch.autograd.grad(ref, args, weight)]
    errors = [relative_error(a, b) for a, b in zip(got, want)]
    assert max(errors) <= 1e-12, errors


# ---------------------------------------------------------------------------------------------------------
# Errors


def test_clear_errors_on_bad_input(monkeypatch, triton_scan):
    inputs = scan_inputs(ScanCase(1, 4, 3, seed=1), DEVICE)
    x, log_f = inputs["x"], inputs["log_f"]
    with pytest.raises(TypeError, match="initial_state is complex"):
        triton_scan.hgrn_scan_triton(x, log_f, initial_state=torch.zeros(1, 3, dtype=torch.complex64, device=DEVICE))
    with pytest.raises(ValueError, match="power of two"):
        triton_scan.hgrn_scan_triton(x, log_f, config=C(block_t=6))
    with pytest.raises(ValueError, match="theta must be"):
        triton_scan.hgrn_scan_triton(x, log_f, torch.zeros(4, device=DEVICE))
    if not CUDA:
        # Outside the interpreter, CPU tensors must be refused with a pointer to the alternatives.
        monkeypatch.setattr(triton_scan, "_is_interpreted", lambda: False)
        with pytest.raises(RuntimeError, match="needs CUDA tensors"):
            triton_scan.hgrn_scan_triton(x, log_f)


# ---------------------------------------------------------------------------------------------------------
# GPU-only: offsets past 2^31 elements


@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
def test_int64_offsets_past_2_31_elements(triton_scan):
    B, T, D = 2, (1 << 20) + 3, 1040  # 2.18e9 elements: int32 element offsets would wrap
    free, _ = torch.cuda.mem_get_info()
    if free < 24 * 2**30:
        pytest.skip("needs 24 GiB of free GPU memory")
    gen = torch.Generator(device="cuda").manual_seed(0)
    x = torch.randn(B, T, D, device="cuda", dtype=torch.bfloat16, generator=gen)
    log_f = torch.randn(B, T, D, device="cuda", dtype=torch.bfloat16, generator=gen)
    log_f = torch.nn.functional.logsigmoid(log_f.add_(1.0))
    with torch.no_grad():
        out = triton_scan.hgrn_scan_triton(x, log_f)
        # The last 256 steps of the last batch row, restarted from the kernel's own state before them.
        t0 = T - 257
        ref = hgrn_scan_reference(x[1:, t0 + 1:].float(), log_f[1:, t0 + 1:].float(),
                                  initial_state=out[1:, t0].float())
    assert relative_error(out[1:, t0 + 1:].float(), ref) <= 5e-3


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
