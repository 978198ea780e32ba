"""MixUp / CutMix on whole training batches (DeiT: mixup 0.8, cutmix 1.0, switch probability 0.5, applied to
every batch) with torchvision.transforms.v2, as a DataLoader collate so the work happens in the loader
workers. Targets come out as (B, classes) probabilities; label smoothing is left to the loss
(F.cross_entropy(..., label_smoothing=0.1) on these targets equals timm's smoothed mixed targets).

Differences from timm's Mixup: a sample is mixed with its neighbour in the batch (torchvision rolls the batch
by one) rather than with its mirror (timm flips the batch); the lambda draws and the CutMix box area
correction are the same.
"""
from __future__ import annotations

from typing import Any

import torch
from torch.nn import functional as F
from torch.utils.data import default_collate
from torchvision.transforms import v2


class MixCollate:
    """Collate (image, label) samples, then mix the batch.

    Args:
        num_classes: width of the one-hot targets.
        mixup_alpha, cutmix_alpha: Beta parameters; 0 turns that one off.
        switch_prob: probability of CutMix when both are on.
        prob: probability that a batch is mixed at all (timm ``mixup_prob``, 1.0 in DeiT); unmixed batches
            still get one-hot float targets so every batch has the same type.
    """

    def __init__(self, num_classes: int, mixup_alpha: float = 0.8, cutmix_alpha: float = 1.0,
                 switch_prob: float = 0.5, prob: float = 1.0) -> None:
        if mixup_alpha <= 0 and cutmix_alpha <= 0:
            raise ValueError("MixCollate needs mixup_alpha > 0 or cutmix_alpha > 0")
        if not 0.0 <= switch_prob <= 1.0 or not 0.0 <= prob <= 1.0:
            raise ValueError(f"switch_prob and prob must lie in [0, 1], got {switch_prob} and {prob}")
        self.num_classes = int(num_classes)
        self.prob = float(prob)
        mixup = v2.MixUp(alpha=mixup_alpha, num_classes=num_classes) if mixup_alpha > 0 else None
        cutmix = v2.CutMix(alpha=cutmix_alpha, num_classes=num_classes) if cutmix_alpha > 0 else None
        if mixup is not None and cutmix is not None:
            self.mix: v2.Transform = v2.RandomChoice([mixup, cutmix], p=[1.0 - switch_prob, switch_prob])
        else:
            self.mix = mixup or cutmix

    def __call__(self, samples: list[Any]) -> tuple[torch.Tensor, torch.Tensor]:
        images, labels = default_collate(samples)
        if self.prob < 1.0 and float(torch.rand(())) >= self.prob:
            return images, F.one_hot(labels, self.num_classes).float()
        return self.mix(images, labels)
