"""AdamW without weight decay on norms, biases, lower bounds and phases; cosine schedule with linear warmup."""
from __future__ import annotations

import math

import torch
from torch import nn

# Parameters named like these get no weight decay: the lower-bound logits and the HGRU phases are
# structural quantities, not weights to shrink (the official code decayed them; we follow the issue).
NO_DECAY_NAMES = ("bounds.", "theta_forward", "theta_reverse")


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two AdamW groups: matrices with ``weight_decay``; norms, biases, embeddings' padding-free vectors,
    lower bounds and theta without."""
    decay, no_decay = [], []
    norm_types = (nn.LayerNorm, nn.BatchNorm1d, nn.GroupNorm)
    norm_params = {id(p) for m in model.modules() if isinstance(m, norm_types) for p in m.parameters(recurse=False)}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if p.ndim <= 1 or id(p) in norm_params or any(key in name for key in NO_DECAY_NAMES):
            no_decay.append(p)
        else:
            decay.append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def cosine_with_warmup(
    optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int, min_lr_ratio: float = 0.0
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warmup to the base lr, cosine decay to ``min_lr_ratio`` x base at ``total_steps``, then held
    there (HuggingFace's schedule, which the official code used, rises again past its end)."""
    if total_steps <= 0:
        raise ValueError(f"total_steps must be positive, got {total_steps}")

    def factor(step: int) -> float:
        if warmup_steps > 0 and step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
