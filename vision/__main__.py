"""``python -m vision fit|validate|test --config vision/configs/<name>.yaml`` (LightningCLI via the harness).

Data and option errors print one paragraph; ``--debug`` or ``HGRN_DEBUG=1`` shows the traceback."""
from __future__ import annotations

import sys
from typing import Any

from harness.cli import HarnessCLI
from harness.errors import run_main
from vision.task import ImageClassificationTask

# The harness refuses a --run.task that names another dataset than the DataModule reads (harness/checks.py),
# so a run record never files CIFAR-100 numbers under CIFAR-10.
TASKS = ("cifar10", "cifar100", "imagenet")


def main(args: list[str] | None = None, **kwargs: Any) -> HarnessCLI:
    """Run the CLI on ``args`` (None: sys.argv); returns it for in-process callers such as tests."""
    return HarnessCLI(ImageClassificationTask, TASKS, args=args, **kwargs)


if __name__ == "__main__":
    sys.exit(run_main(main))
