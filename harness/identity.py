"""Run identity and the run-record contract, written down once (docs/ARCHITECTURE.md section 4).

- Who a run is: (suite, task, model, variant, seed), its folder ``<root>/<suite>/<task>/<model>-<variant>/seed<k>``
  and the variant rule: a run's variant is its model's ``default_variant``, or that followed by ``-<label>`` for a
  label declared in ``VARIANT_LABELS``.
- The record's file name, schema version, statuses and metric fields, which harness/records.py writes and
  results/records.py reads.
- What the CLI needs from a task's LightningModule (``RecordedModel``) and a mixin that provides most of it.

Imports no torch and no Lightning, so that results/ and run_all.py stay light.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    import torch

RECORD_NAME = "record.json"
SCHEMA = 1
SUPPORTED_SCHEMAS: tuple[int, ...] = (1,)
STATUSES: tuple[str, ...] = ("complete", "running", "failed")
IDENTITY_FIELDS: tuple[str, ...] = ("suite", "task", "model", "variant", "seed")
# Accuracies are fractions in [0, 1]; any of them can be the one the tables report.
ACCURACY_METRICS: tuple[str, ...] = ("test_acc_at_best_val", "test_acc_last", "val_acc_best")
# Training progress and size, then the rows behind the test and validation accuracies (n_*; for intervals).
PROGRESS_METRICS: tuple[str, ...] = ("epochs", "steps", "params", "wall_time_s")
ROW_COUNT_METRICS: tuple[str, ...] = ("n_test", "n_val")
METRIC_FIELDS: tuple[str, ...] = ACCURACY_METRICS + PROGRESS_METRICS + ROW_COUNT_METRICS

# Labels a suite may add to a model's default variant, and what each promises. A label says something the
# model's arguments alone do not show (the pipeline switches live partly in the data and the trainer).
CORRECTED_LABEL = "corrected"
VARIANT_LABELS: dict[str, str] = {
    CORRECTED_LABEL: "the corrected pipeline (lra/configs/overlays/corrected.yaml, docs/FIDELITY.md) laid over "
                     "a config that runs the published one",
}


class RunIdentityError(ValueError):
    """A run whose declared identity disagrees with what its command line builds; the message says where."""


@dataclass(frozen=True)
class RunIdentity:
    """The fields that name a run in its record, in tables and in its folder."""

    suite: str
    task: str
    model: str
    variant: str
    seed: int

    @property
    def name(self) -> str:
        """``<task>/<model>-<variant>/seed<k>``: the run's folder below its suite's."""
        return f"{self.task}/{self.model}-{self.variant}/seed{self.seed}"

    def run_dir(self, root: str | os.PathLike) -> Path:
        return Path(root) / self.suite / self.task / f"{self.model}-{self.variant}" / f"seed{self.seed}"

    def as_record(self) -> dict[str, str | int]:
        """The identity fields of a record, in IDENTITY_FIELDS order."""
        return asdict(self)


def variant_mismatch(variant: str, default_variant: str) -> str | None:
    """Why ``variant`` cannot name a run whose model says ``default_variant``; None when it can, i.e. when it
    equals ``default_variant`` or is ``default_variant-<label>`` for a label in VARIANT_LABELS."""
    if variant == default_variant:
        return None
    prefix = default_variant + "-"
    label = variant[len(prefix):] if variant.startswith(prefix) else None
    if label in VARIANT_LABELS:
        return None
    labels = ", ".join(VARIANT_LABELS)
    if label is not None:
        return (f"variant {variant!r} adds the label {label!r} to the model's variant {default_variant!r}, but the "
                f"declared labels are: {labels} (harness/identity.py VARIANT_LABELS)")
    return (f"variant {variant!r} does not match what the command line builds, {default_variant!r}: set the "
            f"variant to {default_variant!r} (optionally followed by -<label>, labels: {labels}), or change the "
            "model arguments so that they build the variant you meant")


@runtime_checkable
class RecordedModel(Protocol):
    """What HarnessCLI needs from a task's LightningModule to name and record a run."""

    @property
    def model_name(self) -> str:
        """``hgrn``, ``transformer``: the model column of the tables."""

    @property
    def default_variant(self) -> str:
        """The variant its arguments build, e.g. the lower-bound schedule (``cumsoftmax``) or ``deit-tiny``."""

    def lower_bounds(self) -> torch.Tensor | None:
        """(L, D) forget-gate lower bounds in use, or None for a model without them."""


RECORDED_MODEL_MEMBERS: tuple[str, ...] = ("model_name", "default_variant", "lower_bounds")


def missing_members(model: object) -> list[str]:
    """The RecordedModel members ``model`` lacks (empty when it implements the protocol)."""
    return [name for name in RECORDED_MODEL_MEMBERS if not hasattr(model, name)]


class RecordedModelMixin:
    """``model_name`` and ``lower_bounds`` of RecordedModel for a LightningModule with ``hparams.backbone`` and a
    network ``self.net`` whose ``backbone`` may expose ``lower_bounds()`` (HGRN does; the Transformer does not).
    The class using it defines ``default_variant``."""

    @property
    def model_name(self) -> str:
        return self.hparams.backbone

    def lower_bounds(self) -> torch.Tensor | None:
        """(L, D) forget-gate lower bounds of an HGRN backbone, None otherwise."""
        bounds = getattr(getattr(self.net, "backbone", None), "lower_bounds", None)
        return bounds() if callable(bounds) else None
