"""A small HGRN really learns a long-range dependency; without a forget gate it cannot.

Task (generated here): the class is the first token; NOISE = 512 noise tokens follow. A causal 2-layer HGRN
reads only its last position, so it must carry the first token across the whole sequence.
"""
from __future__ import annotations

import copy

import pytest
import torch
from torch.nn import functional as F

from models import HGRN, ClassificationHead, SequenceClassifier, TokenEmbedding

CLASSES, VOCAB, NOISE = 4, 16, 512


def make_batch(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    labels = torch.randint(0, CLASSES, (n,), generator=generator)
    tokens = torch.randint(CLASSES, VOCAB, (n, 1 + NOISE), generator=generator)  # noise never uses a class token
    tokens[:, 0] = labels
    return tokens, labels


def train_and_evaluate(forget_mode: str, max_steps: int) -> float:
    """Train with AdamW on fresh batches, checking a held-out check set every 25 steps; stop early once it is
    solved; return the accuracy on a separate test set of the weights that did best on the check set (model
    selection on held-out data, as a real run keeps its best checkpoint). Deterministic for one code path
    (fixed seeds), but where the jump from chance comes after a plateau whose length depends on the
    initialisation and on float32 rounding, and the constant learning rate makes the accuracy swing after
    it: the fused path with the native gate pass reached 0.73 on the check set at step 300, 0.79 at 400,
    fell to 0.45 at 500 and solved it at 550; with the gate on PyTorch ops it ended at 0.79. So the test asks
    for an accuracy far above chance (0.25; 512 test rows) from the best checkpoint, not for a solved task
    at one step."""
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    model = SequenceClassifier(
        TokenEmbedding(VOCAB, 32, positional=False),
        # chrono init: the official init starts every gate near 0.5 and passes no gradient across 512 steps
        # (it initialises the input-dependent gate, which forget_mode="none" does not have)
        HGRN(32, 2, mode="causal", gate_init="chrono" if forget_mode == "data" else "default", max_timescale=NOISE,
             forget_mode=forget_mode),
        ClassificationHead(32, CLASSES, pool="last"),
    )
    opt = torch.optim.AdamW(model.parameters(), lr=5e-3)
    check_tokens, check_labels = make_batch(256, torch.Generator().manual_seed(1))
    test_tokens, test_labels = make_batch(512, torch.Generator().manual_seed(2))

    def accuracy(tokens: torch.Tensor, labels: torch.Tensor) -> float:
        model.eval()
        with torch.no_grad():
            acc = (model(tokens).argmax(-1) == labels).float().mean().item()
        model.train()
        return acc

    best, best_state = -1.0, None
    for step in range(1, max_steps + 1):
        tokens, labels = make_batch(32, gen)
        loss = F.cross_entropy(model(tokens), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 25 == 0:
            check = accuracy(check_tokens, check_labels)
            if check > best:
                best, best_state = check, copy.deepcopy(model.state_dict())
            if check > 0.97:
                break
    model.load_state_dict(best_state)
    return accuracy(test_tokens, test_labels)


@pytest.mark.slow
def test_hgrn_carries_the_first_token_across_512_steps():
    assert train_and_evaluate(forget_mode="data", max_steps=500) > 0.6


@pytest.mark.slow
def test_without_forget_gate_it_stays_at_chance():
    accuracy = train_and_evaluate(forget_mode="none", max_steps=150)
    assert abs(accuracy - 1 / CLASSES) < 0.08
