"""Image-classification DataModules: CIFAR-10/100 (torchvision's pickles) and ImageNet-1k (ImageFolder).

Each takes ``root`` (None: ``$HGRN_DATA`` or ``./data``), ``batch_size``, ``num_workers``, ``seed``,
``image_size``, ``limit_train/val/test`` and the DeiT augmentation settings, and exposes ``task``,
``num_classes``, ``in_channels`` and ``image_size`` right after construction (``model_fields()`` hands them to
the model). Missing or malformed files raise harness/datasets.py's errors, which name the file and what to do.
"""
from harness.datasets import MalformedDataError, MissingDataError

from .base import TransformedSubset, VisionDataModule
from .cifar import CIFAR10DataModule, CIFAR100DataModule
from .imagenet import ImageNetDataModule

__all__ = [
    "CIFAR10DataModule", "CIFAR100DataModule", "ImageNetDataModule", "MalformedDataError", "MissingDataError",
    "TransformedSubset", "VisionDataModule",
]
