"""``python -m lra fit|validate|test --config lra/configs/<task>.yaml`` (LightningCLI).

Data and option errors print one paragraph; ``--debug`` or ``HGRN_DEBUG=1`` shows the traceback."""
import sys
from typing import Any

from harness.cli import HarnessCLI
from harness.errors import run_main
from lra.task import SequenceClassificationTask

TASKS = ("listops", "text", "retrieval", "image", "pathfinder", "pathx")


def main(args: list[str] | None = None, **kwargs: Any) -> HarnessCLI:
    """Run the CLI on ``args`` (None: sys.argv); errors propagate (the command line turns them into messages)."""
    return HarnessCLI(SequenceClassificationTask, TASKS, args=args, **kwargs)


if __name__ == "__main__":
    sys.exit(run_main(main))
