"""``python -m vision fit|validate|test --config vision/configs/<name>.yaml`` (LightningCLI via the harness)."""
from __future__ import annotations

import importlib
from typing import Any

from harness.cli import HarnessCLI
from vision.task import ImageClassificationTask

TASKS = ("cifar10", "cifar100", "imagenet")


class VisionCLI(HarnessCLI):
    """HarnessCLI that also refuses a ``--run.task`` naming another dataset than the DataModule reads, so a
    run record never files CIFAR-100 numbers under CIFAR-10."""

    def before_instantiate_classes(self) -> None:
        cfg = self.config[self.subcommand] if self.subcommand else self.config
        data = cfg.get("data")
        class_path = getattr(data, "class_path", None) if data is not None else None
        if not class_path:
            return
        module, _, name = class_path.rpartition(".")
        data_task = getattr(getattr(importlib.import_module(module), name, None), "task", None)
        if data_task and data_task != cfg.run.task:
            raise ValueError(f"run.task is {cfg.run.task!r} but {class_path} reads {data_task!r}; "
                             f"set --run.task {data_task} or choose the matching DataModule")


def main(args: list[str] | None = None, **kwargs: Any) -> VisionCLI:
    """Run the CLI on ``args`` (None: sys.argv); returns it for in-process callers such as tests."""
    return VisionCLI(ImageClassificationTask, TASKS, args=args, **kwargs)


if __name__ == "__main__":
    main()
