"""LightningModules for the LRA tasks: sequence classification and two-document retrieval.

The network is built from this module's arguments plus what the DataModule knows (classes, vocabulary or
channels, image grid); those data-derived numbers are stored in the hyper-parameters, so a checkpoint
rebuilds the same network on its own.
"""
from __future__ import annotations

from typing import Any, Literal

import lightning as L
import torch
from torch import nn
from torch.nn import functional as F
from torchmetrics.classification import MulticlassAccuracy

from harness.checks import OptionError
from harness.datasets import SPLITS, ModelDataSource, fields_for
from harness.identity import RecordedModelMixin
from harness.optim import parameter_groups
from harness.schedules import lra_cosine_schedule
from models import (
    HGRN, ClassificationHead, PixelEmbedding, RetrievalHead, RetrievalModel, SequenceClassifier, TokenEmbedding,
    Transformer, set_recompute_projections,
)

# what each encoder reads: the kind of data (DataFields.kind) its DataModule must give
ENCODER_READS = {"token": "tokens", "pixel": "pixels"}
# docs/FIDELITY.md: each pipeline switch and its allowed values (the first is the class default)
SWITCHES = {"padding": ("identity", "scan"), "pad_embedding": ("frozen", "trained"),
            "lr_schedule": ("held", "huggingface"), "weight_decay_on": ("weights", "all")}


class SequenceClassificationTask(RecordedModelMixin, L.LightningModule):
    """Embedding -> HGRN or Transformer -> pooled linear head, trained with AdamW and cosine warmup.

    Backbone args: ``backbone`` (``hgrn`` | ``transformer``), ``d_model``, ``n_layers``, ``norm``
    (``layer`` | ``batch``; use ``--trainer.sync_batchnorm true`` for the paper's "synbatch"), ``dropout``.
    HGRN only: ``mode`` (``causal`` | ``bidirectional`` | ``2d``), ``glu_ratio``, ``lower_bound``
    (schedule), ``complex``, ``gate_init``, ``forget_mode`` (``data``: the paper's gate; ``bound``: the lower bound
    alone, data-independent; ``none``: no forget gate). Transformer only: ``n_heads``, ``ffn_ratio``.
    Encoder: ``encoder`` (``token`` | ``pixel``), ``positional`` (sinusoidal), ``embedding_dropout``.
    Optimisation: ``lr``, ``weight_decay``, ``warmup_steps``, ``total_steps``, ``min_lr_ratio``, ``betas``.
    Pipeline switches (docs/FIDELITY.md; the defaults are our corrected pipeline, the paper configs set the
    published one): ``padding`` (``identity``: the backbone gets the true lengths; ``scan``: it gets none and runs
    over pad tokens, as published), ``pad_embedding`` (``frozen`` zero row; ``trained``, as published),
    ``lr_schedule`` (``held`` at its end; ``huggingface``, as published, rises again past ``total_steps``),
    ``weight_decay_on`` (``weights``: not on norms, biases, bounds, phases; ``all``, as published).
    Data-derived (filled from the DataModule's ``model_fields()`` when None): ``num_classes``, ``vocab_size``,
    ``pad_index`` (None: the data is never padded), ``in_channels``, ``grid``. ``check_data`` refuses a
    DataModule whose kind of data (token ids or pixel values) the ``encoder`` cannot read.
    ``compile``: torch.compile the network (HGRN traces without graph breaks); the first steps compile, for
    times see docs/performance.md (``python benchmarks/model.py --compile`` measures them).
    ``recompute_projections``: HGRU layers project p, z, g again in the backward instead of keeping them
    (less memory, three matrix products more; a string such as ``g`` names some of them; None: all for CPU
    tensors of at least 1024 tokens per sequence, none for shorter ones and on GPUs; see models/hgru.py).
    """

    def __init__(
        self,
        backbone: Literal["hgrn", "transformer"] = "hgrn",
        d_model: int = 128,
        n_layers: int = 4,
        norm: Literal["layer", "batch"] = "layer",
        dropout: float = 0.0,
        mode: Literal["causal", "bidirectional", "2d"] = "bidirectional",
        glu_ratio: float = 1.0,
        lower_bound: str = "cumsoftmax",
        complex: bool = True,
        gate_init: Literal["default", "chrono"] = "default",
        forget_mode: Literal["data", "bound", "none"] = "data",
        n_heads: int = 4,
        ffn_ratio: float = 2.0,
        encoder: Literal["token", "pixel"] = "token",
        positional: bool = True,
        embedding_dropout: float = 0.0,
        pool: Literal["mean", "last"] = "mean",
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        warmup_steps: int = 0,
        total_steps: int = 10_000,
        min_lr_ratio: float = 0.0,
        betas: tuple[float, float] = (0.9, 0.999),
        padding: Literal["identity", "scan"] = "identity",
        pad_embedding: Literal["frozen", "trained"] = "frozen",
        lr_schedule: Literal["held", "huggingface"] = "held",
        weight_decay_on: Literal["weights", "all"] = "weights",
        num_classes: int | None = None,
        vocab_size: int | None = None,
        pad_index: int | None = 0,
        in_channels: int | None = None,
        grid: tuple[int, int] | None = None,
        compile: bool = False,
        recompute_projections: bool | str | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        for name, allowed in SWITCHES.items():  # fail at construction, not when fit starts
            if self.hparams[name] not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)} (docs/FIDELITY.md); got {self.hparams[name]!r}")
        self.net: nn.Module | None = None
        self.metrics = nn.ModuleDict()
        if self._data_fields_known():
            self._build()

    # -- identity used by run records -----------------------------------------------------------------
    @property
    def default_variant(self) -> str:
        if self.hparams.backbone != "hgrn":
            return "default"
        hp = self.hparams
        gate = "" if hp.forget_mode == "data" else f"-gate-{hp.forget_mode}"
        return hp.lower_bound + gate + ("" if hp.complex else "-real")

    @property
    def pipeline(self) -> dict[str, str]:
        """The pipeline switches this model runs with (copied into the run record)."""
        hp = self.hparams
        out = {"padding": hp.padding, "lr_schedule": hp.lr_schedule, "weight_decay_on": hp.weight_decay_on}
        if hp.encoder == "token":
            out["pad_embedding"] = hp.pad_embedding
        return out

    # -- construction --------------------------------------------------------------------------------
    def _data_fields_known(self) -> bool:
        hp = self.hparams
        source = hp.vocab_size if hp.encoder == "token" else hp.in_channels
        return hp.num_classes is not None and source is not None

    def check_data(self, datamodule: Any) -> None:
        """Fail before anything is read or built when ``encoder`` cannot read what ``datamodule`` gives (its
        ``kind``, known right after construction): token ids need ``encoder: token``, pixel values ``pixel``."""
        encoder, source = self.hparams.encoder, type(datamodule).__name__
        if not isinstance(datamodule, ModelDataSource):
            raise OptionError(f"{source} does not say what its batches hold (kind, model_fields()); the model reads "
                              "one of lra.data's DataModules")
        wanted = ENCODER_READS[encoder]
        if datamodule.kind == wanted:
            return
        fix = {"pixels": "set --model.init_args.encoder pixel, or --data.init_args.pixel_scale tokens (Image and "
                         "Pathfinder: grey values as token ids)",
               "tokens": "set --model.init_args.encoder token (or, for Image and Pathfinder, a pixel_scale other "
                         "than tokens)"}.get(datamodule.kind, "choose one of lra.data's DataModules")
        raise OptionError(f"model.encoder is {encoder!r}, which reads {wanted}, but {source} gives "
                          f"{datamodule.kind}: {fix}")

    def configure_model(self) -> None:
        if self.net is not None:
            return
        fields, hp = fields_for(self), self.hparams
        hp.num_classes = fields.num_classes
        if fields.kind == "tokens":
            hp.vocab_size, hp.pad_index = fields.vocab_size, fields.pad_index
        else:
            hp.in_channels = fields.in_channels
        if hp.grid is None and fields.grid is not None:
            hp.grid = fields.grid
        self._build()

    def _embedding(self) -> nn.Module:
        hp = self.hparams
        if hp.encoder == "token":
            return TokenEmbedding(hp.vocab_size, hp.d_model, hp.positional, hp.embedding_dropout, hp.pad_index,
                                  trained_pad=hp.pad_embedding == "trained")
        return PixelEmbedding(hp.in_channels, hp.d_model, hp.positional, hp.embedding_dropout)

    def _backbone(self) -> nn.Module:
        hp = self.hparams
        if hp.backbone == "hgrn":
            return HGRN(hp.d_model, hp.n_layers, mode=hp.mode, glu_ratio=hp.glu_ratio, norm=hp.norm, dropout=hp.dropout,
                        lower_bound=hp.lower_bound, complex=hp.complex, gate_init=hp.gate_init,
                        forget_mode=hp.forget_mode)
        return Transformer(hp.d_model, hp.n_layers, n_heads=hp.n_heads, ffn_ratio=hp.ffn_ratio, norm=hp.norm,
                           dropout=hp.dropout)

    def _network(self) -> nn.Module:
        hp = self.hparams
        # (construction order embedding, backbone, head fixes which random numbers each gets: keep it)
        return SequenceClassifier(self._embedding(), self._backbone(), ClassificationHead(hp.d_model, hp.num_classes, hp.pool),
                                  padding=hp.padding)

    def _build(self) -> None:
        self.net = self._network()
        set_recompute_projections(self.net, self.hparams.recompute_projections)
        if self.hparams.compile:  # in place: parameter names and checkpoints stay those of the eager net
            self.net.compile()
        for split in SPLITS:
            self.metrics[f"{split}_acc"] = MulticlassAccuracy(self.hparams.num_classes, average="micro")

    # -- steps ---------------------------------------------------------------------------------------
    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        grid = tuple(self.hparams.grid) if self.hparams.grid is not None else None
        return self.net(batch["x"], batch.get("lengths"), grid)

    def _step(self, batch: dict[str, torch.Tensor], split: str) -> torch.Tensor:
        logits = self(batch)
        loss = F.cross_entropy(logits.float(), batch["y"])
        metric = self.metrics[f"{split}_acc"]
        metric(logits.detach(), batch["y"])
        batch_size = batch["y"].shape[0]
        self.log(f"{split}_loss", loss, on_step=split == "train", on_epoch=True, prog_bar=split != "test", batch_size=batch_size)
        self.log(f"{split}_acc", metric, on_step=False, on_epoch=True, prog_bar=True, batch_size=batch_size)
        return loss

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._step(batch, "test")

    def configure_optimizers(self) -> dict[str, Any]:
        hp = self.hparams
        groups = parameter_groups(self, hp.weight_decay, hp.weight_decay_on)
        optimizer = torch.optim.AdamW(groups, lr=hp.lr, betas=tuple(hp.betas))
        schedule = lra_cosine_schedule(optimizer, hp.warmup_steps, hp.total_steps, hp.min_lr_ratio, hp.lr_schedule)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


class RetrievalTask(SequenceClassificationTask):
    """Two documents through one shared encoder; the head matches [u, v, u - v, u * v] (AAN retrieval).

    ``retrieval_batching``: ``separate`` (one backbone call per document) or ``concatenated`` (one call on the
    2B documents, as published: BatchNorm sees both at once). Every other argument is the base class's."""

    def __init__(self, retrieval_batching: Literal["separate", "concatenated"] = "separate", **kwargs: Any) -> None:
        if retrieval_batching not in ("separate", "concatenated"):
            raise ValueError(f"retrieval_batching must be 'separate' or 'concatenated'; got {retrieval_batching!r}")
        super().__init__(**kwargs)

    @property
    def pipeline(self) -> dict[str, str]:
        return {**super().pipeline, "retrieval_batching": self.hparams.retrieval_batching}

    def _network(self) -> nn.Module:
        hp = self.hparams
        return RetrievalModel(self._embedding(), self._backbone(), RetrievalHead(hp.d_model, hp.num_classes),
                              padding=hp.padding, batching=hp.retrieval_batching)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.net(batch["x1"], batch["x2"], batch.get("lengths1"), batch.get("lengths2"))
