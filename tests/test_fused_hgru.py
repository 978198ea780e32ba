"""The fused HGRU recurrence (kernels/hgru_core.py) equals the op-by-op path: outputs and every gradient.

The reference is the op-by-op path on the PyTorch scan; the fused layer runs on the native CPU kernels
(kernels/cpu_native.c) and on the PyTorch scan (its fallback where they cannot be built)."""
from __future__ import annotations

import pytest
import torch

from helpers.hgru_compare import assert_matches, forward_backward, random_bound
from kernels import cpu_native
from models import HGRU


@pytest.fixture(params=["native", "torch"])
def backend(request, monkeypatch):
    """Which CPU scans the fused layer runs on; ``_run`` switches to the PyTorch scan for the reference."""
    if request.param == "native" and not cpu_native.available():
        pytest.skip(f"native CPU kernels unavailable here: {cpu_native.status()}")
    return request.param

CASES = [  # (mode, complex, forget_mode, lower bound kind, lengths)
    ("causal", True, "data", "rand", False),
    ("causal", False, "data", "none", True),
    ("causal", True, "bound", "rand", True),
    ("bidirectional", True, "data", "zero-first", True),
    ("bidirectional", False, "data", "rand", False),
    ("bidirectional", True, "bound", "rand", False),
    ("bidirectional", True, "data", "none", False),
    ("2d", True, "data", "rand", False),
    ("2d", False, "bound", "rand", False),
    ("2d", True, "data", "zero-first", False),
    ("2d", True, "bound", "zero-first", False),  # a per-channel complex gate repeated along the column view
]


def _run(m: HGRU, x: torch.Tensor, bound, lengths, grid, fused: bool, weight: torch.Tensor, save_states=None,
         backend: str = "torch"):
    m.fused, m.save_states = fused, save_states
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HGRN_CPU_NATIVE", "require" if backend == "native" else "off")
        return forward_backward(m, x, bound, lengths, grid, weight)


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 1e-5)], ids=["fp64", "fp32"])
@pytest.mark.parametrize("mode,complex_,forget_mode,bound_kind,with_lengths", CASES)
def test_fused_equals_unfused(mode, complex_, forget_mode, bound_kind, with_lengths, dtype, tol, backend):
    _compare(mode, complex_, forget_mode, bound_kind, with_lengths, dtype, tol, None, backend)


@pytest.mark.parametrize("mode,complex_", [("causal", False), ("bidirectional", True), ("2d", True)])
@pytest.mark.parametrize("save_states", [True, False])
def test_fused_state_policy_equals_unfused(mode, complex_, save_states, backend):
    """Keeping h for the backward or recomputing every direction's states there gives the same gradients."""
    _compare(mode, complex_, "data", "rand", mode != "2d", torch.float64, 1e-10, save_states, backend)


def _compare(mode, complex_, forget_mode, bound_kind, with_lengths, dtype, tol, save_states, backend, m=None):
    torch.manual_seed(0)
    d, B = 6, 3
    grid = (4, 5) if mode == "2d" else None
    T = 20 if mode == "2d" else 37  # 37 > the chunked scan's loop threshold, with a remainder chunk
    m = HGRU(d, mode, complex=complex_, forget_mode=forget_mode).to(dtype) if m is None else m
    x = torch.randn(B, T, d, dtype=dtype, requires_grad=True)
    bound = random_bound(bound_kind, d, dtype)
    lengths = torch.tensor([T, T - 5, 1]) if with_lengths else None
    weight = torch.randn(B, T, d, dtype=dtype)
    y_ref, g_ref = _run(m, x, bound, lengths, grid, False, weight)
    y, g = _run(m, x, bound, lengths, grid, True, weight, save_states, backend)
    assert_matches(y, g, y_ref, g_ref, tol)


@pytest.mark.parametrize("recompute", [False, True])
@pytest.mark.parametrize("mode,complex_,with_lengths", [("causal", False, True), ("bidirectional", True, True),
                                                        ("2d", True, False)])
def test_output_stage_in_row_blocks_equals_unfused(mode, complex_, with_lengths, recompute, backend, monkeypatch):
    """The output stage (LayerNorm, output gate, out_proj) run over several blocks of rows, with a remainder
    block, and with g kept or projected block by block in the backward: still the op-by-op results."""
    from kernels import row_blocks

    monkeypatch.setattr(row_blocks, "BLOCK_BYTES", 1)
    monkeypatch.setattr(row_blocks, "MIN_ROWS", 16)  # blocks of 16 rows: 7 over 3 x 37 rows, 4 over 3 x 20
    assert [len(row_blocks.row_blocks(3 * T, 12)) for T in (37, 20)] == [7, 4]
    torch.manual_seed(3)
    m = HGRU(6, mode, complex=complex_).double()
    m.recompute_projections = recompute
    _compare(mode, complex_, "data", "rand", with_lengths, torch.float64, 1e-10, None, backend, m=m)


@pytest.mark.parametrize("mode,shape", [("bidirectional", (2, 150)), ("2d", (3, 70)), ("2d", (70, 3))])
def test_fused_long_scans_equal_unfused(mode, shape, backend):
    """Scans longer than the native backward's chunk of recomputed states (64 steps), with a part chunk:
    along the sequence, along the rows and along the columns of a grid."""
    torch.manual_seed(4)
    B, T = shape if mode != "2d" else (2, shape[0] * shape[1])
    m = HGRU(4, mode).double()
    x = torch.randn(B, T, 4, dtype=torch.float64, requires_grad=True)
    bound = random_bound("rand", 4, torch.float64)
    lengths = torch.tensor([T, T - 90]) if mode != "2d" else None
    grid = shape if mode == "2d" else None
    weight = torch.randn(B, T, 4, dtype=torch.float64)
    y_ref, g_ref = _run(m, x, bound, lengths, grid, False, weight)
    y, g = _run(m, x, bound, lengths, grid, True, weight, backend=backend)
    assert_matches(y, g, y_ref, g_ref, 1e-10)


@pytest.mark.parametrize("bound_kind", ["none", "zero-first"])
def test_fused_gate_underflow_stays_finite(bound_kind, backend):
    """Gate logits so negative that sigmoid underflows in float32 (lam = 0 exactly without the bound): the
    fused backward divides by lam, so it must be clamped as exp(log lam) is on the unfused path."""
    torch.manual_seed(0)
    d, B, T = 4, 2, 9
    m = HGRU(d, "bidirectional")
    with torch.no_grad():
        m.lambda_proj.bias.fill_(-120.0)
    x = torch.randn(B, T, d, requires_grad=True)
    bound = random_bound(bound_kind, d, torch.float32)
    weight = torch.randn(B, T, d)
    y_ref, g_ref = _run(m, x, bound, None, None, False, weight)
    y, g = _run(m, x, bound, None, None, True, weight, backend=backend)
    assert torch.isfinite(y).all() and all(torch.isfinite(t).all() for t in g.values())
    assert torch.allclose(y, y_ref, rtol=1e-5, atol=1e-6)
    for name in g_ref:
        assert torch.allclose(g[name], g_ref[name], rtol=1e-4, atol=1e-5), name


def test_fused_path_is_one_node_and_saves_no_complex_tensor():
    """What the fused layer keeps for the backward: real tensors only, none wider than the projections."""
    torch.manual_seed(0)
    m = HGRU(8, "2d")
    x = torch.randn(2, 16, 8, requires_grad=True)
    saved = []

    def pack(t):
        saved.append(t)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        m(x, torch.rand(8))
    assert not any(t.is_complex() for t in saved)
    widest = max(t.numel() for t in saved)
    assert widest <= 2 * 16 * 16  # B * T * 2d: the size of one projection output
    m.fused = False
    saved.clear()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        m(x, torch.rand(8))
    assert any(t.is_complex() for t in saved)  # the op-by-op path does keep complex states


def test_fused_rejects_bad_grid():
    m = HGRU(4, "2d")
    with pytest.raises(ValueError, match="not H x W"):
        m(torch.randn(1, 12, 4), grid=(3, 5))


@pytest.mark.parametrize("mode,complex_", [("causal", True), ("bidirectional", False), ("2d", True)])
def test_fused_on_triton_scans_equals_unfused(mode, complex_, monkeypatch):
    """The fused core with its scans on the Triton kernels (the CUDA path; here under the interpreter)."""
    monkeypatch.setenv("HGRN_SCAN_IMPL", "triton")
    torch.manual_seed(1)
    d, B = 4, 2
    grid = (3, 4) if mode == "2d" else None
    T = 12 if mode == "2d" else 9
    m = HGRU(d, mode, complex=complex_).double()
    x = torch.randn(B, T, d, dtype=torch.float64, requires_grad=True)
    bound = random_bound("rand", d, torch.float64)
    lengths = None if mode == "2d" else torch.tensor([T, 4])
    weight = torch.randn(B, T, d, dtype=torch.float64)
    monkeypatch.setenv("HGRN_SCAN_IMPL", "cpu")
    y_ref, g_ref = _run(m, x, bound, lengths, grid, False, weight)
    monkeypatch.setenv("HGRN_SCAN_IMPL", "triton")
    y, g = _run(m, x, bound, lengths, grid, True, weight)
    assert torch.allclose(y, y_ref, rtol=1e-10, atol=1e-12)
    for name in g_ref:
        assert torch.allclose(g[name], g_ref[name], rtol=1e-9, atol=1e-11), name


@pytest.mark.parametrize("mode,complex_,forget_mode", [("causal", True, "data"), ("bidirectional", False, "data"),
                                                       ("2d", True, "bound")])
def test_recomputed_projections_equal_kept_ones(mode, complex_, forget_mode, backend):
    """HGRU.recompute_projections: the same gradients, and p, z, g are no longer among the saved tensors."""
    torch.manual_seed(2)
    d, B = 6, 2
    grid = (4, 5) if mode == "2d" else None
    T = 20 if mode == "2d" else 23
    m = HGRU(d, mode, complex=complex_, forget_mode=forget_mode).double()
    x = torch.randn(B, T, d, dtype=torch.float64, requires_grad=True)
    bound = random_bound("rand", d, torch.float64)
    weight = torch.randn(B, T, d, dtype=torch.float64)
    m.recompute_projections = False
    y_ref, g_ref = _run(m, x, bound, None, grid, True, weight, backend=backend)
    for recompute in (True, "g", "zp"):
        m.recompute_projections = recompute
        y, g = _run(m, x, bound, None, grid, True, weight, backend=backend)
        assert torch.equal(y, y_ref)
        for name in g_ref:
            assert torch.allclose(g[name], g_ref[name], rtol=1e-12, atol=1e-13), (recompute, name)
    saved_bytes = {}
    for recompute in (False, True, "g"):
        m.recompute_projections = recompute
        storages = {}

        def pack(t):
            storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            m(x, bound, grid=grid)
        saved_bytes[recompute] = sum(storages.values())
    inner = 2 * d if complex_ else d
    projections = B * T * (2 * inner + (d if forget_mode == "data" else 0)) * 8
    assert saved_bytes[False] - saved_bytes[True] >= projections - 8 * 3 * inner  # p, z, g no longer kept (biases are)
    gate_bytes = B * T * inner * 8
    assert gate_bytes - 8 * inner <= saved_bytes[False] - saved_bytes["g"] <= gate_bytes + 8 * inner  # g alone


@pytest.mark.parametrize("value", ["", "x", "gg", 1.5])
def test_recompute_projections_rejects_unknown_values(value):
    with pytest.raises(ValueError, match="recompute_projections"):
        HGRU(4).recompute_projections = value


def test_tasks_set_recompute_projections_on_every_layer():
    """``--model.init_args.recompute_projections`` reaches every HGRU of the LRA and vision networks."""
    from lra.task import SequenceClassificationTask
    from vision.task import ImageClassificationTask

    lra = SequenceClassificationTask(d_model=8, n_layers=2, num_classes=3, vocab_size=11, pad_index=0,
                                     recompute_projections=False)
    vision = ImageClassificationTask(width=8, depth=2, patch_size=4, num_classes=3, in_channels=3, image_size=8,
                                     recompute_projections=True)
    for task, want in ((lra, False), (vision, True)):
        layers = [m for m in task.net.modules() if isinstance(m, HGRU)]
        assert len(layers) == 2 and all(m.recompute_projections is want for m in layers)
    default = SequenceClassificationTask(d_model=8, n_layers=1, num_classes=3, vocab_size=11, pad_index=0)
    assert [m.recompute_projections for m in default.net.modules() if isinstance(m, HGRU)] == [None]
