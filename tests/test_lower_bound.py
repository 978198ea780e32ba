"""Lower-bound schedules: the paper's cumulative softmax and the ablations have the shapes they are named for."""
from __future__ import annotations

import pytest
import torch

from models import HGRN, SCHEDULES, LowerBounds


def _randomise(bounds: LowerBounds) -> None:
    with torch.no_grad():
        for p in bounds.parameters():
            p.normal_(0, 2)


def test_cumsoftmax_zero_first_layer_strictly_increasing_below_one():
    torch.manual_seed(0)
    for _ in range(5):
        b = LowerBounds("cumsoftmax", 6, 16)
        _randomise(b)
        g = b()
        assert torch.equal(g[0], torch.zeros(16))
        assert (g[1:] - g[:-1] > 0).all()
        assert (g < 1).all()
    # initial values are 0, 1/L, ..., (L-1)/L as in the official code
    assert torch.allclose(LowerBounds("cumsoftmax", 4, 3)(), (torch.arange(4.0) / 4)[:, None].expand(4, 3))


def test_ablation_schedules_have_their_shapes():
    torch.manual_seed(0)
    L, D = 5, 8
    assert torch.equal(LowerBounds("none", L, D)(), torch.zeros(L, D))
    const = LowerBounds("constant", L, D, constant_value=0.3)()
    assert torch.allclose(const, torch.full((L, D), 0.3))
    assert not list(LowerBounds("constant", L, D).parameters())  # fixed, not learned
    assert torch.allclose(LowerBounds("linear", L, D)(), (torch.arange(L) / L).float()[:, None].expand(L, D))
    dec = LowerBounds("decreasing", L, D)
    _randomise(dec)
    g = dec()
    assert torch.equal(g[-1], torch.zeros(D)) and (g[:-1] - g[1:] > 0).all() and (g < 1).all()
    ind = LowerBounds("independent", L, D)
    start = ind()
    assert ((start > 0) & (start < 1)).all() and (start[1:] >= start[:-1]).all()
    _randomise(ind)
    g = ind()
    assert ((g > 0) & (g < 1)).all()
    assert ((g[1:] - g[:-1]) < 0).any(), "independent bounds must be free to fall with depth"
    # each layer depends only on its own row of parameters
    g[2].sum().backward()
    assert ind.logits.grad[2].abs().sum() > 0 and ind.logits.grad[[0, 1, 3, 4]].abs().sum() == 0


def test_unknown_schedule_lists_valid_ones():
    with pytest.raises(ValueError) as err:
        LowerBounds("cosine", 3, 4)
    for name in SCHEDULES:
        assert name in str(err.value)


def test_backbone_reports_the_bounds_it_uses():
    torch.manual_seed(0)
    net = HGRN(8, 3, lower_bound="cumsoftmax")
    _randomise(net.bounds)
    bounds = net.lower_bounds()
    assert bounds.shape == (3, 8) and not bounds.requires_grad
    assert torch.equal(bounds, net.bounds().detach())
    # the bound really reaches the gate: with a higher bound the layer forgets less
    x = torch.randn(2, 10, 8)
    z = net.mixers[2].layer.lambda_proj(net.mixers[2].norm(x))
    from models import forget_gate

    log_with, _ = forget_gate(z, bounds[2])
    log_without, _ = forget_gate(z, None)
    assert (log_with >= log_without - 1e-6).all() and (log_with > log_without).any()
