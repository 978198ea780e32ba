"""Checks of a run's options before anything is built or trained: values in range (the message names the
option and the range), no more CPU processes than cores unless asked for, and a ``--run.task`` that agrees
with the DataModule. Data presence is checked by the DataModules themselves in ``prepare_data``/``setup``,
which Lightning runs before the first step."""
from __future__ import annotations

import math
import os
from typing import Any


class OptionError(ValueError):
    """An option value that cannot work; the message names the option, the allowed range and the value."""


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


# (group, option) -> (test, the allowed range in words). None always passes: it means "the default" / "all".
Rule = tuple[Any, str]
_AT_LEAST_1: Rule = (lambda v: _is_int(v) and v >= 1, "an integer >= 1")
_AT_LEAST_0: Rule = (lambda v: _is_int(v) and v >= 0, "an integer >= 0")
_LIMIT: Rule = (lambda v: _is_int(v) and v >= 1, "an integer >= 1, or null for the whole split")
_NON_NEGATIVE: Rule = (lambda v: _is_number(v) and math.isfinite(v) and v >= 0, "a number >= 0")
_POSITIVE: Rule = (lambda v: _is_number(v) and math.isfinite(v) and v > 0, "a number > 0")
_PROBABILITY: Rule = (lambda v: _is_number(v) and 0 <= v < 1, "a number in [0, 1)")
_FRACTION: Rule = (lambda v: _is_number(v) and 0 <= v <= 1, "a number in [0, 1]")

RULES: dict[tuple[str, str], Rule] = {
    **{("model", k): _AT_LEAST_1 for k in ("d_model", "n_layers", "n_heads", "depth", "width", "patch_size",
                                           "total_steps", "lr_batch_size", "num_classes")},
    ("model", "warmup_steps"): _AT_LEAST_0,
    ("model", "lr"): _NON_NEGATIVE,
    ("model", "weight_decay"): _NON_NEGATIVE,
    ("model", "warmup_epochs"): _NON_NEGATIVE,
    ("model", "glu_ratio"): _POSITIVE,
    ("model", "ffn_ratio"): _POSITIVE,
    **{("model", k): _PROBABILITY for k in ("dropout", "embedding_dropout", "drop_path", "label_smoothing")},
    ("model", "min_lr_ratio"): _FRACTION,
    **{("data", k): _AT_LEAST_1 for k in ("batch_size", "max_length", "image_size", "resolution", "decode_workers")},
    **{("data", k): _LIMIT for k in ("limit_train", "limit_val", "limit_test")},
    ("data", "num_workers"): _AT_LEAST_0,
    ("data", "val_holdout"): _AT_LEAST_0,
    ("data", "min_freq"): _AT_LEAST_0,
    ("data", "val_fraction"): _PROBABILITY,
    ("data", "test_fraction"): _PROBABILITY,
    ("trainer", "accumulate_grad_batches"): _AT_LEAST_1,
    ("trainer", "num_nodes"): _AT_LEAST_1,
    ("trainer", "max_epochs"): (lambda v: _is_int(v) and (v >= 1 or v == -1), "an integer >= 1, or -1 (no limit)"),
    ("trainer", "max_steps"): (lambda v: _is_int(v) and (v >= 1 or v == -1), "an integer >= 1, or -1 (no limit)"),
}


def _items(node: Any) -> dict[str, Any]:
    """The options of a config group: ``init_args`` of a class_path/init_args node, else the node itself."""
    if node is None:
        return {}
    if hasattr(node, "as_dict"):
        node = node.as_dict()
    if isinstance(node, dict) and "init_args" in node:
        node = node["init_args"] or {}
    return node if isinstance(node, dict) else {}


def option_name(group: str, name: str, cfg: Any) -> str:
    node = cfg.get(group) if hasattr(cfg, "get") else None
    nested = hasattr(node, "get") and node.get("init_args") is not None
    return f"--{group}.init_args.{name}" if nested else f"--{group}.{name}"


def check_option_ranges(cfg: Any) -> None:
    """Raise OptionError for the first option outside its range (``cfg``: the subcommand's config)."""
    for group in ("model", "data", "trainer"):
        for name, value in _items(cfg.get(group)).items():
            rule = RULES.get((group, name))
            if rule is None or value is None:
                continue
            test, allowed = rule
            if not test(value):
                raise OptionError(f"option {option_name(group, name, cfg)} must be {allowed}, got {value!r}")


def cpu_processes(trainer_cfg: dict[str, Any]) -> int | None:
    """How many processes a CPU run would start on this node (None: not a CPU run, or not a count)."""
    import torch

    accelerator = trainer_cfg.get("accelerator")
    accelerator = getattr(accelerator, "class_path", accelerator)
    if not (accelerator == "cpu" or (accelerator in (None, "auto") and not torch.cuda.is_available())):
        return None
    devices = trainer_cfg.get("devices", "auto")
    if isinstance(devices, str):
        devices = devices.strip()
        if devices == "auto":
            return 1
        if "," in devices:
            return len([d for d in devices.split(",") if d.strip()])
        try:
            devices = int(devices)
        except ValueError:
            return None
    if isinstance(devices, (list, tuple)):
        return len(devices)
    if _is_int(devices):
        return (os.cpu_count() or 1) if devices == -1 else devices
    return None


def check_devices(trainer_cfg: dict[str, Any], oversubscribe: bool) -> None:
    """Refuse 0 or negative device counts, and more CPU processes than cores unless ``oversubscribe``."""
    devices = trainer_cfg.get("devices", "auto")
    if _is_int(devices) and devices < 1 and devices != -1:
        raise OptionError(f"option --trainer.devices must be an integer >= 1, -1 (all) or 'auto', got {devices!r}")
    n, cores = cpu_processes(trainer_cfg), os.cpu_count() or 1
    if n is not None and n > cores and not oversubscribe:
        raise OptionError(
            f"option --trainer.devices asks for {n} CPU processes but this machine has {cores} cores; each process "
            f"would get a fraction of a core. Use --trainer.devices 1..{cores}, or pass --run.oversubscribe true "
            "to run them anyway.")


def check_task(run_task: str, datamodule: Any, class_path: str | None) -> None:
    """The DataModule must read the task the record will be filed under (``datamodule.task``, if it has one)."""
    data_task = getattr(datamodule, "task", None)
    if data_task and data_task != run_task:
        source = class_path or type(datamodule).__name__
        raise OptionError(f"run.task is {run_task!r} but {source} reads {data_task!r}; set --run.task {data_task} "
                          "or choose the matching DataModule (the record would be filed under the wrong task)")
