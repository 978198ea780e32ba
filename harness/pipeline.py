"""The pipeline switches a run used (docs/FIDELITY.md), gathered for its run record.

A LightningModule and a DataModule may each expose ``pipeline`` (a dict of switch -> value); the trainer adds
its numeric precision. ``results/`` can label rows from this dict without reading the config.
"""
from __future__ import annotations

from typing import Any


def pipeline_switches(model: Any, datamodule: Any, trainer: Any) -> dict[str, Any]:
    """Data switches, then model switches, then ``precision`` (e.g. ``32-true``, ``bf16-mixed``)."""
    out: dict[str, Any] = {}
    for owner in (datamodule, model):
        switches = getattr(owner, "pipeline", None)
        if isinstance(switches, dict):
            out.update(switches)
    out["precision"] = str(getattr(trainer, "precision", "unknown"))
    return out
