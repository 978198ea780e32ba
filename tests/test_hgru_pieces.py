"""The HGRU layer a piece of time at a time (kernels/hgru_pieces.py) equals the whole-tensor fused path, and
holds no (B, T, D)-sized tensor but the ones it must.

Pieces are made small (HGRN_TIME_PIECE) so that short sequences are cut into several, with a remainder."""
from __future__ import annotations

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from helpers.hgru_compare import assert_matches, forward_backward, random_bound
from kernels import cpu_native, hgru_pieces
from models import HGRU

pytestmark = pytest.mark.skipif(not cpu_native.available(), reason=f"native CPU kernels: {cpu_native.status()}")


class _Calls:
    def __init__(self, monkeypatch):
        self.forward = self.backward = 0
        fwd, bwd = hgru_pieces.pieces_forward, hgru_pieces.pieces_backward

        def count_forward(*args, **kwargs):
            self.forward += 1
            return fwd(*args, **kwargs)

        def count_backward(*args, **kwargs):
            self.backward += 1
            return bwd(*args, **kwargs)

        monkeypatch.setattr(hgru_pieces, "pieces_forward", count_forward)
        monkeypatch.setattr(hgru_pieces, "pieces_backward", count_backward)


CASES = [  # (mode, complex, lower bound kind, with lengths)
    ("causal", True, "rand", False),
    ("causal", False, "none", True),
    ("causal", True, "zero-first", True),
    ("bidirectional", True, "zero-first", True),
    ("bidirectional", False, "rand", False),
    ("bidirectional", True, "none", True),
]


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 1e-5)], ids=["fp64", "fp32"])
@pytest.mark.parametrize("mode,complex_,bound_kind,with_lengths", CASES)
def test_pieces_equal_whole(mode, complex_, bound_kind, with_lengths, dtype, tol, monkeypatch):
    """Output and every gradient (input, weights, bound, phases) as the whole-tensor path gives them, over
    pieces of 5 steps (37 = 7 x 5 + 2), batch rows of different lengths included."""
    torch.manual_seed(0)
    d, B, T = 6, 3, 37
    m = HGRU(d, mode, complex=complex_).to(dtype)
    m.recompute_projections = True
    x = torch.randn(B, T, d, dtype=dtype, requires_grad=True)
    bound = random_bound(bound_kind, d, dtype)
    lengths = torch.tensor([T, T - 5, 1]) if with_lengths else None
    weight = torch.randn(B, T, d, dtype=dtype)
    monkeypatch.setenv("HGRN_TIME_PIECE", "0")
    y_ref, g_ref = forward_backward(m, x, bound, lengths, None, weight)
    calls = _Calls(monkeypatch)
    monkeypatch.setenv("HGRN_TIME_PIECE", "5")
    y, g = forward_backward(m, x, bound, lengths, None, weight)
    assert (calls.forward, calls.backward) == (1, 1)
    assert_matches(y, g, y_ref, g_ref, tol)


def test_pieces_only_where_they_apply(monkeypatch):
    """Too short a sequence, projections kept (the CPU default for short sequences), 2D mode, a bound-only
    gate or autocast: the whole-tensor path."""
    calls = _Calls(monkeypatch)
    torch.manual_seed(1)
    x = torch.randn(2, 16, 4, requires_grad=True)
    m = HGRU(4, "bidirectional")
    m.recompute_projections = True
    monkeypatch.setenv("HGRN_TIME_PIECE", "5")  # 16 steps < 4 pieces of 5
    m(x).sum().backward()
    assert (calls.forward, calls.backward) == (0, 0)
    monkeypatch.setenv("HGRN_TIME_PIECE", "4")
    m(x).sum().backward()
    assert (calls.forward, calls.backward) == (1, 1)
    m.recompute_projections = None  # the CPU default keeps them below 1024 tokens
    m(x).sum().backward()
    assert (calls.forward, calls.backward) == (1, 1)
    m = HGRU(4, "causal")
    m.recompute_projections = "gzp"  # all three, named in another order
    m(x).sum().backward()
    assert (calls.forward, calls.backward) == (2, 2)
    m = HGRU(4, "bidirectional")
    m.recompute_projections = "g"  # p and z kept: the whole-tensor path
    m(x).sum().backward()
    HGRU(4, "2d")(x).sum().backward()
    HGRU(4, "causal", forget_mode="bound")(x, torch.rand(4)).sum().backward()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        HGRU(4, "causal")(x).float().sum().backward()
    assert (calls.forward, calls.backward) == (2, 2)


@pytest.mark.parametrize("mode", ["causal", "bidirectional"])
def test_pieces_hold_no_whole_gate_state_or_projection(mode, monkeypatch):
    """The only (B, T, .)-sized tensors the pieces allocate are the layer's output (forward), the input's
    gradient and, in bidirectional mode, the gradient reaching h (backward): every projection, gate, state
    and their gradients exist one piece at a time."""
    torch.manual_seed(2)
    B, T, d = 2, 64, 8
    m = HGRU(d, mode)
    m.recompute_projections = True
    x = torch.randn(B, T, d, requires_grad=True)
    monkeypatch.setenv("HGRN_TIME_PIECE", "8")
    made: dict[str, dict[int, int]] = {"forward": {}, "backward": {}}  # storages allocated inside: bytes

    class Record(TorchDispatchMode):
        def __init__(self, into: dict[int, int]):
            super().__init__()
            self.into = into

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            flat = torch.utils._pytree.tree_leaves((args, kwargs))
            inputs = {t.untyped_storage().data_ptr() for t in flat if isinstance(t, torch.Tensor)}
            for t in torch.utils._pytree.tree_leaves(out):  # new storages only, not views of the inputs
                if isinstance(t, torch.Tensor) and t.untyped_storage().data_ptr() not in inputs:
                    self.into.setdefault(t.untyped_storage().data_ptr(), t.untyped_storage().nbytes())
            return out

    for name in made:
        original = getattr(hgru_pieces, f"pieces_{name}")

        def recorded(*args, _original=original, _into=made[name], **kwargs):
            with Record(_into):
                return _original(*args, **kwargs)

        monkeypatch.setattr(hgru_pieces, f"pieces_{name}", recorded)
    m(x).sum().backward()
    whole = B * T * d * 4  # bytes of one (B, T, d_model) float32 tensor; the complex h is 2 d wide

    def big(name):
        return sorted(n // whole for n in made[name].values() if n >= whole)

    assert big("forward") == [1]  # the output
    assert big("backward") == ([1, 2] if mode == "bidirectional" else [1])  # dx (and the gradient reaching h)
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_bad_piece_setting_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("HGRN_TIME_PIECE", "many")
    with pytest.raises(ValueError, match="HGRN_TIME_PIECE"):
        hgru_pieces.piece_length(10_000)
    monkeypatch.setenv("HGRN_TIME_PIECE", "0")
    assert hgru_pieces.piece_length(10_000) is None
    monkeypatch.delenv("HGRN_TIME_PIECE")
    assert hgru_pieces.piece_length(hgru_pieces.MIN_PIECES * hgru_pieces.PIECE) == hgru_pieces.PIECE
    assert hgru_pieces.piece_length(hgru_pieces.MIN_PIECES * hgru_pieces.PIECE - 1) is None
