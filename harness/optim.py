"""AdamW parameter groups and the learning-rate schedule, each with the published form one switch away.

Weight decay (``decay``): ``"weights"`` leaves norms, biases, lower bounds and phases undecayed (our choice);
``"all"`` decays every parameter, as the published LRA runs did (one AdamW group over ``model.parameters()``).

Schedule (``schedule``): ``"held"`` is a linear warm-up ``(step + 1) / warmup_steps``, then a cosine down to
``min_lr_ratio`` at ``total_steps``, held there; ``"huggingface"`` is ``transformers``'
``get_cosine_schedule_with_warmup`` (what the published runs stepped), whose warm-up is
``step / warmup_steps`` (0 at the first step) and whose cosine is not clamped: past ``total_steps`` it rises
again, back to the base rate at ``2 * total_steps - warmup_steps``.
"""
from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn

# Parameters named like these get no weight decay under "weights": the lower-bound logits and the HGRU phases
# are structural quantities, not weights to shrink.
NO_DECAY_NAMES = ("bounds.", "theta_forward", "theta_reverse")
DECAY_MODES = ("weights", "all")
SCHEDULES = ("held", "huggingface")


def parameter_groups(model: nn.Module, weight_decay: float, decay: Literal["weights", "all"] = "weights") -> list[dict]:
    """AdamW groups. ``"weights"``: matrices with ``weight_decay``; norms, biases, lower bounds and theta
    without. ``"all"``: one group, every trainable parameter with ``weight_decay``."""
    if decay not in DECAY_MODES:
        raise ValueError(f"weight-decay mode must be one of {DECAY_MODES}, got {decay!r}")
    trainable = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    if decay == "all":
        return [{"params": [p for _, p in trainable], "weight_decay": weight_decay}]
    decayed, not_decayed = [], []
    norm_types = (nn.LayerNorm, nn.BatchNorm1d, nn.GroupNorm)
    norm_params = {id(p) for m in model.modules() if isinstance(m, norm_types) for p in m.parameters(recurse=False)}
    for name, p in trainable:
        if p.ndim <= 1 or id(p) in norm_params or any(key in name for key in NO_DECAY_NAMES):
            not_decayed.append(p)
        else:
            decayed.append(p)
    return [{"params": decayed, "weight_decay": weight_decay}, {"params": not_decayed, "weight_decay": 0.0}]


def cosine_factor(step: int, warmup_steps: int, total_steps: int, min_lr_ratio: float = 0.0,
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


def cosine_with_warmup(
    optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int, min_lr_ratio: float = 0.0,
    schedule: Literal["held", "huggingface"] = "held",
) -> torch.optim.lr_scheduler.LambdaLR:
    """A LambdaLR stepped once per optimiser step with :func:`cosine_factor` (see the module docstring)."""
    if total_steps <= 0:
        raise ValueError(f"total_steps must be positive, got {total_steps}")
    if schedule not in SCHEDULES:
        raise ValueError(f"lr schedule must be one of {SCHEDULES}, got {schedule!r}")
    if schedule == "huggingface" and min_lr_ratio != 0.0:
        raise ValueError(f"the huggingface schedule decays to 0 (it has no floor); got min_lr_ratio={min_lr_ratio}. "
                         "Set min_lr_ratio 0 or use lr_schedule 'held'")
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: cosine_factor(step, warmup_steps, total_steps, min_lr_ratio, schedule))
