"""LRA readers and LightningDataModules (one per task), plus the shared data pieces.

Every DataModule takes ``root`` (None: ``$HGRN_DATA`` or ``./data``), ``batch_size``,
``num_workers``, ``seed``, ``limit_train/val/test`` and ``drop_last`` (training only), and exposes
``num_classes`` and ``max_length`` right after construction; token tasks add ``vocab_size`` and
``pad_index``, image tasks ``in_channels`` and ``grid``. ``pipeline`` is the dict of the task's
docs/FIDELITY.md switches, copied into each run record.
"""

from lra.data.base import LRADataModule
from lra.data.errors import DataSkipWarning, MalformedDataError, MissingDataError
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
