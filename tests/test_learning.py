"""A small HGRN really learns a long-range dependency; without a forget gate it cannot.

Task (generated here): the class is the first token; T = 512 noise tokens follow. A causal 2-layer HGRN
reads only its last position, so it must carry the first token across the whole sequence.
"""
from __future__ import annotations

import time

import pytest
import torch
from torch.nn import functional as F

from models import HGRN, ClassificationHead, SequenceClassifier, TokenEmbedding

CLASSES, VOCAB, T = 4, 16, 512


def make_batch(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    labels = torch.randint(0, CLASSES, (n,), generator=generator)
    tokens = torch.randint(CLASSES, VOCAB, (n, T), generator=generator)  # noise never uses a class token
    tokens[:, 0] = labels
    return tokens, labels


def train_and_evaluate(forget_gate: bool, budget_s: float = 50.0, max_steps: int = 400) -> float:
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    model = SequenceClassifier(
        TokenEmbedding(VOCAB, 32, positional=False),
        HGRN(32, 2, mode="causal", gate_init="chrono", max_timescale=T, forget_gate=forget_gate),
        ClassificationHead(32, CLASSES, pool="last"),
    )
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    test_tokens, test_labels = make_batch(512, torch.Generator().manual_seed(1))
    start = time.monotonic()
    for step in range(max_steps):
        tokens, labels = make_batch(32, gen)
        loss = F.cross_entropy(model(tokens), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if time.monotonic() - start > budget_s:
            break
    model.eval()
    with torch.no_grad():
        return (model(test_tokens).argmax(-1) == test_labels).float().mean().item()


@pytest.mark.slow
def test_hgrn_carries_the_first_token_across_512_steps():
    assert train_and_evaluate(forget_gate=True) > 0.9


@pytest.mark.slow
def test_without_forget_gate_it_stays_at_chance():
    accuracy = train_and_evaluate(forget_gate=False, budget_s=15.0, max_steps=150)
    assert abs(accuracy - 1 / CLASSES) < 0.08
