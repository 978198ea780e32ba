"""keep_norm_input (models/norm_recompute.py): the same gradients, without keeping the normalised copies."""
from __future__ import annotations

import gc
import weakref

import pytest
import torch
from torch import nn

from models import HGRN, Transformer
from models.norm_recompute import keep_norm_input, rebuild_function
from models.norms import SequenceBatchNorm, SimpleRMSNorm, make_norm
from models.residual import PreNormResidual


def _set(net: nn.Module, keep: bool) -> None:
    for m in net.modules():
        if isinstance(m, PreNormResidual):
            m.keep_norm_input = keep


def _grads(net: nn.Module, x: torch.Tensor, keep: bool) -> list[torch.Tensor]:
    _set(net, keep)
    net.zero_grad(set_to_none=True)
    x.grad = None
    y = net(x)
    (y * torch.linspace(-1, 1, y.numel(), dtype=y.dtype).view_as(y)).sum().backward()
    return [x.grad.clone()] + [p.grad.clone() for p in net.parameters() if p.grad is not None]


@pytest.mark.parametrize("norm", ["layer", "batch", "rms"])
@pytest.mark.parametrize("backbone", ["hgrn-bidirectional", "hgrn-2d", "transformer"])
def test_same_gradients_as_keeping_the_normalised_copy(norm, backbone):
    torch.manual_seed(0)
    if backbone == "transformer":
        net = Transformer(16, 2, n_heads=2, ffn_ratio=2.0, norm=norm)
    else:
        net = HGRN(16, 2, mode=backbone.split("-")[1], norm=norm, glu_ratio=2.0)
    net = net.double()
    x = torch.randn(3, 16, 16, dtype=torch.double, requires_grad=True)
    kept, rebuilt = _grads(net, x, False), _grads(net, x, True)
    assert len(kept) == len(rebuilt) == len([p for p in net.parameters()]) + 1
    for a, b in zip(kept, rebuilt):
        torch.testing.assert_close(b, a, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("keep", [False, True])
def test_transformer_option_sets_every_block(keep):
    """Transformer(keep_norm_input=...) reaches every sub-layer; off by default (the baseline as published)."""
    blocks = [m for m in Transformer(16, 2, keep_norm_input=keep).modules() if isinstance(m, PreNormResidual)]
    assert len(blocks) == 4 and all(b.keep_norm_input is keep for b in blocks)
    assert not any(m.keep_norm_input for m in Transformer(16, 2).modules() if isinstance(m, PreNormResidual))


@pytest.mark.parametrize("keep", [False, True])
def test_normalised_copy_is_freed_after_the_forward(keep):
    """The norm's output outlives the forward only when it is kept for the backward."""
    torch.manual_seed(0)
    net = HGRN(16, 1, mode="bidirectional", glu_ratio=2.0)
    _set(net, keep)
    outputs = []
    for block in (*net.mixers, *net.channel_mixers):
        block.norm.register_forward_hook(lambda m, i, o: outputs.append(weakref.ref(o)))
    loss = net(torch.randn(2, 16, 16, requires_grad=True)).sum()
    gc.collect()
    alive = [r() is not None for r in outputs]
    assert len(alive) == 2 and alive == [not keep] * 2
    loss.backward()


def test_batch_norm_running_statistics_are_updated_once():
    torch.manual_seed(0)
    stats = []
    for keep in (False, True):
        torch.manual_seed(1)
        net = HGRN(16, 2, mode="bidirectional", norm="batch")
        _set(net, keep)
        net(torch.randn(3, 16, 16)).sum().backward()
        stats.append([b.clone() for b in net.buffers() if b.dtype.is_floating_point])
        assert all(m.num_batches_tracked.item() == 1 for m in net.modules() if isinstance(m, SequenceBatchNorm))
    for a, b in zip(*stats):
        torch.testing.assert_close(b, a, rtol=0, atol=0)


def test_backward_twice_with_retained_graph():
    torch.manual_seed(0)
    net = HGRN(16, 1, mode="bidirectional").double()
    _set(net, True)
    x = torch.randn(2, 16, 16, dtype=torch.double, requires_grad=True)
    loss = net(x).pow(2).sum()
    first = torch.autograd.grad(loss, x, retain_graph=True)[0]
    second = torch.autograd.grad(loss, x)[0]
    torch.testing.assert_close(second, first, rtol=0, atol=0)


def test_norms_that_cannot_be_rebuilt_run_as_before():
    eval_bn = SequenceBatchNorm(8).eval()
    assert rebuild_function(eval_bn) is None  # running statistics may change before the backward
    assert rebuild_function(nn.Identity()) is None
    assert rebuild_function(nn.SyncBatchNorm(8)) is None
    assert rebuild_function(make_norm("layer", 8)) is not None
    assert rebuild_function(SimpleRMSNorm()) is not None
    assert rebuild_function(SequenceBatchNorm(8)) is not None
    x = torch.randn(2, 4, 8, requires_grad=True)
    y = eval_bn(x)
    with keep_norm_input(x, y, eval_bn) as active:
        assert not active
    with torch.no_grad(), keep_norm_input(x, make_norm("layer", 8)(x), make_norm("layer", 8)) as active:
        assert not active  # nothing is saved without gradients
