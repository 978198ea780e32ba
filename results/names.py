"""Task, model and schedule names shared by every part of results/ (display order and labels)."""

from __future__ import annotations

from harness.identity import CORRECTED_LABEL

# Long Range Arena, in the order the published tables use.
LRA_TASKS: tuple[str, ...] = ("listops", "text", "retrieval", "image", "pathfinder", "pathx")
VISION_TASKS: tuple[str, ...] = ("cifar10", "cifar100", "imagenet")

TASK_LABELS: dict[str, str] = {
    "listops": "ListOps",
    "text": "Text",
    "retrieval": "Retrieval",
    "image": "Image",
    "pathfinder": "Pathfinder",
    "pathx": "Path-X",
    "cifar10": "CIFAR-10",
    "cifar100": "CIFAR-100",
    "imagenet": "ImageNet-1k",
}

MODEL_LABELS: dict[str, str] = {"hgrn": "HGRN", "transformer": "Transformer"}

# Lower-bound schedules (models/lower_bound.py, which results/ does not import: it pulls in torch; a test keeps the
# two equal); `cumsoftmax` is the paper's.
SCHEDULES: tuple[str, ...] = ("cumsoftmax", "none", "constant", "linear", "independent", "decreasing")
PAPER_SCHEDULE = "cumsoftmax"

# Our model name -> the key of its row in published.csv, for the "ours - published" rows.
PUBLISHED_COUNTERPART: dict[str, str] = {"hgrn": "hgrn", "transformer": "transformer"}

# One of the accuracy fields of a record's "metrics" (harness/identity.py ACCURACY_METRICS): what tables report.
DEFAULT_METRIC = "test_acc_at_best_val"


def task_label(task: str) -> str:
    """Human label for a task name; unknown tasks keep their own name."""
    return TASK_LABELS.get(task, task)


def model_label(model: str) -> str:
    return MODEL_LABELS.get(model, model)


# A variant ending in this suffix ran the corrected pipeline (docs/FIDELITY.md; the label of harness/identity.py);
# the others the configs' default, which for the paper configs is the published pipeline. The run record's
# "pipeline" dict lists the switches.
CORRECTED_SUFFIX = "-" + CORRECTED_LABEL


def config_label(model: str, variant: str) -> str:
    """Label of one of our configurations, e.g. 'HGRN (cumsoftmax)' or 'HGRN (cumsoftmax), corrected pipeline'."""
    if variant.endswith(CORRECTED_SUFFIX) and len(variant) > len(CORRECTED_SUFFIX):
        return f"{model_label(model)} ({variant[: -len(CORRECTED_SUFFIX)]}), corrected pipeline"
    return f"{model_label(model)} ({variant})"


def variant_sort_key(variant: str) -> tuple[int, str]:
    # The paper's schedule first, the other schedules in their canonical order (each followed by its corrected-
    # pipeline row), then the rest by name.
    base = variant[: -len(CORRECTED_SUFFIX)] if variant.endswith(CORRECTED_SUFFIX) else variant
    if base in SCHEDULES:
        return (SCHEDULES.index(base), variant)
    return (len(SCHEDULES), variant)


def task_sort_key(task: str) -> tuple[int, str]:
    known = LRA_TASKS + VISION_TASKS
    return (known.index(task), task) if task in known else (len(known), task)
