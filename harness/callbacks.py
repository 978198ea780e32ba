"""Callbacks every run gets: stop on a non-finite loss with a clear message, and record failures."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import lightning as L
import torch

from .records import RECORD_NAME, read_record, write_json_atomic


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite."""


class FiniteLossGuard(L.Callback):
    """Stop at the first non-finite training loss, naming the step and the last good checkpoint.

    Checkpoints are only written at validation time, so the newest ``last.ckpt`` predates the divergence."""

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if loss is None or torch.isfinite(loss.detach()).all():
            return
        last = "none yet"
        ckpt = getattr(trainer, "checkpoint_callback", None)
        if ckpt is not None and getattr(ckpt, "last_model_path", ""):
            last = ckpt.last_model_path
        raise NonFiniteLossError(
            f"training loss became {float(loss.detach().float())} at step {trainer.global_step} "
            f"(epoch {trainer.current_epoch}, batch {batch_idx}); last good checkpoint: {last}. "
            "Lower the learning rate, raise the warmup, or set --trainer.gradient_clip_val."
        )


class FailureRecorder(L.Callback):
    """On an exception during a run, mark its record ``failed`` with the reason (metrics so far kept).

    Ctrl-C is not a failure: the record stays ``running``, so ``run_all.py`` resumes the run next time."""

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        if trainer.global_rank != 0 or isinstance(exception, KeyboardInterrupt):
            return
        record = read_record(self.run_dir)
        if record is None:
            return
        record["status"] = "failed"
        record["failure"] = f"{type(exception).__name__}: {exception}"
        metrics = record.setdefault("metrics", {})
        metrics["steps"] = trainer.global_step
        metrics["epochs"] = trainer.current_epoch
        metrics["params"] = sum(p.numel() for p in pl_module.parameters())
        best = getattr(trainer.checkpoint_callback, "best_model_score", None)
        if best is not None and math.isfinite(float(best)):
            metrics["val_acc_best"] = float(best)
        write_json_atomic(self.run_dir / RECORD_NAME, record)
