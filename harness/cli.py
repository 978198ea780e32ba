"""LightningCLI with run folders, checkpoints, CSV logs, NaN guard and run records for every run.

Adds a ``run`` group to every config: ``--run.task`` (required), ``--run.suite`` (default ``adhoc``),
``--run.variant`` (default: the model's ``default_variant``; when given, it must agree with it, see
harness/identity.py), ``--run.source`` (where the run was declared, e.g. a suite entry, for error messages),
``--run.root`` (default ``runs``), ``--run.dir`` (default ``<root>/<suite>/<task>/<model>-<variant>/seed<seed>``)
and ``--run.oversubscribe`` (allow more CPU processes than cores).
Before anything is built, option values are checked (harness/checks.py); before the trainer is built, the model
must implement harness.identity.RecordedModel and the variant must match it. ``fit`` then locks the run folder
(harness/lock.py), writes ``last.ckpt`` after every epoch besides the best-on-val checkpoint
(harness/checkpoints.py), and after training tests both and completes ``record.json`` (harness/records.py).
Resume a killed run with ``--ckpt_path last``.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from .callbacks import FailureRecorder, FiniteLossGuard, RecordProgress
from .checkpoints import LastCheckpoint, best_checkpoint, last_checkpoint_callback
from .checks import check_devices, check_option_ranges, check_task
from .identity import (RECORDED_MODEL_MEMBERS, RecordedModel, RunIdentity, RunIdentityError, missing_members,
                       variant_mismatch)
from .lock import RunLock
from .logger import AppendingCSVLogger
from .pipeline import pipeline_switches
from .process import die_with_parent
from .records import RunRecord, new_record


def _uses_cuda(accelerator: Any) -> bool:
    import torch

    return torch.cuda.is_available() and accelerator in (None, "auto", "gpu", "cuda")


def _launched_rank() -> int:
    """This process's rank as the launcher set it in the environment (0 for the process a user started)."""
    return max(int(os.environ.get(k, 0) or 0) for k in ("RANK", "LOCAL_RANK", "NODE_RANK"))


def _rows_seen(loaders: Any, num_batches: Any, world_size: int = 1) -> int | None:
    """Rows behind an evaluation accuracy (its first loader; limit_*_batches counted), so results/ can put an
    interval on it (every rank's batches; DDP evaluation has no padded duplicates, harness/distributed.py); None
    when the loader has no sized dataset."""
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
    """Shared by ``python -m lra`` and ``python -m vision``; ``tasks`` are the valid ``--run.task`` names.

    ``plan_only=True`` parses the command line, checks the options and builds the model alone (no data, no
    trainer, no run): ``identity`` is then the run's identity, and ``plan(args)`` does the same for another
    command line with the parser already built (run_all.py checks a whole suite this way before training)."""

    def __init__(self, model_class: type[L.LightningModule], tasks: tuple[str, ...], plan_only: bool = False,
                 **kwargs: Any) -> None:
        self.tasks = tasks
        self.plan_only = plan_only
        self.identity: RunIdentity | None = None
        if plan_only:  # parse errors raise (the caller names the command line) instead of exiting
            kwargs.setdefault("parser_kwargs", {"exit_on_error": False})
        kwargs.setdefault("seed_everything_default", 0)
        kwargs.setdefault("save_config_kwargs", {"overwrite": True})
        kwargs.setdefault("subclass_mode_model", True)
        kwargs.setdefault("subclass_mode_data", True)
        self.run_lock: RunLock | None = None
        self.run_record: RunRecord | None = None
        if int(os.environ.get("LOCAL_RANK", 0) or 0) > 0:
            die_with_parent()  # a DDP rank started by rank 0 must not outlive it
        super().__init__(model_class, L.LightningDataModule, **kwargs)

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        from typing import Literal, Optional

        parser.add_argument("--run.task", type=Literal[self.tasks], required=True, help="task name, for the run record")
        parser.add_argument("--run.suite", type=str, default="adhoc", help="suite the run belongs to")
        parser.add_argument("--run.variant", type=Optional[str], default=None,
                            help="variant in tables: the model's default_variant, optionally with -<label> "
                                 "(harness/identity.py VARIANT_LABELS)")
        parser.add_argument("--run.source", type=Optional[str], default=None,
                            help="where this run was declared (e.g. a suite file and entry), named in identity errors")
        parser.add_argument("--run.root", type=str, default="runs", help="folder that holds run folders")
        parser.add_argument("--run.dir", type=Optional[str], default=None, help="this run's folder (overrides root)")
        parser.add_argument("--run.oversubscribe", type=bool, default=False,
                            help="allow more CPU processes (--trainer.devices) than cores")

    def before_instantiate_classes(self) -> None:
        cfg = self._subconfig()
        check_option_ranges(cfg)
        if not self.plan_only:  # the device count is the machine's business that runs it
            check_devices(self._as_dict(cfg.get("trainer")), bool(cfg.run.oversubscribe))

    @staticmethod
    def _as_dict(node: Any) -> dict[str, Any]:
        return node.as_dict() if hasattr(node, "as_dict") else dict(node or {})

    # -- run identity -----------------------------------------------------------------------------
    def _subconfig(self, config: Any = None) -> Any:
        """The subcommand's part of ``config`` (default: the parsed config)."""
        config = self.config if config is None else config
        return config[self.subcommand] if self.subcommand else config

    def _check_identity(self) -> RunIdentity:
        """The run's identity from the parsed options and the built model; a model without RecordedModel, or a
        --run.variant that disagrees with what the model arguments build, stops here, before any training."""
        run = self._subconfig().run
        if not isinstance(self.model, RecordedModel):
            raise TypeError(
                f"{type(self.model).__qualname__} lacks {', '.join(missing_members(self.model))}: a task's LightningModule "
                f"must implement harness.identity.RecordedModel ({', '.join(RECORDED_MODEL_MEMBERS)}), e.g. by "
                "inheriting harness.identity.RecordedModelMixin and defining default_variant")
        variant = run.variant or self.model.default_variant
        problem = variant_mismatch(variant, self.model.default_variant)
        if problem is not None:
            raise RunIdentityError(f"{run.source or '--run.variant'}: {problem}")
        # (1 == True in Python, so test the type: a bool or None means "no explicit seed")
        seed_cfg = self._subconfig().seed_everything
        seed = 0 if seed_cfg is None or isinstance(seed_cfg, bool) else int(seed_cfg)
        self.identity = RunIdentity(run.suite, run.task, self.model.model_name, variant, seed)
        return self.identity

    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        if self.plan_only:  # args come from a suite, not from this process's command line: no warning about it
            self.config = parser.parse_args(args)
        else:
            super().parse_arguments(parser, args)

    def _set_seed(self) -> None:
        if not self.plan_only:  # planning draws no random numbers
            super()._set_seed()

    def instantiate_classes(self) -> None:
        if not self.plan_only:
            super().instantiate_classes()
            return
        config = self.config.clone()
        self._subconfig(config).data = None  # DataModules may read data in their constructor: not built here
        self.model = self._get(self.parser.instantiate(config), "model")
        self.datamodule = self.trainer = None
        self._check_identity()

    def plan(self, args: list[str]) -> RunIdentity:
        """The identity ``args`` would get (``plan_only`` mode), with this CLI's parser."""
        assert self.plan_only, "plan() is for a HarnessCLI built with plan_only=True"
        self.parse_arguments(self.parser, args)
        self.subcommand = self.config.get("subcommand")
        # LightningCLI dumps the config once and gives the model its hyper-parameters from that dump: drop it
        self.__dict__.pop("config_dump", None)
        self.before_instantiate_classes()
        self.instantiate_classes()
        assert self.identity is not None
        return self.identity

    def instantiate_trainer(self, **kwargs: Any) -> L.Trainer:
        cfg = self._subconfig()
        check_task(cfg.run.task, self.datamodule, getattr(cfg.get("data"), "class_path", None))
        self.model.check_data(self.datamodule)  # the model reads what the data gives, before any data is read
        ident = self._check_identity()
        self.run_dir = Path(cfg.run.dir) if cfg.run.dir else ident.run_dir(cfg.run.root)
        if self.subcommand in (None, "fit") and _launched_rank() == 0:
            self.run_lock = RunLock(self.run_dir).acquire()  # before anything is written into the folder
        try:
            return self._instantiate_run_trainer(kwargs)
        except BaseException:
            self.release_lock()
            raise

    def _instantiate_run_trainer(self, kwargs: dict[str, Any]) -> L.Trainer:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.run_record = RunRecord(self.run_dir)
        extra = [self._get(self.config_init, c) for c in self._parser(self.subcommand).callback_keys]
        checkpoints = self.run_dir / "checkpoints"
        extra += [
            best_checkpoint(checkpoints),
            LastCheckpoint(checkpoints),  # after the best one: its saved state then holds this epoch's best
            FiniteLossGuard(),
            RecordProgress(self.run_record),
            FailureRecorder(self.run_record),
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
        config = self._subconfig().clone().as_dict()
        record = new_record(self.identity, config)
        record["pipeline"] = pipeline_switches(self.model, self.datamodule, self.trainer)  # docs/FIDELITY.md
        # a resumed run keeps the time it already spent, including a killed process's (see RunRecord)
        resume = self._subconfig().get("ckpt_path") is not None
        self.run_record.begin(record, resume=resume, writer=self.trainer.global_rank == 0)
        self._record = record

    def after_fit(self) -> None:
        trainer, record = self.trainer, self._record
        ckpt, last_ckpt = trainer.checkpoint_callback, last_checkpoint_callback(trainer)
        best, last = (ckpt.best_model_path or None), ((last_ckpt.last_model_path if last_ckpt else "") or None)
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
        bounds = self.model.lower_bounds()
        if bounds is not None:
            record["lower_bounds"] = bounds.tolist()  # of the last weights, which _test(last) restored
        record["checkpoints"] = {"best": best, "last": last}
        path = self.run_record.complete()
        if trainer.global_rank == 0:
            print(f"run record: {path} (test acc at best val {metrics['test_acc_at_best_val']:.4f})")

    def _test(self, ckpt_path: str | None) -> float:
        results = self.trainer.test(self.model, datamodule=self.datamodule, ckpt_path=ckpt_path, verbose=False)
        return float(results[0]["test_acc"])

    # -- the run-folder lock lasts as long as the subcommand -------------------------------------------
    def _run_subcommand(self, subcommand: str) -> None:
        if self.plan_only:
            return
        try:
            super()._run_subcommand(subcommand)
        finally:
            self.release_lock()

    def release_lock(self) -> None:
        if self.run_lock is not None:
            self.run_lock.release()
            self.run_lock = None
