"""AdamW parameter groups, with the published form one switch away (the learning-rate curves are in
harness/schedules.py).

Weight decay (``decay``): ``"weights"`` leaves norms, biases, lower bounds and phases undecayed (our choice);
``"all"`` decays every parameter, as the published LRA runs did (one AdamW group over ``model.parameters()``).
"""
from __future__ import annotations

from typing import Literal

from torch import nn

# Parameters named like these get no weight decay under "weights": the lower-bound logits and the HGRU phases
# are structural quantities, not weights to shrink.
NO_DECAY_NAMES = ("bounds.", "theta_forward", "theta_reverse")
DECAY_MODES = ("weights", "all")


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
