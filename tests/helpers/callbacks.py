"""Callbacks that tests pass on the command line (``--trainer.callbacks+=helpers.callbacks.PauseAtStep``, with
tests/ on the PYTHONPATH of the run)."""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import lightning as L


class PauseAtStep(L.Callback):
    """At training step ``step``, write this process's PID into ``flag`` and wait there (to be killed)."""

    def __init__(self, step: int, flag: str) -> None:
        self.step, self.flag = int(step), flag

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int) -> None:
        if trainer.global_step >= self.step:
            Path(self.flag).write_text(str(os.getpid()))
            time.sleep(600)
