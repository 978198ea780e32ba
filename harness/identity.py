"""What a run record needs to know about a task's network, shared by the lra and vision LightningModules."""
from __future__ import annotations

import torch


class RecordedModelMixin:
    """For a LightningModule with ``hparams.backbone`` and a network ``self.net`` whose ``backbone`` may
    expose ``lower_bounds()`` (HGRN does; the Transformer does not)."""

    @property
    def model_name(self) -> str:
        return self.hparams.backbone

    def lower_bounds(self) -> torch.Tensor | None:
        """(L, D) forget-gate lower bounds of an HGRN backbone, None otherwise."""
        bounds = getattr(getattr(self.net, "backbone", None), "lower_bounds", None)
        return bounds() if callable(bounds) else None
