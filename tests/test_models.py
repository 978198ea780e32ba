"""Backbones, embeddings and heads: parameter counts, masking, pooling, and errors."""
from __future__ import annotations

import pytest
import torch

from models import (
    HGRN, ClassificationHead, PatchEmbedding, RetrievalHead, RetrievalModel, SequenceClassifier, TokenEmbedding,
    Transformer, hgrn_deit, pool, sinusoidal_positions,
)
from models.norms import SequenceBatchNorm


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("size, official", [("tiny", 6.11e6), ("small", 23.72e6)])
def test_hgrn_deit_parameter_counts_match_official(size, official):
    assert abs(_count(hgrn_deit(size)) - official) / official < 0.01


def test_hgrn_deit_classifies_images():
    model = hgrn_deit("tiny", num_classes=10, depth=2)
    assert model(torch.randn(2, 3, 224, 224)).shape == (2, 10)


def test_patch_embedding_orders_patches_in_raster_order():
    emb = PatchEmbedding(2, 1, 4)
    with torch.no_grad():
        emb.proj.weight.zero_()
        emb.proj.bias.zero_()
        emb.proj.weight[0, 0] = 1.0  # channel 0 reads the top-left pixel of each patch
    img = torch.arange(16.0).reshape(1, 1, 4, 4)
    out = emb(img)
    assert out.shape == (1, 4, 4)
    assert out[0, :, 0].tolist() == [0.0, 2.0, 8.0, 10.0]
    with pytest.raises(ValueError, match="not divisible by the patch size"):
        emb(torch.randn(1, 1, 5, 4))


def test_sinusoidal_positions_are_the_standard_table():
    table = sinusoidal_positions(50, 8)
    assert torch.allclose(table[:, 0], torch.sin(torch.arange(50.0)))
    assert torch.allclose(table[:, 1], torch.cos(torch.arange(50.0)))
    assert torch.allclose(table[7, 2], torch.sin(torch.tensor(7.0) / 10000 ** (2 / 8)))


def test_masked_mean_pool_ignores_padding():
    feats = torch.randn(2, 6, 3)
    lengths = torch.tensor([6, 2])
    pooled = pool(feats, lengths)
    assert torch.allclose(pooled[1], feats[1, :2].mean(0))
    assert torch.allclose(pool(feats, lengths, "last")[1], feats[1, 1])
    with pytest.raises(ValueError, match="lengths must lie in"):
        pool(feats, torch.tensor([7, 2]))


@pytest.mark.parametrize("backbone", ["hgrn", "transformer"])
def test_padding_does_not_change_predictions(backbone):
    """Both baselines give the same logits for a row whatever padding follows it."""
    torch.manual_seed(0)
    body = HGRN(16, 2, mode="bidirectional") if backbone == "hgrn" else Transformer(16, 2, n_heads=4)
    model = SequenceClassifier(TokenEmbedding(30, 16), body, ClassificationHead(16, 5)).eval()
    tokens = torch.randint(1, 30, (2, 12))
    lengths = torch.tensor([12, 7])
    padded_differently = tokens.clone()
    padded_differently[1, 7:] = torch.randint(1, 30, (5,))
    a, b = model(tokens, lengths), model(padded_differently, lengths)
    assert torch.allclose(a, b, atol=1e-5)
    alone = model(tokens[1:2, :7], lengths[1:2])
    assert torch.allclose(a[1], alone[0], atol=1e-5)


def test_causal_transformer_does_not_look_ahead():
    torch.manual_seed(0)
    t = Transformer(16, 2, n_heads=2, causal=True).eval()
    x = torch.randn(1, 10, 16)
    y = x.clone()
    y[:, 6:] += 1
    assert torch.allclose(t(x)[:, :6], t(y)[:, :6], atol=1e-6)


def test_retrieval_model_shares_the_encoder_and_is_symmetric_in_shape():
    torch.manual_seed(0)
    model = RetrievalModel(TokenEmbedding(20, 8), HGRN(8, 1, mode="bidirectional", norm="batch"), RetrievalHead(8))
    x1, x2 = torch.randint(1, 20, (3, 9)), torch.randint(1, 20, (3, 5))
    logits = model(x1, x2, torch.tensor([9, 4, 2]), torch.tensor([5, 5, 1]))
    assert logits.shape == (3, 2)
    assert {n.split(".")[0] for n, _ in model.named_parameters()} == {"embedding", "backbone", "head"}


def test_token_embedding_rejects_out_of_range_ids():
    emb = TokenEmbedding(10, 4)
    with pytest.raises(ValueError, match=r"token ids must lie in \[0, 10\)"):
        emb(torch.tensor([[1, 10]]))
    with pytest.raises(TypeError, match="integer token ids"):
        emb(torch.randn(1, 3))


def test_stochastic_depth_reaches_the_blocks():
    torch.manual_seed(0)
    net = HGRN(8, 4, drop_path=0.3)
    rates = [m.drop_path.p for m in net.mixers]
    assert rates[0] == 0.0 and rates[-1] == pytest.approx(0.3) and rates == sorted(rates)
    net.train()
    x = torch.randn(64, 5, 8)
    a, b = net(x), net(x)
    assert not torch.allclose(a, b)  # random branches dropped while training
    net.eval()
    assert torch.allclose(net(x), net(x))


def test_sequence_batch_norm_equals_batch_norm_over_channels():
    """SequenceBatchNorm on (B, T, D) rows = BatchNorm1d on the (B, D, T) layout: outputs, gradients and
    running statistics, in training and in eval mode."""
    torch.manual_seed(0)
    ours, ref = SequenceBatchNorm(6).double(), torch.nn.BatchNorm1d(6).double()
    with torch.no_grad():
        ours.weight.uniform_(0.5, 1.5), ours.bias.uniform_(-1, 1)
    ref.load_state_dict(ours.state_dict())
    for train in (True, False):
        ours.train(train), ref.train(train)
        x = torch.randn(3, 7, 6, dtype=torch.double, requires_grad=True)
        got = ours(x)
        want = ref(x.transpose(1, 2)).transpose(1, 2)
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
        assert got.is_contiguous()
        dy = torch.randn_like(got)
        grads = torch.autograd.grad(got, (x, ours.weight, ours.bias), dy)
        want_grads = torch.autograd.grad(want, (x, ref.weight, ref.bias), dy)
        for a, b in zip(grads, want_grads):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(ours.running_mean, ref.running_mean, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(ours.running_var, ref.running_var, rtol=1e-12, atol=1e-12)
