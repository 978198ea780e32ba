"""Per-layer lower bounds on the forget gate: the paper's cumulative softmax and the ablation schedules.

Every schedule returns an (L, D) tensor: row k is the bound gamma_k of layer k, each entry in [0, 1).
"""
from __future__ import annotations

import torch
from torch import nn

SCHEDULES = ("cumsoftmax", "none", "constant", "linear", "independent", "decreasing")


def _exclusive_cumsum(p: torch.Tensor) -> torch.Tensor:
    """Row k = sum of rows 0..k-1 (row 0 is exactly 0)."""
    return torch.cat([torch.zeros_like(p[:1]), torch.cumsum(p[:-1], dim=0)], dim=0)


class LowerBounds(nn.Module):
    """The lower bound of each layer's forget gate, by a named schedule.

    - ``cumsoftmax`` (the paper): P = softmax over layers of a learnable (L, D) parameter initialised to ones,
      gamma_k = P_0 + ... + P_{k-1}; layer 1 gets exactly 0, bounds rise strictly with depth, all stay < 1.
      Initial bounds are 0, 1/L, ..., (L-1)/L.
    - ``none``: 0 everywhere (the official ``use_lower_bound=False``).
    - ``constant``: the fixed value ``constant_value`` at every layer (not learned).
    - ``linear``: the fixed values k/L, the cumsoftmax schedule's starting point, not learned.
    - ``independent``: sigmoid of a learnable (L, D) parameter per layer, with no ordering between layers
      (the paper's "random" ablation); starts at max(k/L, 1/(2L)), i.e. where the paper's schedule starts.
    - ``decreasing``: the paper's schedule mirrored over depth: the top layer gets 0 and bounds fall with depth.
    """

    def __init__(self, schedule: str, n_layers: int, d_model: int, constant_value: float = 0.5) -> None:
        super().__init__()
        if schedule not in SCHEDULES:
            raise ValueError(
                f"unknown lower-bound schedule {schedule!r}; valid schedules: {', '.join(SCHEDULES)}"
            )
        if not 0.0 <= constant_value < 1.0:
            raise ValueError(f"constant_value must lie in [0, 1), got {constant_value}")
        self.schedule, self.n_layers, self.d_model = schedule, n_layers, d_model
        depth = torch.arange(n_layers, dtype=torch.float32).unsqueeze(1) / n_layers
        if schedule in ("cumsoftmax", "decreasing"):
            self.logits = nn.Parameter(torch.ones(n_layers, d_model))
        elif schedule == "independent":
            start = depth.clamp_min(0.5 / n_layers).expand(n_layers, d_model)
            self.logits = nn.Parameter(torch.logit(start).clone())
        elif schedule == "constant":
            self.register_buffer("fixed", torch.full((n_layers, d_model), float(constant_value)))
        elif schedule == "linear":
            self.register_buffer("fixed", depth.expand(n_layers, d_model).clone())
        else:
            self.register_buffer("fixed", torch.zeros(n_layers, d_model))

    @property
    def is_zero(self) -> bool:
        """True when no layer has a bound, so the gate can skip the lower-bound arithmetic."""
        return self.schedule == "none"

    def forward(self) -> torch.Tensor:
        """The (L, D) bounds, differentiable w.r.t. the schedule's parameters."""
        if self.schedule == "cumsoftmax":
            return _exclusive_cumsum(torch.softmax(self.logits, dim=0))
        if self.schedule == "decreasing":
            return _exclusive_cumsum(torch.softmax(self.logits, dim=0).flip(0)).flip(0)
        if self.schedule == "independent":
            return torch.sigmoid(self.logits)
        return self.fixed

    def extra_repr(self) -> str:
        return f"schedule={self.schedule!r}, n_layers={self.n_layers}, d_model={self.d_model}"
