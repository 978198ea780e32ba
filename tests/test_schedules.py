"""The two learning-rate curves of harness/schedules.py, each against its formula written out here, stepped
through a real optimiser, and their bad-input errors."""
from __future__ import annotations

import math

import pytest
import torch

from harness.schedules import (
    deit_scaled_lr, deit_warmup_cosine, deit_warmup_cosine_lr, lra_cosine_multiplier, lra_cosine_schedule,
)


def rates(optimizer: torch.optim.Optimizer, schedule: torch.optim.lr_scheduler.LRScheduler, steps: int) -> list[float]:
    """The learning rate each of `steps` optimiser steps runs at."""
    seen = []
    for _ in range(steps):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    return seen


def one_parameter_adamw(lr: float) -> torch.optim.Optimizer:
    return torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=lr)


# -- LRA: a multiple of the base rate ------------------------------------------------------------------------

def test_lra_held_curve_warms_up_then_falls_to_its_floor_and_stays():
    base, warm, total, floor = 1e-3, 10, 100, 0.1
    want = [(s + 1) / warm if s < warm
            else floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, (s - warm) / (total - warm))))
            for s in range(total + 30)]
    optimizer = one_parameter_adamw(base)
    seen = rates(optimizer, lra_cosine_schedule(optimizer, warm, total, floor, "held"), total + 30)
    assert seen == pytest.approx([base * w for w in want])
    assert seen[warm] == pytest.approx(base)  # the cosine starts where the warm-up ends
    assert seen[total:] == pytest.approx([base * floor] * 30)


def test_lra_without_warmup_starts_at_the_base_rate():
    assert lra_cosine_multiplier(0, 0, 50) == 1.0
    assert lra_cosine_multiplier(50, 0, 50) == pytest.approx(0.0)


@pytest.mark.parametrize("kwargs, message", [
    ({"total_steps": 0}, "total_steps must be positive"),
    ({"schedule": "linear"}, "lr schedule must be one of"),
    ({"schedule": "huggingface", "min_lr_ratio": 0.1}, "has no floor"),
])
def test_lra_schedule_refuses_bad_arguments(kwargs, message):
    args = {"warmup_steps": 2, "total_steps": 10, **kwargs}
    with pytest.raises(ValueError, match=message):
        lra_cosine_schedule(one_parameter_adamw(1e-3), **args)


# -- DeiT: timm's curve in absolute rates ---------------------------------------------------------------------

def test_lr_scaling_rule_gives_the_papers_effective_lr() -> None:
    assert deit_scaled_lr(5e-4, 2048, 512) == pytest.approx(2e-3)
    assert deit_scaled_lr(1e-3, 64, None) == 1e-3
    with pytest.raises(ValueError, match="batch sizes must be positive"):
        deit_scaled_lr(1e-3, 0, 512)


def test_schedule_warms_up_from_warmup_lr_then_follows_the_cosine_to_min_lr() -> None:
    peak, total, warm, w_lr, m_lr = 2e-3, 300, 10, 1e-6, 1e-5
    lrs = [deit_warmup_cosine_lr(s, peak, total, warm, w_lr, m_lr) for s in range(total + 20)]
    assert lrs[0] == pytest.approx(w_lr)
    assert all(b > a for a, b in zip(lrs[:warm - 1], lrs[1:warm]))
    # timm without warmup_prefix: the cosine is measured from step 0, so at the end of warmup it has decayed a bit
    assert lrs[warm] == pytest.approx(m_lr + (peak - m_lr) * 0.5 * (1 + math.cos(math.pi * warm / total)))
    assert all(b <= a for a, b in zip(lrs[warm:], lrs[warm + 1:]))
    assert lrs[total] == pytest.approx(m_lr) and lrs[-1] == pytest.approx(m_lr)
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=peak)
    schedule = deit_warmup_cosine(optimizer, total, warm, w_lr, m_lr)
    seen = []
    for _ in range(total):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    assert seen == pytest.approx(lrs[:total])


def test_deit_schedule_refuses_bad_arguments():
    with pytest.raises(ValueError, match="total_steps must be positive"):
        deit_warmup_cosine(one_parameter_adamw(1e-3), 0, 1, 1e-6, 1e-5)
    two_peaks = torch.optim.AdamW([{"params": [torch.nn.Parameter(torch.zeros(1))], "lr": 1e-3},
                                   {"params": [torch.nn.Parameter(torch.zeros(1))], "lr": 2e-3}])
    with pytest.raises(ValueError, match="same peak lr"):
        deit_warmup_cosine(two_peaks, 10, 1, 1e-6, 1e-5)


def test_the_two_curves_differ_where_their_cosines_start():
    """Why they have different names: at the end of the same warm-up the LRA curve is at its peak (its cosine
    starts there), DeiT's is already below it (its cosine started at step 0)."""
    warm, total = 20, 100
    assert lra_cosine_multiplier(warm, warm, total) == 1.0
    assert deit_warmup_cosine_lr(warm, 1.0, total, warm, 0.0, 0.0) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.2)))
    assert deit_warmup_cosine_lr(warm, 1.0, total, warm, 0.0, 0.0) < 0.91
