"""The DeiT learning-rate rule and schedule (reference/hgrn.md section 4.2).

- Linear scaling: DeiT's main.py sets lr = lr x total batch / 512 (5e-4 at 2048 images -> 2e-3).
- timm's CosineLRScheduler as DeiT builds it (``warmup_prefix`` off): linear warmup from ``warmup_lr`` to the
  peak over the warmup steps, and a cosine from the peak at step 0 to ``min_lr`` at the last step that the
  warmup overrides at its start; held at ``min_lr`` afterwards. DeiT steps it once per epoch; here it is
  stepped per optimiser step, so the curve is the same but smooth.
"""
from __future__ import annotations

import math

import torch


def scaled_lr(lr: float, total_batch: int, reference_batch: int | None) -> float:
    """``lr`` given for ``reference_batch`` images, rescaled linearly to ``total_batch``; None: unscaled."""
    if reference_batch is None:
        return lr
    if reference_batch < 1 or total_batch < 1:
        raise ValueError(f"batch sizes must be positive, got total {total_batch}, reference {reference_batch}")
    return lr * total_batch / reference_batch


def warmup_cosine_lr(step: int, peak_lr: float, total_steps: int, warmup_steps: int, warmup_lr: float, min_lr: float) -> float:
    """The learning rate after ``step`` optimiser steps."""
    if step < warmup_steps:
        return warmup_lr + (peak_lr - warmup_lr) * step / warmup_steps
    progress = min(1.0, step / max(1, total_steps))
    return min_lr + (peak_lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))


def warmup_cosine(
    optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int, warmup_lr: float, min_lr: float
) -> torch.optim.lr_scheduler.LambdaLR:
    """A per-step LambdaLR following :func:`warmup_cosine_lr`; the optimiser's lr is the peak."""
    if total_steps <= 0:
        raise ValueError(f"total_steps must be positive, got {total_steps}")
    peaks = [group["lr"] for group in optimizer.param_groups]
    if len(set(peaks)) != 1:
        raise ValueError(f"all parameter groups need the same peak lr, got {peaks}")
    peak = peaks[0]
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: warmup_cosine_lr(step, peak, total_steps, warmup_steps, warmup_lr, min_lr) / peak)
