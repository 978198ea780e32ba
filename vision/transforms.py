"""The DeiT recipe's per-image transforms with torchvision.transforms.v2 (timm ``create_transform`` as DeiT
calls it in OpenNLPLab/im classification/main.py).

Training: random-resized crop (scale 0.08-1, bicubic) or, for 32 px CIFAR, a padded random crop -> horizontal
flip -> RandAugment rand-m9-mstd0.5-inc1 (vision/randaugment.py) or, only when RandAugment is off, colour
jitter 0.4 (timm skips the jitter whenever RandAugment is on, so DeiT never applied its 0.4) -> float in [0, 1]
-> normalise -> random erasing (p 0.25, per-pixel normal values, as timm's ``re_mode='pixel'``).
Evaluation: resize the short side to size / crop_ratio (256 for 224 at 0.875, bicubic) -> centre crop.
MixUp/CutMix act on whole batches and live in vision/mixing.py.
"""
from __future__ import annotations

from typing import Literal

import torch
from torchvision.transforms import v2

from .randaugment import DeiTRandAugment

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
CROPS = ("random_resized", "pad")
Crop = Literal["random_resized", "pad"]


def _mean_pixel(mean: tuple[float, ...]) -> list[int]:
    # timm fills the area a geometric op uncovers with the mean pixel, not black
    return [round(255 * m) for m in mean]


def train_transform(
    image_size: int,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    *,
    crop: Crop,
    crop_scale: tuple[float, float],
    crop_padding: int,
    hflip: float,
    rand_augment_ops: int,
    rand_augment_magnitude: float,
    rand_augment_std: float,
    color_jitter: float,
    random_erasing: float,
    interpolation: str,
) -> v2.Compose:
    """PIL image or uint8 (C, H, W) tensor -> normalised float (C, image_size, image_size). The DeiT recipe's
    values are the defaults of :class:`vision.datamodules.VisionDataModule`, the one place that states them."""
    if crop == "random_resized":
        steps: list[v2.Transform] = [
            v2.RandomResizedCrop(image_size, scale=tuple(crop_scale), interpolation=interpolation, antialias=True)
        ]
    elif crop == "pad":  # the usual CIFAR crop: the image at full size, shifted by up to ``crop_padding`` pixels
        steps = [v2.Resize(image_size, interpolation=interpolation, antialias=True),
                 v2.RandomCrop(image_size, padding=crop_padding, padding_mode="reflect")]
    else:
        raise ValueError(f"unknown crop {crop!r}; choose one of {', '.join(CROPS)}")
    if hflip > 0:
        steps.append(v2.RandomHorizontalFlip(hflip))
    if rand_augment_ops > 0:
        steps.append(DeiTRandAugment(rand_augment_ops, rand_augment_magnitude, rand_augment_std,
                                     interpolation=interpolation, fill=_mean_pixel(mean)))
    elif color_jitter > 0:
        steps.append(v2.ColorJitter(color_jitter, color_jitter, color_jitter))
    steps += [v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std)]
    if random_erasing > 0:
        steps.append(v2.RandomErasing(p=random_erasing, value="random"))
    return v2.Compose(steps)


def eval_transform(
    image_size: int,
    mean: tuple[float, ...] = IMAGENET_MEAN,
    std: tuple[float, ...] = IMAGENET_STD,
    crop_ratio: float = 0.875,
    interpolation: str = "bicubic",
) -> v2.Compose:
    """Resize the short side to ``int(image_size / crop_ratio)``, centre-crop ``image_size``, normalise."""
    if not 0 < crop_ratio <= 1:
        raise ValueError(f"eval crop_ratio must lie in (0, 1], got {crop_ratio}")
    return v2.Compose([
        v2.Resize(int(image_size / crop_ratio), interpolation=interpolation, antialias=True),
        v2.CenterCrop(image_size),
        v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std),
    ])
