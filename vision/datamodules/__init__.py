"""Image-classification DataModules: CIFAR-10/100 (torchvision's pickles) and ImageNet-1k (ImageFolder).

Each takes ``root`` (None: ``$HGRN_DATA`` or ``./data``), ``batch_size``, ``num_workers``, ``seed``,
``image_size``, ``limit_train/val/test`` and the DeiT augmentation settings, and exposes ``task``,
``num_classes``, ``in_channels`` and ``image_size`` right after construction.
"""
from .base import TransformedSubset, VisionDataModule
from .cifar import CIFAR10DataModule, CIFAR100DataModule, MalformedCIFARError
from .errors import MissingDatasetError
from .imagenet import ImageNetDataModule

__all__ = [
    "CIFAR10DataModule", "CIFAR100DataModule", "ImageNetDataModule", "MalformedCIFARError", "MissingDatasetError",
    "TransformedSubset", "VisionDataModule",
]
