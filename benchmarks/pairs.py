"""The HGRN / Transformer pairs the speed benchmarks compare, built from the paper configs through the tasks.

Each pair is (HGRN side, Transformer side) at the same width, depth and batch; ``build(pair, side)`` returns
the network and a function that makes one batch and computes the training loss, so benchmarks/model.py and
benchmarks/profile_layer.py time exactly the same step.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

import torch
import yaml
from torch import nn
from torch.nn import functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclass(frozen=True)
class Pair:
    name: str
    description: str
    batch: int


PAIRS = {
    "image": Pair("image", "LRA Image paper config (2D, d 512, 6 layers, T 1024), lra/configs/image*.yaml", 8),
    "deit": Pair("deit", "HGRN-DeiT-Tiny vs DeiT-Tiny (224 px, patch 14/16 -> T 256), vision/configs/*deit-tiny.yaml", 16),
    # the official HGRN-DeiT-Tiny has 256 tokens per image to DeiT-Tiny's 196: this pair compares equal tokens
    "deit-p16": Pair("deit-p16", "HGRN-DeiT-Tiny at patch 16 (T 196, as DeiT-Tiny) vs DeiT-Tiny, 224 px", 16),
    "small": Pair("small", "d 64, 2 layers, bidirectional, token input (the original benchmarks/model.py)", 1),
}
SIDES = ("hgrn", "transformer")


def _init_args(path: str) -> dict:
    with open(os.path.join(ROOT, path)) as f:
        return dict(yaml.safe_load(f)["model"]["init_args"])


def build(pair: str, side: str, batch: int | None = None, length: int = 1024
          ) -> tuple[nn.Module, Callable[[], torch.Tensor]]:
    """(network, loss_fn): loss_fn() runs a forward pass on a fixed random batch and returns the loss."""
    if side not in SIDES:
        raise ValueError(f"side must be one of {SIDES}, got {side!r}")
    if pair not in PAIRS:
        raise ValueError(f"unknown pair {pair!r}; choose one of {', '.join(PAIRS)}")
    B = batch or PAIRS[pair].batch
    g = torch.Generator().manual_seed(0)
    if pair == "image":
        from lra.task import SequenceClassificationTask

        cfg = "lra/configs/image.yaml" if side == "hgrn" else "lra/configs/image-transformer.yaml"
        task = SequenceClassificationTask(**_init_args(cfg), num_classes=10, in_channels=3, grid=(32, 32))
        net = task.net
        pixels = torch.rand(B, 1024, 3, generator=g)
        labels = torch.randint(0, 10, (B,), generator=g)
        return net, lambda: F.cross_entropy(net(pixels, None, (32, 32)), labels)
    if pair in ("deit", "deit-p16"):
        from vision.task import ImageClassificationTask

        cfg = "vision/configs/hgrn-deit-tiny.yaml" if side == "hgrn" else "vision/configs/transformer-deit-tiny.yaml"
        init = _init_args(cfg)
        if pair == "deit-p16":
            init["patch_size"] = 16
        task = ImageClassificationTask(**init, num_classes=1000, in_channels=3, image_size=224)
        net = task.net
        images = torch.randn(B, 3, 224, 224, generator=g)
        labels = torch.randint(0, 1000, (B,), generator=g)
        return net, lambda: F.cross_entropy(net(images), labels)
    from models import HGRN, ClassificationHead, SequenceClassifier, TokenEmbedding, Transformer

    d, L = 64, 2
    body = HGRN(d, L, mode="bidirectional") if side == "hgrn" else Transformer(d, L, n_heads=4, ffn_ratio=1.0)
    net = SequenceClassifier(TokenEmbedding(256, d), body, ClassificationHead(d, 10))
    tokens = torch.randint(1, 256, (B, length), generator=g)
    labels = torch.randint(0, 10, (B,), generator=g)
    return net, lambda: F.cross_entropy(net(tokens), labels)


def training_step(net: nn.Module, loss_fn: Callable[[], torch.Tensor], opt: torch.optim.Optimizer) -> None:
    opt.zero_grad(set_to_none=True)
    loss_fn().backward()
    opt.step()
