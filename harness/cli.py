"""LightningCLI with run folders, checkpoints, CSV logs, NaN guard and run records for every run.

Adds a ``run`` group to every config: ``--run.task`` (required), ``--run.suite`` (default ``adhoc``),
``--run.variant`` (default: the lower-bound schedule for HGRN, ``default`` otherwise), ``--run.root``
(default ``runs``) and ``--run.dir`` (default ``<root>/<suite>/<task>/<model>-<variant>/seed<seed>``).
After ``fit`` it tests the best-validation and the last checkpoints and writes ``record.json``.
Resume a killed run with ``--ckpt_path last``.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from .callbacks import FailureRecorder, FiniteLossGuard
from .logger import AppendingCSVLogger
from .records import RECORD_NAME, new_record, read_record, write_json_atomic


def _uses_cuda(accelerator: Any) -> bool:
    import torch

    return torch.cuda.is_available() and accelerator in (None, "auto", "gpu", "cuda")


def _rows_seen(loaders: Any, num_batches: Any, world_size: int = 1) -> int | None:
    """Rows behind an evaluation accuracy (its first loader; limit_*_batches counted), so results/ can put an
    interval on it (every rank's batches; DDP's padding aside); None when the loader has no sized dataset."""
    loader = loaders[0] if isinstance(loaders, (list, tuple)) else loaders
    dataset = getattr(loader, "dataset", None)
    try:
        rows = len(dataset)
    except TypeError:
        return None
    batches = num_batches[0] if isinstance(num_batches, (list, tuple)) else num_batches
    batch_size = getattr(loader, "batch_size", None)
    if batch_size and isinstance(batches, (int, float)) and batches != float("inf"):
        rows = min(rows, int(batches) * batch_size * world_size)
    return int(rows)


class HarnessCLI(LightningCLI):
    """Shared by ``python -m lra`` and ``python -m vision``; ``tasks`` are the valid ``--run.task`` names."""

    def __init__(self, model_class: type[L.LightningModule], tasks: tuple[str, ...], **kwargs: Any) -> None:
        self.tasks = tasks
        kwargs.setdefault("seed_everything_default", 0)
        kwargs.setdefault("save_config_kwargs", {"overwrite": True})
        kwargs.setdefault("subclass_mode_model", True)
        kwargs.setdefault("subclass_mode_data", True)
        super().__init__(model_class, L.LightningDataModule, **kwargs)

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        from typing import Literal, Optional

        parser.add_argument("--run.task", type=Literal[self.tasks], required=True, help="task name, for the run record")
        parser.add_argument("--run.suite", type=str, default="adhoc", help="suite the run belongs to")
        parser.add_argument("--run.variant", type=Optional[str], default=None, help="variant label in tables")
        parser.add_argument("--run.root", type=str, default="runs", help="folder that holds run folders")
        parser.add_argument("--run.dir", type=Optional[str], default=None, help="this run's folder (overrides root)")

    # -- run identity -----------------------------------------------------------------------------
    def _subconfig(self):
        return self.config[self.subcommand] if self.subcommand else self.config

    def _identity(self) -> dict[str, Any]:
        cfg = self._subconfig()
        run = cfg.run
        model_name = getattr(self.model, "model_name", type(self.model).__name__.lower())
        variant = run.variant or getattr(self.model, "default_variant", "default")
        # (1 == True in Python, so test the type: a bool or None means "no explicit seed")
        seed = 0 if cfg.seed_everything is None or isinstance(cfg.seed_everything, bool) else int(cfg.seed_everything)
        run_dir = Path(run.dir) if run.dir else Path(run.root) / run.suite / run.task / f"{model_name}-{variant}" / f"seed{seed}"
        return {"suite": run.suite, "task": run.task, "model": model_name, "variant": variant, "seed": seed, "dir": run_dir}

    def instantiate_trainer(self, **kwargs: Any) -> L.Trainer:
        ident = self._identity()
        self.run_dir = ident["dir"]
        self.run_dir.mkdir(parents=True, exist_ok=True)
        extra = [self._get(self.config_init, c) for c in self._parser(self.subcommand).callback_keys]
        extra += [
            ModelCheckpoint(
                dirpath=self.run_dir / "checkpoints", filename="best-epoch{epoch}-step{step}", monitor="val_acc",
                mode="max", save_last=True, auto_insert_metric_name=False,
            ),
            FiniteLossGuard(),
            FailureRecorder(self.run_dir),
        ]
        trainer_config = {**self._get(self.config_init, "trainer", default={}), **kwargs}
        trainer_config["default_root_dir"] = str(self.run_dir)
        if trainer_config.get("precision") is None and _uses_cuda(trainer_config.get("accelerator")):
            trainer_config["precision"] = "bf16-mixed"  # the GPU default; --trainer.precision overrides it
        if trainer_config.get("logger") in (None, True):
            fit = self.subcommand in (None, "fit")
            trainer_config["logger"] = AppendingCSVLogger(self.run_dir if fit else self.run_dir / self.subcommand)
        return self._instantiate_trainer(trainer_config, extra)

    # -- records around fit -----------------------------------------------------------------------
    def before_fit(self) -> None:
        ident = self._identity()
        config = self._subconfig().clone().as_dict()
        record = new_record(ident["suite"], ident["task"], ident["model"], ident["variant"], ident["seed"], config)
        previous = read_record(self.run_dir)
        if previous is not None:  # a resumed run keeps the time it already spent
            record["metrics"]["wall_time_s"] = float(previous.get("metrics", {}).get("wall_time_s") or 0.0)
        self._start = time.monotonic()
        self._record = record
        if self.trainer.global_rank == 0:
            write_json_atomic(self.run_dir / RECORD_NAME, record)

    def after_fit(self) -> None:
        trainer, record = self.trainer, self._record
        ckpt = trainer.checkpoint_callback
        best, last = (ckpt.best_model_path or None), (ckpt.last_model_path or None)
        metrics = record["metrics"]
        metrics["epochs"] = trainer.current_epoch
        metrics["steps"] = trainer.global_step
        metrics["params"] = sum(p.numel() for p in self.model.parameters())
        if ckpt.best_model_score is not None:
            metrics["val_acc_best"] = float(ckpt.best_model_score)
        if best is None:  # fast_dev_run and friends write no checkpoints: test the weights in memory
            record["note"] = "no checkpoint was written (e.g. fast_dev_run); both test numbers use the final weights"
        metrics["n_val"] = _rows_seen(trainer.val_dataloaders, trainer.num_val_batches, trainer.world_size)
        metrics["test_acc_at_best_val"] = self._test(best)
        metrics["test_acc_last"] = self._test(last)
        metrics["n_test"] = _rows_seen(trainer.test_dataloaders, trainer.num_test_batches, trainer.world_size)
        reader = getattr(self.model, "lower_bounds", None)
        bounds = reader() if callable(reader) else None
        if bounds is not None:
            record["lower_bounds"] = bounds.tolist()  # of the last weights, which _test(last) restored
        metrics["wall_time_s"] += time.monotonic() - self._start
        record["status"] = "complete"
        record["checkpoints"] = {"best": best, "last": last}
        if trainer.global_rank == 0:
            write_json_atomic(self.run_dir / RECORD_NAME, record)
            print(f"run record: {self.run_dir / RECORD_NAME} (test acc at best val {metrics['test_acc_at_best_val']:.4f})")

    def _test(self, ckpt_path: str | None) -> float:
        results = self.trainer.test(self.model, datamodule=self.datamodule, ckpt_path=ckpt_path, verbose=False)
        return float(results[0]["test_acc"])
