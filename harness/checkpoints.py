"""The two checkpoints of a run: the best on validation, and ``last.ckpt``, the true latest weights.

Lightning's ``ModelCheckpoint(monitor=..., save_last=True)`` rewrites ``last.ckpt`` only when the monitored
metric improves, so after an epoch without improvement "last" would silently be an older state. Here the
best-on-val file and ``last.ckpt`` come from two separate callbacks: ``LastCheckpoint`` saves at the end of
every training epoch (after that epoch's validation) and once more at the end of fit.
"""
from __future__ import annotations

from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint

LAST_NAME = "last"


def best_checkpoint(dirpath: str | Path) -> ModelCheckpoint:
    """The best-``val_acc`` checkpoint (``best-epoch<E>-step<S>.ckpt``); it writes no ``last.ckpt``."""
    return ModelCheckpoint(dirpath=dirpath, filename="best-epoch{epoch}-step{step}", monitor="val_acc", mode="max",
                           save_last=False, auto_insert_metric_name=False)


class LastCheckpoint(ModelCheckpoint):
    """``<dirpath>/last.ckpt`` after every training epoch and at the end of fit, whatever the metrics say.

    Put it after the best-checkpoint callback, so that the state it saves already holds this epoch's best."""

    def __init__(self, dirpath: str | Path) -> None:
        # save_top_k=0: no other files; no version counter: a rerun overwrites last.ckpt instead of adding last-v1
        super().__init__(dirpath=dirpath, monitor=None, save_top_k=0, save_last=True, enable_version_counter=False)
        self.CHECKPOINT_NAME_LAST = LAST_NAME

    def _save_last_now(self, trainer: L.Trainer) -> None:
        self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    # At the end of every training epoch: that hook runs after the epoch's validation and after the best-checkpoint
    # callback (Lightning calls checkpoint callbacks last, in list order), so last.ckpt holds this epoch's best
    # state too, and resuming from it continues exactly where the uninterrupted run would.
    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        pass

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self._should_skip_saving_checkpoint(trainer):
            self._save_last_now(trainer)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # e.g. max_steps ended fit inside an epoch, or validation did not run at the end of the last epoch
        if not trainer.fast_dev_run and self._last_global_step_saved != trainer.global_step:
            self._save_last_now(trainer)


def last_checkpoint_callback(trainer: L.Trainer) -> LastCheckpoint | None:
    return next((c for c in trainer.callbacks if isinstance(c, LastCheckpoint)), None)
