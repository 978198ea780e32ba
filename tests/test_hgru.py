"""HGRU modes against explicit scans, causality, step-by-step inference, padding, and clear errors."""
from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from kernels.reference import hgrn_scan_reference
from models import HGRU, forget_gate


def _mixer(mode: str, complex_: bool = True, d: int = 6, seed: int = 0) -> HGRU:
    torch.manual_seed(seed)
    return HGRU(d, mode, complex=complex_).double()


def test_forget_gate_matches_linear_formula():
    z = torch.randn(4, 7, 5, dtype=torch.float64) * 4
    gamma = torch.rand(5, dtype=torch.float64) * 0.99
    log_lam, one_minus = forget_gate(z, gamma)
    lam = gamma + (1 - gamma) * torch.sigmoid(z.float()).double()
    assert torch.allclose(log_lam.exp().double(), lam, rtol=1e-5)
    assert torch.allclose(one_minus.double(), 1 - lam, rtol=1e-4, atol=1e-7)
    # a bound of exactly 0 (layer 1 under cumsoftmax) gives logsigmoid and a finite gradient
    gamma0 = torch.zeros(5, requires_grad=True)
    log_lam0, _ = forget_gate(z.float(), gamma0)
    assert torch.allclose(log_lam0, F.logsigmoid(z.float()), atol=1e-6)
    log_lam0.sum().backward()
    assert torch.isfinite(gamma0.grad).all()


def _inputs_to_scan(m: HGRU, x: torch.Tensor, lower_bound=None):
    u, log_lam = m._recurrence_inputs(x, lower_bound)
    return u, log_lam


@pytest.mark.parametrize("complex_", [True, False], ids=["complex", "real"])
def test_2d_equals_four_explicit_scans(complex_):
    """The 2D mixer sums forward and reverse scans along every row and every column of the grid."""
    m = _mixer("2d", complex_)
    B, H, W, D = 2, 3, 5, 6
    x = torch.randn(B, H * W, D, dtype=torch.float64)
    bound = torch.rand(D, dtype=torch.float64) * 0.5
    got = m(x, bound, grid=(H, W))
    u, log_lam = _inputs_to_scan(m, x, bound)
    u, log_lam = u.reshape(B, H, W, D).to(torch.complex128 if complex_ else torch.float64), log_lam.reshape(B, H, W, D).double()
    tf = m.theta_forward if complex_ else None
    tr = m.theta_reverse if complex_ else None
    h = torch.zeros_like(u)
    for i in range(H):  # rows, left->right and right->left
        h[:, i] += hgrn_scan_reference(u[:, i], log_lam[:, i], tf) + hgrn_scan_reference(u[:, i], log_lam[:, i], tr, reverse=True)
    for j in range(W):  # columns, top->bottom and bottom->top
        h[:, :, j] += hgrn_scan_reference(u[:, :, j], log_lam[:, :, j], tf) + hgrn_scan_reference(
            u[:, :, j], log_lam[:, :, j], tr, reverse=True
        )
    want = m._output(h.reshape(B, H * W, D), x)
    assert torch.allclose(got, want, rtol=1e-9, atol=1e-10)


def test_causal_output_ignores_the_future_and_bidirectional_does_not():
    x = torch.randn(2, 40, 6, dtype=torch.float64)
    changed = x.clone()
    changed[:, 25:] = torch.randn(2, 15, 6, dtype=torch.float64)
    causal = _mixer("causal")
    a, b = causal(x), causal(changed)
    assert torch.equal(a[:, :25], b[:, :25])
    assert not torch.allclose(a[:, 25:], b[:, 25:])
    bidir = _mixer("bidirectional")
    a, b = bidir(x), bidir(changed)
    assert (a[:, :25] - b[:, :25]).abs().max() > 1e-6


@pytest.mark.parametrize("complex_", [True, False], ids=["complex", "real"])
def test_step_equals_parallel_scan(complex_):
    m = _mixer("causal", complex_)
    x = torch.randn(3, 90, 6, dtype=torch.float64)
    bound = torch.rand(6, dtype=torch.float64) * 0.9
    parallel = m(x, bound)
    state, outs = None, []
    for t in range(x.shape[1]):
        y, state = m.step(x[:, t], state, bound)
        outs.append(y)
    assert torch.allclose(torch.stack(outs, 1), parallel, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("mode", ["causal", "bidirectional"])
def test_padding_does_not_leak_into_true_positions(mode):
    """With lengths, what sits in the padding cannot change the outputs at true positions, either way."""
    m = _mixer(mode)
    x = torch.randn(2, 30, 6, dtype=torch.float64)
    lengths = torch.tensor([30, 17])
    other = x.clone()
    other[1, 17:] = torch.randn(13, 6, dtype=torch.float64) * 5
    a, b = m(x, lengths=lengths), m(other, lengths=lengths)
    assert torch.allclose(a[1, :17], b[1, :17], rtol=1e-10, atol=1e-12)
    # and a padded row equals the same row run alone at its true length
    alone = m(x[1:2, :17])
    assert torch.allclose(a[1, :17], alone[0], rtol=1e-10, atol=1e-12)


def test_no_forget_gate_means_no_memory():
    torch.manual_seed(0)
    m = HGRU(6, "causal", forget_mode="none").double()
    x = torch.randn(2, 20, 6, dtype=torch.float64)
    changed = x.clone()
    changed[:, :10] = torch.randn(2, 10, 6, dtype=torch.float64)
    assert torch.allclose(m(x)[:, 10:], m(changed)[:, 10:], rtol=0, atol=0)


@pytest.mark.parametrize("complex_", [True, False])
def test_bound_only_gate_ignores_the_input(complex_):
    """forget_mode='bound': lambda is the layer's lower bound alone, so the gate has no path from x."""
    torch.manual_seed(0)
    m = HGRU(6, "causal", complex=complex_, forget_mode="bound").double()
    assert m.lambda_proj is None
    gamma = (torch.rand(6, dtype=torch.float64) * 0.9).requires_grad_()
    x = torch.randn(2, 9, 6, dtype=torch.float64, requires_grad=True)
    u, log_lam = m._recurrence_inputs(x, gamma)
    assert torch.allclose(log_lam, gamma.log().expand_as(log_lam), rtol=0, atol=1e-15)
    assert log_lam.requires_grad  # through the (learnable) bound
    # d(gate)/dx is zero: the only tensor that depends on x is the input term u
    (grad,) = torch.autograd.grad(log_lam.sum(), x, allow_unused=True)
    assert grad is None or torch.count_nonzero(grad) == 0
    # and the recurrence equals an explicit loop with the constant gate gamma * e^{i theta}
    c = torch.nn.functional.silu(m.input_proj(x))
    if complex_:
        c = torch.complex(c[..., 0::2], c[..., 1::2])
        decay = torch.polar(gamma, m.theta_forward.double())
    else:
        decay = gamma
    h, expected = torch.zeros_like(c[:, 0]), []
    for t in range(x.shape[1]):
        h = decay * h + (1 - gamma) * c[:, t]
        expected.append(h)
    expected = torch.stack(expected, 1)
    assert torch.allclose(m(x, lower_bound=gamma), m._output(expected, x), rtol=1e-10, atol=1e-12)


def test_chrono_init_spreads_timescales():
    torch.manual_seed(0)
    m = HGRU(64, gate_init="chrono", max_timescale=1000)
    lam = torch.sigmoid(m.lambda_proj.bias)
    timescales = 1 / (1 - lam)
    assert timescales.min() >= 1.9 and timescales.max() <= 1000
    assert timescales.max() > 100  # some channels remember for hundreds of steps


def test_errors_are_clear():
    m = _mixer("2d")
    with pytest.raises(ValueError, match="not H x W"):
        m(torch.randn(1, 20, 6, dtype=torch.float64), grid=(4, 4))
    with pytest.raises(ValueError, match="not a square"):
        m(torch.randn(1, 20, 6, dtype=torch.float64))
    with pytest.raises(ValueError, match="unknown forget_mode 'always'"):
        HGRU(4, forget_mode="always")
    with pytest.raises(ValueError, match="unknown HGRU mode 'sideways'"):
        HGRU(4, "sideways")
    with pytest.raises(ValueError, match="needs a causal HGRU"):
        _mixer("bidirectional").step(torch.randn(1, 6, dtype=torch.float64))
