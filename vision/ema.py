"""Exponential moving average of the weights through Lightning's own EMAWeightAveraging (optional; DeiT's
``--model-ema``, which the HGRN runs did not use). Enable it from a config:

    trainer:
      callbacks:
        - class_path: vision.ema.EMAWeights
          init_args: {decay: 0.99996}

Validation uses the averaged weights and checkpoints store them as ``state_dict`` (the raw weights under
``current_model_state``). Lightning's callback, when a checkpoint is loaded for ``test`` or ``validate`` in a
process that has already fitted, puts the raw weights back into the model; this subclass leaves the averaged
weights there, so the run record's test accuracies are those of the weights that validation selected.
"""
from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.callbacks import EMAWeightAveraging
from lightning.pytorch.trainer.states import TrainerFn


class EMAWeights(EMAWeightAveraging):
    """EMAWeightAveraging whose checkpoints evaluate with the averaged weights in every stage."""

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        if trainer.state.fn != TrainerFn.FITTING:
            return  # the model already holds checkpoint["state_dict"], the averaged weights
        super().on_load_checkpoint(trainer, pl_module, checkpoint)
