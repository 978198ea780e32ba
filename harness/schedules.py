"""The two learning-rate curves of the benchmark, each a ``LambdaLR`` stepped once per optimiser step.

They look alike (a warm-up, then a cosine) but are different curves; each task family uses exactly one.

``lra_cosine_schedule`` (LRA, ``lra/task.py``): a multiple of the base rate. ``schedule="held"`` (our default)
warms up linearly as ``(step + 1) / warmup_steps``, then a cosine starting at the end of the warm-up falls to
``min_lr_ratio`` at ``total_steps`` and is held there. ``schedule="huggingface"`` is ``transformers``'
``get_cosine_schedule_with_warmup`` (what the published runs stepped): the warm-up is
``step / warmup_steps`` (0 at the first step) and the cosine is not clamped, so past ``total_steps`` it rises
again, back to the base rate at ``2 * total_steps - warmup_steps`` (docs/FIDELITY.md, item 7).

``deit_warmup_cosine`` (vision, ``vision/task.py``): timm's ``CosineLRScheduler`` as DeiT builds it
(``warmup_prefix`` off), in absolute rates. A linear warm-up from ``warmup_lr`` to the peak over the warm-up
steps overrides the start of a cosine that runs from the peak at step 0 (not at the end of the warm-up) to
``min_lr`` at ``total_steps``, held there. DeiT steps it once per epoch; stepped per optimiser step here, the
curve is the same but smooth. ``deit_scaled_lr`` is DeiT's linear scaling rule for the peak.
"""
from __future__ import annotations

import math
from typing import Literal

import torch

LRA_SCHEDULES = ("held", "huggingface")


def lra_cosine_multiplier(step: int, warmup_steps: int, total_steps: int, min_lr_ratio: float = 0.0,
                          schedule: Literal["held", "huggingface"] = "held") -> float:
    """The multiple of the base learning rate used at optimiser step ``step`` (0-based)."""
    if schedule == "huggingface":
        if step < warmup_steps:
            return step / max(1, warmup_steps)
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return max(0.0, 0.5 * (1.0 + math.cos(math.pi * progress)))
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def lra_cosine_schedule(
    optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int, min_lr_ratio: float = 0.0,
    schedule: Literal["held", "huggingface"] = "held",
) -> torch.optim.lr_scheduler.LambdaLR:
    """A LambdaLR following :func:`lra_cosine_multiplier` (see the module docstring)."""
    if total_steps <= 0:
        raise ValueError(f"total_steps must be positive, got {total_steps}")
    if schedule not in LRA_SCHEDULES:
        raise ValueError(f"lr schedule must be one of {LRA_SCHEDULES}, got {schedule!r}")
    if schedule == "huggingface" and min_lr_ratio != 0.0:
        raise ValueError(f"the huggingface schedule decays to 0 (it has no floor); got min_lr_ratio={min_lr_ratio}. "
                         "Set min_lr_ratio 0 or use lr_schedule 'held'")
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lra_cosine_multiplier(step, warmup_steps, total_steps, min_lr_ratio, schedule))


def deit_scaled_lr(lr: float, total_batch: int, reference_batch: int | None) -> float:
    """``lr`` given for ``reference_batch`` images, rescaled linearly to ``total_batch``; None: unscaled.

    DeiT's main.py: lr x total batch / 512 (5e-4 at 2048 images -> 2e-3)."""
    if reference_batch is None:
        return lr
    if reference_batch < 1 or total_batch < 1:
        raise ValueError(f"batch sizes must be positive, got total {total_batch}, reference {reference_batch}")
    return lr * total_batch / reference_batch


def deit_warmup_cosine_lr(step: int, peak_lr: float, total_steps: int, warmup_steps: int, warmup_lr: float,
                          min_lr: float) -> float:
    """The learning rate (absolute, not a multiple) after ``step`` optimiser steps."""
    if step < warmup_steps:
        return warmup_lr + (peak_lr - warmup_lr) * step / warmup_steps
    progress = min(1.0, step / max(1, total_steps))
    return min_lr + (peak_lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))


def deit_warmup_cosine(
    optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int, warmup_lr: float, min_lr: float
) -> torch.optim.lr_scheduler.LambdaLR:
    """A LambdaLR following :func:`deit_warmup_cosine_lr`; the optimiser's lr is the peak."""
    if total_steps <= 0:
        raise ValueError(f"total_steps must be positive, got {total_steps}")
    peaks = [group["lr"] for group in optimizer.param_groups]
    if len(set(peaks)) != 1:
        raise ValueError(f"all parameter groups need the same peak lr, got {peaks}")
    peak = peaks[0]
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: deit_warmup_cosine_lr(step, peak, total_steps, warmup_steps, warmup_lr, min_lr) / peak)
