"""The native CPU kernels (kernels/cpu_native.c) against a per-step float64 loop and autograd, and the clean
fallback to the PyTorch scan where they cannot be built.

The scan semantics every implementation shares run through tests/test_scan.py (impl "native"); the fused
HGRU layer on these kernels through tests/test_fused_hgru.py. Here: what only the kernels have (the three
gate kinds, strided and zero-stride views, accumulate, aliasing, the one-sweep backward, thread counts)
and the build.
"""
from __future__ import annotations

import pytest
import torch

from kernels import cpu_native, cpu_scan, hgrn_scan

COMPLEX = {torch.float32: torch.complex64, torch.float64: torch.complex128}


@pytest.fixture
def native():
    if not cpu_native.available():
        pytest.skip(f"native CPU kernels unavailable here: {cpu_native.status()}")
    return cpu_native


def _loop(x, a, h0=None, reverse=False):
    """h_t = a_t h_{t-1} + x_t in float64/complex128, one step at a time."""
    x, a = (t.to(torch.complex128 if t.is_complex() else torch.float64) for t in (x, a))
    out = torch.empty_like(x)
    prev = None if h0 is None else h0.to(x.dtype)
    for t in (range(x.shape[1] - 1, -1, -1) if reverse else range(x.shape[1])):
        prev = x[:, t] if prev is None else a[:, t] * prev + x[:, t]
        out[:, t] = prev
    return out


def _inputs(B, L, D, dtype, complex_, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, L, D, dtype=dtype, generator=g)
    if complex_:
        x = torch.complex(x, torch.randn(B, L, D, dtype=dtype, generator=g))
    lam = torch.rand(B, L, D, dtype=dtype, generator=g) * 0.98 + 0.01
    theta = torch.randn(D, dtype=dtype, generator=g)
    return x, lam, theta


TOL = {torch.float32: 2e-6, torch.float64: 1e-13}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["fp32", "fp64"])
@pytest.mark.parametrize("kind", ["real", "phase", "complex"])
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
def test_forward_kinds_equal_the_loop(native, dtype, kind, reverse):
    # D = 45 is one full block of channels plus a partial one
    x, lam, theta = _inputs(3, 29, 45, dtype, kind != "real")
    a = torch.polar(lam, theta.expand_as(lam)) if kind != "real" else lam
    phase = torch.stack([theta.cos(), theta.sin()], -1)
    out = torch.empty_like(x)
    gate = lam if kind != "complex" else a
    code = {"real": native.GATE_REAL, "phase": native.GATE_PHASE, "complex": native.GATE_COMPLEX}[kind]
    native.scan_forward(x, gate, out, kind=code, reverse=reverse, phase=phase if kind == "phase" else None)
    want = _loop(x, a, reverse=reverse)
    assert (out - want).abs().max() <= TOL[dtype] * want.abs().max()


def test_strided_views_initial_state_store_modes_and_aliasing(native):
    """Views with row strides, a zero-stride (per-channel) gate, a state entering, out += h, out = a_t h_{t-1},
    and out written over the gate it reads (how the callers use the kernel)."""
    x_full, lam_full, theta = _inputs(4, 40, 10, torch.float64, True, seed=1)
    x = x_full[:, 5:35]  # rows stride over 40 steps
    per_channel = lam_full[0, 0]
    gate = per_channel.expand(4, 30, 10)  # strides (0, 0, 1)
    phase = torch.stack([theta.cos(), theta.sin()], -1)
    h0 = torch.randn(4, 10, dtype=torch.complex128)
    a = torch.polar(gate, theta.expand(4, 30, 10))
    want = _loop(x, a, h0)
    out = torch.ones(4, 30, 10, dtype=torch.complex128)
    native.scan_forward(x, gate, out, kind=native.GATE_PHASE, phase=phase, h0=h0, store="add")
    assert torch.allclose(out - 1, want, rtol=1e-12, atol=1e-12)
    native.scan_forward(x, gate, out, kind=native.GATE_PHASE, phase=phase, h0=h0, store="v")
    assert torch.allclose(out, want - x, rtol=1e-12, atol=1e-12)
    full_gate = a.contiguous()
    native.scan_forward(x, full_gate, full_gate, kind=native.GATE_COMPLEX, h0=h0)  # out aliases the gate
    assert torch.allclose(full_gate, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("source", ["v", "x"], ids=["given-v", "recomputed-v"])
@pytest.mark.parametrize("complex_", [False, True], ids=["real", "complex"])
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
def test_backward_sweep_equals_autograd(native, complex_, reverse, source):
    """du = G, dlog = Re conj(a h_prev) G and dtheta = sum of Im conj(a h_prev) G, against autograd through
    the float64 loop; then the same sweep accumulating onto existing gradients. The gated previous states
    a_t h_{t-1} are given, or recomputed by the kernel from x (150 steps: two whole chunks and a part)."""
    x, lam, theta = _inputs(2, 150 if source == "x" else 33, 37, torch.float64, complex_, seed=2)
    leaves = [t.clone().requires_grad_() for t in (x, lam, theta)]
    xr, lr, tr = leaves
    a = torch.polar(lr, tr.expand_as(lr)) if complex_ else lr
    h = _loop(xr, a, reverse=reverse)
    dh = torch.randn_like(h.detach())
    loss = (h.conj() * dh).real.sum() if complex_ else (h * dh).sum()
    gx, glam, gtheta = torch.autograd.grad(loss, leaves, allow_unused=True)
    phase = torch.stack([theta.cos(), theta.sin()], -1) if complex_ else None
    kind = native.GATE_PHASE if complex_ else native.GATE_REAL
    v = torch.empty_like(x)
    native.scan_forward(x, lam, v, kind=kind, reverse=reverse, phase=phase, store="v")  # a_t h_{t-1}
    given = {"v": v} if source == "v" else {"v": None, "x": x}
    du, dlog = torch.empty_like(x), torch.empty_like(lam)
    dtheta = torch.empty(2, 37, dtype=torch.float64) if complex_ else None
    native.scan_backward(dh, lam, du=du, kind=kind, reverse=reverse, init=True, phase=phase, dlog=dlog,
                         dtheta=dtheta, **given)
    assert torch.allclose(du, gx, rtol=1e-12, atol=1e-12)
    assert torch.allclose(dlog / lam, glam, rtol=1e-10, atol=1e-12)  # dlog is the gradient of log lam
    if complex_:
        assert torch.allclose(dtheta.sum(0), gtheta, rtol=1e-10, atol=1e-12)
    native.scan_backward(dh, lam, du=du, kind=kind, reverse=reverse, init=False, phase=phase, dlog=dlog, **given)
    assert torch.allclose(du, 2 * gx, rtol=1e-12, atol=1e-12)
    assert torch.allclose(dlog / lam, 2 * glam, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("complex_", [False, True], ids=["real", "complex"])
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
def test_backward_in_pieces_equals_one_sweep(native, complex_, reverse):
    """A sequence cut in three pieces (kernels/hgru_pieces.py): each piece's backward started from the state
    entering it (``h0``) and the carry its neighbour handed over gives the whole sweep's du and dlog, and
    the per-piece dtheta sums add up to the whole one."""
    B, L, D = 2, 150, 37
    x, lam, theta = _inputs(B, L, D, torch.float64, complex_, seed=5)
    dh = torch.randn_like(x)
    phase = torch.stack([theta.cos(), theta.sin()], -1) if complex_ else None
    kind = native.GATE_PHASE if complex_ else native.GATE_REAL
    h = native.scan_forward(x, lam, torch.empty_like(x), kind=kind, reverse=reverse, phase=phase)

    def sweep(sl, h0=None, carry=None):
        du, dlog = torch.empty_like(x[:, sl]), torch.empty_like(lam[:, sl])
        dtheta = torch.empty(B, D, dtype=torch.float64) if complex_ else None
        out = torch.empty(B, D, dtype=x.dtype)
        native.scan_backward(dh[:, sl], lam[:, sl], None, du, x=x[:, sl], kind=kind, reverse=reverse, init=True,
                             phase=phase, dlog=dlog, dtheta=dtheta, h0=h0, carry_in=carry, carry_out=out)
        return du, dlog, dtheta, out

    du, dlog, dtheta, _ = sweep(slice(0, L))
    cuts = [(0, 40), (40, 107), (107, L)]
    order = cuts if reverse else cuts[::-1]  # the backward sweeps against the scan's direction
    carry, parts = None, {}
    for t0, t1 in order:
        entering = None
        if reverse and t1 < L:
            entering = h[:, t1].contiguous()
        elif not reverse and t0 > 0:
            entering = h[:, t0 - 1].contiguous()
        parts[t0] = sweep(slice(t0, t1), entering, carry)
        carry = parts[t0][3]
    assert torch.allclose(torch.cat([parts[t0][0] for t0, _ in cuts], 1), du, rtol=1e-12, atol=1e-12)
    assert torch.allclose(torch.cat([parts[t0][1] for t0, _ in cuts], 1), dlog, rtol=1e-12, atol=1e-12)
    if complex_:
        assert torch.allclose(sum(parts[t0][2] for t0, _ in cuts), dtheta, rtol=1e-10, atol=1e-12)


def test_thread_count_does_not_change_the_result(native):
    """Blocks of channels are independent work items, so 1 and 2 threads give the same bits."""
    x, lam, theta = _inputs(3, 300, 70, torch.float32, True, seed=3)
    phase = torch.stack([theta.cos(), theta.sin()], -1)
    results = []
    threads = torch.get_num_threads()
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            out = torch.empty_like(x)
            results.append(native.scan_forward(x, lam, out, kind=native.GATE_PHASE, phase=phase))
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(results[0], results[1])


def _gate_inputs(B, T, D, complex_, bound, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    p = torch.randn(B, T, 2 * D if complex_ else D, dtype=dtype, generator=g) * 4
    z = torch.randn(B, T, D, dtype=dtype, generator=g) * 5
    gamma = None if bound == "none" else torch.rand(D, dtype=dtype, generator=g) * 0.9
    if bound == "zero-first":  # the first layer's bound is exactly 0 in some channels: no log term there
        gamma[: D // 2] = 0
    valid = torch.rand(B, T, generator=g) > 0.25
    return p, z, gamma, valid


@pytest.mark.parametrize("complex_", [True, False], ids=["complex", "real"])
@pytest.mark.parametrize("bound", ["rand", "zero-first", "none"])
@pytest.mark.parametrize("masked", [True, False], ids=["padded", "full"])
def test_gate_pass_equals_the_pytorch_ops(native, complex_, bound, masked):
    """hgru_gate_input and its backward (one pass each) against kernels/hgru_core.py's PyTorch ops for the same
    arithmetic, in float64, over more rows than one partial sum of d gamma holds."""
    from kernels import hgru_core

    p, z, gamma, valid = _gate_inputs(3, 130, 37, complex_, bound)
    valid = valid if masked else None
    lam, u = native.gate_input(p, z, gamma, valid)
    lam_ref, om, u_ref = _torch_gate(p, z, gamma, valid, complex_)
    torch.testing.assert_close(lam, lam_ref, rtol=1e-13, atol=1e-15)
    torch.testing.assert_close(u, u_ref, rtol=1e-12, atol=1e-14)

    g = torch.Generator().manual_seed(1)
    du = torch.randn(p.shape, dtype=p.dtype, generator=g)
    d_log = torch.randn(z.shape, dtype=z.dtype, generator=g)
    cplx = torch.view_as_complex(du.clone().view(*z.shape, 2)) if complex_ else du.clone()
    want = hgru_core._gate_input_backward(p, z, gamma, "data", valid, lam_ref, om, cplx, d_log.clone(), complex_,
                                          native=False)
    got = native.gate_input_backward(p, z, gamma, valid, du.clone(), d_log.clone())
    assert len(got) == len(want) == 3
    # d gamma sums d_log / lam over tokens, up to 1e8 where the gate is near 0: both sums round off alike
    # relative to the summands' size, not to the result's
    summands = (d_log / lam_ref).abs().sum((0, 1)).max().item()
    for name, a, b, atol in zip(("dp", "dz", "d gamma"), got, want, (1e-12, 1e-12, 1e-14 * summands)):
        if b is None:
            assert a is None, name
        else:
            torch.testing.assert_close(a, b, rtol=1e-11, atol=atol, msg=name)


def _torch_gate(p, z, gamma, valid, complex_):
    from kernels import hgru_core

    lam, om = hgru_core._masked_gate(z, gamma, "data", valid, torch.float64)
    return lam, om, hgru_core._scan_input(p, om, valid, complex_, torch.float64)


def test_gate_pass_does_not_depend_on_threads_and_checks_shapes(native):
    """d gamma is summed a fixed chunk of rows at a time, so 1 and 2 threads give the same bits; shapes that do
    not fit together are a clear error, not a read past the end."""
    p, z, gamma, valid = _gate_inputs(4, 300, 40, True, "rand", dtype=torch.float32)
    du = torch.randn(p.shape)
    d_log = torch.randn(z.shape)
    results = []
    threads = torch.get_num_threads()
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            results.append((*native.gate_input(p, z, gamma, valid),
                            *native.gate_input_backward(p, z, gamma, valid, du.clone(), d_log.clone())))
    finally:
        torch.set_num_threads(threads)
    for a, b in zip(*results):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="p has 39 channels, z 40"):
        native.gate_input(p[..., :39].contiguous(), z, gamma, valid)
    with pytest.raises(ValueError, match="differ before the channel axis"):
        native.gate_input(p[:3].contiguous(), z, gamma, valid)
    with pytest.raises(ValueError, match=r"gamma has shape \(39,\); it must be \(40,\)"):
        native.gate_input(p, z, gamma[:39].contiguous(), valid)


def test_scan_dispatch_uses_native_where_built_and_torch_when_off(native, monkeypatch):
    x, lam, theta = _inputs(2, 100, 5, torch.float32, False, seed=4)
    calls = []
    real_forward = native.scan_forward
    monkeypatch.setattr(native, "scan_forward", lambda *a, **k: calls.append(1) or real_forward(*a, **k))
    fast = hgrn_scan(x, lam.log(), impl="cpu")
    assert calls, "the CPU scan did not use the native kernel"
    monkeypatch.setenv("HGRN_CPU_NATIVE", "off")
    calls.clear()
    slow = hgrn_scan(x, lam.log(), impl="cpu")
    assert not calls
    assert torch.allclose(fast, slow, rtol=1e-5, atol=1e-6)


# -- the build and the fallback -------------------------------------------------------------------------------

@pytest.fixture
def fresh_build(monkeypatch, tmp_path):
    """No cached library and no loaded one: the next call builds from scratch into tmp_path."""
    monkeypatch.setattr(cpu_native, "_state", {})
    monkeypatch.setenv("HGRN_NATIVE_CACHE", str(tmp_path))
    return tmp_path


def test_without_a_compiler_the_pytorch_scan_runs(fresh_build, monkeypatch):
    monkeypatch.setenv("CC", str(fresh_build / "no-such-compiler"))
    assert not cpu_native.available()
    assert "native unavailable" in cpu_native.status() and "no-such-compiler" in cpu_native.status()
    x, lam, _ = _inputs(2, 90, 4, torch.float64, False, seed=5)
    got = hgrn_scan(x, lam.log(), impl="cpu")
    assert torch.allclose(got, _loop(x, lam), rtol=1e-12, atol=1e-12)
    assert cpu_scan.scan_with_gate(x, lam).shape == x.shape
    with pytest.raises(ValueError, match="scan strategy 'native'"):
        cpu_scan.scan_with_gate(x, lam, strategy="native")
    monkeypatch.setenv("HGRN_CPU_NATIVE", "require")
    with pytest.raises(cpu_native.NativeUnavailable, match="HGRN_CPU_NATIVE=require"):
        hgrn_scan(x, lam.log(), impl="cpu")


def test_build_from_scratch_is_cached(fresh_build):
    if cpu_native._compiler() is None:
        pytest.skip("no C compiler on this machine")
    assert cpu_native.available(), cpu_native.status()
    built = list(fresh_build.glob("hgrn_cpu_native-*.so"))
    assert len(built) == 1
    cpu_native._state.clear()
    stamp = built[0].stat().st_mtime_ns
    assert cpu_native.available()  # loaded again, not rebuilt
    assert built[0].stat().st_mtime_ns == stamp


def test_bad_mode_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("HGRN_CPU_NATIVE", "sometimes")
    with pytest.raises(ValueError, match="HGRN_CPU_NATIVE='sometimes'.*auto, off, require"):
        cpu_native.library()
