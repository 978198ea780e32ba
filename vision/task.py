"""The LightningModule for image classification: HGRN-DeiT (models/deit.py) or a Transformer baseline of the
same width and depth, trained with the DeiT recipe (AdamW, linear lr scaling, warmup + cosine per step, label
smoothing through the loss; gradient clipping is the Trainer's ``gradient_clip_val``).

The network is built from this module's arguments plus what the DataModule knows (classes, channels, image
size); those numbers are stored in the hyper-parameters, so a checkpoint rebuilds the same network on its own.
"""
from __future__ import annotations

import math
from typing import Any, Literal

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_info
from torch import nn
from torch.nn import functional as F
from torchmetrics.classification import MulticlassAccuracy

from harness.checks import OptionError
from harness.datasets import SPLITS, ModelDataSource, fields_for
from harness.identity import RecordedModelMixin
from harness.optim import parameter_groups
from harness.schedules import deit_scaled_lr, deit_warmup_cosine
from models import (
    HGRN, ClassificationHead, PatchEmbedding, SequenceClassifier, Transformer, hgrn_deit, set_recompute_projections,
)
from models.deit import DEIT_WIDTHS


DEIT_HEADS = {"tiny": 3, "small": 6}  # DeiT-Ti / DeiT-S: 64 channels per head


def soft_target_loss(logits: torch.Tensor, targets: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """Cross-entropy against class indices (B,) or probabilities (B, classes) with label smoothing.

    On mixed targets y this is timm's SoftTargetCrossEntropy on (1 - e) y + e / classes, which is what timm's
    Mixup(label_smoothing=e) hands to it in DeiT."""
    return F.cross_entropy(logits.float(), targets, label_smoothing=label_smoothing)


class ImageClassificationTask(RecordedModelMixin, L.LightningModule):
    """Patch embedding -> HGRN or Transformer -> mean pool -> linear head, on (images, targets) batches.

    Network: ``backbone`` (``hgrn`` | ``transformer``); ``size`` (``tiny`` 192 wide | ``small`` 384 wide) or
    ``width`` for other widths; ``depth`` (12); ``patch_size`` (14); ``drop_path`` (the largest stochastic-depth
    rate, rising linearly over the blocks; the official HGRN code accepted 0.1 but never applied it).
    HGRN: exactly ``models.hgrn_deit`` (bidirectional 1D scan in raster order, GLU 2x, LayerNorm blocks, mean
    pool -> parameter-free RMS norm -> linear); ``lower_bound`` schedule. Transformer: pre-norm blocks with
    ``n_heads`` (default width / 64) and a GELU MLP ``ffn_ratio`` x width, sinusoidal positions on the
    patches (``positional``; without them attention cannot tell patches apart), final LayerNorm, mean pool.
    Optimisation: ``lr`` is the peak for ``lr_batch_size`` images and is rescaled linearly to the real total
    batch (per-device batch x devices x nodes x accumulation; None: no rescaling); AdamW ``weight_decay``,
    ``betas``, ``eps`` (no decay on norms, biases, lower bounds, phases); ``warmup_epochs`` from ``warmup_lr``,
    cosine to ``min_lr`` over the run (harness/schedules.py); ``label_smoothing`` in the training loss.
    Data-derived (filled from the DataModule's ``model_fields()`` when None): ``num_classes``, ``in_channels``,
    ``image_size``; ``check_data`` refuses a DataModule that gives no images, or images the patches do not tile.
    ``compile``: torch.compile the network (HGRN traces without graph breaks); the first steps compile, for
    times see docs/performance.md (``python benchmarks/model.py --compile`` measures them).
    ``recompute_projections``: HGRU layers project p, z, g again in the backward instead of keeping them
    (less memory, three matrix products more; a string such as ``g`` names some of them; None: all for CPU
    tensors of at least 1024 tokens per sequence, none for shorter ones and on GPUs; see models/hgru.py).
    """

    def __init__(
        self,
        backbone: Literal["hgrn", "transformer"] = "hgrn",
        size: Literal["tiny", "small"] = "tiny",
        width: int | None = None,
        depth: int = 12,
        patch_size: int = 14,
        drop_path: float = 0.0,
        lower_bound: str = "cumsoftmax",
        n_heads: int | None = None,
        ffn_ratio: float = 4.0,
        positional: bool = True,
        label_smoothing: float = 0.1,
        lr: float = 5e-4,
        lr_batch_size: int | None = 512,
        weight_decay: float = 0.05,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        warmup_epochs: float = 10.0,
        warmup_lr: float = 1e-6,
        min_lr: float = 1e-5,
        num_classes: int | None = None,
        in_channels: int | None = None,
        image_size: int | None = None,
        compile: bool = False,
        recompute_projections: bool | str | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        if size not in DEIT_WIDTHS:
            raise ValueError(f"model.size must be one of {', '.join(DEIT_WIDTHS)}, got {size!r}")
        if not 0.0 <= drop_path < 1.0:
            raise ValueError(f"model.drop_path must lie in [0, 1), got {drop_path}")
        self.net: nn.Module | None = None
        self.metrics = nn.ModuleDict()
        self.effective_lr: float | None = None
        if num_classes is not None and in_channels is not None:
            self._build()

    # -- identity used by run records -----------------------------------------------------------------
    @property
    def default_variant(self) -> str:
        hp = self.hparams
        shape = f"deit-{hp.size}" if hp.width is None else f"w{hp.width}"
        shape += (f"-d{hp.depth}" if hp.depth != 12 else "") + (f"-p{hp.patch_size}" if hp.patch_size != 14 else "")
        if hp.backbone == "hgrn" and hp.lower_bound != "cumsoftmax":
            shape += f"-{hp.lower_bound}"
        return shape

    # -- construction --------------------------------------------------------------------------------
    @property
    def d_model(self) -> int:
        return self.hparams.width or DEIT_WIDTHS[self.hparams.size]

    def check_data(self, datamodule: Any) -> None:
        """Fail before anything is read or built when ``datamodule`` does not give images this network can cut
        into patches."""
        source = type(datamodule).__name__
        if not isinstance(datamodule, ModelDataSource) or datamodule.kind != "images":
            raise OptionError(f"the image classifier reads images (B, C, H, W), but {source} gives "
                              f"{getattr(datamodule, 'kind', 'something else')}; choose one of vision.datamodules' "
                              "DataModules (the LRA image tasks run with python -m lra)")
        self._check_patches(datamodule.model_fields().grid[0])  # vision DataModules read nothing for it

    def _check_patches(self, image_size: int | None) -> None:
        patch = self.hparams.patch_size
        if image_size is not None and image_size % patch:
            raise OptionError(f"data.image_size {image_size} is not divisible by model.patch_size {patch}; "
                              "choose sizes whose ratio is a whole number")

    def configure_model(self) -> None:
        if self.net is not None:
            return
        fields, hp = fields_for(self), self.hparams
        hp.num_classes, hp.in_channels, hp.image_size = fields.num_classes, fields.in_channels, fields.grid[0]
        self._build()

    def _network(self) -> nn.Module:
        hp, d = self.hparams, self.d_model
        if hp.backbone == "hgrn":
            if hp.width is None:  # the published models, exactly as models/ defines them
                return hgrn_deit(hp.size, hp.num_classes, hp.patch_size, hp.in_channels, hp.depth, hp.drop_path,
                                 hp.lower_bound)
            # other widths (toy runs): the same parts and settings as models.deit.hgrn_deit
            return SequenceClassifier(
                PatchEmbedding(hp.patch_size, hp.in_channels, d),
                HGRN(d, hp.depth, mode="bidirectional", glu_ratio=2.0, norm="layer", final_norm=False,
                     drop_path=hp.drop_path, lower_bound=hp.lower_bound),
                ClassificationHead(d, hp.num_classes, pool="mean", norm="rms"),
            )
        if hp.backbone == "transformer":
            heads = hp.n_heads or (DEIT_HEADS[hp.size] if hp.width is None else max(1, d // 64))
            return SequenceClassifier(
                PatchEmbedding(hp.patch_size, hp.in_channels, d, positional=hp.positional),
                Transformer(d, hp.depth, n_heads=heads, ffn_ratio=hp.ffn_ratio, norm="layer", final_norm=True,
                            drop_path=hp.drop_path),
                ClassificationHead(d, hp.num_classes, pool="mean"),
            )
        raise ValueError(f"model.backbone must be 'hgrn' or 'transformer', got {hp.backbone!r}")

    def _build(self) -> None:
        hp = self.hparams
        self._check_patches(hp.image_size)
        self.net = self._network()
        set_recompute_projections(self.net, self.hparams.recompute_projections)
        if self.hparams.compile:  # in place: parameter names and checkpoints stay those of the eager net
            self.net.compile()
        for split in SPLITS:
            self.metrics[f"{split}_acc"] = MulticlassAccuracy(hp.num_classes, average="micro")
        if hp.num_classes > 5:  # ImageNet papers also quote top-5
            for split in ("val", "test"):
                self.metrics[f"{split}_acc5"] = MulticlassAccuracy(hp.num_classes, top_k=5, average="micro")

    # -- steps ---------------------------------------------------------------------------------------
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        images, targets = batch
        logits = self(images)
        loss = soft_target_loss(logits, targets, self.hparams.label_smoothing)
        # with MixUp/CutMix the accuracy is against each image's dominant class: a rough progress signal
        hard = targets.argmax(dim=-1) if targets.dim() == 2 else targets
        metric = self.metrics["train_acc"]
        metric(logits.detach(), hard)
        size = images.shape[0]
        self.log("train_loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=size)
        self.log("train_acc", metric, on_step=False, on_epoch=True, batch_size=size)
        self.log("lr", self.optimizers().param_groups[0]["lr"], on_step=True, on_epoch=False, batch_size=size)
        return loss

    def _evaluate(self, batch: tuple[torch.Tensor, torch.Tensor], split: str) -> None:
        images, labels = batch
        logits = self(images)
        size = images.shape[0]
        self.log(f"{split}_loss", soft_target_loss(logits, labels), on_epoch=True, prog_bar=split == "val", batch_size=size)
        for name in (f"{split}_acc", f"{split}_acc5"):
            if name in self.metrics:
                self.metrics[name](logits.detach(), labels)
                self.log(name, self.metrics[name], on_step=False, on_epoch=True, prog_bar=name == f"{split}_acc",
                         batch_size=size)

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "test")

    # -- optimisation --------------------------------------------------------------------------------
    def total_batch_size(self) -> int:
        """Images per optimiser step over all devices: per-device batch x world size x accumulation."""
        trainer = self.trainer
        dm = getattr(trainer, "datamodule", None)
        if dm is None or not hasattr(dm, "batch_size"):
            raise ValueError("the lr scaling rule needs a DataModule with batch_size")
        return int(dm.batch_size) * int(trainer.world_size) * int(trainer.accumulate_grad_batches)

    def configure_optimizers(self) -> dict[str, Any]:
        hp, trainer = self.hparams, self.trainer
        total_batch = self.total_batch_size()
        self.effective_lr = deit_scaled_lr(hp.lr, total_batch, hp.lr_batch_size)
        total_steps = int(trainer.estimated_stepping_batches)  # also sets num_training_batches
        steps_per_epoch = max(1, math.ceil(trainer.num_training_batches / trainer.accumulate_grad_batches))
        warmup_steps = int(round(hp.warmup_epochs * steps_per_epoch))
        rank_zero_info(f"lr {self.effective_lr:.3g} (= {hp.lr:g} x total batch {total_batch} / {hp.lr_batch_size}); "
                       f"{total_steps} steps, {warmup_steps} of warmup from {hp.warmup_lr:g}, cosine to {hp.min_lr:g}")
        optimizer = torch.optim.AdamW(parameter_groups(self, hp.weight_decay), lr=self.effective_lr,
                                      betas=tuple(hp.betas), eps=hp.eps)
        schedule = deit_warmup_cosine(optimizer, total_steps, warmup_steps, hp.warmup_lr, hp.min_lr)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}
