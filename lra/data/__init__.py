"""LRA readers and LightningDataModules (one per task), plus the shared data pieces.

Every DataModule takes ``root`` (None: ``$HGRN_DATA`` or ``./data``) and the keywords ``batch_size``,
``num_workers``, ``seed``, ``limit_train/val/test``, ``drop_last`` (training only) and ``cache_dir``
(:class:`LRADataModule`), and exposes ``num_classes``, ``max_length`` and ``kind`` (``tokens`` or
``pixels``) right after construction; ``model_fields()`` hands the model what it needs (vocabulary size and pad
index, or channels; the grid of image tasks) as one typed record. ``pipeline`` is the dict of the task's
docs/FIDELITY.md switches, copied into each run record. Missing or malformed data raises
harness/datasets.py's errors, which name the file and the command that makes it.
"""

from harness.datasets import MalformedDataError, MissingDataError
from lra.data.base import LRADataModule
from lra.data.errors import DataSkipWarning
from lra.data.image import ImageDataModule
from lra.data.listops import ListOpsDataModule
from lra.data.pathfinder import PathfinderDataModule, PathXDataModule
from lra.data.retrieval import RetrievalDataModule
from lra.data.text import TextDataModule

__all__ = [
    "DataSkipWarning",
    "ImageDataModule",
    "LRADataModule",
    "ListOpsDataModule",
    "MalformedDataError",
    "MissingDataError",
    "PathXDataModule",
    "PathfinderDataModule",
    "RetrievalDataModule",
    "TextDataModule",
]
