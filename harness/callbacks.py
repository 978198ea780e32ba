"""Callbacks every run gets: stop on a non-finite loss with a clear message, keep the record's progress and
wall time up to date, and record failures."""
from __future__ import annotations

import math
import time
from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities.exceptions import SIGTERMException

from .checkpoints import last_checkpoint_callback
from .records import RunRecord

PROGRESS_EVERY_S = 30.0  # how often (at most) a long epoch writes its wall time into the record


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite."""


class FiniteLossGuard(L.Callback):
    """Stop at the first non-finite training loss, naming the step and the last good checkpoint.

    ``last.ckpt`` is only written at the end of an epoch (and of fit), so the newest one predates the divergence."""

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if loss is None or torch.isfinite(loss.detach()).all():
            return
        last = "none yet"
        ckpt = last_checkpoint_callback(trainer)
        if ckpt is not None and ckpt.last_model_path:
            last = ckpt.last_model_path
        raise NonFiniteLossError(
            f"training loss became {float(loss.detach().float())} at step {trainer.global_step} "
            f"(epoch {trainer.current_epoch}, batch {batch_idx}); last good checkpoint: {last}. "
            "Lower the learning rate, raise the warmup, or set --trainer.gradient_clip_val."
        )


class RecordProgress(L.Callback):
    """Write epochs, steps and wall time so far into the running record after every training epoch (and every
    ``PROGRESS_EVERY_S`` seconds within one), so that a killed run's time still counts after a resume."""

    def __init__(self, record: RunRecord) -> None:
        self.record = record
        self._last = time.monotonic()

    def _write(self, trainer: L.Trainer, epochs_done: int) -> None:
        if trainer.global_rank == 0 and not trainer.sanity_checking:
            self.record.progress(epochs_done, trainer.global_step)
        self._last = time.monotonic()

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int) -> None:
        if time.monotonic() - self._last > PROGRESS_EVERY_S:
            self._write(trainer, trainer.current_epoch)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._write(trainer, trainer.current_epoch + 1)  # (the counter moves on after this hook)


class FailureRecorder(L.Callback):
    """On an exception during a fit (or its closing tests), mark its record ``failed`` with the reason
    (metrics so far kept). A complete record of an earlier fit is never replaced: see ``RunRecord``.

    Ctrl-C and SIGTERM are not failures: the record stays ``running`` (with its wall time so far), so
    ``run_all.py`` resumes the run next time. Commands other than fit (``validate``, ``test``) begin no record
    and leave the folder's record alone."""

    def __init__(self, record: RunRecord) -> None:
        self.record = record

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        if trainer.global_rank != 0 or not self.record.begun:
            return
        if isinstance(exception, (KeyboardInterrupt, SIGTERMException)):
            self.record.progress(trainer.current_epoch, trainer.global_step)
            return
        metrics: dict[str, Any] = {"steps": trainer.global_step, "epochs": trainer.current_epoch,
                                   "params": sum(p.numel() for p in pl_module.parameters())}
        best = getattr(trainer.checkpoint_callback, "best_model_score", None)
        if best is not None and math.isfinite(float(best)):
            metrics["val_acc_best"] = float(best)
        self.record.fail(f"{type(exception).__name__}: {exception}", **metrics)
